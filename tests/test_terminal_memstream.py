"""The host's in-memory client stream follows anyio's byte-stream contract."""

from __future__ import annotations

import anyio
import pytest

from qmtkit.terminal.memstream import HIGH_WATER, memory_stream_pair


async def test_what_one_end_sends_the_other_receives_in_one_piece() -> None:
    a, b = memory_stream_pair()
    await a.send(b"one")
    await a.send(b"two")
    assert await b.receive() == b"onetwo"
    await b.send(b"back")
    assert await a.receive(2) == b"ba" and await a.receive() == b"ck"


async def test_a_closed_peer_ends_the_stream_and_breaks_writes() -> None:
    a, b = memory_stream_pair()
    await a.send(b"last")
    await a.aclose()
    assert await b.receive() == b"last"
    with pytest.raises(anyio.EndOfStream):
        await b.receive()
    with pytest.raises(anyio.BrokenResourceError):
        await b.send(b"x")
    with pytest.raises(anyio.ClosedResourceError):
        await a.send(b"x")


async def test_a_writer_waits_while_too_much_is_unread() -> None:
    a, b = memory_stream_pair()
    sent = anyio.Event()

    async def write() -> None:
        await a.send(b"x" * HIGH_WATER)
        sent.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        await anyio.wait_all_tasks_blocked()
        assert not sent.is_set()
        assert len(await b.receive(HIGH_WATER)) == HIGH_WATER
        with anyio.fail_after(10):
            await sent.wait()
