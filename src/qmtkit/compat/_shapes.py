"""xtquant's return shapes built from qmtkit's long Polars frames and numpy columns.

Pure functions, no I/O. Times arrive as Unix milliseconds; xtquant labels rows and columns
with Beijing-time strings (``'20240102'`` for daily and longer periods, ``'20240102093100'``
otherwise), which are computed once per distinct time and shared between codes.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.errors import InvalidArgument
from qmtkit.models import Bar, Tick

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


#: Label of each Unix-ms time already formatted, per format (bounded: cleared when large).
_LABELS: dict[str, dict[int, str]] = {}
_LABELS_MAX = 1_000_000
#: Recently built time-label indexes, keyed by (format, first, last, length).
_INDEXES: dict[tuple[str, int, int, int], tuple[npt.NDArray[np.int64], pd.Index]] = {}
_INDEXES_MAX = 256
#: Column-label indexes by column names (building a string Index costs ~25 µs each time).
_COLUMNS: dict[tuple[str, ...], pd.Index] = {}


def time_labels(ms: npt.NDArray[np.int64], period: str) -> npt.NDArray[np.object_]:
    """Beijing-time labels of ``ms`` (any order, repeats allowed) in ``period``'s format."""
    fmt = time_format(period)
    memo = _LABELS.setdefault(fmt, {})
    out = np.empty(len(ms), dtype=object)
    if len(ms) == 0:
        return out
    keys = ms.tolist()
    missing = [k for k in set(keys) if k not in memo]
    if missing:
        if len(memo) + len(missing) > _LABELS_MAX:
            memo.clear()
        stamps = pd.to_datetime(np.asarray(missing, dtype=np.int64) + BEIJING_OFFSET_MS, unit="ms")
        memo.update(zip(missing, stamps.strftime(fmt), strict=True))
    out[:] = [memo[k] for k in keys]
    return out


def time_index(ms: npt.NDArray[np.int64], period: str) -> pd.Index:
    """The label index of one code's (ascending) times, shared between codes with equal times."""
    fmt = time_format(period)
    if len(ms) == 0:
        return pd.Index([], dtype=object)
    key = (fmt, int(ms[0]), int(ms[-1]), len(ms))
    hit = _INDEXES.get(key)
    if hit is not None and np.array_equal(hit[0], ms):
        return hit[1]
    index = pd.Index(time_labels(ms, period))
    if len(_INDEXES) >= _INDEXES_MAX:
        _INDEXES.clear()
    _INDEXES[key] = (ms.copy(), index)
    return index


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
    col = frame.get_column("code")
    first = col[0]
    if first == col[-1]:
        # A code's rows are contiguous, so equal ends mean one code: no pass over the column
        # (its physical view costs ~100 µs, more than the rest of a one-code read).
        return [str(first)], np.array([0, frame.height], dtype=np.int64)
    # Categorical codes compare as their integer ids; any other dtype by run ids.
    phys = (col.to_physical() if col.dtype == pl.Categorical else col.rle_id()).to_numpy()
    starts = np.flatnonzero(np.diff(phys)) + 1
    if len(starts) == 0:
        return [str(col[0])], np.array([0, frame.height], dtype=np.int64)
    offsets = np.concatenate(([0], starts, [frame.height])).astype(np.int64)
    codes = col.gather(offsets[:-1]).cast(pl.String).to_list()
    return codes, offsets


def runs(frame: pl.DataFrame) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Codes of a long frame (grouped by code) in order, and where each one's rows start."""
    return _runs(frame)


def _ms(frame: pl.DataFrame) -> npt.NDArray[np.int64]:
    # A Datetime('ms') column reaches numpy as datetime64[ms] over the same buffer; its int64
    # view is the Unix-ms value (``to_physical`` would run a query for the same bytes).
    values = frame.get_column("time").to_numpy()
    out: npt.NDArray[np.int64] = values.view(np.int64) if values.dtype.kind == "M" else values
    return out


def _frame(cols: dict[str, npt.NDArray[Any]], index: pd.Index) -> pd.DataFrame:
    """A DataFrame over ``cols`` (no copy) labelled by ``index``.

    The columns are already checked numpy arrays of one length, so pandas' per-column
    checks of ``DataFrame(dict)`` (two thirds of the time for a one-code frame) are skipped
    where this pandas offers the internal constructor it uses itself.
    """
    build = getattr(pd.DataFrame, "_from_arrays", None)
    if build is not None:
        names = tuple(cols)
        columns = _COLUMNS.get(names)
        if columns is None:  # an Index is immutable: frames may share one
            columns = _COLUMNS[names] = pd.Index(names)
            if len(_COLUMNS) > _INDEXES_MAX:
                _COLUMNS.clear()
        try:
            frame: pd.DataFrame = build(
                list(cols.values()), columns=columns, index=index, verify_integrity=False
            )
            return frame
        except TypeError:  # a pandas whose internal signature differs
            pass
    plain: pd.DataFrame = pd.DataFrame(cols, index=index, copy=False)
    return plain


def _columns(
    frame: pl.DataFrame, fields: Sequence[str], ms: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[Any]]:
    cols: dict[str, npt.NDArray[Any]] = {}
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

    Codes without data get an empty frame with the same columns, as xtquant does. The
    frames are slices of one frame built once, and codes with the same times share one index.
    """
    ms = _ms(frame)
    present, offsets = _runs(frame)
    cols = _columns(frame, fields, ms)
    where = {c: i for i, c in enumerate(present)}
    out: dict[str, pd.DataFrame] = {}
    if len(present) == 1:
        # One code: build its frame directly, skipping the slice.
        (code,) = present
        out[code] = _frame(cols, time_index(ms, period))
        big = None
    else:
        # Not consolidated (copy=False): building is free; a slice costs ~25 µs per code.
        big = pd.DataFrame(cols, copy=False)
        # One label per distinct time, shared: a code whose times are a run of the distinct
        # times (the usual case) is labelled by a slice of it, no new strings.
        uniq = np.unique(ms)
        labels = pd.Index(time_labels(uniq, period))
        starts = offsets[:-1]
        first = np.searchsorted(uniq, ms[starts]) if len(starts) else starts
        last = np.searchsorted(uniq, ms[offsets[1:] - 1]) if len(starts) else starts
    # Thousands of small frames would trigger cyclic GC passes that find nothing to free.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for code in codes:
            i = where.get(code)
            if i is None:
                out[code] = pd.DataFrame(columns=list(fields))
                continue
            if big is None:
                continue
            a, b = int(offsets[i]), int(offsets[i + 1])
            part = big.iloc[a:b]
            pa, pb = int(first[i]), int(last[i])
            if pb - pa == b - a - 1:
                part.index = labels[pa : pb + 1]
            else:
                part.index = labels.take(np.searchsorted(uniq, ms[a:b]))
            out[code] = part
    finally:
        if was_enabled:
            gc.enable()
    return {code: out[code] for code in codes}


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


#: Tick fields that are 5-element sub-arrays (the five book levels).
BOOK_FIELDS: tuple[str, ...] = ("askPrice", "bidPrice", "askVol", "bidVol")


def tick_fields(fields: Sequence[str] | None) -> list[str]:
    """The tick fields for xtquant's ``field_list`` (``[]``: all), checked, repeats dropped."""
    if not fields:
        return list(TICK_FIELDS)
    out: list[str] = []
    for f in fields:
        if f not in TICK_FIELDS:
            raise InvalidArgument(
                f"unknown field {f!r} for tick data: expected any of {list(TICK_FIELDS)}"
            )
        if f not in out:
            out.append(f)
    return out


def tick_stored_fields(fields: Sequence[str]) -> list[str]:
    """The stored cache columns (``schema.TICK_DTYPES``) that ``fields`` are built from."""
    out: list[str] = []
    for f in fields:
        if f in BOOK_FIELDS:
            out.extend(f"{f}{lvl}" for lvl in range(1, 6))
        elif f not in ("time", "lastSettlementPrice"):
            out.append(f)
    return out


def tick_dtype(fields: Sequence[str]) -> np.dtype[np.void]:
    """The structured dtype holding ``fields`` of ``TICK_DTYPE``, in the order given."""
    if list(fields) == list(TICK_FIELDS):
        return TICK_DTYPE
    return np.dtype([(f, TICK_DTYPE.fields[f][0]) for f in fields])  # type: ignore[index]


def tick_columns_array(
    cols: Mapping[str, npt.NDArray[Any]], fields: Sequence[str] = TICK_FIELDS
) -> npt.NDArray[np.void]:
    """Stored tick columns (``askPrice1``...) as xtquant's structured tick array.

    Only ``fields`` are kept; a field with no stored column (``lastSettlementPrice``, or what
    a source could not supply) is 0.
    """
    n = len(cols["time"])
    arr = np.zeros(n, dtype=tick_dtype(fields))
    for name in fields:
        if name in cols:
            arr[name] = cols[name]
        elif name in BOOK_FIELDS:
            for lvl in range(5):
                src = cols.get(f"{name}{lvl + 1}")
                if src is not None:
                    arr[name][:, lvl] = src
    return arr


def tick_arrays(
    frame: pl.DataFrame, codes: Sequence[str], fields: Sequence[str]
) -> dict[str, npt.NDArray[np.void]]:
    """A long tick frame (grouped by code) as code → xtquant tick array of ``fields``.

    Every code of ``codes`` gets an array, an empty one when the frame has no rows of it.
    """
    present, offsets = _runs(frame)
    where = {c: i for i, c in enumerate(present)}
    cols = {name: frame.get_column(name).to_numpy() for name in frame.columns if name != "code"}
    cols["time"] = _ms(frame)
    out: dict[str, npt.NDArray[np.void]] = {}
    for code in codes:
        i = where.get(code)
        a, b = (int(offsets[i]), int(offsets[i + 1])) if i is not None else (0, 0)
        out[code] = tick_columns_array({k: v[a:b] for k, v in cols.items()}, fields)
    return out


def tick_frame(arr: npt.NDArray[np.void], fields: Sequence[str] | None = None) -> pd.DataFrame:
    """A tick array as a DataFrame indexed by time labels (book levels as list cells).

    ``fields`` picks and orders the columns (default: every field of ``arr``); the index
    comes from ``arr['time']`` whether or not ``time`` is a column.
    """
    names = list(fields) if fields is not None else list(arr.dtype.names or ())
    data: dict[str, list[Any] | npt.NDArray[Any]] = {}  # book levels become list cells
    # The book cells are many small lists: cyclic GC passes over them would find nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name in names:
            col = arr[name]
            data[name] = col.tolist() if col.ndim > 1 else col
    finally:
        if was_enabled:
            gc.enable()
    index = pd.Index(time_labels(arr["time"].astype(np.int64), "tick"))
    df: pd.DataFrame = pd.DataFrame(data, columns=names, index=index)
    return df


def _pad(values: Sequence[float] | Sequence[int]) -> list[float]:
    out = [float(v) for v in values[:5]]
    return out + [0.0] * (5 - len(out))


class TickDict(TypedDict):
    """xtquant's quote dict: a ``get_full_tick`` value and a tick push record."""

    time: int
    lastPrice: float
    open: float
    high: float
    low: float
    lastClose: float
    amount: float
    volume: int
    pvolume: int
    stockStatus: int
    openInt: int
    lastSettlementPrice: float
    askPrice: list[float]
    bidPrice: list[float]
    askVol: list[int]
    bidVol: list[int]
    transactionNum: int


class BarDict(TypedDict):
    """xtquant's K-line push record."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    amount: float
    settelementPrice: float
    openInterest: int
    preClose: float
    suspendFlag: int


def quote_dict(q: Tick | Bar) -> TickDict | BarDict:
    """A tick or a bar as xtquant's push record."""
    return tick_dict(q) if isinstance(q, Tick) else bar_dict(q)


def tick_dict(t: Tick) -> TickDict:
    """A tick as xtquant's quote dict (``get_full_tick`` values, push records)."""
    d = msgspec.structs.asdict(t)
    d.pop("stock_code", None)
    return cast(TickDict, d)  # the model's fields are the dict's keys


def bar_dict(b: Bar) -> BarDict:
    """A bar as xtquant's K-line push record."""
    d = msgspec.structs.asdict(b)
    d.pop("stock_code", None)
    d.pop("period", None)
    return cast(BarDict, d)  # the model's fields (but code and period) are the dict's keys
