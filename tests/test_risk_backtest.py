"""A backtest with the `regulatory` preset shows the refusals a live run would have had."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.client import Account, Client
from qmtkit.data.cache import Cache
from qmtkit.risk import PRESETS
from qmtkit.risk.config import RiskConfig, save_config
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars

URL = f"backtest://?start=20240102&end=20240109&codes={A},{B}"
BURST = 250  # orders sent within one virtual instant: over the preset's 200 a second


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
    return tmp_path


async def burst(qk: Client, account: Account) -> None:
    async with qk.subscribe([A], "1d") as sub:
        async for _batch in sub:
            for i in range(BURST):
                # Low limit buys: they rest, so every order counts and none fills.
                await account.buy(A, 100, round(9.5 - (i % 50) * 0.01, 2))
            return


async def test_the_per_bar_form_is_refused_past_200_actions_a_second(home: Path) -> None:
    result = await run_backtest(URL, burst, home=home, risk=PRESETS["regulatory"])
    refused = result.orders.filter(pl.col("error").str.starts_with("risk:"))
    assert refused.height == BURST - 200
    assert set(refused["error"].str.extract(r"^risk:([^:]+):").to_list()) == {
        "max_actions_per_second"
    }
    profile = result.compliance()
    assert profile.risk_refusals == BURST - 200
    assert profile.refusals_by_rule == {"max_actions_per_second": BURST - 200}
    assert profile.orders == 200  # what would have reached the exchange
    assert not profile.high_frequency


async def test_the_cross_sectional_form_goes_through_the_same_chain(home: Path) -> None:
    sent: list[int] = []

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        if sent:
            return
        for i in range(BURST):
            sent.append(ctx.buy(A, 100, round(9.5 - (i % 50) * 0.01, 2)).order_id)

    result = await run_backtest(URL, on_bars=on_bars, home=home, risk=PRESETS["regulatory"])
    assert sum(oid < 0 for oid in sent) == BURST - 200
    assert result.compliance().refusals_by_rule == {"max_actions_per_second": BURST - 200}


async def test_a_backtest_follows_risk_toml_in_its_home(home: Path) -> None:
    save_config(RiskConfig(default=PRESETS["regulatory"]), home)
    result = await run_backtest(URL, burst, home=home)
    assert result.compliance().risk_refusals == BURST - 200


async def test_without_a_risk_chain_every_order_reaches_the_broker(home: Path) -> None:
    result = await run_backtest(URL, burst, home=home, risk=False)
    profile = result.compliance()
    assert profile.risk_refusals == 0
    assert profile.orders == BURST
