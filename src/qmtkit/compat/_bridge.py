"""The sync shim's plumbing: one event-loop thread (a portal) and callback dispatcher threads.

xtquant scripts are synchronous and expect callbacks on a thread of their own, one at a time, in
order. The shim therefore runs the async client in one background thread (an anyio
``BlockingPortal``) and hands every user callback to a ``Dispatcher`` thread. A callback may
call the shim's blocking functions again: they only wait on the loop thread, which is never the
dispatcher, so there is no deadlock.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import TYPE_CHECKING, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from qmtkit.compat._affinity import Follower
from qmtkit.compat._lending import LendingLoop, NotLent, new_loop
from qmtkit.errors import BackendUnavailable, ClosedError, QmtkitError

if TYPE_CHECKING:
    from qmtkit.backends.base import Backend
    from qmtkit.backends.replay import ReplayBackend
    from qmtkit.client import Client

log = logging.getLogger("qmtkit.compat")

T = TypeVar("T")

__all__ = ["Bridge", "Dispatcher", "LoopThreadError", "bridge", "ensure_not_in_loop"]


class LoopThreadError(QmtkitError, RuntimeError):
    """A blocking shim function was called from a thread that runs an event loop."""


def ensure_not_in_loop(name: str) -> None:
    """Fail fast when ``name`` (a blocking shim function) is called from an event-loop thread.

    Blocking there would stall the loop the shim itself may need; async code should use
    ``qmtkit.connect()`` instead.
    """
    # _get_running_loop: None rather than an exception to build on every blocking call.
    if (
        asyncio.events._get_running_loop() is not None
        or threading.current_thread() is _BRIDGE_THREAD[0]
    ):
        raise LoopThreadError(
            f"{name}() blocks and cannot be called from a thread running an event loop "
            f"({threading.current_thread().name}); call it from plain synchronous code, or use "
            "the async API (`async with qmtkit.connect() as qk: ...`) inside async code"
        )


_BRIDGE_THREAD: list[threading.Thread | None] = [None]


# --------------------------------------------------------------------------- dispatcher


class _Wake:
    """A wake-up signal whose ``set`` is a system call made with the GIL released.

    Why not a lock or ``queue.SimpleQueue``: their wake-up is made holding the GIL, so the woken
    thread, often run at once on the waker's core, finds the GIL held, sleeps again and waits
    until the waker blocks. A write to an eventfd (a pipe on other POSIX systems) lets the woken
    thread take the GIL during the call; the waker resumes after it. Windows keeps a
    ``SimpleQueue`` (its pipes cannot be made non-blocking before Python 3.12).
    """

    def __init__(self) -> None:
        self._fds: tuple[int, ...] = ()
        if hasattr(os, "eventfd"):
            self._r = self._w = os.eventfd(0)
            self._fds = (self._r,)
            self.set = self._set_eventfd
            self.wait = self._wait_eventfd
        elif os.name == "posix":
            self._r, self._w = self._fds = os.pipe()
            os.set_blocking(self._w, False)  # a full pipe already holds a wake-up
            self.set = self._set_pipe
            self.wait = self._wait_pipe
        else:
            self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
            self.set = self._set_queue
            self.wait = self._tokens.get

    def _set_eventfd(self) -> None:
        os.eventfd_write(self._w, 1)

    def _wait_eventfd(self) -> None:
        os.eventfd_read(self._r)

    def _set_pipe(self) -> None:
        with suppress(BlockingIOError):
            os.write(self._w, b"\0")

    def _wait_pipe(self) -> None:
        os.read(self._r, 4096)

    def _set_queue(self) -> None:
        self._tokens.put(None)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


class Dispatcher:
    """A thread that runs submitted callbacks one at a time, in submission order.

    An exception raised by a callback is logged with its traceback and does not stop the
    thread, as xtquant's callback executor does.
    """

    def __init__(self, name: str = "qmtkit-callbacks") -> None:
        # (fn, args) to run, or None: stop.
        self._items: deque[tuple[Callable[..., object], tuple[object, ...]] | None] = deque()
        self._wake = _Wake()
        # Orders submit/close against the thread closing the wake-up's descriptors.
        self._gate = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        # Its wake-ups are queued on the CPU of the thread that hands it work (_affinity).
        self._follower = Follower(self._thread.native_id)

    @property
    def thread(self) -> threading.Thread:
        """The dispatcher's thread."""
        return self._thread

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Queue ``fn(*args)``; silently ignored after ``close`` (late pushes are dropped)."""
        with self._gate:
            if self._closed:
                return
            self._items.append((fn, args))
            self._follower.follow()
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call has run; False on timeout."""
        if self._closed or threading.current_thread() is self._thread:
            return True
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Run what is queued, then stop the thread (waits up to ``timeout`` seconds)."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._items.append(None)
            self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        items = self._items
        while True:
            self._wake.wait()
            while items:
                item = items.popleft()
                if item is None:
                    with self._gate:  # nothing is submitted once closed: no late write
                        self._wake.close()
                    return
                fn, args = item
                try:
                    fn(*args)
                except BaseException:  # a user callback must never kill the dispatcher
                    log.exception("callback %s raised", getattr(fn, "__qualname__", fn))


# --------------------------------------------------------------------------- portal


async def _awaited(fn: Callable[..., Awaitable[T]], *args: object) -> T:
    return await fn(*args)


class Bridge:
    """The process-wide event-loop thread and the clients opened in it, shared by URL.

    Clients are reference counted: ``acquire(url)`` connects (or reuses) and ``release(url)``
    disconnects when the last user leaves. Everything is closed at interpreter exit.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._portal: BlockingPortal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, tuple[Client, AbstractContextManager[Client], int]] = {}
        self._atexit = False
        #: Tests may build the backend for a URL themselves (e.g. a MockBackend).
        self.backend_factory: Callable[[str], Backend] | None = None

    # -- the loop thread

    def portal(self) -> BlockingPortal:
        """The running portal, starting the loop thread on first use."""
        with self._lock:
            if self._portal is not None:
                return self._portal
            ready: Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]] = Future()

            async def main() -> None:
                async with BlockingPortal() as portal:
                    ready.set_result((portal, asyncio.get_running_loop()))
                    await portal.sleep_until_stopped()

            def run() -> None:
                try:
                    anyio.run(main, backend_options={"loop_factory": new_loop})
                except BaseException as exc:  # surfaced to the starter below
                    if not ready.done():
                        ready.set_exception(exc)

            # A daemon thread: a script that forgets stop() must still be able to exit.
            thread = threading.Thread(target=run, name="qmtkit-loop", daemon=True)
            thread.start()
            self._portal, self._loop = ready.result()
            self._thread = thread
            _BRIDGE_THREAD[0] = thread
            if not self._atexit:
                atexit.register(self.shutdown)
                self._atexit = True
            return self._portal

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop of the loop thread, if started."""
        return self._loop

    @property
    def loop_thread(self) -> threading.Thread | None:
        """The thread running the event loop, if started."""
        return self._thread

    def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: object,
        timeout: float | None = None,
        name: str = "",
    ) -> T:
        """Run ``await fn(*args)`` on the loop thread and wait for its result."""
        label = name or getattr(fn, "__name__", "call")
        ensure_not_in_loop(label)
        self.portal()
        loop = self._loop
        assert loop is not None
        # A bare asyncio task, not a task of the portal's group: half the cost per call (the
        # portal's task bookkeeping took ~35 µs of a ~75 µs hop), and a blocking call has no
        # use for the group: its caller waits for the result and cancels it on timeout.
        future = asyncio.run_coroutine_threadsafe(_awaited(fn, *args), loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise BackendUnavailable(
                f"{label}() got no answer within {timeout} s (see set_timeout)"
            ) from None

    def call_at_once(
        self,
        now: Callable[..., T | None],
        later: Callable[..., Awaitable[T]],
        *args: object,
        timeout: float | None = None,
        name: str = "",
    ) -> T:
        """``now(*args)`` on the loop thread, or ``await later(*args)`` if that gave None.

        For calls the venue usually answers at once (an order on the simulator). When the
        loop is idle, ``now`` runs on the caller's thread, lent the loop (``LendingLoop``): no
        thread is woken and the call runs on the core that made it. Otherwise the loop thread
        runs ``now`` straight from its wake-up, with no task to start and no further loop turn
        before the caller is woken; ``later`` is the general way, as ``call``.
        """
        label = name or getattr(now, "__name__", "call")
        ensure_not_in_loop(label)
        self.portal()
        loop = self._loop
        assert loop is not None
        if isinstance(loop, LendingLoop):
            lent = loop.run_lent(now, *args)
            if lent is None:
                return self.call(later, *args, timeout=timeout, name=label)
            if not isinstance(lent, NotLent):
                return lent
        future: Future[T] = Future()
        started: list[asyncio.Task[T]] = []

        def finish(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                future.cancel()
            elif (exc := task.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(task.result())

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the caller gave up before the loop got to it
            try:
                value = now(*args)
            except BaseException as exc:
                future.set_exception(exc)
                return
            if value is not None:
                future.set_result(value)
                return
            task = loop.create_task(_awaited(later, *args))
            started.append(task)
            task.add_done_callback(finish)

        loop.call_soon_threadsafe(run)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()  # not yet run: it never will be
            if started:
                loop.call_soon_threadsafe(started[0].cancel)
            raise BackendUnavailable(
                f"{label}() got no answer within {timeout} s (see set_timeout)"
            ) from None

    def spawn(self, fn: Callable[..., Awaitable[T]], *args: object) -> Future[T]:
        """Start ``fn(*args)`` on the loop thread without waiting; cancel it via the future."""
        return self.portal().start_task_soon(fn, *args)

    # -- shared clients

    def acquire(self, url: str) -> Client:
        """The connected ``qmtkit.Client`` for ``url`` (connecting on first use)."""
        ensure_not_in_loop("connect")
        with self._lock:
            entry = self._clients.get(url)
            if entry is not None:
                client, cm, refs = entry
                self._clients[url] = (client, cm, refs + 1)
                return client
            from qmtkit.client import connect

            factory = self.backend_factory
            if factory is None and url.startswith("backtest:"):
                factory = _held_backtest
            opener = connect(backend=factory(url)) if factory is not None else connect(url)
            cm = self.portal().wrap_async_context_manager(opener)
            client = cm.__enter__()
            self._clients[url] = (client, cm, 1)
            return client

    def release(self, url: str) -> None:
        """Drop one reference to the client of ``url``; the last one disconnects it."""
        with self._lock:
            entry = self._clients.get(url)
            if entry is None:
                return
            client, cm, refs = entry
            if refs > 1:
                self._clients[url] = (client, cm, refs - 1)
                return
            del self._clients[url]
        try:
            cm.__exit__(None, None, None)
        except Exception:
            log.exception("closing the connection to %s failed", url)

    def shutdown(self) -> None:
        """Close every client and stop the loop thread (idempotent; runs at exit)."""
        with self._lock:
            clients = list(self._clients.items())
            self._clients.clear()
            portal, thread = self._portal, self._thread
            self._portal = None
            self._loop = None
            self._thread = None
        for url, (_client, cm, _refs) in clients:
            try:
                cm.__exit__(None, None, None)
            except Exception:
                log.exception("closing the connection to %s failed", url)
        if portal is not None:
            try:
                # Cancel what still runs (pumps, watchers, gateways): nothing waits for them.
                portal.call(portal.stop, True)
            except Exception:
                log.debug("portal already stopped", exc_info=True)
        if thread is not None:
            thread.join(5.0)
        _BRIDGE_THREAD[0] = None


def _held_backtest(url: str) -> ReplayBackend:
    """A backtest whose replay waits for the script's ``run()`` (see ``compat._replay``)."""
    from qmtkit.backends.replay import ReplayBackend

    backend = ReplayBackend.from_url(url)
    backend.idle.acquire()
    backend.setup_held = True
    return backend


_BRIDGE = Bridge()


def bridge() -> Bridge:
    """The process-wide bridge."""
    return _BRIDGE


@contextmanager
def translate_errors(name: str) -> Iterator[None]:
    """Re-raise a closed/unreachable backend as BackendUnavailable naming the shim function."""
    try:
        yield
    except ClosedError as exc:
        raise BackendUnavailable(f"{name}(): the connection is closed ({exc})") from exc
