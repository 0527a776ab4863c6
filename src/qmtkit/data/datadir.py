"""Read MiniQMT's own local data files (``userdata_mini/datadir``) into cache columns.

Layout (little-endian; prices are integers x 1000), as documented by public decoders and
checked against real files:

* bar files ``<MARKET>/86400/<symbol>.DAT`` (daily) and ``<MARKET>/60/<symbol>.DAT`` (1-minute):
  the 8-byte header ``FE FF FF FF FF FF FF 7F`` then 64-byte records. Decoded: time (u32 Unix
  seconds; daily = 00:00 Beijing, 1-minute = the bar's end) at 0, open/high/low/close at 4/8/12/16,
  volume (u32) at 24, amount (u64 yuan) at 32, preClose at 52 (0 on a first record).
* tick files ``<MARKET>/0/<symbol>/<YYYYMMDD>.DAT``: no header, 144-byte records. Decoded: time
  (u64 ms) at 0, lastPrice at 8, cumulative amount (u64) at 16, cumulative volume (u32) at 24,
  status (u32) at 28, open/high/low at 44/48/52, lastClose at 60, then five levels each of
  askPrice, askVol, bidPrice, bidVol from 64 (these depth fields are unverified for stocks and
  zero for an index).

Bytes not listed are not understood and are never decoded: bar ``suspendFlag`` is set to 0 and
the tick columns ``pvolume``, ``openInt`` and ``transactionNum`` are omitted. Volumes are
returned in the file's unit (lots for stocks, as xtquant reports them).

Decoding is one vectorised numpy view per file; every function returns ``dict[str, ndarray]``
with the names and dtypes of :mod:`qmtkit.data.schema`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, TypeAlias

import msgspec
import numpy as np
import numpy.typing as npt

from qmtkit.codes import parse_code
from qmtkit.data.calendar import day_number, ms_to_yyyymmdd
from qmtkit.data.schema import BAR_DTYPES, TICK_DTYPES, window
from qmtkit.errors import CacheError, InvalidArgument, InvalidCode

Columns: TypeAlias = dict[str, npt.NDArray[Any]]
PathLike: TypeAlias = "str | os.PathLike[str]"

BAR_HEADER: Final = bytes.fromhex("feffffffffffff7f")
BAR_RECORD: Final = 64
TICK_RECORD: Final = 144
#: Folder name of each period inside a market folder.
PERIOD_DIRS: Final = {"1d": "86400", "1m": "60", "tick": "0"}

_BAR_RAW = np.dtype(
    {
        "names": ["time", "open", "high", "low", "close", "volume", "amount", "preClose"],
        "formats": ["<u4", "<u4", "<u4", "<u4", "<u4", "<u4", "<u8", "<u4"],
        "offsets": [0, 4, 8, 12, 16, 24, 32, 52],
        "itemsize": BAR_RECORD,
    }
)

_LEVELS = range(1, 6)
_TICK_FIELDS: list[tuple[str, str, int]] = [
    ("time", "<u8", 0),
    ("lastPrice", "<u4", 8),
    ("amount", "<u8", 16),
    ("volume", "<u4", 24),
    ("stockStatus", "<u4", 28),
    ("open", "<u4", 44),
    ("high", "<u4", 48),
    ("low", "<u4", 52),
    ("lastClose", "<u4", 60),
    *[(f"askPrice{i}", "<u4", 64 + 4 * (i - 1)) for i in _LEVELS],
    *[(f"askVol{i}", "<u4", 84 + 4 * (i - 1)) for i in _LEVELS],
    *[(f"bidPrice{i}", "<u4", 104 + 4 * (i - 1)) for i in _LEVELS],
    *[(f"bidVol{i}", "<u4", 124 + 4 * (i - 1)) for i in _LEVELS],
]
_TICK_RAW = np.dtype(
    {
        "names": [n for n, _, _ in _TICK_FIELDS],
        "formats": [f for _, f, _ in _TICK_FIELDS],
        "offsets": [o for _, _, o in _TICK_FIELDS],
        "itemsize": TICK_RECORD,
    }
)
_TICK_PRICES: Final = frozenset(
    ["lastPrice", "open", "high", "low", "lastClose"]
    + [f"{s}Price{i}" for s in ("ask", "bid") for i in _LEVELS]
)


class DatFile(msgspec.Struct, frozen=True):
    """One MiniQMT data file found by :func:`scan`.

    ``records`` and the times are 0 and ``problem`` says why when the file cannot be read.
    ``day`` is the ``YYYYMMDD`` of a tick file, 0 for bar files.
    """

    code: str
    period: str
    path: str
    records: int
    first_time: int
    last_time: int
    day: int = 0
    problem: str = ""


def _bar_period_dir(period: object) -> str:
    if period in ("1d", "1m"):
        return PERIOD_DIRS[str(period)]
    raise InvalidArgument(
        f"bad period {period!r} for a MiniQMT bar file: expected '1d' (86400/) or '1m' (60/)"
    )


def bar_path(datadir: PathLike, code: str, period: str) -> Path:
    """Where MiniQMT keeps the ``period`` bars of ``code`` under ``datadir``."""
    c = parse_code(code)
    return Path(datadir) / c.exchange / _bar_period_dir(period) / f"{c.symbol}.DAT"


def tick_path(datadir: PathLike, code: str, day: object) -> Path:
    """Where MiniQMT keeps the ticks of ``code`` on ``day`` under ``datadir``."""
    c = parse_code(code)
    ymd = int(ms_to_yyyymmdd(day_number(day) * 86_400_000))
    return Path(datadir) / c.exchange / PERIOD_DIRS["tick"] / c.symbol / f"{ymd}.DAT"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CacheError(f"{path}: no such MiniQMT data file") from None
    except OSError as e:
        raise CacheError(f"{path}: cannot be read ({e.strerror or e})") from None


def _check_bar_shape(path: Path, size: int, header: bytes) -> None:
    if size < len(BAR_HEADER) or (size - len(BAR_HEADER)) % BAR_RECORD:
        raise CacheError(
            f"{path}: size {size} bytes is not 8 + 64*N: the file is truncated or not a "
            "MiniQMT bar file"
        )
    if header[: len(BAR_HEADER)] != BAR_HEADER:
        raise CacheError(
            f"{path}: bad header {header[:8].hex(' ')}: expected {BAR_HEADER.hex(' ')}"
        )


def _check_tick_shape(path: Path, size: int) -> None:
    if size % TICK_RECORD:
        raise CacheError(
            f"{path}: size {size} bytes is not a multiple of 144: the file is truncated or "
            "not a MiniQMT tick file"
        )


def _decode_bars(path: Path, data: bytes) -> npt.NDArray[np.void]:
    _check_bar_shape(path, len(data), data)
    raw = np.frombuffer(data, dtype=_BAR_RAW, offset=len(BAR_HEADER))
    t = raw["time"]
    bad = np.flatnonzero(t[1:] <= t[:-1])
    if bad.size:
        i = int(bad[0])
        raise CacheError(
            f"{path}: times out of order at record {i + 1} ({int(t[i + 1])} after {int(t[i])} "
            "Unix s): expected strictly increasing times"
        )
    return raw


def _decode_ticks(path: Path, data: bytes) -> npt.NDArray[np.void]:
    _check_tick_shape(path, len(data))
    raw = np.frombuffer(data, dtype=_TICK_RAW)
    t = raw["time"]
    bad = np.flatnonzero(t[1:] < t[:-1])
    if bad.size:
        i = int(bad[0])
        raise CacheError(
            f"{path}: times out of order at record {i + 1} ({int(t[i + 1])} ms after "
            f"{int(t[i])} ms): expected non-decreasing times"
        )
    return raw


def decode_bar_bytes(data: bytes, source: str = "<bytes>") -> Columns:
    """Decode the bytes of a MiniQMT bar file; ``source`` names it in errors."""
    raw = _decode_bars(Path(source), data)
    n = len(raw)
    return {
        "time": raw["time"].astype(np.int64) * 1000,
        "open": raw["open"] / 1000.0,
        "high": raw["high"] / 1000.0,
        "low": raw["low"] / 1000.0,
        "close": raw["close"] / 1000.0,
        "volume": raw["volume"].astype(BAR_DTYPES["volume"]),
        "amount": raw["amount"].astype(BAR_DTYPES["amount"]),
        "preClose": raw["preClose"] / 1000.0,
        "suspendFlag": np.zeros(n, dtype=BAR_DTYPES["suspendFlag"]),
    }


def decode_tick_bytes(data: bytes, source: str = "<bytes>") -> Columns:
    """Decode the bytes of a MiniQMT tick file; ``source`` names it in errors."""
    raw = _decode_ticks(Path(source), data)
    out: Columns = {}
    for name in _TICK_RAW.names or ():
        col = raw[name]
        if name in _TICK_PRICES:
            out[name] = col / 1000.0
        else:
            out[name] = col.astype(TICK_DTYPES[name])
    return out


def read_bars(datadir: PathLike, code: str, period: str) -> Columns:
    """All ``period`` (``'1d'`` or ``'1m'``) bars of ``code`` in a MiniQMT datadir, oldest first."""
    path = bar_path(datadir, code, period)
    return decode_bar_bytes(_read(path), str(path))


def read_ticks(datadir: PathLike, code: str, day: object) -> Columns:
    """The ticks of ``code`` on ``day`` (``YYYYMMDD`` or any calendar day form), oldest first."""
    path = tick_path(datadir, code, day)
    return decode_tick_bytes(_read(path), str(path))


def _code_or_none(symbol: str, market: str) -> str | None:
    try:
        return str(parse_code(f"{symbol}.{market}"))
    except InvalidCode:
        return None


def _markets(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.upper() in ("SH", "SZ", "BJ"))


def _check_root(datadir: PathLike) -> Path:
    root = Path(datadir)
    if not root.is_dir():
        raise CacheError(f"{root}: not a directory: expected MiniQMT's datadir (with SH/, SZ/...)")
    return root


def list_codes(datadir: PathLike, period: str) -> list[str]:
    """Codes with ``period`` data (``'1d'``, ``'1m'`` or ``'tick'``) in a datadir, sorted.

    Files whose name is not a code qmtkit knows (bonds, futures...) are skipped.
    """
    if period not in PERIOD_DIRS:
        raise InvalidArgument(f"bad period {period!r}: expected one of {', '.join(PERIOD_DIRS)}")
    root = _check_root(datadir)
    out: set[str] = set()
    for mdir in _markets(root):
        pdir = mdir / PERIOD_DIRS[period]
        if not pdir.is_dir():
            continue
        for entry in pdir.iterdir():
            if period == "tick":
                if not entry.is_dir() or not any(entry.glob("*.DAT")):
                    continue
                symbol = entry.name
            else:
                if entry.suffix.upper() != ".DAT" or not entry.is_file():
                    continue
                symbol = entry.stem
            code = _code_or_none(symbol, mdir.name.upper())
            if code is not None:
                out.add(code)
    return sorted(out)


def _bar_entry(code: str, period: str, path: Path) -> DatFile:
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(8 + BAR_RECORD)
            f.seek(max(size - BAR_RECORD, 0))
            tail = f.read()
        _check_bar_shape(path, size, head)
        n = (size - 8) // BAR_RECORD
        first = last = 0
        if n:
            first = int(np.frombuffer(head, dtype=_BAR_RAW, offset=8, count=1)["time"][0]) * 1000
            last = int(np.frombuffer(tail, dtype=_BAR_RAW, count=1)["time"][0]) * 1000
        return DatFile(code, period, str(path), n, first, last)
    except CacheError as e:
        return DatFile(code, period, str(path), 0, 0, 0, problem=str(e))


def _tick_entry(code: str, path: Path) -> DatFile:
    size = path.stat().st_size
    try:
        day = int(path.stem) if len(path.stem) == 8 and path.stem.isdigit() else 0
        _check_tick_shape(path, size)
        n = size // TICK_RECORD
        first = last = 0
        if n:
            with path.open("rb") as f:
                first = int(np.frombuffer(f.read(8), dtype="<u8")[0])
                f.seek(size - TICK_RECORD)
                last = int(np.frombuffer(f.read(8), dtype="<u8")[0])
        return DatFile(code, "tick", str(path), n, first, last, day=day)
    except CacheError as e:
        return DatFile(code, "tick", str(path), 0, 0, 0, problem=str(e))


def scan(datadir: PathLike) -> list[DatFile]:
    """Every bar and tick file of known codes in a datadir, with record counts and time spans.

    Only the first and last records are read, so a scan is cheap; a file whose size or header
    is wrong is listed with ``problem`` set instead of raising.
    """
    root = _check_root(datadir)
    out: list[DatFile] = []
    for mdir in _markets(root):
        market = mdir.name.upper()
        for period in ("1d", "1m"):
            pdir = mdir / PERIOD_DIRS[period]
            if not pdir.is_dir():
                continue
            for f in sorted(pdir.glob("*.DAT")):
                code = _code_or_none(f.stem, market)
                if code is not None and f.is_file():
                    out.append(_bar_entry(code, period, f))
        tdir = mdir / PERIOD_DIRS["tick"]
        if tdir.is_dir():
            for sdir in sorted(p for p in tdir.iterdir() if p.is_dir()):
                code = _code_or_none(sdir.name, market)
                if code is None:
                    continue
                out.extend(_tick_entry(code, f) for f in sorted(sdir.glob("*.DAT")) if f.is_file())
    return out


# --------------------------------------------------------------------------- range queries


def tick_days(datadir: PathLike, code: str, start_ms: int = 0, end_ms: int = 0) -> list[int]:
    """Days (``YYYYMMDD``, ascending) in ``[start_ms, end_ms]`` with a tick file of ``code``."""
    c = parse_code(code)
    folder = _check_root(datadir) / c.exchange / PERIOD_DIRS["tick"] / c.symbol
    if not folder.is_dir():
        return []
    first = int(ms_to_yyyymmdd(start_ms)) if start_ms else 0
    last = int(ms_to_yyyymmdd(end_ms)) if end_ms else 99999999
    days = []
    for f in folder.iterdir():
        # Only files named by their day are tick files; anything else is not MiniQMT's.
        named_by_day = f.suffix.upper() == ".DAT" and len(f.stem) == 8 and f.stem.isdigit()
        if named_by_day and f.is_file() and first <= int(f.stem) <= last:
            days.append(int(f.stem))
    return sorted(days)


def read_range(
    datadir: PathLike, code: str, period: str, start_ms: int = 0, end_ms: int = 0, count: int = -1
) -> Columns:
    """``code``'s ``period`` rows (tick, 1m, 1d) in ``[start_ms, end_ms]``, oldest first.

    ``count >= 0`` keeps the last ``count`` rows; tick files are read newest day first and
    reading stops once ``count`` rows are in hand. A code without files gives empty columns.
    """
    if period != "tick":
        path = bar_path(datadir, code, period)
        if not path.is_file():
            return decode_bar_bytes(BAR_HEADER, str(path))
        return window(read_bars(datadir, code, period), start_ms, end_ms, count)
    parts: list[Columns] = []
    rows = 0
    for day in reversed(tick_days(datadir, code, start_ms, end_ms)):
        if 0 <= count <= rows:
            break
        part = window(read_ticks(datadir, code, day), start_ms, end_ms)
        parts.insert(0, part)
        rows += len(part["time"])
    if not parts:
        return decode_tick_bytes(b"", f"{datadir}: no tick files of {code}")
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return window(cols, count=count)
