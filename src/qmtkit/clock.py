"""Clocks for the simulator: wall time with a virtual session, strict session hours, or virtual.

Every time is Unix milliseconds. A clock also says whether the market is open and which trading
day a moment belongs to, so the broker can roll T+1 and the market can stop outside sessions.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

import anyio

BEIJING = timezone(timedelta(hours=8))
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
    """Wall-clock time with the market open whenever the program runs (a virtual session)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

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
