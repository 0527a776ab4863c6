"""The columnar cache: layout, merge, coverage, atomicity, consistency and corruption."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.data import coverage as cov
from qmtkit.data.cache import Cache, resolve_home
from qmtkit.errors import CacheError, InvalidArgument, InvalidCode, InvalidPeriod

DAY = 86_400_000
T0 = 1_704_038_400_000  # 2024-01-01 00:00 Beijing


def bars(n: int, first: int = T0, seed: int = 0, step: int = DAY) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 10 + rng.standard_normal(n).cumsum() * 0.1
    return {
        "time": first + np.arange(n, dtype=np.int64) * step,
        "open": close - 0.05,
        "high": close + 0.1,
        "low": close - 0.1,
        "close": close,
        "volume": rng.integers(1, 10_000, n),
        "amount": close * 100,
    }


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path)


def shard_files(cache: Cache, period: str = "1d") -> list[Path]:
    return sorted((cache.root / period).glob("*/*.qkc"))


# ---------------------------------------------------------------------- coverage (pure)


def test_missing_without_coverage_is_the_whole_request() -> None:
    assert cov.missing(None, 100, 200) == [(100, 200)]


def test_missing_inside_coverage_is_nothing() -> None:
    assert cov.missing((100, 500), 200, 300) == []


def test_missing_asks_both_sides_reaching_the_coverage() -> None:
    assert cov.missing((100, 200), 50, 300) == [(50, 99), (201, 300)]


def test_missing_request_apart_from_coverage_fetches_the_hole_too() -> None:
    assert cov.missing((100, 200), 500, 600) == [(201, 600)]
    assert cov.missing((500, 600), 100, 200) == [(100, 499)]


def test_unbounded_bounds_round_trip() -> None:
    assert cov.bounds(0, 0) == (cov.MIN_TIME, cov.MAX_TIME)
    assert cov.to_wire((cov.MIN_TIME, 5)) == (0, 5)


def test_combine_joins_touching_and_replaces_apart() -> None:
    assert cov.combine((100, 200), (201, 300)) == (100, 300)
    assert cov.combine((100, 200), (400, 500)) == (400, 500)
    assert cov.combine((100, 200), (5, 4)) == (100, 200)


def test_settled_cuts_an_open_range_before_its_last_bar() -> None:
    assert cov.settled((0, 1000), last_bar=900, now=950) == (0, 899)
    assert cov.settled((0, 1000), last_bar=None, now=950) == (0, 949)
    assert cov.settled((0, 500), last_bar=400, now=950) == (0, 500)


# ---------------------------------------------------------------------- home


def test_home_argument_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_home() == tmp_path / "env"
    monkeypatch.delenv("QMTKIT_HOME")
    assert resolve_home() == Path("~/.qmtkit").expanduser()


# ---------------------------------------------------------------------- write / read


def test_written_bars_read_back_exactly(cache: Cache) -> None:
    data = bars(50, seed=1)
    cache.write_bars("1d", {"600000.SH": data})
    got = cache.arrays("1d", "600000.SH")
    for name, col in data.items():
        np.testing.assert_array_equal(got[name], col)
    assert got["suspendFlag"].dtype == np.int8 and not got["suspendFlag"].any()


def test_read_frame_has_code_and_beijing_datetime(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(3)})
    df = cache.read("1d", ["600000.SH"])
    assert df.columns[:2] == ["code", "time"]
    assert df.schema["time"] == pl.Datetime("ms", "Asia/Shanghai")
    assert df["time"][0].strftime("%Y-%m-%d %H:%M") == "2024-01-01 00:00"
    assert df["code"].cast(pl.String).to_list() == ["600000.SH"] * 3


def test_read_is_a_view_of_the_mapped_file(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(100)})
    arrays = cache.arrays("1d", "600000.SH")
    df = cache.read("1d", ["600000.SH"])
    assert isinstance(arrays["close"].base, (np.ndarray, memoryview)) or arrays["close"].base
    assert not arrays["close"].flags.owndata
    close = df["close"].to_numpy()
    assert np.shares_memory(close, arrays["close"])


def test_frame_outlives_the_cache_object(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(10, seed=3)})
    df = c.read("1d", ["600000.SH"])
    expected = bars(10, seed=3)["close"].sum()
    del c
    gc.collect()
    assert df["close"].sum() == pytest.approx(expected)


def test_codes_share_a_shard_by_symbol_prefix(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(5), "600001.SH": bars(5), "000001.SZ": bars(5)})
    names = [f"{p.parent.name}/{p.name}" for p in shard_files(cache)]
    assert names == ["SH/6000.g1.qkc", "SZ/0000.g1.qkc"]
    assert cache.codes("1d") == ["000001.SZ", "600000.SH", "600001.SH"]


def test_minute_shards_hold_one_code(cache: Cache) -> None:
    one = bars(10, step=60_000)
    cache.write_bars("1m", {"600000.SH": one, "600001.SH": one})
    assert len(shard_files(cache, "1m")) == 2


def test_unsorted_duplicate_rows_are_sorted_last_wins(cache: Cache) -> None:
    t = np.array([T0 + 2 * DAY, T0, T0 + DAY, T0], dtype=np.int64)
    c = np.array([3.0, 1.0, 2.0, 9.0])
    cache.write_bars("1d", {"600000.SH": {"time": t, "open": c, "high": c, "low": c, "close": c}})
    got = cache.arrays("1d", "600000.SH")
    assert got["time"].tolist() == [T0, T0 + DAY, T0 + 2 * DAY]
    assert got["close"].tolist() == [9.0, 2.0, 3.0]


def test_new_bars_merge_and_replace_same_times(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(10)})
    newer = bars(5, first=T0 + 8 * DAY, seed=7)
    cache.write_bars("1d", {"600000.SH": newer})
    got = cache.arrays("1d", "600000.SH")
    assert len(got["time"]) == 13
    np.testing.assert_array_equal(got["close"][8:], newer["close"])
    np.testing.assert_array_equal(got["close"][:8], bars(10)["close"][:8])


def test_replace_drops_old_bars(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(10)})
    cache.write_bars("1d", {"600000.SH": bars(2, first=T0 + 100 * DAY)}, replace=True)
    assert cache.arrays("1d", "600000.SH")["time"].tolist() == [T0 + 100 * DAY, T0 + 101 * DAY]


def test_other_codes_of_a_shard_survive_a_write(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(4, seed=1), "600001.SH": bars(6, seed=2)})
    cache.write_bars("1d", {"600000.SH": bars(2, first=T0 + 10 * DAY)})
    np.testing.assert_array_equal(
        cache.arrays("1d", "600001.SH")["close"], bars(6, seed=2)["close"]
    )


def test_raw_bytes_columns_as_sent_by_backends(cache: Cache) -> None:
    data = bars(4)
    raw = {
        k: np.asarray(v, dtype="<f8" if k not in ("time", "volume") else "<i8").tobytes()
        for k, v in data.items()
    }
    cache.write_bars("1d", {"600000.SH": raw})
    np.testing.assert_array_equal(cache.arrays("1d", "600000.SH")["time"], data["time"])


def test_coverage_defaults_to_the_span_written(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(10)})
    assert cache.coverage("1d", "600000.SH") == (T0, T0 + 9 * DAY)
    cache.write_bars("1d", {"600000.SH": bars(5, first=T0 + 10 * DAY)})
    assert cache.coverage("1d", "600000.SH") == (T0, T0 + 14 * DAY)


def test_explicit_coverage_is_kept_even_without_bars(cache: Cache) -> None:
    empty = {k: v[:0] for k, v in bars(1).items()}
    cache.write_bars("1d", {"600000.SH": empty}, coverage={"600000.SH": (T0, T0 + 5 * DAY)})
    assert cache.coverage("1d", "600000.SH") == (T0, T0 + 5 * DAY)
    assert len(cache.arrays("1d", "600000.SH")["time"]) == 0


def test_uncached_code_reads_empty(cache: Cache) -> None:
    assert cache.coverage("1d", "600000.SH") is None
    df = cache.read("1d", ["600000.SH"], fields=["close"])
    assert df.columns == ["code", "time", "close"] and df.height == 0


def test_read_keeps_the_requested_code_order(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(2), "600001.SH": bars(2), "000001.SZ": bars(2)})
    df = cache.read("1d", ["600001.SH", "000001.SZ", "600000.SH"])
    assert df["code"].cast(pl.String).unique(maintain_order=True).to_list() == [
        "600001.SH",
        "000001.SZ",
        "600000.SH",
    ]


def test_many_scattered_codes_read_in_order(cache: Cache) -> None:
    codes = [f"{600000 + i:06d}.SH" for i in range(100)]
    cache.write_bars("1d", {c: bars(3, seed=i) for i, c in enumerate(codes)})
    order = codes[::-1][::2] + codes[::-1][1::2]
    df = cache.read("1d", order, count=2)
    assert df.height == 200
    assert df["code"].cast(pl.String).to_list()[::2] == order
    np.testing.assert_array_equal(df["close"].to_numpy()[:2], bars(3, seed=99)["close"][1:])


@pytest.mark.parametrize(
    ("start", "end", "count", "expected"),
    [
        (0, 0, -1, list(range(10))),
        (0, 0, 3, [7, 8, 9]),
        (0, 0, 0, []),
        (T0 + 2 * DAY, T0 + 5 * DAY, -1, [2, 3, 4, 5]),
        (T0 + 2 * DAY, T0 + 5 * DAY, 2, [4, 5]),
        (T0 + 2 * DAY + 1, 0, 100, [3, 4, 5, 6, 7, 8, 9]),
        (0, T0 + DAY - 1, -1, [0]),
    ],
)
def test_start_end_count_semantics(
    cache: Cache, start: int, end: int, count: int, expected: list[int]
) -> None:
    cache.write_bars("1d", {"600000.SH": bars(10)})
    df = cache.read("1d", ["600000.SH"], start, end, count)
    got = ((df["time"].dt.epoch("ms") - T0) // DAY).to_list()
    assert got == expected


def test_fields_select_columns_in_order(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(3)})
    df = cache.read("1d", ["600000.SH"], fields=["volume", "close"])
    assert df.columns == ["code", "time", "volume", "close"]


def test_tick_period_uses_tick_columns(cache: Cache) -> None:
    t = T0 + 9 * 3_600_000 + np.arange(5, dtype=np.int64) * 3000
    cache.write_bars("tick", {"600000.SH": {"time": t, "lastPrice": np.full(5, 10.5)}})
    df = cache.read("tick", ["600000.SH"], fields=["lastPrice", "askPrice1"])
    assert df["lastPrice"].to_list() == [10.5] * 5 and df["askPrice1"].to_list() == [0.0] * 5


# ---------------------------------------------------------------------- bad input


def test_bad_period_is_refused(cache: Cache) -> None:
    with pytest.raises(InvalidPeriod, match="'1w'"):
        cache.write_bars("1w", {"600000.SH": bars(2)})


def test_bad_code_is_refused_and_nothing_written(cache: Cache) -> None:
    with pytest.raises(InvalidCode, match=r"600000\.XX"):
        cache.write_bars("1d", {"600000.SH": bars(2), "600000.XX": bars(2)})
    assert cache.codes("1d") == []


def test_unknown_column_is_named(cache: Cache) -> None:
    with pytest.raises(InvalidArgument, match="'vol'"):
        cache.write_bars("1d", {"600000.SH": {**bars(2), "vol": [1, 2]}})


def test_missing_required_column_is_named(cache: Cache) -> None:
    data = bars(2)
    del data["close"]
    with pytest.raises(InvalidArgument, match="close"):
        cache.write_bars("1d", {"600000.SH": data})


def test_ragged_columns_are_refused(cache: Cache) -> None:
    data = bars(3)
    data["open"] = data["open"][:2]
    with pytest.raises(InvalidArgument, match=r"'open'.*2 rows"):
        cache.write_bars("1d", {"600000.SH": data})


def test_bad_coverage_is_refused(cache: Cache) -> None:
    with pytest.raises(InvalidArgument, match=r"coverage of 600000\.SH"):
        cache.write_bars("1d", {"600000.SH": bars(2)}, coverage={"600000.SH": (1,)})  # type: ignore[dict-item]


def test_bad_home_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="home"):
        Cache(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- corruption


def test_truncated_file_raises_cache_error_naming_it(tmp_path: Path) -> None:
    Cache(tmp_path).write_bars("1d", {"600000.SH": bars(100)})
    (path,) = shard_files(Cache(tmp_path))
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    with pytest.raises(CacheError, match=str(path)) as info:
        Cache(tmp_path).read("1d", ["600000.SH"])
    assert "verify --repair" in str(info.value) and "truncated" in str(info.value)


def test_flipped_header_byte_is_caught_on_open(tmp_path: Path) -> None:
    Cache(tmp_path).write_bars("1d", {"600000.SH": bars(100)})
    (path,) = shard_files(Cache(tmp_path))
    raw = bytearray(path.read_bytes())
    raw[40] ^= 0xFF  # inside the meta block
    path.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match=str(path)):
        Cache(tmp_path).codes("1d")


def test_flipped_data_byte_is_caught_by_verify_and_checksummed_reads(tmp_path: Path) -> None:
    Cache(tmp_path).write_bars("1d", {"600000.SH": bars(100)})
    (path,) = shard_files(Cache(tmp_path))
    raw = bytearray(path.read_bytes())
    raw[-300] ^= 0x01  # inside the last column
    path.write_bytes(bytes(raw))
    problems = Cache(tmp_path).verify()
    assert len(problems) == 1 and str(path) in problems[0] and "checksum" in problems[0]
    with pytest.raises(CacheError, match="checksum"):
        Cache(tmp_path, checksums=True).read("1d", ["600000.SH"])


def test_verify_repair_drops_the_damaged_shard_only(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(10), "000001.SZ": bars(10)})
    bad = next(p for p in shard_files(c) if p.parent.name == "SH")
    with open(bad, "r+b") as f:
        f.truncate(100)
    problems = Cache(tmp_path).verify(repair=True)
    assert any("dropped shard 1d/SH/6000" in p for p in problems)
    fresh = Cache(tmp_path)
    assert fresh.codes("1d") == ["000001.SZ"]
    assert fresh.verify() == []
    assert not bad.exists()


def test_damaged_manifest_is_reported_and_rebuilt(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(10)})
    (c.root / "1d" / "MANIFEST").write_bytes(b"{not json")
    with pytest.raises(CacheError, match="MANIFEST"):
        Cache(tmp_path).codes("1d")
    Cache(tmp_path).verify(repair=True)
    assert Cache(tmp_path).arrays("1d", "600000.SH")["close"].tolist() == bars(10)["close"].tolist()


# ---------------------------------------------------------------------- atomicity


_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from qmtkit.data.cache import Cache
    n = 3_000_000
    t = np.arange(n, dtype=np.int64) * 60_000 + 1_704_038_400_000
    x = np.full(n, 2.0)
    cols = {"time": t, "open": x, "high": x, "low": x, "close": x}
    print("ready", flush=True)
    Cache(sys.argv[1]).write_bars("1m", {"600000.SH": cols}, replace=True)
    print("done", flush=True)
    """
)


def test_writer_killed_mid_write_leaves_previous_version_readable(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    old = bars(100, step=60_000)
    c.write_bars("1m", {"600000.SH": old})
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    tmp_seen = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not tmp_seen:
        tmp_seen = any(".tmp-" in p.name for p in (c.root / "1m" / "SH").iterdir())
        if proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp_seen, "the writer finished before it could be killed mid-write"
    fresh = Cache(tmp_path)
    np.testing.assert_array_equal(fresh.arrays("1m", "600000.SH")["close"], old["close"])
    [leftover] = fresh.verify()  # reported, not called OK
    assert "leftover file" in leftover and ".g2.qkc.tmp-" in leftover
    assert "cache verify --repair` deletes it" in leftover
    # The next write sweeps the dead writer's leftovers.
    fresh.write_bars("1d", {"600000.SH": bars(1)})
    fresh.write_bars("1m", {"600001.SH": bars(1)})
    assert not any(".tmp-" in p.name for p in (c.root / "1m" / "SH").iterdir())


def test_reader_sees_one_consistent_version_while_a_writer_works(tmp_path: Path) -> None:
    codes = [f"{600000 + i:06d}.SH" for i in range(20)]

    def version(v: int) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for c in codes:
            x = np.full(50 + v, float(v))
            t = T0 + np.arange(50 + v, dtype=np.int64) * DAY
            out[c] = {"time": t, "open": x, "high": x, "low": x, "close": x}
        return out

    Cache(tmp_path).write_bars("1d", version(0), replace=True)
    stop = threading.Event()
    errors: list[str] = []

    def write() -> None:
        w = Cache(tmp_path)
        v = 1
        while not stop.is_set() and v < 40:
            w.write_bars("1d", version(v), replace=True)
            v += 1

    writer = threading.Thread(target=write)
    writer.start()
    reader = Cache(tmp_path)
    reads = 0
    try:
        while writer.is_alive() or reads < 5:
            df = reader.read("1d", codes)
            values = df["close"].unique().to_list()
            if len(values) != 1 or df.height != 20 * (50 + int(values[0])):
                errors.append(f"mixed read: values {values}, rows {df.height}")
            reads += 1
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert reads >= 5
    assert reader.read("1d", codes)["close"][0] == 39.0


def test_a_held_frame_keeps_its_version_after_a_rewrite(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(10, seed=1)})
    held = cache.read("1d", ["600000.SH"])
    cache.write_bars("1d", {"600000.SH": bars(10, seed=2)}, replace=True)
    gc.collect()
    np.testing.assert_array_equal(held["close"].to_numpy(), bars(10, seed=1)["close"])
    np.testing.assert_array_equal(
        cache.arrays("1d", "600000.SH")["close"], bars(10, seed=2)["close"]
    )
    assert len(shard_files(cache)) == 1


def test_info_summarises_the_manifest(cache: Cache) -> None:
    cache.write_bars("1d", {"600000.SH": bars(10), "000001.SZ": bars(5)})
    (info,) = cache.info()
    assert (info.period, info.codes, info.rows, info.shards, info.version) == ("1d", 2, 15, 2, 1)
    assert info.bytes == sum(p.stat().st_size for p in shard_files(cache))


def test_dividends_round_trip(cache: Cache) -> None:
    assert cache.read_dividends("600000.SH") is None
    cache.write_dividends("600000.SH", [{"time": T0, "interest": 0.5}])
    assert cache.read_dividends("600000.SH") == [{"time": T0, "interest": 0.5}]


def test_environment_home_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    Cache().write_bars("1d", {"600000.SH": bars(1)})
    assert (tmp_path / "data" / "1d" / "MANIFEST").exists()
    assert os.listdir(tmp_path / "data" / "1d" / "SH") == ["6000.g1.qkc"]


def test_read_refuses_an_unknown_field(cache: Cache) -> None:
    with pytest.raises(InvalidArgument, match="'closing'"):
        cache.read("1d", ["600000.SH"], fields=["closing"])
