"""Terminal control over the gateway protocol: two more requests a local terminal answers.

``TerminalStatus`` (who is attached, since when, with which accounts) and ``StopTerminal``
travel as ordinary ``Call`` frames of the gateway protocol: ``ControlCall`` is a ``Call``
whose request may also be one of these, so the gateway's session code handles it unchanged
and only the terminal's gateway (``host.TerminalGateway``) knows how to answer. The client
side here is a one-shot exchange used by ``qmtkit terminal status|stop``.
"""

from __future__ import annotations

from typing import Union

import anyio
import anyio.abc
import msgspec

from qmtkit.backends.base import Ok, Reply, Request
from qmtkit.backends.terminal.channel import channel_kind, connect
from qmtkit.backends.terminal.paths import TerminalPaths
from qmtkit.errors import BackendUnavailable, QmtkitError
from qmtkit.wire.protocol import (
    PROTOCOL_VERSION,
    Auth,
    Bye,
    Call,
    ErrorFrame,
    Failure,
    FrameEncoder,
    FrameReader,
    Ping,
    Pong,
    Result,
    Welcome,
    error_from_wire,
)


class TerminalStatus(msgspec.Struct, tag="terminal_status"):
    """Ask the host who is attached."""


class StopTerminal(msgspec.Struct, tag="stop_terminal"):
    """Ask the host to stop the terminal: every program is disconnected, none takes over."""


class Program(msgspec.Struct):
    """One attached program: its pid, command line, attach time (Unix ms) and open accounts.

    ``sessions``: the xtquant session ids its ``XtQuantTrader`` objects hold on the terminal.
    """

    pid: int
    command: str
    since: int
    accounts: list[str]
    host: bool = False
    sessions: list[int] = []


class TerminalState(msgspec.Struct, tag="terminal_state"):
    """The answer to ``TerminalStatus``."""

    url: str
    venue_id: str
    host_pid: int
    since: int
    programs: list[Program]


Control = Union[TerminalStatus, StopTerminal]


class ControlCall(Call, tag="call"):
    """A ``Call`` whose request may also be a terminal control request."""

    req: Union[Request, TerminalStatus, StopTerminal]  # type: ignore[assignment]


class ControlResult(Result, tag="result"):
    """A ``Result`` whose reply may also be a ``TerminalState``."""

    reply: Union[Reply, TerminalState]  # type: ignore[assignment]


ControlClientMessage = Auth | ControlCall | Ping | Pong | Bye
ControlServerMessage = Welcome | ControlResult | Failure | ErrorFrame | Ping | Pong | Bye


async def _connect(paths: TerminalPaths) -> tuple[anyio.abc.ByteStream, str]:
    try:
        return await connect(paths, channel_kind())
    except OSError as exc:
        raise BackendUnavailable(
            f"no terminal is running for {paths.directory} ({exc.strerror or exc})"
        ) from None


async def control(paths: TerminalPaths, req: Control, *, timeout: float = 10.0) -> object:
    """Send one control request to the running terminal and return its reply.

    A ``StopTerminal`` may end the connection before its answer arrives; that counts as done.
    """
    encoder = FrameEncoder()
    decoder = msgspec.msgpack.Decoder(ControlServerMessage)
    with anyio.fail_after(timeout):
        stream, token = await _connect(paths)
        async with stream:
            reader = FrameReader(stream)
            await stream.send(encoder.encode(Auth(token, PROTOCOL_VERSION, "qmtkit terminal")))
            await stream.send(encoder.encode(ControlCall(1, req)))
            while True:
                try:
                    msg = decoder.decode(await reader.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError, QmtkitError):
                    if isinstance(req, StopTerminal):
                        return Ok()
                    raise BackendUnavailable("the terminal closed the connection") from None
                if isinstance(msg, ControlResult) and msg.id == 1:
                    return msg.reply
                if isinstance(msg, Failure) and msg.id == 1:
                    raise error_from_wire(msg.error, msg.message)
                if isinstance(msg, ErrorFrame) and msg.fatal:
                    raise BackendUnavailable(f"the terminal refused: {msg.message}")
                if isinstance(msg, Ping):
                    await stream.send(encoder.encode(Pong(msg.nonce)))


__all__ = [
    "Control",
    "ControlCall",
    "ControlClientMessage",
    "ControlResult",
    "ControlServerMessage",
    "Program",
    "StopTerminal",
    "TerminalState",
    "TerminalStatus",
    "control",
]
