"""One shared terminal, one risk chain: its host judges every attached program's orders."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import qmtkit
from qmtkit import cli
from qmtkit.backends.base import Reply, Request
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.terminal import backend as terminal_backend
from qmtkit.backends.terminal.backend import LocalTerminalBackend
from qmtkit.compat import xtconstant
from qmtkit.compat._bridge import bridge
from qmtkit.compat.xttrader import XtQuantTrader, XtQuantTraderCallback
from qmtkit.compat.xttype import StockAccount
from qmtkit.constants import OrderStatus
from qmtkit.errors import BackendUnavailable
from qmtkit.gateway.server import serve
from qmtkit.risk import RISK_ERROR_BASE, RULES, RiskLimits, TradingState
from qmtkit.risk.config import RiskConfig, save_config
from qmtkit.risk.guard import RiskGuard, arm_host, home_chain
from support.gateway import RecordingSink

CODE = "600000.SH"
ACCT = "shared-acct"


def _limits(home: Path, **limits: Any) -> None:
    save_config(RiskConfig(accounts={ACCT: RiskLimits(**limits)}), home)


def _terminal_guard(host: qmtkit.Client) -> RiskGuard:
    """The risk chain the hosting program runs for the whole terminal."""
    backend = host.backend
    assert isinstance(backend, LocalTerminalBackend) and backend.hosting
    assert backend._gateway is not None
    guard = backend._gateway.backend
    assert isinstance(guard, RiskGuard)
    return guard


async def _price(qk: qmtkit.Client, side: str) -> float:
    detail = await qk.instrument(CODE)
    assert detail is not None
    return detail.UpStopPrice if side == "up" else detail.DownStopPrice


async def test_programs_that_follow_the_home_run_no_chain_of_their_own(tmp_path: Path) -> None:
    _limits(tmp_path, max_orders_per_day=3)
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        assert host.risk is None and other.risk is None
        assert _terminal_guard(host).engine(ACCT) is not None


async def test_the_hosting_program_and_an_attached_one_share_one_day_budget(
    tmp_path: Path,
) -> None:
    _limits(tmp_path, max_orders_per_day=3)
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        mine, theirs = await host.account(ACCT), await other.account(ACCT)
        price = await _price(host, "down")
        assert (await mine.buy(CODE, 100, price)).order_id > 0  # the direct path
        assert (await theirs.buy(CODE, 100, price)).order_id > 0  # over the socket
        assert (await mine.buy(CODE, 100, price)).order_id > 0
        for acct in (theirs, mine):
            refused = await acct.buy(CODE, 100, price)
            assert refused.order_id == -1
            assert refused.order.order_status == OrderStatus.JUNK
            assert refused.error is not None
            assert refused.error.error_msg.startswith("risk:max_orders_per_day:")
            assert refused.error.error_id == RISK_ERROR_BASE + RULES.index("max_orders_per_day")
        assert len(await mine.orders()) == 3


async def test_an_attached_programs_order_is_judged_and_placed_without_a_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limits(tmp_path, max_orders_per_day=1)
    asked: list[str] = []
    original = SimBackend.request

    async def spy(self: SimBackend, req: Request) -> Reply:
        asked.append(type(req).__name__)
        return await original(self, req)

    monkeypatch.setattr(SimBackend, "request", spy)
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        acct = await other.account(ACCT)
        price = await _price(host, "down")
        assert (await acct.buy(CODE, 100, price)).order_id > 0
        refused = await acct.buy(CODE, 100, price)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_day:")
    assert "SubmitOrder" not in asked  # judged and placed at once, in the host's read callback


async def test_two_attached_programs_share_one_per_second_budget(tmp_path: Path) -> None:
    # One token, refilled over 100 s: the second order is refused however slow the machine.
    _limits(tmp_path, max_orders_per_second=0.01)
    async with (
        qmtkit.connect(home=tmp_path) as host,
        qmtkit.connect(home=tmp_path) as a,
        qmtkit.connect(home=tmp_path) as b,
    ):
        assert isinstance(a.backend, LocalTerminalBackend) and not a.backend.hosting
        assert isinstance(b.backend, LocalTerminalBackend) and not b.backend.hosting
        acct_a, acct_b = await a.account(ACCT), await b.account(ACCT)
        price = await _price(a, "down")
        assert (await acct_a.buy(CODE, 100, price)).order_id > 0
        refused = await acct_b.buy(CODE, 100, price)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_second:")
        assert refused.error.error_id == RISK_ERROR_BASE + RULES.index("max_orders_per_second")
        assert [o.order_id for o in await acct_b.orders()] == [
            o.order_id for o in await (await host.account(ACCT)).orders()
        ]
        assert len(await acct_b.orders()) == 1


async def test_a_program_with_limits_in_code_keeps_its_own_chain_before_the_terminals(
    tmp_path: Path,
) -> None:
    _limits(tmp_path, max_orders_per_day=1)
    own = RiskLimits(max_order_volume=100)
    async with (
        qmtkit.connect(home=tmp_path) as host,
        qmtkit.connect(home=tmp_path, risk=own) as other,
    ):
        assert other.risk is not None
        acct = await other.account(ACCT)
        price = await _price(host, "down")
        too_big = await acct.buy(CODE, 200, price)
        assert too_big.error is not None
        assert too_big.error.error_msg.startswith("risk:max_order_volume:")
        assert (await acct.buy(CODE, 100, price)).order_id > 0
        over_day = await acct.buy(CODE, 100, price)
        assert over_day.error is not None
        assert over_day.error.error_msg.startswith("risk:max_orders_per_day:")


async def test_a_limit_set_after_the_host_started_refuses_an_attached_programs_next_order(
    tmp_path: Path,
) -> None:
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        assert not (tmp_path / "risk.toml").exists() and not (tmp_path / "risk").exists()
        theirs = await other.account(ACCT)
        price = await _price(host, "down")
        assert (await theirs.buy(CODE, 200, price)).order_id > 0
        assert cli.main(["risk", "set", ACCT, "max_order_volume=100", "--home", str(tmp_path)]) == 0
        refused = await theirs.buy(CODE, 200, price)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_order_volume:")


async def test_a_day_cap_set_after_the_host_started_counts_the_orders_before_it(
    tmp_path: Path,
) -> None:
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        mine, theirs = await host.account(ACCT), await other.account(ACCT)
        price = await _price(host, "down")
        assert (await mine.buy(CODE, 100, price)).order_id > 0
        assert (await theirs.buy(CODE, 100, price)).order_id > 0
        assert cli.main(["risk", "set", ACCT, "max_orders_per_day=3", "--home", str(tmp_path)]) == 0
        assert (await theirs.buy(CODE, 100, price)).order_id > 0
        refused = await mine.buy(CODE, 100, price)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_day:")
        assert "4 is over the limit 3" in refused.error.error_msg


class _Host:
    """A terminal hosted by a task of its own, which leaves on ``leave()``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.hosting = anyio.Event()
        self.gone = anyio.Event()

    async def run(self) -> None:
        async with qmtkit.connect(home=self.home) as host:
            assert isinstance(host.backend, LocalTerminalBackend) and host.backend.hosting
            self.hosting.set()
            await self.gone.wait()

    async def leave(self, stays: qmtkit.Client) -> None:
        """The host leaves; returns once ``stays`` hosts the terminal in its place."""
        async with stays.connection_changes() as changes:
            self.gone.set()
            with anyio.fail_after(20):
                lost, back = await changes.__anext__(), await changes.__anext__()
        assert not lost.connected and back.connected
        assert isinstance(stays.backend, LocalTerminalBackend) and stays.backend.hosting


async def test_a_takeover_keeps_the_days_order_count(tmp_path: Path) -> None:
    _limits(tmp_path, max_orders_per_day=3)
    host = _Host(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.run)
        await host.hosting.wait()
        async with qmtkit.connect(home=tmp_path) as stays:
            acct = await stays.account(ACCT)
            price = await _price(stays, "down")
            for _ in range(2):
                assert (await acct.buy(CODE, 100, price)).order_id > 0
            await host.leave(stays)
            assert (await acct.buy(CODE, 100, price)).order_id > 0
            refused = await acct.buy(CODE, 100, price)
            assert refused.error is not None
            assert refused.error.error_msg.startswith("risk:max_orders_per_day:")
            assert "4 is over the limit 3" in refused.error.error_msg


#: A trading day, and a Saturday: on a closed day the simulator trades in the last trading
#: day's session time, hours or days apart from the wall clock the budgets run on.
DAYS = pytest.mark.parametrize("day", ["20261204", "20261205"])


@DAYS
async def test_a_takeover_keeps_the_last_seconds_orders_in_the_per_second_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, day: str
) -> None:
    monkeypatch.setenv("QMTKIT_CLOCK", day)
    # One token, refilled over 100 s: the order before the takeover still holds it after.
    _limits(tmp_path, max_orders_per_second=0.01)
    host = _Host(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.run)
        await host.hosting.wait()
        async with qmtkit.connect(home=tmp_path) as stays:
            acct = await stays.account(ACCT)
            price = await _price(stays, "down")
            assert (await acct.buy(CODE, 100, price)).order_id > 0
            await host.leave(stays)
            refused = await acct.buy(CODE, 100, price)
            assert refused.error is not None
            assert refused.error.error_msg.startswith("risk:max_orders_per_second:")


@DAYS
async def test_a_takeover_keeps_the_duplicate_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, day: str
) -> None:
    monkeypatch.setenv("QMTKIT_CLOCK", day)
    _limits(tmp_path, duplicate_window_ms=600_000)
    host = _Host(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.run)
        await host.hosting.wait()
        async with qmtkit.connect(home=tmp_path) as stays:
            acct = await stays.account(ACCT)
            price = await _price(stays, "down")
            assert (await acct.buy(CODE, 100, price)).order_id > 0
            await host.leave(stays)
            refused = await acct.buy(CODE, 100, price)
            assert refused.error is not None
            assert refused.error.error_msg.startswith("risk:duplicate_order:")
            assert (await acct.buy(CODE, 200, price)).order_id > 0


async def test_a_takeover_keeps_an_account_a_loss_limit_moved_to_reducing(
    tmp_path: Path,
) -> None:
    # Buying costs fees, so total assets fall by a few yuan with the first fill.
    _limits(tmp_path, daily_loss_reducing=1.0)
    host = _Host(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.run)
        await host.hosting.wait()
        async with qmtkit.connect(home=tmp_path) as stays:
            acct = await stays.account(ACCT)
            up = await _price(stays, "up")
            assert (await (await acct.buy(CODE, 1000, up))).order_status == OrderStatus.SUCCEEDED
            with anyio.fail_after(20):
                while (await acct.buy(CODE, 100, up)).error is None:
                    await anyio.sleep(0.01)  # until the host's guard has seen the loss
            await host.leave(stays)
            refused = await acct.buy(CODE, 100, up)
            assert refused.error is not None
            assert refused.error.error_msg.startswith("risk:reducing:")
            assert "set before a restart" in refused.error.error_msg


async def test_a_halt_from_the_command_line_stops_every_program_and_cancels_their_orders(
    tmp_path: Path,
) -> None:
    _limits(tmp_path, max_order_volume=10_000)
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        mine, theirs = await host.account(ACCT), await other.account(ACCT)
        price = await _price(host, "down")
        resting = await theirs.buy(CODE, 100, price)
        assert resting.order_id > 0
        assert cli.main(["risk", "halt", ACCT, "--home", str(tmp_path), "--reason", "test"]) == 0
        guard = _terminal_guard(host)
        with anyio.fail_after(20):
            while guard.state(ACCT) is not TradingState.HALTED:
                await anyio.sleep(0.01)
            final = await resting
        assert final.order_status == OrderStatus.CANCELED
        for acct in (mine, theirs):
            refused = await acct.buy(CODE, 100, price)
            assert refused.error is not None
            assert refused.error.error_msg.startswith("risk:halted:")
            assert "test" in refused.error.error_msg


async def test_a_gateway_serving_the_terminal_shares_its_budget_with_local_programs(
    tmp_path: Path,
) -> None:
    _limits(tmp_path, max_orders_per_day=2)
    token = "t" * 40
    async with anyio.create_task_group() as tg:
        gw = await tg.start(
            functools.partial(
                serve, f"sim://?home={tmp_path}", "127.0.0.1", 0, token=token, home=tmp_path
            )
        )
        remote_url = f"qmtkit://127.0.0.1:{gw.address[1]}?token={token}"
        async with qmtkit.connect(home=tmp_path) as local, qmtkit.connect(remote_url) as remote:
            assert local.risk is None and not isinstance(gw.backend, RiskGuard)  # one chain
            mine, theirs = await local.account(ACCT), await remote.account(ACCT)
            price = await _price(local, "down")
            assert (await mine.buy(CODE, 100, price)).order_id > 0
            assert (await theirs.buy(CODE, 100, price)).order_id > 0
            for acct in (mine, theirs):
                refused = await acct.buy(CODE, 100, price)
                assert refused.error is not None
                assert refused.error.error_msg.startswith("risk:max_orders_per_day:")
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- the shim


class _Errors(XtQuantTraderCallback):
    def __init__(self) -> None:
        self.errors: list[Any] = []
        self.cond = threading.Condition()

    def on_order_error(self, order_error: Any) -> None:
        with self.cond:
            self.errors.append(order_error)
            self.cond.notify_all()


@contextmanager
def _hosted(tmp_path: Path) -> Iterator[float]:
    """A terminal hosted by another program (a thread with its own loop): yields a price."""
    ready = threading.Event()
    leave = threading.Event()
    price: list[float] = []

    async def host() -> None:
        async with qmtkit.connect(home=tmp_path) as qk:
            price.append(await _price(qk, "down"))
            ready.set()
            await anyio.to_thread.run_sync(leave.wait)

    thread = threading.Thread(target=anyio.run, args=(host,))
    thread.start()
    try:
        assert ready.wait(30)
        yield price[0]
    finally:
        leave.set()
        thread.join(30)


def test_the_shim_of_an_attached_program_gets_the_terminals_refusal_as_on_order_error(
    tmp_path: Path,
) -> None:
    _limits(tmp_path, max_orders_per_day=1)
    with _hosted(tmp_path) as price:
        bridge().backend_factory = lambda url: LocalTerminalBackend(f"sim://?home={tmp_path}")
        trader = XtQuantTrader(str(tmp_path / "userdata_mini"), 1)
        rec = _Errors()
        trader.register_callback(rec)
        trader.start()
        try:
            assert trader.connect() == 0
            acc = StockAccount(ACCT)
            assert trader.subscribe(acc) == 0
            buy = (acc, CODE, xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, price, "s", "r")
            assert trader.order_stock(*buy) > 0
            assert trader.order_stock(*buy) == -1
            with rec.cond:
                assert rec.cond.wait_for(lambda: rec.errors, 10)
            [err] = rec.errors
            assert err.error_id == RISK_ERROR_BASE + RULES.index("max_orders_per_day")
            assert err.error_msg.startswith("risk:max_orders_per_day:")
            assert (err.order_id, err.strategy_name, err.order_remark) == (-1, "s", "r")
        finally:
            trader.stop()
            bridge().backend_factory = None
            bridge().shutdown()


async def test_a_terminal_backend_not_armed_with_a_chain_refuses_to_open(tmp_path: Path) -> None:
    backend = LocalTerminalBackend(f"sim://?home={tmp_path}")
    with pytest.raises(BackendUnavailable, match="no risk chain was given"):
        async with backend.open(RecordingSink()):
            pass
    assert not (tmp_path / "sim").exists()  # refused before anything was made


def test_arm_host_gives_only_a_terminal_backend_the_homes_chain(tmp_path: Path) -> None:
    terminal = LocalTerminalBackend(f"sim://?home={tmp_path}")
    private = SimBackend.from_url(f"sim://?home={tmp_path}")
    arm_host(terminal)
    arm_host(private)
    assert terminal.host_chain is home_chain
    assert not hasattr(private, "host_chain")


def test_a_download_that_hosts_the_terminal_runs_the_homes_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limits(tmp_path, max_orders_per_day=1)
    hosted: list[Any] = []
    real_host = terminal_backend.host_terminal

    async def spy(sim: SimBackend, paths: Any, lock: Any, **kw: Any) -> None:
        hosted.append(kw["chain"](sim, paths.home))
        await real_host(sim, paths, lock, **kw)

    monkeypatch.setattr(terminal_backend, "host_terminal", spy)
    home = str(tmp_path)
    assert cli.main(["download", CODE, "--period", "1d", "--home", home]) == 0
    assert len(hosted) == 1 and isinstance(hosted[0], RiskGuard)
