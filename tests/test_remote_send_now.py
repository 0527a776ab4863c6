"""A remote backend sends an order at once and hands back the future of its answer
(``RemoteBackend.send_now``), which an account awaits without the coroutines of ``request``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import qmtkit
from qmtkit.backends.base import (
    Ok,
    OpenAccount,
    Reply,
    Request,
    SubmitOrder,
    SubscribeQuotes,
)
from qmtkit.backends.remote import RemoteBackend
from qmtkit.backends.terminal.backend import LocalTerminalBackend
from qmtkit.errors import InvalidArgument
from qmtkit.models import OrderResponse
from qmtkit.wire.protocol import Call, Failure, Result
from support.gateway import RecordingSink, scripted_gateway

CODE = "600000.SH"


def _order(volume: int = 100) -> SubmitOrder:
    return SubmitOrder("acct", CODE, 23, volume, 11, 10.0)


def _answer(call: Call) -> list[Any]:
    req = call.req
    if isinstance(req, SubmitOrder) and req.order_volume == 300:
        return [Failure(call.id, "InvalidArgument", "volume 300 refused")]
    return [Result(call.id, OrderResponse(account_id="acct", order_id=call.id, seq=0))]


async def test_an_order_sent_at_once_gets_its_reply_through_the_future() -> None:
    async with scripted_gateway(_answer) as (port, received):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(RecordingSink()):
            answer = backend.send_now(_order())
            assert answer is not None
            with anyio.fail_after(10):
                reply = await answer
    assert isinstance(reply, OrderResponse) and reply.order_id == 1
    assert received == [Call(1, _order())]


async def test_a_refused_order_sent_at_once_gets_the_error_as_its_result() -> None:
    async with scripted_gateway(_answer) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with backend.open(RecordingSink()):
            answer = backend.send_now(_order(300))
            assert answer is not None
            with anyio.fail_after(10):
                error = await answer
    assert isinstance(error, InvalidArgument)
    assert "volume 300 refused" in str(error)


async def test_requests_a_reconnect_restores_are_left_to_request() -> None:
    async with scripted_gateway(_answer) as (port, received):
        backend = RemoteBackend("127.0.0.1", port, token="")
        assert backend.send_now(_order()) is None  # not open: nothing to send on
        async with backend.open(RecordingSink()):
            assert backend.send_now(OpenAccount("acct")) is None
            assert backend.send_now(SubscribeQuotes(1, [CODE], "tick")) is None
            with anyio.fail_after(10):
                await backend.request(_order())  # the link is up and answers
    assert [type(m.req).__name__ for m in received] == ["SubmitOrder"]


async def test_an_account_awaits_a_refusal_sent_at_once_as_its_error() -> None:
    def answer(call: Call) -> list[Any]:
        if isinstance(call.req, SubmitOrder):
            return _answer(call)
        return [Result(call.id, Ok())]

    async with scripted_gateway(answer) as (port, _):
        backend = RemoteBackend("127.0.0.1", port, token="")
        async with qmtkit.connect(backend=backend, risk=False) as qk:
            acct = await qk.account("acct")
            with anyio.fail_after(10), pytest.raises(InvalidArgument, match="volume 300"):
                await acct.buy(CODE, 300, 10.0)
            with anyio.fail_after(10):
                handle = await acct.buy(CODE, 100, 10.0)
    assert handle.order_id == 3  # call 1 opened the account, call 2 was refused


async def test_an_attached_programs_order_skips_the_backends_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    original = RemoteBackend.request

    async def spy(self: RemoteBackend, req: Request) -> Reply:
        asked.append(type(req).__name__)
        return await original(self, req)

    monkeypatch.setattr(RemoteBackend, "request", spy)
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        assert isinstance(other.backend, LocalTerminalBackend) and not other.backend.hosting
        acct = await other.account("acct")
        detail = await other.instrument(CODE)
        assert detail is not None
        with anyio.fail_after(20):
            final = await (await acct.buy(CODE, 100, detail.UpStopPrice))
        assert final.order_status == 56  # filled, every report in the handle
        assert "SubmitOrder" not in asked and "OpenAccount" in asked
        mine = await host.account("acct")
        assert [o.order_id for o in await mine.orders()] == [final.order_id]
