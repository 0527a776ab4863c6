"""Host a local terminal in this process: the simulator behind a gateway on a Unix socket.

The host holds ``terminal.lock`` for as long as it hosts; then it opens the simulator (which
locks its journal), binds the socket (``0600`` in a ``0700`` directory) and serves every
program that attaches with the gateway (``gateway.server.Gateway``): the same protocol,
multiplexing and resume-by-seq as ``qmtkit serve``, without a token. The hosting program's own
client skips the wire (``terminal.direct``): its requests go straight to the simulator and its
reports come from the same journal, as they are recorded.

The host also runs the home's pre-trade risk chain (``<home>/risk.toml`` and the halt
switches of ``qmtkit risk halt``) in front of the simulator, as ``qmtkit serve`` does in front
of its venue: every program's orders, the hosting program's own included, pass one
``RiskGuard``, so an account's per-second and per-day budgets are the terminal's, not each
program's (programs that follow the home run no chain of their own: ``risk.guard_backend``).
The chain comes from above (``host_terminal(chain=...)``, given by ``risk.guard``), since the
risk layer sits on top of the backends.

The simulator's journal is the terminal's record: it numbers each account's reports 1, 2,
3 ..., holds each report on disk before any program sees it, and keeps them in memory, so the
terminal hands them out under the simulator's own numbers and replays a resuming program from
there (the gateway's own journal stays empty). A new host after a crash reads the same
journal, and attached programs resume from the last number they saw.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import msgspec
from anyio.abc import TaskStatus

from qmtkit.backends.base import (
    Backend,
    ConnectionState,
    EventSink,
    Ok,
    OpenAccount,
    Reply,
    Request,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.backends.hub.gateway import DEFAULT_REPORT_CAP, Gateway
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.backends.hub.session import Session
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.terminal.channel import channel_kind, remove_published, write_port_file
from qmtkit.backends.terminal.control import (
    ControlClientMessage,
    Program,
    StopTerminal,
    TerminalState,
    TerminalStatus,
)
from qmtkit.backends.terminal.direct import DirectChannel
from qmtkit.backends.terminal.paths import TerminalPaths
from qmtkit.clock import wall_ms
from qmtkit.errors import BackendUnavailable, InvalidArgument, QmtkitError
from qmtkit.models import AccountReport, QuoteBatch
from qmtkit.recordlog import FileLock
from qmtkit.streams import DEFAULT_MAX_RECORDS
from qmtkit.wire.fastio import FastStream, asyncio_running
from qmtkit.wire.protocol import MAX_FRAME
from qmtkit.wire.security import generate_token

log = logging.getLogger(__name__)

#: Seconds between heartbeats on the local channel (a dead peer is seen at once anyway:
#: its socket closes).
HEARTBEAT = 5.0

#: Puts a home's risk chain in front of the hosted simulator: ``(simulator, home) -> venue``.
#: The risk layer supplies it (``risk.guard.home_chain``): backends sit below risk.
HomeChain = Callable[[Backend, Path], Backend]


class TerminalGateway(Gateway):
    """The gateway of a local terminal: it also answers ``TerminalStatus`` and ``StopTerminal``.

    ``sim`` is the terminal's simulator; ``venue`` what every program's requests go to: the
    simulator, or the home's risk chain in front of it (default: the simulator itself).
    """

    def __init__(
        self,
        sim: SimBackend,
        paths: TerminalPaths,
        token: str | None = None,
        *,
        venue: Backend | None = None,
    ) -> None:
        # The gateway's own journal stays empty: the simulator's is the terminal's record.
        super().__init__(
            venue if venue is not None else sim,
            ReportJournal().open(),
            token=token,
            heartbeat=HEARTBEAT,
            timeout=3 * HEARTBEAT,
            max_records=DEFAULT_MAX_RECORDS,
            report_cap=DEFAULT_REPORT_CAP,
            max_frame=MAX_FRAME,
        )
        self.sim = sim
        self.decoder = msgspec.msgpack.Decoder(ControlClientMessage)
        self.paths = paths
        self.since = wall_ms()
        self.programs: dict[int, Program] = {}  # id(stream) -> the program on it
        self.stop_requested = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        #: This process's own programs (``attach_direct``), in the order they came.
        self.direct: list[DirectChannel] = []
        self._direct_accounts: dict[str, dict[DirectChannel, None]] = {}
        self._direct_subs: dict[int, tuple[DirectChannel, int]] = {}  # hub id -> (channel, id)

    # ------------------------------------------------------------------ this process's program

    def attach_direct(
        self,
        sink: EventSink,
        deliver: Callable[[AccountReport], None],
        deliver_many: Callable[[list[AccountReport]], None] | None = None,
    ) -> DirectChannel:
        """A channel for this process's own program: no socket, no encoding (``direct``).

        ``deliver`` takes its reports (``deliver_many``, if given, several of one account at
        once), ``sink`` its quotes and connection changes.
        """
        if self._tg is None:
            raise BackendUnavailable("the terminal this process hosts has stopped")
        program = Program(os.getpid(), _command_of(os.getpid()), wall_ms(), [])
        channel = DirectChannel(self, program, sink, deliver, deliver_many)
        self.direct.append(channel)
        return channel

    async def open_direct(self, channel: DirectChannel, req: OpenAccount) -> Reply:
        """Open an account for a direct channel: replay from the journal, then stream live."""
        acct = await self._backend_account(req)
        # Replay and attach with no await in between: no report can slip through the gap.
        for report in self._replay(req.account_id, req.after_seq):
            channel.deliver(report)
        self._direct_accounts.setdefault(req.account_id, {})[channel] = None
        channel.accounts.add(req.account_id)
        return acct.reply if acct.reply is not None else Ok()

    def close_direct(self, channel: DirectChannel, account_id: str) -> None:
        """Stop streaming an account to a direct channel (the simulator keeps it open)."""
        channel.accounts.discard(account_id)
        self._direct_accounts.get(account_id, {}).pop(channel, None)

    async def subscribe_direct(self, channel: DirectChannel, req: SubscribeQuotes) -> Reply:
        """Subscribe a direct channel's quotes at the simulator under an id of the hub's."""
        if req.sub_id in channel.subs:
            raise InvalidArgument(
                f"subscription id {req.sub_id} is already in use in this program; "
                "unsubscribe it first or use another id"
            )
        gid = self._next_gid
        self._next_gid += 1
        # Registered before asking, so the snapshot the simulator pushes at once is kept.
        self._direct_subs[gid] = (channel, req.sub_id)
        channel.subs[req.sub_id] = gid
        try:
            await self.backend.request(SubscribeQuotes(gid, list(req.codes), req.period))
        except BaseException:
            self._direct_subs.pop(gid, None)
            channel.subs.pop(req.sub_id, None)
            raise
        return Ok()

    async def unsubscribe_direct(self, channel: DirectChannel, sub_id: int) -> Reply:
        """End one of a direct channel's quote subscriptions."""
        gid = channel.subs.pop(sub_id, None)
        if gid is None:
            raise InvalidArgument(
                f"no quote subscription with id {sub_id} in this program "
                f"(open ones: {sorted(channel.subs)})"
            )
        self._direct_subs.pop(gid, None)
        await self.backend.request(UnsubscribeQuotes(gid))
        return Ok()

    async def detach_direct(self, channel: DirectChannel) -> None:
        """A direct channel leaves: its accounts and subscriptions are let go."""
        with suppress(ValueError):
            self.direct.remove(channel)
        for account_id in list(channel.accounts):
            self.close_direct(channel, account_id)
        for sub_id in list(channel.subs):
            with suppress(QmtkitError), anyio.move_on_after(5.0):
                await self.unsubscribe_direct(channel, sub_id)

    def end_direct(self) -> None:
        """The terminal stops: every direct channel's link ends."""
        for channel in self.direct:
            channel.end()

    # ------------------------------------------------------------------ events

    def on_report(self, report: AccountReport) -> None:
        """Hand a report to this process's programs at once, then to the attached ones.

        The simulator's journal is the terminal's: its numbers are the ones every program
        sees, and it holds every report before any program sees one (``_replay``).
        """
        channels = self._direct_accounts.get(report.account_id)
        if channels:
            for channel in channels:  # delivering never opens or closes an account
                channel.deliver(report)
        if self.sessions:
            # The report itself: each program's frame encodes its burst in one go.
            self._fan_out(report.account_id, report)

    def on_reports(self, reports: list[AccountReport]) -> None:
        """``on_report`` for one state change's reports of one account, in one call."""
        account_id = reports[0].account_id
        channels = self._direct_accounts.get(account_id)
        if channels:
            for channel in channels:
                many = channel.deliver_many
                if many is not None:
                    many(reports)
                else:
                    for report in reports:
                        channel.deliver(report)
        if self.sessions:
            self._fan_out_many(account_id, reports)

    def _replay(self, account_id: str, after_seq: int) -> Sequence[AccountReport]:
        return self.sim.reports_after(account_id, after_seq)

    def last_seq(self, account_id: str) -> int:
        """The seq of the account's latest report (0: none yet)."""
        reports = self.sim.reports_after(account_id, 0)
        return reports[-1].seq if reports else 0

    def on_quotes(self, batch: QuoteBatch) -> None:
        """Quotes of a direct channel's subscription go to it; the rest as any gateway does."""
        direct = self._direct_subs.get(batch.sub_id)
        if direct is None:
            super().on_quotes(batch)
        elif batch.items:
            direct[0].on_quotes(batch, direct[1])

    def on_connection(self, state: ConnectionState) -> None:
        """Tell every program, direct or attached."""
        for channel in self.direct:
            channel.on_connection(state)
        super().on_connection(state)

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
        # The hosting program's own channels first, so that on a tie of attach times (one
        # millisecond; a program attached from the host's own process is marked host too) the
        # stable sort keeps the host ahead of those that attached to it.
        programs: list[Program] = []
        for channel in self.direct:
            p = channel.program
            programs.append(Program(p.pid, p.command, p.since, sorted(channel.accounts), True))
        attached = [s for s in self.sessions if s is not excluding]
        for session in attached:
            p = self._program(session)
            programs.append(
                Program(p.pid, p.command, p.since, sorted(session.accounts), p.pid == os.getpid())
            )
        programs.sort(key=lambda p: p.since)
        held = held_sessions(self.paths)
        for program in programs:  # a program with several connections: named on its first
            program.sessions = held.pop(program.pid, [])
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


def held_sessions(paths: TerminalPaths) -> dict[int, list[int]]:
    """The xtquant session ids held on the terminal right now, by the pid holding each.

    A lease file names its holder while held and is emptied on release; one whose holder
    died without releasing it (its lock went with the process) names a pid no longer alive.
    """
    held: dict[int, list[int]] = {}
    try:
        leases = sorted(paths.sessions.glob("*.lock"))
    except OSError:
        return held
    for lease in leases:
        try:
            session = int(lease.name.removesuffix(".lock"))
            first = lease.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        except (OSError, ValueError):
            continue
        word, _, pid_text = first.partition(" ")
        if word != "pid" or not pid_text.isdigit() or not _alive(int(pid_text)):
            continue
        held.setdefault(int(pid_text), []).append(session)
    return {pid: sorted(ids) for pid, ids in held.items()}


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill would end the process there: trust the lease file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's (not ours to signal)
        return True
    return True


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
    backend: SimBackend,
    paths: TerminalPaths,
    lock: FileLock,
    *,
    chain: HomeChain,
    task_status: TaskStatus[TerminalGateway] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Host the terminal until cancelled or stopped; ``lock`` is held on entry, released at exit.

    It listens on the local channel (``channel``: the Unix socket, or loopback TCP whose port
    and token it publishes). The socket or port file is removed before the lock is released,
    so a program that wins the lock next never finds a live host's in its way. ``chain`` puts
    the home's risk chain (if it has one) in front of the simulator for every program.
    """
    kind = channel_kind()
    try:
        token = generate_token() if kind == "tcp" else None
        venue = chain(backend, paths.home)
        gw = TerminalGateway(backend, paths, token, venue=venue)
        async with venue.open(gw) as info:
            gw.info = info
            remove_published(paths, kind)  # a dead host's: we hold the lock, so no live one
            listener: anyio.abc.SocketListener
            if kind == "unix":
                listener = await anyio.create_unix_listener(paths.socket, mode=0o600)
            else:
                tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
                first = tcp.listeners[0]  # one address: one listener
                assert isinstance(first, anyio.abc.SocketListener)
                listener = first
            try:
                async with listener, anyio.create_task_group() as tg:
                    if token is not None:
                        port = listener.extra(anyio.abc.SocketAttribute.local_port)
                        write_port_file(paths, port, token)
                    gw._tg = tg
                    tg.start_soon(_accept_all, listener, gw, tg, kind == "unix")
                    task_status.started(gw)
                    try:
                        await gw.stop_requested.wait()
                    finally:
                        gw._tg = None
                        gw.end_direct()
                    tg.cancel_scope.cancel()
            finally:
                remove_published(paths, kind)
            gw.journal.close()
    finally:
        lock.release()


async def _accept_all(
    listener: anyio.abc.SocketListener,
    gw: TerminalGateway,
    tg: anyio.abc.TaskGroup,
    unix: bool,
) -> None:
    """Accept programs: as lean asyncio streams on asyncio, as anyio streams otherwise.

    On a Unix socket the peer's uid is checked; on TCP the token does that job.
    """

    def identify(sock: socket.socket) -> Program | None:
        return peer_program(sock) if unix else Program(0, "?", wall_ms(), [])

    sock = listener.extra(anyio.abc.SocketAttribute.raw_socket)
    if not asyncio_running():
        while True:
            stream = await listener.accept()
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            program = identify(raw)
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
        program = identify(client)
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


__all__ = ["HEARTBEAT", "TerminalGateway", "held_sessions", "host_terminal", "peer_program"]
