"""The baostock source through the data API: prices, periods, adjustment, reference data.

Everything runs against the fake baostock package (tests/fake_baostock); expected values are
read from the fake's rows or computed from its events in tests/bsfake.py.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from bsfake import FAST, QK, baostock_adjusted, day_ms, expected_adjusted, fake_module, raw_daily
from qmtkit.backends.base import FetchHistory, Reply, Request
from qmtkit.data.api import MarketData
from qmtkit.data.sources import make_source, source_name
from qmtkit.data.sources.baostock import BaostockSource
from qmtkit.errors import InvalidArgument, InvalidPeriod, Unsupported

END = "20241231"


@pytest.fixture
def bs() -> ModuleType:
    return fake_module()


async def no_backend(req: Request) -> Reply:
    raise AssertionError(f"the backend was asked for {req!r}; the source should answer")


def data_api(tmp_path: Path) -> MarketData:
    return MarketData(no_backend, tmp_path)


async def download(md: MarketData, bs: ModuleType, codes: Any, period: str = "1d") -> int:
    return await md.download(
        codes, period, end=END, source="baostock", source_options={**FAST, "module": bs}
    )


async def test_daily_bars_are_the_fakes_rows_exactly(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, list(QK.values()))
    for bs_code, code in QK.items():
        want = raw_daily(bs, bs_code)
        got = md.read_bars(code, "1d")
        for name in ("open", "high", "low", "close", "preClose", "volume", "suspendFlag"):
            assert got[name].to_list() == want[name].tolist(), (code, name)
        assert got["time"].dt.epoch("ms").to_list() == want["time"].tolist()


async def test_suspended_days_carry_the_suspend_flag(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH")
    got = md.read_bars("600000.SH", "1d")
    flagged = got.filter(got["suspendFlag"] == 1)
    assert flagged.height == 4
    assert (flagged["volume"] == 0).all()


@pytest.mark.parametrize("mode", ["front", "back", "front_ratio", "back_ratio"])
async def test_every_adjust_mode_matches_the_events(
    tmp_path: Path, bs: ModuleType, mode: str
) -> None:
    md = data_api(tmp_path)
    await download(md, bs, list(QK.values()))
    for bs_code, code in QK.items():
        want = expected_adjusted(bs, bs_code, mode)
        got = await md.bars(code, "1d", adjust=mode)
        for name, values in want.items():
            np.testing.assert_allclose(got[name].to_numpy(), values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("mode", "flag"), [("front_ratio", "2"), ("back_ratio", "1")])
async def test_ratio_modes_equal_baostocks_own_adjusted_bars(
    tmp_path: Path, bs: ModuleType, mode: str, flag: str
) -> None:
    # baostock's documentation: adjustflag '2' is front (前复权), '1' back (后复权), by ratio.
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH")
    want = baostock_adjusted(bs, "sh.600000", flag)
    got = await md.bars("600000.SH", "1d", adjust=mode)
    np.testing.assert_allclose(got["close"].to_numpy(), want["close"], rtol=1e-6)


async def test_dividends_come_from_factors_and_details(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH")
    records = md.cache.read_dividends("600000.SH")
    assert records is not None
    events = bs.SERVER.codes["sh.600000"].events
    assert [r["time"] for r in records] == [day_ms(e.date) for e in events]
    cash_event = next(r for r, e in zip(records, events, strict=True) if e.cash and not e.bonus)
    assert cash_event["interest"] == pytest.approx(events[0].cash)
    rights = next(r for r, e in zip(records, events, strict=True) if not e.listed)
    e = next(e for e in events if not e.listed)
    assert rights["stockGift"] == pytest.approx(e.close_before / e.ref - 1.0, rel=1e-5)


async def test_minute_bars_are_stored_as_served(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH", "15m")
    assert md.cache.codes("15m") == ["600000.SH"]
    rows = bs.SERVER.codes["sh.600000"].minute["15"]
    got = md.read_bars("600000.SH", "15m")
    assert got["close"].to_list() == [float(r["close"]) for r in rows]
    assert got.height == len(rows) == 16 * 5


async def test_coarser_minutes_are_derived_from_stored_finer_ones(
    tmp_path: Path, bs: ModuleType
) -> None:
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH", "5m")
    five = md.read_bars("600000.SH", "5m")
    thirty = md.read_bars("600000.SH", "30m")
    assert thirty.height == five.height // 6
    assert thirty["high"][0] == five["high"][:6].max()
    assert thirty["close"][-1] == five["close"][-1]


async def test_no_one_minute_bars_are_invented(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH", "5m")
    assert md.read_bars("600000.SH", "1m").height == 0
    calls = dict(bs.SERVER.calls)
    with pytest.raises(InvalidPeriod, match="baostock source serves 1d, 5m"):
        await download(md, bs, "600000.SH", "1m")
    assert bs.SERVER.calls == calls


async def test_st_days_are_recorded_beside_the_bars(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, ["600000.SH", "000001.SZ"])
    st = md.reference.st_days("baostock", "600000.SH")
    assert st is not None
    want = [day_ms(r["date"]) for r in bs.SERVER.codes["sh.600000"].daily if r["isST"] == "1"]
    assert st.days == want and len(want) == 60
    clean = md.reference.st_days("baostock", "000001.SZ")
    assert clean is not None and clean.days == []
    listed = md.reference.instruments("baostock")
    assert listed is not None and {i.stock_code for i in listed} == set(QK.values())


async def test_instruments_give_names_and_listing_dates(bs: ModuleType) -> None:
    src = BaostockSource(**FAST, module=bs)
    try:
        items = await src.instruments(["600000.SH"])
        codes = await src.stock_codes()
    finally:
        await src.aclose()
    (item,) = items
    assert item.stock_code == "600000.SH" and item.InstrumentName == "*STFake0"
    assert item.OpenDate == "20230102" and item.ExpireDate == "99999999" and item.is_st
    assert codes == sorted(QK.values())


async def test_trading_days_are_the_open_days(bs: ModuleType) -> None:
    src = BaostockSource(**FAST, module=bs)
    try:
        days = await src.trading_days("2024-09-28", "2024-10-09")
    finally:
        await src.aclose()
    assert days == [20240930, 20241007, 20241008, 20241009]


async def test_a_fetch_asks_only_inside_the_codes_listed_life(bs: ModuleType) -> None:
    src = BaostockSource(**FAST, module=bs)
    try:
        reply = await src.request(FetchHistory("600000.SH", "1d", 0, day_ms("2024-12-31")))
    finally:
        await src.aclose()
    assert reply.rows == len(bs.SERVER.codes["sh.600000"].daily)
    assert bs.SERVER.calls["query_history_k_data_plus"] == 1


async def test_second_download_fetches_nothing_new(tmp_path: Path, bs: ModuleType) -> None:
    md = data_api(tmp_path)
    await download(md, bs, list(QK.values()))
    before = bs.SERVER.calls["query_history_k_data_plus"]
    assert await download(md, bs, list(QK.values())) == 0
    assert bs.SERVER.calls["query_history_k_data_plus"] == before


def test_the_source_is_chosen_by_name_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QMTKIT_DATA_SOURCE", raising=False)
    assert source_name(None) == "backend"
    monkeypatch.setenv("QMTKIT_DATA_SOURCE", "baostock")
    assert source_name(None) == "baostock"
    monkeypatch.setenv("QMTKIT_DATA_SOURCE", "tdx")
    with pytest.raises(InvalidArgument, match=r"'tdx' \(from \$QMTKIT_DATA_SOURCE\)"):
        source_name(None)
    with pytest.raises(InvalidArgument, match="unknown data source 'akshare'"):
        source_name("akshare")


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "baostock", None)
    src = make_source("baostock", **FAST)
    assert isinstance(src, BaostockSource)
    with pytest.raises(Unsupported, match=r"pip install 'qmtkit\[baostock\]'"):
        _ = src.session.module


def test_bad_environment_numbers_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMTKIT_BAOSTOCK_RATE", "fast")
    with pytest.raises(InvalidArgument, match=r"\$QMTKIT_BAOSTOCK_RATE is 'fast'"):
        BaostockSource()


async def test_the_sources_trading_days_become_the_venue_calendar(
    tmp_path: Path, bs: ModuleType
) -> None:
    from qmtkit.data.calendar import is_trading_day

    # The bundled table closes 2024-02-12 (Spring Festival); the fake's exchange trades then.
    assert not is_trading_day("SH", 20240212, home=tmp_path)
    md = data_api(tmp_path)
    await download(md, bs, "600000.SH")
    assert is_trading_day("SH", 20240212, home=tmp_path)
    assert not is_trading_day("SH", 20241002, home=tmp_path)
    stored = md.reference.trading_days("baostock")
    assert stored is not None and 20240212 in stored.days


def test_daily_rows_without_the_optional_fields_still_parse() -> None:
    from qmtkit.data.sources.bsrows import daily_columns

    fields = ["date", "code", "open", "high", "low", "close", "volume"]
    cols = daily_columns(fields, [["2024-01-02", "sh.600000", "1", "2", "0.5", "1.5", "1250"]])
    assert cols["close"].tolist() == [1.5] and cols["volume"].tolist() == [12]
    assert cols["suspendFlag"].tolist() == [0] and cols["isST"].tolist() == [0]
    assert cols["time"].tolist() == [day_ms("2024-01-02")]


def test_daily_rows_without_prices_are_refused_by_name() -> None:
    from qmtkit.data.sources.bsrows import daily_columns
    from qmtkit.errors import BackendError

    with pytest.raises(BackendError, match="lacks field 'close'"):
        daily_columns(
            ["date", "open", "high", "low", "volume"], [["2024-01-02", "1", "1", "1", "1"]]
        )
