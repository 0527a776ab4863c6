"""Tick data through the xtdata shim: download into the cache, read it back in xtquant's shapes.

The simulator runs on a ``VirtualClock`` starting at 10:00 on Monday 2024-06-03, so "today's
ticks so far" are the 3-second snapshots from 09:30:00 to 10:00:00 (601 of them) and the test
moves time by hand. MiniQMT's own tick files are read from the shared datadir fixture.
"""

from __future__ import annotations

import datetime as dt
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from qmtkit.backends.sim import SimBackend
from qmtkit.clock import BEIJING, VirtualClock
from qmtkit.compat import xtdata
from qmtkit.compat._bridge import bridge
from qmtkit.errors import InvalidArgument, QmtkitError

CODE = "600000.SH"
OTHER = "000001.SZ"
FIXTURE = Path("/work/shared/fixtures/miniqmt-datadir")
TICK_FILE = FIXTURE / "SH" / "0" / "000001" / "20250529.DAT"
INDEX = "000001.SH"
FIELDS = [
    "time", "lastPrice", "open", "high", "low", "lastClose", "amount", "volume", "pvolume",
    "stockStatus", "openInt", "lastSettlementPrice", "askPrice", "bidPrice", "askVol",
    "bidVol", "transactionNum",
]  # fmt: skip
BOOK = ("askPrice", "bidPrice", "askVol", "bidVol")


def beijing_ms(h: int, mi: int, s: int = 0) -> int:
    return int(dt.datetime(2024, 6, 3, h, mi, s, tzinfo=BEIJING).timestamp() * 1000)


START = beijing_ms(10, 0)
OPEN = beijing_ms(9, 30)
STEP = 3000


class Sim:
    """The simulator behind the shim, with its clock moved from the test thread."""

    def __init__(self, home: Path) -> None:
        self.clock = VirtualClock(START)
        self.home = home

    def backend(self, url: str) -> SimBackend:
        return SimBackend(home=self.home, clock=self.clock)

    def advance(self, seconds: float) -> None:
        # The clock wakes the simulator's tick loop: it must be moved on the loop thread.
        async def go() -> None:
            self.clock.advance(seconds)

        bridge().call(go)


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    s = Sim(tmp_path)
    bridge().backend_factory = s.backend
    xtdata.enable_hello = False
    try:
        yield s
    finally:
        xtdata.disconnect()
        bridge().backend_factory = None
        bridge().shutdown()
        xtdata.enable_hello = True


@pytest.fixture
def downloaded(sim: Sim) -> Sim:
    xtdata.download_history_data(CODE, period="tick")
    return sim


def label(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, BEIJING).strftime("%Y%m%d%H%M%S")


# --------------------------------------------------------------------------- the cache


def test_get_market_data_tick_is_a_structured_array_per_code(downloaded: Sim) -> None:
    data = xtdata.get_market_data([], [CODE], period="tick")
    assert list(data) == [CODE]
    arr = data[CODE]
    assert isinstance(arr, np.ndarray)
    assert list(arr.dtype.names or ()) == FIELDS
    for name in BOOK:
        assert arr.dtype[name].shape == (5,)
        assert arr[name].shape == (len(arr), 5)
    assert arr.dtype["time"] == np.dtype("<i8") and arr.dtype["lastPrice"] == np.dtype("<f8")
    assert arr.dtype["volume"] == np.dtype("<i8") and arr.dtype["stockStatus"] == np.dtype("<i4")


def test_downloaded_ticks_are_todays_so_far_in_time_order(downloaded: Sim) -> None:
    arr = xtdata.get_market_data([], [CODE], period="tick")[CODE]
    t = arr["time"]
    assert t[0] == OPEN and t[-1] == START
    assert len(arr) == (START - OPEN) // STEP + 1
    assert (np.diff(t) > 0).all()
    assert (arr["lastPrice"] > 0).all() and (arr["askPrice"][:, 0] > arr["bidPrice"][:, 0]).all()
    assert (np.diff(arr["volume"]) >= 0).all()  # cumulative


def test_count_keeps_the_last_ticks(downloaded: Sim) -> None:
    full = xtdata.get_market_data([], [CODE], period="tick")[CODE]
    last5 = xtdata.get_market_data([], [CODE], period="tick", count=5)[CODE]
    assert last5.tobytes() == full[-5:].tobytes()
    assert len(xtdata.get_market_data([], [CODE], period="tick", count=0)[CODE]) == 0


def test_start_and_end_are_a_closed_interval(downloaded: Sim) -> None:
    arr = xtdata.get_market_data(
        [], [CODE], "tick", start_time="20240603095900", end_time="20240603095930"
    )[CODE]
    assert arr["time"].tolist() == list(range(beijing_ms(9, 59), beijing_ms(9, 59, 30) + 1, STEP))


def test_count_is_the_last_n_within_the_range(downloaded: Sim) -> None:
    arr = xtdata.get_market_data(
        [], [CODE], "tick", start_time="20240603094500", end_time="20240603095000", count=3
    )[CODE]
    assert arr["time"].tolist() == [beijing_ms(9, 49, 54), beijing_ms(9, 49, 57), beijing_ms(9, 50)]


def test_field_list_keeps_only_those_fields_in_that_order(downloaded: Sim) -> None:
    full = xtdata.get_market_data([], [CODE], "tick")[CODE]
    part = xtdata.get_market_data(["bidVol", "lastPrice"], [CODE], "tick")[CODE]
    assert part.dtype.names == ("bidVol", "lastPrice")
    assert part["bidVol"].shape == (len(full), 5)
    assert (part["bidVol"] == full["bidVol"]).all()
    assert (part["lastPrice"] == full["lastPrice"]).all()


def test_a_code_without_ticks_gets_an_empty_array(downloaded: Sim) -> None:
    data = xtdata.get_market_data([], [CODE, OTHER], "tick")
    assert list(data) == [CODE, OTHER]
    assert len(data[OTHER]) == 0 and list(data[OTHER].dtype.names or ()) == FIELDS


def test_ticks_are_read_from_the_cache_only(sim: Sim) -> None:
    assert len(xtdata.get_market_data([], [CODE], "tick")[CODE]) == 0


def test_market_data_ex_tick_is_a_frame_indexed_by_time_labels(downloaded: Sim) -> None:
    arr = xtdata.get_market_data([], [CODE], "tick", count=4)[CODE]
    df = xtdata.get_market_data_ex([], [CODE], "tick", count=4)[CODE]
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == FIELDS
    assert list(df.index) == [label(int(t)) for t in arr["time"]]
    assert df.index[-1] == "20240603100000"
    assert df["time"].tolist() == arr["time"].tolist()
    assert df["lastPrice"].tolist() == arr["lastPrice"].tolist()
    assert df["askPrice"].iloc[-1] == arr["askPrice"][-1].tolist()
    assert len(df["bidVol"].iloc[0]) == 5


def test_market_data_ex_field_list_without_time_still_indexes_by_time(downloaded: Sim) -> None:
    df = xtdata.get_market_data_ex(
        ["lastPrice", "askVol"], [CODE], "tick", start_time="20240603095957"
    )[CODE]
    assert list(df.columns) == ["lastPrice", "askVol"]
    assert list(df.index) == ["20240603095957", "20240603100000"]


def test_get_local_data_without_data_dir_reads_the_tick_cache(downloaded: Sim) -> None:
    local = xtdata.get_local_data([], [CODE], "tick", count=10)[CODE]
    ex = xtdata.get_market_data_ex([], [CODE], "tick", count=10)[CODE]
    pd.testing.assert_frame_equal(local, ex)


def test_bad_tick_arguments_raise_naming_the_value(downloaded: Sim) -> None:
    with pytest.raises(InvalidArgument, match="'close'"):
        xtdata.get_market_data(["close"], [CODE], "tick")
    with pytest.raises(InvalidArgument, match="-2"):
        xtdata.get_market_data_ex([], [CODE], "tick", count=-2)
    with pytest.raises(InvalidArgument, match="'yesterday'"):
        xtdata.get_market_data([], [CODE], "tick", start_time="yesterday")


# --------------------------------------------------------------------------- downloads and stream


def test_incremental_tick_download_adds_only_the_new_ticks(downloaded: Sim) -> None:
    downloaded.advance(30)
    xtdata.download_history_data(CODE, "tick")
    t = xtdata.get_market_data(["time"], [CODE], "tick")[CODE]["time"]
    assert t[-1] == START + 30_000
    assert len(t) == (START + 30_000 - OPEN) // STEP + 1
    assert (np.diff(t) > 0).all()


def test_download_history_data2_stores_ticks_of_several_codes(sim: Sim) -> None:
    xtdata.download_history_data2([CODE, OTHER], "tick")
    data = xtdata.get_market_data(["time"], [CODE, OTHER], "tick")
    assert [len(data[c]) for c in (CODE, OTHER)] == [(START - OPEN) // STEP + 1] * 2


def test_cached_ticks_equal_what_the_stream_delivered(sim: Sim) -> None:
    seen: list[dict[str, Any]] = []
    cond = threading.Condition()

    def on_data(datas: dict[str, list[dict[str, Any]]]) -> None:
        with cond:
            seen.extend(datas[CODE])
            cond.notify_all()

    seq = xtdata.subscribe_quote(CODE, period="tick", count=0, callback=on_data)
    assert seq > 0
    for k in range(1, 6):
        if k > 1:
            sim.advance(STEP / 1000)
        with cond:
            assert cond.wait_for(lambda k=k: len(seen) >= k, timeout=5)  # type: ignore[misc]
    xtdata.unsubscribe_quote(seq)
    xtdata.download_history_data(CODE, "tick")
    arr = xtdata.get_market_data([], [CODE], "tick")[CODE]
    times = [r["time"] for r in seen]
    assert times == [START + STEP * i for i in range(5)]
    rows = arr[np.searchsorted(arr["time"], times)]
    assert rows["time"].tolist() == times
    for record, row in zip(seen, rows, strict=True):
        for name in FIELDS:
            want = record[name]
            got = row[name].tolist()
            assert got == (list(want) if name in BOOK else want), (name, record["time"])


# --------------------------------------------------------------------------- MiniQMT datadir


needs_fixture = pytest.mark.skipif(not TICK_FILE.is_file(), reason="no MiniQMT tick fixture")


def raw_record(i: int) -> tuple[int, float]:
    """(time ms, lastPrice) of record ``i`` of the fixture, decoded here by hand."""
    data = TICK_FILE.read_bytes()
    off = 144 * (i % (len(data) // 144))
    t, price = struct.unpack_from("<QI", data, off)
    return t, price / 1000


@needs_fixture
def test_get_local_data_reads_a_miniqmt_tick_file(sim: Sim) -> None:
    df = xtdata.get_local_data([], [INDEX], "tick", data_dir=str(FIXTURE))[INDEX]
    assert isinstance(df, pd.DataFrame) and list(df.columns) == FIELDS
    assert len(df) == 5988 == TICK_FILE.stat().st_size // 144
    assert df.index[0] == "20250529091500" and df.index[-1] == "20250529150006"
    (t0, p0), (t1, p1) = raw_record(0), raw_record(-1)
    assert df["time"].iloc[0] == t0 and df["time"].iloc[-1] == t1
    assert df["lastPrice"].iloc[0] == p0 and df["lastPrice"].iloc[-1] == p1
    assert (np.diff(df["time"].to_numpy()) > 0).all()


@needs_fixture
def test_the_last_tick_agrees_with_the_days_bar(sim: Sim) -> None:
    last = xtdata.get_local_data([], [INDEX], "tick", count=1, data_dir=str(FIXTURE))[INDEX]
    day = "20250529"
    bar = xtdata.get_local_data([], [INDEX], "1d", day, day, data_dir=str(FIXTURE))[INDEX]
    assert len(last) == 1 and list(bar.index) == ["20250529"]
    for tick_field, bar_field in [
        ("open", "open"), ("high", "high"), ("low", "low"), ("amount", "amount"),
        ("volume", "volume"), ("lastClose", "preClose"),
    ]:  # fmt: skip
        assert last[tick_field].iloc[0] == bar[bar_field].iloc[0], tick_field


@needs_fixture
def test_fields_the_tick_file_does_not_hold_are_zero(sim: Sim) -> None:
    df = xtdata.get_local_data(
        ["pvolume", "openInt", "lastSettlementPrice", "transactionNum"],
        [INDEX],
        "tick",
        data_dir=str(FIXTURE),
    )[INDEX]
    assert len(df) == 5988
    assert (df.to_numpy() == 0).all()


@needs_fixture
def test_datadir_ticks_honour_range_count_and_fields(sim: Sim) -> None:
    df = xtdata.get_local_data(
        ["lastPrice"], [INDEX], "tick", "20250529140000", "20250529140030", data_dir=str(FIXTURE)
    )[INDEX]
    assert list(df.columns) == ["lastPrice"]
    # Both bounds are ticks of the file: a closed interval keeps them.
    assert df.index[0] == "20250529140000" and df.index[-1] == "20250529140030"
    full = xtdata.get_local_data(["time"], [INDEX], "tick", data_dir=str(FIXTURE))[INDEX]
    inside = full[(full.index >= "20250529140000") & (full.index <= "20250529140030")]
    assert list(df.index) == list(inside.index)
    last3 = xtdata.get_local_data(
        ["time"], [INDEX], "tick", "", "20250529140030", count=3, data_dir=str(FIXTURE)
    )[INDEX]
    assert list(last3.index) == list(inside.index[-3:])


@needs_fixture
def test_datadir_days_without_a_file_or_codes_without_ticks_are_empty(sim: Sim) -> None:
    data = xtdata.get_local_data(
        ["lastPrice"], [INDEX, "600000.SH"], "tick", "20250530", "20250601", data_dir=str(FIXTURE)
    )
    assert list(data) == [INDEX, "600000.SH"]
    assert all(df.empty and list(df.columns) == ["lastPrice"] for df in data.values())


def test_datadir_ticks_from_a_copied_day_range(sim: Sim, tmp_path: Path) -> None:
    """Two days of files: the range picks the days, count reaches back across them."""
    if not TICK_FILE.is_file():
        pytest.skip("no MiniQMT tick fixture")
    folder = tmp_path / "dd" / "SH" / "0" / "000001"
    folder.mkdir(parents=True)
    data = TICK_FILE.read_bytes()
    (folder / "20250529.DAT").write_bytes(data)
    shifted = bytearray(data)
    day_ms = 86_400_000
    for off in range(0, len(data), 144):
        (t,) = struct.unpack_from("<Q", data, off)
        struct.pack_into("<Q", shifted, off, t + day_ms)
    (folder / "20250530.DAT").write_bytes(bytes(shifted))
    root = str(tmp_path / "dd")
    both = xtdata.get_local_data(["time"], [INDEX], "tick", data_dir=root)[INDEX]
    assert len(both) == 2 * 5988 and both.index.is_monotonic_increasing
    second = xtdata.get_local_data(["time"], [INDEX], "tick", "20250530", data_dir=root)[INDEX]
    assert len(second) == 5988 and second.index[0] == "20250530091500"
    across = xtdata.get_local_data(["time"], [INDEX], "tick", count=5990, data_dir=root)[INDEX]
    assert across.index[0] == "20250529150003" and across.index[-1] == "20250530150006"


def test_a_corrupt_tick_file_raises_naming_it(sim: Sim, tmp_path: Path) -> None:
    folder = tmp_path / "dd" / "SH" / "0" / "000001"
    folder.mkdir(parents=True)
    (folder / "20250529.DAT").write_bytes(b"\0" * 100)
    with pytest.raises(QmtkitError, match=r"20250529\.DAT"):
        xtdata.get_local_data([], [INDEX], "tick", data_dir=str(tmp_path / "dd"))


def test_a_bounded_download_of_today_is_completed_by_the_next_one(sim: Sim) -> None:
    """The venue's day is still running however late the caller's own clock is."""
    xtdata.download_history_data(CODE, "tick", "20240603", "20240603", incrementally=True)
    sim.advance(30)
    xtdata.download_history_data(CODE, "tick", "20240603", "20240603", incrementally=True)
    t = xtdata.get_market_data(["time"], [CODE], "tick")[CODE]["time"]
    assert t[-1] == START + 30_000 and (np.diff(t) > 0).all()


def test_subscribing_to_ticks_with_a_count_downloads_them_first(sim: Sim) -> None:
    seq = xtdata.subscribe_quote(CODE, period="tick", count=-1)
    assert seq > 0
    t = xtdata.get_market_data(["time"], [CODE], "tick")[CODE]["time"]
    assert t[0] == OPEN and t[-1] == START
    xtdata.unsubscribe_quote(seq)


def test_a_data_dir_that_is_not_a_directory_is_refused(sim: Sim, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    with pytest.raises(InvalidArgument, match="nowhere"):
        xtdata.get_local_data([], [INDEX], "tick", data_dir=missing)
    with pytest.raises(InvalidArgument, match="nowhere"):
        xtdata.get_local_data([], [INDEX], "1d", data_dir=missing)
