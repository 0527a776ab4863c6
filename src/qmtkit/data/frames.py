"""Polars frames over mapped shards, without copying the stored columns.

A shard's frame is built once per mapping: numeric columns are zero-copy views of the map,
``time`` is the int64 column reinterpreted as ``Datetime('ms', 'Asia/Shanghai')`` (no copy)
and ``code`` is a categorical built from the row index. Reads are then slices of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from qmtkit.clock import BEIJING_OFFSET_MS, BEIJING_TZ_NAME
from qmtkit.data.store import Shard

TZ = BEIJING_TZ_NAME
TIME_DTYPE = pl.Datetime("ms", TZ)
_PL_TYPES: dict[str, type[pl.DataType]] = {
    "<i8": pl.Int64,
    "<i4": pl.Int32,
    "|i1": pl.Int8,
    "<f8": pl.Float64,
}


def code_column(codes: Sequence[str], counts: np.ndarray | Sequence[int]) -> pl.Series:
    """A categorical ``code`` column repeating ``codes[i]`` ``counts[i]`` times."""
    idx = np.repeat(np.arange(len(codes), dtype=np.uint32), np.asarray(counts, dtype=np.int64))
    return pl.Series("code", list(codes), dtype=pl.Categorical).gather(idx)


def shard_frame(shard: Shard) -> pl.DataFrame:
    """The whole shard as one frame: ``code``, ``time``, then the stored columns."""
    cols: list[pl.Series] = [code_column(shard.codes, np.diff(shard.starts))]
    for name, arr in shard.columns.items():
        s = pl.Series(name, arr)
        if name == "time":
            s = s.cast(TIME_DTYPE)
        cols.append(s)
    return pl.DataFrame(cols)


def empty_frame(dtypes: Mapping[str, np.dtype[np.generic]], fields: Sequence[str]) -> pl.DataFrame:
    """A zero-row frame with the columns a read of ``fields`` would have."""
    schema: dict[str, pl.DataType | type[pl.DataType]] = {"code": pl.Categorical}
    for name in ("time", *fields):
        if name in schema:
            continue
        schema[name] = TIME_DTYPE if name == "time" else _PL_TYPES[dtypes[name].str]
    return pl.DataFrame(schema=schema)


def columns_of(frame: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """Keep ``code``, ``time`` and ``fields`` (in that order), without copying."""
    names = ["code", "time", *[f for f in fields if f not in ("code", "time")]]
    if names == frame.columns:
        return frame
    return pl.DataFrame([frame.get_column(n) for n in names])


def time_strings(ms: np.ndarray, intraday: bool) -> np.ndarray:
    """xtquant's index labels of Unix-ms times: ``YYYYMMDD`` (days) or ``YYYYMMDDhhmmss``."""
    local = np.asarray(ms, dtype=np.int64) + BEIJING_OFFSET_MS
    unit = "s" if intraday else "D"
    text = np.datetime_as_string(local.astype("datetime64[ms]").astype(f"datetime64[{unit}]"))
    if intraday:
        # 'YYYY-MM-DDThh:mm:ss' -> 'YYYYMMDDhhmmss'
        b = text.astype("S19").view("S1").reshape(-1, 19)
        keep = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        out: np.ndarray = b[:, keep].copy().view("S14").ravel().astype(str)
        return out
    b = text.astype("S10").view("S1").reshape(-1, 10)
    days: np.ndarray = b[:, [0, 1, 2, 3, 5, 6, 8, 9]].copy().view("S8").ravel().astype(str)
    return days


def to_pandas_by_code(frame: pl.DataFrame, *, intraday: bool = False) -> dict[str, Any]:
    """xtquant's ``get_market_data_ex`` shape: code -> pandas frame indexed by time strings.

    ``frame`` is a long frame as ``Cache.read`` returns (rows grouped by code, time
    ascending). Columns keep their names, with ``time`` as Unix ms. Each chunk of the frame
    becomes one pandas frame over the same memory (no copy); every code's frame is then a
    row-slice view of it, labelled by a slice of one shared index of time strings. That is
    far cheaper than building thousands of frames column by column.
    """
    import pandas as pd

    if frame.height == 0:
        return {}
    code_ids = frame.get_column("code").to_physical().to_numpy()
    change = np.flatnonzero(code_ids[1:] != code_ids[:-1]) + 1
    starts = np.concatenate([[0], change, [frame.height]]).astype(np.int64)
    names = frame.get_column("code").gather(starts[:-1]).cast(pl.String).to_list()
    if len(set(names)) != len(names):
        raise ValueError("rows of one code must be contiguous (as Cache.read returns them)")
    time = frame.get_column("time").to_physical()
    uniq = time.unique().sort().to_numpy()
    labels = pd.Index(time_strings(uniq, intraday))
    firsts = time.gather(starts[:-1]).to_numpy()
    lasts = time.gather(starts[1:] - 1).to_numpy()
    pos_a = np.searchsorted(uniq, firsts)
    pos_b = np.searchsorted(uniq, lasts)

    value_names = ["time", *[n for n in frame.columns if n not in ("code", "time")]]
    series = [time.alias("time"), *[frame.get_column(n) for n in value_names[1:]]]
    chunked = [s.get_chunks() for s in series]
    bounds = [len(c) for c in chunked[0]]
    if any([len(c) for c in chunks] != bounds for chunks in chunked):
        series = [s.rechunk() for s in series]
        chunked = [[s] for s in series]
        bounds = [frame.height]
    chunk_start = np.concatenate([[0], np.cumsum(bounds)]).astype(np.int64)
    bigs = [
        pd.DataFrame({n: chunked[j][k].to_numpy() for j, n in enumerate(value_names)}, copy=False)
        for k in range(len(bounds))
    ]
    out: dict[str, Any] = {}
    for i, code in enumerate(names):
        a, b = int(starts[i]), int(starts[i + 1])
        k = int(np.searchsorted(chunk_start, a, "right")) - 1
        if b > chunk_start[k + 1]:
            raise ValueError("a code's rows straddle two chunks; rechunk the frame first")
        part = bigs[k].iloc[a - chunk_start[k] : b - chunk_start[k]]
        pa, pb = int(pos_a[i]), int(pos_b[i])
        if pb - pa == b - a - 1:
            part.index = labels[pa : pb + 1]
        else:
            part.index = labels.take(np.searchsorted(uniq, time.slice(a, b - a).to_numpy()))
        out[code] = part
    return out
