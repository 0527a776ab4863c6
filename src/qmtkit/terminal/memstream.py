"""An in-memory pair of byte streams, for the host's own client of its terminal.

The program that hosts a terminal is one of its clients too; a socket to itself would cost
two system calls and a trip through the event loop's selector per message for nothing. This
pair follows anyio's stream contract (``EndOfStream`` after the peer closed, ``Broken...``
when writing to a closed peer, ``Closed...`` after our own close), hands over everything
buffered in one ``receive``, and holds a writer back once ``HIGH_WATER`` bytes wait unread,
as a socket's buffer would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

#: Unread bytes after which a writer waits for the reader.
HIGH_WATER = 1 << 20


class _Pipe:
    """One direction: what the writer sent and the reader has not taken yet."""

    __slots__ = ("chunks", "readable", "reader_gone", "size", "writable", "writer_gone")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.writer_gone = False
        self.reader_gone = False
        self.readable: Any = None  # an asyncio future, or an anyio Event off asyncio
        self.writable: Any = None

    def wake_reader(self) -> None:
        ev, self.readable = self.readable, None
        _wake(ev)

    def wake_writer(self) -> None:
        ev, self.writable = self.writable, None
        _wake(ev)


def _waiter() -> Any:
    """Something to wait on: a bare asyncio future on asyncio (cheaper than an anyio Event)."""
    try:
        return asyncio.get_running_loop().create_future()
    except RuntimeError:
        return anyio.Event()


def _wake(waiter: Any) -> None:
    if isinstance(waiter, asyncio.Future):
        if not waiter.done():
            waiter.set_result(None)
    elif waiter is not None:
        waiter.set()


async def _wait(waiter: Any) -> None:
    if isinstance(waiter, asyncio.Future):
        await waiter
    else:
        await waiter.wait()


class MemoryByteStream(anyio.abc.ByteStream):
    """One end of a pair made by ``memory_stream_pair``."""

    def __init__(self, inbound: _Pipe, outbound: _Pipe) -> None:
        self._in = inbound
        self._out = outbound
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Everything buffered (at most ``max_bytes``), waiting only when nothing is."""
        pipe = self._in
        while not pipe.chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if pipe.writer_gone:
                raise anyio.EndOfStream
            ev = pipe.readable = _waiter()
            await _wait(ev)
        chunks = pipe.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if len(data) > max_bytes:
            data, rest = data[:max_bytes], data[max_bytes:]
            chunks.append(rest)
        pipe.size = len(chunks[0]) if chunks else 0
        if pipe.size < HIGH_WATER:
            pipe.wake_writer()
        return data

    async def send(self, item: bytes) -> None:
        """Hand ``item`` to the peer; wait only while too much of ours is still unread."""
        pipe = self._out
        if self._closed:
            raise anyio.ClosedResourceError
        if pipe.reader_gone:
            raise anyio.BrokenResourceError
        pipe.chunks.append(bytes(item))
        pipe.size += len(item)
        pipe.wake_reader()
        while pipe.size >= HIGH_WATER and not pipe.reader_gone and not self._closed:
            ev = pipe.writable = _waiter()
            await _wait(ev)

    async def send_eof(self) -> None:
        """Half-close: the peer reads the end of the stream after what was sent."""
        self._out.writer_gone = True
        self._out.wake_reader()

    async def aclose(self) -> None:
        """Close both directions; the peer reads the end of the stream, its writes fail."""
        if not self._closed:
            self._closed = True
            self._out.writer_gone = True
            self._in.reader_gone = True
            self._in.chunks.clear()
            for pipe in (self._in, self._out):
                pipe.wake_reader()
                pipe.wake_writer()
        await anyio.lowlevel.checkpoint()


def memory_stream_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    """Two connected ends: what one sends, the other receives."""
    a_to_b, b_to_a = _Pipe(), _Pipe()
    return MemoryByteStream(b_to_a, a_to_b), MemoryByteStream(a_to_b, b_to_a)


__all__ = ["HIGH_WATER", "MemoryByteStream", "memory_stream_pair"]
