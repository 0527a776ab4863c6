"""The hub behind a gateway: one Backend served to many clients over the gateway's wire.

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
which the client is disconnected with a logged reason (``hub.session``).

Before login a connection may send one frame of at most ``AUTH_MAX_FRAME`` bytes; connections
waiting to log in are capped, failed logins delay the next ones from the same address, and
refusals are logged as a summary line every few seconds (``hub.guard.LoginGuard``).

The hub knows nothing of listening: ``qmtkit serve`` (``gateway.server``) feeds it TCP or TLS
connections, the shared local terminal (``backends.terminal``) Unix-socket ones.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence

import anyio
import anyio.abc
import msgspec
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
from qmtkit.backends.hub.eager import EagerCalls, answer_now_of
from qmtkit.backends.hub.guard import LoginGuard
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.backends.hub.memory import TRIM_AFTER, give_back_freed_memory
from qmtkit.backends.hub.session import (
    DEFAULT_CLIENT_BUDGET,
    AccountState,
    QuoteFeed,
    Session,
    SharedSub,
)
from qmtkit.errors import InvalidArgument, QmtkitError
from qmtkit.models import AccountReport, QuoteBatch
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import (
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
from qmtkit.wire.security import token_matches

# The gateway's log, whichever module writes a line of it.
log = logging.getLogger("qmtkit.gateway.server")

#: Unsent reports a client may have before it is disconnected (it then resumes).
DEFAULT_REPORT_CAP = 100_000
AUTH_TIMEOUT = 10.0
#: The largest login frame accepted: a token, a version and a client name fit in far less.
AUTH_MAX_FRAME = 4096
#: Seconds between two summary lines about refused connections.
REFUSAL_LOG_INTERVAL = 5.0
#: The requests the hub answers itself (in ``handle``), never in a read callback.
_HUB_REQUESTS = (SubscribeQuotes, UnsubscribeQuotes, OpenAccount, CloseAccount)


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
        self._sync_due = anyio.Event()  # set: reports nobody is sending wait to be synced
        self._request_now = answer_now_of(backend)

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
            self._fan_out(report.account_id, recorded[1])

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

    def _fan_out(self, account_id: str, report: msgspec.Raw | AccountReport) -> None:
        """Hand a journaled report (encoded, or not yet) to the clients reading its account."""
        acct = self._accounts.get(account_id)
        if acct is None or not acct.sessions:
            # Nobody will send it soon: ``sync_journal`` writes it once the burst is complete
            # (after this synchronous run of reports), as one unit with the rest of it.
            self._sync_due.set()
            return
        acct.fanout.publish(report)
        self._wake_readers(account_id, acct)

    def _fan_out_many(self, account_id: str, reports: list[AccountReport]) -> None:
        """``_fan_out`` for several reports of one account (not yet encoded), in one go."""
        acct = self._accounts.get(account_id)
        if acct is None or not acct.sessions:
            self._sync_due.set()
            return
        acct.fanout.publish_many(reports)
        self._wake_readers(account_id, acct)

    def _wake_readers(self, account_id: str, acct: AccountState) -> None:
        """Wake each session reading the account; cut off one whose backlog passed the cap."""
        cap = self.report_cap
        for session, consumer in list(acct.sessions.items()):
            if consumer.pending > cap:
                session.kill(
                    f"client too slow: {consumer.pending} unsent reports of account "
                    f"{account_id} exceed the cap of {cap}; it must resume"
                )
            else:
                session.wake()

    async def sync_journal(self) -> None:
        """Hand reports that no client is sending to the OS, one burst at a time."""
        while True:
            await self._sync_due.wait()
            self._sync_due = anyio.Event()
            self.journal.sync()

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

    def answer_now(self, req: Request) -> Reply | None:
        """The reply to ``req`` if the backend gives it without waiting (None: ``handle``).

        The requests the hub multiplexes (subscriptions, accounts) always go to ``handle``.
        """
        if self._request_now is None or isinstance(req, _HUB_REQUESTS):
            return None
        return self._request_now(req)

    def order_answerer(self) -> Callable[[Request], Reply | None] | None:
        """What answers an order at once behind this gateway (None: nothing does).

        ``answer_now`` without its test of the request's kind, for a caller that passes only
        orders (the hub never multiplexes them): the backend's ``request_now``.
        """
        return self._request_now

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
        eager: EagerCalls | None = None
        if type(stream) is FastStream and self._request_now is not None:
            eager = EagerCalls(session, reader, stream, self.answer_now, self.decoder.decode)
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
            if eager is not None:
                eager.close()
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


__all__ = [
    "AUTH_MAX_FRAME",
    "AUTH_TIMEOUT",
    "DEFAULT_REPORT_CAP",
    "REFUSAL_LOG_INTERVAL",
    "Gateway",
]
