"""Listing dates for a backtest: from the instrument lists kept beside the K-line cache.

A history source that knows listing dates (baostock's ``ipoDate``) leaves its instrument list
in ``<home>/data/reference/<source>/instruments.json`` when it downloads
(``qmtkit.data.reference``); its ``OpenDate`` is the listing date. The backtest reads the lists
of every source once and, per code, the first trading days of the listing from the trading
calendar, so that ``backends.daylimits`` can give a new listing's first days their own limits.
A code no list names has no known listing date: every day of it has the board's ordinary limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from qmtkit.backends.daylimits import FREE_DAYS, listing_day
from qmtkit.data import calendar
from qmtkit.data.holidays import KNOWN_FIRST
from qmtkit.data.reference import Reference
from qmtkit.errors import CacheError, InvalidArgument

#: Calendar days that surely hold a listing's first five trading days (the longest closure,
#: the Spring Festival week, plus weekends).
_WINDOW_DAYS = 40


def listing_dates(root: Path, codes: Iterable[str]) -> dict[str, int]:
    """``code -> YYYYMMDD`` listing dates of ``codes`` found in the cache's instrument lists.

    ``root`` is the cache's data folder (``Cache.root``). Sources are read in name order; the
    first one that gives a code a valid date wins. A damaged list is skipped.
    """
    wanted = set(codes)
    out: dict[str, int] = {}
    ref = Reference(root)
    if not ref.root.is_dir():
        return out
    for folder in sorted(p for p in ref.root.iterdir() if p.is_dir()):
        try:
            items = ref.instruments(folder.name)
        except (CacheError, InvalidArgument):
            continue
        for item in items or ():
            code = item.stock_code
            if code in wanted and code not in out:
                date = _yyyymmdd(item.OpenDate)
                if date:
                    out[code] = date
    return out


def first_trading_days(list_date: int, exchange: str, home: Path | str | None) -> tuple[int, ...]:
    """The listing day and the trading days after it, up to ``FREE_DAYS`` in all."""
    days = [list_date]
    if list_date >= KNOWN_FIRST:  # earlier listings only ever had a rule for day one
        d = dt.date(list_date // 10000, list_date // 100 % 100, list_date % 100)
        end = d + dt.timedelta(days=_WINDOW_DAYS)
        following = calendar.trading_days_yyyymmdd(
            exchange, list_date, end.year * 10000 + end.month * 100 + end.day, home=home
        )
        days += [int(x) for x in following if int(x) > list_date][: FREE_DAYS - 1]
    return tuple(days)


class Listings:
    """The listing dates of a replay's codes and the number of each day since listing."""

    def __init__(self, dates: dict[str, int], home: Path | str | None) -> None:
        self.dates = dates
        self._home = home
        self._first: dict[str, tuple[int, ...]] = {}

    def nth_day(self, code: str, day: int) -> int:
        """``day``'s number among ``code``'s trading days since listing (0: unknown)."""
        list_date = self.dates.get(code, 0)
        if not list_date or day < list_date:
            return 0
        first = self._first.get(code)
        if first is None:
            first = self._first[code] = first_trading_days(
                list_date, code.rsplit(".", 1)[1], self._home
            )
        return listing_day(day, list_date, first)


def _yyyymmdd(text: str) -> int:
    digits = text.strip().replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return 0
    value = int(digits)
    return value if 19900101 <= value <= 20991231 else 0


__all__ = ["Listings", "first_trading_days", "listing_dates"]
