"""A changed risk.toml applies from the next request, keeping what was already spent.

The guard's housekeeping poll is set to an hour, so what a test sees comes from the home's
mark (``risk.gen``), read before every request, not from the poll. The simulator and the
guard share a VirtualClock (Monday 2024-06-03, 10:00 Beijing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import qmtkit
from qmtkit import cli
from qmtkit.backends.sim import SimBackend
from qmtkit.clock import BEIJING, VirtualClock
from qmtkit.risk import RiskLimits, TradingState
from qmtkit.risk.config import RiskConfig, save_config
from qmtkit.risk.generation import GenerationWatch, bump_generation
from qmtkit.risk.guard import RiskGuard
from qmtkit.risk.journal import journal_path, read_entries

CODE = "600000.SH"
ACCT = "reloaded"
START = int(dt.datetime(2024, 6, 3, 10, 0, tzinfo=BEIJING).timestamp() * 1000)


def _save(home: Path, **limits: object) -> None:
    save_config(RiskConfig(accounts={ACCT: RiskLimits(**limits)}), home)  # type: ignore[arg-type]


@asynccontextmanager
async def following(home: Path) -> AsyncIterator[tuple[qmtkit.Client, RiskGuard, float]]:
    """A program whose chain follows ``home``'s risk.toml: client, guard, a resting buy price."""
    clock = VirtualClock(START)
    sim = SimBackend(home=home, clock=clock)
    config = RiskConfig(accounts={ACCT: RiskLimits(max_order_volume=1_000_000)})
    save_config(config, home)
    guard = RiskGuard(sim, config, home=home, watch_config=True, poll_seconds=3600)
    async with qmtkit.connect(backend=guard, home=home) as qk:
        await qk.account(ACCT)
        tick = sim.market.tick(CODE, clock.now_ms())
        yield qk, guard, round(tick.bidPrice[0] * 0.95, 2)


def test_the_mark_moves_once_per_write_and_is_seen_once(tmp_path: Path) -> None:
    watch = GenerationWatch.open(tmp_path)
    assert watch is not None
    assert not watch.moved()
    bump_generation(tmp_path)
    assert watch.moved()
    assert not watch.moved()
    watch.close()


async def test_a_limit_saved_while_running_refuses_the_next_order(tmp_path: Path) -> None:
    async with following(tmp_path) as (qk, _, low):
        acct = await qk.account(ACCT)
        assert (await acct.buy(CODE, 500, low)).order_id > 0
        _save(tmp_path, max_order_volume=400)
        refused = await acct.buy(CODE, 500, round(low - 0.01, 2))
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_order_volume:")


async def test_todays_count_survives_a_change_of_limits(tmp_path: Path) -> None:
    async with following(tmp_path) as (qk, _, low):
        _save(tmp_path, max_orders_per_day=3)
        acct = await qk.account(ACCT)
        for i in range(2):
            assert (await acct.buy(CODE, 100, round(low - i / 100, 2))).order_id > 0
        _save(tmp_path, max_orders_per_day=3, max_order_volume=10_000)
        assert (await acct.buy(CODE, 100, round(low - 0.02, 2))).order_id > 0
        refused = await acct.buy(CODE, 100, round(low - 0.03, 2))
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_day:")


async def test_the_last_seconds_orders_stay_spent_over_a_change_of_limits(
    tmp_path: Path,
) -> None:
    async with following(tmp_path) as (qk, _, low):
        _save(tmp_path, max_orders_per_second=2)
        acct = await qk.account(ACCT)
        for i in range(2):
            assert (await acct.buy(CODE, 100, round(low - i / 100, 2))).order_id > 0
        _save(tmp_path, max_orders_per_second=2, max_order_volume=10_000)
        refused = await acct.buy(CODE, 100, round(low - 0.02, 2))  # the virtual clock stands
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_second:")


async def test_a_lower_rate_counts_the_tokens_already_spent(tmp_path: Path) -> None:
    async with following(tmp_path) as (qk, _, low):
        _save(tmp_path, max_orders_per_second=10)
        acct = await qk.account(ACCT)
        for i in range(2):
            assert (await acct.buy(CODE, 100, round(low - i / 100, 2))).order_id > 0
        _save(tmp_path, max_orders_per_second=2)
        refused = await acct.buy(CODE, 100, round(low - 0.02, 2))
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_second:")
        assert "3 is over the limit 2" in refused.error.error_msg


async def test_a_broken_file_is_refused_naming_file_and_field_and_the_old_rules_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with following(tmp_path) as (qk, guard, low):
        _save(tmp_path, max_order_volume=400)
        acct = await qk.account(ACCT)
        assert (await acct.buy(CODE, 400, low)).order_id > 0
        path = tmp_path / "risk.toml"
        path.write_text(f'[accounts."{ACCT}"]\nmax_order_volume = "lots"\n')
        bump_generation(tmp_path)
        refused = await acct.buy(CODE, 500, round(low - 0.01, 2))
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_order_volume:")
        assert guard.config_error is not None
        assert str(path) in guard.config_error and "max_order_volume" in guard.config_error
        assert "limits in force are kept" in guard.config_error
        assert any(str(path) in r.getMessage() for r in caplog.records)
    flags = [e for e in read_entries(journal_path(tmp_path / "risk", ACCT)) if e.kind == "flag"]
    assert [e.rule for e in flags] == ["config"]
    assert "max_order_volume" in flags[0].message


async def test_a_reducing_account_stays_reducing_when_its_loss_limit_is_removed(
    tmp_path: Path,
) -> None:
    async with following(tmp_path) as (qk, guard, low):
        engine = guard.engine(ACCT)
        assert engine is not None
        engine.restore_state(TradingState.REDUCING, "daily loss", manual=False)
        _save(tmp_path, max_order_volume=10_000)
        acct = await qk.account(ACCT)
        refused = await acct.buy(CODE, 100, low)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:reducing:")
        assert guard.state(ACCT) is TradingState.REDUCING


async def test_a_halt_from_the_command_line_refuses_the_next_order(tmp_path: Path) -> None:
    async with following(tmp_path) as (qk, _, low):
        acct = await qk.account(ACCT)
        assert cli.main(["risk", "halt", ACCT, "--home", str(tmp_path), "--reason", "now"]) == 0
        refused = await acct.buy(CODE, 100, low)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:halted:")
