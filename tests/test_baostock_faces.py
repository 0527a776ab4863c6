"""The baostock source through its faces: the xtquant shim, the command line, and the daily
update by whole-market queries."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bsfake import FAKE_DIR, FAST, QK, day_ms, expected_adjusted, fake_module, raw_daily
from qmtkit.backends.base import FetchHistory, Reply, Request
from qmtkit.backends.mock import MockBackend, ok_handler
from qmtkit.cli.data import ProgressBar, add_subcommands
from qmtkit.compat import xtdata
from qmtkit.compat._bridge import bridge
from qmtkit.data.api import MarketData
from qmtkit.data.sources.baostock import BaostockSource
from qmtkit.data.update import download_with_source


@pytest.fixture
def bs(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    monkeypatch.setenv("QMTKIT_BAOSTOCK_RATE", "1000000")
    return fake_module()


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bs: ModuleType) -> Iterator[None]:
    """The xtquant shim over a backend that serves no history, with baostock configured."""

    def handler(req: Request) -> Reply:
        if isinstance(req, FetchHistory):
            raise AssertionError("history must come from the configured source")
        return ok_handler(req)

    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    monkeypatch.setenv("QMTKIT_DATA_SOURCE", "baostock")
    bridge().backend_factory = lambda url: MockBackend(handler)
    xtdata.enable_hello = False
    try:
        yield
    finally:
        xtdata.disconnect()
        bridge().backend_factory = None
        bridge().shutdown()
        xtdata.enable_hello = True


@pytest.mark.parametrize("mode", ["none", "front", "back", "front_ratio", "back_ratio"])
def test_shim_download_and_read_give_the_fakes_prices(
    shim: None, bs: ModuleType, mode: str
) -> None:
    xtdata.download_history_data("600000.SH", "1d", "20230101", "20241231")
    frames = xtdata.get_market_data_ex(
        ["close", "open"], ["600000.SH"], "1d", "20230101", "20241231", dividend_type=mode
    )
    df = frames["600000.SH"]
    want = (
        raw_daily(bs, "sh.600000") if mode == "none" else expected_adjusted(bs, "sh.600000", mode)
    )
    if mode == "none":
        assert df["close"].tolist() == want["close"].tolist()
    else:
        np.testing.assert_allclose(df["close"].to_numpy(), want["close"], rtol=1e-12)
    assert df.index[0] == "20230102" and len(df) == len(want["close"])


def test_shim_downloads_code_by_code_over_one_login(shim: None, bs: ModuleType) -> None:
    for code in QK.values():
        xtdata.download_history_data(code, "1d", "20230101", "20241231")
    assert bs.SERVER.logins == 1 and bs.SERVER.calls["query_stock_basic"] == 1
    frames = xtdata.get_market_data_ex(["close"], list(QK.values()), "1d", "20230101", "20241231")
    assert frames["688001.SH"]["close"].tolist() == raw_daily(bs, "sh.688001")["close"].tolist()
    xtdata.disconnect()
    assert bs.common.context.default_socket.closed.is_set()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_downloads_every_listed_stock(
    tmp_path: Path, bs: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(
        ["download", "--all", "--source", "baostock", "--home", str(tmp_path), "--end", "20241231"]
    )
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert "fetched" in out.out and "codes/s ETA" in out.err
    md = MarketData(ok_handler_async, tmp_path)
    assert md.cache.codes("1d") == sorted(QK.values())
    listed = md.reference.instruments("baostock")
    assert listed is not None and len(listed) == 3
    days = md.reference.trading_days("baostock")
    assert days is not None and days.days[0] == 20230102 and 20241001 not in days.days


async def ok_handler_async(req: Request) -> Reply:
    return ok_handler(req)


def test_cli_refuses_one_minute_bars_before_any_call(
    tmp_path: Path, bs: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["download", "--source", "baostock", "600000.SH", "--period", "1m",
                  "--home", str(tmp_path)])  # fmt: skip
    assert args.func(args) == 2
    assert "serves 1d, 5m, 15m, 30m, 1h bars" in capsys.readouterr().err
    assert bs.SERVER.calls == {}


def test_cli_refuses_all_without_a_source(tmp_path: Path) -> None:
    args = parse(["download", "--all", "--home", str(tmp_path), "--source", "backend"])
    assert args.func(args) == 2


async def test_daily_update_uses_one_whole_market_query_per_day(
    tmp_path: Path, bs: ModuleType
) -> None:
    md = MarketData(ok_handler_async, tmp_path)
    codes = sorted(QK.values())
    await md.download(
        codes, "1d", end="20241224", source="baostock", source_options={**FAST, "module": bs}
    )
    asked = len(bs.SERVER.asked)
    later = MarketData(ok_handler_async, tmp_path, now_ms=lambda: day_ms("2025-01-06"))
    src = BaostockSource(**FAST, module=bs, now_ms=lambda: day_ms("2025-01-06"))
    try:
        await download_with_source(later, src, codes, "1d")
    finally:
        await src.aclose()
    new = [m for m, _ in bs.SERVER.asked[asked:]]
    assert "query_history_k_data_plus" not in new
    # 25th..27th, 30th, 31st, then 2 January answers empty (not published): the update stops
    assert new.count("query_daily_history_k_AStock") == 6
    for bs_code, code in QK.items():
        got = md.read_bars(code, "1d")
        assert got["close"].to_list() == raw_daily(bs, bs_code)["close"].tolist()


async def test_without_whole_market_queries_the_update_goes_code_by_code(
    tmp_path: Path, bs: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(bs, "query_daily_history_k_AStock")  # a package older than 0.9.4
    md = MarketData(ok_handler_async, tmp_path)
    codes = sorted(QK.values())
    await md.download(
        codes, "1d", end="20241224", source="baostock", source_options={**FAST, "module": bs}
    )
    asked = len(bs.SERVER.asked)
    later = MarketData(ok_handler_async, tmp_path, now_ms=lambda: day_ms("2025-01-06"))
    src = BaostockSource(**FAST, module=bs, now_ms=lambda: day_ms("2025-01-06"))
    try:
        await download_with_source(later, src, codes, "1d")
    finally:
        await src.aclose()
    bars_asked = {c for m, c in bs.SERVER.asked[asked:] if m == "query_history_k_data_plus"}
    assert bars_asked == set(QK)
    assert later.read_bars("600000.SH", "1d")["close"].to_list() == (
        raw_daily(bs, "sh.600000")["close"].tolist()
    )


def test_progress_bar_shows_rate_and_time_left() -> None:
    ticks = iter([0.0, 2.0])
    buf = io.StringIO()
    bar = ProgressBar("dl", buf, width=4, rate=True, clock=lambda: next(ticks))
    bar(10, 40, "600000.SH")
    assert "5.0 codes/s ETA 0:00:06 [#...] 10/40 600000.SH" in buf.getvalue()
