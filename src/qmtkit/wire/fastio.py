"""A lean byte stream over an asyncio transport, for plain-TCP gateway links on asyncio.

anyio's socket stream pauses and resumes reading around every ``receive`` (two ``epoll_ctl``
calls) and yields to the event loop when data is already waiting; on a request/reply link
those costs are a large share of a loopback round trip. ``FastStream`` keeps reading enabled
until ``READ_LIMIT`` bytes are buffered (then the peer is held back by TCP), hands over
everything buffered in one ``receive`` (up to ``max_bytes``), and only suspends a sender when
the transport's write buffer is over its high-water mark. It follows anyio's stream contract
(``EndOfStream``, ``BrokenResourceError``, ``ClosedResourceError``), so the gateway session and
``RemoteBackend`` use it exactly like an anyio ``SocketStream``. TLS and non-asyncio loops keep
anyio's streams (see :func:`asyncio_running`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

#: Bytes buffered before reading pauses (TCP back-pressure then holds the peer back).
READ_LIMIT = 1 << 20


def asyncio_running() -> bool:
    """True when the current task runs on an asyncio event loop (not trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


#: Bytes one read may take from the socket (asyncio's own limit for a read).
READ_CHUNK = 256 * 1024

_per_thread = threading.local()


def _read_buffer() -> memoryview:
    """This thread's buffer that reads land in, shared by its links (see ``_LinkProtocol``)."""
    view: memoryview | None = getattr(_per_thread, "view", None)
    if view is None:
        view = _per_thread.view = memoryview(bytearray(READ_CHUNK))
    return view


class _LinkProtocol(asyncio.BufferedProtocol):
    """Buffers what arrives and wakes the one reader / the one blocked writer.

    A read lands in a buffer made once per thread and is copied out at once (``buffer_updated``
    runs right after the read, before any other link of the loop reads). asyncio's plain
    protocols make a new bytes object of its read limit for every read: 256 KiB, which glibc
    serves with mmap, mremap and munmap on each read (~15 us here) in a process whose
    allocator has not yet raised its mmap threshold.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.read_waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.on_data: Callable[[bytes], bool] | None = None
        self.read_view = _read_buffer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.read_view = _read_buffer()  # the loop's thread: every read comes on it
        _nodelay(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.read_view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        on_data = self.on_data
        # Offered only when nothing older waits, so what it takes is next in line.
        if on_data is not None and not self.chunks and on_data(data):
            return  # taken in the read callback: nothing to buffer, no reader to wake
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= READ_LIMIT and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake_reader()
        return True  # keep our half open: a last frame may still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        fut = self.read_waiter
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _wake_writer(self) -> None:
        fut = self.drain_waiter
        if fut is not None and not fut.done():
            fut.set_result(None)


class FastStream(anyio.abc.ByteStream):
    """An anyio ``ByteStream`` over an asyncio transport; make one with ``connect``/``accept``."""

    def __init__(self, transport: asyncio.Transport, protocol: _LinkProtocol) -> None:
        self._transport = transport
        self._p = protocol
        self._closed = False

    @classmethod
    async def connect(cls, host: str, port: int) -> FastStream:
        """Open a TCP connection (TCP_NODELAY set)."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(_LinkProtocol, host, port)
        return cls(transport, protocol)

    @classmethod
    async def connect_unix(cls, path: str) -> FastStream:
        """Open a Unix domain socket connection (a local terminal's channel)."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_unix_connection(_LinkProtocol, path)
        return cls(transport, protocol)

    @classmethod
    async def accept(cls, sock: socket.socket) -> FastStream:
        """Wrap a socket a listener accepted (TCP_NODELAY set on TCP)."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        transport, protocol = await loop.connect_accepted_socket(_LinkProtocol, sock)
        return cls(transport, protocol)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Everything buffered (at most ``max_bytes``), waiting for data only when none is."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        p = self._p
        while not p.chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if p.lost and p.error is not None:
                raise anyio.BrokenResourceError from p.error
            if p.eof or p.lost:
                raise anyio.EndOfStream
            if p.read_waiter is not None:
                raise anyio.BusyResourceError("reading from")
            fut = p.read_waiter = asyncio.get_running_loop().create_future()
            try:
                await fut
            finally:
                p.read_waiter = None
        chunks = p.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if len(data) > max_bytes:
            data, rest = data[:max_bytes], data[max_bytes:]
            chunks.append(rest)
        p.buffered = len(chunks[0]) if chunks else 0
        if p.reading_paused and p.buffered < READ_LIMIT:
            p.reading_paused = False
            self._transport.resume_reading()
        return data

    def on_data(self, callback: Callable[[bytes], bool] | None) -> None:
        """Offer the bytes of each read to ``callback`` in the loop's read callback, before a
        waiting ``receive`` is woken, when nothing read earlier is still buffered.

        ``callback(data)`` returns True if it took them (they are its to keep: a link that acts
        on a frame there saves the turn of the loop a reader task would cost), False to leave
        them for ``receive``.
        """
        self._p.on_data = callback

    def nudge(self) -> None:
        """Wake a waiting ``receive`` with an empty chunk (its reader has frames to act on)."""
        self._p.chunks.append(b"")
        self._p._wake_reader()

    async def send(self, item: bytes) -> None:
        """Queue ``item`` on the transport; wait only while its write buffer is too full."""
        p = self._p
        if self._closed:
            raise anyio.ClosedResourceError
        if p.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from p.error
        self._transport.write(item)
        while p.write_paused and not p.lost:
            fut = p.drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await fut
            finally:
                p.drain_waiter = None
        if self._closed:
            raise anyio.ClosedResourceError
        if p.lost:
            raise anyio.BrokenResourceError from p.error

    @property
    def writable(self) -> bool:
        """True when ``send_nowait`` may write: open, and the write buffer under its mark."""
        p = self._p
        return not (self._closed or p.lost or p.write_paused or self._transport.is_closing())

    def send_nowait(self, item: bytes | bytearray) -> None:
        """Queue ``item`` on the transport without waiting (for a read callback).

        Check ``writable`` first: this never holds a sender back, so a caller that ignored
        it could grow the write buffer without bound.
        """
        p = self._p
        if self._closed:
            raise anyio.ClosedResourceError
        if p.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from p.error
        self._transport.write(item)

    async def send_eof(self) -> None:
        """Half-close: the peer reads end of stream after what was sent."""
        if not self._transport.is_closing():
            self._transport.write_eof()

    async def aclose(self) -> None:
        """Close the connection, as anyio's socket streams do.

        What the transport can send at once goes out; after one turn of the event loop the
        rest is dropped, so a peer that stopped reading cannot keep the socket alive.
        """
        if self._closed:
            await anyio.lowlevel.checkpoint()
            return
        self._closed = True
        transport = self._transport
        if not transport.is_closing():
            with contextlib.suppress(OSError):
                transport.write_eof()
            transport.close()
        self._p._wake_reader()
        self._p._wake_writer()
        try:
            await anyio.lowlevel.checkpoint()
        finally:
            transport.abort()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        transport = self._transport
        return {
            anyio.abc.SocketAttribute.raw_socket: lambda: transport.get_extra_info("socket"),
            anyio.abc.SocketAttribute.local_address: lambda: transport.get_extra_info("sockname"),
            anyio.abc.SocketAttribute.remote_address: lambda: transport.get_extra_info("peername"),
        }


__all__ = ["READ_CHUNK", "READ_LIMIT", "FastStream", "asyncio_running"]
