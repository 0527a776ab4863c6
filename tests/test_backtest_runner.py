"""run_backtest's two forms and the ``qmtkit backtest`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from qmtkit.backends.base import OpenAccount
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.cli import main as cli_main
from qmtkit.client import Account, Client
from qmtkit.data.cache import Cache
from qmtkit.errors import BackendError, InvalidArgument
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars

URL = f"backtest://?start=20240102&end=20240109&codes={A},{B}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
    return tmp_path


async def per_bar(qk: Client, account: Account) -> None:
    async with qk.subscribe([A, B], "1d") as sub:
        async for batch in sub:
            for bar in batch:
                if bar.stock_code == A and (await account.position(A)) is None:
                    await account.buy(A, 500, round(bar.close * 1.05, 2))


def cross_sectional(frame: pl.DataFrame, ctx: BarContext) -> None:
    row = frame.filter(pl.col("code") == A)
    # Bought at the next open: one order only, like per_bar's position check after its fill.
    if row.height and ctx.position(A) == 0 and not ctx.open_orders(A):
        ctx.buy(A, 500, round(float(row["close"][0]) * 1.05, 2))


async def test_a_cross_sectional_callback_sees_every_code_of_a_timestamp_in_one_frame(
    home: Path,
) -> None:
    frames: list[pl.DataFrame] = []

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        frames.append(frame)

    await run_backtest(URL, on_bars=on_bars, home=home)
    assert len(frames) == 6
    assert all(f["code"].cast(pl.String).to_list() == [A, B] for f in frames)
    assert frames[0]["close"].to_list() == [10.4, 10.0]


async def test_both_forms_give_the_same_trades(home: Path) -> None:
    slow = await run_backtest(URL, per_bar, home=home)
    fast = await run_backtest(URL, on_bars=cross_sectional, home=home)
    assert slow.trades.height == 1
    assert slow.trades.drop("order_id").equals(fast.trades.drop("order_id"))
    assert slow.equity.equals(fast.equity)


async def test_run_backtest_needs_something_to_run(home: Path) -> None:
    with pytest.raises(InvalidArgument, match="strategy"):
        await run_backtest(URL, home=home)


def test_the_command_prints_the_same_digest_for_the_same_inputs(
    home: Path, tmp_path: Path, capsys: Any
) -> None:
    script = tmp_path / "strategy.py"
    script.write_text(
        "async def strategy(qk, account):\n"
        f"    async with qk.subscribe(['{A}'], '1d') as sub:\n"
        "        async for batch in sub:\n"
        f"            await account.buy('{A}', 100, round(batch[0].close * 1.05, 2))\n"
    )
    argv = ["backtest", str(script), "--start", "20240102", "--end", "20240109"]
    argv += ["--codes", f"{A},{B}", "--home", str(home)]
    assert cli_main(argv) == 0
    first = capsys.readouterr()
    assert cli_main(argv) == 0
    second = capsys.readouterr()
    digest = [line for line in first.out.splitlines() if line.startswith("digest: ")]
    assert len(digest) == 1 and len(digest[0]) == len("digest: ") + 64
    assert digest[0] in second.out
    # Six orders, one per close; the last is for the session after the end and never fills.
    assert "6 days, 5 trades" in first.out
    assert "bars/s" in first.err and "2024-01-09" in first.err


def test_the_command_refuses_a_script_without_a_strategy(
    home: Path, tmp_path: Path, capsys: Any
) -> None:
    script = tmp_path / "empty.py"
    script.write_text("x = 1\n")
    assert cli_main(["backtest", str(script), "--start", "20240102", "--home", str(home)]) == 2
    assert "neither strategy" in capsys.readouterr().err


def test_the_command_refuses_a_bad_day(home: Path, tmp_path: Path, capsys: Any) -> None:
    script = tmp_path / "s.py"
    script.write_text("async def strategy(qk, account):\n    pass\n")
    assert cli_main(["backtest", str(script), "--start", "2024-01-02", "--home", str(home)]) == 2
    assert "YYYYMMDD" in capsys.readouterr().err


async def test_the_fast_form_alone_keeps_no_report_log_and_still_records_its_trades(
    home: Path,
) -> None:
    seen: list[Any] = []
    result = await run_backtest(URL, on_bars=cross_sectional, home=home, backend_hook=seen.append)
    accounts = seen[0].accounts
    assert accounts.keep_log is False
    assert accounts.reports == {}
    assert accounts.last_seq["backtest"] == accounts.report_count
    assert result.trades["code"].to_list() == [A]


async def test_an_account_with_unkept_reports_cannot_be_opened_for_a_replay(home: Path) -> None:
    refusals: list[str] = []

    async def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        cross_sectional(frame, ctx)
        if not refusals:
            try:
                await backend.request(OpenAccount("backtest", after_seq=0))
            except BackendError as e:
                refusals.append(str(e))

    def keep(b: Any) -> None:
        nonlocal backend
        backend = b

    backend: Any = None
    await run_backtest(URL, on_bars=on_bars, home=home, backend_hook=keep)
    assert len(refusals) == 1
    assert "were not kept" in refusals[0]
