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


__all__ = [
    "BAND_DOWN",
    "BAND_UP",
    "CHINEXT_REFORM",
    "FIRST_DAY_BAND_FROM",
    "FREE_DAYS",
    "LIMITS_BEGAN",
    "MAIN_REGISTRATION",
    "NO_LIMIT",
    "board_ratio",
    "day_limits",
    "free_days",
    "has_first_day_band",
    "listing_day",
]
