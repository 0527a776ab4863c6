"""The daily price limits of one stock on one day: its board, the era, and new listings.

Both markets of the paper broker (the simulator's and the backtest's) price a day's limits
here, so an order is refused or a bar is locked the same way in ``sim://`` and in a backtest.

The rules, by the date they took effect (docs/backtest.md, "Price limits", names the sources):

* before 1996-12-16 A shares had no daily limit at all;
* main board 10 % (ST 5 %); STAR 20 % (it opened 2019-07-22); BJ 30 %; ChiNext 10 % (ST 5 %)
  until 2020-08-23 and 20 % from 2020-08-24, the day its registration reform took effect;
* a new listing's first days:

  - STAR, ChiNext listed from 2020-08-24, main board listed from 2023-04-10 (the first
    listings under the main board's registration reform): no limit on the first five
    trading days;
  - BJ: no limit on the listing day;
  - main board and ChiNext listed 2014-01-01 .. before their reform: the listing day is
    bounded at +44 % / -36 % of the issue price (the listing day's pre-close);
  - listed before 2014: no limit on the listing day.

Not modelled: the intraday halts of a listing day, and the first day of trading after a
delisting-arrangement or a resumption that the exchanges also free from limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from qmtkit.codes import Board, band_prices, limit_ratio

#: The first day A shares traded under daily price limits.
LIMITS_BEGAN: Final = 19961216
#: Main board and ChiNext listings from this day have the +44 % / -36 % band on day one.
FIRST_DAY_BAND_FROM: Final = 20140101
#: ChiNext's registration reform: 20 % limits, and five free days for its new listings.
CHINEXT_REFORM: Final = 20200824
#: The first main-board listings under the registration reform.
MAIN_REGISTRATION: Final = 20230410
#: Trading days without a limit after a registration-system listing.
FREE_DAYS: Final = 5
#: The listing day's band, as fractions of the issue price.
BAND_UP: Final = 0.44
BAND_DOWN: Final = 0.36

NO_LIMIT: Final = (0.0, 0.0)
#: The days from which a board's ordinary ratio (``board_ratio``) may differ from the day
#: before: it is the same on every day between two of them (a test checks every day).
RATIO_CHANGES: Final = (LIMITS_BEGAN, CHINEXT_REFORM)
#: Pre-closes from this many cents up are left to ``band_prices`` (int64 products stay exact
#: far above it; no A-share trades near it).
_CENTS_BELOW: Final = 2**40

F64 = npt.NDArray[np.float64]

# The members as plain names: reading ``Board.X`` goes through the enum's descriptor.
_MAIN, _CHINEXT, _STAR, _BJ, _INDEX = Board.MAIN, Board.CHINEXT, Board.STAR, Board.BJ, Board.INDEX


def free_days(board: Board, list_date: int) -> int:
    """How many trading days from the listing day (counted in) trade without a limit."""
    if board is _STAR:
        return FREE_DAYS
    if board is _CHINEXT:
        if list_date >= CHINEXT_REFORM:
            return FREE_DAYS
        return 0 if list_date >= FIRST_DAY_BAND_FROM else 1
    if board is _MAIN:
        if list_date >= MAIN_REGISTRATION:
            return FREE_DAYS
        return 0 if list_date >= FIRST_DAY_BAND_FROM else 1
    if board is _BJ:
        return 1
    return 0  # ETFs and indices: no listing-day rule


def has_first_day_band(board: Board, list_date: int) -> bool:
    """True if the listing day is bounded at +44 % / -36 % of the issue price."""
    return board in (_MAIN, _CHINEXT) and free_days(board, list_date) == 0


def board_ratio(board: Board, is_st: bool, day: int) -> float | None:
    """The ordinary daily limit ratio of a board on ``day`` (None: no limit)."""
    if day < LIMITS_BEGAN:
        return None
    if board is _CHINEXT and day < CHINEXT_REFORM:
        return limit_ratio(_MAIN, is_st)
    return limit_ratio(board, is_st)


def listing_day(day: int, list_date: int, first_days: Sequence[int]) -> int:
    """The number of ``day`` among the listing's trading days: 1 for the listing day.

    ``first_days`` are the listing's first trading days (at least the listing day itself); a
    later day answers ``len(first_days) + 1``, a day before the listing 0.
    """
    if day < list_date:
        return 0
    for i, d in enumerate(first_days):
        if d == day:
            return i + 1
        if d > day:  # not a trading day of the listing: it follows the previous one
            return i
    return len(first_days) + 1


def day_limits(
    pre_close: float,
    board: Board,
    is_st: bool,
    day: int,
    *,
    list_date: int = 0,
    nth_day: int = 0,
) -> tuple[float, float]:
    """(down, up) limit prices of ``day``; (0.0, 0.0) where the day has no limit.

    ``list_date`` (``YYYYMMDD``, 0: unknown) and ``nth_day`` (the day's number among the
    listing's trading days, see `listing_day`; 0: unknown) bring in the new-listing rules.
    Without them every day has the board's ordinary limit. ``pre_close`` must be > 0.
    """
    if board is _INDEX:
        return NO_LIMIT
    if list_date and nth_day > 0:
        if nth_day <= free_days(board, list_date):
            return NO_LIMIT
        if nth_day == 1 and has_first_day_band(board, list_date):
            return band_prices(pre_close, BAND_UP, BAND_DOWN)
    ratio = board_ratio(board, is_st, day)
    if ratio is None:
        return NO_LIMIT
    return band_prices(pre_close, ratio, ratio)


def ordinary_limits(
    pre_close: F64, boards: Sequence[Board], is_st: Sequence[bool], days: Sequence[int]
) -> tuple[F64, F64]:
    """``day_limits`` without listing dates, for many codes and days in one vector step.

    ``pre_close[d, i]`` is code ``i``'s pre-close on ``days[d]``; the code's board and ST
    flag are ``boards[i]`` and ``is_st[i]``. Returns (down, up) arrays of that shape holding
    what ``day_limits(pre_close[d, i], boards[i], is_st[i], days[d])`` returns ((0, 0) where
    the day has no limit), or NaN where this does not work it out (a pre-close <= 0 or off
    the cent grid, a ratio that is not a whole percent): ask ``day_limits`` for those. The
    ratios are ``board_ratio``'s, asked once per board, ST flag and span of
    ``RATIO_CHANGES``; the rounding is ``band_prices``'s (half-up to the cent of the decimal
    price) done in whole cents.
    """
    shape = (len(days), len(boards))
    if pre_close.shape != shape:
        raise ValueError(f"pre_close has shape {pre_close.shape}, expected {shape}")
    groups: dict[tuple[Board, bool], int] = {}
    group = np.asarray(
        [groups.setdefault((b, bool(s)), len(groups)) for b, s in zip(boards, is_st, strict=True)],
        dtype=np.int64,
    )
    day = np.asarray(days, dtype=np.int64)
    span = np.searchsorted(np.asarray(RATIO_CHANGES, dtype=np.int64), day, "right")
    spans = np.unique(span).tolist()
    # Whole percents per (span, group): -1 no limit, -2 not a whole percent.
    pct = np.full((len(RATIO_CHANGES) + 1, max(len(groups), 1)), -2.0)
    for s_ in spans:
        first = int(day[int(np.argmax(span == s_))])
        for (board, st), g in groups.items():
            ratio = None if board is _INDEX else board_ratio(board, st, first)
            if ratio is None:
                pct[s_, g] = -1.0
            elif round(ratio * 100) / 100 == ratio:  # its shortest repr has two decimals
                pct[s_, g] = round(ratio * 100)
    # One span (most blocks of days): a row per code, broadcast over the days.
    r = pct[spans[0], group][None, :] if len(spans) == 1 else pct[span[:, None], group[None, :]]
    with np.errstate(invalid="ignore"):
        cents = np.rint(pre_close * 100.0)
        exact = (cents / 100.0 == pre_close) & (cents > 0) & (cents < _CENTS_BELOW) & (r >= 0)
        # Whole cents in floats: every product and sum below 2**53 is exact, and the floor of
        # a quotient by 100 of a whole number below 2**48 is the integer quotient.
        c = np.where(exact, cents, np.nan)
        up = np.floor((c * (100.0 + r) + 50.0) / 100.0) / 100.0
        down = np.maximum(np.floor((c * (100.0 - r) + 50.0) / 100.0), 1.0) / 100.0
    free = np.broadcast_to(r == -1.0, shape)
    up[free] = 0.0
    down[free] = 0.0
    return down, up


__all__ = [
    "BAND_DOWN",
    "BAND_UP",
    "CHINEXT_REFORM",
    "FIRST_DAY_BAND_FROM",
    "FREE_DAYS",
    "LIMITS_BEGAN",
    "MAIN_REGISTRATION",
    "NO_LIMIT",
    "RATIO_CHANGES",
    "board_ratio",
    "day_limits",
    "free_days",
    "has_first_day_band",
    "listing_day",
    "ordinary_limits",
]
