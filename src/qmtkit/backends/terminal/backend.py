"""``sim://``, shared: attach to the local terminal, or host it when none is running.

Every program that opens a ``sim://`` terminal is a client of the terminal's gateway over
a Unix domain socket, but the host's own client, which reaches the simulator directly
(``terminal.direct``) and reads the same journaled reports. Connecting means: try the socket; if
nobody answers, try to take the host lock; whoever gets it hosts the terminal inside its
own process (``host.host_terminal``) for as long as its ``connect()`` lasts; the others wait
for the socket. When the host ends (its program exits, or is killed), the other programs'
links drop, the same step runs again and one of them becomes the new host; each resumes its
accounts from the last report number it saw (``RemoteBackend``'s resume logic).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from qmtkit._tasks import lifetime_tasks
from qmtkit.backends.base import BackendInfo, EventSink, Reply, Request
from qmtkit.backends.remote import RemoteBackend, _Link
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.terminal.channel import channel_kind, connect
from qmtkit.backends.terminal.direct import DirectChannel
from qmtkit.backends.terminal.host import HEARTBEAT, HomeChain, TerminalGateway, host_terminal
from qmtkit.backends.terminal.paths import identity, paths_of
from qmtkit.backends.urls import without_share
from qmtkit.errors import BackendUnavailable, InvalidArgument, JournalLocked
from qmtkit.recordlog import FileLock
from qmtkit.wire.protocol import FrameReader

#: Seconds to wait for a terminal to answer (hosting one included) before giving up.
CONNECT_TIMEOUT = 30.0


class TerminalMismatch(BackendUnavailable):
    """The running terminal was started with other options (seed, clock, speed, cash, step)."""


class LocalTerminalBackend(RemoteBackend):
    """The shared simulator terminal named by a ``sim://`` URL (its home and terminal)."""

    #: The terminal's host runs the home's risk chain for every program (``host``), so a
    #: program following the home adds none of its own (``risk.guard_backend``).
    home_risk_at_venue = True

    def __init__(self, url: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.sim_url = without_share(url)
        self.paths = paths_of(self.sim_url)
        self.identity = identity(self.sim_url)
        super().__init__(
            "localhost",
            token="",
            heartbeat=HEARTBEAT,
            connect_timeout=connect_timeout,
            backoff=(0.01, 0.25),
        )
        self.url = url
        self.where = f"the terminal {self.paths.directory}"
        self._host_tg: anyio.abc.TaskGroup | None = None
        self._gateway: TerminalGateway | None = None  # the terminal this process hosts
        self._events: EventSink | None = None  # the sink ``open`` was given
        #: True while this process hosts the terminal.
        self.hosting = False
        #: What puts the home's risk chain in front of the simulator if this program hosts.
        #: The risk layer sets it (``risk.guard.guard_backend`` / ``arm_host``); hosting without
        #: it is refused rather than serving every program with no chain.
        self.host_chain: HomeChain | None = None

    @classmethod
    def from_url(cls, url: str) -> LocalTerminalBackend:
        """Build from a ``sim://`` URL (every simulator option applies to the terminal)."""
        if not isinstance(url, str) or not url.startswith("sim:"):
            raise InvalidArgument(f"not a simulator URL: {url!r} (expected sim://...)")
        return cls(url)

    @asynccontextmanager
    async def open(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        """Attach to (or host) the terminal for the duration of the block."""
        if self.host_chain is None:
            # Any program may end up hosting (now, or on a takeover): one that could not put the
            # home's risk chain in front would serve every attached program without it.
            raise BackendUnavailable(
                f"{self.where}: no risk chain was given for hosting the terminal; open sim:// "
                "through qmtkit.connect, or call qmtkit.risk.guard.arm_host(backend) first"
            )
        self.paths.prepare()
        # A program connecting afresh restarts a terminal that ``qmtkit terminal stop`` ended.
        with suppress(FileNotFoundError):
            self.paths.stopped.unlink()
        self._events = sink
        async with lifetime_tasks() as tg:
            self._host_tg = tg
            try:
                async with super().open(sink) as info:
                    yield info
            finally:
                self._host_tg = None

    def _describe(self, info: BackendInfo) -> BackendInfo:
        return BackendInfo(kind="sim", url=self.url, version=info.version, venue_id=info.venue_id)

    async def _connect(self) -> _Link:
        try:
            link = await super()._connect()
        except _HostedHere:
            gw, sink = self._gateway, self._events
            assert gw is not None and sink is not None
            channel = gw.attach_direct(sink, sink.on_report, getattr(sink, "on_reports", None))
            return _Link(channel, FrameReader(channel), gw.info, answer=channel.request)
        theirs = identity(link.info.url)
        if theirs != self.identity:
            await link.stream.aclose()
            raise TerminalMismatch(
                f"the terminal {self.paths.directory} is running with options {theirs or 'default'}"
                f", this program asks for {self.identity or 'default'}: use the same sim:// "
                "options, another terminal (sim://?terminal=NAME) or a private simulator "
                "(sim://?share=0)"
            )
        return link

    async def _open_stream(self) -> anyio.abc.ByteStream:
        """A stream to the terminal's channel, hosting the terminal first if nobody does."""
        kind = channel_kind()
        delay = 0.002
        while True:
            if self._gateway is not None:  # we host it: no stream, a direct channel
                raise _HostedHere
            if self.paths.stopped.exists():
                raise BackendUnavailable(
                    f"the terminal {self.paths.directory} was stopped (qmtkit terminal stop); "
                    "a program that connects afresh starts it again"
                )
            try:
                stream, self.token = await connect(self.paths, kind)
                return stream
            except (FileNotFoundError, ConnectionRefusedError):
                pass  # nobody hosts it (a dead host may have left its socket behind)
            if await self._try_to_host():
                continue
            await anyio.sleep(delay)  # another program is starting to host: wait for it
            delay = min(delay * 2, 0.05)

    def request_now(self, req: Request) -> Reply | None:
        """An order answered at once when this process hosts the terminal (None: ``request``).

        A gateway serving this terminal (``qmtkit serve --backend sim://``) asks this first,
        in its read callback; attached, every request goes over the channel.
        """
        link = self._link
        if link is not None and type(link.stream) is DirectChannel and self._connected:
            return link.stream.request_now(req)
        return None

    async def _heartbeat_loop(self, link: _Link, dead: Callable[[str], None]) -> None:
        if type(link.stream) is DirectChannel:
            await anyio.sleep_forever()  # in this process: nothing to watch
        await super()._heartbeat_loop(link, dead)

    async def _read_loop(self, link: _Link, dead: Callable[[str], None]) -> None:
        channel = link.stream
        if type(channel) is not DirectChannel:
            return await super()._read_loop(link, dead)
        try:
            await channel.ended.wait()
        finally:
            # Its reports went straight to the client; a later resume starts after them.
            for account_id, last in channel.positions().items():
                self._resume.delivered_up_to(account_id, last)
        dead("the terminal this program hosted stopped")

    async def _try_to_host(self) -> bool:
        """Host the terminal in this process if its lock is free; False if another has it."""
        tg = self._host_tg
        if tg is None:
            return False
        lock = FileLock(
            self.paths.lock,
            what=f"the terminal {self.paths.directory}",
            hint="let that program host it",
        )
        try:
            lock.acquire()
        except JournalLocked:
            return False
        try:
            sim = SimBackend.from_url(self.sim_url)
        except BaseException:
            lock.release()
            raise
        self._gateway = await tg.start(self._host, sim, lock)
        return True

    async def _host(
        self,
        sim: SimBackend,
        lock: FileLock,
        *,
        task_status: TaskStatus[TerminalGateway] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        chain = self.host_chain
        assert chain is not None  # open() refuses a backend no one armed
        self.hosting = True
        try:
            await host_terminal(sim, self.paths, lock, chain=chain, task_status=task_status)
        finally:
            self.hosting = False
            self._gateway = None


class _HostedHere(Exception):
    """This process hosts the terminal: its program takes a direct channel, not a stream."""


__all__ = ["CONNECT_TIMEOUT", "LocalTerminalBackend", "TerminalMismatch"]
