"""Hand calls from foreign threads (xtquant's callbacks) to the event loop, in arrival order.

Why not ``anyio.from_thread.run_sync`` with a captured token: it makes the calling thread wait
until the loop has run the function. xtquant delivers every trade push and every query answer
on one worker thread, so waiting there would stall MiniQMT's stream behind our loop, and a loop
that itself waits in a worker thread for a query answer would deadlock. Instead a foreign thread
appends to a queue under a lock and, when no drain is pending, schedules one with the loop's own
non-blocking thread-safe hook (asyncio ``loop.call_soon_threadsafe``, trio
``TrioToken.run_sync_soon``). The drain runs every queued call in the order they were queued,
so a burst costs one wake-up, not one per call.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("qmtkit.backends.xtquant")

Call = tuple[Callable[..., object], tuple[Any, ...]]


class LoopInbox:
    """Queue calls from any thread; run them on the loop that created the inbox, in order.

    ``post`` never blocks (beyond a short lock) and never raises; after ``close`` posts are
    dropped. An exception raised by a posted call is logged and does not stop the drain.
    """

    def __init__(self, schedule: Callable[[Callable[[], object]], object]) -> None:
        self._schedule = schedule
        self._lock = threading.Lock()
        self._queue: deque[Call] = deque()
        self._scheduled = False
        self._closed = False

    @classmethod
    def for_current_loop(cls) -> LoopInbox:
        """An inbox of the running event loop (asyncio or trio); call it on the loop thread."""
        try:
            return cls(asyncio.get_running_loop().call_soon_threadsafe)
        except RuntimeError:
            pass
        try:
            lowlevel: Any = importlib.import_module("trio.lowlevel")
            return cls(lowlevel.current_trio_token().run_sync_soon)
        except (ImportError, RuntimeError) as exc:
            raise RuntimeError(
                "the xtquant backend must be opened on an asyncio or trio loop"
            ) from exc

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` to run on the loop after every call queued before it."""
        with self._lock:
            if self._closed:
                return
            self._queue.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._schedule(self._drain)
        except RuntimeError:  # the loop is already closed: nobody is left to tell
            with self._lock:
                self._closed = True
                self._queue.clear()

    def _drain(self) -> None:
        with self._lock:
            calls = list(self._queue)
            self._queue.clear()
            self._scheduled = False
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:
                log.exception("xtquant event handler %r failed", fn)

    def close(self) -> None:
        """Drop queued calls and ignore later posts."""
        with self._lock:
            self._closed = True
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many calls are queued and not yet run."""
        with self._lock:
            return len(self._queue)
