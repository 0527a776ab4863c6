"""Price adjustment for ex-rights events (除权除息), xtquant's ``dividend_type`` modes.

For one ex-rights record with cash dividend ``interest`` (yuan per share), bonus and
capitalisation shares ``stockBonus + stockGift`` (per share), and a rights issue of
``allotNum`` shares per share at ``allotPrice``, the ex-rights reference price of a price ``p``
quoted before the ex-date is::

    f(p) = (p - interest + allotPrice * allotNum) / (1 + stockBonus + stockGift + allotNum)

A bar belongs *before* an ex-date when its time is earlier than the ex-date's ``time`` (00:00
Beijing of the ex-date), so for minute bars every minute of the previous days is before it.

Modes (``open, high, low, close`` and ``preClose`` are adjusted; ``volume``, ``amount`` and all
other columns are returned unchanged, as xtquant does):

* ``none``: raw prices.
* ``front`` (前复权): a bar's price is mapped by ``f`` of every later ex-date, oldest first:
  ``f_n(...f_2(f_1(p)))``. The latest prices are unchanged.
* ``back`` (后复权): the inverse, ``g(p) = p * (1 + stockBonus + stockGift + allotNum) + interest
  - allotPrice * allotNum``, applied for every ex-date at or before the bar, newest first:
  ``g_1(g_2(...g_n(p)))``. Prices before the first ex-date are unchanged.
* ``front_ratio`` (等比前复权): each ex-date contributes the ratio ``r = f(c) / c`` where ``c`` is
  the close of the last bar before the ex-date; a bar's prices are multiplied by the product of
  ``r`` over all later ex-dates.
* ``back_ratio`` (等比后复权): prices are divided by the product of ``r`` over all ex-dates at or
  before the bar.

When no bar precedes an ex-date (it lies before the data), the ratio modes take ``r = 1 / dr``
from the record's ex-rights factor ``dr`` (MiniQMT's ``close / reference price``); a record with
such an ex-date and no ``dr`` cannot be honoured and is refused for ``back_ratio``
(``front_ratio`` never needs it: no bar lies before it).

``preClose`` is mapped like the prices of its own bar: on an ex-date it is the exchange's
reference price, already on the post-event scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.errors import InvalidArgument
from qmtkit.messages import Dividend

Columns: TypeAlias = dict[str, npt.NDArray[Any]]
F64Array: TypeAlias = npt.NDArray[np.float64]
DividendsLike: TypeAlias = "Sequence[Dividend] | Mapping[str, npt.ArrayLike]"

MODES: Final = ("none", "front", "back", "front_ratio", "back_ratio")
PRICE_COLUMNS: Final = ("open", "high", "low", "close", "preClose")
_FIELDS: Final = ("interest", "stockBonus", "stockGift", "allotNum", "allotPrice", "dr")


class _Events:
    """Ex-rights records as sorted columns."""

    def __init__(self, dividends: object) -> None:
        cols: dict[str, F64Array] = {}
        if isinstance(dividends, Mapping):
            if "time" not in dividends:
                raise InvalidArgument(
                    "dividend columns lack 'time': expected time (ex-date ms) and any of "
                    + ", ".join(_FIELDS)
                )
            time = np.asarray(dividends["time"], dtype=np.int64)
            defaults = {"dr": 1.0}
            for f in _FIELDS:
                v = dividends.get(f)
                cols[f] = (
                    np.full(time.shape, defaults.get(f, 0.0))
                    if v is None
                    else np.asarray(v, dtype=np.float64)
                )
                if cols[f].shape != time.shape:
                    raise InvalidArgument(
                        f"dividend column {f!r} has {cols[f].shape[0]} rows, time has "
                        f"{time.shape[0]}: expected equal lengths"
                    )
        elif isinstance(dividends, Sequence) and not isinstance(dividends, (str, bytes)):
            for d in dividends:
                if not isinstance(d, Dividend):
                    raise InvalidArgument(
                        f"bad ex-rights record {d!r}: expected qmtkit.messages.Dividend"
                    )
            time = np.array([d.time for d in dividends], dtype=np.int64)
            for f in _FIELDS:
                cols[f] = np.array([getattr(d, f) for d in dividends], dtype=np.float64)
        else:
            raise InvalidArgument(
                f"bad dividends {type(dividends).__name__}: expected a list of Dividend or a "
                "mapping of columns (time, interest, stockBonus, ...)"
            )
        order = np.argsort(time, kind="stable")
        self.time = time[order]
        self.interest = cols["interest"][order]
        self.shares = (cols["stockBonus"] + cols["stockGift"] + cols["allotNum"])[order]
        self.allot_cash = (cols["allotPrice"] * cols["allotNum"])[order]
        self.dr = cols["dr"][order]
        bad = np.flatnonzero(~np.isfinite(self.shares) | (self.shares <= -1))
        if bad.size:
            i = int(bad[0])
            raise InvalidArgument(
                f"ex-rights record at {int(self.time[i])} has share ratio {self.shares[i]!r}: "
                "expected stockBonus + stockGift + allotNum > -1"
            )

    def reference(self, p: F64Array) -> F64Array:
        """``f`` of each event applied to the matching entry of ``p``."""
        out: F64Array = (p - self.interest + self.allot_cash) / (1.0 + self.shares)
        return out


def _check_mode(mode: object) -> str:
    if isinstance(mode, str) and mode in MODES:
        return mode
    raise InvalidArgument(f"bad dividend_type {mode!r}: expected one of {', '.join(MODES)}")


def adjustment(
    time: npt.ArrayLike, close: npt.ArrayLike, dividends: DividendsLike, mode: str
) -> tuple[F64Array, F64Array]:
    """Per-bar ``(scale, shift)`` so that ``adjusted = price * scale + shift`` for ``mode``.

    ``time`` must be ascending; ``close`` is used by the ratio modes only.
    """
    m = _check_mode(mode)
    t = np.asarray(time, dtype=np.int64)
    ev = _Events(dividends)
    k = len(ev.time)
    scale_seg = np.ones(k + 1)
    shift_seg = np.zeros(k + 1)
    # segment j holds the bars with exactly j ex-dates at or before them
    seg = np.searchsorted(ev.time, t, side="right")
    if m == "none" or k == 0:
        pass
    elif m == "front":
        a = 1.0 / (1.0 + ev.shares)
        b = (ev.allot_cash - ev.interest) * a
        for j in range(k - 1, -1, -1):
            scale_seg[j] = scale_seg[j + 1] * a[j]
            shift_seg[j] = scale_seg[j + 1] * b[j] + shift_seg[j + 1]
    elif m == "back":
        c = 1.0 + ev.shares
        d = ev.interest - ev.allot_cash
        for j in range(1, k + 1):
            scale_seg[j] = scale_seg[j - 1] * c[j - 1]
            shift_seg[j] = scale_seg[j - 1] * d[j - 1] + shift_seg[j - 1]
    else:
        r = _ratios(t, np.asarray(close, dtype=np.float64), ev, need_all=m == "back_ratio")
        if m == "front_ratio":
            scale_seg[:k] = np.cumprod(r[::-1])[::-1]
        else:
            scale_seg[1:] = 1.0 / np.cumprod(r)
    return scale_seg[seg], shift_seg[seg]


def _ratios(t: npt.NDArray[np.int64], close: F64Array, ev: _Events, need_all: bool) -> F64Array:
    if close.shape != t.shape:
        raise InvalidArgument(
            f"close has {close.shape[0]} rows, time has {t.shape[0]}: expected equal lengths"
        )
    prev = np.searchsorted(t, ev.time, side="left") - 1
    has_prev = prev >= 0
    c = close[np.maximum(prev, 0)] if t.size else np.zeros(len(ev.time))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(has_prev, ev.reference(c) / c, 1.0 / ev.dr)
    missing = ~has_prev & (ev.dr == 1.0) & ((ev.interest != 0) | (ev.shares != 0))
    if need_all and missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InvalidArgument(
            f"ex-date {int(ev.time[i])} precedes the first bar and its record has no dr: "
            "back_ratio needs a bar before every ex-date or the record's dr factor"
        )
    bad = np.flatnonzero(~np.isfinite(r) | (r <= 0))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(
            f"ex-date {int(ev.time[i])} gives adjustment ratio {float(r[i])!r}: expected a "
            "positive close before the ex-date and a dr > 0"
        )
    out: F64Array = np.asarray(r, dtype=np.float64)
    return out


def adjust_bars(bars: Mapping[str, npt.ArrayLike], dividends: DividendsLike, mode: str) -> Columns:
    """Adjusted copy of one code's bars (``time`` ascending) for ``mode``; see module docs."""
    m = _check_mode(mode)
    for need in ("time", "close"):
        if need not in bars:
            raise InvalidArgument(f"bars lack column {need!r}: expected time and prices")
    cols = {k: np.array(v) for k, v in bars.items()}
    t = cols["time"].astype(np.int64, copy=False)
    if t.size > 1 and bool(np.any(np.diff(t) < 0)):
        raise InvalidArgument("bar times are not ascending: sort bars by time before adjusting")
    if m == "none":
        return cols
    scale, shift = adjustment(t, cols["close"], dividends, m)
    for name in PRICE_COLUMNS:
        if name in cols:
            cols[name] = cols[name].astype(np.float64) * scale + shift
    return cols


def adjust_frame(frame: pl.DataFrame, dividends: DividendsLike, mode: str) -> pl.DataFrame:
    """:func:`adjust_bars` for a Polars frame of one code's bars."""
    m = _check_mode(mode)
    if "time" not in frame.columns or "close" not in frame.columns:
        raise InvalidArgument(
            f"frame lacks time/close (has {', '.join(frame.columns)}): expected bar columns"
        )
    if m == "none":
        return frame
    df = frame.sort("time")
    scale, shift = adjustment(df["time"].to_numpy(), df["close"].to_numpy(), dividends, m)
    s, b = pl.Series(scale), pl.Series(shift)
    return df.with_columns(
        [(pl.col(c).cast(pl.Float64) * s + b).alias(c) for c in PRICE_COLUMNS if c in df.columns]
    )
