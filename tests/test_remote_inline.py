"""A remote backend acts on answers and events in the read callback (one loop turn fewer), and
keeps the order of frames when one of them needs its reader task (a ping, a goodbye)."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec

from qmtkit.backends.base import Ok, SubmitOrder
from qmtkit.backends.remote import RemoteBackend
from qmtkit.models import AccountReport
from qmtkit.wire.protocol import (
    Call,
    FrameEncoder,
    FrameReader,
    Ping,
    ReportEvent,
    Result,
)
from support.gateway import NoBytes, RecordingSink, Script, order_item, scripted_gateway


def _report(seq: int) -> AccountReport:
    return AccountReport("acct", seq, order_item("acct", seq))


def _order() -> SubmitOrder:
    return SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0)


async def _three_orders(script: Script) -> list[Any]:
    """Send three orders; after each, every report sent with its answer has been delivered."""
    sink = RecordingSink()
    async with scripted_gateway(script) as (port, received):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(sink):
            for k in range(1, 4):
                assert await backend.request(_order()) == Ok()
                assert [r.seq for r in sink.reports] == list(range(1, 2 * k + 1))
    return received


async def test_an_answer_and_the_reports_around_it_arrive_in_order() -> None:
    def script(call: Call) -> list[Any]:
        n = 2 * call.id
        return [ReportEvent(_report(n - 1)), Result(call.id, Ok()), ReportEvent(_report(n))]

    await _three_orders(script)


async def test_a_ping_among_the_frames_is_answered_and_the_order_is_kept() -> None:
    def script(call: Call) -> list[Any]:
        n = 2 * call.id
        return [
            ReportEvent(_report(n - 1)),
            Ping(call.id),
            Result(call.id, Ok()),
            ReportEvent(_report(n)),
        ]

    received = await _three_orders(script)
    # Each pong went out before the answer it preceded was acted on, so before the next call.
    seen = [(type(m).__name__, getattr(m, "id", getattr(m, "nonce", 0))) for m in received]
    assert seen[:6] == [
        ("Call", 1),
        ("Pong", 1),
        ("Call", 2),
        ("Pong", 2),
        ("Call", 3),
        ("Pong", 3),
    ]


def _frames(*msgs: Any) -> bytes:
    enc = FrameEncoder()
    return b"".join(enc.encode(m) for m in msgs)


async def test_take_while_leaves_the_declined_frame_and_the_rest_to_receive() -> None:
    reader = FrameReader(NoBytes())
    reader.feed(_frames(Ping(1), Ping(2), Ping(3)))
    dec = msgspec.msgpack.Decoder(Ping)
    taken: list[Ping] = []

    def accept(payload: bytes) -> bool:
        msg = dec.decode(payload)
        if msg.nonce == 2:
            return False
        taken.append(msg)
        return True

    assert reader.take_while(accept) is False
    assert taken == [Ping(1)]
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(2), Ping(3)]


async def test_take_while_puts_back_a_declined_last_frame() -> None:
    reader = FrameReader(NoBytes())
    reader.feed(_frames(Ping(1), Ping(2)))
    dec = msgspec.msgpack.Decoder(Ping)
    assert reader.take_while(lambda p: dec.decode(p).nonce != 2) is False
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(2)]


async def test_take_while_takes_every_complete_frame_and_keeps_a_partial_one() -> None:
    reader = FrameReader(NoBytes())
    whole = _frames(Ping(1), Ping(2))
    reader.feed(whole[:-1])
    dec = msgspec.msgpack.Decoder(Ping)
    taken: list[Ping] = []
    assert reader.take_while(lambda p: taken.append(dec.decode(p)) is None) is True
    assert taken == [Ping(1)]
    reader.feed(whole[-1:])
    assert [dec.decode(p) for p in await reader.receive_many()] == [Ping(2)]


class _Exploding(RecordingSink):
    def on_report(self, report: AccountReport) -> None:
        raise RuntimeError(f"sink broke on report {report.seq}")


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)  # an exception group (3.11+, or the backport)
    if isinstance(inner, tuple):
        return [leaf for e in inner for leaf in _leaves(e)]
    return [exc]


async def test_a_sink_that_raises_in_the_read_callback_fails_the_backend_as_before() -> None:
    def script(call: Call) -> list[Any]:
        return [ReportEvent(_report(1)), Result(call.id, Ok())]

    caught: BaseException | None = None
    async with scripted_gateway(script) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        with anyio.fail_after(5):
            try:
                async with backend.open(_Exploding()):
                    await backend.request(_order())
                    await anyio.sleep_forever()  # the reader task's failure ends the block
            except Exception as exc:  # a group (from the task group) is inspected below
                caught = exc
    assert caught is not None
    assert [str(e) for e in _leaves(caught) if isinstance(e, RuntimeError)] == [
        "sink broke on report 1"
    ]
