"""xtdata over the client: return shapes, downloads, quotes and reference data.

A scripted data venue (MockBackend) serves deterministic bars for two listed codes, so the
expected numbers are computed here from the same formula.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from qmtkit.backends.base import (
    Dividend,
    Dividends,
    FetchDividends,
    FetchHistory,
    GetSectorMembers,
    GetSnapshot,
    HistoryColumns,
    Instruments,
    ListInstruments,
    ListSectors,
    Names,
    Ok,
    Reply,
    Request,
    Snapshots,
    SubscribeQuotes,
)
from qmtkit.backends.mock import MockBackend
from qmtkit.compat import xtdata
from qmtkit.compat._bridge import bridge
from qmtkit.data.calendar import trading_days
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import InvalidArgument, InvalidCode, InvalidPeriod, Unsupported
from qmtkit.models import Bar, InstrumentDetail, QuoteBatch, Tick

LISTED = {"600000.SH": ("浦发银行", 10.0), "000001.SZ": ("平安银行", 12.0)}
DAYS = trading_days("SH", 20240102, 20240229)  # ms at 00:00 Beijing
MINUTE_DAY = int(DAYS[-1])
FIXTURE = Path("/work/shared/fixtures/miniqmt-datadir")


def daily_close(code: str, i: int) -> float:
    return round(LISTED[code][1] + 0.01 * i, 2)


def minute_times(day_ms: int) -> np.ndarray:
    # 09:30 (the auction bar), 09:31..11:30, 13:01..15:00
    minutes = [570, *range(571, 691), *range(781, 901)]
    return np.array([day_ms + m * 60_000 for m in minutes], dtype="<i8")


class DataVenue:
    def __init__(self) -> None:
        self.backend = MockBackend(self.handle)
        self.subs: dict[int, SubscribeQuotes] = {}
        self.fetches: list[FetchHistory] = []

    def _bars(self, code: str, period: str) -> dict[str, np.ndarray]:
        if code not in LISTED:
            t = np.zeros(0, dtype="<i8")
        elif period == "1d":
            t = DAYS.astype("<i8")
        else:
            t = minute_times(MINUTE_DAY)
        n = len(t)
        close = (
            np.array([daily_close(code, i) for i in range(n)]) if code in LISTED else np.zeros(0)
        )
        cols = {
            "time": t,
            "open": close - 0.05,
            "high": close + 0.1,
            "low": close - 0.1,
            "close": close,
            "volume": np.arange(n, dtype="<i8") * 100 + 1000,
            "amount": close * 1000,
            "preClose": close - 0.01,
            "suspendFlag": np.zeros(n, dtype="i1"),
        }
        return {k: np.asarray(v, dtype=BAR_DTYPES[k]) for k, v in cols.items()}

    def handle(self, req: Request) -> Reply:
        if isinstance(req, FetchHistory):
            self.fetches.append(req)
            cols = self._bars(req.code, req.period)
            t = cols["time"]
            keep = (t >= req.start) & ((t <= req.end) if req.end else True)
            cols = {k: v[keep] for k, v in cols.items()}
            return HistoryColumns(
                req.code, req.period, int(keep.sum()), {k: v.tobytes() for k, v in cols.items()}
            )
        if isinstance(req, FetchDividends):
            return Dividends(req.code, [Dividend(time=int(DAYS[10]), interest=0.5)])
        if isinstance(req, ListInstruments):
            codes = req.codes if req.codes is not None else list(LISTED)
            return Instruments(
                [
                    InstrumentDetail(
                        ExchangeID=c[-2:],
                        InstrumentID=c[:6],
                        InstrumentName=LISTED[c][0],
                        PreClose=LISTED[c][1],
                        UpStopPrice=round(LISTED[c][1] * 1.1, 2),
                        DownStopPrice=round(LISTED[c][1] * 0.9, 2),
                        OpenDate="19991110",
                    )
                    for c in codes
                    if c in LISTED
                ]
            )
        if isinstance(req, GetSnapshot):
            return Snapshots([tick(c, 1) for c in req.codes if c in LISTED])
        if isinstance(req, ListSectors):
            return Names(["沪深A股", "上证A股"])
        if isinstance(req, GetSectorMembers):
            if req.sector == "沪深A股":
                return Names(list(LISTED))
            if req.sector == "上证A股":
                return Names(["600000.SH"])
            raise InvalidArgument(f"unknown sector {req.sector!r}")
        if isinstance(req, SubscribeQuotes):
            self.subs[req.sub_id] = req
        return Ok()

    def push(self, sub_codes: list[str], items: list[Any], period: str = "tick") -> None:
        """Push a batch to the subscription of ``sub_codes`` (from the test thread)."""

        async def go() -> None:
            for sub_id, sub in self.subs.items():
                if sub.codes == sub_codes and sub.period == period:
                    self.backend.push_quotes(QuoteBatch(sub_id, period, items))

        bridge().call(go)


def tick(code: str, k: int) -> Tick:
    p = LISTED[code][1] + 0.01 * k
    return Tick(
        stock_code=code, time=1_704_159_000_000 + k * 3000, lastPrice=p, open=p, high=p,
        low=p, lastClose=LISTED[code][1], amount=1e6 * k, volume=100 * k,
        askPrice=[p + 0.01] * 5, bidPrice=[p - 0.01] * 5, askVol=[100] * 5, bidVol=[200] * 5,
    )  # fmt: skip


@pytest.fixture
def venue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataVenue]:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    v = DataVenue()
    bridge().backend_factory = lambda url: v.backend
    xtdata.enable_hello = False
    try:
        yield v
    finally:
        xtdata.disconnect()
        bridge().backend_factory = None
        bridge().shutdown()
        xtdata.enable_hello = True


# --------------------------------------------------------------------------- K-lines


def test_get_market_data_ex_after_download_has_xtquants_shape(venue: DataVenue) -> None:
    for code in LISTED:
        xtdata.download_history_data(code, period="1d", incrementally=True)
    data = xtdata.get_market_data_ex([], list(LISTED), period="1d", count=-1)
    assert list(data) == list(LISTED)
    df = data["600000.SH"]
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == [
        "time", "open", "high", "low", "close", "volume", "amount",
        "settelementPrice", "openInterest", "preClose", "suspendFlag",
    ]  # fmt: skip
    assert len(df) == len(DAYS)
    assert df.index[0] == "20240102" and df.index[-1] == "20240229"
    assert df["time"].iloc[0] == int(DAYS[0])
    assert df["close"].tolist() == [daily_close("600000.SH", i) for i in range(len(DAYS))]
    assert data["000001.SZ"]["close"].iloc[-1] == daily_close("000001.SZ", len(DAYS) - 1)


def test_count_start_and_end_select_bars(venue: DataVenue) -> None:
    xtdata.download_history_data("600000.SH", "1d")
    last5 = xtdata.get_market_data_ex(["close"], ["600000.SH"], "1d", count=5)["600000.SH"]
    assert list(last5.columns) == ["close"]
    assert list(last5.index) == ["20240223", "20240226", "20240227", "20240228", "20240229"]
    jan = xtdata.get_market_data_ex(["close"], ["600000.SH"], "1d", "20240110", "20240112")
    assert list(jan["600000.SH"].index) == ["20240110", "20240111", "20240112"]


def test_data_is_read_locally_only_after_download(venue: DataVenue) -> None:
    data = xtdata.get_market_data_ex([], ["600000.SH"], "1d")
    assert data["600000.SH"].empty
    assert venue.fetches == []


def test_incremental_download_asks_only_for_what_is_missing(venue: DataVenue) -> None:
    xtdata.download_history_data("600000.SH", "1d", incrementally=True)
    n = len(venue.fetches)
    xtdata.download_history_data("600000.SH", "1d", "20240105", "20240110", incrementally=True)
    assert len(venue.fetches) == n


def test_unknown_but_valid_code_gets_an_empty_frame(venue: DataVenue) -> None:
    xtdata.download_history_data2(["600000.SH", "600004.SH"], "1d")
    data = xtdata.get_market_data_ex(["close"], ["600000.SH", "600004.SH"], "1d")
    assert len(data["600000.SH"]) == len(DAYS)
    assert data["600004.SH"].empty and list(data["600004.SH"].columns) == ["close"]


def test_get_market_data_is_field_to_frame_of_codes_by_times(venue: DataVenue) -> None:
    xtdata.download_history_data2(list(LISTED), "1d")
    data = xtdata.get_market_data(
        ["close", "volume"], ["000001.SZ", "600000.SH", "600004.SH"], "1d", count=3
    )
    assert set(data) == {"close", "volume"}
    close = data["close"]
    assert list(close.index) == ["000001.SZ", "600000.SH", "600004.SH"]
    assert list(close.columns) == ["20240227", "20240228", "20240229"]
    assert close.loc["600000.SH", "20240229"] == daily_close("600000.SH", len(DAYS) - 1)
    assert close.loc["600004.SH"].isna().all()


def test_minute_bars_are_labelled_with_seconds_and_resample(venue: DataVenue) -> None:
    xtdata.download_history_data("600000.SH", "1m")
    m1 = xtdata.get_market_data_ex(["close"], ["600000.SH"], "1m")["600000.SH"]
    assert len(m1) == 241
    assert m1.index[0] == "20240229093000" and m1.index[-1] == "20240229150000"
    m5 = xtdata.get_market_data_ex(["close"], ["600000.SH"], "5m")["600000.SH"]
    assert m5.index[0].endswith("093500") and m5.index[-1] == "20240229150000"
    assert m5["close"].iloc[-1] == m1["close"].iloc[-1]


def test_front_adjustment_uses_dividends(venue: DataVenue) -> None:
    xtdata.download_history_data("600000.SH", "1d")
    raw = xtdata.get_market_data_ex(["close"], ["600000.SH"], "1d")["600000.SH"]["close"]
    adj = xtdata.get_market_data_ex(["close"], ["600000.SH"], "1d", dividend_type="front")[
        "600000.SH"
    ]["close"]
    assert adj.iloc[-1] == raw.iloc[-1]
    assert adj.iloc[0] < raw.iloc[0]


def test_bad_arguments_raise_naming_the_value(venue: DataVenue) -> None:
    with pytest.raises(InvalidCode, match=r"'60000\.SH'"):
        xtdata.get_market_data_ex([], ["60000.SH"])
    with pytest.raises(InvalidPeriod, match="'2d'"):
        xtdata.get_market_data_ex([], ["600000.SH"], period="2d")
    with pytest.raises(InvalidArgument, match="'pe'"):
        xtdata.get_market_data_ex(["pe"], ["600000.SH"])
    with pytest.raises(InvalidArgument, match="'middle'"):
        xtdata.get_market_data_ex([], ["600000.SH"], dividend_type="middle")
    with pytest.raises(InvalidArgument, match="-2"):
        xtdata.get_market_data_ex([], ["600000.SH"], count=-2)


def test_download_progress_reaches_the_callback_before_returning(venue: DataVenue) -> None:
    seen: list[tuple[int, int, str, str]] = []

    def on_progress(d: dict[str, Any]) -> None:
        seen.append((d["finished"], d["total"], d["stockcode"], threading.current_thread().name))

    assert xtdata.download_history_data2(list(LISTED), "1d", callback=on_progress) == {}
    assert [s[:3] for s in seen] == [(1, 2, "600000.SH"), (2, 2, "000001.SZ")]
    assert seen[0][3] != threading.current_thread().name


def test_get_local_data_reads_a_miniqmt_datadir(venue: DataVenue) -> None:
    if not FIXTURE.is_dir():
        pytest.skip("no MiniQMT datadir fixture")
    data = xtdata.get_local_data([], ["000001.SH"], "1d", count=3, data_dir=str(FIXTURE))
    df = data["000001.SH"]
    assert list(df.index) == ["20250623", "20250624", "20250625"]
    assert (df["high"] >= df["low"]).all() and df["close"].iloc[-1] > 1000
    m1 = xtdata.get_local_data(["close"], ["000001.SH"], "1m", count=241, data_dir=str(FIXTURE))
    assert m1["000001.SH"].index[-1] == "20250625150000"


# --------------------------------------------------------------------------- quotes


def test_get_full_tick_returns_quote_dicts(venue: DataVenue) -> None:
    ticks = xtdata.get_full_tick(["600000.SH", "600004.SH"])
    assert list(ticks) == ["600000.SH"]
    t = ticks["600000.SH"]
    assert t["lastPrice"] == pytest.approx(10.01) and len(t["askPrice"]) == 5
    assert "stock_code" not in t
    assert set(xtdata.get_full_tick(["SZ"])) == {"000001.SZ"}


def test_subscribe_quote_calls_back_with_code_to_records_off_thread(venue: DataVenue) -> None:
    got: list[tuple[dict[str, Any], str]] = []
    ready = threading.Event()

    def on_data(datas: dict[str, Any]) -> None:
        got.append((datas, threading.current_thread().name))
        ready.set()

    seq = xtdata.subscribe_quote("600000.SH", period="tick", count=0, callback=on_data)
    assert seq > 0
    venue.push(["600000.SH"], [tick("600000.SH", 1), tick("600000.SH", 2)])
    assert ready.wait(5)
    datas, thread = got[0]
    assert list(datas) == ["600000.SH"]
    assert [r["lastPrice"] for r in datas["600000.SH"]] == [
        pytest.approx(10.01),
        pytest.approx(10.02),
    ]
    assert thread != threading.current_thread().name
    xtdata.unsubscribe_quote(seq)


def test_subscribe_quote_with_count_downloads_history_first(venue: DataVenue) -> None:
    got: list[dict[str, Any]] = []
    seq = xtdata.subscribe_quote("600000.SH", period="1d", count=-1, callback=got.append)
    assert seq > 0
    assert len(xtdata.get_market_data_ex([], ["600000.SH"], "1d")["600000.SH"]) == len(DAYS)
    bar = Bar(stock_code="600000.SH", period="1d", time=int(DAYS[-1]), open=1, high=2, low=0.5,
              close=1.5, volume=10, amount=15.0)  # fmt: skip
    venue.push(["600000.SH"], [bar], period="1d")
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got and got[0]["600000.SH"][0]["close"] == 1.5


def test_subscribe_whole_quote_filters_by_market(venue: DataVenue) -> None:
    got: list[dict[str, Any]] = []
    ready = threading.Event()

    def on_data(datas: dict[str, Any]) -> None:
        got.append(datas)
        ready.set()

    seq = xtdata.subscribe_whole_quote(["SZ"], on_data)
    venue.push([], [tick("600000.SH", 1), tick("000001.SZ", 1), tick("000001.SZ", 2)])
    assert ready.wait(5)
    assert list(got[0]) == ["000001.SZ"]
    assert got[0]["000001.SZ"]["lastPrice"] == pytest.approx(12.02)
    xtdata.unsubscribe_quote(seq)


def test_unsubscribe_stops_callbacks(venue: DataVenue) -> None:
    got: list[Any] = []
    seq = xtdata.subscribe_quote("600000.SH", "tick", callback=got.append)
    xtdata.unsubscribe_quote(seq)
    venue.push(["600000.SH"], [tick("600000.SH", 1)])
    xtdata._disp().flush(5)
    assert got == []


# --------------------------------------------------------------------------- reference data


def test_instrument_detail_has_xtquants_keys_and_none_for_unknown(venue: DataVenue) -> None:
    d = xtdata.get_instrument_detail("600000.SH")
    assert d is not None
    assert d["InstrumentName"] == "浦发银行" and d["ExchangeID"] == "SH"
    assert d["InstrumentID"] == "600000" and d["UpStopPrice"] == 11.0
    assert "ProductTradeQuota" in d and "board" not in d
    assert "board" in (xtdata.get_instrument_detail("600000.SH", True) or {})
    assert xtdata.get_instrument_detail("600004.SH") is None
    assert xtdata.get_instrument_detail("nonsense") is None
    details = xtdata.get_instrument_detail_list(["600000.SH", "600004.SH"])
    assert details["600004.SH"] is None and details["600000.SH"]["PreClose"] == 10.0  # type: ignore[index]


def test_instrument_type(venue: DataVenue) -> None:
    assert xtdata.get_instrument_type("600000.SH") == {"stock": True}
    assert xtdata.get_instrument_type("600000.SH", ["index", "stock"]) == {
        "index": False,
        "stock": True,
    }
    assert xtdata.get_instrument_type("600004.SH") == {}


def test_sectors(venue: DataVenue) -> None:
    assert xtdata.get_sector_list() == ["沪深A股", "上证A股"]
    assert xtdata.get_stock_list_in_sector("上证A股") == ["600000.SH"]
    assert xtdata.get_stock_list_in_sector("no such sector") == []
    xtdata.download_sector_data()


def test_trading_calendar_functions(venue: DataVenue) -> None:
    days = xtdata.get_trading_dates("SH", "20240101", "20240110")
    assert days[0] == int(DAYS[0]) and len(days) == 7
    assert xtdata.get_trading_dates("SH", "", "20240110", 2) == days[-2:]
    cal = xtdata.get_trading_calendar("SH", "20240201", "20240220")
    assert "20240209" not in cal and "20240208" in cal and "20240219" in cal
    assert "20240101" in xtdata.get_holidays()
    with pytest.raises(InvalidArgument, match="'BJ'"):
        xtdata.get_trading_calendar("BJ")


def test_divid_factors_frame(venue: DataVenue) -> None:
    df = xtdata.get_divid_factors("600000.SH")
    assert list(df.index) == ["20240116"] and df["interest"].iloc[0] == 0.5


def test_financial_data_is_the_empty_shape(venue: DataVenue) -> None:
    xtdata.download_financial_data(["600000.SH"])
    data = xtdata.get_financial_data(["600000.SH"], ["Balance", "Income"])
    assert list(data) == ["600000.SH"] and list(data["600000.SH"]) == ["Balance", "Income"]
    assert data["600000.SH"]["Balance"].empty
    progress: list[dict[str, Any]] = []
    xtdata.download_financial_data2(["600000.SH"], [], callback=progress.append)
    assert progress[-1] == {"total": 8, "finished": 8}


def test_unsupported_functions_name_themselves(venue: DataVenue) -> None:
    with pytest.raises(Unsupported, match=r"get_option_list\(\)"):
        xtdata.get_option_list("510050.SH", "20240101")
    with pytest.raises(Unsupported, match="get_l2_quote"):
        xtdata.get_l2_quote()


def test_connect_gives_a_connection_and_data_dir(venue: DataVenue, tmp_path: Path) -> None:
    conn = xtdata.connect()
    assert conn.is_connected()
    assert xtdata.get_data_dir().startswith(str(tmp_path))
    xtdata.data_dir = "/somewhere/datadir"
    try:
        assert xtdata.get_data_dir() == "/somewhere/datadir"
    finally:
        xtdata.data_dir = None


def test_hello_banner_goes_to_stdout_unless_disabled(
    venue: DataVenue, capsys: pytest.CaptureFixture[str]
) -> None:
    xtdata.enable_hello = True
    xtdata.connect()
    assert "xtdata connected" in capsys.readouterr().out


# --------------------------------------------------------------------------- time helpers


def test_timetags_roundtrip_in_local_time() -> None:
    tag = xtdata.datetime_to_timetag("20240102093000")
    assert tag == time.mktime(time.strptime("20240102093000", "%Y%m%d%H%M%S")) * 1000
    assert xtdata.timetag_to_datetime(tag, "%Y%m%d%H%M%S") == "20240102093000"
    assert xtdata.datetime_to_timetag("20240102") == xtdata.datetime_to_timetag("20240102000000")
    assert xtdata.timetag_to_datetime("x", "%Y") is None  # type: ignore[arg-type]
    assert xtdata.t2d is xtdata.timetag_to_datetime
