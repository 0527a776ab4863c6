"""An event loop that lends itself to a blocked caller's thread while it has nothing to do.

Why: the shim's ``order_stock`` used to hand each order to the loop's thread and wait. That
hop costs a wake-up of a sleeping thread (~20 µs here) and the order then runs on a core and
caches gone cold while the thread slept (~57 µs for an order that takes ~31 µs on a loop that
never sleeps). When the loop is idle, the caller's own thread can run the order instead.

Soundness (the async core has one owner at a time): the loop's thread holds the loop's *baton*
(a lock) at all times except while it blocks waiting for I/O or a timer (``LendingSelector``
releases it around the wait only; the selector's own bookkeeping runs with the baton held).
Everything the loop runs - callbacks, tasks, protocol reads - runs between two waits, hence
with the baton. A borrower that takes the baton therefore runs while the loop's thread runs
nothing: one thread at a time touches the core, and the lock orders their memory. A borrower
only proceeds when no callback is waiting to run (``_ready`` empty): work queued earlier by any
thread (an ``order_stock_async``, a batch not yet handed over) keeps its place before the
lent call, which otherwise falls back to the loop's own thread. While lent, the borrower's
thread is marked as running the loop (``asyncio.get_running_loop()`` answers it, so a nested
blocking shim call is refused as it would be on the loop's thread). What the lent call queued
for later (callbacks, timers) is left to the loop's thread, woken once after it. On the main
thread Ctrl-C is held back until the lent call ends, as the loop's thread never sees it.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import math
import select
import selectors
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Final, TypeVar

T = TypeVar("T")

# The C module under ``signal``: ``signal.signal``/``getsignal`` turn numbers into enums on each
# call (~20 µs for a swap and back on a loaded 2-core host, ~1.5 µs without).
try:
    _raw_signal: Any = importlib.import_module("_signal")
except ImportError:  # pragma: no cover - CPython always has it
    _raw_signal = signal
_SIGINT = int(signal.SIGINT)

__all__ = ["NOT_LENT", "LendingLoop", "LendingSelector", "NotLent", "can_lend", "new_loop"]


class NotLent:
    """The answer of ``LendingLoop.run_lent`` when the loop was busy: run the call on it."""

    def __repr__(self) -> str:
        return "NOT_LENT"


NOT_LENT: Final = NotLent()

_Events = list[tuple[selectors.SelectorKey, int]]


def can_lend() -> bool:
    """Whether the default selector is epoll (Linux), whose fd ``poll`` can wait on.

    Elsewhere (kqueue, select, Windows' proactor) the shim's loop keeps the loop thread's way.
    """
    epoll = getattr(selectors, "EpollSelector", None)
    return epoll is not None and selectors.DefaultSelector is epoll and hasattr(select, "poll")


class LendingSelector(selectors.DefaultSelector):
    """The default selector; its ``baton`` is free only while the thread blocks in ``select``.

    Made on the loop's thread, which takes the baton at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.baton = threading.Lock()
        self.baton.acquire()
        # The selector's own fd becomes readable when it has events: waiting on it needs none
        # of the selector's Python-side state, which only the baton's holder may touch.
        self._wait = select.poll()
        self._wait.register(self.fileno(), select.POLLIN)

    def select(self, timeout: float | None = None) -> _Events:
        """Ready ``(key, events)`` pairs; the baton is free while it waits for them."""
        if timeout is not None and timeout <= 0:
            return super().select(timeout)
        ms = None if timeout is None else math.ceil(timeout * 1e3)
        self.baton.release()
        try:
            self._wait.poll(ms)
        finally:
            self.baton.acquire()
        return super().select(0)


def _noop() -> None:
    pass


class LendingLoop(asyncio.SelectorEventLoop):
    """An asyncio selector loop that runs ``run_lent`` calls on the caller's thread when idle."""

    # BaseEventLoop's own queues (read to know whether the loop has work waiting).
    _ready: collections.deque[asyncio.Handle]
    _scheduled: list[asyncio.TimerHandle]

    def __init__(self) -> None:
        self.lending = LendingSelector()
        super().__init__(self.lending)

    def run_lent(self, fn: Callable[..., T], *args: object) -> T | NotLent:
        """``fn(*args)`` on this thread as if on the loop's, or NOT_LENT if the loop is busy.

        ``fn`` must not wait for the loop (it would wait for itself): it runs as a plain loop
        callback does. Call from a thread that runs no event loop of its own.
        """
        baton = self.lending.baton
        if not baton.acquire(False):
            return NOT_LENT
        try:
            if self._ready or not self.is_running() or self.get_debug():
                return NOT_LENT
            head = self._scheduled[0] if self._scheduled else None
            with _ctrl_c_held():
                asyncio.events._set_running_loop(self)
                try:
                    return fn(*args)
                finally:
                    asyncio.events._set_running_loop(None)
                    if self._ready or (self._scheduled and self._scheduled[0] is not head):
                        self.call_soon_threadsafe(_noop)  # the loop's thread has work now
        finally:
            baton.release()


def new_loop() -> asyncio.AbstractEventLoop:
    """A ``LendingLoop`` where the platform allows, else the default loop (nothing is lent)."""
    return LendingLoop() if can_lend() else asyncio.new_event_loop()


class _ctrl_c_held:
    """Hold SIGINT back on the main thread for the block, then deliver it to its handler."""

    __slots__ = ("_caught", "_old")

    def __init__(self) -> None:
        self._old: Any = None
        self._caught = False

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            old = _raw_signal.getsignal(_SIGINT)
            if old is not None:  # None: a handler not set from Python, which cannot be restored
                _raw_signal.signal(_SIGINT, self._hold)
                self._old = old

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self._caught = True

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            _raw_signal.signal(_SIGINT, self._old)
            if self._caught:
                signal.raise_signal(signal.SIGINT)
