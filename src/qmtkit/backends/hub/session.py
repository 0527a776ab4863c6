"""One client connection of the gateway: its outgoing buffers, reader, writer and heartbeat.

Outgoing data has three sources, drained in this order by whichever task sends: replies and
control frames (never dropped), account reports (encoded once by the journal, from each
account's ``ReportFanout``, one ``ReportsEvent`` per account and write; never dropped) and
quotes (from ``QuoteFanout`` consumers, which merge to the latest record per code when this
client falls behind). One write takes at most about
``WRITE_BUDGET`` bytes of events so a slow client keeps its backlog where the policy applies.

Memory per client is bounded: replies and control frames waiting to be sent may not exceed
the session's byte ``budget`` (``serve(client_budget=...)``) while earlier ones are still
queued; past it the client is disconnected with a logged reason and its queue is freed at once.
Its reports stay in the journal and are replayed when it reconnects, so nothing is lost.
Reports waiting for it are capped by count (``report_cap``), quotes merge to the latest.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.abc
import msgspec

from qmtkit.backends.base import Reply, Request
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.errors import BackendError, InvalidArgument, QmtkitError
from qmtkit.models import AccountReport, Bar, QuoteBatch, Tick
from qmtkit.streams import QuoteConsumer, QuoteFanout, ReportConsumer, ReportFanout
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import (
    Bye,
    Call,
    ClientMessage,
    EncodedReportsEvent,
    ErrorFrame,
    Failure,
    FrameEncoder,
    FrameReader,
    FramingError,
    Ping,
    Pong,
    QuotesEvent,
    Result,
    error_name,
)

log = logging.getLogger("qmtkit.gateway.server")

#: Requests one client may have in flight; more wait (TCP back-pressure does the rest).
MAX_IN_FLIGHT = 256
#: Bytes of queued events one write may take; the rest waits (and quotes may merge).
WRITE_BUDGET = 1 << 20
#: What one report counts against ``WRITE_BUDGET`` (a filled order's six are ~1.8 kB).
REPORT_BYTES = 512
#: Quote records per QuotesEvent frame.
QUOTES_PER_FRAME = 2000
#: Default byte budget of replies and control frames queued for one client.
DEFAULT_CLIENT_BUDGET = 32 << 20


def _semaphore(value: int) -> anyio.Semaphore:
    try:
        return anyio.Semaphore(value, fast_acquire=True)
    except TypeError:  # anyio < 4.5
        return anyio.Semaphore(value)


Record = Tick | Bar


@dataclass(eq=False)
class SharedSub:
    """One backend subscription and the client subscriptions riding on it."""

    gid: int
    key: tuple[str, tuple[str, ...]]
    period: str
    fanout: QuoteFanout[Record] = field(default_factory=QuoteFanout)
    riders: dict[tuple[Session, int], None] = field(default_factory=dict)


@dataclass(eq=False)
class QuoteFeed:
    """One client subscription: its consumer of the shared fan-out."""

    shared: SharedSub
    consumer: QuoteConsumer[Record]
    sent_dropped: int = 0


@dataclass(eq=False)
class AccountState:
    """An account opened at the backend and the clients reading its reports."""

    account_id: str
    ready: anyio.Event = field(default_factory=anyio.Event)
    reply: Reply | None = None
    failed: BaseException | None = None
    # Reports msgpack-encoded once (by the gateway's journal) or not yet (a terminal's: the
    # frame encodes them); each write sends a burst in one frame.
    fanout: ReportFanout[msgspec.Raw | AccountReport] = field(default_factory=ReportFanout)
    sessions: dict[Session, ReportConsumer[msgspec.Raw | AccountReport]] = field(
        default_factory=dict
    )


class Host(Protocol):
    """What a session needs of the gateway that accepted it (``gateway.server.Gateway``).

    A protocol, so that the session does not import the server that imports it.
    """

    heartbeat: float
    timeout: float
    encoder: FrameEncoder
    decoder: msgspec.msgpack.Decoder[ClientMessage]
    journal: ReportJournal
    client_budget: int

    async def handle(self, session: Session, req: Request) -> Reply:
        """Answer one call of ``session``."""


class Session:
    """One authenticated client connection: its buffers, its reader, writer and heartbeat."""

    def __init__(self, gateway: Host, stream: anyio.abc.ByteStream, peer: str) -> None:
        self.gw = gateway
        self.stream = stream
        self.peer = peer
        self.frames: deque[bytes] = deque()
        self.queued = 0  # bytes in ``frames``
        self.unbudgeted = 0  # of which a reconnecting client's replay
        self.peak_queued = 0  # the most ``queued`` has been (for tests and diagnostics)
        self.killed = False
        self.quote_feeds: dict[int, QuoteFeed] = {}
        self.accounts: dict[str, AccountState] = {}
        self.last_seen = anyio.current_time()
        self.scope = anyio.CancelScope()
        self.reason = ""
        self.draining = False
        self.sending = False
        self.drained = anyio.Event()
        self._wake: anyio.Event | None = None
        self._calls = _semaphore(MAX_IN_FLIGHT)
        # Incoming frames, leader/follower style (see ``reader``): payloads read but not yet
        # acted on, the idle followers' wake-up events, and the end of the incoming side.
        self._inbox: deque[bytes] = deque()
        self._idle: list[anyio.Event] = []
        self._ended = False
        self._done = anyio.Event()
        #: The leading reader waits for bytes with nothing read left to act on: a read
        #: callback may act on what arrives (``hub.eager``).
        self.parked = False
        #: A call is answered in the read callback, which sends its reports with the answer.
        self.answering_now = False
        #: The last ``_collect`` left events behind (over ``WRITE_BUDGET``).
        self._left_behind = False

    def __repr__(self) -> str:
        return f"<client {self.peer}>"

    # ------------------------------------------------------------------ outgoing

    def send(self, msg: Any, *, budgeted: bool = True) -> None:
        """Queue one message and wake the writer.

        Past the client's byte budget the client is disconnected instead (see the module's
        doc); ``budgeted=False`` is for a reconnecting client's replay, bounded by the journal.
        """
        if self._queue(self.gw.encoder.encode(msg), budgeted):
            self.wake()

    async def answer(self, msg: Result | Failure, req: Request) -> None:
        """Queue the answer to ``req`` and send it from this task (no hop through the writer)."""
        if self._queue(self._encoded(msg, req), True):
            await self.flush()

    def answer_now(self, msg: Result | Failure, req: Request) -> None:
        """Queue the answer to ``req`` from a read callback; ``flush_now`` sends it."""
        self._queue(self._encoded(msg, req), True)

    def _encoded(self, msg: Result | Failure, req: Request) -> bytes:
        """The answer's frame; a reply that cannot be sent becomes a ``Failure`` saying why."""
        encode = self.gw.encoder.encode
        try:
            return encode(msg)
        except QmtkitError as exc:  # e.g. a reply over the frame limit
            return encode(Failure(msg.id, error_name(exc), str(exc)))
        except (msgspec.EncodeError, TypeError) as exc:
            what = type(req).__name__
            log.exception("gateway: cannot encode the reply to %s", what)
            message = f"the backend's reply to {what} cannot be sent: {exc}"
            return encode(Failure(msg.id, BackendError.__name__, message))

    def _queue(self, frame: bytes, budgeted: bool) -> bool:
        if self.killed:
            return False
        before = self.queued - self.unbudgeted
        self.frames.append(frame)
        self.queued += len(frame)
        if not budgeted:
            self.unbudgeted += len(frame)
        if self.queued > self.peak_queued:
            self.peak_queued = self.queued
        # One frame of any size may wait alone: only a backlog means the client is not reading.
        if budgeted and before and self.queued - self.unbudgeted > self.gw.client_budget:
            self.kill(
                f"client is not reading: {self.queued} bytes of replies waiting, over the "
                f"budget of {self.gw.client_budget} bytes per client; its reports stay "
                "journaled and are replayed when it reconnects",
                level=logging.WARNING,
            )
            return False
        return True

    def wake(self) -> None:
        """Tell the writer there is something to send."""
        ev = self._wake
        if ev is not None and not self.answering_now:
            self._wake = None
            ev.set()

    def kill(self, reason: str, *, level: int = logging.INFO) -> None:
        """Close this connection (only this one) and free what was queued for it."""
        if not self.reason:
            self.reason = reason
        if not self.killed:
            self.killed = True
            log.log(level, "gateway: closing %s: %s", self.peer, reason)
        self.frames.clear()
        self.queued = self.unbudgeted = 0
        self.scope.cancel()

    def _has_work(self) -> bool:
        if self.frames:
            return True
        for acct in self.accounts.values():
            consumer = acct.sessions.get(self)
            if consumer is not None and consumer.pending:
                return True
        return any(feed.consumer.pending for feed in self.quote_feeds.values())

    def _collect(self) -> bytes:
        """Take what is ready to send (up to about ``WRITE_BUDGET`` bytes of events) as the
        bytes of one write (empty: nothing); ``_left_behind`` tells if the budget kept some back.
        """
        events = bytearray()
        self._collect_events(events)
        frames = self.frames
        if not frames:
            return bytes(events)
        # Replies first, in the order queued; one alone (a large history reply) is not copied.
        out = frames[0] if len(frames) == 1 and not events else b"".join([*frames, events])
        frames.clear()
        self.queued = self.unbudgeted = 0
        return out

    def _collect_events(self, events: bytearray) -> None:
        """Add the frames of the reports and quotes ready to send (up to about
        ``WRITE_BUDGET`` bytes) to ``events``; ``_left_behind`` tells if the budget kept some back.
        """
        budget = WRITE_BUDGET
        append = self.gw.encoder.append
        for acct in self.accounts.values():
            consumer = acct.sessions.get(self)
            if consumer is None or budget <= 0:
                continue
            # Every report counts REPORT_BYTES: those a terminal hands over are encoded only
            # here, as part of the frame (one encode for the burst).
            reports = consumer.take(-(-budget // REPORT_BYTES))
            if reports:
                budget -= len(reports) * REPORT_BYTES
                append(EncodedReportsEvent(reports), events)
        for sub_id, feed in self.quote_feeds.items():
            items: list[Record] = []
            # Quotes left behind stay in the consumer, where the slow-consumer policy applies.
            while budget > 0 and (batch := feed.consumer.get_nowait()) is not None:
                items.extend(batch)
                budget -= len(batch) * 400
            if not items:
                continue
            dropped = feed.consumer.dropped - feed.sent_dropped
            feed.sent_dropped = feed.consumer.dropped
            period = feed.shared.period
            for k in range(0, len(items), QUOTES_PER_FRAME):
                part = items[k : k + QUOTES_PER_FRAME]
                append(QuotesEvent(QuoteBatch(sub_id, period, part), dropped), events)
                dropped = 0
        self._left_behind = budget <= 0

    async def flush(self) -> None:
        """Send everything ready; if another task is already sending, it will send ours too."""
        if self.sending:
            return
        self.sending = True
        try:
            while data := self._collect():
                # Reports are journaled before any client sees them (one write per burst).
                self.gw.journal.sync()
                await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.drained.set()
            self.kill(f"connection lost while writing: {exc!r}")
        finally:
            self.sending = False
            if self.draining:
                self.wake()

    def send_answer_now(self, msg: Result | Failure, req: Request, stream: FastStream) -> None:
        """``answer_now`` and ``flush_now`` in one: from a read callback, the answer and the
        events ready (the reports the call yielded) in one write, built in one buffer.

        The caller checked ``stream.writable``, that the session is alive and that no task is
        sending.
        """
        if self.frames:  # frames queued earlier go first
            self.answer_now(msg, req)
            self.flush_now(stream)
            return
        out = bytearray()
        try:
            self.gw.encoder.append(msg, out)
        except (QmtkitError, msgspec.EncodeError, TypeError):
            out = bytearray(self._encoded(msg, req))  # the Failure saying why
        self._collect_events(out)
        if not self._send_synced(stream, out):
            return
        if (self._left_behind and self._has_work()) or self.draining:
            self.wake()

    def flush_now(self, stream: FastStream) -> None:
        """Send what is ready from a read callback, in one write that cannot wait.

        The caller checked ``stream.writable``; what one write leaves behind (over
        ``WRITE_BUDGET``) goes to the writer task.
        """
        if self.killed or self.sending:
            return
        data = self._collect()
        if data and not self._send_synced(stream, data):
            return
        if (self._left_behind and self._has_work()) or self.draining:
            self.wake()

    def _send_synced(self, stream: FastStream, data: bytes | bytearray) -> bool:
        """Sync the journal, then one write that cannot wait; False if the link is gone.

        Reports are journaled before any client sees them (one write per burst).
        """
        self.gw.journal.sync()
        try:
            stream.send_nowait(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.drained.set()
            self.kill(f"connection lost while writing: {exc!r}")
            return False
        return True

    async def writer(self) -> None:
        """Send whatever becomes ready, until the connection drains at its end."""
        while True:
            if not self.sending and self._has_work():
                await self.flush()
                continue
            if self.draining and not self.sending:
                self.drained.set()
                return
            ev = self._wake = anyio.Event()
            await ev.wait()

    # ------------------------------------------------------------------ incoming

    async def reader(self, reader: FrameReader, tg: anyio.abc.TaskGroup) -> None:
        """Act on the client's frames; return once it leaves or breaks framing.

        Leader/follower: one task at a time reads. The task that reads a call answers it
        itself, after handing the reading on to an idle follower (or a new task), so a call
        starts without waiting for another task to be scheduled, and the connection is still
        read while calls run. Calls in flight may outlive this method; the caller drains them.
        """
        tg.start_soon(self._lead, reader, tg)
        await self._done.wait()

    async def _lead(self, reader: FrameReader, tg: anyio.abc.TaskGroup) -> None:
        """Lead (read) until a call comes, answer it, then follow until asked to lead again."""
        while True:
            call = await self._next_call(reader)
            if call is None:
                self._end()
                return
            if self._idle:
                self._idle.pop().set()
            else:
                tg.start_soon(self._lead, reader, tg)
            await self._call(call.id, call.req)
            if self._ended:
                return
            idle = anyio.Event()
            self._idle.append(idle)
            await idle.wait()
            if self._ended:
                return

    def _end(self) -> None:
        self._ended = True
        for idle in self._idle:
            idle.set()
        self._idle.clear()
        self._done.set()

    async def _next_call(self, reader: FrameReader) -> Call | None:
        """Read and act on frames until a call comes (None: the incoming side has ended)."""
        inbox = self._inbox
        while True:
            while inbox:
                payload = inbox.popleft()
                try:
                    msg = self.gw.decoder.decode(payload)
                except msgspec.DecodeError as exc:
                    self._refuse(payload, exc)
                    continue
                if isinstance(msg, Call):
                    await self._calls.acquire()  # back-pressure: this leader stops reading
                    return msg
                if isinstance(msg, Ping):
                    self.send(Pong(msg.nonce))
                elif isinstance(msg, Bye):
                    self.reason = (
                        f"client said goodbye ({msg.reason})" if msg.reason else "client left"
                    )
                    return None
                elif not isinstance(msg, Pong):
                    self.send(
                        ErrorFrame("already authenticated: Auth is only valid as the first frame")
                    )
            self.parked = True
            try:
                inbox.extend(await reader.receive_many())
            except anyio.EndOfStream:
                self.reason = self.reason or "client closed the connection"
                return None
            except FramingError as exc:
                self.send(ErrorFrame(f"broken framing, closing: {exc}", fatal=True))
                self.reason = str(exc)
                return None
            except (anyio.BrokenResourceError, OSError) as exc:
                self.reason = f"connection lost: {exc!r}"
                return None
            finally:
                self.parked = False
            self.last_seen = anyio.current_time()

    def _refuse(self, payload: bytes, exc: msgspec.DecodeError) -> None:
        """Answer a frame we could not decode, to the call it names when we can tell."""
        try:
            raw = msgspec.msgpack.decode(payload)
        except msgspec.DecodeError:
            raw = None
        if isinstance(raw, dict) and raw.get("type") == "call" and type(raw.get("id")) is int:
            self.send(Failure(raw["id"], InvalidArgument.__name__, f"malformed request: {exc}"))
            return
        if raw is None:
            what = f"frame of {len(payload)} bytes is not msgpack ({exc})"
        elif isinstance(raw, dict) and "type" in raw:
            what = f"unknown or malformed message {raw['type']!r}: {exc}"
        else:
            what = f"frame is not a tagged message (got {type(raw).__name__}): {exc}"
        self.send(ErrorFrame(what))

    async def _call(self, call_id: int, req: Request) -> None:
        answer: Result | Failure
        try:
            answer = Result(call_id, await self.gw.handle(self, req))
        except QmtkitError as exc:
            answer = Failure(call_id, error_name(exc), str(exc))
        except Exception as exc:
            log.exception("gateway: %s failed on %s", type(req).__name__, self.peer)
            answer = Failure(call_id, BackendError.__name__, f"gateway internal error: {exc!r}")
        finally:
            self._calls.release()
        await self.answer(answer, req)

    async def heartbeat(self) -> None:
        """Ping the client regularly and close it once it has been silent too long."""
        gw = self.gw
        nonce = 0
        while True:
            await anyio.sleep(gw.heartbeat)
            idle = anyio.current_time() - self.last_seen
            if idle > gw.timeout:
                self.kill(f"heartbeat timeout: nothing received for {idle:.2f}s")
                return
            nonce += 1
            self.send(Ping(nonce))
