"""Wait until every other task of the event loop is waiting: the replay's "strategy is idle".

A backtest advances virtual time only when the strategy has nothing left to do at the current
time: every task is parked on an event, a lock, a subscription or a clock sleep. On asyncio
that is read from the loop's ready queue (one ``sleep(0)`` round after which nothing else is
runnable); on trio from ``trio.testing.wait_all_tasks_blocked``. Work that waits on another
thread (a ``to_thread`` call, the compat shim's callback thread) is not visible here: such
callers hold the replay with ``Idle.hold()`` while they work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

#: Rounds of the event loop without a quiet one before giving up (a strategy spinning on
#: ``sleep(0)`` forever would otherwise hold the replay for good).
MAX_ROUNDS = 1_000_000


class Idle:
    """The replay's idle test, with holds for work running outside the event loop."""

    def __init__(self) -> None:
        self._holds = 0
        self._released: anyio.Event | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the replay from advancing while the block runs (e.g. a callback thread)."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if self._holds == 0 and self._released is not None:
                self._released.set()
                self._released = None

    def acquire(self) -> None:
        """Start a hold from code that cannot use ``with`` (paired with ``release``)."""
        self._holds += 1

    def release(self) -> None:
        """End a hold started by ``acquire``."""
        if self._holds <= 0:
            raise RuntimeError("Idle.release() without a matching acquire()")
        self._holds -= 1
        if self._holds == 0 and self._released is not None:
            self._released.set()
            self._released = None

    @property
    def held(self) -> bool:
        """True while some hold is active."""
        return self._holds > 0

    async def settle(self) -> None:
        """Return once no other task can run and nothing holds the replay."""
        if self._holds == 0 and _nothing_ready():
            # Nobody was woken since the caller last yielded (the usual open of a step whose
            # fills woke no one): a round of the loop would only find that out again.
            return
        while True:
            await _loop_quiet()
            if self._holds == 0:
                return
            if self._released is None:
                self._released = anyio.Event()
            await self._released.wait()


def _nothing_ready() -> bool:
    """True when the running asyncio loop has no runnable handle queued (False if unknown)."""
    try:
        loop: Any = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - trio
        return False
    ready = getattr(loop, "_ready", None)
    return ready is not None and not ready


async def _loop_quiet() -> None:
    try:
        loop: Any = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - trio; the suite runs on asyncio
        import importlib

        await importlib.import_module("trio.testing").wait_all_tasks_blocked()
        return
    ready = getattr(loop, "_ready", None)
    if ready is None:  # pragma: no cover - an event loop without a ready queue
        for _ in range(64):
            await asyncio.sleep(0)
        return
    for _ in range(MAX_ROUNDS):
        await asyncio.sleep(0)
        # Handles still queued after our own turn are runnable work of this round or the
        # next; none left means every other task is parked (or waits on a timer or on I/O).
        if not ready:
            return
    raise RuntimeError(
        f"the strategy never went idle in {MAX_ROUNDS} event-loop rounds: a task is spinning "
        "without waiting on anything; wait on a subscription, an order or qk.sleep() instead"
    )
