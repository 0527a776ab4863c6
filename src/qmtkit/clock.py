"""Clocks for the simulator: wall time with a virtual session, strict session hours, or virtual.

Every time is Unix milliseconds. A clock also says whether the market is open and which trading
day a moment belongs to, so the broker can roll T+1 and the market can stop outside sessions.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Final, Protocol

import anyio

from qmtkit.checks import is_int

#: Beijing time (UTC+8, no daylight saving): the one place that says so.
BEIJING: Final = timezone(timedelta(hours=8))
#: The same offset in milliseconds, for arithmetic on Unix-millisecond timestamps.
BEIJING_OFFSET_MS: Final = 8 * 3_600_000
#: The IANA name of Beijing time, for Polars and pandas datetime columns.
BEIJING_TZ_NAME: Final = "Asia/Shanghai"
#: Environment variable that pins where wall time starts (for tests and reproducible runs).
CLOCK_ENV = "QMTKIT_CLOCK"
#: Continuous-trading sessions in Beijing time, as (start, end) minutes after midnight.
SESSIONS = ((9 * 60 + 30, 11 * 60 + 30), (13 * 60, 15 * 60))


def beijing(ms: int) -> datetime:
    """The Beijing-time datetime of a Unix-millisecond timestamp."""
    return datetime.fromtimestamp(ms / 1000, BEIJING)


def trading_day_of(ms: int) -> int:
    """The calendar day (``YYYYMMDD`` as an int) in Beijing of a timestamp."""
    d = beijing(ms)
    return d.year * 10000 + d.month * 100 + d.day


def in_session(ms: int) -> bool:
    """True inside 09:30-11:30 or 13:00-15:00 Beijing time on a weekday (holidays aside)."""
    d = beijing(ms)
    if d.weekday() >= 5:
        return False
    minute = d.hour * 60 + d.minute
    return any(start <= minute < end for start, end in SESSIONS)


def parse_pinned_start(text: str) -> int:
    """Unix ms of a pinned start: ``YYYYMMDD``, ``YYYYMMDDHHMMSS`` or ISO 8601.

    A time without a zone is Beijing time; a date alone means 00:00 Beijing, which the
    default session clock maps onto the opening of that day's session.
    """
    raw = text.strip()
    try:
        if raw.isdigit() and len(raw) in (8, 14):
            parsed = datetime.strptime(raw, "%Y%m%d%H%M%S" if len(raw) == 14 else "%Y%m%d")
        else:
            parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"bad pinned clock {text!r}: expected YYYYMMDD, YYYYMMDDHHMMSS or an ISO 8601 time "
            "such as 2026-12-31T10:00:00+08:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BEIJING)
    return int(parsed.timestamp() * 1000)


_pin: tuple[str, int, int] | None = None  # (env text, pinned start ms, monotonic ns at start)


def wall_ms() -> int:
    """Wall time, Unix ms; under ``$QMTKIT_CLOCK`` a pinned start that runs on at wall speed.

    Every place in qmtkit that needs "now" without a clock of its own asks here, so one
    environment variable moves a whole process (and the scripts ``qmtkit run`` starts) to
    another date without touching the system clock.
    """
    global _pin
    text = os.environ.get(CLOCK_ENV, "")
    if not text:
        return time.time_ns() // 1_000_000
    if _pin is None or _pin[0] != text:
        _pin = (text, parse_pinned_start(text), time.monotonic_ns())
    return _pin[1] + (time.monotonic_ns() - _pin[2]) // 1_000_000


def _process_pin() -> tuple[int, int] | None:
    """``$QMTKIT_CLOCK``'s pin as ``wall_ms`` keeps it: (start ms, monotonic ns at that start).

    None when the variable is unset (wall time is the system's).
    """
    if not os.environ.get(CLOCK_ENV, ""):
        return None
    wall_ms()  # makes (or renews, for a changed text) the process's pin
    assert _pin is not None
    return _pin[1], _pin[2]


class Clock(Protocol):
    """What the simulator asks of time."""

    def now_ms(self) -> int:
        """The current time, Unix milliseconds."""

    def is_open(self) -> bool:
        """Whether orders can trade now."""

    def trading_day(self) -> int:
        """The current trading day as ``YYYYMMDD``."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SessionClock:
    """Wall-clock time with the market open whenever the program runs (a virtual session).

    ``start_ms`` pins this clock alone: it starts there and runs on at wall speed (as
    ``$QMTKIT_CLOCK`` does for the whole process); ``sim://?clock_start=`` sets it. Without it
    the clock reads as ``wall_ms`` does; ``$QMTKIT_CLOCK`` is looked up once, when the clock is
    made (reading the environment on every call was a measurable part of an order's round
    trip), so a later change of it moves only clocks made after the change.
    """

    def __init__(self, start_ms: int | None = None) -> None:
        if start_ms is not None and (not is_int(start_ms) or start_ms < 0):
            raise ValueError(f"start_ms must be Unix milliseconds >= 0, got {start_ms!r}")
        self._pin = _process_pin() if start_ms is None else (start_ms, time.monotonic_ns())

    def now_ms(self) -> int:
        pin = self._pin
        if pin is None:
            return time.time_ns() // 1_000_000
        return pin[0] + (time.monotonic_ns() - pin[1]) // 1_000_000

    def is_open(self) -> bool:
        return True

    def trading_day(self) -> int:
        return trading_day_of(self.now_ms())

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class StrictClock(SessionClock):
    """Wall-clock time with real session hours: open 09:30-11:30 and 13:00-15:00 Beijing."""

    def is_open(self) -> bool:
        return in_session(self.now_ms())


class VirtualClock:
    """A clock that moves only when told to: for tests and backtests.

    ``sleep`` parks the caller until ``advance`` moves time past its deadline, so a test can
    step the simulator deterministically. ``strict`` applies session hours.
    """

    def __init__(self, start_ms: int, *, strict: bool = False) -> None:
        self._now = int(start_ms)
        self._strict = strict
        self._waiters: list[tuple[int, anyio.Event]] = []

    def now_ms(self) -> int:
        return self._now

    def is_open(self) -> bool:
        return in_session(self._now) if self._strict else True

    def trading_day(self) -> int:
        return trading_day_of(self._now)

    async def sleep(self, seconds: float) -> None:
        event = anyio.Event()
        self._waiters.append((self._now + int(seconds * 1000), event))
        await event.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        self._now += int(seconds * 1000)
        due = [w for w in self._waiters if w[0] <= self._now]
        self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, event in due:
            event.set()
