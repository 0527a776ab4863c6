"""Fan-out channels: one producer, many consumers, each with its own pace.

Two kinds, with two opposite policies:

* ``QuoteFanout`` — market data. A consumer that falls behind is *conflated* (pending records are
  merged to the latest per key) so it stays bounded and the producer never waits.
* ``ReportFanout`` — trade reports. Nothing is ever dropped: every consumer sees every report in
  order, from the moment it joined.

Both are pure anyio: no backend knowledge, no threads. ``publish`` is a plain (non-async) call
that never blocks, so it can be used straight from an event-sink callback.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from types import TracebackType
from typing import Generic, Protocol, TypeVar

import anyio

from qmtkit.checks import positive_int
from qmtkit.errors import ClosedError
from qmtkit.models import Bar

R = TypeVar("R")
T = TypeVar("T")

DEFAULT_MAX_RECORDS = 100_000


class EventMaker:
    """Makes ``anyio.Event`` objects, asking for the running async library only once.

    ``anyio.Event()`` looks the async backend up on every call (~10 us on asyncio, where the
    event itself costs well under one): a waiter made for every batch or report paid that
    each time. The first event made inside an event loop gives the backend's own class, which
    makes the rest. One maker serves one object's waiters (all on one loop).
    """

    __slots__ = ("_cls",)

    def __init__(self) -> None:
        self._cls: Callable[[], anyio.Event] | None = None

    def __call__(self) -> anyio.Event:
        """A new, unset event."""
        cls = self._cls
        if cls is not None:
            return cls()
        event = anyio.Event()
        if type(event).__module__.startswith("anyio._backends."):
            # A backend's event (not the adapter made outside any loop): its class needs
            # no lookup.
            self._cls = type(event)
        return event


class Waiter(Protocol):
    """What one task waits on until another wakes it (``set``)."""

    def set(self) -> None:
        """Wake the waiting task (once; later calls do nothing)."""

    def wait(self) -> Awaitable[object]:
        """What to await until ``set``."""


class _FutureWaiter:
    """A ``Waiter`` of the running asyncio loop: one bare future, awaited directly."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future

    def set(self) -> None:
        future = self._future
        if not future.done():  # cancelled with its waiter: nothing to wake
            future.set_result(None)

    def wait(self) -> Awaitable[object]:
        return self._future


class WaiterMaker:
    """Makes the waiters of ONE waiting task at a time (a quote consumer's reader).

    On asyncio a waiter is a bare future of the running loop: ``anyio.Event`` wraps an
    ``asyncio.Event``, whose ``wait`` makes a future anyway, through two more objects and two
    coroutines (a strategy with a subscription per code waits once per code per step). A
    cancelled wait cancels the future: fine for one waiting task, not for a shared event
    (``EventMaker`` serves those). Elsewhere (trio) it makes ``anyio.Event`` objects.
    """

    __slots__ = ("_events", "_on_asyncio")

    def __init__(self) -> None:
        self._on_asyncio: bool | None = None
        self._events = EventMaker()

    def __call__(self) -> Waiter:
        """A new waiter, not yet set."""
        if self._on_asyncio:
            return _FutureWaiter(asyncio.get_running_loop().create_future())
        event = self._events()
        if self._on_asyncio is None:
            self._on_asyncio = type(event).__module__ == "anyio._backends._asyncio"
        return event


def quote_key(record: object) -> Hashable:
    """The merge key of a quote record: the code for ticks, (code, bar time) for bars."""
    if isinstance(record, Bar):
        return (record.stock_code, record.time)
    code: Hashable = getattr(record, "stock_code", None)
    if code is None:
        # Records without a code cannot be merged; keying them by identity keeps every one.
        return id(record)
    return code


def merge_latest(records: Sequence[R], key: Callable[[R], Hashable]) -> list[R]:
    """Keep the last record of each key, in the arrival order of the kept records."""
    seen: set[Hashable] = set()
    kept: list[R] = []
    for rec in reversed(records):
        k = key(rec)
        if k not in seen:
            seen.add(k)
            kept.append(rec)
    kept.reverse()
    return kept


# --------------------------------------------------------------------------- quotes


class QuoteConsumer(Generic[R]):
    """One consumer of a ``QuoteFanout``: an async iterator of batches (``list`` of records).

    Use it as an async context manager (``async with fanout.subscribe() as sub``) or iterate it
    directly; leaving the context, ``aclose()``, or a cancellation while waiting detaches it.
    ``dropped`` counts the records merged away because this consumer was too slow.
    """

    __slots__ = (
        "_count",
        "_fanout",
        "_new_event",
        "_pending",
        "_waiter",
        "closed",
        "dropped",
        "max_records",
    )

    def __init__(self, fanout: QuoteFanout[R], max_records: int) -> None:
        self._fanout = fanout
        self.max_records = max_records
        self.dropped = 0
        self.closed = False
        self._pending: deque[list[R]] = deque()
        self._count = 0
        self._waiter: Waiter | None = None
        self._new_event = WaiterMaker()

    @property
    def pending(self) -> int:
        """Records buffered and not yet read."""
        return self._count

    def _push(self, batch: list[R]) -> None:
        n = len(batch)
        if self._count + n <= self.max_records:
            self._pending.append(batch)
            self._count += n
        else:
            self._conflate(batch)
        w = self._waiter
        if w is not None:
            self._waiter = None
            w.set()

    def _conflate(self, batch: list[R]) -> None:
        everything: list[R] = [r for b in self._pending for r in b]
        everything.extend(batch)
        merged = merge_latest(everything, self._fanout.key)
        if len(merged) > self.max_records:
            # More distinct keys than the cap: the oldest go, so the bound always holds.
            merged = merged[len(merged) - self.max_records :]
        self.dropped += len(everything) - len(merged)
        self._pending.clear()
        if merged:
            self._pending.append(merged)
        self._count = len(merged)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            w.set()

    def __aiter__(self) -> QuoteConsumer[R]:
        return self

    async def __anext__(self) -> list[R]:
        while not self._pending:
            if self.closed or self._fanout.closed:
                self._detach()
                raise StopAsyncIteration
            waiter = self._waiter = self._new_event()
            try:
                await waiter.wait()
            except BaseException:
                self._detach()
                raise
        batch = self._pending.popleft()
        self._count -= len(batch)
        # The producer's list may be shared with other consumers: hand out a private copy.
        return list(batch)

    def get_nowait(self) -> list[R] | None:
        """The next pending batch, or None when nothing is buffered."""
        if not self._pending:
            return None
        batch = self._pending.popleft()
        self._count -= len(batch)
        return list(batch)

    def _detach(self) -> None:
        if not self.closed:
            self.closed = True
            self._fanout._remove(self)
            self._wake()  # a task waiting in __anext__ sees the end

    async def aclose(self) -> None:
        """Stop consuming; the buffered records are discarded."""
        self._detach()
        self._pending.clear()
        self._count = 0

    async def __aenter__(self) -> QuoteConsumer[R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class QuoteFanout(Generic[R]):
    """One producer of quote batches, many consumers, each with a bounded buffer.

    Slow-consumer policy: each consumer buffers at most ``max_records`` records. When a new batch
    would overflow it, everything pending plus the new batch is merged to the latest record per
    key — per ``stock_code`` for ticks, per ``(stock_code, time)`` for bars, so each bar keeps its
    latest version — and the number of records merged away is added to that consumer's
    ``dropped``. If even the merged records exceed the cap (more distinct keys than
    ``max_records``), the oldest are dropped and counted too. Consumers read batches in arrival
    order; a fast consumer sees every batch unchanged. ``publish`` never blocks and never waits
    for a consumer.

    ``close()`` lets every consumer drain what it has buffered and then ends its iteration.
    """

    def __init__(self, key: Callable[[R], Hashable] = quote_key) -> None:
        self.key = key
        self.closed = False
        self._consumers: dict[QuoteConsumer[R], None] = {}
        self.published = 0

    @property
    def consumers(self) -> int:
        """How many consumers are attached."""
        return len(self._consumers)

    def subscribe(self, max_records: int = DEFAULT_MAX_RECORDS) -> QuoteConsumer[R]:
        """Attach a consumer with a buffer of ``max_records`` records."""
        if self.closed:
            raise ClosedError("cannot subscribe to a closed quote fan-out")
        positive_int("max_records", max_records, " (records a slow consumer may buffer)")
        consumer = QuoteConsumer(self, max_records)
        self._consumers[consumer] = None
        return consumer

    def publish(self, batch: Sequence[R]) -> None:
        """Hand one batch to every consumer, without waiting for any of them."""
        if self.closed:
            raise ClosedError("cannot publish to a closed quote fan-out")
        if not batch:
            return
        items = batch if isinstance(batch, list) else list(batch)
        self.published += len(items)
        for consumer in self._consumers:
            consumer._push(items)

    def _remove(self, consumer: QuoteConsumer[R]) -> None:
        self._consumers.pop(consumer, None)

    def close(self) -> None:
        """End every consumer's iteration once its buffer is drained."""
        self.closed = True
        for consumer in list(self._consumers):
            consumer._wake()


# --------------------------------------------------------------------------- reports


class ReportConsumer(Generic[T]):
    """One consumer of a ``ReportFanout``: an async iterator of items, none ever skipped.

    Leaving its context, ``aclose()``, or a cancellation while waiting detaches it.
    """

    __slots__ = ("_cursor", "_fanout", "closed")

    def __init__(self, fanout: ReportFanout[T], cursor: int) -> None:
        self._fanout = fanout
        self._cursor = cursor
        self.closed = False

    @property
    def pending(self) -> int:
        """Items published and not yet read by this consumer."""
        f = self._fanout
        return f._base + len(f._log) - self._cursor

    def __aiter__(self) -> ReportConsumer[T]:
        return self

    async def __anext__(self) -> T:
        f = self._fanout
        while True:
            if self.closed:
                raise StopAsyncIteration
            idx = self._cursor - f._base
            if idx < len(f._log):
                item = f._log[idx]
                self._cursor += 1
                f._advanced()
                return item
            if f.closed:
                self._detach()
                raise StopAsyncIteration
            try:
                await f._new_item().wait()
            except BaseException:
                self._detach()
                raise

    def get_nowait(self) -> T | None:
        """The next item if one is ready, else None."""
        f = self._fanout
        idx = self._cursor - f._base
        if self.closed or idx >= len(f._log):
            return None
        item = f._log[idx]
        self._cursor += 1
        f._advanced()
        return item

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` items ready now, in order (empty if none): ``get_nowait`` in bulk."""
        f = self._fanout
        idx = self._cursor - f._base
        log = f._log
        if self.closed or idx >= len(log):
            return []
        if idx == 0 and limit >= len(log) and len(f._consumers) == 1:
            # The only reader takes all there is (a gateway session, on every order): the log
            # itself, with nothing to copy and nothing left to trim.
            f._log = []
            f._base += len(log)
            f._reads = 0
            self._cursor += len(log)
            return log
        items = log[idx : idx + limit]
        self._cursor += len(items)
        f._advanced(len(items))
        return items

    def _detach(self) -> None:
        if not self.closed:
            self.closed = True
            self._fanout._remove(self)
            self._fanout._wake_all()  # a task waiting in __anext__ sees the end

    async def aclose(self) -> None:
        """Stop consuming."""
        self._detach()

    async def __aenter__(self) -> ReportConsumer[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._detach()


class ReportFanout(Generic[T]):
    """An ordered stream that never drops: every consumer sees every item from when it joined.

    Items live in one shared log; each consumer keeps a cursor into it, so ``publish`` costs O(1)
    whatever the number of consumers. The log is trimmed once every cursor has passed an item.
    With no consumers, nothing is kept. A slow consumer makes the log grow (that is the price of
    never dropping); memory is freed as it catches up.

    ``close()`` lets every consumer read what was published and then ends its iteration.
    """

    _TRIM_AT = 256

    def __init__(self) -> None:
        self.closed = False
        self._log: list[T] = []
        self._base = 0  # absolute index of _log[0]
        self._consumers: set[ReportConsumer[T]] = set()
        #: Whether any consumer is attached: with none, a publisher may skip ``publish``
        #: (nothing is kept for no one).
        self.watched = False
        #: Called with the new ``watched`` each time it changes (a consumer attached to an
        #: unwatched fan-out, or its last consumer left).
        self.on_watched: Callable[[bool], None] | None = None
        self._event: anyio.Event | None = None
        self._new_event = EventMaker()
        self._reads = 0

    @property
    def consumers(self) -> int:
        """How many consumers are attached."""
        return len(self._consumers)

    @property
    def retained(self) -> int:
        """Items still held in the log for some lagging consumer."""
        return len(self._log)

    def subscribe(self) -> ReportConsumer[T]:
        """Attach a consumer that will see every item published from now on."""
        if self.closed:
            raise ClosedError("cannot subscribe to a closed report fan-out")
        consumer = ReportConsumer(self, self._base + len(self._log))
        self._consumers.add(consumer)
        if not self.watched:
            self.watched = True
            if self.on_watched is not None:
                self.on_watched(True)
        return consumer

    def publish(self, item: T) -> None:
        """Append one item for every consumer; never blocks."""
        if self.closed:
            raise ClosedError("cannot publish to a closed report fan-out")
        if not self._consumers:
            self._base += len(self._log) + 1
            self._log.clear()
            return
        self._log.append(item)
        self._wake_all()

    def publish_many(self, items: Sequence[T]) -> None:
        """``publish`` each of ``items``, in order, with one wake-up of waiting consumers."""
        if self.closed:
            raise ClosedError("cannot publish to a closed report fan-out")
        if not self._consumers:
            self._base += len(self._log) + len(items)
            self._log.clear()
            return
        self._log.extend(items)
        self._wake_all()

    def _new_item(self) -> anyio.Event:
        if self._event is None:
            self._event = self._new_event()
        return self._event

    def _advanced(self, reads: int = 1) -> None:
        # Finding the slowest cursor costs O(consumers), so it is done once per
        # max(_TRIM_AT, consumers) reads: amortised O(1) per read.
        self._reads += reads
        if self._reads >= max(len(self._consumers), min(self._TRIM_AT, len(self._log))):
            self._reads = 0
            self._trim()

    def _trim(self) -> None:
        consumers = self._consumers
        if len(consumers) == 1:
            # One reader (a gateway session, on every order): no generator to find the slowest.
            (only,) = consumers
            low = only._cursor
        elif consumers:
            low = min(c._cursor for c in consumers)
        else:
            low = self._base + len(self._log)
        k = low - self._base
        if k > 0:
            del self._log[:k]
            self._base = low

    def _remove(self, consumer: ReportConsumer[T]) -> None:
        self._consumers.discard(consumer)
        self._trim()
        if self.watched and not self._consumers:
            self.watched = False
            if self.on_watched is not None:
                self.on_watched(False)

    def _wake_all(self) -> None:
        ev = self._event
        if ev is not None:
            self._event = None
            ev.set()

    def close(self) -> None:
        """End every consumer's iteration once it has read everything published."""
        self.closed = True
        self._wake_all()


__all__ = [
    "DEFAULT_MAX_RECORDS",
    "EventMaker",
    "QuoteConsumer",
    "QuoteFanout",
    "ReportConsumer",
    "ReportFanout",
    "Waiter",
    "WaiterMaker",
    "merge_latest",
    "quote_key",
]
