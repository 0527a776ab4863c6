"""The gateway: serve one Backend to many remote clients over TCP (optionally TLS).

One backend is shared by every client. Quote subscriptions are multiplexed: equal
``(codes, period)`` subscriptions of different clients share one backend subscription
(reference-counted), and each client keeps its own subscription ids. Account reports are
journaled and fanned out to every client that opened the account; ``OpenAccount(after_seq=N)``
replays the journal from ``N + 1`` so a reconnecting client loses nothing.

Each client has bounded outgoing buffers: quotes use the in-process slow-consumer policy of
``qmtkit.streams.QuoteFanout`` (merge to the latest record per code and count what was merged
away); reports are never dropped, and a client whose unsent reports exceed ``report_cap`` is
disconnected so that it resumes (with ``after_seq``) instead of silently losing any;
replies and control frames are bounded by a byte budget per client (``client_budget``), past
which the client is disconnected with a logged reason (``gateway.session``).

Before login a connection may send one frame of at most ``AUTH_MAX_FRAME`` bytes; connections
waiting to log in are capped, failed logins delay the next ones from the same address, and
refusals are logged as a summary line every few seconds (``gateway.guard.LoginGuard``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import msgspec
from anyio.abc import TaskStatus
from anyio.streams.tls import TLSStream

from qmtkit.backends.base import (
    Backend,
    BackendInfo,
    CloseAccount,
    ConnectionState,
    Ok,
    OpenAccount,
    Reply,
    Request,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.busypoll import parse_spin_us, running_spin_us
from qmtkit.busypoll import run as run_busy_polling
from qmtkit.checks import is_int, positive_int, positive_number
from qmtkit.errors import InvalidArgument, QmtkitError
from qmtkit.gateway.guard import LoginGuard
from qmtkit.gateway.journal import ReportJournal
from qmtkit.gateway.memory import TRIM_AFTER, give_back_freed_memory
from qmtkit.gateway.options import add_arguments
from qmtkit.gateway.session import (
    DEFAULT_CLIENT_BUDGET,
    AccountState,
    QuoteFeed,
    Session,
    SharedSub,
)
from qmtkit.models import AccountReport, QuoteBatch
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.guard import guard_backend
from qmtkit.risk.limits import RiskLimits
from qmtkit.streams import DEFAULT_MAX_RECORDS
from qmtkit.wire.fastio import FastStream, asyncio_running
from qmtkit.wire.protocol import (
    DEFAULT_PORT,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Auth,
    ClientMessage,
    ConnectionEvent,
    ErrorFrame,
    FrameEncoder,
    FrameReader,
    FramingError,
    ReportEvent,
    Welcome,
)
from qmtkit.wire.security import (
    check_token_value,
    generate_token,
    server_tls_context,
    token_matches,
)

log = logging.getLogger(__name__)

#: Unsent reports a client may have before it is disconnected (it then resumes).
DEFAULT_REPORT_CAP = 100_000
AUTH_TIMEOUT = 10.0
#: The largest login frame accepted: a token, a version and a client name fit in far less.
AUTH_MAX_FRAME = 4096
#: Seconds between two summary lines about refused connections.
REFUSAL_LOG_INTERVAL = 5.0


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Gateway:
    """The shared state behind ``serve``: the backend, the sessions, subscriptions and accounts.

    It is the backend's ``EventSink``. Create it through ``serve`` (which returns it via
    ``task_status``) rather than directly.
    """

    def __init__(
        self,
        backend: Backend,
        journal: ReportJournal,
        *,
        token: str | None,
        heartbeat: float,
        timeout: float,
        max_records: int,
        report_cap: int,
        max_frame: int,
        client_budget: int = DEFAULT_CLIENT_BUDGET,
    ) -> None:
        self.backend = backend
        self.journal = journal
        self.token = token
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.max_records = max_records
        self.report_cap = report_cap
        self.max_frame = max_frame
        self.client_budget = client_budget
        self.guard = LoginGuard(interval=REFUSAL_LOG_INTERVAL)
        self.encoder = FrameEncoder(max_frame)
        self.decoder = msgspec.msgpack.Decoder(ClientMessage)
        self.info = BackendInfo(kind="unknown", url="")
        self.address: tuple[str, int] = ("", 0)
        self.sessions: set[Session] = set()
        self._subs_by_key: dict[tuple[str, tuple[str, ...]], SharedSub] = {}
        self._subs_by_gid: dict[int, SharedSub] = {}
        self._next_gid = 1
        self._sub_lock = anyio.Lock()
        self._accounts: dict[str, AccountState] = {}
        # Per account, in this backend lifetime: (last backend seq, still matching the journal).
        self._lifetime: dict[str, tuple[int, bool]] = {}

    @property
    def backend_subscriptions(self) -> int:
        """How many quote subscriptions the gateway holds at the backend."""
        return len(self._subs_by_gid)

    # ------------------------------------------------------------------ EventSink

    def on_quotes(self, batch: QuoteBatch) -> None:
        """Fan a backend quote batch out to the client subscriptions sharing it."""
        shared = self._subs_by_gid.get(batch.sub_id)
        if shared is None or not batch.items:
            return
        shared.fanout.publish(batch.items)
        for session, _ in shared.riders:
            session.wake()

    def on_report(self, report: AccountReport) -> None:
        """Journal a new report under the gateway's seq and fan it out to the account's clients.

        The backend's seq only filters repeats: within this backend lifetime, a seq not above
        the last one seen is a repeat; at the start of a lifetime (the gateway asks the backend
        to replay everything) a report equal to the journaled one with the same backend seq was
        already handed out by an earlier lifetime. The first report that differs, or is beyond
        the journal, ends that comparison: from then on everything is new.
        """
        recorded = self._record(report)
        if recorded is not None:
            self._fan_out(*recorded)

    def _record(self, report: AccountReport) -> tuple[AccountReport, msgspec.Raw] | None:
        """Journal a backend report under the gateway's seq (None: a repeat, dropped)."""
        account_id = report.account_id
        state = self._lifetime.get(account_id)
        if report.seq > 0:
            if state is not None and report.seq <= state[0]:
                return None
            comparing = state is None or state[1]
            if comparing and self.journal.item_at_bseq(account_id, report.seq) == report.item:
                self._lifetime[account_id] = (report.seq, True)
                return None
            self._lifetime[account_id] = (report.seq, False)
        return self.journal.record_encoded(account_id, report.item, report.seq)

    def _fan_out(self, report: AccountReport, raw: msgspec.Raw) -> None:
        """Hand a journaled report (``raw``: encoded) to the clients reading its account."""
        acct = self._accounts.get(report.account_id)
        if acct is None or not acct.sessions:
            self.journal.sync()  # nobody will send it soon: hand it to the OS now
            return
        acct.fanout.publish(raw)
        for session, consumer in list(acct.sessions.items()):
            if consumer.pending > self.report_cap:
                session.kill(
                    f"client too slow: {consumer.pending} unsent reports of account "
                    f"{report.account_id} exceed the cap of {self.report_cap}; it must resume"
                )
            else:
                session.wake()

    def on_connection(self, state: ConnectionState) -> None:
        """Tell every client that the backend lost or regained its venue."""
        for session in self.sessions:
            session.send(ConnectionEvent(state))

    # ------------------------------------------------------------------ requests

    async def handle(self, session: Session, req: Request) -> Reply:
        """Answer one client request; subscription and account requests are multiplexed."""
        if isinstance(req, SubscribeQuotes):
            return await self._subscribe(session, req)
        if isinstance(req, UnsubscribeQuotes):
            return await self._unsubscribe(session, req.sub_id)
        if isinstance(req, OpenAccount):
            return await self._open_account(session, req)
        if isinstance(req, CloseAccount):
            return await self._close_account(session, req.account_id)
        return await self.backend.request(req)

    async def _subscribe(self, session: Session, req: SubscribeQuotes) -> Reply:
        key = (req.period, tuple(sorted(set(req.codes))))
        async with self._sub_lock:
            if req.sub_id in session.quote_feeds:
                raise InvalidArgument(
                    f"subscription id {req.sub_id} is already in use on this connection; "
                    "unsubscribe it first or use another id"
                )
            shared = self._subs_by_key.get(key)
            fresh = shared is None
            if shared is None:
                gid = self._next_gid
                self._next_gid += 1
                shared = SharedSub(gid, key, req.period)
            consumer = shared.fanout.subscribe(self.max_records)
            shared.riders[(session, req.sub_id)] = None
            session.quote_feeds[req.sub_id] = QuoteFeed(shared, consumer)
            if fresh:
                # Registered before asking, so the snapshot the backend pushes at once is kept.
                self._subs_by_key[key] = shared
                self._subs_by_gid[shared.gid] = shared
                try:
                    await self.backend.request(
                        SubscribeQuotes(shared.gid, list(req.codes), req.period)
                    )
                except BaseException:
                    self._subs_by_key.pop(key, None)
                    self._subs_by_gid.pop(shared.gid, None)
                    session.quote_feeds.pop(req.sub_id, None)
                    shared.fanout.close()
                    raise
        return Ok()

    async def _unsubscribe(self, session: Session, sub_id: int) -> Reply:
        async with self._sub_lock:
            feed = session.quote_feeds.pop(sub_id, None)
            if feed is None:
                raise InvalidArgument(
                    f"no quote subscription with id {sub_id} on this connection "
                    f"(open ones: {sorted(session.quote_feeds)})"
                )
            await self._release(session, sub_id, feed)
        return Ok()

    async def _release(self, session: Session, sub_id: int, feed: QuoteFeed) -> None:
        await feed.consumer.aclose()
        shared = feed.shared
        shared.riders.pop((session, sub_id), None)
        if shared.riders:
            return
        self._subs_by_key.pop(shared.key, None)
        self._subs_by_gid.pop(shared.gid, None)
        shared.fanout.close()
        try:
            await self.backend.request(UnsubscribeQuotes(shared.gid))
        except QmtkitError as exc:
            log.warning("gateway: backend refused to unsubscribe %d: %s", shared.gid, exc)

    async def _open_account(self, session: Session, req: OpenAccount) -> Reply:
        acct = await self._backend_account(req)
        # Replay and attach with no await in between: no report can slip through the gap.
        old = acct.sessions.pop(session, None)
        if old is not None:
            await old.aclose()
        for report in self._replay(req.account_id, req.after_seq):
            session.send(ReportEvent(report), budgeted=False)  # bounded by the journal
        acct.sessions[session] = acct.fanout.subscribe()
        session.accounts[req.account_id] = acct
        return acct.reply if acct.reply is not None else Ok()

    def _replay(self, account_id: str, after_seq: int) -> Sequence[AccountReport]:
        """The account's reports a client that saw ``after_seq`` has not seen, in order."""
        return self.journal.since(account_id, after_seq)

    async def _backend_account(self, req: OpenAccount) -> AccountState:
        """The account, opened at the backend once (every report asked for) and journaled."""
        while True:
            acct = self._accounts.get(req.account_id)
            if acct is None:
                acct = AccountState(req.account_id)
                self._accounts[req.account_id] = acct
                try:
                    # Everything is asked for: a backend's numbering may have restarted, and
                    # what the journal already holds is recognised in on_report.
                    acct.reply = await self.backend.request(
                        OpenAccount(req.account_id, req.account_type, after_seq=0)
                    )
                except BaseException as exc:
                    del self._accounts[req.account_id]
                    acct.failed = exc
                    acct.ready.set()
                    raise
                acct.ready.set()
                break
            await acct.ready.wait()
            if acct.failed is None:
                break
        return acct

    async def _close_account(self, session: Session, account_id: str) -> Reply:
        # The backend account stays open: the gateway keeps journaling it for later resumes.
        acct = session.accounts.pop(account_id, None)
        if acct is None:
            raise InvalidArgument(
                f"account {account_id!r} is not open on this connection "
                f"(open ones: {sorted(session.accounts)})"
            )
        consumer = acct.sessions.pop(session, None)
        if consumer is not None:
            await consumer.aclose()
        return Ok()

    # ------------------------------------------------------------------ connections

    async def handle_connection(
        self, stream: anyio.abc.ByteStream, tls: ssl.SSLContext | None = None
    ) -> None:
        """Serve one client connection until it ends (``tls``: handshake first); never raises."""
        peak = 0
        try:
            async with stream:
                peak = await self._serve_client(stream, tls)
        except Exception:
            log.exception("gateway: connection handler failed")
        if peak >= TRIM_AFTER:
            # Its buffers are free now (stream closed, session gone); the heap keeps the pages.
            give_back_freed_memory()

    async def _serve_client(self, stream: anyio.abc.ByteStream, tls: ssl.SSLContext | None) -> int:
        """Serve one connection; returns the most bytes of replies it had queued at once."""
        peer = _peer_name(stream)
        address = peer.rpartition(":")[0] or peer
        guard = self.guard
        # Counted from the first byte: a peer stuck in the TLS handshake holds a login slot.
        refusal = guard.admit(address)
        if refusal is not None:
            if tls is None:  # a TLS peer could not read the reason in clear anyway
                await self._refuse(stream, address, "over the login cap", refusal)
            else:
                self._count_refusal(address, "over the login cap")
            return 0
        deadline = anyio.current_time() + AUTH_TIMEOUT  # handshake and login together
        try:
            if tls is not None:
                kind, wrapped = await _handshake(stream, tls, deadline)
                if wrapped is None:
                    self._count_refusal(address, kind)
                    return 0
                stream = wrapped
            reader = FrameReader(stream, AUTH_MAX_FRAME)  # until logged in: one small frame
            kind, refusal = await self._authenticate(reader, address, deadline)
        finally:
            guard.leave(address)
        if refusal is not None:
            await self._refuse(stream, address, kind, refusal)
            return 0
        reader.max_frame = self.max_frame
        session = Session(self, stream, peer)
        session.send(Welcome(self.info, PROTOCOL_VERSION, self.heartbeat))
        self.sessions.add(session)
        log.info("gateway: %s connected", peer)
        try:
            with session.scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(session.writer)
                    tg.start_soon(session.heartbeat)
                    await session.reader(reader, tg)
                    session.draining = True
                    session.wake()
                    with anyio.move_on_after(1.0):
                        await session.drained.wait()
                    tg.cancel_scope.cancel()
        finally:
            self.sessions.discard(session)
            with anyio.CancelScope(shield=True):
                await self._detach(session)
            log.info("gateway: %s disconnected: %s", peer, session.reason or "closed")
        return session.peak_queued

    async def _refuse(
        self, stream: anyio.abc.ByteStream, address: str, kind: str, refusal: str
    ) -> None:
        """Tell the peer why, count the refusal and log a summary line when one is due."""
        self._count_refusal(address, kind)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await stream.send(self.encoder.encode(ErrorFrame(refusal, fatal=True)))

    def _count_refusal(self, address: str, kind: str) -> None:
        self.guard.refused(address, kind)
        self._log_refusals()

    def _log_refusals(self, *, force: bool = False) -> None:
        line = self.guard.summary(anyio.current_time(), force=force)
        if line is not None:
            log.warning("gateway: %s", line)

    async def log_refusals(self) -> None:
        """Log the refusal summary every few seconds while there is something to say."""
        while True:
            await anyio.sleep(REFUSAL_LOG_INTERVAL)
            self._log_refusals()

    async def _authenticate(
        self, reader: FrameReader, address: str, deadline: float
    ) -> tuple[str, str | None]:
        """``(kind, None)`` if the first frame logs the client in, else ``(kind, why not)``."""
        payload: bytes | None = None
        with anyio.CancelScope(deadline=deadline):
            try:
                payload = await reader.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return "closed before login", "connection closed before authenticating"
            except FramingError as exc:
                return "bad login frame", f"broken framing before authenticating: {exc}"
        if payload is None:
            return "login timeout", f"no Auth frame within {AUTH_TIMEOUT:.0f}s"
        try:
            msg = self.decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return "bad login frame", f"the first frame must be Auth(token=...): {exc}"
        if not isinstance(msg, Auth):
            return (
                "bad login frame",
                f"the first frame must be Auth(token=...), got {type(msg).__name__}",
            )
        if msg.version != PROTOCOL_VERSION:
            return "old protocol", (
                f"protocol version {msg.version} is not supported; this gateway speaks "
                f"{PROTOCOL_VERSION} (upgrade qmtkit on the older side)"
            )
        if self.token is None:
            return "ok", None
        # A failed login from this address makes its next ones wait (doubling, capped).
        delay = self.guard.wait(address, anyio.current_time())
        if delay > 0:
            await anyio.sleep(delay)
        if not msg.token:
            self.guard.failed(address, anyio.current_time())
            return "no token", (
                "authentication failed: no token sent; this gateway needs one "
                "(qmtkit://HOST:PORT?token=... or $QMTKIT_TOKEN)"
            )
        if not token_matches(self.token, msg.token):
            self.guard.failed(address, anyio.current_time())
            return "wrong token", "authentication failed: wrong token"
        self.guard.succeeded(address)
        return "ok", None

    async def _detach(self, session: Session) -> None:
        for acct in list(session.accounts.values()):
            consumer = acct.sessions.pop(session, None)
            if consumer is not None:
                await consumer.aclose()
        session.accounts.clear()
        async with self._sub_lock:
            for sub_id, feed in list(session.quote_feeds.items()):
                with anyio.move_on_after(5.0):
                    await self._release(session, sub_id, feed)
            session.quote_feeds.clear()


async def _handshake(
    stream: anyio.abc.ByteStream, tls: ssl.SSLContext, deadline: float
) -> tuple[str, anyio.abc.ByteStream | None]:
    """The TLS stream over ``stream`` by ``deadline``, or ``(why not, None)``.

    A failed handshake is usually a client without ``tls=1``; it is counted with the other
    refusals (one summary line every few seconds), not logged one line per peer.
    """
    with anyio.CancelScope(deadline=deadline):
        try:
            wrapped = await TLSStream.wrap(
                stream, server_side=True, ssl_context=tls, standard_compatible=False
            )
        except (ssl.SSLError, OSError, anyio.BrokenResourceError, anyio.EndOfStream):
            return "TLS handshake failed (a client without tls=1?)", None
        return "ok", wrapped
    return f"TLS handshake not done within {AUTH_TIMEOUT:.0f}s", None


def _peer_name(stream: anyio.abc.ByteStream) -> str:
    try:
        addr = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except Exception:
        return "unknown peer"
    if isinstance(addr, tuple):
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


async def _serve_fast(listener: anyio.abc.Listener[Any], gw: Gateway) -> None:
    """Accept plain-TCP clients on asyncio as ``FastStream`` links (see ``wire.fastio``)."""
    listeners = getattr(listener, "listeners", [listener])
    async with anyio.create_task_group() as tg:
        for each in listeners:
            tg.start_soon(_accept_fast, each.extra(anyio.abc.SocketAttribute.raw_socket), gw, tg)


async def _accept_fast(sock: socket.socket, gw: Gateway, tg: anyio.abc.TaskGroup) -> None:
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while True:
        try:
            client, _ = await loop.sock_accept(sock)
        except OSError as exc:  # e.g. out of file descriptors: keep serving the others
            log.warning("gateway: accept failed: %r", exc)
            await anyio.sleep(0.1)
            continue
        try:
            stream = await FastStream.accept(client)
        except OSError as exc:
            client.close()
            log.warning("gateway: could not set up an accepted connection: %r", exc)
            continue
        tg.start_soon(gw.handle_connection, stream)


def gateway_home(home: str | Path | None = None) -> Path:
    """The gateway's directory: under ``home``, else ``$QMTKIT_HOME``, else ``~/.qmtkit``."""
    base = home if home is not None else os.environ.get("QMTKIT_HOME") or Path.home() / ".qmtkit"
    return Path(base) / "gateway"


async def serve(
    backend: str | Backend,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    token: str | None = None,
    tls: Any = None,
    insecure_no_token: bool = False,
    home: str | Path | None = None,
    journal: str | Path | None = None,
    heartbeat: float = 5.0,
    timeout: float | None = None,
    max_records: int = DEFAULT_MAX_RECORDS,
    report_cap: int = DEFAULT_REPORT_CAP,
    max_frame: int = MAX_FRAME,
    risk: RiskConfig | RiskLimits | bool | None = None,
    client_budget: int = DEFAULT_CLIENT_BUDGET,
    insecure: bool = False,
    task_status: TaskStatus[Gateway] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``backend`` (a Backend or a backend URL) to remote clients until cancelled.

    Binds ``host:port`` (loopback by default; port 0 picks a free one). Clients must present
    ``token`` (32 characters or more) in their first frame; serving without a token needs
    ``insecure_no_token=True`` and a loopback ``host``; plain TCP (no ``tls``) on any other
    host needs ``insecure=True``. ``client_budget`` bounds the bytes of replies queued for one
    client (see ``gateway.session``).
    ``tls`` is an ``ssl.SSLContext`` or a ``(cert_file, key_file)`` pair. Reports are journaled
    in ``journal`` (default ``<home>/gateway/reports.journal``), which is tied to the backend's
    ``venue_id``: one holding another venue's reports raises ``JournalMismatch``. Heartbeats go
    out every ``heartbeat`` seconds and a client silent for ``timeout`` (default 3 x heartbeat)
    is dropped. Started with ``await task_group.start(serve, ...)`` it hands back the
    ``Gateway`` once listening (``gateway.address`` is the bound address). ``risk`` puts the
    pre-trade risk chain at the venue's side, shared by every client (as ``connect``'s
    ``risk``: ``None`` follows ``<home>/risk.toml``; docs/risk.md).
    """
    if token is None and not insecure_no_token:
        raise InvalidArgument(
            "refusing to serve without a token: pass token=... (or set QMTKIT_TOKEN for "
            "`qmtkit serve`); serving without one needs insecure_no_token=True explicitly"
        )
    if token is not None:
        check_token_value(token)
    if not isinstance(host, str) or not host:
        raise InvalidArgument(f"host must be a non-empty string, got {host!r}")
    if insecure_no_token and not is_loopback(host):
        raise InvalidArgument(
            f"serving without a token is allowed on loopback only (127.0.0.1, ::1), not on "
            f"{host!r}: anyone who can reach it could trade; use a token"
        )
    if not is_loopback(host) and tls is None and not insecure:
        raise InvalidArgument(
            f"refusing plain TCP on {host!r}: tokens and orders would travel in clear; give a "
            "TLS certificate and key, or pass insecure=True (--insecure) on a network you trust"
        )
    if not is_int(port) or not 0 <= port <= 65535:
        raise InvalidArgument(f"port must be an int in 0..65535, got {port!r}")
    positive_number("heartbeat", heartbeat, " of seconds")
    timeout = 3 * heartbeat if timeout is None else timeout
    positive_number("timeout", timeout, " of seconds")
    if timeout <= heartbeat:
        raise InvalidArgument(
            f"timeout ({timeout!r}s) must exceed the heartbeat interval ({heartbeat!r}s)"
        )
    for name, value in (
        ("max_records", max_records),
        ("report_cap", report_cap),
        ("max_frame", max_frame),
        ("client_budget", client_budget),
    ):
        positive_int(name, value)
    if isinstance(tls, tuple):
        tls = server_tls_context(*tls)
    if tls is not None and not hasattr(tls, "wrap_socket"):
        raise InvalidArgument(
            f"tls must be an ssl.SSLContext or a (cert_file, key_file) pair, got {tls!r}"
        )
    if isinstance(backend, str):
        # sim:// is the shared terminal: the gateway hosts it, or attaches to the program that
        # does, so local programs and remote clients trade on one simulator.
        from qmtkit.backends import open_backend

        backend = open_backend(backend)
    elif not isinstance(backend, Backend):
        raise InvalidArgument(f"backend must be a Backend or a backend URL, got {backend!r}")
    # One risk chain at the venue's side: every client of an account shares its budgets.
    backend = guard_backend(backend, risk, home)
    if not is_loopback(host) and tls is None:
        log.warning("gateway: listening on %s without TLS: tokens and orders travel in clear", host)

    path = Path(journal) if journal is not None else gateway_home(home) / "reports.journal"
    with ReportJournal(path) as report_journal:
        gw = Gateway(
            backend,
            report_journal,
            token=token,
            heartbeat=float(heartbeat),
            timeout=float(timeout),
            max_records=max_records,
            report_cap=report_cap,
            max_frame=max_frame,
            client_budget=client_budget,
        )
        async with backend.open(gw) as info:
            # Before anyone listens: another venue's look-alike reports must not pass as replays.
            report_journal.bind_venue(info.venue_id)
            gw.info = info
            raw = await anyio.create_tcp_listener(local_host=host, local_port=port)
            addr = raw.extra(anyio.abc.SocketAttribute.local_address)
            gw.address = (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else (host, port)
            async with raw, anyio.create_task_group() as tg:
                tg.start_soon(gw.log_refusals)
                task_status.started(gw)
                try:
                    if tls is None and asyncio_running():
                        await _serve_fast(raw, gw)
                    else:
                        await raw.serve(partial(gw.handle_connection, tls=tls))
                finally:
                    gw._log_refusals(force=True)


# --------------------------------------------------------------------------- CLI


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    if not isinstance(listen, str) or ":" not in listen:
        raise InvalidArgument(
            f"--listen must be HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT}), got {listen!r}"
        )
    host, _, port_s = listen.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise InvalidArgument(
            f"bad port {port_s!r} in --listen {listen!r}: expected 0..65535"
        ) from None
    if not host or not 0 <= port <= 65535:
        raise InvalidArgument(f"--listen must be HOST:PORT with a port in 0..65535, got {listen!r}")
    return host, port


def serve_main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``qmtkit serve`` until Ctrl-C; returns the process exit code."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="qmtkit serve")
        add_arguments(parser)
        args = parser.parse_args(list(args) if args is not None else None)
    if getattr(args, "gen_token", False):
        print(generate_token())
        return 0
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        host, port = parse_listen(getattr(args, "listen", f"127.0.0.1:{DEFAULT_PORT}"))
        token = getattr(args, "token", None) or os.environ.get("QMTKIT_TOKEN") or None
        cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
        if (cert is None) != (key is None):
            raise InvalidArgument("TLS needs both --tls-cert and --tls-key")
        tls = server_tls_context(cert, key) if cert is not None and key is not None else None
        backend_url = getattr(args, "backend", None)
        insecure = bool(getattr(args, "insecure_no_token", False))
        plain_tcp_ok = bool(getattr(args, "insecure", False))
        client_mb = getattr(args, "client_buffer_mb", DEFAULT_CLIENT_BUDGET >> 20)
        positive_int("--client-buffer-mb", client_mb, " of MiB")
        home = getattr(args, "home", None)
        busy_poll_us = parse_spin_us(getattr(args, "busy_poll", 0), name="--busy-poll")
    except QmtkitError as exc:
        print(f"qmtkit serve: {exc}", file=sys.stderr)
        return 2

    if token is None and not insecure:
        print(
            "qmtkit serve: refusing to serve without a token: pass --token or set QMTKIT_TOKEN "
            "(`qmtkit serve --gen-token` prints a fresh one; --insecure-no-token serves "
            "without one, on loopback only)",
            file=sys.stderr,
        )
        return 2
    announce = _Announce("TLS" if tls is not None else "plain TCP")

    async def main() -> None:
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            if sys.platform != "win32":
                tg.start_soon(_stop_on_signal, tg.cancel_scope)
            try:
                await serve(
                    _with_home(backend_url, home),
                    host,
                    port,
                    token=token,
                    tls=tls,
                    insecure_no_token=insecure,
                    insecure=plain_tcp_ok,
                    client_budget=client_mb << 20,
                    home=home,
                    task_status=announce,
                )
            except Exception as exc:
                # Re-raised outside the task group, so the handlers below see it unwrapped.
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    try:
        run_busy_polling(main, busy_poll_us=busy_poll_us)
    except KeyboardInterrupt:
        print("qmtkit serve: stopped", file=sys.stderr)
    except QmtkitError as exc:
        print(f"qmtkit serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"qmtkit serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    """End the gateway cleanly on Ctrl-C or SIGTERM.

    Handled as a signal inside the loop because Python 3.10's asyncio turns a
    KeyboardInterrupt during ``anyio.run`` into a CancelledError traceback.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            print("qmtkit serve: stopped", file=sys.stderr)
            scope.cancel()
            return


def _with_home(url: str | None, home: str | None) -> str:
    """The backend URL to serve; a simulator shares ``--home`` unless its URL names one."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    from qmtkit.backends.urls import backend_url

    full = backend_url(url)
    parts = urlsplit(full)
    if home is None or parts.scheme != "sim":
        return full
    query = parse_qsl(parts.query)
    if any(k == "home" for k, _ in query):
        return full
    query.append(("home", str(home)))
    return f"sim://{parts.netloc}{parts.path}?{urlencode(query)}"


class _Announce:
    """A task status that prints where the gateway listens once it does."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def started(self, value: Gateway | None = None) -> None:
        if value is not None:
            host, port = value.address
            # Read from the running loop, so the line tells what is in effect.
            spin_us = running_spin_us()
            busy = f", busy-polling {spin_us:g} us" if spin_us > 0 else ""
            print(
                f"qmtkit gateway serving {value.info.kind} ({value.info.url}) on {host}:{port} "
                f"({self.scheme}{busy}); Ctrl-C stops it",
                file=sys.stderr,
            )


__all__ = [
    "DEFAULT_REPORT_CAP",
    "Gateway",
    "add_arguments",
    "gateway_home",
    "parse_listen",
    "serve",
    "serve_main",
]
