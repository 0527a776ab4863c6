"""The A-share trading calendar (SH, SZ, BJ) from the published closures in :mod:`holidays`.

Days are Beijing calendar days. The array forms use the cache's conventions: ``int64`` Unix
milliseconds at 00:00 Beijing time (UTC+8) of the day, or ``YYYYMMDD`` integers.

A day argument may be a ``YYYYMMDD`` int or string, a ``'YYYY-MM-DD'`` string, a
:class:`datetime.date`, or Unix milliseconds (an int of 11+ digits, read in Beijing time).
Everything is computed once per market and then answered with ``searchsorted``.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from qmtkit.checks import is_int, is_whole
from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.data.holidays import BJ_OPENED, CLOSURES, KNOWN_FIRST, KNOWN_LAST
from qmtkit.errors import InvalidArgument

DayLike: TypeAlias = "int | str | dt.date | np.integer[npt.NBitBase]"
I64Array: TypeAlias = npt.NDArray[np.int64]

DAY_MS: Final = 86_400_000
#: Beijing is UTC+8 all year (no daylight saving since 1991).

_EPOCH = dt.date(1970, 1, 1)
_MARKET_ALIASES: Final = {
    "SH": "SH",
    "SSE": "SH",
    "SHSE": "SH",
    "XSHG": "SH",
    "SZ": "SZ",
    "SZSE": "SZ",
    "XSHE": "SZ",
    "BJ": "BJ",
    "BSE": "BJ",
    "BJSE": "BJ",
}


def normalize_market(market: object) -> str:
    """Return ``'SH'``, ``'SZ'`` or ``'BJ'`` for a market name (xtquant's or an exchange's)."""
    if isinstance(market, str):
        key = market.strip().upper()
        if key in _MARKET_ALIASES:
            return _MARKET_ALIASES[key]
    raise InvalidArgument(
        f"unknown market {market!r}: the trading calendar knows 'SH', 'SZ' and 'BJ' "
        "(also 'SSE', 'SZSE', 'BSE')"
    )


def _ordinal_of_yyyymmdd(value: int, original: object) -> int:
    try:
        d = dt.date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        raise InvalidArgument(
            f"bad date {original!r}: expected a real calendar day as YYYYMMDD, e.g. 20240102"
        ) from None
    return (d - _EPOCH).days


def day_number(day: object) -> int:
    """Days since 1970-01-01 of a Beijing calendar day given in any accepted day form."""
    if isinstance(day, dt.datetime):
        return (day.date() - _EPOCH).days
    if isinstance(day, dt.date):
        return (day - _EPOCH).days
    if is_whole(day):
        v = int(day)
        if v >= 10**10:
            return (v + BEIJING_OFFSET_MS) // DAY_MS
        if 10_000_000 <= v <= 99_991_231:
            return _ordinal_of_yyyymmdd(v, day)
    elif isinstance(day, str):
        s = day.strip()
        digits = s.replace("-", "") if len(s) == 10 and s[4] == "-" and s[7] == "-" else s
        if len(digits) == 8 and digits.isdigit():
            return _ordinal_of_yyyymmdd(int(digits), day)
    raise InvalidArgument(
        f"bad date {day!r}: expected YYYYMMDD (int or str), 'YYYY-MM-DD', a datetime.date "
        "or Unix milliseconds"
    )


def yyyymmdd_to_ms(days: npt.ArrayLike) -> I64Array:
    """``YYYYMMDD`` integers to Unix ms at 00:00 Beijing time (vectorised)."""
    a = np.asarray(days, dtype=np.int64)
    dates = (
        (a // 10000 - 1970).astype("datetime64[Y]").astype("datetime64[M]")
        + (a // 100 % 100 - 1).astype("timedelta64[M]")
    ).astype("datetime64[D]") + (a % 100 - 1).astype("timedelta64[D]")
    out: I64Array = dates.astype(np.int64) * DAY_MS - BEIJING_OFFSET_MS
    return out


def ms_to_yyyymmdd(ms: npt.ArrayLike) -> I64Array:
    """Unix ms to the ``YYYYMMDD`` integer of the Beijing calendar day (vectorised)."""
    d = ((np.asarray(ms, dtype=np.int64) + BEIJING_OFFSET_MS) // DAY_MS).astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    out: I64Array = (
        (y.astype(np.int64) + 1970) * 10000
        + (m - y.astype("datetime64[M]")).astype(np.int64) * 100
        + 100
        + (d - m.astype("datetime64[D]")).astype(np.int64)
        + 1
    )
    return out


_FIRST_DAY: Final = _ordinal_of_yyyymmdd(KNOWN_FIRST, KNOWN_FIRST)
_LAST_DAY: Final = _ordinal_of_yyyymmdd(KNOWN_LAST, KNOWN_LAST)


@cache
def _closed_weekdays() -> I64Array:
    parts = [
        np.arange(_ordinal_of_yyyymmdd(a, a), _ordinal_of_yyyymmdd(b, b) + 1, dtype=np.int64)
        for a, b, _ in CLOSURES
    ]
    days = np.unique(np.concatenate(parts))
    days = days[(days >= _FIRST_DAY) & (days <= _LAST_DAY)]
    return days[_is_weekday(days)]


def _is_weekday(days: I64Array) -> npt.NDArray[np.bool_]:
    # 1970-01-01 was a Thursday: (n + 3) % 7 is 0 for Monday.
    return np.asarray((days + 3) % 7 < 5)


@cache
def _open_days(market: str) -> I64Array:
    first = _FIRST_DAY
    if market == "BJ":
        first = _ordinal_of_yyyymmdd(BJ_OPENED, BJ_OPENED)
    days = np.arange(first, _LAST_DAY + 1, dtype=np.int64)
    days = days[_is_weekday(days)]
    days = np.setdiff1d(days, _closed_weekdays(), assume_unique=True)
    days.setflags(write=False)
    return days


def _known(day: object, what: str) -> int:
    n = day_number(day)
    if not _FIRST_DAY <= n <= _LAST_DAY:
        shown = int(ms_to_yyyymmdd(n * DAY_MS))
        raise InvalidArgument(
            f"{what} {day!r} ({shown}) is outside the known trading calendar: "
            f"it covers {KNOWN_FIRST} to {KNOWN_LAST}"
        )
    return n


def _bounds(start: object, end: object) -> tuple[int, int]:
    lo = _FIRST_DAY if start is None or start == "" else _known(start, "start")
    hi = _LAST_DAY if end is None or end == "" else _known(end, "end")
    if lo > hi:
        raise InvalidArgument(f"start {start!r} is after end {end!r}: expected start <= end")
    return lo, hi


def _select(market: object, start: object, end: object, count: int) -> I64Array:
    if not is_int(count) or count < -1:
        raise InvalidArgument(f"bad count {count!r}: expected -1 (all) or a count >= 0")
    days = _open_days(normalize_market(market))
    lo, hi = _bounds(start, end)
    out = days[np.searchsorted(days, lo, "left") : np.searchsorted(days, hi, "right")]
    if count >= 0:
        out = out[len(out) - count :] if count else out[:0]
    return out


def trading_days(
    market: str, start: DayLike | None = None, end: DayLike | None = None, *, count: int = -1
) -> I64Array:
    """Trading days of ``market`` in ``[start, end]`` as ms at 00:00 Beijing, ascending.

    ``None`` (or ``''``) means the first/last day the calendar knows. ``count >= 0`` keeps
    only the last ``count`` days, like xtquant's ``get_trading_dates``.
    """
    return _select(market, start, end, count) * DAY_MS - BEIJING_OFFSET_MS


def trading_days_yyyymmdd(
    market: str, start: DayLike | None = None, end: DayLike | None = None, *, count: int = -1
) -> I64Array:
    """Like :func:`trading_days`, as ``YYYYMMDD`` integers."""
    return ms_to_yyyymmdd(_select(market, start, end, count) * DAY_MS)


def is_trading_day(market: str, day: DayLike) -> bool:
    """True if ``market`` trades on ``day``."""
    days = _open_days(normalize_market(market))
    n = _known(day, "day")
    i = int(np.searchsorted(days, n))
    return i < len(days) and int(days[i]) == n


def previous_trading_day(market: str, day: DayLike) -> int:
    """The last trading day strictly before ``day``, as ms at 00:00 Beijing."""
    days = _open_days(normalize_market(market))
    n = _known(day, "day")
    i = int(np.searchsorted(days, n, "left"))
    if i == 0:
        raise InvalidArgument(
            f"no trading day before {day!r} in the known calendar ({KNOWN_FIRST} to {KNOWN_LAST})"
        )
    return int(days[i - 1]) * DAY_MS - BEIJING_OFFSET_MS


def next_trading_day(market: str, day: DayLike) -> int:
    """The first trading day strictly after ``day``, as ms at 00:00 Beijing."""
    days = _open_days(normalize_market(market))
    n = _known(day, "day")
    i = int(np.searchsorted(days, n, "right"))
    if i == len(days):
        raise InvalidArgument(
            f"no trading day after {day!r} in the known calendar ({KNOWN_FIRST} to {KNOWN_LAST})"
        )
    return int(days[i]) * DAY_MS - BEIJING_OFFSET_MS


def holidays(market: str, start: DayLike | None = None, end: DayLike | None = None) -> I64Array:
    """Weekdays in ``[start, end]`` on which ``market`` is closed for a holiday, as ``YYYYMMDD``.

    For BJ only days from its opening (2021-11-15) count; earlier it simply did not trade.
    """
    m = normalize_market(market)
    lo, hi = _bounds(start, end)
    if m == "BJ":
        lo = max(lo, _ordinal_of_yyyymmdd(BJ_OPENED, BJ_OPENED))
    closed = _closed_weekdays()
    sel = closed[(closed >= lo) & (closed <= hi)]
    return ms_to_yyyymmdd(sel * DAY_MS)


def trading_calendar(market: str, start: DayLike = "", end: DayLike = "") -> list[str]:
    """Trading days as ``'YYYYMMDD'`` strings, xtquant's ``get_trading_calendar`` shape.

    Unlike xtquant, an empty ``end`` means the last known day (2026-12-31), not today: this
    function is pure and does not read a clock.
    """
    return [str(d) for d in trading_days_yyyymmdd(market, start or None, end or None).tolist()]


def known_range() -> tuple[int, int]:
    """First and last ``YYYYMMDD`` the calendar is complete for."""
    return KNOWN_FIRST, KNOWN_LAST
