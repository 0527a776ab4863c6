"""The replay's clock: virtual time that the replay, not the wall, moves forward."""

from __future__ import annotations

import heapq
import itertools

import anyio

from qmtkit.clock import VirtualClock


class ReplayClock(VirtualClock):
    """A ``VirtualClock`` that jumps to the next moment (``advance_to``) and knows its sleepers.

    The replay asks ``next_deadline()`` before each jump so that a strategy sleeping until a
    time between two bars wakes at that time, not at the next bar.
    """

    def __init__(self, start_ms: int) -> None:
        super().__init__(start_ms)
        self._heap: list[tuple[int, int, anyio.Event]] = []
        self._order = itertools.count()
        self.finished = False
        #: How many sleepers ``advance_to`` has woken so far (the replay settles after any).
        self.woken = 0

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time (returns at once after the replay has ended)."""
        if self.finished:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        due = self.now_ms() + max(0, int(seconds * 1000))
        heapq.heappush(self._heap, (due, next(self._order), event))
        await event.wait()

    def next_deadline(self) -> int | None:
        """The earliest time a sleeper waits for, or None."""
        return self._heap[0][0] if self._heap else None

    def advance_to(self, ms: int) -> None:
        """Set the time to ``ms`` (never backwards) and wake every sleeper due by then."""
        if ms < self._now:
            raise ValueError(f"a clock cannot go back: {ms} < {self._now}")
        if self._waiters:  # sleepers of VirtualClock.sleep (this clock's own are in _heap)
            self.advance((ms - self._now) / 1000)
        self._now = ms  # exact, whatever float rounding advance() did
        heap = self._heap
        while heap and heap[0][0] <= ms:
            heapq.heappop(heap)[2].set()
            self.woken += 1

    def finish(self) -> None:
        """The replay has ended: wake every sleeper; later sleeps return at once."""
        self.finished = True
        while self._heap:
            heapq.heappop(self._heap)[2].set()
