"""Calls a backend answers at once are answered in the gateway's read callback (``hub.eager``),
keeping the order of frames, the reports and the errors of the task path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import pytest

import qmtkit
from qmtkit.backends.base import Hello, OpenAccount, Reply, Request, SubmitOrder
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.terminal.backend import LocalTerminalBackend
from qmtkit.errors import InvalidArgument
from qmtkit.models import OrderResponse
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import Call, Failure, FrameEncoder, Ping, Pong, ReportsEvent, Result
from support.gateway import FakeVenue, RawClient, order_item, running_gateway

CODE = "600000.SH"


class InstantVenue(FakeVenue):
    """A venue that places orders without waiting, noting the task each was placed from."""

    def __init__(self) -> None:
        super().__init__()
        self.placed_in: list[asyncio.Task[Any] | None] = []
        self.refuse = False

    def request_now(self, req: Request) -> Reply | None:
        if type(req) is not SubmitOrder:
            return None
        if self.refuse:
            raise InvalidArgument(f"volume {req.order_volume} refused")
        self.placed_in.append(asyncio.current_task())
        order_id = self.next_order
        self.next_order += 1
        self.emit(req.account_id, order_item(req.account_id, order_id))
        return OrderResponse(account_id=req.account_id, order_id=order_id, seq=req.seq)


def _order(call_id: int, volume: int = 100) -> Call:
    return Call(call_id, SubmitOrder("acct", CODE, 23, volume, 11, 10.0))


async def _opened(gw: Any) -> RawClient:
    client = await RawClient.connect(gw)
    await client.recv()  # Welcome
    await client.send(Call(1, OpenAccount("acct")))
    await client.recv_until(Result)
    return client


async def test_an_order_is_answered_in_the_read_callback_with_its_report(tmp_path: Path) -> None:
    venue = InstantVenue()
    async with running_gateway(venue, tmp_path) as gw:
        client = await _opened(gw)
        await client.send(_order(2))
        result = await client.recv()
        burst = await client.recv()
        await client.aclose()
    assert venue.placed_in == [None]  # outside any task: in the loop's read callback
    assert not any(isinstance(r, SubmitOrder) for r in venue.requests)  # never via request
    assert isinstance(result, Result) and result.id == 2
    assert isinstance(result.reply, OrderResponse) and result.reply.order_id == 1
    assert isinstance(burst, ReportsEvent)
    assert [(r.seq, r.item) for r in burst.reports] == [(1, order_item("acct", 1))]


async def test_a_request_not_answered_at_once_goes_to_the_reading_task(tmp_path: Path) -> None:
    venue = InstantVenue()
    async with running_gateway(venue, tmp_path) as gw:
        client = await _opened(gw)
        await client.send(Call(5, Hello()))
        result = await client.recv_until(Result)
        await client.aclose()
    assert result.id == 5
    assert venue.requests[-1] == Hello()


async def test_a_ping_between_two_orders_in_one_write_is_answered_between_them(
    tmp_path: Path,
) -> None:
    venue = InstantVenue()
    async with running_gateway(venue, tmp_path) as gw:
        client = await _opened(gw)
        enc = FrameEncoder()
        await client.stream.send(
            enc.encode(_order(2, 100)) + enc.encode(Ping(7)) + enc.encode(_order(3, 200))
        )
        seen = []
        while len(seen) < 3:
            msg = await client.recv()
            if isinstance(msg, (Result, Pong)):
                seen.append(msg)
        await client.aclose()
    assert [type(m).__name__ for m in seen] == ["Result", "Pong", "Result"]
    assert [seen[0].id, seen[1].nonce, seen[2].id] == [2, 7, 3]
    # the first in the callback, the one behind the ping by the reading task, in order
    assert len(venue.placed_in) == 1
    assert [r.order_volume for r in venue.requests if isinstance(r, SubmitOrder)] == [200]


async def test_an_order_refused_at_once_fails_only_its_call(tmp_path: Path) -> None:
    venue = InstantVenue()
    venue.refuse = True
    async with running_gateway(venue, tmp_path) as gw:
        client = await _opened(gw)
        await client.send(_order(2, 300))
        failure = await client.recv_until(Failure)
        await client.send(Call(3, Hello()))
        after = await client.recv_until(Result)
        await client.aclose()
    assert (failure.id, failure.error) == (2, "InvalidArgument")
    assert "volume 300 refused" in failure.message
    assert after.id == 3


async def test_a_fast_stream_over_its_write_mark_is_not_writable_at_once() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        stream = await FastStream.connect("127.0.0.1", port)
        assert stream.writable
        stream._p.pause_writing()
        assert not stream.writable
        stream._p.resume_writing()
        await stream.aclose()
        assert not stream.writable
        with pytest.raises(anyio.ClosedResourceError):
            stream.send_nowait(b"x")


async def test_an_attached_programs_order_reaches_the_simulator_without_a_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    original = SimBackend.request

    async def spy(self: SimBackend, req: Request) -> Reply:
        asked.append(type(req).__name__)
        return await original(self, req)

    monkeypatch.setattr(SimBackend, "request", spy)
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        assert isinstance(other.backend, LocalTerminalBackend) and not other.backend.hosting
        acct = await other.account("acct")
        detail = await other.instrument(CODE)
        assert detail is not None
        with anyio.fail_after(20):
            final = await (await acct.buy(CODE, 100, detail.UpStopPrice))
        assert final.order_status == 56  # filled
        assert "SubmitOrder" not in asked  # placed by request_now, in the read callback
        mine = await host.account("acct")
        assert [o.order_id for o in await mine.orders()] == [final.order_id]
