"""The local channel of a terminal: a Unix socket, or loopback TCP with a token file.

On Linux and macOS the host listens on a ``0600`` Unix socket in the ``0700`` terminal
directory, and the file system is the whole of access control. Where there are no Unix
sockets (Windows) the host listens on ``127.0.0.1`` at a port the system picks and writes
``terminal.port`` (``PORT TOKEN``) in the terminal directory, readable by its owner only;
attaching programs read it and present the token in the gateway's ``Auth`` frame, so only the
user who can read the file can attach. ``QMTKIT_TERMINAL_CHANNEL=tcp`` selects the second
channel anywhere (every program of a terminal must use the same one), which is how it is
tested on Linux.
"""

from __future__ import annotations

import os
import socket
from contextlib import suppress

import anyio
import anyio.abc

from qmtkit.backends.terminal.paths import TerminalPaths
from qmtkit.errors import InvalidArgument
from qmtkit.wire.fastio import FastStream, asyncio_running

#: Environment variable choosing the channel: ``unix``, ``tcp`` or ``auto`` (the default).
CHANNEL_ENV = "QMTKIT_TERMINAL_CHANNEL"


def channel_kind() -> str:
    """``unix`` or ``tcp``: the channel this platform and ``$QMTKIT_TERMINAL_CHANNEL`` pick."""
    raw = os.environ.get(CHANNEL_ENV, "").strip().lower()
    unix_ok = hasattr(socket, "AF_UNIX")
    if raw in ("", "auto"):
        return "unix" if unix_ok else "tcp"
    if raw == "tcp" or (raw == "unix" and unix_ok):
        return raw
    raise InvalidArgument(
        f"{CHANNEL_ENV}={raw!r}: expected unix, tcp or auto"
        + ("" if unix_ok else " (this platform has no Unix sockets: tcp or auto)")
    )


def write_port_file(paths: TerminalPaths, port: int, token: str) -> None:
    """Publish the TCP channel: ``PORT TOKEN`` in a file only its owner can read (``0600``)."""
    tmp = paths.port_file.with_name(f"{paths.port_file.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{port} {token}\n".encode())
    finally:
        os.close(fd)
    os.replace(tmp, paths.port_file)


def read_port_file(paths: TerminalPaths) -> tuple[int, str] | None:
    """The TCP channel's port and token, or None when no host has published one."""
    try:
        port_text, _, token = paths.port_file.read_text(encoding="ascii").strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return None
    if not port_text.isdigit() or not token:
        return None
    return int(port_text), token


def remove_published(paths: TerminalPaths, kind: str) -> None:
    """Remove what a host published (its socket or port file); gone already is fine."""
    with suppress(FileNotFoundError):
        (paths.socket if kind == "unix" else paths.port_file).unlink()


async def connect(paths: TerminalPaths, kind: str) -> tuple[anyio.abc.ByteStream, str]:
    """A stream to the running host and the token to log in with ("" on a Unix socket).

    ``FileNotFoundError`` or ``ConnectionRefusedError`` mean nobody hosts the terminal (a dead
    host may have left its socket or port file behind).
    """
    if kind == "unix":
        path = str(paths.socket)
        if asyncio_running():
            return await FastStream.connect_unix(path), ""
        return await anyio.connect_unix(path), ""
    published = read_port_file(paths)
    if published is None:
        raise FileNotFoundError(str(paths.port_file))
    port, token = published
    if asyncio_running():
        return await FastStream.connect("127.0.0.1", port), token
    return await anyio.connect_tcp("127.0.0.1", port), token


__all__ = [
    "CHANNEL_ENV",
    "channel_kind",
    "connect",
    "read_port_file",
    "remove_published",
    "write_port_file",
]
