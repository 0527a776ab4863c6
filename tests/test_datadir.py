"""Reading MiniQMT's own .DAT files, against real files from a MiniQMT terminal."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from qmtkit.data import datadir
from qmtkit.data.calendar import ms_to_yyyymmdd, trading_days_yyyymmdd
from qmtkit.data.schema import BAR_DTYPES, TICK_DTYPES
from qmtkit.errors import CacheError, InvalidArgument

# shared/ sits beside the checkout (also in CI's fresh clone)
FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/miniqmt-datadir"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="MiniQMT fixtures not found")

CODE = "000001.SH"
Bars = dict[str, npt.NDArray[Any]]
BJ = dt.timezone(dt.timedelta(hours=8))


def bj_ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=BJ).timestamp() * 1000)


@pytest.fixture(scope="module")
def dd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("datadir") / "datadir"
    shutil.copytree(FIXTURES, dest, ignore=shutil.ignore_patterns("README.md"))
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    dest = tmp_path / "datadir"
    shutil.copytree(FIXTURES, dest, ignore=shutil.ignore_patterns("README.md"))
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


@pytest.fixture(scope="module")
def daily(dd: Path) -> dict[str, npt.NDArray[Any]]:
    return datadir.read_bars(dd, CODE, "1d")


@pytest.fixture(scope="module")
def minute(dd: Path) -> dict[str, npt.NDArray[Any]]:
    return datadir.read_bars(dd, CODE, "1m")


@pytest.fixture(scope="module")
def ticks(dd: Path) -> dict[str, npt.NDArray[Any]]:
    return datadir.read_ticks(dd, CODE, 20250529)


def test_record_counts(daily: Bars, minute: Bars, ticks: Bars) -> None:
    assert len(daily["time"]) == 8426
    assert len(minute["time"]) == 3512
    assert len(ticks["time"]) == 5988


def test_bar_columns_follow_the_schema(daily: Bars, minute: Bars) -> None:
    for bars in (daily, minute):
        assert list(bars) == list(BAR_DTYPES)
        assert {k: v.dtype for k, v in bars.items()} == BAR_DTYPES
        assert not bars["suspendFlag"].any()


def test_tick_columns_are_known_fields_only(ticks: Bars) -> None:
    assert set(ticks) <= set(TICK_DTYPES)
    assert {"pvolume", "openInt", "transactionNum"}.isdisjoint(ticks)
    assert all(ticks[k].dtype == TICK_DTYPES[k] for k in ticks)


def test_first_daily_bar_is_1990_12_19(daily: Bars) -> None:
    assert daily["time"][0] == bj_ms(1990, 12, 19)
    assert daily["open"][0] == pytest.approx(96.05)
    assert daily["high"][0] == pytest.approx(99.98)
    assert daily["low"][0] == pytest.approx(95.79)
    assert daily["close"][0] == pytest.approx(99.98)
    assert daily["preClose"][0] == 0.0  # a first record has no previous close


def test_first_and_last_times(daily: Bars, minute: Bars, ticks: Bars) -> None:
    assert daily["time"][-1] == bj_ms(2025, 6, 25)
    assert minute["time"][0] == bj_ms(2025, 6, 5, 11, 13)
    assert minute["time"][-1] == bj_ms(2025, 6, 25, 15, 0)
    assert ticks["time"][0] == bj_ms(2025, 5, 29, 9, 15, 0)
    assert ticks["time"][-1] == bj_ms(2025, 5, 29, 15, 0, 6)


def test_daily_times_are_midnight_beijing_and_increasing(daily: Bars) -> None:
    assert np.all((daily["time"] + 8 * 3_600_000) % 86_400_000 == 0)
    assert np.all(np.diff(daily["time"]) > 0)


def test_daily_bar_matches_the_tick_file_of_the_day(daily: Bars, ticks: Bars) -> None:
    i = int(np.flatnonzero(ms_to_yyyymmdd(daily["time"]) == 20250529)[0])
    assert daily["amount"][i] == ticks["amount"][-1]
    assert daily["volume"][i] == ticks["volume"][-1]
    assert daily["open"][i] == ticks["open"][-1]
    assert daily["high"][i] == ticks["high"][-1]
    assert daily["low"][i] == ticks["low"][-1]
    assert daily["preClose"][i] == ticks["lastClose"][-1]


def test_ticks_are_cumulative(ticks: Bars) -> None:
    assert np.all(np.diff(ticks["volume"]) >= 0)
    assert np.all(np.diff(ticks["amount"]) >= 0)


SESSION = [570, *range(571, 691), *range(781, 901)]  # minutes of day


def test_full_days_have_241_minute_bars_labelled_by_their_end(minute: Bars) -> None:
    day = ms_to_yyyymmdd(minute["time"])
    full_days = trading_days_yyyymmdd("SH", 20250606, 20250625)
    assert len(full_days) == 14
    for d in full_days:
        t = minute["time"][day == d]
        assert len(t) == 241
        minutes = ((t + 8 * 3_600_000) % 86_400_000) // 60_000
        assert minutes.tolist() == SESSION
    # the first day starts mid-morning at 11:13: 18 morning bars and a full afternoon
    assert int((day == 20250605).sum()) == 18 + 120


def test_minute_bars_add_up_to_the_daily_bar(minute: Bars, daily: Bars) -> None:
    mday = ms_to_yyyymmdd(minute["time"])
    dday = ms_to_yyyymmdd(daily["time"])
    for d in (20250606, 20250624, 20250625):
        m = mday == d
        i = int(np.flatnonzero(dday == d)[0])
        assert minute["volume"][m].sum() == daily["volume"][i]
        assert minute["high"][m].max() == pytest.approx(daily["high"][i], abs=0.0011)
        assert minute["close"][m][-1] == pytest.approx(daily["close"][i], abs=0.0011)


def test_scan_lists_every_file(dd: Path) -> None:
    found = {(f.period, f.records, f.first_time, f.last_time, f.day) for f in datadir.scan(dd)}
    assert found == {
        ("1d", 8426, bj_ms(1990, 12, 19), bj_ms(2025, 6, 25), 0),
        ("1m", 3512, bj_ms(2025, 6, 5, 11, 13), bj_ms(2025, 6, 25, 15), 0),
        ("tick", 5988, bj_ms(2025, 5, 29, 9, 15), bj_ms(2025, 5, 29, 15, 0, 6), 20250529),
    }
    assert all(f.code == CODE and f.problem == "" for f in datadir.scan(dd))


def test_list_codes(dd: Path) -> None:
    assert datadir.list_codes(dd, "1d") == [CODE]
    assert datadir.list_codes(dd, "tick") == [CODE]


def test_truncated_bar_file_raises_naming_file_and_size(scratch: Path) -> None:
    path = scratch / "SH/86400/000001.DAT"
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(CacheError, match=r"000001\.DAT.*not 8 \+ 64\*N"):
        datadir.read_bars(scratch, CODE, "1d")
    bad = [f for f in datadir.scan(scratch) if f.problem]
    assert [f.path for f in bad] == [str(path)]


def test_bad_header_raises(scratch: Path) -> None:
    path = scratch / "SH/60/000001.DAT"
    data = bytearray(path.read_bytes())
    data[0] = 0
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="bad header"):
        datadir.read_bars(scratch, CODE, "1m")


def test_out_of_order_times_raise(scratch: Path) -> None:
    path = scratch / "SH/86400/000001.DAT"
    data = bytearray(path.read_bytes())

    def rec(i: int) -> slice:
        return slice(8 + 64 * i, 8 + 64 * (i + 1))

    data[rec(5)], data[rec(6)] = data[rec(6)], data[rec(5)]
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="out of order at record 6"):
        datadir.read_bars(scratch, CODE, "1d")


def test_truncated_tick_file_raises(scratch: Path) -> None:
    path = scratch / "SH/0/000001/20250529.DAT"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CacheError, match="multiple of 144"):
        datadir.read_ticks(scratch, CODE, "2025-05-29")


def test_missing_file_raises_cache_error(dd: Path) -> None:
    with pytest.raises(CacheError, match=r"600000\.DAT.*no such"):
        datadir.read_bars(dd, "600000.SH", "1d")


def test_unknown_period_is_refused(dd: Path) -> None:
    with pytest.raises(InvalidArgument, match="'5m'"):
        datadir.read_bars(dd, CODE, "5m")


def test_read_range_keeps_the_last_count_rows_inside_the_range(dd: Path) -> None:
    everything = datadir.read_bars(dd, "000001.SH", "1d")
    t = everything["time"]
    got = datadir.read_range(dd, "000001.SH", "1d", int(t[100]), int(t[200]), count=10)
    assert got["time"].tolist() == t[191:201].tolist()


def test_read_range_of_a_code_without_files_is_empty(dd: Path) -> None:
    assert len(datadir.read_range(dd, "600000.SH", "1d")["time"]) == 0
    assert len(datadir.read_range(dd, "600000.SH", "tick")["time"]) == 0


def test_read_range_of_ticks_reads_only_the_files_in_the_range(dd: Path) -> None:
    assert datadir.tick_days(dd, "000001.SH") == [20250529]
    assert len(datadir.read_range(dd, "000001.SH", "tick", count=7)["time"]) == 7
    assert datadir.tick_days(dd, "000001.SH", end_ms=1_700_000_000_000) == []
