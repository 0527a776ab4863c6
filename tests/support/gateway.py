"""Shared fakes for the gateway tests: a venue that persists reports, a recording sink, harnesses.

The venue keeps its report streams across ``open`` lifetimes (like the simulator's journal) and
replays ``seq > after_seq`` on ``OpenAccount``, so gateway restarts can be tested end to end.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import msgspec

from qmtkit.backends.base import (
    BackendInfo,
    ConnectionState,
    EventSink,
    Hello,
    Ok,
    OpenAccount,
    Reply,
    Request,
    SubmitOrder,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.backends.remote import RemoteBackend
from qmtkit.errors import BackendUnavailable, InvalidArgument
from qmtkit.gateway.server import Gateway, serve
from qmtkit.models import AccountReport, Order, OrderResponse, QuoteBatch, Tick
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import (
    Auth,
    Call,
    ClientMessage,
    FrameEncoder,
    FrameReader,
    ServerMessage,
    Welcome,
)

TOKEN = "test-token-0123456789-abcdefghijklmnop"


def tick(code: str, n: int) -> Tick:
    """A tick whose ``time`` and ``volume`` encode its position ``n`` in a stream."""
    return Tick(
        stock_code=code,
        time=1_700_000_000_000 + n,
        lastPrice=10.0 + n * 0.01,
        open=10.0,
        high=11.0,
        low=9.0,
        lastClose=10.0,
        amount=1000.0 * n,
        volume=n,
    )


def order_item(account_id: str, order_id: int, remark: str = "") -> Order:
    return Order(
        account_id=account_id,
        stock_code="600000.SH",
        order_id=order_id,
        order_type=23,
        order_volume=100,
        price_type=11,
        price=10.0,
        order_status=50,
        order_remark=remark,
    )


class FakeVenue:
    """A Backend with durable per-account report streams and simple quote subscriptions."""

    def __init__(self, handler: Callable[[Request], Any] | None = None) -> None:
        self.handler = handler
        self.sink: EventSink | None = None
        self.reports: dict[str, list[AccountReport]] = {}
        self.opened_accounts: set[str] = set()
        self.subs: dict[int, SubscribeQuotes] = {}
        self.requests: list[Request] = []
        self.next_order = 1
        self.lifetimes = 0

    @asynccontextmanager
    async def _life(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        self.sink = sink
        self.lifetimes += 1
        try:
            yield BackendInfo(kind="fake", url="fake://", version="1")
        finally:
            self.sink = None
            self.opened_accounts.clear()
            self.subs.clear()

    def open(self, sink: EventSink) -> Any:
        return self._life(sink)

    async def request(self, req: Request) -> Reply:
        if self.sink is None:
            raise BackendUnavailable("fake venue is closed")
        self.requests.append(req)
        if self.handler is not None:
            reply = self.handler(req)
            if hasattr(reply, "__await__"):
                reply = await reply
            if reply is not None:
                return reply  # type: ignore[no-any-return]
        if isinstance(req, Hello):
            return BackendInfo(kind="fake", url="fake://")
        if isinstance(req, SubscribeQuotes):
            self.subs[req.sub_id] = req
            return Ok()
        if isinstance(req, UnsubscribeQuotes):
            if self.subs.pop(req.sub_id, None) is None:
                raise InvalidArgument(f"no subscription {req.sub_id}")
            return Ok()
        if isinstance(req, OpenAccount):
            self.opened_accounts.add(req.account_id)
            for report in self.reports.get(req.account_id, []):
                if report.seq > req.after_seq:
                    self.sink.on_report(report)
            return Ok()
        if isinstance(req, SubmitOrder):
            order_id = self.next_order
            self.next_order += 1
            self.emit(req.account_id, order_item(req.account_id, order_id, req.order_remark))
            return OrderResponse(account_id=req.account_id, order_id=order_id, seq=req.seq)
        return Ok()

    def emit(self, account_id: str, item: Any) -> AccountReport:
        """Record the account's next report and push it if the account is open."""
        stream = self.reports.setdefault(account_id, [])
        report = AccountReport(account_id=account_id, seq=len(stream) + 1, item=item)
        stream.append(report)
        if self.sink is not None and account_id in self.opened_accounts:
            self.sink.on_report(report)
        return report

    def publish(self, items: list[Tick]) -> None:
        """Push ``items`` to every live subscription (filtered by its codes)."""
        assert self.sink is not None
        for gid, sub in list(self.subs.items()):
            mine = [t for t in items if not sub.codes or t.stock_code in sub.codes]
            if mine:
                self.sink.on_quotes(QuoteBatch(gid, sub.period, mine))


class RecordingSink:
    """An EventSink that records everything and lets a test await a condition."""

    def __init__(self) -> None:
        self.quotes: list[QuoteBatch] = []
        self.reports: list[AccountReport] = []
        self.states: list[ConnectionState] = []
        self._waits: list[tuple[Callable[[], bool], anyio.Event]] = []

    def _check(self) -> None:
        for pred, ev in list(self._waits):
            if pred():
                self._waits.remove((pred, ev))
                ev.set()

    def on_quotes(self, batch: QuoteBatch) -> None:
        self.quotes.append(batch)
        self._check()

    def on_report(self, report: AccountReport) -> None:
        self.reports.append(report)
        self._check()

    def on_connection(self, state: ConnectionState) -> None:
        self.states.append(state)
        self._check()

    def records(self, sub_id: int | None = None) -> list[Any]:
        return [r for b in self.quotes if sub_id in (None, b.sub_id) for r in b.items]

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``pred()`` holds (checked on every event)."""
        if pred():
            return
        ev = anyio.Event()
        self._waits.append((pred, ev))
        with anyio.fail_after(timeout):
            await ev.wait()


@asynccontextmanager
async def running_gateway(
    backend: Any, tmp_path: Path, port: int = 0, **kw: Any
) -> AsyncIterator[Gateway]:
    """Serve ``backend`` on 127.0.0.1 for the body of the block."""
    kw.setdefault("token", TOKEN)
    kw.setdefault("journal", tmp_path / "gateway.journal")
    async with anyio.create_task_group() as tg:
        gw: Gateway = await tg.start(partial(serve, backend, "127.0.0.1", port, **kw))
        yield gw
        tg.cancel_scope.cancel()


def remote_for(gw: Gateway, **kw: Any) -> RemoteBackend:
    kw.setdefault("token", TOKEN)
    kw.setdefault("backoff", (0.01, 0.05))
    return RemoteBackend("127.0.0.1", gw.address[1], **kw)


class RawClient:
    """A hand-driven protocol client for poking the gateway with good and bad frames."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.reader = FrameReader(stream)
        self.encoder = FrameEncoder()
        self.decoder = msgspec.msgpack.Decoder(ServerMessage)

    @classmethod
    async def connect(cls, gw: Gateway, token: str | None = TOKEN) -> RawClient:
        client = cls(await anyio.connect_tcp("127.0.0.1", gw.address[1]))
        if token is not None:
            await client.send(Auth(token))
        return client

    async def send(self, msg: Any) -> None:
        await self.stream.send(self.encoder.encode(msg))

    async def send_payload(self, payload: bytes) -> None:
        await self.stream.send(len(payload).to_bytes(4, "big") + payload)

    async def recv(self) -> Any:
        return self.decoder.decode(await self.reader.receive())

    async def recv_until(self, kind: type, limit: int = 1000) -> Any:
        for _ in range(limit):
            msg = await self.recv()
            if isinstance(msg, kind):
                return msg
        raise AssertionError(f"no {kind.__name__} in {limit} frames")

    async def aclose(self) -> None:
        await self.stream.aclose()


Script = Callable[[Call], list[Any]]


class NoBytes(anyio.abc.ByteReceiveStream):
    """A stream with nothing to hand out: the frames under test are fed in."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise anyio.EndOfStream

    async def aclose(self) -> None:
        pass


@asynccontextmanager
async def scripted_gateway(script: Script) -> AsyncIterator[tuple[int, list[Any]]]:
    """A gateway on loopback answering each call with ``script(call)``, all in one write.

    Yields its port and the list of what the client sent after logging in.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    received: list[Any] = []
    enc = FrameEncoder()
    dec = msgspec.msgpack.Decoder(ClientMessage)

    async def answer_calls() -> None:
        sock, _ = await asyncio.get_running_loop().sock_accept(listener)
        stream = await FastStream.accept(sock)
        reader = FrameReader(stream)
        await reader.receive()  # Auth
        await stream.send(enc.encode(Welcome(BackendInfo(kind="fake", url="fake://"))))
        try:
            while True:
                msg = dec.decode(await reader.receive())
                received.append(msg)
                if isinstance(msg, Call):
                    await stream.send(b"".join(enc.encode(m) for m in script(msg)))
        except anyio.EndOfStream:
            pass
        finally:
            await stream.aclose()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_calls)
            yield listener.getsockname()[1], received
            tg.cancel_scope.cancel()
    finally:
        listener.close()
