"""``RiskGuard``: a Backend in front of another that runs every order and cancel past the rules.

The guard is the one place the risk chain meets a venue. ``connect()`` puts one in front of
its backend when risk limits are configured, and ``qmtkit serve`` puts one at the gateway's
side of its venue, so every client of a gateway shares one engine (and one per-second and
per-day budget) per account. It forwards everything else unchanged, and it is the backend's
event sink in turn: it folds each account report into the account's book before passing it on.

A refused order never reaches the venue: the guard answers ``OrderResponse(order_id=-1,
error_msg="risk:<rule>: ...")`` itself (xtquant's answer for an order refused before it left)
and the client turns that into a junk ``Order`` carrying an ``OrderError``; a refused cancel is
answered ``CancelResponse(cancel_result=-1, error_msg=...)``. Refusals, state changes and flags
are journaled under ``<home>/risk`` by a background task; the same task polls the halt switch
(``qmtkit risk halt``) and ``risk.toml``, so changes reach a running program within a poll.
Changes made through qmtkit (``qmtkit risk set|halt|resume``) also move the home's mark
(``<home>/risk.gen``), which the guard reads before every order and cancel: they apply from
the very next request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio

from qmtkit._tasks import lifetime_tasks
from qmtkit.backends.base import Backend, EventSink
from qmtkit.clock import wall_ms
from qmtkit.constants import OrderStatus, OrderType, PriceType
from qmtkit.errors import InvalidArgument, JournalLocked, QmtkitError
from qmtkit.messages import (
    BackendInfo,
    CancelOrder,
    CancelOrderSysid,
    ConnectionState,
    GetSnapshot,
    Instruments,
    ListInstruments,
    OpenAccount,
    Orders,
    Positions,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    Reply,
    Request,
    Snapshots,
    SubmitOrder,
)
from qmtkit.models import (
    AccountReport,
    Asset,
    CancelResponse,
    OrderResponse,
    QuoteBatch,
)
from qmtkit.risk.config import CONFIG_NAME, RiskConfig, load_config, risk_dir
from qmtkit.risk.engine import RiskEngine, RiskEntry, TradingState, beijing_day
from qmtkit.risk.fastpath import STALE
from qmtkit.risk.generation import GenerationWatch
from qmtkit.risk.journal import (
    HaltSwitch,
    append_entries,
    journal_path,
    read_entries,
    read_switch,
    switch_path,
    write_switch,
)
from qmtkit.risk.limits import RiskLimits
from qmtkit.risk.refusal import Refusal

__all__ = ["RiskGuard", "guard_backend"]

log = logging.getLogger("qmtkit.risk")

_BUY = int(OrderType.STOCK_BUY)
_FIX_PRICE = int(PriceType.FIX_PRICE)
_CANCELED = frozenset({int(OrderStatus.CANCELED), int(OrderStatus.PART_CANCEL)})
_TERMINAL = frozenset(int(s) for s in OrderStatus if s.is_terminal)
#: Entries kept in memory between journal writes; beyond it they are counted, not kept.
_MAX_PENDING = 100_000
_UNKNOWN = object()
_RESTORED = frozenset({TradingState.REDUCING.value, TradingState.HALTED.value})
_BEFORE = " (set before a restart)"
_DAY_MS = 86_400_000
#: A file as last seen: inode, mtime and size (a replaced file has a new inode, so two
#: writes within the file system's clock tick are told apart).
_Stamp = tuple[int, int, int]
#: How long ago a directory's mtime must lie before an unchanged stamp is taken to mean that
#: no entry was made since (ns).
_SETTLED_NS = 3_000_000_000
_UNSEEN = object()


def _drop(report: AccountReport) -> None:
    """Where reports go while the guard has no sink."""


def _wall_clock() -> Callable[[], int]:
    """``wall_ms`` read once, then carried on by the monotonic clock (cheaper per call)."""
    # Wall time in ns at monotonic 0: one addition per reading.
    base = wall_ms() * 1_000_000 - time.monotonic_ns()
    monotonic_ns = time.monotonic_ns

    def now() -> int:
        return (monotonic_ns() + base) // 1_000_000

    return now


class _Relay:
    """The sink a guarded venue pushes into: reports are folded into the books first, quotes
    and connection changes go straight to the client's sink (no extra call per quote batch).

    Until ``fold_with`` (no account has a chain yet) reports go straight on. Several reports
    of one account (one state change) are folded one by one and go on in one call when the
    client's sink takes them so (its ``on_reports``).
    """

    __slots__ = ("_folding", "_many", "_one", "on_connection", "on_quotes", "on_report")

    def __init__(self, sink: EventSink) -> None:
        self.on_quotes = sink.on_quotes
        self.on_connection = sink.on_connection
        self._one: Callable[[AccountReport], None] = sink.on_report
        self._many: Callable[[list[AccountReport]], None] | None = getattr(sink, "on_reports", None)
        self._folding: Callable[[AccountReport], None] | None = None
        self.on_report: Callable[[AccountReport], None] = self._one

    def fold_with(
        self,
        folding: Callable[[AccountReport], None],
        fold_and_pass: Callable[[AccountReport], None],
    ) -> None:
        """From now on fold every report (``folding``; ``fold_and_pass`` for a single one)."""
        self._folding = folding
        self.on_report = fold_and_pass

    def on_reports(self, reports: list[AccountReport]) -> None:
        """Several reports of one account (one state change), in order."""
        folding = self._folding
        if folding is not None:
            for report in reports:
                folding(report)
        many = self._many
        if many is not None:
            many(reports)
            return
        one = self._one
        for report in reports:
            one(report)


class _Account:
    """The guard's per-account state: its engine and when its switch file last changed."""

    __slots__ = (
        "book",
        "engine",
        "fresh_ms",
        "needs_facts",
        "needs_marks",
        "switch_stamp",
        "unprimed",
    )

    def __init__(self, engine: RiskEngine, unprimed: bool) -> None:
        self.engine = engine
        self.book = engine.book
        self.switch_stamp: _Stamp | None = None
        #: The account is open at the venue but its book has not been read from there yet
        #: (a chain made after the account was opened: a new risk.toml): ``_prime`` first.
        self.unprimed = unprimed
        self.needs_marks = False
        self.needs_facts = False
        self.fresh_ms = 0
        self.tune(engine.limits)

    def tune(self, lim: RiskLimits) -> None:
        self.needs_marks = any(
            v is not None
            for v in (
                lim.price_band,
                lim.max_order_notional,
                lim.max_position_value,
                lim.max_position_share,
                lim.max_gross_exposure,
            )
        )
        self.needs_facts = lim.price_within_limits or lim.block_st
        # A last price older than this is fetched again before an order is judged.
        self.fresh_ms = lim.mark_max_age_ms // 2


class RiskGuard:
    """A Backend that runs the risk chain of each account in front of ``inner``.

    ``config`` gives each account's limits (accounts without limits pass straight through);
    ``home`` is where journals, halt switches and ``risk.toml`` live (``watch_config``: reload
    the file when it changes). ``clock`` returns Unix ms; by default the inner backend's own
    clock when it has one (a backtest's virtual clock), else the wall clock.
    """

    def __init__(
        self,
        inner: Backend,
        config: RiskConfig,
        *,
        home: str | os.PathLike[str] | None = None,
        clock: Callable[[], int] | None = None,
        watch_config: bool = False,
        poll_seconds: float = 0.2,
    ) -> None:
        if not isinstance(config, RiskConfig):
            raise InvalidArgument(f"config must be a RiskConfig, got {config!r}")
        self.inner = inner
        self.config = config
        self.home = home
        self.dir = risk_dir(home)
        if clock is None:
            inner_clock = getattr(inner, "clock", None)
            now_ms = getattr(inner_clock, "now_ms", None)
            clock = now_ms if callable(now_ms) else _wall_clock()
        self.clock: Callable[[], int] = clock
        self.watch_config = watch_config
        self.poll_seconds = poll_seconds
        self._accounts: dict[str, _Account | None] = {}
        # Switch-file stamps of the accounts without a chain (a halt there makes one).
        self._idle_stamps: dict[str, _Stamp | None] = {}
        # The risk directory as the last look at every account's switch found it, once settled.
        self._dir_stamp: object = _UNSEEN
        # Accounts opened at the venue through this guard (a chain made later reads them).
        self._open_ids: set[str] = set()
        self._primed: set[str] = set()
        # Accounts halted by a switch found on the order path; housekeeping cancels theirs.
        self._cancel_due: dict[str, None] = {}
        self._sink: EventSink | None = None
        self._pending: list[RiskEntry] = []
        self._lost = 0
        self._config_path = self.dir.parent / CONFIG_NAME
        self._config_stamp = self._stamp(self._config_path)
        #: Why the last change of risk.toml was refused (None: the file in force is read).
        self.config_error: str | None = None
        # The home's mark, read before every request (open while the guard is).
        self._gen: GenerationWatch | None = None
        self._relay: _Relay | None = None
        self._fold = self._folder(_drop)  # until open: reports have no sink to go on to
        self._answer_now: Callable[[Request], Reply | None] | None = getattr(
            inner, "request_now", None
        )
        if self._answer_now is None:
            # A venue that never answers at once: no at-once path here either, so a client
            # (or a gateway) does not ask this guard first on every order only to hear None.
            setattr(self, "request_now", None)  # noqa: B010 - shadows the method on purpose

    # ------------------------------------------------------------------ lifetime

    @property
    def info_kind(self) -> str:
        """What the guard stands in front of."""
        return type(self.inner).__name__

    def open(self, sink: EventSink) -> AbstractAsyncContextManager[BackendInfo]:
        """Open the inner backend with the guard as its sink; journal until closed."""
        return self._open(sink)

    @asynccontextmanager
    async def _open(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        self._sink = sink
        self._gen = GenerationWatch.open(self.dir.parent)
        try:
            # Until some account has a chain, reports have nothing to be folded into: they go
            # straight to the sink (a shared terminal's host keeps a guard with no limits).
            relay = self._relay = _Relay(sink)
            self._refold()
            # lifetime_tasks: the caller's own error comes back to it unwrapped.
            async with self.inner.open(relay) as info, lifetime_tasks() as tg:
                tg.start_soon(self._housekeeping)
                yield info
        finally:
            self._flush()
            self._sink = None
            self._relay = None
            self._refold()
            if self._gen is not None:
                self._gen.close()
                self._gen = None

    async def _housekeeping(self) -> None:
        while True:
            await anyio.sleep(self.poll_seconds)
            self._flush()
            if self._gen is None:  # the home did not exist at open: maybe it does now
                self._gen = GenerationWatch.open(self.dir.parent)
            if self.watch_config:
                self._poll_config()
            for acct in self._scan_switches():
                self._cancel_due[acct] = None
            while self._cancel_due:
                account_id = next(iter(self._cancel_due))
                del self._cancel_due[account_id]
                made = self._accounts.get(account_id)
                if made is not None and made.engine.state is TradingState.HALTED:
                    await self._cancel_all(made)

    def _catch_up(self) -> None:
        """The home's mark moved: read risk.toml and the halt switches now (on the order path,
        so the request being judged is judged by them; cancels of a halt follow in
        housekeeping)."""
        gen = self._gen
        if gen is not None:
            gen.seen = gen.view[0]
        if self.watch_config:
            self._poll_config(force=True)
        for account_id in self._scan_switches(every=True):
            self._cancel_due[account_id] = None

    # ------------------------------------------------------------------ accounts

    def _account(self, account_id: str) -> _Account | None:
        try:
            return self._accounts[account_id]
        except KeyError:
            pass
        limits = self.config.limits_for(account_id)
        path = switch_path(self.dir, account_id)
        stamp = self._stamp(path)
        switch = read_switch(path) if stamp is not None else None
        halted = switch is not None and switch.halted
        acct: _Account | None = None
        if limits is not None or halted:
            # An account without limits still obeys an operator's halt.
            limits = limits if limits is not None else RiskLimits()
            engine = RiskEngine(account_id, limits, self.clock, emit=self._emit)
            # An engine, once made, lives as long as the guard: read from the venue once.
            unprimed = account_id in self._open_ids and account_id not in self._primed
            acct = _Account(engine, unprimed)
            if switch is not None and switch.halted:
                acct.engine.restore_state(TradingState.HALTED, switch.reason, manual=True)
        else:
            self._idle_stamps[account_id] = stamp
        if acct is not None:
            acct.switch_stamp = stamp
        self._accounts[account_id] = acct
        if acct is not None:
            self._refold()  # from now on this account's reports are folded too
        return acct

    def _refold(self) -> None:
        """Fit report folding to the accounts with a chain (none: reports go straight on)."""
        sink = self._sink
        self._fold = self._folder(sink.on_report if sink is not None else _drop)
        relay = self._relay
        if relay is not None and any(acct is not None for acct in self._accounts.values()):
            relay.fold_with(self._folder(None), self._fold)

    def engine(self, account_id: str) -> RiskEngine | None:
        """The engine of ``account_id`` (None if it has no limits)."""
        acct = self._account(account_id)
        return acct.engine if acct is not None else None

    async def _prime(self, account_id: str) -> None:
        """Fold what the venue knows of an account into its book (once per account)."""
        acct = self._account(account_id)
        if acct is None or account_id in self._primed:
            return
        self._primed.add(account_id)
        acct.unprimed = False
        engine, book = acct.engine, acct.engine.book
        now = self.clock()
        try:
            asset = await self.inner.request(QueryAsset(account_id))
            positions = await self.inner.request(QueryPositions(account_id))
            orders = await self.inner.request(QueryOrders(account_id))
        except QmtkitError as exc:
            log.warning("risk: could not read account %s at open: %s", account_id, exc)
            return
        if isinstance(positions, Positions):
            for p in positions.items:
                book.on_position(p)
        if isinstance(orders, Orders):
            for o in orders.items:
                book.on_order(o, now)
            cancels = sum(o.order_status in _CANCELED for o in orders.items)
            engine.restore_flow(len(orders.items), cancels)
            # The venue dates orders to the second, in its own time: a simulator's session time
            # runs apart from the wall clock (a closed day replays the last trading day), so its
            # offset to ours (``session_now``, where the venue has one) places them in ours. Each
            # is taken as sent at the end of its second (not after now), so a restored bucket
            # holds at most what it really has.
            venue_now = getattr(self.inner, "session_now", None)
            shift = now - int(venue_now()) if callable(venue_now) else 0
            engine.restore_sent(
                [
                    (
                        min(o.order_time * 1000 + 999 + shift, now),
                        o.stock_code,
                        o.order_type == _BUY,
                        o.price if o.price_type == _FIX_PRICE else 0.0,
                        o.order_volume,
                    )
                    for o in orders.items
                    if o.order_time > 0
                ]
            )
        if isinstance(asset, Asset):
            book.on_asset(asset)
            engine.observe_asset(asset.total_asset)
        self._restore_state(acct)

    def _restore_state(self, acct: _Account) -> None:
        """A REDUCING or HALTED state a loss limit set today, as the journal last recorded it
        (a guard before a restart or a terminal's takeover): it holds until resumed or the
        day ends, as it would have in the guard that set it. A manual halt is the switch's."""
        engine = acct.engine
        if engine.state is not TradingState.ACTIVE:
            return
        last: RiskEntry | None = None
        try:
            for entry in read_entries(journal_path(self.dir, engine.account_id)):
                if entry.kind == "state" or (entry.kind == "command" and entry.rule == "resume"):
                    last = entry
        except (JournalLocked, OSError, QmtkitError) as exc:
            log.warning("risk: journal of %s not read at open: %s", engine.account_id, exc)
            return
        if (
            last is None
            or last.kind != "state"
            or last.new not in _RESTORED
            or beijing_day(last.at_ms) != beijing_day(self.clock())
        ):
            return
        why = last.message if last.message.endswith(_BEFORE) else last.message + _BEFORE
        engine.restore_state(TradingState(last.new), why, manual=False)

    # ------------------------------------------------------------------ requests

    async def request(self, req: Request) -> Reply:
        """Judge orders and cancels, then forward; everything else goes straight through."""
        if isinstance(req, SubmitOrder):
            # Inline rather than a helper coroutine: this is every order's path.
            gen = self._gen
            if gen is not None and gen.view[0] != gen.seen:
                self._catch_up()
            try:
                acct = self._accounts[req.account_id]
            except KeyError:
                acct = self._account(req.account_id)
            if acct is None:
                return await self.inner.request(req)
            if acct.unprimed:
                await self._prime(req.account_id)
            engine = acct.engine
            refusal = engine.check_request(req, self.clock())
            if refusal is STALE:
                await self._refresh(acct, req.stock_code)
                refusal = engine.check_order(
                    req.stock_code,
                    req.order_type == _BUY,
                    req.order_volume,
                    req.price if req.price_type == _FIX_PRICE else 0.0,
                    self.clock(),
                )
            if refusal is not None:
                return self._refusal_reply(req, refusal)
            sent = engine.last_sent
            if sent is None:
                return await self.inner.request(req)
            try:
                reply = await self.inner.request(req)
            except BaseException:
                acct.book.name(sent, -1)
                raise
            if sent.key < 0:  # else a venue report named it already
                acct.book.name(sent, reply.order_id if isinstance(reply, OrderResponse) else -1)
            return reply
        if isinstance(req, (CancelOrder, CancelOrderSysid)):
            return await self._cancel(req)
        reply = await self.inner.request(req)
        if isinstance(req, OpenAccount):
            self._open_ids.add(req.account_id)
            await self._prime(req.account_id)
        return reply

    def request_now(self, req: Request) -> Reply | None:
        """An order judged and answered at once, if the venue answers it at once (else None).

        For a gateway's read callback (``hub.eager``, the terminal's host): nothing here waits
        or calls anyio. None sends the request the ordinary way (``request``): anything but an
        order, an order whose code needs its facts or last price fetched first, and an order
        the venue does not answer at once (withdrawn from the budgets first, so it is judged
        and counted once, there). A refusal is answered here: no venue is involved.
        """
        answer_now = self._answer_now
        if answer_now is None or type(req) is not SubmitOrder:
            return None
        gen = self._gen
        if gen is not None and gen.view[0] != gen.seen:
            self._catch_up()
        acct = self._accounts.get(req.account_id, _UNKNOWN)
        if acct is _UNKNOWN:
            acct = self._account(req.account_id)
        if not isinstance(acct, _Account):
            reply: Reply | None = answer_now(req)
            return reply
        if acct.unprimed:
            return None
        engine = acct.engine
        refusal = engine.check_request(req, self.clock())
        if refusal is STALE:
            return None
        if refusal is not None:
            return self._refusal_reply(req, refusal)
        sent = engine.last_sent
        try:
            reply = answer_now(req)
        except BaseException:
            if sent is not None:
                acct.book.name(sent, -1)
            raise
        if reply is None:
            price = req.price if req.price_type == _FIX_PRICE else 0.0
            engine.withdraw(req.stock_code, req.order_type == _BUY, req.order_volume, price)
            return None
        if sent is not None and sent.key < 0:  # else a venue report named it already
            acct.book.name(sent, reply.order_id if isinstance(reply, OrderResponse) else -1)
        return reply

    def submit_now(
        self, req: SubmitOrder, send: Callable[[SubmitOrder], OrderResponse]
    ) -> OrderResponse:
        """Judge ``req`` and hand it to ``send`` (a venue's synchronous order path) if let through.

        For a backtest's fast form, which places orders without a round trip: the same rules
        and budgets as ``request``, judged on the book as it stands (no price is fetched).
        """
        gen = self._gen
        if gen is not None and gen.view[0] != gen.seen:
            self._catch_up()
        acct = self._account(req.account_id)
        if acct is None:
            return send(req)
        verdict = self._judge(acct, req)
        if not isinstance(verdict, int):
            return verdict
        try:
            reply = send(req)
        except BaseException:
            acct.engine.placed(verdict, -1)
            raise
        acct.engine.placed(verdict, reply.order_id)
        return reply

    def _judge(
        self, acct: _Account, req: SubmitOrder, now: int | None = None
    ) -> OrderResponse | int:
        """The refusal to answer, or the provisional key of the order let through."""
        price = req.price if req.price_type == _FIX_PRICE else 0.0
        engine = acct.engine
        refusal = engine.check_order(
            req.stock_code, req.order_type == _BUY, req.order_volume, price, now
        )
        if refusal is None:
            return engine.last_key
        return self._refusal_reply(req, refusal)

    def _refusal_reply(self, req: SubmitOrder, refusal: Refusal) -> OrderResponse:
        """The answer to a refused order (the venue never sees it)."""
        record = getattr(self.inner, "record_refusal", None)
        if record is not None:
            # A venue that keeps its own record of orders (a backtest) lists this one too.
            record(req, refusal.message)
        return OrderResponse(
            account_id=req.account_id,
            order_id=-1,
            strategy_name=req.strategy_name,
            order_remark=req.order_remark,
            error_msg=refusal.message,
            seq=req.seq,
        )

    async def _cancel(self, req: CancelOrder | CancelOrderSysid) -> Reply:
        gen = self._gen
        if gen is not None and gen.view[0] != gen.seen:
            self._catch_up()
        acct = self._account(req.account_id)
        if acct is None:
            return await self.inner.request(req)
        if acct.unprimed:
            await self._prime(req.account_id)
        order_id = req.order_id if isinstance(req, CancelOrder) else -1
        refusal = acct.engine.check_cancel(order_id)
        if refusal is not None:
            return CancelResponse(
                account_id=req.account_id,
                cancel_result=-1,
                order_id=order_id,
                order_sysid=req.order_sysid if isinstance(req, CancelOrderSysid) else "",
                seq=req.seq,
                error_msg=refusal.message,
            )
        return await self.inner.request(req)

    async def _refresh(self, acct: _Account, code: str) -> None:
        """Fetch a code's reference facts (once a day) and last price (when stale) if needed."""
        book = acct.engine.book
        now = self.clock()
        if acct.needs_facts and book.facts_day.get(code) != beijing_day(now):
            with contextlib.suppress(QmtkitError):
                reply = await self.inner.request(ListInstruments([code]))
                if isinstance(reply, Instruments):
                    for detail in reply.items:
                        book.set_facts(detail, beijing_day(now))
                book.facts_day[code] = beijing_day(now)
        if acct.needs_marks and now - book.mark_ms.get(code, -_DAY_MS) > acct.fresh_ms:
            with contextlib.suppress(QmtkitError):
                reply = await self.inner.request(GetSnapshot([code]))
                if isinstance(reply, Snapshots):
                    for tick in reply.items:
                        book.set_mark(tick.stock_code, tick.lastPrice, self.clock())

    # ------------------------------------------------------------------ events (EventSink)

    def on_quotes(self, batch: QuoteBatch) -> None:
        """Pass a quote batch on (the venue pushes quotes to the client's sink directly)."""
        if self._sink is not None:
            self._sink.on_quotes(batch)

    def on_report(self, report: AccountReport) -> None:
        """Fold an account report into the account's book, then pass it on."""
        self._fold(report)

    def _folder(
        self, pass_on: Callable[[AccountReport], None] | None
    ) -> Callable[[AccountReport], None]:
        """``on_report``'s work as one closure handing each report to ``pass_on`` (None: fold
        only), what the venue calls for every report: no attribute of the guard per report."""
        clock = self.clock
        chains = [(a, acct) for a, acct in self._accounts.items() if acct is not None]
        if len(chains) == 1:
            # The usual case: the one account's folding is the closure itself.
            account_id, acct = chains[0]
            return acct.book.report_folder(account_id, clock, acct.engine.observe_asset, pass_on)
        folds = {
            a: acct.book.report_folder(a, clock, acct.engine.observe_asset, None)
            for a, acct in chains
        }

        def fold(report: AccountReport) -> None:
            fold_one = folds.get(report.account_id)
            if fold_one is not None:
                fold_one(report)
            if pass_on is not None:
                pass_on(report)

        return fold

    def on_connection(self, state: ConnectionState) -> None:
        """Pass a connection change on."""
        if self._sink is not None:
            self._sink.on_connection(state)

    # ------------------------------------------------------------------ operator

    def state(self, account_id: str) -> TradingState | None:
        """The trading state of ``account_id`` (None: no limits, no risk chain)."""
        engine = self.engine(account_id)
        return engine.state if engine is not None else None

    async def halt(self, account_id: str, reason: str = "halted by hand") -> int:
        """The kill switch: halt the account and cancel every open order; returns cancels sent.

        The halt is written to the account's switch file, so it holds across restarts and in
        every process watching the same home until ``resume``.
        """
        path = switch_path(self.dir, account_id)
        write_switch(path, HaltSwitch(halted=True, reason=reason, at_ms=self.clock()))
        acct = self._accounts.get(account_id)
        if acct is None:
            self._accounts.pop(account_id, None)  # judged again: the switch now says halted
            acct = self._account(account_id)
            assert acct is not None
        else:
            acct.switch_stamp = self._stamp(path)
        acct.engine.halt(reason)
        return await self._cancel_all(acct)

    async def resume(self, account_id: str, reason: str = "resumed by hand") -> None:
        """Lift a halt (manual or by loss limits): back to ACTIVE."""
        path = switch_path(self.dir, account_id)
        write_switch(path, HaltSwitch(halted=False, reason=reason, at_ms=self.clock()))
        acct = self._account(account_id)
        if acct is not None:
            acct.switch_stamp = self._stamp(path)
            acct.engine.resume(reason)

    async def _cancel_all(self, acct: _Account) -> int:
        engine = acct.engine
        account_id = engine.account_id
        ids = {k for k in engine.book.open if k > 0}
        with contextlib.suppress(QmtkitError):
            reply = await self.inner.request(QueryOrders(account_id, cancelable_only=True))
            if isinstance(reply, Orders):
                ids |= {o.order_id for o in reply.items if o.order_status not in _TERMINAL}
        sent = 0
        for order_id in sorted(ids):
            try:
                await self.inner.request(CancelOrder(account_id=account_id, order_id=order_id))
            except QmtkitError as exc:
                log.warning("risk: kill switch could not cancel %d: %s", order_id, exc)
                continue
            engine.count_cancel(engine.book.open.get(order_id))
            sent += 1
        return sent

    # ------------------------------------------------------------------ journal and polling

    def _emit(self, entry: RiskEntry) -> None:
        if entry.kind != "refused":
            log.warning("%s %s: %s", entry.account_id, entry.kind, entry.message)
        if len(self._pending) < _MAX_PENDING:
            self._pending.append(entry)
        else:
            self._lost += 1

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self._lost:
            last = pending[-1]
            pending.append(
                RiskEntry(
                    at_ms=last.at_ms,
                    account_id=last.account_id,
                    kind="flag",
                    rule="journal",
                    value=str(self._lost),
                    message=f"risk journal: {self._lost} entries were not kept (over "
                    f"{_MAX_PENDING} between two writes)",
                )
            )
            self._lost = 0
        by_account: dict[str, list[RiskEntry]] = {}
        for e in pending:
            by_account.setdefault(e.account_id, []).append(e)
        for account_id, entries in by_account.items():
            try:
                append_entries(journal_path(self.dir, account_id), entries)
            except JournalLocked:
                self._pending[:0] = entries  # another writer holds it: next time
            except OSError as exc:
                log.error("risk journal of %s not written: %s", account_id, exc)

    @staticmethod
    def _stamp(path: Path) -> _Stamp | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _scan_switches(self, *, every: bool = False) -> list[str]:
        """Apply the halt switches that changed; returns the accounts just halted (whose open
        orders are to be cancelled).

        While the risk directory is as it was at a look long enough ago (``_SETTLED_NS``),
        only the accounts that had a switch file then are looked at: a switch file made
        since (written whole and renamed in, as ``write_switch`` does, or copied in) is a
        new entry, which changes the directory. ``every``: look at every account anyway.
        """
        dir_stamp = self._stamp(self.dir)
        # A stamp is trusted only once no write can still share its mtime (file-system clocks
        # tick coarsely: up to 2 s on FAT); until then every account is looked at.
        settled = dir_stamp is None or dir_stamp[1] <= time.time_ns() - _SETTLED_NS
        if every or not settled or dir_stamp != self._dir_stamp:
            every = True
            self._dir_stamp = dir_stamp if settled else _UNSEEN
        halted: list[str] = []
        for account_id, acct in list(self._accounts.items()):
            if acct is None:
                if not every and self._idle_stamps.get(account_id) is None:
                    continue  # no switch file then, and none made since
                idle = switch_path(self.dir, account_id)
                if self._stamp(idle) != self._idle_stamps.get(account_id):
                    del self._accounts[account_id]  # judged again, switch included
                    made = self._account(account_id)
                    if made is not None and made.engine.state is TradingState.HALTED:
                        halted.append(account_id)
                continue
            if not every and acct.switch_stamp is None:
                continue
            path = switch_path(self.dir, account_id)
            stamp = self._stamp(path)
            if stamp == acct.switch_stamp:
                continue
            acct.switch_stamp = stamp
            switch = read_switch(path)
            if switch is None:
                continue
            engine = acct.engine
            if switch.halted and not (engine.manual and engine.state is TradingState.HALTED):
                engine.halt(switch.reason)
                halted.append(account_id)
            elif not switch.halted and engine.state is not TradingState.ACTIVE:
                engine.resume(switch.reason)
        return halted

    def _poll_config(self, *, force: bool = False) -> None:
        """Read risk.toml if it changed (``force``: the home's mark moved, read it anyway).

        A file that does not load is refused as a whole: the limits in force stay, and why is
        logged, journaled for every account with a chain and kept in ``config_error``.
        """
        stamp = self._stamp(self._config_path)
        if stamp == self._config_stamp and not force:
            return
        self._config_stamp = stamp
        try:
            config = load_config(self.dir.parent)
        except InvalidArgument as exc:
            message = f"{exc}; the limits in force are kept"
            if message != self.config_error:
                self._refuse_config(message)
            return
        self.config_error = None
        config = config if config is not None else RiskConfig()
        if config != self.config:
            self.reconfigure(config)

    def _refuse_config(self, message: str) -> None:
        self.config_error = message
        log.error("risk: %s", message)
        now = self.clock()
        for account_id, acct in self._accounts.items():
            if acct is not None:
                self._pending.append(
                    RiskEntry(
                        at_ms=now,
                        account_id=account_id,
                        kind="flag",
                        rule="config",
                        message=f"risk:config: {message}",
                    )
                )

    def reconfigure(self, config: RiskConfig) -> None:
        """Apply new limits to every account now (their books and today's counts are kept)."""
        self.config = config
        for account_id, acct in list(self._accounts.items()):
            limits = config.limits_for(account_id)
            if acct is None:
                del self._accounts[account_id]  # judged again on next use
            elif limits is None:
                acct.engine.reconfigure(RiskLimits())
                acct.tune(acct.engine.limits)
            else:
                acct.engine.reconfigure(limits)
                acct.tune(limits)


def home_chain(venue: Backend, home: Path) -> Backend:
    """The home's own chain (``<home>/risk.toml``, followed as it changes, and its halt switches)
    in front of ``venue``: what a shared terminal's host puts in front of its simulator.

    Always a guard, even before the home has limits, so a risk.toml written after the host
    started applies from the next order (an account without limits costs the guard one
    dictionary read per order, and reports pass it by until some account has a chain).
    """
    return guard_backend(venue, None, home, always=True)


def arm_host(backend: Backend) -> None:
    """Give a shared ``sim://`` terminal backend the home's chain to run if it comes to host.

    The terminal lives in the backends layer, below risk, so it is handed the chain rather than
    importing it; it refuses to open unarmed. Every other backend is left as it is.
    """
    # A terminal backend exists only once its module is imported: any other backend is told
    # apart without importing it (its import was ~40 ms of a process's first backtest).
    module = sys.modules.get("qmtkit.backends.terminal.backend")
    if module is not None and isinstance(backend, module.LocalTerminalBackend):
        backend.host_chain = home_chain


def guard_backend(
    backend: Backend,
    risk: RiskConfig | RiskLimits | bool | None,
    home: str | os.PathLike[str] | None,
    *,
    always: bool = False,
) -> Backend:
    """``backend`` behind a ``RiskGuard`` if risk limits apply, else ``backend`` itself.

    ``risk``: a ``RiskConfig``; ``RiskLimits`` for every account; ``None`` to read
    ``<home>/risk.toml`` (and follow its changes); ``False`` for no risk chain. ``always``
    (with ``None``): a guard even when the home has no limits yet, following the home from
    then on (a shared terminal's host, which must obey a ``risk.toml`` written later).

    A backend whose venue runs the home's chain itself (``home_risk_at_venue``: the shared
    ``sim://`` terminal, whose host judges every attached program's orders) gets no second
    chain for ``None`` or ``True``: the host is the one authority, and its budgets are the
    account's across every program. Limits given in code still make a chain of the program's
    own, judged before the host's.
    """
    arm_host(backend)
    if risk is False or isinstance(backend, RiskGuard):
        return backend
    if (risk is None or risk is True) and getattr(backend, "home_risk_at_venue", False):
        return backend
    watch = False
    if risk is None or risk is True:
        config = load_config(home)
        if config is None:
            # No limits, but once `qmtkit risk` was used here its halt switches must hold.
            if risk is None and not always and not risk_dir(home).is_dir():
                return backend
            config = RiskConfig()
        watch = True
    elif isinstance(risk, RiskLimits):
        config = RiskConfig(default=risk)
    elif isinstance(risk, RiskConfig):
        config = risk
    else:
        raise InvalidArgument(
            f"risk must be a RiskConfig, RiskLimits, None (read <home>/risk.toml) or False, "
            f"got {risk!r}"
        )
    return RiskGuard(backend, config, home=home, watch_config=watch)
