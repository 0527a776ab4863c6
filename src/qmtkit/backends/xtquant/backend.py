"""``xtquant://<userdata_mini path>?session=N``: MiniQMT through the real xtquant package.

The adapter runs where MiniQMT runs (Windows). xtquant is imported only inside ``open()``, so
qmtkit imports everywhere. Blocking xtquant calls run in worker threads; xtquant's callbacks
(on its own threads) are converted to qmtkit models there and handed to the event loop through
a ``LoopInbox`` in arrival order. Per account, reports are numbered (``seq``) and pushes
re-sent after a reconnect are dropped by ``qmtkit._resume.Resume``, which also holds what a
reconnect restores; the order id of each submission is found from whichever of MiniQMT's
answers comes first (``OrderReconciler``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import ntpath
import os
import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import anyio
from anyio.abc import TaskGroup

from qmtkit._resume import Backoff, Resume
from qmtkit._tasks import lifetime_tasks
from qmtkit.backends.base import (
    AccountInfos,
    AccountStatuses,
    BackendInfo,
    CancelOrder,
    CancelOrderSysid,
    CloseAccount,
    ConnectionState,
    Dividends,
    EventSink,
    FetchDividends,
    FetchHistory,
    GetCalendar,
    GetSectorMembers,
    GetSnapshot,
    Hello,
    Instruments,
    ListInstruments,
    ListSectors,
    Names,
    Ok,
    OpenAccount,
    Orders,
    Positions,
    QueryAccountInfos,
    QueryAccountStatus,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    QueryTrades,
    Reply,
    Request,
    Snapshots,
    SubmitOrder,
    SubscribeQuotes,
    Trades,
    UnsubscribeQuotes,
    VenueCalendar,
)
from qmtkit.backends.xtquant.convert import (
    account_info_of,
    account_status_of,
    asset_of,
    dividends_of,
    history_columns,
    instrument_of,
    many,
    ms_to_xt_time,
    order_of,
    position_of,
    quote_items,
    tick_of,
    trade_of,
)
from qmtkit.backends.xtquant.inbox import LoopInbox
from qmtkit.backends.xtquant.relay import RelayTargets, relay_class
from qmtkit.backends.xtquant.reports import OrderReconciler
from qmtkit.backends.xtquant.url import (
    INSTALL_HINT,
    MAX_SESSION,
    check_session,
    connect_error_message,
    parse_url,
)
from qmtkit.checks import (
    check_order,
    is_int,
    non_negative_int,
    positive_int,
    positive_number,
)
from qmtkit.codes import normalize_code, normalize_codes, parse_period
from qmtkit.constants import AccountType
from qmtkit.data.schema import BACKEND_PERIODS
from qmtkit.errors import (
    BackendError,
    BackendUnavailable,
    ClosedError,
    InvalidArgument,
    InvalidPeriod,
)
from qmtkit.models import (
    CancelResponse,
    InstrumentDetail,
    Order,
    OrderError,
    OrderResponse,
    QuoteBatch,
    Tick,
    TradeReportItem,
)

log = logging.getLogger("qmtkit.backends.xtquant")

T = TypeVar("T")

#: Sectors whose union is "every instrument" for ``ListInstruments(codes=None)``.
WHOLE_MARKET_SECTORS: Final = ("沪深A股", "京市A股", "沪深ETF", "沪深指数")
#: Markets a whole-market tick subscription asks for.
WHOLE_MARKET: Final = ("SH", "SZ", "BJ")
_MARKETS: Final = {0: "SH", 1: "SZ", 2: "BJ"}
# --------------------------------------------------------------------------- internals


@dataclass
class _Xt:
    """The imported xtquant modules."""

    xttrader: Any
    xttype: Any
    xtdata: Any
    version: str


def _import_xtquant() -> _Xt:
    try:
        pkg = importlib.import_module("xtquant")
        xttrader = importlib.import_module("xtquant.xttrader")
        xttype = importlib.import_module("xtquant.xttype")
        xtdata = importlib.import_module("xtquant.xtdata")
    except ImportError as exc:
        raise BackendUnavailable(f"cannot import xtquant ({exc}): {INSTALL_HINT}") from exc
    return _Xt(xttrader, xttype, xtdata, str(getattr(pkg, "__version__", "")))


@dataclass
class _QuoteSub:
    sub_id: int
    codes: list[str]
    period: str
    xt_seqs: list[int] = field(default_factory=list)
    token: int = 0


class _CancelWaits:
    """Cancel answers by xtquant seq; an answer may arrive before its seq is known."""

    def __init__(self) -> None:
        self.events: dict[int, anyio.Event] = {}
        self.values: dict[int, CancelResponse | str] = {}
        self.early: dict[int, CancelResponse] = {}

    def bind(self, seq: int) -> anyio.Event:
        ev = anyio.Event()
        self.events[seq] = ev
        early = self.early.pop(seq, None)
        if early is not None:
            self.values[seq] = early
            ev.set()
        return ev

    def deliver(self, resp: CancelResponse) -> None:
        ev = self.events.get(resp.seq)
        if ev is None:
            if len(self.early) < 10_000:
                self.early[resp.seq] = resp
            return
        self.values[resp.seq] = resp
        ev.set()

    def fail_all(self, reason: str) -> None:
        for seq, ev in self.events.items():
            self.values.setdefault(seq, reason)
            ev.set()
        self.early.clear()

    def take(self, seq: int) -> CancelResponse | str | None:
        self.events.pop(seq, None)
        return self.values.pop(seq, None)


# --------------------------------------------------------------------------- the backend


class XtQuantBackend:
    """The ``Backend`` in front of a MiniQMT terminal, through xtquant.

    ``path`` is the terminal's ``userdata_mini`` folder; ``session`` the xtquant session id
    (default: a random one). ``reconnect_delay``/``reconnect_max_delay`` pace reconnection
    attempts (doubling), ``response_timeout`` bounds the wait for MiniQMT's answer to an order
    or cancel request.
    """

    kind: Final = "xtquant"

    def __init__(
        self,
        path: str,
        session: int | None = None,
        *,
        url: str | None = None,
        reconnect_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        response_timeout: float = 10.0,
    ) -> None:
        if not isinstance(path, str) or not path.strip("/\\ "):
            raise InvalidArgument(
                f"bad userdata_mini path {path!r}: give the folder, e.g. 'D:\\qmt\\userdata_mini'"
            )
        if session is not None:
            session = check_session(session, "session")
        for name, value in (
            ("reconnect_delay", reconnect_delay),
            ("reconnect_max_delay", reconnect_max_delay),
            ("response_timeout", response_timeout),
        ):
            positive_number(name, value, " of seconds")
        self._path = path
        self._session = session if session is not None else random.randint(100_000, 999_999_999)
        self._url = url or f"xtquant://{path}?session={self._session}"
        self._response_timeout = float(response_timeout)
        self._used_sessions: set[int] = set()
        self._opened = False
        self._live = False
        self._closing = False
        self._xt: _Xt | None = None
        self._callback_cls: type[Any] | None = None
        self._sink: EventSink | None = None
        self._inbox: LoopInbox | None = None
        self._tg: TaskGroup | None = None
        self._reconnect_wanted: Any = None  # an anyio.Event, made on the loop in open()
        self._trader: Any = None
        self._gen = 0
        self._connected = False
        #: Open accounts, quote subscriptions, report numbering and the reconnect pace.
        self._resume: Resume[_QuoteSub] = Resume(Backoff(reconnect_delay, reconnect_max_delay))
        self._recon = OrderReconciler()
        self._order_waits: dict[int, anyio.Event] = {}
        self._cancels = _CancelWaits()
        self._sub_tokens = 0
        self._trader_lock = anyio.CapacityLimiter(1)

    @classmethod
    def from_url(cls, url: str) -> XtQuantBackend:
        """Build (not start) from ``xtquant://<userdata_mini path>?session=N``."""
        path, session = parse_url(url)
        return cls(path, session, url=url)

    @property
    def path(self) -> str:
        """The ``userdata_mini`` folder."""
        return self._path

    @property
    def session(self) -> int:
        """The session id of the current (or next) connection."""
        return self._session

    @property
    def connected(self) -> bool:
        """True while the trading link to MiniQMT is up."""
        return self._connected

    # ----------------------------------------------------------------- lifetime

    @asynccontextmanager
    async def _lifetime(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        if self._opened:
            raise ClosedError("this XtQuantBackend was already opened; build a new one per open()")
        self._opened = True
        xt = _import_xtquant()
        self._xt = xt
        self._callback_cls = relay_class(xt.xttrader.XtQuantTraderCallback)
        self._sink = sink
        self._inbox = LoopInbox.for_current_loop()
        self._live = True
        try:
            # Shielded: a trader connected while we were being cancelled must still be stopped.
            with anyio.CancelScope(shield=True):
                trader, result = await anyio.to_thread.run_sync(self._make_trader, self._session, 0)
            if result != 0:
                raise BackendUnavailable(connect_error_message(self._path, self._session, result))
            self._trader, self._connected = trader, True
            async with lifetime_tasks(self._end_tasks) as tg:
                self._tg = tg
                self._reconnect_wanted = anyio.Event()
                tg.start_soon(self._supervise)
                yield BackendInfo(
                    kind=self.kind,
                    url=self._url,
                    version=xt.version,
                    venue_id=_venue_id(self._path),
                )
        finally:
            self._closing = True
            self._live = False
            self._tg = None
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            self._inbox.close()

    def _end_tasks(self, tg: anyio.abc.TaskGroup) -> None:
        self._closing = True
        tg.cancel_scope.cancel()

    def open(self, sink: EventSink) -> Any:
        """Import xtquant, connect to MiniQMT and serve until the context exits."""
        return self._lifetime(sink)

    async def _shutdown(self) -> None:
        xtdata = self._xtm().xtdata
        seqs = [s for sub in self._resume.drop_subscriptions() for s in sub.xt_seqs]
        trader, self._trader = self._trader, None
        self._connected = False
        self._recon.fail_all("the xtquant backend was closed")
        self._cancels.fail_all("the xtquant backend was closed")
        self._wake_all()

        def stop() -> None:
            for seq in seqs:
                _quietly(xtdata.unsubscribe_quote, seq)
            if trader is not None:
                _quietly(trader.stop)

        await anyio.to_thread.run_sync(stop)

    def _make_trader(self, session: int, gen: int) -> tuple[Any, int]:
        """Create, start and connect a trader (worker thread); a failed one is stopped."""
        xt = self._xtm()
        assert self._callback_cls is not None
        self._used_sessions.add(session)
        trader = xt.xttrader.XtQuantTrader(self._path, session)
        trader.register_callback(
            self._callback_cls(
                RelayTargets(
                    post=self._post,
                    item=functools.partial(self._on_item, gen),
                    disconnected=functools.partial(self._on_disconnected, gen),
                    order_response=functools.partial(self._on_order_response, gen),
                    cancel_response=functools.partial(self._on_cancel_response, gen),
                )
            )
        )
        trader.start()
        result = trader.connect()
        if result != 0:
            _quietly(trader.stop)
        return trader, result

    def _xtm(self) -> _Xt:
        if self._xt is None:
            raise ClosedError(
                "the xtquant backend is not open: use it inside `async with backend.open(sink)`"
            )
        return self._xt

    # ----------------------------------------------------------------- thread hand-off

    def _post(self, fn: Callable[..., object], *args: Any) -> None:
        inbox = self._inbox
        if inbox is not None:
            inbox.post(fn, *args)

    def _on_item(self, gen: int, item: TradeReportItem, xt_seq: int | None) -> None:
        if gen != self._gen or self._sink is None:
            return
        woken: list[int] = []
        if isinstance(item, Order):
            woken = self._recon.on_order_push(item)
        elif isinstance(item, OrderError):
            woken = self._recon.on_order_error(item, xt_seq)
        report = self._resume.number(item)
        if self._resume.is_open(item.account_id) and self._resume.take(report):
            self._sink.on_report(report)
        self._wake(woken)

    def _on_order_response(self, gen: int, resp: OrderResponse) -> None:
        if gen == self._gen:
            self._wake(self._recon.on_response(resp))

    def _on_cancel_response(self, gen: int, resp: CancelResponse) -> None:
        if gen == self._gen:
            self._cancels.deliver(resp)

    def _on_quotes(self, sub_id: int, token: int, batch: QuoteBatch) -> None:
        sub = self._resume.subscription(sub_id)
        if sub is not None and sub.token == token and self._sink is not None:
            self._sink.on_quotes(batch)

    def _on_disconnected(self, gen: int) -> None:
        if gen != self._gen or not self._connected or self._closing or self._tg is None:
            return
        self._connected = False
        reason = f"MiniQMT dropped the xtquant link (session {self._session}); reconnecting"
        self._recon.fail_all(reason)
        self._cancels.fail_all(reason)
        self._wake_all()
        if self._sink is not None:
            self._sink.on_connection(ConnectionState(connected=False, reason=reason))
        # A plain loop callback cannot start tasks; the supervisor task does it.
        self._reconnect_wanted.set()

    def _wake(self, tokens: list[int]) -> None:
        for token in tokens:
            ev = self._order_waits.get(token)
            if ev is not None:
                ev.set()

    def _wake_all(self) -> None:
        for ev in self._order_waits.values():
            ev.set()

    # ----------------------------------------------------------------- reconnection

    def _fresh_session(self) -> int:
        candidate = self._session
        while candidate in self._used_sessions:
            candidate = candidate % MAX_SESSION + 1
        return candidate

    async def _supervise(self) -> None:
        """Reconnect each time the link drops, until the backend closes."""
        while True:
            await self._reconnect_wanted.wait()
            self._reconnect_wanted = anyio.Event()
            await self._reconnect()

    async def _reconnect(self) -> None:
        """New session id, start, connect; then resubscribe accounts and quotes. Retries forever."""
        old, self._trader = self._trader, None
        if old is not None:
            with anyio.CancelScope(shield=True):  # a cancel must not skip the stop
                await anyio.to_thread.run_sync(_quietly, old.stop)
        while True:
            session = self._fresh_session()
            self._gen += 1
            try:
                if await self._reconnect_once(session, self._gen):
                    break
            except Exception:
                log.exception("xtquant reconnect with session %s failed", session)
            await anyio.sleep(self._resume.next_delay())
        self._resume.link_restored()
        self._connected = True
        if self._sink is not None:
            self._sink.on_connection(
                ConnectionState(
                    connected=True, reason=f"reconnected to MiniQMT with session {self._session}"
                )
            )

    async def _reconnect_once(self, session: int, gen: int) -> bool:
        with anyio.CancelScope(shield=True):  # never lose a connected trader to a cancel
            trader, result = await anyio.to_thread.run_sync(self._make_trader, session, gen)
        if result != 0:
            log.warning("xtquant reconnect with session %s: connect() returned %r", session, result)
            return False
        self._trader, self._session = trader, session

        # A refusal here is not final (MiniQMT may still be logging the account in): it fails
        # this attempt and the next one, with a fresh session, tries again.
        async def reopen(req: OpenAccount) -> bool:
            account = self._account(req.account_id, req.account_type)
            result = await self._call(trader.subscribe, account)
            if result != 0:
                raise BackendError(f"resubscribing account {req.account_id} returned {result!r}")
            return True

        async def resubscribe(sub: _QuoteSub) -> bool:
            await self._resubscribe(sub)
            return True

        try:
            await self._resume.restore(reopen, resubscribe)
        except BaseException:
            self._trader = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_quietly, trader.stop)
            raise
        return True

    # ----------------------------------------------------------------- requests

    async def request(self, req: Request) -> Reply:
        """Answer one request (see ``qmtkit.backends.base``)."""
        if not self._live:
            raise ClosedError(
                "the xtquant backend is not open: send requests inside "
                "`async with backend.open(sink)`"
            )
        match req:
            case Hello():
                return await self._hello(req)
            case ListInstruments():
                return await self._list_instruments(req)
            case GetSnapshot():
                return await self._snapshot(req)
            case FetchHistory():
                return await self._fetch_history(req)
            case FetchDividends():
                return await self._dividends(req)
            case ListSectors():
                return await self._sectors(req)
            case GetSectorMembers():
                return await self._sector_members(req)
            case GetCalendar():
                return await self._calendar(req)
            case SubscribeQuotes():
                return await self._subscribe(req)
            case UnsubscribeQuotes():
                return await self._unsubscribe(req)
            case OpenAccount():
                return await self._open_account(req)
            case CloseAccount():
                return await self._close_account(req)
            case SubmitOrder():
                return await self._submit(req)
            case CancelOrder():
                return await self._cancel(req)
            case CancelOrderSysid():
                return await self._cancel_sysid(req)
            case QueryAsset():
                return await self._query_asset(req)
            case QueryOrders():
                return await self._query_orders(req)
            case QueryTrades():
                return await self._query_trades(req)
            case QueryPositions():
                return await self._query_positions(req)
            case QueryAccountInfos():
                return await self._query_infos(req)
            case QueryAccountStatus():
                return await self._query_status(req)
            case _:
                raise InvalidArgument(f"not a backend request: {req!r}")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """A trader call in a worker thread, one at a time so requests reach MiniQMT in order."""
        return await anyio.to_thread.run_sync(
            functools.partial(fn, *args), limiter=self._trader_lock
        )

    async def _data(self, fn: Callable[..., T], *args: Any) -> T:
        """An xtdata call in a worker thread."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args))

    def _account(self, account_id: str, account_type: int | None = None) -> Any:
        if account_type is None:
            account_type = self._resume.account_type(account_id) or int(AccountType.STOCK)
        return self._xtm().xttype.StockAccount(account_id, AccountType(account_type).name)

    def _live_trader(self) -> Any:
        if not self._connected or self._trader is None:
            raise BackendUnavailable(
                "the MiniQMT trading link is down (qmtkit is reconnecting with a new session id); "
                "retry after ConnectionState(connected=True)"
            )
        return self._trader

    async def _hello(self, req: Hello) -> Reply:
        return BackendInfo(
            kind=self.kind,
            url=self._url,
            version=self._xtm().version,
            venue_id=_venue_id(self._path),
        )

    async def _list_instruments(self, req: ListInstruments) -> Reply:
        codes = None if req.codes is None else normalize_codes(req.codes)
        xtdata = self._xtm().xtdata

        def run() -> list[InstrumentDetail]:
            wanted = codes
            if wanted is None:
                seen: dict[str, None] = {}
                for sector in WHOLE_MARKET_SECTORS:
                    for code in xtdata.get_stock_list_in_sector(sector) or []:
                        seen[str(code)] = None
                wanted = list(seen)
            out = []
            for code in wanted:
                detail = xtdata.get_instrument_detail(code)
                inst = instrument_of(detail) if detail else None
                if inst is not None:
                    out.append(inst)
            return out

        return Instruments(items=await self._data(run))

    async def _snapshot(self, req: GetSnapshot) -> Reply:
        codes = normalize_codes(req.codes)
        if not codes:
            return Snapshots(items=[])
        full = await self._data(self._xtm().xtdata.get_full_tick, codes) or {}
        items: list[Tick] = [tick_of(c, full[c]) for c in codes if full.get(c)]
        return Snapshots(items=items)

    async def _fetch_history(self, req: FetchHistory) -> Reply:
        code = normalize_code(req.code)
        if req.period not in BACKEND_PERIODS:
            raise InvalidPeriod(
                f"bad period {req.period!r} for FetchHistory: the cache stores "
                f"{', '.join(BACKEND_PERIODS)}; other periods are derived from them"
            )
        for name, value in (("start", req.start), ("end", req.end)):
            if not is_int(value) or value < 0:
                raise InvalidArgument(
                    f"{name} must be Unix milliseconds >= 0 (0: unbounded), got {value!r}"
                )
        if req.start and req.end and req.end < req.start:
            raise InvalidArgument(f"end {req.end} is before start {req.start}")
        xtdata = self._xtm().xtdata
        start, end = ms_to_xt_time(req.start), ms_to_xt_time(req.end)

        def run() -> Any:
            xtdata.download_history_data(code, req.period, start, end)
            data = xtdata.get_market_data_ex(
                [], [code], req.period, start, end, -1, dividend_type="none"
            )
            return data.get(code) if data else None

        frame = await self._data(run)
        return history_columns(code, req.period, frame, req.start, req.end)

    async def _dividends(self, req: FetchDividends) -> Reply:
        code = normalize_code(req.code)
        frame = await self._data(self._xtm().xtdata.get_divid_factors, code)
        return Dividends(code=code, items=dividends_of(frame))

    async def _sectors(self, req: ListSectors) -> Reply:
        names = await self._data(self._xtm().xtdata.get_sector_list) or []
        return Names(items=[str(n) for n in names])

    async def _sector_members(self, req: GetSectorMembers) -> Reply:
        if not isinstance(req.sector, str) or not req.sector:
            raise InvalidArgument(
                f"sector must be a non-empty name such as '沪深A股', got {req.sector!r}"
            )
        codes = await self._data(self._xtm().xtdata.get_stock_list_in_sector, req.sector) or []
        return Names(items=[str(c) for c in codes])

    async def _calendar(self, req: GetCalendar) -> Reply:
        xtdata = self._xtm().xtdata

        def run() -> VenueCalendar:
            # xtquant raises plain Exception when its holiday list was never downloaded.
            try:
                days = xtdata.get_trading_calendar("SH") or []
                holidays = xtdata.get_holidays() or []
            except Exception as exc:
                log.info("MiniQMT has no trading calendar to give (%s)", exc)
                return VenueCalendar()
            return VenueCalendar([int(d) for d in days], [int(h) for h in holidays])

        return await self._data(run)

    # ----------------------------------------------------------------- quotes

    async def _subscribe(self, req: SubscribeQuotes) -> Reply:
        if not is_int(req.sub_id) or self._resume.subscription(req.sub_id) is not None:
            raise InvalidArgument(
                f"sub_id {req.sub_id!r} is already in use or not an int; pick a new one"
            )
        codes = normalize_codes(req.codes)
        period = parse_period(req.period).name
        if not codes and period != "tick":
            raise InvalidArgument(
                f"a whole-market subscription (no codes) pushes ticks only, not {period!r}: "
                "use period='tick' or list the codes"
            )
        sub = _QuoteSub(req.sub_id, codes, period)
        self._resume.subscribed(req.sub_id, sub)
        try:
            await self._resubscribe(sub)
        except BaseException:
            self._resume.unsubscribed(req.sub_id)
            raise
        return Ok()

    async def _resubscribe(self, sub: _QuoteSub) -> None:
        """(Re)make the xtdata subscriptions of ``sub``; pushes of older ones are ignored."""
        xtdata = self._xtm().xtdata
        old, sub.xt_seqs = sub.xt_seqs, []
        self._sub_tokens += 1
        sub.token = token = self._sub_tokens
        callback = self._quote_callback(sub.sub_id, token, sub.period)

        def run() -> list[int]:
            for seq in old:
                _quietly(xtdata.unsubscribe_quote, seq)
            made: list[int] = []
            try:
                if sub.period == "tick":
                    targets = sub.codes or list(WHOLE_MARKET)
                    made.append(
                        _check_seq(
                            xtdata.subscribe_whole_quote(targets, callback=callback),
                            "subscribe_whole_quote",
                            targets,
                        )
                    )
                else:
                    for code in sub.codes:
                        made.append(
                            _check_seq(
                                xtdata.subscribe_quote(
                                    code, period=sub.period, count=0, callback=callback
                                ),
                                "subscribe_quote",
                                code,
                            )
                        )
            except BaseException:
                for seq in made:
                    _quietly(xtdata.unsubscribe_quote, seq)
                raise
            return made

        sub.xt_seqs = await self._data(run)

    def _quote_callback(self, sub_id: int, token: int, period: str) -> Callable[[Any], None]:
        def on_data(datas: Any) -> None:  # on xtdata's thread
            try:
                items = quote_items(datas, period)
            except Exception:
                log.exception("cannot convert xtdata quote push for subscription %s", sub_id)
                return
            if items:
                self._post(self._on_quotes, sub_id, token, QuoteBatch(sub_id, period, items))

        return on_data

    async def _unsubscribe(self, req: UnsubscribeQuotes) -> Reply:
        sub = self._resume.unsubscribed(req.sub_id)
        if sub is None:
            raise InvalidArgument(f"no quote subscription with sub_id {req.sub_id!r}")
        xtdata = self._xtm().xtdata

        def run() -> None:
            for seq in sub.xt_seqs:
                _quietly(xtdata.unsubscribe_quote, seq)

        await self._data(run)
        return Ok()

    # ----------------------------------------------------------------- accounts

    @staticmethod
    def _check_account(account_id: object) -> str:
        if not isinstance(account_id, str) or not account_id.strip():
            raise InvalidArgument(
                f"account_id must be a non-empty string such as '1000000365', got {account_id!r}"
            )
        return account_id

    async def _open_account(self, req: OpenAccount) -> Reply:
        account_id = self._check_account(req.account_id)
        try:
            account_type = int(AccountType(req.account_type))
        except ValueError:
            raise InvalidArgument(
                f"unknown account_type {req.account_type!r}: expected one of "
                + ", ".join(f"{t.value} ({t.name})" for t in AccountType)
            ) from None
        non_negative_int("after_seq", req.after_seq)
        if not self._resume.is_open(account_id):
            trader = self._live_trader()
            result = await self._call(trader.subscribe, self._account(account_id, account_type))
            if result != 0:
                raise BackendError(
                    f"MiniQMT refused to subscribe account {account_id!r} (subscribe returned "
                    f"{result!r}): check the account id and that the account is logged in in "
                    "the terminal"
                )
        # Reports numbered while subscribing are replayed here; live delivery starts after.
        assert self._sink is not None
        for report in self._resume.replay(account_id, req.after_seq):
            self._sink.on_report(report)
        self._resume.opened(account_id, account_type)
        return Ok()

    async def _close_account(self, req: CloseAccount) -> Reply:
        account_id = self._check_account(req.account_id)
        account_type = self._resume.closed(account_id)
        if account_type is not None and self._connected and self._trader is not None:
            await self._call(self._trader.unsubscribe, self._account(account_id, account_type))
        return Ok()

    # ----------------------------------------------------------------- orders

    @staticmethod
    def _check_order(req: SubmitOrder) -> str:
        code = normalize_code(req.stock_code)
        check_order(
            req.order_type,
            req.order_volume,
            req.price_type,
            req.price,
            req.strategy_name,
            req.order_remark,
        )
        return code

    async def _submit(self, req: SubmitOrder) -> Reply:
        account_id = self._check_account(req.account_id)
        code = self._check_order(req)
        trader = self._live_trader()
        token = self._recon.begin(req)
        resolved = self._order_waits[token] = anyio.Event()
        try:
            seq = await self._call(
                trader.order_stock_async,
                self._account(account_id),
                code,
                req.order_type,
                req.order_volume,
                req.price_type,
                float(req.price),
                req.strategy_name,
                req.order_remark,
            )
            if not isinstance(seq, int) or seq <= 0:
                raise BackendError(
                    f"MiniQMT did not take the order (order_stock_async returned {seq!r}) for "
                    f"{account_id} {code}; check the account is logged in and trading is allowed"
                )
            self._wake(self._recon.bind_seq(token, seq))
            with anyio.move_on_after(self._response_timeout):
                await resolved.wait()
            outcome = self._recon.outcome(token)
            if outcome is None:
                raise BackendError(
                    f"MiniQMT did not answer order request seq {seq} ({account_id} {code}) within "
                    f"{self._response_timeout:g}s; the order may still exist - query the orders"
                )
            if outcome.failure:
                raise BackendUnavailable(
                    f"{outcome.failure}; the order ({account_id} {code}) may or may not have been "
                    "placed - query the orders after reconnection"
                )
            return OrderResponse(
                account_type=self._resume.account_type(account_id) or int(AccountType.STOCK),
                account_id=account_id,
                order_id=outcome.order_id,
                strategy_name=req.strategy_name,
                order_remark=req.order_remark,
                error_msg=outcome.error_msg,
                seq=req.seq,
            )
        finally:
            self._order_waits.pop(token, None)
            self._recon.finish(token)

    async def _await_cancel(self, seq: object, what: str, req_seq: int) -> CancelResponse:
        if not isinstance(seq, int) or seq <= 0:
            raise BackendError(f"MiniQMT did not take the cancel of {what} (returned {seq!r})")
        ev = self._cancels.bind(seq)
        with anyio.move_on_after(self._response_timeout):
            await ev.wait()
        value = self._cancels.take(seq)
        if value is None:
            raise BackendError(
                f"MiniQMT did not answer the cancel of {what} within {self._response_timeout:g}s; "
                "query the order to see its state"
            )
        if isinstance(value, str):
            raise BackendUnavailable(f"{value}; the cancel of {what} may or may not have been sent")
        return CancelResponse(
            account_type=value.account_type,
            account_id=value.account_id,
            cancel_result=value.cancel_result,
            order_id=value.order_id,
            order_sysid=value.order_sysid,
            seq=req_seq,
            error_msg=value.error_msg,
        )

    async def _cancel(self, req: CancelOrder) -> Reply:
        account_id = self._check_account(req.account_id)
        positive_int("order_id", req.order_id, " from an order")
        trader = self._live_trader()
        seq = await self._call(
            trader.cancel_order_stock_async, self._account(account_id), req.order_id
        )
        return await self._await_cancel(seq, f"order {req.order_id}", req.seq)

    async def _cancel_sysid(self, req: CancelOrderSysid) -> Reply:
        account_id = self._check_account(req.account_id)
        market = _MARKETS.get(req.market) if isinstance(req.market, int) else None
        if market is None:
            raise InvalidArgument(f"bad market {req.market!r}: expected 0 (SH), 1 (SZ) or 2 (BJ)")
        if not isinstance(req.order_sysid, str) or not req.order_sysid:
            raise InvalidArgument(
                f"order_sysid must be the venue's order number as a string, got {req.order_sysid!r}"
            )
        trader = self._live_trader()
        seq = await self._call(
            trader.cancel_order_stock_sysid_async,
            self._account(account_id),
            market,
            req.order_sysid,
        )
        return await self._await_cancel(seq, f"order_sysid {req.order_sysid} on {market}", req.seq)

    # ----------------------------------------------------------------- queries

    async def _query_asset(self, req: QueryAsset) -> Reply:
        account_id = self._check_account(req.account_id)
        raw = await self._call(self._live_trader().query_stock_asset, self._account(account_id))
        if raw is None:
            raise BackendError(
                f"MiniQMT returned no asset for account {account_id!r}: check the account id "
                "and that it is logged in in the terminal"
            )
        return asset_of(raw)

    async def _query_orders(self, req: QueryOrders) -> Reply:
        account_id = self._check_account(req.account_id)
        raw = await self._call(
            self._live_trader().query_stock_orders,
            self._account(account_id),
            bool(req.cancelable_only),
        )
        return Orders(items=many(order_of, raw))

    async def _query_trades(self, req: QueryTrades) -> Reply:
        account_id = self._check_account(req.account_id)
        raw = await self._call(self._live_trader().query_stock_trades, self._account(account_id))
        return Trades(items=many(trade_of, raw))

    async def _query_positions(self, req: QueryPositions) -> Reply:
        account_id = self._check_account(req.account_id)
        raw = await self._call(self._live_trader().query_stock_positions, self._account(account_id))
        return Positions(items=many(position_of, raw))

    async def _query_infos(self, req: QueryAccountInfos) -> Reply:
        raw = await self._call(self._live_trader().query_account_infos)
        return AccountInfos(items=many(account_info_of, raw))

    async def _query_status(self, req: QueryAccountStatus) -> Reply:
        raw = await self._call(self._live_trader().query_account_status)
        return AccountStatuses(items=many(account_status_of, raw))


def _check_seq(seq: object, what: str, target: object) -> int:
    if not isinstance(seq, int) or seq <= 0:
        raise BackendError(
            f"xtdata.{what}({target!r}) returned {seq!r}: the quote subscription was refused; "
            "check the code and that MiniQMT is connected to its quote server"
        )
    return seq


def _venue_id(path: str) -> str:
    """``xtquant:`` + the absolute, normalized ``userdata_mini`` folder (one terminal's history)."""
    if os.name == "nt" or re.match(r"^([A-Za-z]:|\\\\)", path):
        # Windows folders (also when spelled on another OS) ignore case and slash direction.
        return "xtquant:" + ntpath.normcase(ntpath.abspath(path))
    return "xtquant:" + os.path.normpath(os.path.abspath(path))


def _quietly(fn: Callable[..., object], *args: Any) -> None:
    """Best-effort cleanup call: a failure is logged, never raised."""
    try:
        fn(*args)
    except Exception:
        log.warning("xtquant cleanup call %r failed", fn, exc_info=True)


__all__ = ["INSTALL_HINT", "XtQuantBackend", "connect_error_message", "parse_url"]
