"""MarketData: incremental download, xtquant range/count rules, resampling, adjustment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.base import (
    Dividend,
    Dividends,
    FetchDividends,
    FetchHistory,
    GetCalendar,
    GetSectorMembers,
    GetSnapshot,
    HistoryColumns,
    ListSectors,
    Names,
    Reply,
    Request,
    Snapshots,
    VenueCalendar,
)
from qmtkit.data.api import MarketData, to_ms
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import CacheError, InvalidArgument, InvalidCode, InvalidPeriod
from qmtkit.models import Tick

DAY = 86_400_000
T0 = 1_704_038_400_000  # 2024-01-01 00:00 Beijing (a Monday)
NOW = T0 + 400 * DAY


def day(i: int) -> int:
    return T0 + i * DAY


class FakeVenue:
    """A backend request function over a fixed daily history (every day from T0, 300 days)."""

    def __init__(self, days: int = 300) -> None:
        self.times = T0 + np.arange(days, dtype=np.int64) * DAY
        self.asked: list[tuple[str, str, int, int]] = []
        self.dividend_calls = 0

    def close(self, code: str) -> np.ndarray:
        seed = int(code[:6])
        return 10.0 + (seed % 7) + np.arange(len(self.times)) * 0.01

    async def __call__(self, req: Request) -> Reply:
        if isinstance(req, FetchHistory):
            self.asked.append((req.code, req.period, req.start, req.end))
            t = self.times
            lo = req.start or np.iinfo(np.int64).min
            hi = req.end or np.iinfo(np.int64).max
            sel = (t >= lo) & (t <= hi)
            c = self.close(req.code)[sel]
            cols = {
                "time": t[sel],
                "open": c,
                "high": c + 0.5,
                "low": c - 0.5,
                "close": c,
                "volume": np.full(len(c), 100, dtype=np.int64),
                "amount": c * 100,
            }
            raw = {k: np.asarray(v, dtype=BAR_DTYPES[k]).tobytes() for k, v in cols.items()}
            return HistoryColumns(req.code, req.period, int(sel.sum()), raw)
        if isinstance(req, FetchDividends):
            self.dividend_calls += 1
            return Dividends(req.code, [Dividend(time=day(100), interest=1.0)])
        if isinstance(req, GetSnapshot):
            return Snapshots(
                [
                    Tick(
                        stock_code=c,
                        time=NOW,
                        lastPrice=1.0,
                        open=1.0,
                        high=1.0,
                        low=1.0,
                        lastClose=1.0,
                        amount=0.0,
                        volume=0,
                    )
                    for c in req.codes
                    if c != "000002.SZ"
                ]
            )
        if isinstance(req, ListSectors):
            return Names(["沪深A股"])
        if isinstance(req, GetSectorMembers):
            return Names(["600000.SH"])
        if isinstance(req, GetCalendar):
            return VenueCalendar()  # a venue without a calendar of its own
        raise AssertionError(f"unexpected request {req!r}")


@pytest.fixture
def venue() -> FakeVenue:
    return FakeVenue()


@pytest.fixture
def data(venue: FakeVenue, tmp_path: Path) -> MarketData:
    return MarketData(venue, tmp_path, now_ms=lambda: NOW)


# ---------------------------------------------------------------------- time parsing


@pytest.mark.parametrize(
    ("value", "end", "expected"),
    [
        ("20240101", False, T0),
        ("20240101", True, T0 + DAY - 1),
        ("20240101093000", False, T0 + (9 * 60 + 30) * 60_000),
        ("2024-01-01", False, T0),
        ("2024-01-01 09:30", False, T0 + (9 * 60 + 30) * 60_000),
        (dt.date(2024, 1, 1), True, T0 + DAY - 1),
        (dt.datetime(2024, 1, 1, 9, 30), False, T0 + (9 * 60 + 30) * 60_000),
        (
            dt.datetime(2024, 1, 1, 1, 30, tzinfo=dt.timezone.utc),
            False,
            T0 + (9 * 60 + 30) * 60_000,
        ),
        (T0, False, T0),
        (20240101, False, T0),
        (None, False, 0),
        ("", True, 0),
    ],
)
def test_to_ms_accepts_xtquant_and_python_times(value: object, end: bool, expected: int) -> None:
    assert to_ms(value, end=end) == expected


@pytest.mark.parametrize("value", ["2024-13-01", "yesterday", "2024010", 12345, True, 1.5, -5])
def test_to_ms_names_a_bad_value(value: object) -> None:
    with pytest.raises(InvalidArgument, match="bad start time"):
        to_ms(value)


# ---------------------------------------------------------------------- download


async def test_download_fetches_each_code_once_and_stores_it(
    data: MarketData, venue: FakeVenue
) -> None:
    seen: list[tuple[int, int, str]] = []
    n = await data.download(
        ["600000.SH", "000001.SZ"],
        "1d",
        "20240101",
        "20240131",
        progress=lambda d, t, c: seen.append((d, t, c)),
    )
    assert n == 62
    assert [(c, s, e) for c, _, s, e in venue.asked] == [
        ("600000.SH", T0, day(31) - 1),
        ("000001.SZ", T0, day(31) - 1),
    ]
    assert seen == [(1, 2, "600000.SH"), (2, 2, "000001.SZ")]
    assert data.read_bars("600000.SH", "1d").height == 31


async def test_second_download_of_the_same_range_asks_nothing(
    data: MarketData, venue: FakeVenue
) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240131")
    venue.asked.clear()
    assert await data.download("600000.SH", "1d", "20240105", "20240120") == 0
    assert venue.asked == []


async def test_download_asks_only_the_missing_ends(data: MarketData, venue: FakeVenue) -> None:
    await data.download("600000.SH", "1d", "20240110", "20240120")
    venue.asked.clear()
    await data.download("600000.SH", "1d", "20240101", "20240131")
    assert [(s, e) for _, _, s, e in venue.asked] == [(T0, day(9) - 1), (day(20), day(31) - 1)]
    df = data.read_bars("600000.SH", "1d")
    assert df.height == 31 and df["time"].is_sorted()


async def test_open_ended_download_refetches_from_the_last_bar(
    data: MarketData, venue: FakeVenue
) -> None:
    await data.download("600000.SH", "1d", "20240101")
    last = int(venue.times[-1])
    venue.asked.clear()
    await data.download("600000.SH", "1d", "20240101")
    assert [(s, e) for _, _, s, e in venue.asked] == [(last, 0)]
    assert data.read_bars("600000.SH").height == len(venue.times)


class LaggingVenue(FakeVenue):
    """A venue whose clock (``as_of``) runs behind ours: it has no bars after its own now."""

    def __init__(self, as_of: int) -> None:
        super().__init__()
        self.as_of = as_of

    async def __call__(self, req: Request) -> Reply:
        reply = await super().__call__(req)
        if isinstance(reply, HistoryColumns):
            t = np.frombuffer(reply.columns["time"], dtype=np.int64)
            keep = t <= self.as_of
            cols = {
                k: np.frombuffer(v, dtype=BAR_DTYPES[k])[keep].tobytes()
                for k, v in reply.columns.items()
            }
            return HistoryColumns(reply.code, reply.period, int(keep.sum()), cols, self.as_of)
        return reply


async def test_a_range_past_the_venues_own_clock_is_asked_again_later(tmp_path: Path) -> None:
    venue = LaggingVenue(as_of=day(20) + 12 * 3_600_000)  # our clock says NOW, far later
    data = MarketData(venue, tmp_path, now_ms=lambda: NOW)
    await data.download("600000.SH", "1d", "20240101", "20240131")
    assert data.read_bars("600000.SH").height == 21  # the venue's days 0..20
    venue.asked.clear()
    venue.as_of = day(40)
    await data.download("600000.SH", "1d", "20240101", "20240131")
    assert [(s, e) for _, _, s, e in venue.asked] == [(day(20), day(31) - 1)]
    assert data.read_bars("600000.SH").height == 31


async def test_non_incremental_download_fetches_everything_again(
    data: MarketData, venue: FakeVenue
) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240131")
    venue.asked.clear()
    await data.download("600000.SH", "1d", "20240101", "20240131", incrementally=False)
    assert len(venue.asked) == 1
    assert data.read_bars("600000.SH").height == 31


async def test_download_of_a_derived_period_fetches_its_base(
    data: MarketData, venue: FakeVenue
) -> None:
    await data.download("600000.SH", "1w", "20240101", "20240107")
    assert venue.asked[0][1] == "1d"


async def test_download_refuses_bad_arguments_before_asking(
    data: MarketData, venue: FakeVenue
) -> None:
    with pytest.raises(InvalidCode):
        await data.download(["600000.SH", "bogus"])
    with pytest.raises(InvalidPeriod):
        await data.download("600000.SH", "2d")
    with pytest.raises(InvalidArgument, match="after end"):
        await data.download("600000.SH", "1d", "20240201", "20240101")
    with pytest.raises(InvalidArgument, match="progress"):
        await data.download("600000.SH", progress=5)  # type: ignore[arg-type]
    assert venue.asked == []


# ---------------------------------------------------------------------- reading


async def test_bars_count_and_range_follow_xtquant(data: MarketData) -> None:
    await data.download(["600000.SH", "000001.SZ"], "1d", "20240101", "20240331")
    df = await data.bars(["600000.SH", "000001.SZ"], "1d", "20240110", "20240120", count=3)
    assert df["code"].cast(pl.String).to_list() == ["600000.SH"] * 3 + ["000001.SZ"] * 3
    assert df["time"].dt.strftime("%Y%m%d").to_list()[:3] == ["20240118", "20240119", "20240120"]
    assert (await data.bars("600000.SH", count=0)).height == 0
    assert (await data.bars("600000.SH")).height == 91


async def test_fields_pick_columns(data: MarketData) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240105")
    df = data.read_bars("600000.SH", fields=["close", "volume"])
    assert df.columns == ["code", "time", "close", "volume"]
    assert df["volume"].to_list() == [100] * 5


def test_read_bars_refuses_bad_arguments(data: MarketData) -> None:
    with pytest.raises(InvalidArgument, match="'closing'"):
        data.read_bars("600000.SH", fields=["closing"])
    with pytest.raises(InvalidArgument, match="count -2"):
        data.read_bars("600000.SH", count=-2)
    with pytest.raises(InvalidArgument, match="adjust 'forward'"):
        data.read_bars("600000.SH", adjust="forward")
    with pytest.raises(InvalidPeriod, match="'3m'"):
        data.read_bars("600000.SH", "3m")
    with pytest.raises(InvalidCode):
        data.read_bars(42)  # type: ignore[arg-type]


async def test_weekly_bars_are_resampled_from_daily(data: MarketData, venue: FakeVenue) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240114")
    df = data.read_bars("600000.SH", "1w")
    closes = venue.close("600000.SH")
    assert df.height == 2
    assert df["close"].to_list() == pytest.approx([closes[6], closes[13]])
    assert df["open"].to_list() == pytest.approx([closes[0], closes[7]])
    assert df["volume"].to_list() == [700, 700]


async def test_weekly_count_applies_after_resampling(data: MarketData) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240131")
    assert data.read_bars("600000.SH", "1w", count=2).height == 2


async def test_front_adjustment_fetches_and_caches_dividends(
    data: MarketData, venue: FakeVenue
) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240630")
    raw = data.read_bars("600000.SH")
    adj = await data.bars("600000.SH", adjust="front")
    assert venue.dividend_calls == 1
    # Before the ex-date (day 100) prices drop by the 1.0 dividend; after it they are raw.
    assert adj["close"][99] == pytest.approx(raw["close"][99] - 1.0)
    assert adj["close"][100] == pytest.approx(raw["close"][100])
    await data.bars("600000.SH", adjust="front")
    assert venue.dividend_calls == 1


async def test_ratio_adjustment_of_a_window_matches_the_full_history(data: MarketData) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240630")
    full = await data.bars("600000.SH", adjust="front_ratio")
    window = await data.bars("600000.SH", "1d", day(101), day(120), adjust="front_ratio")
    part = full.filter(pl.col("time").dt.epoch("ms").is_between(day(101), day(120)))
    assert window["close"].to_list() == pytest.approx(part["close"].to_list())


async def test_download_caches_dividends_so_a_sync_read_can_adjust(data: MarketData) -> None:
    await data.download("600000.SH", "1d", "20240101", "20240131")
    adjusted = data.read_bars("600000.SH", adjust="front")
    assert len(adjusted) == 31


async def test_sync_read_without_cached_dividends_says_what_to_do(tmp_path: Path) -> None:
    from qmtkit.data.cache import Cache

    cache = Cache(tmp_path)
    cols = {k: np.zeros(1, dtype=v) for k, v in BAR_DTYPES.items()}
    cols["time"][:] = T0
    cache.write_bars("1d", {"600000.SH": cols})
    with pytest.raises(CacheError, match="dividends"):
        MarketData(FakeVenue(), tmp_path).read_bars("600000.SH", adjust="front")


async def test_bars_lazy_scans_the_same_rows(data: MarketData) -> None:
    await data.download(["600000.SH", "000001.SZ"], "1d", "20240101", "20240131")
    lazy = data.bars_lazy(["600000.SH", "000001.SZ"])
    out = lazy.group_by("code").agg(pl.len()).collect()
    assert sorted(out["len"].to_list()) == [31, 31]


# ---------------------------------------------------------------------- reference data


async def test_snapshot_leaves_out_unknown_codes(data: MarketData) -> None:
    snap = await data.snapshot(["600000.SH", "000002.SZ"])
    assert list(snap) == ["600000.SH"]


async def test_sectors_and_members(data: MarketData) -> None:
    assert await data.sectors() == ["沪深A股"]
    assert await data.sector_members("沪深A股") == ["600000.SH"]
    with pytest.raises(InvalidArgument, match="sector name"):
        await data.sector_members("")


async def test_dividends_keep_the_records_whose_ex_date_is_in_range(data: MarketData) -> None:
    assert [d.time for d in await data.dividends("600000.SH", start=day(100))] == [day(100)]
    assert [d.time for d in await data.dividends("600000.SH", end=day(100))] == [day(100)]
    assert await data.dividends("600000.SH", start=day(101)) == []
    assert await data.dividends("600000.SH", end=day(99)) == []
    with pytest.raises(InvalidArgument, match="after end"):
        await data.dividends("600000.SH", day(101), day(99))


async def test_dividends_are_returned_and_cached(data: MarketData) -> None:
    items = await data.dividends("600000.SH")
    assert [d.interest for d in items] == [1.0]
    assert data.cache.read_dividends("600000.SH") == [
        {
            "type": "dividend",
            "time": day(100),
            "interest": 1.0,
            "stockBonus": 0.0,
            "stockGift": 0.0,
            "allotNum": 0.0,
            "allotPrice": 0.0,
            "gugai": 0,
            "dr": 1.0,
        }
    ]


def test_trading_dates_skip_weekends_and_holidays(data: MarketData) -> None:
    days = data.trading_dates("SH", "20240101", "20240112")
    as_str = [
        dt.datetime.fromtimestamp(d / 1000, dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
        for d in days
    ]
    assert "20240101" not in as_str and "20240106" not in as_str
    assert as_str[0] == "20240102" and as_str[-1] == "20240112"
    assert data.trading_dates("SH", "20240101", "20240112", count=2) == days[-2:]


def test_constructor_refuses_a_non_callable() -> None:
    with pytest.raises(InvalidArgument, match="request"):
        MarketData(None, "/tmp")  # type: ignore[arg-type]


async def test_bars_fetched_before_a_failure_are_kept(tmp_path: Path) -> None:
    from qmtkit.errors import BackendError

    venue = FakeVenue()

    async def flaky(req: Request) -> Reply:
        if isinstance(req, FetchHistory) and req.code == "000001.SZ":
            raise BackendError("venue hiccup")
        return await venue(req)

    data = MarketData(flaky, tmp_path, now_ms=lambda: NOW)
    with pytest.raises(BackendError):
        await data.download(["600000.SH", "000001.SZ"], "1d", "20240101", "20240110")
    assert data.read_bars("600000.SH").height == 10
    assert data.cache.coverage("1d", "000001.SZ") is None


async def test_instruments_are_keyed_by_full_code(tmp_path: Path) -> None:
    from qmtkit.backends.base import Instruments, ListInstruments
    from qmtkit.models import InstrumentDetail

    asked: list[list[str] | None] = []

    async def venue(req: Request) -> Reply:
        assert isinstance(req, ListInstruments)
        asked.append(req.codes)
        detail = InstrumentDetail(ExchangeID="SH", InstrumentID="600000", InstrumentName="浦发银行")
        return Instruments([detail])

    data = MarketData(venue, tmp_path)
    got = await data.instruments("600000.sh")
    assert list(got) == ["600000.SH"] and got["600000.SH"].InstrumentName == "浦发银行"
    assert asked == [["600000.SH"]]
