"""The lean path of an attached program's order: a burst encoded with its frame, bulk reads of
the report fan-out, one buffer per write, and the caller's answer on a plain future."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

import qmtkit.backends.hub.session as session_mod
from qmtkit._resume import Backoff, Resume
from qmtkit.backends.base import Ok, OpenAccount, Reply, Request, SubmitOrder, SubscribeQuotes
from qmtkit.backends.remote import RemoteBackend
from qmtkit.errors import InvalidArgument
from qmtkit.models import AccountReport, OrderResponse
from qmtkit.streams import ReportFanout
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import (
    Call,
    EncodedReportsEvent,
    FrameEncoder,
    FrameReader,
    FramingError,
    Ping,
    ReportsEvent,
    Result,
    ServerMessage,
)
from support.gateway import (
    FakeVenue,
    NoBytes,
    RawClient,
    RecordingSink,
    order_item,
    running_gateway,
    scripted_gateway,
)


def _report(seq: int) -> AccountReport:
    return AccountReport("acct", seq, order_item("acct", seq))


async def test_frames_appended_to_one_buffer_read_back_as_those_frames() -> None:
    enc = FrameEncoder()
    buf = bytearray()
    enc.append(Ping(1), buf)
    enc.append(Result(2, Ok()), buf)
    reader = FrameReader(NoBytes())
    reader.feed(bytes(buf))
    dec = msgspec.msgpack.Decoder(ServerMessage)
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(1), Result(2, Ok())]


def test_a_frame_over_the_limit_is_refused_and_the_buffer_kept_as_it_was() -> None:
    enc = FrameEncoder(max_frame=64)
    buf = bytearray(enc.encode(Ping(1)))
    before = bytes(buf)
    with pytest.raises(InvalidArgument, match="exceeds the frame limit of 64 bytes"):
        enc.append(ReportsEvent([_report(1), _report(2)]), buf)
    assert bytes(buf) == before


def test_a_burst_not_yet_encoded_is_sent_as_the_same_bytes_as_an_encoded_one() -> None:
    reports = [_report(1), _report(2), _report(3)]
    raw = [msgspec.Raw(msgspec.msgpack.encode(r)) for r in reports]
    enc = FrameEncoder()
    mixed: list[msgspec.Raw | AccountReport] = [raw[0], reports[1], reports[2]]
    assert enc.encode(EncodedReportsEvent(mixed)) == enc.encode(ReportsEvent(reports))


def test_take_hands_over_up_to_its_limit_in_order_and_the_rest_next_time() -> None:
    fanout: ReportFanout[int] = ReportFanout()
    consumer = fanout.subscribe()
    for item in range(5):
        fanout.publish(item)
    assert consumer.take(3) == [0, 1, 2]
    assert consumer.take(3) == [3, 4]
    assert consumer.take(3) == []
    assert fanout.retained == 0  # the log is trimmed once every reader has passed


def test_deliver_skips_the_reports_already_delivered_and_keeps_the_order() -> None:
    resume: Resume[Any] = Resume(Backoff(0.1, 1.0))
    resume.resume_after("acct", 2)
    got: list[int] = []
    resume.deliver([_report(2), _report(3), _report(3), _report(4)], lambda r: got.append(r.seq))
    assert got == [3, 4]
    assert resume.last_seq("acct") == 4


class _BurstVenue(FakeVenue):
    """Places an order at once with a burst of five reports (a filled order has six)."""

    def request_now(self, req: Request) -> Reply | None:
        if type(req) is not SubmitOrder:
            return None
        for _ in range(5):
            self.emit(req.account_id, order_item(req.account_id, self.next_order))
        self.next_order += 1
        return OrderResponse(account_id=req.account_id, order_id=self.next_order - 1)


async def test_a_burst_over_one_writes_budget_follows_in_later_writes_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_mod, "WRITE_BUDGET", 2 * session_mod.REPORT_BYTES)
    async with running_gateway(_BurstVenue(), tmp_path) as gw:
        client = await RawClient.connect(gw)
        await client.recv()  # Welcome
        await client.send(Call(1, OpenAccount("acct")))
        await client.recv_until(Result)
        await client.send(Call(2, SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0)))
        answer = await client.recv_until(Result)
        bursts = [await client.recv_until(ReportsEvent) for _ in range(3)]
        await client.aclose()
    assert answer.id == 2
    assert [[r.seq for r in b.reports] for b in bursts] == [[1, 2], [3, 4], [5]]


async def test_an_answer_for_a_caller_that_gave_up_is_dropped_and_the_link_goes_on() -> None:
    seen_first = anyio.Event()

    def script(call: Call) -> list[Any]:
        if call.id == 1:  # no answer yet: its caller gives up waiting
            seen_first.set()
            return []
        return [Result(1, Ok()), Result(call.id, Ok())]  # the late answer first

    async with scripted_gateway(script) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(RecordingSink()):
            async with anyio.create_task_group() as tg:

                async def give_up() -> None:
                    with anyio.CancelScope() as scope:
                        tg.start_soon(_cancel_when, seen_first, scope)
                        await backend.request(SubscribeQuotes(1, ["600000.SH"]))

                tg.start_soon(give_up)
            with anyio.fail_after(5):
                assert await backend.request(SubscribeQuotes(2, ["600000.SH"])) == Ok()
            assert backend._pending == {}


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def test_an_answer_arriving_just_as_its_caller_is_cancelled_is_dropped() -> None:
    seen_first = anyio.Event()

    def script(call: Call) -> list[Any]:
        seen_first.set()
        return []  # the test answers call 1 itself

    async with scripted_gateway(script) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(RecordingSink()), anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def call() -> None:
                with scope:
                    await backend.request(SubscribeQuotes(1, ["600000.SH"]))

            tg.start_soon(call)
            await seen_first.wait()
            waiter = backend._pending[1]
            scope.cancel()  # the caller's wait ends, but it has not run again yet
            backend._resolve(1, Ok(), None)  # the answer comes in that moment
        assert isinstance(waiter, asyncio.Future) and waiter.cancelled()
        assert backend._pending == {}


def _frames(*msgs: Any) -> bytes:
    enc = FrameEncoder()
    return b"".join(enc.encode(m) for m in msgs)


async def test_take_from_cuts_whole_frames_from_a_read_and_keeps_a_partial_one() -> None:
    reader = FrameReader(NoBytes())
    whole = _frames(Ping(1), Ping(2), Ping(3))
    dec = msgspec.msgpack.Decoder(Ping)
    taken: list[Ping] = []
    assert reader.take_from(whole[:-2], lambda p: taken.append(dec.decode(p)) is None) is True
    assert taken == [Ping(1), Ping(2)]
    reader.feed(whole[-2:])
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(3)]


async def test_take_from_leaves_the_declined_frame_and_the_rest_to_receive() -> None:
    reader = FrameReader(NoBytes())
    dec = msgspec.msgpack.Decoder(Ping)
    declined = reader.take_from(
        _frames(Ping(1), Ping(2), Ping(3)), lambda p: dec.decode(p) != Ping(2)
    )
    assert declined is False
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(2), Ping(3)]


async def test_take_from_keeps_the_frames_after_one_whose_handler_raised() -> None:
    reader = FrameReader(NoBytes())
    dec = msgspec.msgpack.Decoder(Ping)

    def accept(payload: bytes) -> bool:
        raise RuntimeError(f"handler broke on {dec.decode(payload)}")

    with pytest.raises(RuntimeError, match="nonce=1"):
        reader.take_from(_frames(Ping(1), Ping(2)), accept)
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(2)]


async def test_take_from_joins_a_frame_begun_in_an_earlier_read() -> None:
    reader = FrameReader(NoBytes())
    whole = _frames(Ping(1), Ping(2))
    dec = msgspec.msgpack.Decoder(Ping)
    taken: list[Ping] = []
    assert reader.take_from(whole[:3], lambda p: taken.append(dec.decode(p)) is None) is True
    assert reader.take_from(whole[3:], lambda p: taken.append(dec.decode(p)) is None) is True
    assert taken == [Ping(1), Ping(2)]


async def test_take_from_leaves_an_oversized_frame_to_receive_which_refuses_it() -> None:
    reader = FrameReader(NoBytes(), max_frame=8)
    big = FrameEncoder().encode(Ping(1 << 40)) + FrameEncoder().encode(Result(1, Ok()))
    assert reader.take_from(big, lambda p: True) is False
    with pytest.raises(FramingError, match="exceeds the limit of 8 bytes"):
        await reader.receive_many()


async def test_a_read_held_by_one_link_is_not_overwritten_by_another_links_read() -> None:
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        a = await FastStream.connect("127.0.0.1", port)
        peer_a = await listener.accept()
        b = await FastStream.connect("127.0.0.1", port)
        peer_b = await listener.accept()
        a_arrived = anyio.Event()

        def leave(data: bytes) -> bool:
            a_arrived.set()
            return False  # a's bytes wait in its buffer, not taken

        a.on_data(leave)
        await peer_a.send(b"a" * 1000)
        await a_arrived.wait()
        await peer_b.send(b"b" * 1000)  # read into the same per-thread buffer
        assert await b.receive() == b"b" * 1000
        assert await a.receive() == b"a" * 1000
        for stream in (a, b, peer_a, peer_b):
            await stream.aclose()


def test_take_burst_skips_replays_and_keeps_a_burst_of_new_reports_as_it_is() -> None:
    resume: Resume[Any] = Resume(Backoff(0.1, 1.0))
    resume.resume_after("acct", 2)
    assert [r.seq for r in resume.take_burst([_report(2), _report(3), _report(4)]) or []] == [3, 4]
    burst = [_report(5), _report(6)]
    assert resume.take_burst(burst) is burst
    assert resume.last_seq("acct") == 6


def test_take_burst_leaves_a_burst_mixing_accounts_to_be_delivered_one_by_one() -> None:
    resume: Resume[Any] = Resume(Backoff(0.1, 1.0))
    other = AccountReport("other", 1, order_item("other", 1))
    assert resume.take_burst([_report(1), other]) is None
    assert resume.last_seq("acct") == 0  # nothing moved


class _BurstSink(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.bursts: list[list[int]] = []

    def on_reports(self, reports: list[AccountReport]) -> None:
        self.bursts.append([r.seq for r in reports])


async def test_a_remote_backend_hands_a_burst_to_a_sink_with_on_reports_in_one_call() -> None:
    def script(call: Call) -> list[Any]:
        return [ReportsEvent([_report(1), _report(2), _report(3)]), Result(call.id, Ok())]

    sink = _BurstSink()
    async with scripted_gateway(script) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(sink):
            await backend.request(SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0))
    assert sink.bursts == [[1, 2, 3]]
    assert sink.reports == []  # none one by one


async def test_a_call_waits_on_anyios_event_where_the_loop_is_not_asyncios() -> None:
    def script(call: Call) -> list[Any]:
        return [Result(call.id, Ok())]

    async with scripted_gateway(script) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(RecordingSink()):
            backend._loop = None  # as under trio: no asyncio future to wait on
            with anyio.fail_after(5):
                assert await backend.request(SubscribeQuotes(1, ["600000.SH"])) == Ok()
            assert backend._pending == {}


def test_publish_many_hands_each_item_in_order_and_keeps_none_with_no_one_reading() -> None:
    fanout: ReportFanout[int] = ReportFanout()
    fanout.publish_many([0, 1])
    assert fanout.retained == 0
    consumer = fanout.subscribe()
    fanout.publish_many([2, 3, 4])
    assert consumer.take(10) == [2, 3, 4]
    assert consumer.pending == 0
