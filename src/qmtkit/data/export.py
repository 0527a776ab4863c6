"""The cache as hive-partitioned Parquet that other engines read as it is.

Layout under the export directory::

    period=1d/year=2024/part-0000.parquet     code, time, open, ..., suspendFlag
    period=5m/year=2024/part-0000.parquet     (codes in groups of <= 8M rows: one file each)
    dividends/part-0000.parquet               code, time, interest, stockBonus, ... dr
    _qmtkit_export.json                       what was exported (engines skip '_' files)

Partitioned by period, then by year: a backtest or a study filters on a time range first,
and a year directory is pruned before any file is opened; a new year adds a directory and
an update rewrites only the current year. Inside a file rows are sorted by code, then time,
in row groups of 128k rows whose statistics let a code filter skip most of the file.
Partitioning by code bucket instead would make every time-range scan open every bucket.

Columns: ``code`` (string), ``time`` (timestamp ms, UTC-adjusted — the instant; shown in
Beijing time by engines that honour the stored zone), then the stored columns unadjusted
with the cache's dtypes. ``period`` and ``year`` come from the directory names (hive
partitioning), as DuckDB (``hive_partitioning``), Polars (``scan_parquet(...,
hive_partitioning=True)``), Spark and Ray Data/pyarrow datasets read them.

The export is written to a temporary directory inside the target and each period directory
is then swapped in by rename, so a reader never sees half a period.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal, TypeAlias, cast

import msgspec
import numpy as np
import polars as pl

from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.data.cache import Cache
from qmtkit.data.schema import STORED_PERIODS
from qmtkit.errors import InvalidArgument

Compression: TypeAlias = Literal["zstd", "snappy", "lz4", "gzip", "uncompressed"]
_COMPRESSIONS: Final = ("zstd", "snappy", "lz4", "gzip", "uncompressed")
#: Rows per Parquet row group (the unit a code filter can skip).
ROW_GROUP_ROWS: Final = 128 * 1024
#: Rows of the codes exported together (one file per year each): bounds the memory used.
FILE_ROWS: Final = 8 * 1024 * 1024
FORMAT_VERSION: Final = 1
_DAY_MS: Final = 86_400_000


class ExportSummary(msgspec.Struct):
    """What an export wrote: rows and files per period, and the dividend rows."""

    format: int
    periods: dict[str, int]
    files: dict[str, int]
    dividends: int


def export_parquet(
    cache: Cache,
    out_dir: str | os.PathLike[str],
    *,
    periods: Sequence[str] | None = None,
    compression: str = "zstd",
    progress: Callable[[int, int, str], object] | None = None,
) -> ExportSummary:
    """Write the cache's bars (``periods``, default every cached one) and ex-rights records
    under ``out_dir`` as hive-partitioned Parquet; return what was written."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise InvalidArgument(f"out_dir must be a path, got {out_dir!r}")
    if compression not in _COMPRESSIONS:
        raise InvalidArgument(
            f"bad compression {compression!r}: expected zstd, snappy, lz4, gzip or uncompressed"
        )
    codec = cast(Compression, compression)
    chosen = [i.period for i in cache.info()] if periods is None else list(periods)
    bad = [p for p in chosen if p not in STORED_PERIODS]
    if bad:
        raise InvalidArgument(
            f"cannot export period(s) {bad}: expected stored periods {', '.join(STORED_PERIODS)}"
        )
    if "tick" in chosen:
        raise InvalidArgument("ticks are not exported: export bar periods (1d, 1m, 5m, ...)")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    rows: dict[str, int] = {}
    files: dict[str, int] = {}
    try:
        for i, period in enumerate(chosen, 1):
            rows[period], files[period] = _export_period(cache, period, tmp, codec)
            if progress is not None:
                progress(i, len(chosen), period)
        n_div = _export_dividends(cache, tmp, codec)
        for period in chosen:
            _swap(tmp / f"period={period}", root / f"period={period}")
        _swap(tmp / "dividends", root / "dividends")
        summary = ExportSummary(FORMAT_VERSION, rows, files, n_div)
        (root / "_qmtkit_export.json").write_bytes(msgspec.json.encode(summary))
        return summary
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, final: Path) -> None:
    """Replace ``final`` by ``new`` (both directories); a missing ``new`` removes nothing."""
    if not new.exists():
        return
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _years(time_ms: np.ndarray) -> np.ndarray:
    """The Beijing calendar year of each time."""
    days = (time_ms + BEIJING_OFFSET_MS) // _DAY_MS
    out: np.ndarray = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    return out


def _export_period(
    cache: Cache, period: str, tmp: Path, compression: Compression
) -> tuple[int, int]:
    """Write one period, a group of codes at a time (at most ``FILE_ROWS`` rows in memory):
    group ``k`` goes to ``year=Y/part-k.parquet`` for each year it has rows in."""
    codes = cache.codes(period)
    groups: list[list[str]] = [[]]
    rows_in_group = 0
    for code in codes:
        n = len(cache.arrays(period, code)["time"])
        if groups[-1] and rows_in_group + n > FILE_ROWS:
            groups.append([])
            rows_in_group = 0
        groups[-1].append(code)
        rows_in_group += n
    total = files = 0
    for k, group in enumerate(g for g in groups if g):
        frame = cache.read(period, group)
        total += frame.height
        files += _write_years(frame, tmp / f"period={period}", f"part-{k:04d}.parquet", compression)
    return total, files


def _write_years(frame: pl.DataFrame, pdir: Path, name: str, compression: Compression) -> int:
    if frame.height == 0:
        return 0
    year = _years(frame["time"].to_physical().to_numpy())
    # Rows come grouped by code, time ascending; a stable sort by year keeps that order
    # inside each year, so every file is sorted by (code, time).
    order = np.argsort(year, kind="stable")
    year_sorted = year[order]
    edges = np.flatnonzero(np.diff(year_sorted)) + 1
    starts = np.r_[0, edges]
    ends = np.r_[edges, len(year_sorted)]
    table = frame.with_columns(
        pl.col("code").cast(pl.String),
        pl.col("time").dt.convert_time_zone("UTC"),
    )
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        ydir = pdir / f"year={int(year_sorted[a])}"
        ydir.mkdir(parents=True, exist_ok=True)
        table[order[a:b]].write_parquet(
            ydir / name,
            compression=compression,
            statistics=True,
            row_group_size=ROW_GROUP_ROWS,
        )
    return len(starts)


def _export_dividends(cache: Cache, tmp: Path, compression: Compression) -> int:
    ddir = cache.root / "dividends"
    if not ddir.is_dir():
        return 0
    records: list[dict[str, object]] = []
    for f in sorted(ddir.glob("*.json")):
        code = f.name[: -len(".json")]
        for item in cache.read_dividends(code) or []:
            records.append({"code": code, **{k: v for k, v in item.items() if k != "type"}})
    if not records:
        return 0
    df = pl.DataFrame(records).with_columns(
        pl.col("time").cast(pl.Datetime("ms", "UTC")),
    )
    out = tmp / "dividends"
    out.mkdir()
    df.sort(["code", "time"]).write_parquet(out / "part-0000.parquet", compression=compression)
    return df.height
