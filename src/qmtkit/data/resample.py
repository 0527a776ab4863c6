"""Derive 5m/15m/30m/1h bars from 1m bars and 1w/1mon bars from 1d bars, A-share style.

Intraday (input: 1m bars labelled by their end, 09:30 auction bar first, 09:31..11:30,
13:01..15:00): buckets never span the lunch break and are labelled by their end, counted from
the session opens, with the 09:30 auction bar folded into the first bucket:

* 5m: 09:35, 09:40 ... 11:30, 13:05 ... 15:00 (48 a day)
* 15m: 09:45 ... 11:30, 13:15 ... 15:00; 30m: 10:00 ... 11:30, 13:30 ... 15:00
* 1h: 10:30, 11:30, 14:00, 15:00 (the usual A-share terminal convention, QMT's included)

A bucket still filling (data ends mid-bucket) keeps its full label, as a live bar does.
A minute bar outside the sessions (e.g. 15:05 after-hours fixed-price trading) is refused.

Days (input: 1d bars at 00:00 Beijing): ``1w`` groups Monday..Sunday weeks and ``1mon``
calendar months. By default a bar is labelled 00:00 Beijing of the period's last calendar day
(the Sunday of the week, the month's last day): xtquant's docs do not say, and that is what
QMT was measured to return in a published report (weekly closes equal the week's last daily
close, stamped on the Sunday). ``label="last_bar"`` labels it by its last daily bar instead
(e.g. the Friday, or the Thursday of a week whose Friday is a holiday).

Aggregation: open = first, high = max, low = min, close = last, volume and amount summed,
preClose = the first bar's preClose, suspendFlag = the last bar's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import parse_period
from qmtkit.errors import InvalidArgument, InvalidPeriod

Columns: TypeAlias = dict[str, npt.NDArray[Any]]
I64Array: TypeAlias = npt.NDArray[np.int64]
DayLabel: TypeAlias = Literal["period_end", "last_bar"]

_DAY_MS: Final = 86_400_000
_MIN_MS: Final = 60_000
_MINUTES: Final = {"5m": 5, "15m": 15, "30m": 30, "1h": 60}
_AM_OPEN: Final = 9 * 60 + 30
_AM_CLOSE: Final = 11 * 60 + 30
_PM_OPEN: Final = 13 * 60
_PM_CLOSE: Final = 15 * 60
_REQUIRED: Final = ("time", "open", "high", "low", "close")
_SUMMED: Final = ("volume", "amount")
_FIRST: Final = ("open", "preClose")
_LAST: Final = ("close", "suspendFlag")
_KEPT: Final = frozenset((*_REQUIRED, *_SUMMED, *_FIRST, *_LAST))


def _fmt(ms: int) -> str:
    return str(np.datetime64(ms + BEIJING_OFFSET_MS, "ms").astype("datetime64[s]")).replace(
        "T", " "
    )


def _check_period(period: object) -> str:
    p = parse_period(period)
    if p.name not in _MINUTES and p.name not in ("1w", "1mon"):
        raise InvalidPeriod(
            f"cannot resample to {p.name!r}: expected one of 5m, 15m, 30m, 1h (from 1m) "
            "or 1w, 1mon (from 1d)"
        )
    return p.name


def minute_labels(time: npt.ArrayLike, period: str) -> I64Array:
    """The end label (ms) of the ``period`` bucket each 1m bar end ``time`` falls in."""
    if period not in _MINUTES:
        raise InvalidPeriod(
            f"bad intraday period {period!r}: expected one of {', '.join(_MINUTES)}"
        )
    n = _MINUTES[period]
    t = np.asarray(time, dtype=np.int64)
    local = t + BEIJING_OFFSET_MS
    day_start = local - local % _DAY_MS
    rem = local - day_start
    minute = rem // _MIN_MS
    am = (minute >= _AM_OPEN) & (minute <= _AM_CLOSE)
    pm = (minute > _PM_OPEN) & (minute <= _PM_CLOSE)
    bad = np.flatnonzero(~(am | pm) | (rem % _MIN_MS != 0))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(
            f"1m bar time {int(t[i])} ({_fmt(int(t[i]))} Beijing) is not a session minute: "
            "expected whole minutes 09:30..11:30 or 13:01..15:00 (bar ends)"
        )
    opens = np.where(am, _AM_OPEN, _PM_OPEN)
    # ceil((minute - open) / n), with the 09:30 auction bar (offset 0) in the first bucket
    k = np.maximum(-((opens - minute) // n), 1)
    out: I64Array = day_start - BEIJING_OFFSET_MS + (opens + k * n) * _MIN_MS
    return out


def day_labels(time: npt.ArrayLike, period: str) -> I64Array:
    """The calendar-period end (ms at 00:00 Beijing) of the ``1w``/``1mon`` bucket of each day."""
    days = (np.asarray(time, dtype=np.int64) + BEIJING_OFFSET_MS) // _DAY_MS
    if period == "1w":
        # day 0 (1970-01-01) was a Thursday, so (days + 3) // 7 counts Monday-based weeks
        end = (days + 3) // 7 * 7 + 3
    elif period == "1mon":
        month = days.astype("datetime64[D]").astype("datetime64[M]")
        end = (month + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - 1
    else:
        raise InvalidPeriod(f"bad period {period!r}: expected '1w' or '1mon'")
    out: I64Array = end * _DAY_MS - BEIJING_OFFSET_MS
    return out


def _labels(time: npt.NDArray[np.int64], period: str) -> I64Array:
    return minute_labels(time, period) if period in _MINUTES else day_labels(time, period)


def _check_label(label: object) -> DayLabel:
    if label == "period_end":
        return "period_end"
    if label == "last_bar":
        return "last_bar"
    raise InvalidArgument(f"bad label {label!r}: expected 'period_end' or 'last_bar'")


def _aggregate(
    cols: Mapping[str, npt.NDArray[Any]],
    keys: I64Array,
    group: npt.NDArray[np.int64] | None,
    stamp_last: bool,
) -> Columns:
    """Reduce runs of equal (group, key) with first/max/min/last/sum per column."""
    t = cols["time"]
    change = keys[1:] != keys[:-1]
    if group is not None:
        change |= group[1:] != group[:-1]
    starts = np.flatnonzero(np.r_[True, change])
    ends = np.r_[starts[1:], t.size] - 1
    out: Columns = {"time": t[ends] if stamp_last else keys[starts]}
    for name, col in cols.items():
        if name in _FIRST:
            out[name] = col[starts]
        elif name in _LAST:
            out[name] = col[ends]
        elif name == "high":
            out[name] = np.maximum.reduceat(col, starts)
        elif name == "low":
            out[name] = np.minimum.reduceat(col, starts)
        elif name in _SUMMED:
            out[name] = np.add.reduceat(col, starts)
    out["__start"] = starts
    return out


def _increasing(t: I64Array, group: npt.NDArray[np.int64] | None, what: str) -> None:
    bad = np.diff(t) <= 0
    if group is not None:
        bad &= group[1:] == group[:-1]
    dis = np.flatnonzero(bad)
    if dis.size:
        i = int(dis[0])
        raise InvalidArgument(
            f"{what} times not strictly increasing at row {i + 1} ({int(t[i + 1])} after "
            f"{int(t[i])}): sort and de-duplicate first"
        )


def resample(
    bars: Mapping[str, npt.ArrayLike], period: str, *, label: DayLabel = "period_end"
) -> Columns:
    """Resample one code's bars (1m to 5m/15m/30m/1h, or 1d to 1w/1mon).

    ``bars`` maps column names to equal-length arrays with strictly increasing ``time``;
    ``time, open, high, low, close`` are required, ``volume, amount, preClose, suspendFlag``
    are carried when present, other columns are dropped. ``label`` applies to 1w/1mon only.
    """
    p = _check_period(period)
    how = _check_label(label)
    missing = [c for c in _REQUIRED if c not in bars]
    if missing:
        raise InvalidArgument(
            f"bars lack column(s) {', '.join(missing)}: expected at least {', '.join(_REQUIRED)}"
        )
    cols = {k: np.asarray(v) for k, v in bars.items() if k in _KEPT}
    cols["time"] = cols["time"].astype(np.int64, copy=False)
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidArgument(f"bar columns differ in length: {lengths}; expected equal lengths")
    if cols["time"].size == 0:
        return {k: v[:0].copy() for k, v in cols.items()}
    _increasing(cols["time"], None, "bar")
    keys = _labels(cols["time"], p)
    out = _aggregate(cols, keys, None, p not in _MINUTES and how == "last_bar")
    return {k: out[k] for k in cols}


def _runs(df: pl.DataFrame, column: str) -> npt.NDArray[np.int64]:
    ids = df.select(pl.col(column).rle_id()).to_series().to_numpy()
    return np.asarray(ids, dtype=np.int64)


def resample_frame(
    frame: pl.DataFrame,
    period: str,
    *,
    code_column: str = "code",
    label: DayLabel = "period_end",
) -> pl.DataFrame:
    """Resample a long frame of many codes, grouped by ``code_column``.

    Same rules and columns as :func:`resample`; the code column is kept first. Rows may come
    in any order (they are sorted by code and time unless each code's rows are already
    contiguous and in time order, which is then kept). Repeated (code, time) rows raise.
    """
    p = _check_period(period)
    how = _check_label(label)
    need = [code_column, *_REQUIRED]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InvalidArgument(
            f"frame lacks column(s) {', '.join(missing)}: expected at least {', '.join(need)}"
        )
    names = [c for c in frame.columns if c in _KEPT]
    if frame.height == 0:
        return frame.select([code_column, *names])
    df = frame
    group = _runs(df, code_column)
    t = df["time"].to_numpy()
    in_order = np.all((np.diff(t) > 0) | (group[1:] != group[:-1]))
    if not (in_order and int(group[-1]) + 1 == df[code_column].n_unique()):
        # sorting costs most of the time, so frames already grouped and ordered skip it
        df = frame.sort([code_column, "time"])
        group = _runs(df, code_column)
    cols = {c: df[c].to_numpy() for c in names}
    cols["time"] = cols["time"].astype(np.int64, copy=False)
    _increasing(cols["time"], group, f"{code_column}/time")
    keys = _labels(cols["time"], p)
    out = _aggregate(cols, keys, group, p not in _MINUTES and how == "last_bar")
    codes = df[code_column].gather(out["__start"])
    order = ["time", *[c for c in names if c != "time"]]
    return pl.DataFrame([codes, *[pl.Series(c, out[c]) for c in order]])
