"""xtquant's return shapes built from qmtkit's long Polars frames and numpy columns.

Pure functions, no I/O. Times arrive as Unix milliseconds; xtquant labels rows and columns
with Beijing-time strings (``'20240102'`` for daily and longer periods, ``'20240102093100'``
otherwise), which are computed once per distinct time and shared between codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from qmtkit.models import Bar, Tick

BEIJING_MS = 8 * 3600 * 1000

#: The K-line columns of xtquant's frames, in xtquant's order (its spelling included).
KLINE_FIELDS: tuple[str, ...] = (
    "time", "open", "high", "low", "close", "volume", "amount",
    "settelementPrice", "openInterest", "preClose", "suspendFlag",
)  # fmt: skip
#: Columns xtquant has and qmtkit does not store: filled with zeros.
_ZERO_FIELDS = {"settelementPrice": np.float64, "openInterest": np.int64}

#: Tick columns of xtquant's tick arrays (book levels as 5-element sub-arrays).
TICK_FIELDS: tuple[str, ...] = (
    "time", "lastPrice", "open", "high", "low", "lastClose", "amount", "volume",
    "pvolume", "stockStatus", "openInt", "lastSettlementPrice",
    "askPrice", "bidPrice", "askVol", "bidVol", "transactionNum",
)  # fmt: skip
TICK_DTYPE = np.dtype(
    [
        ("time", "<i8"), ("lastPrice", "<f8"), ("open", "<f8"), ("high", "<f8"),
        ("low", "<f8"), ("lastClose", "<f8"), ("amount", "<f8"), ("volume", "<i8"),
        ("pvolume", "<i8"), ("stockStatus", "<i4"), ("openInt", "<i8"),
        ("lastSettlementPrice", "<f8"), ("askPrice", "<f8", (5,)), ("bidPrice", "<f8", (5,)),
        ("askVol", "<i8", (5,)), ("bidVol", "<i8", (5,)), ("transactionNum", "<i8"),
    ]
)  # fmt: skip


def time_format(period: str) -> str:
    """xtquant's label format for a period's times."""
    return "%Y%m%d" if period in ("1d", "1w", "1mon", "1q", "1hy", "1y") else "%Y%m%d%H%M%S"


def time_labels(ms: npt.NDArray[np.int64], period: str) -> npt.NDArray[np.object_]:
    """Beijing-time labels of ``ms`` (any order, repeats allowed) in ``period``'s format."""
    if len(ms) == 0:
        return np.empty(0, dtype=object)
    uniq, inverse = np.unique(ms, return_inverse=True)
    stamps = pd.to_datetime(uniq + BEIJING_MS, unit="ms")
    labels = np.asarray(stamps.strftime(time_format(period)), dtype=object)
    out: npt.NDArray[np.object_] = labels[inverse]
    return out


def kline_fields(fields: Sequence[str] | None) -> list[str]:
    """The output columns for xtquant's ``field_list`` (``[]``: all of them)."""
    return list(KLINE_FIELDS) if not fields else list(fields)


def stored_fields(fields: Sequence[str]) -> list[str]:
    """The stored columns needed for ``fields`` (xtquant-only ones are synthesised)."""
    return [f for f in fields if f not in _ZERO_FIELDS and f != "time"]


def _runs(frame: pl.DataFrame) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Codes in frame order and the row offset where each starts (plus the end)."""
    if frame.height == 0:
        return [], np.zeros(1, dtype=np.int64)
    runs = frame.get_column("code").cast(pl.String).rle()
    codes = runs.struct.field("value").to_list()
    lens = runs.struct.field("len").to_numpy().astype(np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return codes, offsets


def _ms(frame: pl.DataFrame) -> npt.NDArray[np.int64]:
    out: npt.NDArray[np.int64] = (
        frame.get_column("time").dt.epoch("ms").to_numpy().astype(np.int64, copy=False)
    )
    return out


def _columns(
    frame: pl.DataFrame, fields: Sequence[str], ms: npt.NDArray[np.int64]
) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for f in fields:
        if f == "time":
            cols[f] = ms
        elif f in _ZERO_FIELDS:
            cols[f] = np.zeros(frame.height, dtype=_ZERO_FIELDS[f])
        else:
            cols[f] = frame.get_column(f).to_numpy()
    return cols


def ex_frames(
    frame: pl.DataFrame, codes: Sequence[str], period: str, fields: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """``get_market_data_ex``'s shape: code → DataFrame indexed by time labels.

    Codes without data get an empty frame with the same columns, as xtquant does.
    """
    ms = _ms(frame)
    big = pd.DataFrame(_columns(frame, fields, ms), columns=list(fields))
    labels = time_labels(ms, period)
    present, offsets = _runs(frame)
    out: dict[str, pd.DataFrame] = {}
    where = {c: i for i, c in enumerate(present)}
    for code in codes:
        i = where.get(code)
        if i is None:
            out[code] = pd.DataFrame(columns=list(fields))
            continue
        a, b = int(offsets[i]), int(offsets[i + 1])
        part = big.iloc[a:b]
        part.index = pd.Index(labels[a:b])
        out[code] = part
    return out


def field_frames(
    frame: pl.DataFrame, codes: Sequence[str], period: str, fields: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """``get_market_data``'s shape: field → DataFrame (index codes, columns time labels)."""
    ms = _ms(frame)
    uniq = np.unique(ms)
    columns = list(time_labels(uniq, period))
    present, offsets = _runs(frame)
    where = {c: i for i, c in enumerate(present)}
    rows = np.full(frame.height, -1, dtype=np.int64)
    for r, code in enumerate(codes):
        i = where.get(code)
        if i is not None:
            rows[offsets[i] : offsets[i + 1]] = r
    cols_idx = np.searchsorted(uniq, ms)
    keep = rows >= 0
    values = _columns(frame, fields, ms)
    out: dict[str, pd.DataFrame] = {}
    for f in fields:
        grid = np.full((len(codes), len(uniq)), np.nan)
        grid[rows[keep], cols_idx[keep]] = np.asarray(values[f], dtype=np.float64)[keep]
        out[f] = pd.DataFrame(grid, index=list(codes), columns=columns)
    return out


def tick_array(ticks: Sequence[Tick]) -> npt.NDArray[np.void]:
    """Ticks as one of xtquant's structured tick arrays (time ascending as given)."""
    arr = np.zeros(len(ticks), dtype=TICK_DTYPE)
    for i, t in enumerate(ticks):
        arr[i] = (
            t.time, t.lastPrice, t.open, t.high, t.low, t.lastClose, t.amount, t.volume,
            t.pvolume, t.stockStatus, t.openInt, t.lastSettlementPrice,
            _pad(t.askPrice), _pad(t.bidPrice), _pad(t.askVol), _pad(t.bidVol),
            t.transactionNum,
        )  # fmt: skip
    return arr


def tick_columns_array(cols: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.void]:
    """Stored tick columns (``askPrice1``...) as xtquant's structured tick array."""
    n = len(cols["time"])
    arr = np.zeros(n, dtype=TICK_DTYPE)
    for name in TICK_DTYPE.names or ():
        if name in cols:
            arr[name] = cols[name]
        elif name in ("askPrice", "bidPrice", "askVol", "bidVol"):
            for lvl in range(5):
                src = cols.get(f"{name}{lvl + 1}")
                if src is not None:
                    arr[name][:, lvl] = src
    return arr


def tick_frame(arr: npt.NDArray[np.void]) -> pd.DataFrame:
    """A tick array as a DataFrame indexed by time labels (book levels as list cells)."""
    data: dict[str, Any] = {}
    for name in TICK_DTYPE.names or ():
        col = arr[name]
        data[name] = [list(x) for x in col.tolist()] if col.ndim > 1 else col
    df: pd.DataFrame = pd.DataFrame(data, columns=list(TICK_FIELDS))
    df.index = pd.Index(time_labels(arr["time"].astype(np.int64), "tick"))
    return df


def _pad(values: Sequence[float] | Sequence[int]) -> list[float]:
    out = [float(v) for v in values[:5]]
    return out + [0.0] * (5 - len(out))


def tick_dict(t: Tick) -> dict[str, Any]:
    """A tick as xtquant's quote dict (``get_full_tick`` values, push records)."""
    d = msgspec.structs.asdict(t)
    d.pop("stock_code", None)
    return d


def bar_dict(b: Bar) -> dict[str, Any]:
    """A bar as xtquant's K-line push record."""
    d = msgspec.structs.asdict(b)
    d.pop("stock_code", None)
    d.pop("period", None)
    return d
