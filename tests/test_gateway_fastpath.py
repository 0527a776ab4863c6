"""The gateway's low-latency path: coalesced frames, the lean asyncio stream, call workers and
the buffered report journal keep every guarantee of the plain path."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import msgspec
import pytest

from qmtkit.backends.base import Ok, OpenAccount, Request, SubmitOrder
from qmtkit.backends.hub.journal import FRAMING, MAGIC, JournalEntry, ReportJournal
from qmtkit.models import AccountReport, OrderResponse
from qmtkit.recordscan import payloads
from qmtkit.wire import fastio
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import (
    HEADER,
    Call,
    ClientMessage,
    FrameEncoder,
    FrameReader,
    FramingError,
    Ping,
    Pong,
    ReportsEvent,
    Result,
)
from support.gateway import (
    FakeVenue,
    RawClient,
    RecordingSink,
    order_item,
    remote_for,
    running_gateway,
)


class _Chunks(anyio.abc.ByteReceiveStream):
    """A byte stream that hands out prepared chunks, then ends."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.chunks:
            raise anyio.EndOfStream
        return self.chunks.pop(0)

    async def aclose(self) -> None:
        self.chunks.clear()


def _calls(n: int) -> list[Call]:
    return [
        Call(i, SubmitOrder("acct", "600000.SH", 23, 100 * (i + 1), 11, 10.0)) for i in range(n)
    ]


# --------------------------------------------------------------------------- coalesced frames


async def test_frames_coalesced_into_one_write_decode_in_order() -> None:
    enc = FrameEncoder()
    calls = _calls(7)
    reader = FrameReader(_Chunks([b"".join(enc.encode(c) for c in calls)]))
    payloads = await reader.receive_many()
    dec = msgspec.msgpack.Decoder(ClientMessage)
    assert [dec.decode(p) for p in payloads] == calls
    with pytest.raises(anyio.EndOfStream):
        await reader.receive_many()


async def test_receive_many_reassembles_frames_split_anywhere() -> None:
    enc = FrameEncoder()
    calls = _calls(40)
    data = b"".join(enc.encode(c) for c in calls)
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(data)), 60))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    reader = FrameReader(_Chunks(chunks))
    dec = msgspec.msgpack.Decoder(ClientMessage)
    got: list[Any] = []
    while len(got) < len(calls):
        batch = await reader.receive_many()
        assert batch, "receive_many returns at least one frame"
        got.extend(dec.decode(p) for p in batch)
    assert got == calls


async def test_good_frames_before_a_broken_header_are_delivered_first() -> None:
    enc = FrameEncoder()
    good = enc.encode(Ping(1)) + enc.encode(Ping(2))
    reader = FrameReader(_Chunks([good + HEADER.pack(1 << 30) + b"junk"]), max_frame=1 << 20)
    dec = msgspec.msgpack.Decoder(ClientMessage)
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(1), Ping(2)]
    with pytest.raises(FramingError, match="exceeds the limit"):
        await reader.receive_many()


# --------------------------------------------------------------------------- FastStream


@asynccontextmanager
async def _pair() -> AsyncIterator[tuple[FastStream, FastStream]]:
    import asyncio

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    try:
        loop = asyncio.get_running_loop()
        accepting = loop.create_task(loop.sock_accept(listener))
        client = await FastStream.connect("127.0.0.1", listener.getsockname()[1])
        sock, _ = await accepting
        server = await FastStream.accept(sock)
        try:
            yield client, server
        finally:
            await client.aclose()
            await server.aclose()
    finally:
        listener.close()


async def test_fast_stream_sets_nodelay_and_names_its_peer() -> None:
    async with _pair() as (client, server):
        raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        peer = server.extra(anyio.abc.SocketAttribute.remote_address)
        assert peer == client.extra(anyio.abc.SocketAttribute.local_address)


async def test_fast_stream_carries_a_large_transfer_in_order_under_read_backpressure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastio, "READ_LIMIT", 4096)
    data = random.Random(3).randbytes(3 << 20)
    received = bytearray()
    async with _pair() as (client, server):

        async def produce() -> None:
            for k in range(0, len(data), 100_000):
                await client.send(data[k : k + 100_000])
            await client.send_eof()

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            while True:
                try:
                    chunk = await server.receive(50_000)
                except anyio.EndOfStream:
                    break
                assert len(chunk) <= 50_000
                received += chunk
                await anyio.sleep(0)  # a slow reader: the buffer limit must hold the peer back
                # Reading pauses at the limit; one more read of the transport's size can land.
                assert server._p.buffered <= fastio.READ_LIMIT + (256 << 10)
    assert bytes(received) == data


async def test_fast_stream_closed_locally_refuses_io_and_the_peer_sees_the_end() -> None:
    async with _pair() as (client, server):
        await client.send(b"last words")
        await client.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await client.send(b"more")
        with pytest.raises(anyio.ClosedResourceError):
            await client.receive()
        assert await server.receive() == b"last words"
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await server.receive()


async def test_fast_stream_refuses_a_second_concurrent_reader() -> None:
    async with _pair() as (_, server), anyio.create_task_group() as tg:
        tg.start_soon(server.receive)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await server.receive()
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- the gateway


async def test_a_slow_call_does_not_hold_back_the_calls_behind_it(tmp_path: Path) -> None:
    release = anyio.Event()

    async def handler(req: Request) -> Any:
        if isinstance(req, SubmitOrder) and req.order_remark == "slow":
            await release.wait()
            return OrderResponse(account_id=req.account_id, order_id=-1, seq=req.seq)
        return None

    venue = FakeVenue(handler)
    async with running_gateway(venue, tmp_path) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            await remote.request(OpenAccount("acct"))
            slow: list[Any] = []

            async def slow_call() -> None:
                slow.append(
                    await remote.request(
                        SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0, "", "slow")
                    )
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                answers: dict[int, Any] = {}

                async def fast(i: int) -> None:
                    answers[i] = await remote.request(
                        SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0, seq=i)
                    )

                async with anyio.create_task_group() as fast_tg:
                    for i in range(1, 31):
                        fast_tg.start_soon(fast, i)
                assert not slow, "the slow call is still waiting for its release"
                assert sorted(answers) == list(range(1, 31))
                assert all(a.seq == i for i, a in answers.items())
                release.set()
            assert slow[0].order_id == -1


async def test_every_report_is_journaled_before_a_client_receives_it(tmp_path: Path) -> None:
    journal_path = tmp_path / "gateway.journal"
    dec = msgspec.msgpack.Decoder(JournalEntry)

    def journaled() -> set[int]:
        """The seqs in the file's complete frames (what a crash now would leave)."""
        data = memoryview(journal_path.read_bytes())[len(MAGIC) :]
        return {dec.decode(p).report.seq for p in payloads(data, FRAMING) if p is not None}

    class CheckingSink(RecordingSink):
        def __init__(self) -> None:
            super().__init__()
            self.missing: list[int] = []

        def on_report(self, report: AccountReport) -> None:
            if report.seq not in journaled():
                self.missing.append(report.seq)
            super().on_report(report)

    venue = FakeVenue()
    async with running_gateway(venue, tmp_path, journal=journal_path) as gw:
        sink = CheckingSink()
        remote = remote_for(gw)
        async with remote.open(sink):
            await remote.request(OpenAccount("acct"))
            for k in range(20):
                await remote.request(SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0, seq=k))
            await sink.until(lambda: len(sink.reports) == 20)
    assert [r.seq for r in sink.reports] == list(range(1, 21))
    assert sink.missing == []


def test_journal_keeps_unsynced_records_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with ReportJournal(path) as journal:
        for i in range(1, 6):
            journal.record("acct", order_item("acct", i), bseq=i)
    with ReportJournal(path) as again:
        assert [r.seq for r in again.since("acct", 0)] == [1, 2, 3, 4, 5]
        assert again.last_bseq("acct") == 5


async def test_gateway_serves_plain_tcp_clients_on_asyncio_over_fast_streams(
    tmp_path: Path,
) -> None:
    seen: list[type] = []
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        real = gw.handle_connection

        async def spy(stream: anyio.abc.ByteStream) -> None:
            seen.append(type(stream))
            await real(stream)

        gw.handle_connection = spy  # type: ignore[method-assign]
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            assert await remote.request(OpenAccount("acct")) == Ok()
    assert seen == [FastStream]


async def test_calls_sent_in_one_write_start_in_the_order_they_were_sent(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        client = await RawClient.connect(gw)
        await client.recv()  # Welcome
        encoder = FrameEncoder()
        await client.stream.send(b"".join(encoder.encode(call) for call in _calls(40)))
        answered = [await client.recv_until(Result) for _ in range(40)]
        await client.aclose()
    volumes = [r.order_volume for r in venue.requests if isinstance(r, SubmitOrder)]
    assert volumes == [100 * (i + 1) for i in range(40)]
    assert sorted(a.id for a in answered) == list(range(40))


async def test_frames_behind_a_call_in_the_same_write_are_still_acted_on(tmp_path: Path) -> None:
    release = anyio.Event()

    async def handler(req: Request) -> Any:
        if isinstance(req, SubmitOrder):
            await release.wait()  # the call stays in flight while the ping behind it is read
            return OrderResponse(account_id=req.account_id, order_id=1, seq=req.seq)
        return None

    async with running_gateway(FakeVenue(handler), tmp_path) as gw:
        client = await RawClient.connect(gw)
        await client.recv()  # Welcome
        encoder = FrameEncoder()
        await client.stream.send(encoder.encode(_calls(1)[0]) + encoder.encode(Ping(7)))
        pong = await client.recv_until(Pong)
        release.set()
        result = await client.recv_until(Result)
        await client.aclose()
    assert pong.nonce == 7
    assert result.id == 0


def test_a_report_journaled_encoded_reads_back_as_the_report(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with ReportJournal(path) as journal:
        report, raw = journal.record_encoded("acct", order_item("acct", 1), bseq=9)
        assert msgspec.msgpack.decode(raw, type=AccountReport) == report
        assert (report.seq, report.item) == (1, order_item("acct", 1))
    with ReportJournal(path) as again:
        assert again.since("acct", 0) == [report]
        assert again.last_bseq("acct") == 9


async def test_a_burst_of_reports_travels_as_one_frame_in_seq_order(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        client = await RawClient.connect(gw)
        await client.recv()  # Welcome
        await client.send(Call(1, OpenAccount("acct")))
        await client.recv_until(Result)
        for i in range(1, 7):  # one venue event: six reports with no await in between
            venue.emit("acct", order_item("acct", i))
        burst = await client.recv_until(ReportsEvent)
        await client.aclose()
    assert [r.seq for r in burst.reports] == [1, 2, 3, 4, 5, 6]
    assert [r.item for r in burst.reports] == [order_item("acct", i) for i in range(1, 7)]
