"""The cache after crashes and disk faults: kept downloads, named damage, checked reads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import numpy as np
import pytest

from qmtkit.data.api import MarketData
from qmtkit.data.cache import Cache
from qmtkit.errors import CacheError

DAY = 86_400_000
T0 = 1_704_038_400_000  # 2024-01-01 00:00 Beijing
CODES = [f"{600000 + i:06d}.SH" for i in range(10)]

# A venue of 50 daily bars per code, and a clock that moves 0.6 s per look: the download
# commits every second of it, i.e. after every second code.
_VENUE = """
import anyio
import numpy as np
from qmtkit.data.schema import dtypes_for
from qmtkit.errors import Unsupported
from qmtkit.messages import Dividends, FetchDividends, FetchHistory, HistoryColumns

T0, DAY = 1_704_038_400_000, 86_400_000

class Venue:
    def __init__(self):
        self.asked = []

    async def __call__(self, req):
        if isinstance(req, FetchDividends):
            return Dividends(req.code, [])
        if not isinstance(req, FetchHistory):  # e.g. the trading calendar: not served here
            raise Unsupported(f"this venue serves bars only, not {type(req).__name__}")
        self.asked.append((req.code, req.start))
        t = T0 + np.arange(50, dtype=np.int64) * DAY
        keep = (t >= req.start) & ((t <= req.end) | (req.end == 0))
        t = t[keep]
        c = 10.0 + np.arange(len(t)) * 0.01
        cols = {"time": t, "open": c, "high": c, "low": c, "close": c,
                "volume": np.full(len(t), 100), "amount": c * 100}
        dt = dtypes_for("1d")
        raw = {k: np.asarray(v, dtype=dt[k]).tobytes() for k, v in cols.items()}
        return HistoryColumns(req.code, "1d", len(t), raw, as_of=T0 + 400 * DAY)

class Clock:
    def __init__(self):
        self.now = T0 + 400 * DAY

    def __call__(self):
        self.now += 600
        return self.now
"""

_KILLED = (
    _VENUE
    + """
import os, signal, sys, anyio
from qmtkit.data.api import MarketData

def progress(done, total, code):
    if done == 7:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real crash

codes = [f"{600000 + i:06d}.SH" for i in range(10)]
data = MarketData(Venue(), sys.argv[1], now_ms=Clock())
anyio.run(lambda: data.download(codes, "1d", progress=progress))
"""
)


def test_a_killed_download_keeps_what_it_committed_and_a_rerun_fetches_the_rest(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    cache = Cache(tmp_path)
    kept = [c for c in CODES if cache.coverage("1d", c) is not None]
    assert kept == CODES[:6]  # committed every second: after codes 2, 4 and 6
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(_VENUE), namespace)  # the same venue, in this process
    venue = namespace["Venue"]()  # type: ignore[operator]
    data = MarketData(venue, tmp_path, now_ms=lambda: T0 + 400 * DAY)
    fetched = anyio.run(lambda: data.download(CODES, "1d"))
    asked = dict(venue.asked)  # type: ignore[attr-defined]
    # kept codes: at most from their newest bar on (if it could still have been forming)
    assert all(asked.get(c, T0 + 400 * DAY) >= T0 + 49 * DAY for c in CODES[:6])
    assert all(asked[c] == 0 for c in CODES[6:])  # the rest: their whole history
    assert 4 * 50 <= fetched <= 4 * 50 + 6
    assert len(data.read_bars(CODES, "1d")) == 10 * 50
    assert Cache(tmp_path).verify() == []


def bars(n: int, close0: float) -> dict[str, np.ndarray]:
    close = close0 + np.arange(n) * 0.25
    return {
        "time": T0 + np.arange(n, dtype=np.int64) * DAY,
        "open": close,
        "high": close,
        "low": close,
        "close": close,
        "volume": np.full(n, 100),
        "amount": close * 100,
    }


def test_a_deleted_shard_is_named_missing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.write_bars("1d", {"600000.SH": bars(5, 10.0), "000001.SZ": bars(5, 20.0)})
    [sh] = (cache.root / "1d" / "SH").glob("*.qkc")
    sh.unlink()
    fresh = Cache(tmp_path)
    with pytest.raises(CacheError, match="is missing although the manifest names it") as info:
        fresh.read("1d", ["600000.SH"])
    assert str(sh) in str(info.value) and "qmtkit cache verify --repair" in str(info.value)
    assert len(fresh.read("1d", ["000001.SZ"])) == 5  # the other shard still reads
    assert any("is missing" in line for line in fresh.verify())


def test_temporary_files_of_a_crashed_writer_are_reported_then_deleted_by_repair(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path)
    cache.write_bars("1d", {"600000.SH": bars(5, 10.0)})
    pdir = cache.root / "1d"
    stray = [pdir / "MANIFEST.tmp-1-deadbeef", pdir / "SH" / "6000.g9.qkc.tmp-1-cafe"]
    for path in stray:
        path.write_bytes(b"x" * 10)
    problems = cache.verify()
    assert len(problems) == 2 and all("leftover file" in p for p in problems)
    assert all(any(str(path) in p for p in problems) for path in stray)
    cache.verify(repair=True)
    assert not any(path.exists() for path in stray)
    assert cache.verify() == []
    assert len(cache.read("1d", ["600000.SH"])) == 5


def flip_close(cache: Cache, marker: float) -> None:
    """Flip one bit of the first close price equal to ``marker`` in the SH/6000 shard."""
    [shard] = (cache.root / "1d" / "SH").glob("*.qkc")
    data = bytearray(shard.read_bytes())
    at = data.find(np.float64(marker).tobytes())
    assert at > 0
    data[at] ^= 0x01
    shard.write_bytes(bytes(data))


def test_verify_on_the_read_path_catches_a_flipped_byte_in_a_data_column(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path)
    marker = 12345.6789
    b = bars(5, 10.0)
    b["close"] = np.array([marker] * 5)
    cache.write_bars("1d", {"600000.SH": b})
    flip_close(cache, marker)
    plain = Cache(tmp_path).read("1d", ["600000.SH"])
    assert plain["close"][0] != marker  # the cheap path does not look at data columns
    with pytest.raises(CacheError, match="close"):
        Cache(tmp_path).read("1d", ["600000.SH"], verify=True)
    with pytest.raises(CacheError):
        MarketData(_no_backend, tmp_path).read_bars("600000.SH", "1d", verify=True)


async def _no_backend(req: object) -> object:
    raise AssertionError(f"a cache read asked the backend for {req!r}")


def test_verified_reads_check_each_shard_once(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    marker = 12345.6789
    b = bars(5, 10.0)
    b["close"] = np.array([marker] * 5)
    cache.write_bars("1d", {"600000.SH": b})
    assert len(cache.read("1d", ["600000.SH"], verify=True)) == 5
    flip_close(cache, marker)  # after the check: what was checked once is trusted
    assert len(cache.read("1d", ["600000.SH"], verify=True)) == 5
    with pytest.raises(CacheError):  # a new Cache checks again
        Cache(tmp_path).read("1d", ["600000.SH"], verify=True)
