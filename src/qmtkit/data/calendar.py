"""The A-share trading calendar (SH, SZ, BJ): layered data that never runs out.

A day's status comes from the first of these layers that speaks for it:

1. ``user``: a file imported with ``qmtkit calendar import`` (:mod:`calendar_layers`);
2. ``venue``: the calendar a connected venue (MiniQMT through xtquant) reported, cached;
3. ``bundled``: the published closures in :mod:`holidays` (2005-2026);
4. ``provisional``: past everything known, weekdays minus the statutory holidays computed by
   rule (:func:`holidays.provisional_closures`), through 2099.

Provisional days are marked (:func:`is_provisional`, :func:`info`) and the first query that
reaches them logs one warning per process. The stored layers are read from ``QMTKIT_HOME`` (or
the ``home`` argument) and re-read when they change.

Days are Beijing calendar days. The array forms use the cache's conventions: ``int64`` Unix
milliseconds at 00:00 Beijing time (UTC+8) of the day, or ``YYYYMMDD`` integers.

A day argument may be a ``YYYYMMDD`` int or string, a ``'YYYY-MM-DD'`` string, a
:class:`datetime.date`, or Unix milliseconds (an int of 11+ digits, read in Beijing time).
Everything is computed once per market and then answered with ``searchsorted``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from functools import cache
from typing import Final, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from qmtkit.checks import is_int, is_whole
from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.data import calendar_layers as layers
from qmtkit.data.holidays import (
    BJ_OPENED,
    CLOSURES,
    KNOWN_FIRST,
    KNOWN_LAST,
    provisional_closures,
)
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


#: The last day any layer can speak for: the provisional rule's horizon.
HORIZON_LAST: Final = 20991231
#: Layer names in the order :func:`info` reports them; a view stores a layer as its index here.
SOURCES: Final = ("bundled", "venue", "user", "provisional")
_BUNDLED, _VENUE, _USER, _PROVISIONAL = range(4)

log = logging.getLogger("qmtkit.calendar")

_FIRST_DAY: Final = _ordinal_of_yyyymmdd(KNOWN_FIRST, KNOWN_FIRST)
_TABLE_LAST: Final = _ordinal_of_yyyymmdd(KNOWN_LAST, KNOWN_LAST)
_HORIZON: Final = _ordinal_of_yyyymmdd(HORIZON_LAST, HORIZON_LAST)
_BJ_FIRST: Final = _ordinal_of_yyyymmdd(BJ_OPENED, BJ_OPENED)
_warned = False


def _is_weekday(days: I64Array) -> npt.NDArray[np.bool_]:
    # 1970-01-01 was a Thursday: (n + 3) % 7 is 0 for Monday.
    return np.asarray((days + 3) % 7 < 5)


def _mark(closed: npt.NDArray[np.bool_], rows: object, lo: int, hi: int) -> None:
    """Set ``closed`` over the days of ``(first, last, name)`` rows that fall in ``[lo, hi]``."""
    for a, b, _ in rows:  # type: ignore[attr-defined]
        i0 = max(_ordinal_of_yyyymmdd(a, a), lo)
        i1 = min(_ordinal_of_yyyymmdd(b, b), hi)
        if i0 <= i1:
            closed[i0 - _FIRST_DAY : i1 - _FIRST_DAY + 1] = True


@cache
def _base() -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """Closed flags and sources of every day from the bundled table and the provisional rule."""
    n = _HORIZON - _FIRST_DAY + 1
    closed = np.zeros(n, dtype=bool)
    source = np.full(n, _PROVISIONAL, dtype=np.uint8)
    source[: _TABLE_LAST - _FIRST_DAY + 1] = _BUNDLED
    _mark(closed, CLOSURES, _FIRST_DAY, _TABLE_LAST)
    first_year, last_year = KNOWN_LAST // 10000, HORIZON_LAST // 10000
    for year in range(first_year, last_year + 1):
        _mark(closed, provisional_closures(year), _TABLE_LAST + 1, _HORIZON)
    closed.setflags(write=False)
    source.setflags(write=False)
    return closed, source


class _View(NamedTuple):
    closed: npt.NDArray[np.bool_]  # weekday closures, index 0 = _FIRST_DAY
    source: npt.NDArray[np.uint8]
    open_days: dict[str, I64Array]
    known_last: int  # day number of the last day before the first provisional one
    stored: dict[str, layers.Layer]


def _build(stored: dict[str, layers.Layer]) -> _View:
    closed, source = _base()
    if stored:
        closed, source = closed.copy(), source.copy()
    for name in reversed(layers.STORED_LAYERS):  # weakest first, so the stronger overwrite
        layer = stored.get(name)
        if layer is None:
            continue
        code = _USER if name == "user" else _VENUE
        lo = max(_ordinal_of_yyyymmdd(layer.first, layer.first), _FIRST_DAY)
        hi = min(_ordinal_of_yyyymmdd(layer.last, layer.last), _HORIZON)
        if lo > hi:
            continue
        closed[lo - _FIRST_DAY : hi - _FIRST_DAY + 1] = False
        source[lo - _FIRST_DAY : hi - _FIRST_DAY + 1] = code
        _mark(closed, [(d, d, "") for d in layer.closed], lo, hi)
    every = np.arange(_FIRST_DAY, _HORIZON + 1, dtype=np.int64)
    trading = every[_is_weekday(every) & ~closed]
    trading.setflags(write=False)
    bj = trading[trading >= _BJ_FIRST]
    bj.setflags(write=False)
    provisional = np.flatnonzero(source == _PROVISIONAL)
    known_last = _FIRST_DAY + int(provisional[0]) - 1 if len(provisional) else _HORIZON
    return _View(closed, source, {"SH": trading, "SZ": trading, "BJ": bj}, known_last, stored)


_views: dict[tuple[str, object], _View] = {}


def _view(home: str | os.PathLike[str] | None) -> _View:
    from qmtkit.data.cache import resolve_home

    root = resolve_home(home)
    key = (str(root), layers.stamp(root))
    view = _views.get(key)
    if view is None:
        stored = {n: lay for n in layers.STORED_LAYERS if (lay := layers.load(root, n))}
        view = _build(stored)
        if len(_views) >= 8:
            _views.clear()
        _views[key] = view
    return view


def _ymd(n: int) -> int:
    return int(ms_to_yyyymmdd(n * DAY_MS))


def _note_provisional(view: _View, lo: int, hi: int) -> None:
    """Log, once per process, that an answer reaches provisional days."""
    global _warned
    if _warned or hi <= view.known_last:
        return
    seg = view.source[max(lo, _FIRST_DAY) - _FIRST_DAY : hi - _FIRST_DAY + 1]
    if not np.any(seg == _PROVISIONAL):
        return
    _warned = True
    log.warning(
        "trading calendar: days after %d are provisional (weekdays minus statutory holidays "
        "computed by rule); import the exchanges' schedule with `qmtkit calendar import FILE` "
        "or connect to a venue that has it",
        _ymd(view.known_last),
    )


def _in_range(day: object, what: str) -> int:
    n = day_number(day)
    if not _FIRST_DAY <= n <= _HORIZON:
        raise InvalidArgument(
            f"{what} {day!r} ({_ymd(n)}) is outside the trading calendar: it covers "
            f"{KNOWN_FIRST} to {HORIZON_LAST} (days past the known ones are provisional)"
        )
    return n


def _bounds(view: _View, start: object, end: object) -> tuple[int, int]:
    lo = _FIRST_DAY if start is None or start == "" else _in_range(start, "start")
    hi = view.known_last if end is None or end == "" else _in_range(end, "end")
    if lo > hi:
        raise InvalidArgument(f"start {start!r} is after end {end!r}: expected start <= end")
    return lo, hi


def _select(
    market: object, start: object, end: object, count: int, home: str | os.PathLike[str] | None
) -> I64Array:
    if not is_int(count) or count < -1:
        raise InvalidArgument(f"bad count {count!r}: expected -1 (all) or a count >= 0")
    m = normalize_market(market)
    view = _view(home)
    days = view.open_days[m]
    lo, hi = _bounds(view, start, end)
    out = days[np.searchsorted(days, lo, "left") : np.searchsorted(days, hi, "right")]
    if count >= 0:
        out = out[len(out) - count :] if count else out[:0]
    if len(out):
        _note_provisional(view, int(out[0]), int(out[-1]))
    return out


Home: TypeAlias = "str | os.PathLike[str] | None"


def trading_days(
    market: str,
    start: DayLike | None = None,
    end: DayLike | None = None,
    *,
    count: int = -1,
    home: Home = None,
) -> I64Array:
    """Trading days of ``market`` in ``[start, end]`` as ms at 00:00 Beijing, ascending.

    ``None`` (or ``''``) means the first day the calendar knows / the last day before the
    provisional ones. ``count >= 0`` keeps only the last ``count`` days, like xtquant's
    ``get_trading_dates``. ``home`` picks the stored layers (default ``$QMTKIT_HOME``).
    """
    return _select(market, start, end, count, home) * DAY_MS - BEIJING_OFFSET_MS


def trading_days_yyyymmdd(
    market: str,
    start: DayLike | None = None,
    end: DayLike | None = None,
    *,
    count: int = -1,
    home: Home = None,
) -> I64Array:
    """Like :func:`trading_days`, as ``YYYYMMDD`` integers."""
    return ms_to_yyyymmdd(_select(market, start, end, count, home) * DAY_MS)


def is_trading_day(market: str, day: DayLike, *, home: Home = None) -> bool:
    """True if ``market`` trades on ``day`` (provisionally, past the known days)."""
    view = _view(home)
    days = view.open_days[normalize_market(market)]
    n = _in_range(day, "day")
    _note_provisional(view, n, n)
    i = int(np.searchsorted(days, n))
    return i < len(days) and int(days[i]) == n


def is_provisional(day: DayLike, *, home: Home = None) -> bool:
    """True if the calendar's word on ``day`` comes from the provisional rule."""
    view = _view(home)
    return int(view.source[_in_range(day, "day") - _FIRST_DAY]) == _PROVISIONAL


def previous_trading_day(market: str, day: DayLike, *, home: Home = None) -> int:
    """The last trading day strictly before ``day``, as ms at 00:00 Beijing."""
    view = _view(home)
    days = view.open_days[normalize_market(market)]
    n = _in_range(day, "day")
    i = int(np.searchsorted(days, n, "left"))
    if i == 0:
        raise InvalidArgument(
            f"no trading day before {day!r} in the calendar ({KNOWN_FIRST} to {HORIZON_LAST})"
        )
    _note_provisional(view, int(days[i - 1]), int(days[i - 1]))
    return int(days[i - 1]) * DAY_MS - BEIJING_OFFSET_MS


def next_trading_day(market: str, day: DayLike, *, home: Home = None) -> int:
    """The first trading day strictly after ``day``, as ms at 00:00 Beijing."""
    view = _view(home)
    days = view.open_days[normalize_market(market)]
    n = _in_range(day, "day")
    i = int(np.searchsorted(days, n, "right"))
    if i == len(days):
        raise InvalidArgument(
            f"no trading day after {day!r} in the calendar ({KNOWN_FIRST} to {HORIZON_LAST})"
        )
    _note_provisional(view, int(days[i]), int(days[i]))
    return int(days[i]) * DAY_MS - BEIJING_OFFSET_MS


def holidays(
    market: str, start: DayLike | None = None, end: DayLike | None = None, *, home: Home = None
) -> I64Array:
    """Weekdays in ``[start, end]`` on which ``market`` is closed for a holiday, as ``YYYYMMDD``.

    For BJ only days from its opening (2021-11-15) count; earlier it simply did not trade.
    """
    m = normalize_market(market)
    view = _view(home)
    lo, hi = _bounds(view, start, end)
    if m == "BJ":
        lo = max(lo, _BJ_FIRST)
    if lo > hi:
        return np.zeros(0, dtype=np.int64)
    every = np.arange(lo, hi + 1, dtype=np.int64)
    sel = every[_is_weekday(every) & view.closed[lo - _FIRST_DAY : hi - _FIRST_DAY + 1]]
    if len(sel):
        _note_provisional(view, lo, hi)
    return ms_to_yyyymmdd(sel * DAY_MS)


def trading_calendar(
    market: str, start: DayLike = "", end: DayLike = "", *, home: Home = None
) -> list[str]:
    """Trading days as ``'YYYYMMDD'`` strings, xtquant's ``get_trading_calendar`` shape.

    As in xtquant, an empty ``end`` means the last day whose holidays are known (the day before
    the provisional ones); a later ``end`` gets provisional days too.
    """
    days = trading_days_yyyymmdd(market, start or None, end or None, home=home)
    return [str(d) for d in days.tolist()]


def known_range(*, home: Home = None) -> tuple[int, int]:
    """First and last ``YYYYMMDD`` before the calendar turns provisional."""
    return KNOWN_FIRST, _ymd(_view(home).known_last)


def base_open_days(market: str) -> I64Array:
    """Trading days (days since 1970-01-01) from the bundled table and the provisional rule only.

    Independent of any stored layer: the simulator's synthetic history stands on it, so a seed
    means the same bars in every home.
    """
    closed, _ = _base()
    every = np.arange(_FIRST_DAY, _HORIZON + 1, dtype=np.int64)
    days = every[_is_weekday(every) & ~closed]
    if normalize_market(market) == "BJ":
        days = days[days >= _BJ_FIRST]
    days.setflags(write=False)
    return days


class Span(NamedTuple):
    """A run of days ``first..last`` (``YYYYMMDD``) whose status comes from one layer."""

    first: int
    last: int
    source: str
    detail: str


def info(*, home: Home = None) -> list[Span]:
    """Where each stretch of the calendar comes from, oldest first."""
    view = _view(home)
    src = view.source
    cuts = np.flatnonzero(np.diff(src)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts - 1, [len(src) - 1]])
    out = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        name = SOURCES[int(src[a])]
        stored = view.stored.get(name)
        detail = {
            "bundled": "published exchange closures shipped with qmtkit",
            "provisional": "computed by rule: weekdays minus statutory holidays",
        }.get(name, stored.source if stored is not None else "")
        out.append(Span(_ymd(_FIRST_DAY + a), _ymd(_FIRST_DAY + b), name, detail))
    return out


def reset_warning() -> None:
    """Let the next provisional answer log its warning again (tests)."""
    global _warned
    _warned = False


def closed_weekdays_between(first: int, last: int, *, home: Home = None) -> set[int]:
    """Day numbers of the weekdays in ``[first, last]`` (day numbers) the calendar closes."""
    view = _view(home)
    lo, hi = max(first, _FIRST_DAY), min(last, _HORIZON)
    if lo > hi:
        return set()
    every = np.arange(lo, hi + 1, dtype=np.int64)
    sel = every[_is_weekday(every) & view.closed[lo - _FIRST_DAY : hi - _FIRST_DAY + 1]]
    return set(sel.tolist())


__all__ = [
    "HORIZON_LAST",
    "SOURCES",
    "Span",
    "base_open_days",
    "closed_weekdays_between",
    "day_number",
    "holidays",
    "info",
    "is_provisional",
    "is_trading_day",
    "known_range",
    "ms_to_yyyymmdd",
    "next_trading_day",
    "normalize_market",
    "on_closed_day",
    "previous_trading_day",
    "trading_calendar",
    "trading_days",
    "trading_days_yyyymmdd",
    "yyyymmdd_to_ms",
]


def on_closed_day(
    times_ms: npt.ArrayLike, *, home: Home = None, stored_only: bool = False
) -> npt.NDArray[np.bool_]:
    """For each Unix-ms time, True if its Beijing day is a weekday the calendar closes.

    ``stored_only`` counts only the days a stored layer (a user file, a venue's calendar)
    closes: real data's word, which a source's bar must not contradict.
    """
    view = _view(home)
    days = (np.asarray(times_ms, dtype=np.int64) + BEIJING_OFFSET_MS) // DAY_MS
    inside = (days >= _FIRST_DAY) & (days <= _HORIZON)
    idx = days[inside] - _FIRST_DAY
    closed = view.closed[idx] & _is_weekday(days[inside])
    if stored_only:
        closed &= (view.source[idx] == _USER) | (view.source[idx] == _VENUE)
    out = np.zeros(days.shape, dtype=bool)
    out[inside] = closed
    return out
