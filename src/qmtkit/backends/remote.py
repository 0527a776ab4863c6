"""``qmtkit://HOST:PORT``: a Backend that talks to a qmtkit gateway over TCP (optionally TLS).

The link heals itself: heartbeats detect a dead peer, the backend reconnects with exponential
backoff and jitter, resubscribes its quote subscriptions and reopens its accounts with
``after_seq`` set to the last report it delivered, so no report is lost or delivered twice
across a reconnect. The sink hears ``ConnectionState(connected=False)`` when the link drops and
``ConnectionState(connected=True)`` once it is restored.

Requests in flight when the link drops fail with ``BackendUnavailable`` and are not re-sent:
an order may already have reached the venue, and sending it again could place it twice. The
account's report stream (replayed on reconnect) tells what became of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec

from qmtkit._resume import Backoff, Resume
from qmtkit._tasks import lifetime_tasks
from qmtkit.backends.base import (
    BackendInfo,
    CloseAccount,
    ConnectionState,
    EventSink,
    OpenAccount,
    Reply,
    Request,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.checks import is_finite, is_int, positive_number
from qmtkit.errors import (
    BackendError,
    BackendUnavailable,
    ClosedError,
    InvalidArgument,
    QmtkitError,
)
from qmtkit.models import AccountReport
from qmtkit.wire.fastio import FastStream, asyncio_running
from qmtkit.wire.protocol import (
    DEFAULT_PORT,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Auth,
    Bye,
    Call,
    ConnectionEvent,
    ErrorFrame,
    Failure,
    FrameEncoder,
    FrameReader,
    FramingError,
    Ping,
    Pong,
    QuotesEvent,
    ReportEvent,
    ReportsEvent,
    Result,
    ServerMessage,
    Welcome,
    error_from_wire,
)
from qmtkit.wire.security import client_tls_context

log = logging.getLogger(__name__)

_LINK_ERRORS = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
    ssl.SSLError,
    FramingError,
)


class AuthRefused(BackendError):
    """The gateway refused the token or the protocol version; retrying will not help."""


class _Waiter:
    """A call's answer (a reply, or the error to raise), for a caller on any event loop.

    On asyncio a plain future of the loop stands in for it (``RemoteBackend._call``): one
    object per call instead of anyio's event over asyncio's.
    """

    __slots__ = ("answer", "event")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.answer: Reply | BaseException | None = None

    def settle(self, answer: Reply | BaseException) -> None:
        if self.answer is None:
            self.answer = answer
            self.event.set()


_Pending = _Waiter | asyncio.Future[Reply | BaseException]


def _settle(waiter: _Pending, answer: Reply | BaseException) -> None:
    """Hand a call its answer (once: the first answer stands; a cancelled caller gets none)."""
    if isinstance(waiter, _Waiter):
        waiter.settle(answer)
    elif not waiter.done():
        waiter.set_result(answer)  # an error travels as the result: nothing left unretrieved


class _Link:
    """One live TCP connection to the gateway.

    ``answer``: for a link that carries no bytes (a terminal's host reaching its own
    simulator), what answers its requests in this process instead of the wire.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        reader: FrameReader,
        info: BackendInfo,
        answer: Callable[[Request], Awaitable[Reply]] | None = None,
    ):
        self.stream = stream
        self.reader = reader
        self.info = info
        self.answer = answer
        try:
            self.lock = anyio.Lock(fast_acquire=True)
        except TypeError:  # anyio < 4.5
            self.lock = anyio.Lock()
        self.last_seen = anyio.current_time()
        self.reason = ""


class RemoteBackend:
    """A Backend served by a remote ``qmtkit serve`` gateway.

    ``backoff`` is ``(first, maximum)`` seconds between reconnect attempts (doubling, with full
    jitter drawn from ``rng``); ``heartbeat``/``timeout`` are the ping interval and the silence
    after which the link is declared dead.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        heartbeat: float = 5.0,
        timeout: float | None = None,
        connect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        rng: random.Random | None = None,
        max_frame: int = MAX_FRAME,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise InvalidArgument(f"gateway host must be a non-empty string, got {host!r}")
        if not is_int(port) or not 0 < port <= 65535:
            raise InvalidArgument(f"gateway port must be an int in 1..65535, got {port!r}")
        if token is not None and not isinstance(token, str):
            raise InvalidArgument(f"token must be a string, got {type(token).__name__}")
        timeout = 3 * heartbeat if timeout is None else timeout
        for name, value in (
            ("heartbeat", heartbeat),
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
        ):
            positive_number(name, value, " of seconds")
        if timeout <= heartbeat:
            raise InvalidArgument(
                f"timeout ({timeout!r}s) must exceed the heartbeat interval ({heartbeat!r}s)"
            )
        if (
            not isinstance(backoff, tuple)
            or len(backoff) != 2
            or not all(is_finite(b) and b > 0 for b in backoff)
            or backoff[0] > backoff[1]
        ):
            raise InvalidArgument(
                f"backoff must be (first, maximum) positive seconds with first <= maximum, "
                f"got {backoff!r}"
            )
        self.host = host
        self.port = port
        self.token = token if token is not None else os.environ.get("QMTKIT_TOKEN", "")
        self.tls = tls
        self.server_hostname = server_hostname
        self.heartbeat = float(heartbeat)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.backoff = (float(backoff[0]), float(backoff[1]))
        self.rng = rng if rng is not None else random.Random()
        self._resume: Resume[SubscribeQuotes] = Resume(
            Backoff(self.backoff[0], self.backoff[1], self.rng)
        )
        self.url = f"qmtkit://{host}:{port}"
        #: How messages name the gateway.
        self.where = f"{host}:{port}"
        #: Quote records the gateway merged away for this (slow) client, per subscription id.
        self.quotes_dropped: dict[int, int] = {}
        #: How many times the link was re-established.
        self.reconnects = 0
        self._encoder = FrameEncoder(max_frame)
        self._decoder = msgspec.msgpack.Decoder(ServerMessage)
        self._max_frame = max_frame
        self._sink: EventSink | None = None
        self._link: _Link | None = None
        self._connected = False
        self._closed = False
        self._pending: dict[int, _Pending] = {}
        # The event loop when it is asyncio's (calls then wait on its futures), else None.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_id = 1

    @classmethod
    def from_url(cls, url: str) -> RemoteBackend:
        """Build from ``qmtkit://HOST:PORT?token=...``.

        Query options: ``token`` (else ``$QMTKIT_TOKEN``), ``tls=1``, ``cafile=PATH``,
        ``verify=0`` (encrypt without checking the certificate), ``server_hostname``,
        ``heartbeat`` and ``timeout`` (seconds).
        """
        if not isinstance(url, str):
            raise InvalidArgument(f"gateway URL must be a string, got {url!r}")
        parts = urlsplit(url)
        if parts.scheme != "qmtkit" or not parts.hostname:
            raise InvalidArgument(f"bad gateway URL {url!r}: expected qmtkit://HOST:PORT?token=...")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise InvalidArgument(f"bad port in gateway URL {url!r}: expected 1..65535") from None
        q = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        known = {"token", "tls", "cafile", "verify", "server_hostname", "heartbeat", "timeout"}
        unknown = sorted(set(q) - known)
        if unknown:
            raise InvalidArgument(
                f"unknown option(s) {unknown} in gateway URL {url!r}; known: {sorted(known)}"
            )
        token = unquote(q["token"]) if "token" in q else None
        if parts.password and token is None:
            token = unquote(parts.password)
        tls: ssl.SSLContext | None = None
        if _truthy(q.get("tls", "0"), "tls", url) or "cafile" in q:
            tls = client_tls_context(
                q.get("cafile"), verify=_truthy(q.get("verify", "1"), "verify", url)
            )
        kwargs: dict[str, Any] = {}
        for name in ("heartbeat", "timeout"):
            if name in q:
                try:
                    kwargs[name] = float(q[name])
                except ValueError:
                    raise InvalidArgument(
                        f"{name}={q[name]!r} in gateway URL {url!r} is not a number of seconds"
                    ) from None
        return cls(
            parts.hostname,
            port,
            token=token,
            tls=tls,
            server_hostname=q.get("server_hostname"),
            **kwargs,
        )

    # ------------------------------------------------------------------ Backend protocol

    @asynccontextmanager
    async def open(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        """Connect (failing with ``BackendUnavailable``/``AuthRefused`` if the first try fails)."""
        if self._closed:
            raise ClosedError(f"{self.url} was closed; create a new RemoteBackend")
        if self._sink is not None:
            raise InvalidArgument(f"{self.url} is already open; a backend has one lifetime")
        link = await self._connect()  # a failure here leaves the backend unopened
        self._loop = asyncio.get_running_loop() if asyncio_running() else None
        self._sink = sink
        self._link = link
        self._connected = True
        try:
            async with lifetime_tasks() as tg:
                tg.start_soon(self._supervise, link)
                yield self._describe(link.info)
        finally:
            self._closed = True
            self._connected = False
            self._fail_pending(BackendUnavailable(f"{self.url} was closed"))
            current = self._link
            self._link = None
            if current is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                    await self._send_quietly(current, Bye("client closing"))
                    await current.stream.aclose()

    async def request(self, req: Request) -> Reply:
        """Send one request to the gateway and wait for its answer."""
        if self._closed or self._sink is None:
            raise ClosedError(
                f"{self.url} is not open; use it inside `async with backend.open(sink)`"
            )
        link = self._link
        if link is None or not self._connected:
            # A checkpoint first: a caller retrying in a loop must let the reconnect run.
            await anyio.lowlevel.checkpoint()
            raise BackendUnavailable(
                f"not connected to the gateway at {self.where} (reconnecting); "
                "retry after ConnectionState(connected=True)"
            )
        if isinstance(req, OpenAccount):
            # The caller says where its stream stands; later resumes continue from there.
            self._resume.resume_after(req.account_id, req.after_seq)
        reply = await self._call(link, req)
        if isinstance(req, _REMEMBERED):
            self._remember(req)
        return reply

    def send_now(self, req: Request) -> asyncio.Future[Reply | BaseException] | None:
        """Send ``req`` at once and return the future of its answer; None: nothing was sent.

        For an order or a query (not a request whose effect a reconnect restores) from a
        caller on asyncio while the link is up and takes a write without waiting: the caller
        awaits the future itself (an error arrives as its result, to raise), without the
        coroutines of ``request``. None: ask ``request``, which waits, or raises why not.
        """
        loop = self._loop
        link = self._link
        if (
            loop is None
            or link is None
            or not self._connected
            or self._closed
            or link.answer is not None
            or isinstance(req, _REMEMBERED)
        ):
            return None
        stream = link.stream
        if type(stream) is not FastStream or not stream.writable:
            return None
        call_id = self._next_id
        self._next_id += 1
        frame = self._encoder.encode(Call(call_id, req))
        future: asyncio.Future[Reply | BaseException] = loop.create_future()
        try:
            stream.send_nowait(frame)
        except _LINK_ERRORS as exc:
            raise BackendUnavailable(
                f"could not send {type(req).__name__} to {self.where}: {exc!r}"
            ) from None
        # A caller cancelled while it waits leaves its entry until the answer or the link's end.
        self._pending[call_id] = future
        return future

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect ``attempt`` (0-based): doubling, capped, jittered.

        The jitter (a uniform draw from the upper half of the window) keeps many clients of a
        restarted gateway from reconnecting in lockstep.
        """
        return self._resume.backoff.delay(attempt)

    # ------------------------------------------------------------------ internals

    def _remember(self, req: Request) -> None:
        if isinstance(req, SubscribeQuotes):
            self._resume.subscribed(req.sub_id, req)
        elif isinstance(req, UnsubscribeQuotes):
            self._resume.unsubscribed(req.sub_id)
            self.quotes_dropped.pop(req.sub_id, None)
        elif isinstance(req, OpenAccount):
            self._resume.opened(req.account_id, req.account_type)
        elif isinstance(req, CloseAccount):
            self._resume.closed(req.account_id)

    async def _call(self, link: _Link, req: Request) -> Reply:
        if link.answer is not None:
            return await link.answer(req)
        call_id = self._next_id
        self._next_id += 1
        loop = self._loop
        waiter: _Pending = _Waiter() if loop is None else loop.create_future()
        self._pending[call_id] = waiter
        try:
            try:
                frame = self._encoder.encode(Call(call_id, req))
                stream = link.stream
                if type(stream) is FastStream and stream.writable:
                    stream.send_nowait(frame)  # the usual case: no coroutine to step through
                else:
                    await self._send_frame(link, frame)
            except _LINK_ERRORS as exc:
                raise BackendUnavailable(
                    f"could not send {type(req).__name__} to {self.where}: {exc!r}"
                ) from None
            if isinstance(waiter, _Waiter):
                await waiter.event.wait()
                answer = waiter.answer
                assert answer is not None
            else:
                answer = await waiter
        finally:
            self._pending.pop(call_id, None)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def _send(self, link: _Link, msg: Any) -> None:
        await self._send_frame(link, self._encoder.encode(msg))

    async def _send_frame(self, link: _Link, frame: bytes) -> None:
        stream = link.stream
        if type(stream) is FastStream:  # writes a whole frame before it can wait: no lock
            await stream.send(frame)
            return
        async with link.lock:
            await stream.send(frame)

    async def _send_quietly(self, link: _Link, msg: Any) -> None:
        with suppress(*_LINK_ERRORS):
            await self._send(link, msg)

    def _describe(self, info: BackendInfo) -> BackendInfo:
        """What ``open`` yields, given what the gateway's Welcome said about its backend."""
        return BackendInfo(
            kind="remote", url=self.url, version=info.version, venue_id=info.venue_id
        )

    async def _open_stream(self) -> anyio.abc.ByteStream:
        """A new byte stream to the gateway (TCP, or TLS when configured)."""
        if self.tls is not None:
            return await anyio.connect_tcp(
                self.host,
                self.port,
                ssl_context=self.tls,
                tls_hostname=self.server_hostname,
                tls_standard_compatible=False,
            )
        if asyncio_running():
            return await FastStream.connect(self.host, self.port)
        return await anyio.connect_tcp(self.host, self.port)

    async def _connect(self) -> _Link:
        """Open a connection and authenticate; raise BackendUnavailable or AuthRefused."""
        where = self.where
        stream: anyio.abc.ByteStream | None = None
        try:
            with anyio.fail_after(self.connect_timeout):
                stream = await self._open_stream()
                reader = FrameReader(stream, self._max_frame)
                await stream.send(
                    self._encoder.encode(Auth(self.token, PROTOCOL_VERSION, "qmtkit"))
                )
                msg = self._decoder.decode(await reader.receive())
        except TimeoutError:
            await _aclose(stream)
            raise BackendUnavailable(
                f"gateway at {where} did not answer within {self.connect_timeout}s"
            ) from None
        except (*_LINK_ERRORS, msgspec.DecodeError) as exc:
            await _aclose(stream)
            raise BackendUnavailable(self._connect_failure(where, exc)) from None
        if isinstance(msg, ErrorFrame):
            await _aclose(stream)
            raise AuthRefused(f"gateway at {where} refused the connection: {msg.message}")
        if not isinstance(msg, Welcome):
            await _aclose(stream)
            raise BackendUnavailable(
                f"gateway at {where} answered {type(msg).__name__} instead of Welcome"
            )
        return _Link(stream, reader, msg.info)

    def _connect_failure(self, where: str, exc: BaseException) -> str:
        """Why a connection attempt failed, with the likely fix when it is a TLS mismatch."""
        if stream_ended(exc) and self.tls is None:
            return (
                f"the gateway at {where} closed the connection before answering; if it serves "
                "TLS (qmtkit serve --tls-cert), connect with tls=1 (qmtkit://HOST:PORT?tls=1)"
            )
        if isinstance(exc, ssl.SSLError) and self.tls is not None:
            return (
                f"TLS with the gateway at {where} failed ({exc.reason or exc}); if it serves "
                "plain TCP, connect without tls=1"
            )
        return f"cannot connect to the gateway at {where}: {exc!r}"

    async def _supervise(self, link: _Link) -> None:
        """Run links one after another for the backend's whole lifetime."""
        sink = self._sink
        assert sink is not None
        restore = False
        while True:
            await self._run_link(link, restore)
            self._connected = False
            self._link = None
            reason = link.reason or "connection lost"
            self._fail_pending(
                BackendUnavailable(
                    f"the link to the gateway at {self.where} dropped ({reason}); "
                    "the request may or may not have reached the venue and is not re-sent"
                )
            )
            await _aclose(link.stream)
            sink.on_connection(ConnectionState(connected=False, reason=reason))
            link = await self._reconnect()
            restore = True

    async def _reconnect(self) -> _Link:
        while True:
            await anyio.sleep(self._resume.next_delay())
            try:
                link = await self._connect()
            except BackendError:
                continue
            self._resume.link_restored()
            return link

    async def _run_link(self, link: _Link, restore: bool) -> None:
        self._link = link
        async with anyio.create_task_group() as tg:
            link_scope = tg.cancel_scope

            def dead(reason: str) -> None:
                if not link.reason:
                    link.reason = reason
                link_scope.cancel()

            tg.start_soon(self._read_loop, link, dead)
            tg.start_soon(self._heartbeat_loop, link, dead)
            if restore:
                try:
                    await self._restore(link)
                except BackendUnavailable as exc:
                    dead(f"restore failed: {exc}")
                    return
                self.reconnects += 1
            self._connected = True
            if restore and self._sink is not None:
                self._sink.on_connection(ConnectionState(connected=True, reason="reconnected"))

    async def _restore(self, link: _Link) -> None:
        """Reopen accounts (after their last delivered seq) and resubscribe quotes."""

        async def ask(req: OpenAccount | SubscribeQuotes) -> bool:
            try:
                await self._call(link, req)
            except BackendUnavailable:
                raise
            except QmtkitError as exc:
                log.warning("the gateway refused to restore %r: %s", req, exc)
                return False
            return True

        await self._resume.restore(ask, ask)

    async def _read_loop(self, link: _Link, dead: Callable[[str], None]) -> None:
        stream = link.stream
        inline = _Inline(self, link, stream) if type(stream) is FastStream else None
        try:
            while True:
                try:
                    if inline is not None:
                        inline.parked = True
                    payloads = await link.reader.receive_many()
                except anyio.EndOfStream:
                    dead("the gateway closed the connection")
                    return
                except _LINK_ERRORS as exc:
                    dead(f"connection error: {exc!r}")
                    return
                finally:
                    if inline is not None:
                        inline.parked = False
                        inline.raise_failure()
                link.last_seen = anyio.current_time()
                for payload in payloads:
                    if not await self._dispatch(link, payload, dead):
                        return
        finally:
            if inline is not None:
                inline.stream.on_data(None)

    def _act_at_once(self, payload: bytes) -> bool:
        """Act on a frame that needs no await (answers, events); False leaves it unread."""
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError:
            return False
        if type(msg) is Result:  # a call's answer, the most common frame: no further tests
            waiter = self._pending.pop(msg.id, None)
            if waiter is not None:
                _settle(waiter, msg.reply)
            return True
        kind = type(msg)
        if kind is Ping or kind is ErrorFrame or kind is Bye:
            return False
        self._act(msg)
        return True

    def _act(self, msg: ServerMessage) -> None:
        """Deliver an event or resolve the call a frame answers (nothing for other frames)."""
        sink = self._sink
        assert sink is not None
        if type(msg) is Result:  # an order's two frames first
            self._resolve(msg.id, msg.reply, None)
        elif type(msg) is ReportsEvent:
            many = getattr(sink, "on_reports", None)  # the sink's as it is now
            fresh = None if many is None else self._resume.take_burst(msg.reports)
            if fresh is None:
                self._resume.deliver(msg.reports, sink.on_report)
            elif fresh:
                assert many is not None
                many(fresh)  # a sink with on_reports takes the burst in one call
        elif isinstance(msg, ReportEvent):
            self._deliver(sink, msg.report)
        elif isinstance(msg, QuotesEvent):
            if msg.dropped:
                sub_id = msg.batch.sub_id
                self.quotes_dropped[sub_id] = self.quotes_dropped.get(sub_id, 0) + msg.dropped
            sink.on_quotes(msg.batch)
        elif isinstance(msg, Failure):
            self._resolve(msg.id, None, error_from_wire(msg.error, msg.message))
        elif isinstance(msg, ConnectionEvent):
            sink.on_connection(msg.state)

    async def _dispatch(self, link: _Link, payload: bytes, dead: Callable[[str], None]) -> bool:
        """Act on one frame from the gateway; False once the link is finished."""
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            if self._undecodable(payload, exc):
                return True
            dead(f"undecodable frame from the gateway: {exc}")
            return False
        if isinstance(msg, Ping):
            await self._send_quietly(link, Pong(msg.nonce))
        elif isinstance(msg, ErrorFrame):
            if msg.fatal:
                dead(f"the gateway closed the connection: {msg.message}")
                return False
        elif isinstance(msg, Bye):
            dead(f"the gateway said goodbye ({msg.reason})")
            return False
        else:
            self._act(msg)
        return True

    def _undecodable(self, payload: bytes, exc: msgspec.DecodeError) -> bool:
        """Fail just the call a frame we cannot decode answers; False if it answers none."""
        try:
            raw = msgspec.msgpack.decode(payload)
        except msgspec.DecodeError:
            return False
        if not isinstance(raw, dict) or raw.get("type") not in ("result", "failure"):
            return False
        call_id = raw.get("id")
        if type(call_id) is not int:
            return False
        error = BackendError(
            f"the gateway's answer could not be decoded ({exc}); are both sides on the same "
            "qmtkit version?"
        )
        self._resolve(call_id, None, error)
        return True

    def _deliver(self, sink: EventSink, report: AccountReport) -> None:
        if self._resume.take(report):
            sink.on_report(report)

    def _resolve(self, call_id: int, reply: Reply | None, error: BaseException | None) -> None:
        waiter = self._pending.pop(call_id, None)
        if waiter is None:
            return
        if error is None:
            assert reply is not None
            _settle(waiter, reply)
        else:
            _settle(waiter, error)

    def _fail_pending(self, error: BackendUnavailable) -> None:
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            _settle(waiter, error)

    async def _heartbeat_loop(self, link: _Link, dead: Callable[[str], None]) -> None:
        nonce = 0
        while True:
            await anyio.sleep(self.heartbeat)
            idle = anyio.current_time() - link.last_seen
            if idle > self.timeout:
                dead(f"heartbeat timeout: nothing from the gateway for {idle:.2f}s")
                return
            nonce += 1
            try:
                await self._send(link, Ping(nonce))
            except _LINK_ERRORS as exc:
                dead(f"connection error: {exc!r}")
                return


#: The requests whose effect a reconnect restores (``_remember``).
_REMEMBERED = (SubscribeQuotes, UnsubscribeQuotes, OpenAccount, CloseAccount)


class _Inline:
    """Acts on a link's frames in the loop's read callback while its reader task is parked.

    An answer resolved there wakes its caller at once, a turn of the loop sooner than through
    the reader task. Only while that task waits for bytes (``parked``) and holds no frames of
    its own, so the order of frames is kept; the first frame that needs an await (a ping, a
    goodbye, an error, an undecodable one) and every frame after it are left to the task.
    """

    __slots__ = ("backend", "clock", "failure", "link", "parked", "stream")

    def __init__(self, backend: RemoteBackend, link: _Link, stream: FastStream) -> None:
        self.backend = backend
        self.link = link
        self.stream = stream
        # The read callback runs outside any task, where anyio cannot tell which event loop
        # it is on when sniffio is installed; the loop's own clock is what anyio.current_time()
        # reads on asyncio, and FastStream only exists there.
        self.clock = asyncio.get_running_loop().time
        self.parked = False
        self.failure: Exception | None = None
        stream.on_data(self.on_data)

    def on_data(self, data: bytes) -> bool:
        """Act on the frames of ``data``; False: the task is not parked and reads them."""
        if not self.parked:
            return False
        link = self.link
        link.last_seen = self.clock()
        try:
            done = link.reader.take_from(data, self.backend._act_at_once)
        except Exception as exc:  # a sink that raised: the reader task raises it
            self.failure = exc
            done = False
        if not done:
            self.parked = False  # the task acts on the rest, in order
            self.stream.nudge()
        return True

    def raise_failure(self) -> None:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure


def stream_ended(exc: BaseException) -> bool:
    """True for the errors meaning the peer closed the stream."""
    return isinstance(exc, (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError))


def _truthy(value: str, name: str, url: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise InvalidArgument(f"{name}={value!r} in gateway URL {url!r}: expected 1/0, true/false")


async def _aclose(stream: anyio.abc.ByteStream | None) -> None:
    if stream is None:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(1.0), suppress(*_LINK_ERRORS):
        await stream.aclose()


__all__ = ["AuthRefused", "RemoteBackend"]
