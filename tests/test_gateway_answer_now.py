"""A call answered in the read callback goes out in one write with the events it yielded,
after any frame queued before it (``Session.send_answer_now``)."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import anyio
import msgspec

from qmtkit.backends.base import Ok, SubmitOrder
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.backends.hub.session import AccountState, Session
from qmtkit.models import AccountReport
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import (
    HEADER,
    FrameEncoder,
    Pong,
    ReportsEvent,
    Result,
    ServerMessage,
)
from support.gateway import order_item

ORDER = SubmitOrder("acct", "600000.SH", 23, 100, 11, 10.0)


async def _session() -> tuple[Session, FastStream, socket.socket]:
    ours, theirs = socket.socketpair()
    stream = await FastStream.accept(ours)
    gateway = SimpleNamespace(
        encoder=FrameEncoder(),
        journal=ReportJournal().open(),
        client_budget=1 << 20,
        heartbeat=5.0,
        timeout=15.0,
    )
    return Session(gateway, stream, "peer"), stream, theirs  # type: ignore[arg-type]


def _read_writes(sock: socket.socket) -> list[Any]:
    """The frames waiting on the client's end of the connection."""
    sock.setblocking(False)
    data = b""
    while True:
        try:
            data += sock.recv(1 << 16)
        except BlockingIOError:
            break
    dec = msgspec.msgpack.Decoder(ServerMessage)
    msgs = []
    pos = 0
    while pos < len(data):
        (size,) = HEADER.unpack_from(data, pos)
        msgs.append(dec.decode(data[pos + HEADER.size : pos + HEADER.size + size]))
        pos += HEADER.size + size
    return msgs


async def test_the_answer_and_the_reports_it_yielded_go_out_together() -> None:
    session, stream, peer = await _session()
    acct = AccountState("acct")
    acct.sessions[session] = acct.fanout.subscribe()
    session.accounts["acct"] = acct
    reports = [AccountReport("acct", seq, order_item("acct", seq)) for seq in (1, 2)]
    acct.fanout.publish_many(reports)
    session.send_answer_now(Result(7, Ok()), ORDER, stream)
    await anyio.sleep(0.01)
    msgs = _read_writes(peer)
    assert msgs == [Result(7, Ok()), ReportsEvent(reports)]
    assert acct.sessions[session].pending == 0
    await stream.aclose()
    peer.close()


async def test_a_frame_queued_earlier_goes_out_before_the_answer() -> None:
    session, stream, peer = await _session()
    session.send(Pong(5))  # queued: no writer task runs here
    session.send_answer_now(Result(8, Ok()), ORDER, stream)
    await anyio.sleep(0.01)
    msgs = _read_writes(peer)
    assert msgs == [Pong(5), Result(8, Ok())]
    assert not session.frames
    await stream.aclose()
    peer.close()
