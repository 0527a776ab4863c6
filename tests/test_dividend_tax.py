"""The differentiated individual dividend tax of a backtest (``dividend_tax=1``).

Held at most one month 20 %, up to one year 10 %, longer nothing; collected when the shares
are sold, the oldest lot first. Every figure below is worked out by hand in its comment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from qmtkit.backends.base import Dividend
from qmtkit.backends.replay import BacktestSpec
from qmtkit.backends.replay.divtax import DividendTax, add_months, tax_rate
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.cli import main as cli_main
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import yyyymmdd_to_ms
from qmtkit.errors import InvalidArgument
from support.history import FLAT, A
from support.history import daily_bars as _bars


def test_a_month_later_is_the_same_day_of_the_month_clipped_to_its_end() -> None:
    assert add_months(20240115, 1) == 20240215
    assert add_months(20240131, 1) == 20240229  # leap year
    assert add_months(20230131, 1) == 20230228
    assert add_months(20241215, 1) == 20250115
    assert add_months(20240229, 12) == 20250228


@pytest.mark.parametrize(
    ("sold", "rate"),
    [
        (20240115, 0.20),  # the same day
        (20240215, 0.20),  # held 01-15 .. 02-14: one month, included
        (20240216, 0.10),  # one month and a day
        (20250115, 0.10),  # held 01-15 .. 2025-01-14: one year, included
        (20250116, 0.0),  # over a year: exempt
    ],
)
def test_the_rate_follows_the_holding_period(sold: int, rate: float) -> None:
    assert tax_rate(20240115, sold) == rate


def test_a_sale_pays_on_its_oldest_lots_first_each_at_its_own_rate() -> None:
    tax = DividendTax()
    tax.bought("a", A, 20240102, 1000)
    tax.bought("a", A, 20240515, 1000)
    # 0.50 cash and 0.1 bonus share (taxed at par, 0.10) per share: 600.00 of income per lot;
    # 0.1 + 0.2 new shares per share: each lot grows to 1,300 shares.
    tax.ex_rights(A, 0.5, 0.1, 0.2)
    # 1,500 sold on 06-10: the first lot whole (held over a month: 10 % of 600.00 = 60.00),
    # then 200 of the second's 1,300 (held under a month: 20 % of 600 x 200/1300 = 18.4615).
    assert tax.sold("a", A, 20240610, 1500) == 78.46
    # The rest of the second lot a year and more after its purchase: exempt.
    assert tax.sold("a", A, 20250601, 1100) == 0.0
    assert tax.paid == {"a": 78.46}


def test_accounts_and_codes_keep_their_own_lots() -> None:
    tax = DividendTax()
    tax.bought("a", A, 20240102, 100)
    tax.bought("b", A, 20240102, 300)
    tax.ex_rights(A, 1.0, 0.0, 0.0)
    tax.ex_rights("000001.SZ", 5.0, 0.0, 0.0)  # nobody holds it
    assert tax.sold("b", A, 20240110, 300) == 60.0  # 20 % of 300.00
    assert tax.sold("a", A, 20240110, 100) == 20.0


def test_the_url_option_is_0_or_1() -> None:
    base = f"backtest://?start=20240102&end=20240109&codes={A}"
    assert not BacktestSpec.from_url(base).dividend_tax
    assert BacktestSpec.from_url(base + "&dividend_tax=1").dividend_tax
    with pytest.raises(InvalidArgument, match="dividend_tax='yes'"):
        BacktestSpec.from_url(base + "&dividend_tax=yes")


def trade_around_the_ex_date(frame: pl.DataFrame, ctx: BarContext) -> None:
    day = ctx.now()
    if day < int(yyyymmdd_to_ms([20240103])[0]):
        ctx.buy(A, 1000, 10.5)  # fills at 01-03's open (10.00)
    elif ctx.sellable(A) and day > int(yyyymmdd_to_ms([20240105])[0]):
        ctx.sell(A, ctx.sellable(A), 9.5)  # placed 01-05's close, fills at 01-08's open


@pytest.mark.parametrize("taxed", [False, True])
async def test_a_backtest_collects_the_tax_when_the_shares_are_sold(
    tmp_path: Path, taxed: bool
) -> None:
    Cache(tmp_path).write_bars("1d", {A: _bars(FLAT)})
    ex = int(yyyymmdd_to_ms([20240105])[0])
    Cache(tmp_path).write_dividends(A, [Dividend(time=ex, interest=0.5)])
    url = f"backtest://?start=20240102&end=20240109&codes={A}&dividend_tax={int(taxed)}"
    result = await run_backtest(url, on_bars=trade_around_the_ex_date, home=tmp_path)
    sells = result.trades.filter(pl.col("side") == "sell")
    assert sells["volume"].to_list() == [1000]
    buys = result.trades.filter(pl.col("side") == "buy")
    cash = result.equity["cash"].to_list()[-1]
    # Bought 01-03, 500.00 of dividends on 01-05, sold 01-08: held under a month, 20 %.
    untaxed = 1_000_000 - buys["amount"][0] - buys["fee"][0] + 500.0
    untaxed += sells["amount"][0] - sells["fee"][0]
    if taxed:
        assert cash == pytest.approx(untaxed - 100.0)
        assert result.meta["dividend_tax_paid"] == "100.00"
    else:
        assert cash == pytest.approx(untaxed)
        assert "dividend_tax_paid" not in result.meta


def test_the_command_collects_it_with_dividend_tax(tmp_path: Path, capsys: Any) -> None:
    Cache(tmp_path).write_bars("1d", {A: _bars(FLAT)})
    ex = int(yyyymmdd_to_ms([20240105])[0])
    Cache(tmp_path).write_dividends(A, [Dividend(time=ex, interest=0.5)])
    script = tmp_path / "s.py"
    script.write_text(  # trade_around_the_ex_date as a script
        "from qmtkit.data.calendar import yyyymmdd_to_ms\n"
        "def on_bars(frame, ctx):\n"
        "    if ctx.now() < int(yyyymmdd_to_ms([20240103])[0]):\n"
        f"        ctx.buy({A!r}, 1000, 10.5)\n"
        f"    elif ctx.sellable({A!r}) and ctx.now() > int(yyyymmdd_to_ms([20240105])[0]):\n"
        f"        ctx.sell({A!r}, ctx.sellable({A!r}), 9.5)\n"
    )
    argv = ["backtest", str(script), "--start", "20240102", "--end", "20240109", "--quiet"]
    argv += ["--codes", A, "--home", str(tmp_path), "--dividend-tax"]
    assert cli_main(argv) == 0
    assert "dividend tax paid: 100.00" in capsys.readouterr().out
