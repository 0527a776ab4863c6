"""The gateway wire protocol: typed messages, msgpack-encoded, in length-prefixed frames.

Every frame is a 4-byte big-endian payload length followed by one msgpack-encoded message.
The payloads are the Backend seam's own request/reply/event Structs wrapped in a small
envelope: a client sends ``Call(id, req)`` and gets ``Result(id, reply)`` or
``Failure(id, error, message)``; events carry the client's own subscription id
(``QuotesEvent``) or the account (``ReportEvent``, ``ReportsEvent`` for a burst). The first
client frame must be ``Auth``; the gateway answers ``Welcome`` or a fatal ``ErrorFrame``.
Either side sends ``Ping`` and the other answers ``Pong``; any frame counts as a sign of life.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

import anyio.abc
import msgspec

import qmtkit.errors as errors
from qmtkit.errors import BackendError, InvalidArgument, QmtkitError
from qmtkit.messages import BackendInfo, ConnectionState, Reply, Request
from qmtkit.models import AccountReport, QuoteBatch

PROTOCOL_VERSION: Final = 1
DEFAULT_PORT: Final = 58610
#: The largest payload either side accepts; a history download of a million bars fits.
MAX_FRAME: Final = 64 * 1024 * 1024
HEADER: Final = struct.Struct(">I")
_NO_HEADER: Final = bytes(HEADER.size)  # the room a frame's length takes, filled in after

# --------------------------------------------------------------------------- client -> gateway


class Auth(msgspec.Struct, tag="auth"):
    """The first frame of a connection: the shared token and the protocol version spoken."""

    token: str
    version: int = PROTOCOL_VERSION
    client: str = ""


class Call(msgspec.Struct, tag="call"):
    """One Backend request; ``id`` is chosen by the client and echoed in the answer."""

    id: int
    req: Request


class Ping(msgspec.Struct, tag="ping"):
    """A heartbeat; the peer answers with ``Pong`` carrying the same nonce."""

    nonce: int = 0


class Pong(msgspec.Struct, tag="pong"):
    """The answer to a ``Ping``."""

    nonce: int = 0


class Bye(msgspec.Struct, tag="bye"):
    """An orderly goodbye before closing the connection."""

    reason: str = ""


# --------------------------------------------------------------------------- gateway -> client


class Welcome(msgspec.Struct, tag="welcome"):
    """Authentication passed: who the backend behind the gateway is."""

    info: BackendInfo
    version: int = PROTOCOL_VERSION
    heartbeat: float = 5.0


class Result(msgspec.Struct, tag="result"):
    """The reply to ``Call(id, ...)``."""

    id: int
    reply: Reply


class Failure(msgspec.Struct, tag="failure"):
    """``Call(id, ...)`` raised; ``error`` names a ``qmtkit.errors`` class."""

    id: int
    error: str
    message: str


class QuotesEvent(msgspec.Struct, tag="quotes_event"):
    """Quote records for the client's subscription ``batch.sub_id``.

    ``dropped`` counts the records the gateway merged away for this slow client since the
    previous event of the subscription (latest-per-code policy).
    """

    batch: QuoteBatch
    dropped: int = 0


class ReportEvent(msgspec.Struct, tag="report_event"):
    """One account report, in ``seq`` order per account."""

    report: AccountReport


class ReportsEvent(msgspec.Struct, tag="reports_event"):
    """Consecutive reports of one account, in ``seq`` order (what one venue event produced).

    One frame for a burst (a filled order yields six reports) costs each side one encode or
    decode and one dispatch instead of six.
    """

    reports: list[AccountReport]


class EncodedReportsEvent(msgspec.Struct, tag="reports_event"):
    """A ``ReportsEvent`` as the gateway sends it: reports already msgpack-encoded (its
    journal's) or not yet (a terminal's, encoded here with the frame); the same bytes either way.
    """

    reports: list[msgspec.Raw | AccountReport]


class ConnectionEvent(msgspec.Struct, tag="connection_event"):
    """The backend behind the gateway lost or regained its venue."""

    state: ConnectionState


class ErrorFrame(msgspec.Struct, tag="error"):
    """The gateway could not understand a frame; ``fatal`` means it closes the connection."""

    message: str
    fatal: bool = False


ClientMessage = Auth | Call | Ping | Pong | Bye
ServerMessage = (
    Welcome
    | Result
    | Failure
    | QuotesEvent
    | ReportEvent
    | ReportsEvent
    | ConnectionEvent
    | ErrorFrame
    | Ping
    | Pong
    | Bye
)


class FramingError(QmtkitError):
    """The byte stream is not a sequence of valid frames; the connection cannot continue."""


# --------------------------------------------------------------------------- codec


class FrameEncoder:
    """Encode messages into length-prefixed frames (one reusable msgpack encoder)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._enc = msgspec.msgpack.Encoder()
        self._max = max_frame

    def encode(self, msg: Any) -> bytes:
        """One frame holding ``msg``; a payload over the size limit raises ``InvalidArgument``."""
        buf = bytearray(HEADER.size)
        self._enc.encode_into(msg, buf, HEADER.size)
        size = len(buf) - HEADER.size
        if size > self._max:
            raise InvalidArgument(
                f"a {type(msg).__name__} message of {size} bytes exceeds the frame limit of "
                f"{self._max} bytes; ask for less at once (e.g. a shorter history range)"
            )
        HEADER.pack_into(buf, 0, size)
        return bytes(buf)

    def append(self, msg: Any, buf: bytearray) -> None:
        """Add the frame holding ``msg`` at the end of ``buf`` (several frames, one buffer).

        A payload over the size limit raises ``InvalidArgument`` and leaves ``buf`` as it was.
        """
        start = len(buf)
        buf += _NO_HEADER
        self._enc.encode_into(msg, buf, start + HEADER.size)
        size = len(buf) - start - HEADER.size
        if size > self._max:
            del buf[start:]
            raise InvalidArgument(
                f"a {type(msg).__name__} message of {size} bytes exceeds the frame limit of "
                f"{self._max} bytes; ask for less at once (e.g. a shorter history range)"
            )
        HEADER.pack_into(buf, start, size)


class FrameReader:
    """Split a byte stream into frame payloads.

    ``receive`` returns the next payload (``receive_many`` every payload already buffered),
    raises ``anyio.EndOfStream`` when the peer closed between frames and ``FramingError`` when
    the framing is broken (oversized length, or the stream ended inside a frame).
    """

    def __init__(self, stream: anyio.abc.ByteReceiveStream, max_frame: int = MAX_FRAME) -> None:
        self._stream = stream
        self._max = max_frame
        self._buf = bytearray()
        self._pos = 0

    @property
    def max_frame(self) -> int:
        """The largest frame accepted; a small one also keeps each read that small."""
        return self._max

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self._max = value

    async def receive(self) -> bytes:
        """The next complete frame payload."""
        while True:
            payload = self._next()
            if payload is not None:
                return payload
            await self._fill()

    async def receive_many(self) -> list[bytes]:
        """Every complete frame payload already buffered, in order; waits for at least one.

        Empty only when the stream handed over an empty chunk (``FastStream.nudge``).

        A peer that coalesces many frames into one write costs its reader one wake-up and one
        read for all of them.
        """
        nudged = False
        while True:
            payloads: list[bytes] = []
            try:
                while (payload := self._next()) is not None:
                    payloads.append(payload)
            except FramingError:
                if not payloads:
                    raise
                # The frames before the broken one are good; the error comes next call.
            if payloads or nudged:
                return payloads
            nudged = not await self._fill()  # woken with nothing: ``FastStream.nudge``

    def feed(self, data: bytes) -> None:
        """Add bytes taken from the stream elsewhere (a read callback, ``FastStream.on_data``)."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def take_from(self, data: bytes, accept: Callable[[bytes], bool]) -> bool:
        """``feed(data)``, then ``take_while(accept)``; True if every complete frame was taken.

        With nothing buffered before (the usual case: a peer's write read whole), the frames
        are cut straight out of ``data``, without going through the buffer.
        """
        if self._pos < len(self._buf):  # part of a frame waits for the rest
            self.feed(data)
            return self.take_while(accept)
        n = len(data)
        pos = 0
        taken_all = True
        try:
            while n - pos >= HEADER.size:
                (size,) = HEADER.unpack_from(data, pos)
                if size > self._max:  # left for receive, which raises its FramingError
                    taken_all = False
                    break
                start, end = pos, pos + HEADER.size + size
                if end > n:
                    break
                pos = end  # taken, as in take_while, even if ``accept`` raises
                if not accept(data[start + HEADER.size : end]):
                    pos = start  # declined: first in line for receive
                    taken_all = False
                    break
        finally:
            if pos < n:
                self.feed(data[pos:] if pos else data)
        return taken_all

    def take_while(self, accept: Callable[[bytes], bool]) -> bool:
        """Hand complete frames to ``accept`` until it returns False; True if all were taken.

        The frame ``accept`` declines stays buffered, first in line for ``receive``, and so does
        a broken frame (``receive`` raises its ``FramingError``).
        """
        while True:
            pos = self._pos
            try:
                payload = self._next()
            except FramingError:
                return False
            if payload is None:
                return True
            if not accept(payload):
                if self._pos == 0:  # the buffer was emptied: put the frame back
                    self._buf[:0] = HEADER.pack(len(payload)) + payload
                else:
                    self._pos = pos
                return False

    def _next(self) -> bytes | None:
        """Cut the next complete frame out of the buffer (None if it is not all here yet)."""
        avail = len(self._buf) - self._pos
        if avail < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self._buf, self._pos)
        if size > self._max:
            raise FramingError(
                f"frame length {size} exceeds the limit of {self._max} bytes; "
                "the peer is not speaking the qmtkit gateway protocol"
            )
        if avail < HEADER.size + size:
            return None
        start = self._pos + HEADER.size
        with memoryview(self._buf) as view:
            payload = bytes(view[start : start + size])
        self._pos = start + size
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        return payload

    async def _fill(self) -> bool:
        try:
            # a reader limited to small frames (before login) holds no more than one of them
            chunk = await self._stream.receive(min(1 << 18, self._max + HEADER.size))
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            if len(self._buf) > self._pos:
                raise FramingError(
                    f"connection closed inside a frame ({len(self._buf) - self._pos} "
                    "bytes of it arrived)"
                ) from None
            raise anyio.EndOfStream from None
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += chunk
        return bool(chunk)


# --------------------------------------------------------------------------- errors on the wire


def error_name(exc: BaseException) -> str:
    """The name under which an exception travels: its ``qmtkit.errors`` class, else BackendError."""
    for cls in type(exc).__mro__:
        if getattr(errors, cls.__name__, None) is cls and issubclass(cls, QmtkitError):
            return str(cls.__name__)
    return BackendError.__name__


def error_from_wire(name: str, message: str) -> QmtkitError:
    """Rebuild the exception a ``Failure`` names (unknown names become ``BackendError``)."""
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, QmtkitError):
        return cls(message)
    return BackendError(message)


__all__ = [
    "DEFAULT_PORT",
    "HEADER",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "Auth",
    "Bye",
    "Call",
    "ClientMessage",
    "ConnectionEvent",
    "ErrorFrame",
    "Failure",
    "FrameEncoder",
    "FrameReader",
    "FramingError",
    "Ping",
    "Pong",
    "QuotesEvent",
    "ReportEvent",
    "ReportsEvent",
    "Result",
    "ServerMessage",
    "Welcome",
    "error_from_wire",
    "error_name",
]
