"""Host a local terminal in this process: the simulator behind a gateway on a Unix socket.

The host holds ``terminal.lock`` for as long as it hosts; then it opens the simulator (which
locks its journal), binds the socket (``0600`` in a ``0700`` directory) and serves every
program that attaches, its own included (over an in-memory stream), with the gateway
(``gateway.server.Gateway``): the same protocol, multiplexing and resume-by-seq as
``qmtkit serve``, without a token.

The gateway's report journal is kept in memory: the simulator's journal on disk is the
record. The gateway opens each account at the simulator from its first report and numbers
reports in the order they come, so its numbers are the simulator's own; a new host after a
crash rebuilds the same numbering from the simulator's journal, and attached programs resume
from the last number they saw.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import msgspec
from anyio.abc import TaskStatus

from qmtkit.backends.base import Backend, Ok, Reply, Request
from qmtkit.clock import wall_ms
from qmtkit.errors import BackendUnavailable
from qmtkit.gateway.journal import ReportJournal
from qmtkit.gateway.server import DEFAULT_REPORT_CAP, Gateway
from qmtkit.gateway.session import Session
from qmtkit.recordlog import FileLock
from qmtkit.streams import DEFAULT_MAX_RECORDS
from qmtkit.terminal.control import (
    ControlClientMessage,
    Program,
    StopTerminal,
    TerminalState,
    TerminalStatus,
)
from qmtkit.terminal.memstream import memory_stream_pair
from qmtkit.terminal.paths import TerminalPaths
from qmtkit.wire.fastio import FastStream, asyncio_running
from qmtkit.wire.protocol import MAX_FRAME

log = logging.getLogger(__name__)

#: Seconds between heartbeats on the local channel (a dead peer is seen at once anyway:
#: its socket closes).
HEARTBEAT = 5.0


class TerminalGateway(Gateway):
    """The gateway of a local terminal: it also answers ``TerminalStatus`` and ``StopTerminal``."""

    def __init__(self, backend: Backend, paths: TerminalPaths) -> None:
        super().__init__(
            backend,
            ReportJournal().open(),
            token=None,
            heartbeat=HEARTBEAT,
            timeout=3 * HEARTBEAT,
            max_records=DEFAULT_MAX_RECORDS,
            report_cap=DEFAULT_REPORT_CAP,
            max_frame=MAX_FRAME,
        )
        self.decoder = msgspec.msgpack.Decoder(ControlClientMessage)
        self.paths = paths
        self.since = wall_ms()
        self.programs: dict[int, Program] = {}  # id(stream) -> the program on it
        self.stop_requested = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    def attach_local(self) -> anyio.abc.ByteStream:
        """A client stream for this process's own program, in memory instead of a socket."""
        if self._tg is None:
            raise BackendUnavailable("the terminal this process hosts has stopped")
        ours, theirs = memory_stream_pair()
        program = Program(os.getpid(), _command_of(os.getpid()), wall_ms(), [])
        self._tg.start_soon(self.serve_stream, theirs, program)
        return ours

    async def handle(self, session: Session, req: Request) -> Reply:
        """Answer control requests here; everything else as any gateway does."""
        control: object = req
        if isinstance(control, TerminalStatus):
            return self.state(excluding=session)  # type: ignore[return-value]
        if isinstance(control, StopTerminal):
            log.info("terminal %s: stop requested", self.paths.directory)
            self.paths.stopped.touch()
            self.stop_requested.set()
            return Ok()
        return await super().handle(session, req)

    def state(self, excluding: Session | None = None) -> TerminalState:
        """Who is attached right now (but ``excluding``), with the accounts each has open."""
        programs: list[Program] = []
        attached = [s for s in self.sessions if s is not excluding]
        for session in sorted(attached, key=lambda s: self._program(s).since):
            p = self._program(session)
            programs.append(
                Program(p.pid, p.command, p.since, sorted(session.accounts), p.pid == os.getpid())
            )
        return TerminalState(self.info.url, self.info.venue_id, os.getpid(), self.since, programs)

    def _program(self, session: Session) -> Program:
        return self.programs.get(id(session.stream)) or Program(0, "?", 0, [])

    async def serve_stream(self, stream: anyio.abc.ByteStream, program: Program) -> None:
        """Serve one attached program until it leaves."""
        self.programs[id(stream)] = program
        try:
            await self.handle_connection(stream)
        finally:
            self.programs.pop(id(stream), None)


def peer_program(sock: socket.socket) -> Program | None:
    """Who is on the other end of an accepted Unix socket (None: another user, refuse)."""
    pid = 0
    if sys.platform.startswith("linux"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            return None
    return Program(pid, _command_of(pid), wall_ms(), [])


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)[:200]


async def host_terminal(
    backend: Backend,
    paths: TerminalPaths,
    lock: FileLock,
    *,
    task_status: TaskStatus[TerminalGateway] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Host the terminal until cancelled or stopped; ``lock`` is held on entry, released at exit.

    The socket is removed before the lock is released, so a program that wins the lock next
    never finds a live host's socket in its way.
    """
    try:
        gw = TerminalGateway(backend, paths)
        async with backend.open(gw) as info:
            gw.info = info
            path = paths.socket
            with suppress(FileNotFoundError):
                path.unlink()  # a dead host's: we hold the lock, so no live host owns it
            listener = await anyio.create_unix_listener(path, mode=0o600)
            try:
                async with listener, anyio.create_task_group() as tg:
                    gw._tg = tg
                    tg.start_soon(_accept_all, listener, gw, tg)
                    task_status.started(gw)
                    try:
                        await gw.stop_requested.wait()
                    finally:
                        gw._tg = None
                    tg.cancel_scope.cancel()
            finally:
                with suppress(FileNotFoundError):
                    path.unlink()
            gw.journal.close()
    finally:
        lock.release()


async def _accept_all(
    listener: anyio.abc.SocketListener, gw: TerminalGateway, tg: anyio.abc.TaskGroup
) -> None:
    """Accept programs: as lean asyncio streams on asyncio, as anyio streams otherwise."""
    sock = listener.extra(anyio.abc.SocketAttribute.raw_socket)
    if not asyncio_running():
        while True:
            stream = await listener.accept()
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            program = peer_program(raw)
            if program is None:
                await stream.aclose()
                continue
            tg.start_soon(gw.serve_stream, stream, program)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while True:
        try:
            client, _ = await loop.sock_accept(sock)
        except OSError as exc:  # e.g. out of file descriptors: keep serving the others
            log.warning("terminal: accept failed: %r", exc)
            await anyio.sleep(0.1)
            continue
        program = peer_program(client)
        if program is None:
            client.close()
            continue
        try:
            fast: Any = await FastStream.accept(client)
        except OSError as exc:
            client.close()
            log.warning("terminal: could not set up an accepted connection: %r", exc)
            continue
        tg.start_soon(gw.serve_stream, fast, program)


__all__ = ["HEARTBEAT", "TerminalGateway", "host_terminal", "peer_program"]
