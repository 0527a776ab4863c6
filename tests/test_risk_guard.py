"""The risk chain in front of a venue: the simulator behind a RiskGuard, through the client.

The simulator runs on a VirtualClock (Monday 2024-06-03, 10:00 Beijing); the guard reads the
same clock, so per-second budgets move only when a test advances it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import qmtkit
from qmtkit import cli
from qmtkit.backends.base import Ok, OpenAccount, SubmitOrder
from qmtkit.backends.mock import MockBackend
from qmtkit.backends.sim import SimBackend
from qmtkit.clock import BEIJING, VirtualClock
from qmtkit.constants import OrderStatus
from qmtkit.errors import InvalidArgument
from qmtkit.models import AccountReport, OrderResponse
from qmtkit.risk import RISK_ERROR_BASE, RULES, RiskLimits, TradingState
from qmtkit.risk.config import RiskConfig, save_config
from qmtkit.risk.guard import RiskGuard
from qmtkit.risk.journal import HaltSwitch, journal_path, read_entries, switch_path, write_switch

CODE = "600000.SH"
ACCT = "risky"
START = int(dt.datetime(2024, 6, 3, 10, 0, tzinfo=BEIJING).timestamp() * 1000)


class Venue:
    def __init__(self, qk: qmtkit.Client, backend: SimBackend, clock: VirtualClock) -> None:
        self.qk = qk
        self.backend = backend
        self.clock = clock

    @property
    def guard(self) -> RiskGuard:
        assert self.qk.risk is not None
        return self.qk.risk

    def ask(self) -> float:
        return self.backend.market.tick(CODE, self.clock.now_ms()).askPrice[0]

    def low(self) -> float:
        """A limit buy price that rests (well under the market, inside the day's limits)."""
        t = self.backend.market.tick(CODE, self.clock.now_ms())
        return round(t.bidPrice[0] * 0.95, 2)


@asynccontextmanager
async def venue(home: Path, risk: object, **kw: object) -> AsyncIterator[Venue]:
    clock = VirtualClock(START)
    backend = SimBackend(home=home, clock=clock)
    async with qmtkit.connect(backend=backend, home=home, risk=risk, **kw) as qk:  # type: ignore[arg-type]
        yield Venue(qk, backend, clock)


async def test_a_refused_order_is_junk_with_an_error_naming_rule_limit_and_value(
    tmp_path: Path,
) -> None:
    async with venue(tmp_path, RiskLimits(max_order_volume=1000)) as v:
        acct = await v.qk.account(ACCT)
        handle = await acct.buy(CODE, 1100, v.ask())
        order = await handle
        assert order.order_status == OrderStatus.JUNK
        assert handle.order_id == -1
        assert order.error is not None
        assert order.error.error_id == RISK_ERROR_BASE + RULES.index("max_order_volume")
        assert order.error.error_msg.startswith("risk:max_order_volume:")
        assert "1100" in order.error.error_msg and "1000" in order.error.error_msg
        assert order.status_msg == order.error.error_msg
        assert await acct.orders() == []  # it never reached the venue


async def test_an_order_within_the_limits_reaches_the_venue_and_fills(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(max_order_volume=1000)) as v:
        acct = await v.qk.account(ACCT)
        order = await (await acct.buy(CODE, 1000, v.ask()))
        assert order.order_status == OrderStatus.SUCCEEDED
        assert order.error is None


async def test_no_limits_means_no_guard(tmp_path: Path) -> None:
    async with venue(tmp_path, None) as v:
        assert v.qk.risk is None
        assert isinstance(v.qk.backend, SimBackend)


async def test_orders_per_second_follow_the_backends_virtual_clock(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(max_orders_per_second=3)) as v:
        acct = await v.qk.account(ACCT)
        low = v.low()
        states = [(await acct.buy(CODE, 100, low)).order.order_status for _ in range(4)]
        assert states[:3] != [OrderStatus.JUNK] * 3 and OrderStatus.JUNK not in states[:3]
        assert states[3] == OrderStatus.JUNK
        v.clock.advance(0.34)
        assert (await acct.buy(CODE, 100, low)).order.order_status != OrderStatus.JUNK


async def test_the_active_order_cap_counts_the_venues_resting_orders(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(max_active_orders=2)) as v:
        acct = await v.qk.account(ACCT)
        low = v.low()
        first = await acct.buy(CODE, 100, low)
        await acct.buy(CODE, 100, round(low - 0.01, 2))
        third = await acct.buy(CODE, 100, round(low - 0.02, 2))
        assert third.error is not None and third.error.error_msg.startswith(
            "risk:max_active_orders:"
        )
        await first.cancel()
        assert (await first).order_status == OrderStatus.CANCELED
        again = await acct.buy(CODE, 100, round(low - 0.02, 2))
        assert again.order_id > 0


async def test_the_kill_switch_cancels_every_open_order_and_halts(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(max_order_volume=100_000)) as v:
        acct = await v.qk.account(ACCT)
        low = v.low()
        resting = [await acct.buy(CODE, 100, round(low - i / 100, 2)) for i in range(3)]
        assert await v.guard.halt(ACCT, "operator: runaway loop") == 3
        for h in resting:
            assert (await h).order_status == OrderStatus.CANCELED
        refused = await acct.buy(CODE, 100, low)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:halted:")
        assert "operator: runaway loop" in refused.error.error_msg
        assert v.guard.state(ACCT) is TradingState.HALTED
        await v.guard.resume(ACCT)
        assert (await acct.buy(CODE, 100, low)).order_id > 0


async def test_a_halt_switch_written_by_another_process_reaches_a_running_guard(
    tmp_path: Path,
) -> None:
    async with venue(tmp_path, RiskLimits(max_order_volume=100_000)) as v:
        v.guard.poll_seconds = 0.01
        acct = await v.qk.account(ACCT)
        resting = await acct.buy(CODE, 100, v.low())
        write_switch(
            switch_path(tmp_path / "risk", ACCT), HaltSwitch(halted=True, reason="from the CLI")
        )
        with anyio.fail_after(5):
            final = await resting
        assert final.order_status == OrderStatus.CANCELED
        assert v.guard.state(ACCT) is TradingState.HALTED


async def test_a_halt_outlives_the_program(tmp_path: Path) -> None:
    limits = RiskLimits(max_order_volume=100_000)
    async with venue(tmp_path, limits) as v:
        await v.qk.account(ACCT)
        await v.guard.halt(ACCT)
    async with venue(tmp_path, limits) as v:
        acct = await v.qk.account(ACCT)
        refused = await acct.buy(CODE, 100, v.low())
        assert refused.error is not None and refused.error.error_msg.startswith("risk:halted:")


async def test_refusals_and_state_changes_are_journaled(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(max_order_volume=100)) as v:
        acct = await v.qk.account(ACCT)
        await acct.buy(CODE, 200, v.ask())
        await v.guard.halt(ACCT, "enough")
    entries = list(read_entries(journal_path(tmp_path / "risk", ACCT)))
    assert [(e.kind, e.rule or e.new) for e in entries] == [
        ("refused", "max_order_volume"),
        ("state", "halted"),
    ]
    assert entries[0].limit == "100" and entries[0].value == "200"
    assert entries[0].at_ms == START


async def test_risk_toml_in_home_is_followed(tmp_path: Path) -> None:
    save_config(RiskConfig(accounts={ACCT: RiskLimits(blacklist=frozenset({CODE}))}), tmp_path)
    async with venue(tmp_path, None) as v:
        acct = await v.qk.account(ACCT)
        other = await v.qk.account("other")
        refused = await acct.buy(CODE, 100, v.ask())
        assert refused.error is not None and refused.error.error_msg.startswith("risk:blacklist:")
        assert (await other.buy(CODE, 100, v.ask())).order_id > 0


async def test_a_daily_loss_moves_the_account_to_reducing(tmp_path: Path) -> None:
    # Buying costs fees, so total assets fall by a few yuan with the first fill.
    async with venue(tmp_path, RiskLimits(daily_loss_reducing=1.0)) as v:
        acct = await v.qk.account(ACCT)
        assert (await (await acct.buy(CODE, 1000, v.ask()))).order_status == OrderStatus.SUCCEEDED
        await acct.asset()
        with anyio.fail_after(5):
            while v.guard.state(ACCT) is not TradingState.REDUCING:
                await anyio.sleep(0)
        refused = await acct.buy(CODE, 100, v.ask())
        assert refused.error is not None and refused.error.error_msg.startswith("risk:reducing:")


async def test_a_reducing_state_set_today_holds_after_a_restart(tmp_path: Path) -> None:
    limits = RiskLimits(daily_loss_reducing=1.0)
    async with venue(tmp_path, limits) as v:
        acct = await v.qk.account(ACCT)
        assert (await (await acct.buy(CODE, 1000, v.ask()))).order_status == OrderStatus.SUCCEEDED
        await acct.asset()
        with anyio.fail_after(5):
            while v.guard.state(ACCT) is not TradingState.REDUCING:
                await anyio.sleep(0)
    async with venue(tmp_path, limits) as v:
        acct = await v.qk.account(ACCT)
        assert v.guard.state(ACCT) is TradingState.REDUCING
        refused = await acct.buy(CODE, 100, v.ask())
        assert refused.error is not None and refused.error.error_msg.startswith("risk:reducing:")


async def test_a_resume_from_the_command_line_while_nothing_ran_is_not_undone_by_a_restart(
    tmp_path: Path,
) -> None:
    limits = RiskLimits(daily_loss_reducing=1.0)
    async with venue(tmp_path, limits) as v:
        acct = await v.qk.account(ACCT)
        assert (await (await acct.buy(CODE, 1000, v.ask()))).order_status == OrderStatus.SUCCEEDED
        await acct.asset()
        with anyio.fail_after(5):
            while v.guard.state(ACCT) is not TradingState.REDUCING:
                await anyio.sleep(0)
    assert cli.main(["risk", "resume", ACCT, "--home", str(tmp_path)]) == 0
    async with venue(tmp_path, limits) as v:
        await v.qk.account(ACCT)
        assert v.guard.state(ACCT) is TradingState.ACTIVE


async def test_price_band_judges_against_the_venues_last_price(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(price_band=0.02)) as v:
        acct = await v.qk.account(ACCT)
        last = v.backend.market.tick(CODE, v.clock.now_ms()).lastPrice
        far = await acct.buy(CODE, 100, round(last * 0.97, 2))
        assert far.error is not None and far.error.error_msg.startswith("risk:price_band:")
        near = await acct.buy(CODE, 100, round(last * 0.99, 2))
        assert near.order_id > 0


async def test_a_refused_cancel_never_reaches_the_venue(tmp_path: Path) -> None:
    async with venue(tmp_path, RiskLimits(max_cancels_per_second=1)) as v:
        acct = await v.qk.account(ACCT)
        a = await acct.buy(CODE, 100, v.low())
        b = await acct.buy(CODE, 100, round(v.low() - 0.01, 2))
        assert (await a.cancel()).cancel_result == 0
        resp = await b.cancel()
        assert resp.cancel_result == -1
        assert resp.error_msg.startswith("risk:max_cancels_per_second:")
        assert [o.order_id for o in await acct.orders(cancelable_only=True)] == [b.order_id]


def test_connect_refuses_a_bad_risk_argument(tmp_path: Path) -> None:
    async def main() -> None:
        async with qmtkit.connect("sim://", home=tmp_path, risk="strict"):  # type: ignore[arg-type]
            pass

    with pytest.raises(InvalidArgument, match="risk must be"):
        anyio.run(main)


async def test_the_xtquant_backend_gets_the_same_refusals(xt: Any, tmp_path: Path) -> None:
    from qmtkit.backends.xtquant import XtQuantBackend

    backend = XtQuantBackend(str(tmp_path / "userdata_mini"), 4242, response_timeout=3.0)
    limits = RiskLimits(max_order_volume=1000)
    async with qmtkit.connect(backend=backend, home=tmp_path, risk=limits) as qk:
        acct = await qk.account("1000000365")
        refused = await acct.buy(CODE, 1100, 10.0)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_order_volume:")
        assert xt.terminal.placed == []  # xtquant never saw it
        assert (await acct.buy(CODE, 1000, 10.0)).order_id > 0
        assert len(xt.terminal.placed) == 1


async def test_an_error_in_the_body_comes_back_unwrapped_through_the_guard(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with venue(tmp_path, RiskLimits(max_order_volume=1000)) as v:
            assert v.qk.risk is not None
            raise KeyError("mine")


class _Calls:
    """A sink that records each delivery call: one report, or several at once."""

    def __init__(self) -> None:
        self.calls: list[list[AccountReport]] = []

    def on_quotes(self, batch: object) -> None:
        pass

    def on_connection(self, state: object) -> None:
        pass

    def on_report(self, report: AccountReport) -> None:
        self.calls.append([report])

    def on_reports(self, reports: list[AccountReport]) -> None:
        self.calls.append(list(reports))


@pytest.mark.parametrize("limits", [None, RiskLimits(max_orders_per_second=100)])
async def test_a_guard_passes_an_orders_reports_on_at_once_folded_or_not(
    tmp_path: Path, limits: RiskLimits | None
) -> None:
    sim = SimBackend(home=tmp_path, clock=VirtualClock(START))
    config = RiskConfig(accounts={} if limits is None else {ACCT: limits})
    guard = RiskGuard(sim, config, home=tmp_path)
    sink = _Calls()
    async with guard.open(sink):
        await guard.request(OpenAccount(ACCT))
        sink.calls.clear()
        ask = sim.market.tick(CODE, sim.session_now()).askPrice[0]
        await guard.request(SubmitOrder(ACCT, CODE, 23, 100, 11, ask))
    assert [len(c) for c in sink.calls] == [6]  # a filled buy: six reports, one call


async def test_a_chain_folds_reports_that_come_at_once_before_passing_them_on(
    tmp_path: Path,
) -> None:
    sim = SimBackend(home=tmp_path, clock=VirtualClock(START))
    guard = RiskGuard(sim, RiskConfig(default=RiskLimits(max_active_orders=5)), home=tmp_path)
    sink = _Calls()
    async with guard.open(sink):
        await guard.request(OpenAccount(ACCT))
        ask = sim.market.tick(CODE, sim.session_now()).askPrice[0]
        reply = await guard.request(SubmitOrder(ACCT, CODE, 23, 100, 11, ask))
        engine = guard.engine(ACCT)
        assert engine is not None
        assert isinstance(reply, OrderResponse) and reply.order_id in engine.book.done
        assert engine.book.resting == 0 and engine.book.positions == {CODE: 100}


async def test_each_account_with_a_chain_folds_only_its_own_reports(tmp_path: Path) -> None:
    sim = SimBackend(home=tmp_path, clock=VirtualClock(START))
    limits = RiskLimits(max_active_orders=5)
    guard = RiskGuard(sim, RiskConfig(accounts={ACCT: limits, "b": limits}), home=tmp_path)
    sink = _Calls()
    async with guard.open(sink):
        ask = sim.market.tick(CODE, sim.session_now()).askPrice[0]
        await guard.request(OpenAccount(ACCT))
        await guard.request(SubmitOrder(ACCT, CODE, 23, 100, 11, ask))  # one chain so far
        await guard.request(OpenAccount("b"))
        await guard.request(OpenAccount("none"))  # no limits: its reports only pass
        await guard.request(SubmitOrder("b", CODE, 23, 200, 11, ask))
        await guard.request(SubmitOrder(ACCT, CODE, 23, 300, 11, ask))
        await guard.request(SubmitOrder("none", CODE, 23, 400, 11, ask))
        mine, theirs = guard.engine(ACCT), guard.engine("b")
        assert mine is not None and theirs is not None and guard.engine("none") is None
        assert mine.book.positions == {CODE: 400}
        assert theirs.book.positions == {CODE: 200}
        assert mine.book.resting == 0 and theirs.book.resting == 0
    passed = {r.account_id for call in sink.calls for r in call}
    assert passed == {ACCT, "b", "none"}


def test_a_guard_offers_an_at_once_path_only_in_front_of_a_venue_that_has_one(
    tmp_path: Path,
) -> None:
    config = RiskConfig(default=RiskLimits(max_order_volume=100))
    plain = RiskGuard(MockBackend(lambda req: Ok()), config, home=tmp_path)
    assert getattr(plain, "request_now", None) is None  # a client asks it nothing first
    sim = RiskGuard(SimBackend(home=tmp_path, clock=VirtualClock(START)), config, home=tmp_path)
    assert callable(getattr(sim, "request_now", None))
