"""The async client: ``connect``, quote subscriptions, accounts and order handles.

    async with qmtkit.connect() as qk:              # sim:// unless told otherwise
        async with qk.subscribe(["600000.SH"]) as sub:
            async for ticks in sub: ...
        acct = await qk.account("demo")
        order = await (await acct.buy("600000.SH", 100, 10.5))

Everything above the Backend seam lives here once: sharing one backend subscription between many
consumers, per-consumer back-pressure, ordered report streams and order reconciliation. The
client is the backend's ``EventSink``; it runs on one event loop and every public method must be
called from that loop, inside the ``connect`` context.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import msgspec
from anyio.abc import TaskGroup

from qmtkit._resume import ReportCursor
from qmtkit._tasks import lifetime_tasks
from qmtkit.backends import backend_url, open_backend
from qmtkit.backends.base import (
    AccountInfos,
    AccountStatuses,
    Backend,
    BackendInfo,
    CancelOrder,
    CancelOrderSysid,
    ConnectionState,
    GetSectorMembers,
    GetSnapshot,
    Instruments,
    ListInstruments,
    ListSectors,
    Names,
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
    expect,
)
from qmtkit.checks import (
    ORDER_TYPES,
    PRICE_TYPES,
    check_order,
    is_finite,
    is_int,
    non_negative_int,
    positive_int,
)
from qmtkit.clock import wall_ms
from qmtkit.codes import normalize_code, normalize_codes, parse_period
from qmtkit.constants import AccountType, OrderStatus, OrderType, PriceType
from qmtkit.errors import BackendError, ClosedError, InvalidArgument, QmtkitError
from qmtkit.models import (
    AccountInfo,
    AccountReport,
    AccountStatus,
    Asset,
    Bar,
    CancelError,
    CancelResponse,
    InstrumentDetail,
    Order,
    OrderError,
    OrderResponse,
    Position,
    QuoteBatch,
    Tick,
    Trade,
)
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.guard import RiskGuard, guard_backend
from qmtkit.risk.limits import RiskLimits
from qmtkit.risk.refusal import error_id_of
from qmtkit.streams import (
    DEFAULT_MAX_RECORDS,
    EventMaker,
    QuoteConsumer,
    QuoteFanout,
    ReportConsumer,
    ReportFanout,
)

if TYPE_CHECKING:
    from qmtkit.data.api import MarketData

#: The reports that belong to one order (what ``OrderHandle.events()`` yields).
OrderEvent = Order | Trade | OrderError | CancelError
Quote = Tick | Bar

_WHOLE_MARKET = ("all", "*", "")
log = logging.getLogger("qmtkit.client")


def _check_max_records(max_records: object) -> int:
    return positive_int(
        "max_records",
        max_records,
        " (records a slow consumer may buffer before they are merged to the latest per code)",
    )


# --------------------------------------------------------------------------- quotes


class _SharedQuotes:
    """One backend subscription, shared by every consumer of the same (codes, period)."""

    __slots__ = ("codes", "fanout", "key", "period", "refs", "sub_id")

    def __init__(
        self, sub_id: int, key: tuple[frozenset[str], str], codes: list[str], period: str
    ) -> None:
        self.sub_id = sub_id
        self.key = key
        self.codes = codes
        self.period = period
        self.fanout: QuoteFanout[Quote] = QuoteFanout()
        self.refs = 0


class Subscription:
    """A stream of quote batches (``list[Tick]`` or ``list[Bar]``) for some codes and a period.

    Use it as an async context manager, then iterate it::

        async with qk.subscribe(["600000.SH"], "1m") as sub:
            async for bars in sub:
                ...

    Iterating it without ``async with`` also works; the subscription then ends when the loop
    is left through an exception or cancellation, or when ``aclose()`` is called, or when the
    client closes. ``dropped`` counts records merged away because this consumer was slow (see
    ``qmtkit.streams.QuoteFanout`` for the policy). Consumers of the same codes and period share
    one backend subscription.
    """

    def __init__(self, client: Client, codes: list[str], period: str, max_records: int) -> None:
        self._client = client
        self.codes = codes
        self.period = period
        self.max_records = max_records
        self._shared: _SharedQuotes | None = None
        self._consumer: QuoteConsumer[Quote] | None = None
        self._ended = False

    @property
    def dropped(self) -> int:
        """Records merged away so far because this consumer fell behind."""
        return self._consumer.dropped if self._consumer is not None else 0

    @property
    def pending(self) -> int:
        """Records buffered for this consumer and not yet read."""
        return self._consumer.pending if self._consumer is not None else 0

    @property
    def sub_id(self) -> int | None:
        """The backend subscription id this consumer shares (None before it starts)."""
        return self._shared.sub_id if self._shared is not None else None

    async def _start(self) -> QuoteConsumer[Quote]:
        if self._consumer is not None:
            return self._consumer
        if self._ended:
            raise ClosedError("this subscription was closed; call qk.subscribe(...) again")
        shared, consumer = await self._client._join_quotes(
            self.codes, self.period, self.max_records
        )
        self._shared, self._consumer = shared, consumer
        return consumer

    async def __aenter__(self) -> Subscription:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> list[Quote]:
        consumer = self._consumer if self._consumer is not None else await self._start()
        try:
            return await consumer.__anext__()
        except BaseException:
            # The consumer detached itself (end, cancellation or failure): give the share back.
            self._release(wait=False)
            raise

    def _release(self, *, wait: bool) -> int | None:
        self._ended = True
        shared, self._shared = self._shared, None
        if self._consumer is not None:
            self._consumer._detach()
        if shared is None:
            return None
        return self._client._leave_quotes(shared, spawn=not wait)

    async def aclose(self) -> None:
        """Leave the stream; the backend subscription ends when its last consumer leaves."""
        sub_id = self._release(wait=True)
        if sub_id is not None:
            with anyio.CancelScope(shield=True):
                await self._client._unsubscribe(sub_id)


# --------------------------------------------------------------------------- orders


class OrderHandle:
    """One order placed through this client: its id, its latest state and its reports.

    ``await handle`` (or ``await handle.wait()``) returns the final ``Order`` once it reaches a
    terminal status (53, 54, 56 or 57); a refused order comes back with status 57 and ``error``
    set to the ``OrderError`` (made from the order's ``status_msg`` if the venue's own
    ``OrderError`` has not arrived yet; the venue's replaces it when it does). ``events()``
    yields the order's own reports from its creation, whichever came first: the reply or the
    reports.
    """

    # Slots: a backtest makes one handle per order, most dropped at once; no instance dict
    # to make and free (a small part of a handle's cost: ~4.2 k -> ~4.0 k instructions).
    __slots__ = (
        "__weakref__",
        "_changed",
        "_closed",
        "_events",
        "account",
        "cancel_errors",
        "error",
        "order",
        "order_id",
        "request",
        "response",
        "trades",
    )

    def __init__(
        self,
        account: Account,
        request: SubmitOrder,
        response: OrderResponse,
        first: Order | None = None,
    ) -> None:
        self.account = account
        self.request = request
        self.response = response
        self.order_id = response.order_id
        self.trades: list[Trade] = []
        self.error: OrderError | None = None
        self.cancel_errors: list[CancelError] = []
        self._events: list[OrderEvent]
        if first is not None:
            # The venue's first state of the order, already here (not a refusal): it is the
            # order's state and first event, as _on_item would make it, with no stand-in made.
            self.order = first
            self._events = [first]
        else:
            self.order = Order(
                account_type=account.account_type,
                account_id=request.account_id,
                stock_code=request.stock_code,
                order_id=response.order_id,
                order_type=request.order_type,
                order_volume=request.order_volume,
                price_type=request.price_type,
                price=request.price,
                order_status=_UNREPORTED,
                strategy_name=request.strategy_name,
                order_remark=request.order_remark,
                offset_flag=48 if request.order_type == _BUY else 49,
            )
            self._events = []
        # Made only when someone waits: most handles are awaited once, or never.
        self._changed: anyio.Event | None = None
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"OrderHandle(order_id={self.order_id}, code={self.order.stock_code!r}, "
            f"status={self.order.order_status})"
        )

    @property
    def done(self) -> bool:
        """True once the order is in a terminal status."""
        return _is_terminal(self.order.order_status)

    @property
    def traded_volume(self) -> int:
        """Shares filled so far, from the fills seen."""
        return sum(t.traded_volume for t in self.trades)

    def _reject(self, err: OrderError) -> None:
        self.error = err
        if self.done:
            self.order = msgspec.structs.replace(self.order, error=err)
        else:
            self.order = msgspec.structs.replace(
                self.order,
                order_status=_JUNK,
                status_msg=err.error_msg or self.order.status_msg,
                error=err,
            )

    def _on_item(self, item: OrderEvent) -> None:
        if isinstance(item, Order):
            # Once final, only another final state may replace it (a late push never revives it).
            terminal = _TERMINAL_VALUES
            if self.order.order_status not in terminal or item.order_status in terminal:
                if item.error is None and item.order_status == _JUNK:
                    if self.error is None:
                        # The venue's OrderError may follow; until then the status message
                        # stands in, so a refused order never comes back without its reason.
                        self.error = OrderError(
                            account_type=item.account_type,
                            account_id=item.account_id,
                            order_id=item.order_id,
                            error_msg=item.status_msg or "the venue refused the order",
                            strategy_name=item.strategy_name,
                            order_remark=item.order_remark,
                        )
                    item = msgspec.structs.replace(item, error=self.error)
                self.order = item
        elif isinstance(item, Trade):
            self.trades.append(item)
        elif isinstance(item, OrderError):
            self._reject(item)
        else:
            self.cancel_errors.append(item)
        self._events.append(item)
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def _next_change(self) -> anyio.Event:
        if self._changed is None:
            self._changed = self.account._new_event()
        return self._changed

    def _close(self) -> None:
        self._closed = True
        self._notify()

    def _finished(self) -> bool:
        # Fills may be pushed after the terminal Order; the story is complete when they are in.
        return self.done and self.traded_volume >= self.order.traded_volume

    async def wait(self) -> Order:
        """Wait for a terminal status and return the final ``Order``."""
        while not self.done and not self._closed:
            await self._next_change().wait()
        if not self.done:
            raise ClosedError(
                f"the client closed before order {self.order_id} reached a final status "
                f"(last status {self.order.order_status})"
            )
        return self.order

    def __await__(self) -> Generator[Any, None, Order]:
        order = self.order
        if order.order_status in _TERMINAL_VALUES:
            # Final already (a venue that answers at once has filled it): no coroutine to run.
            return order
        return (yield from self.wait().__await__())

    async def events(self) -> AsyncIterator[OrderEvent]:
        """This order's own Order/Trade/OrderError/CancelError reports, from its creation.

        The iteration ends once the order is final and all its fills are in, or the client
        closes.
        """
        i = 0
        while True:
            while i < len(self._events):
                item = self._events[i]
                i += 1
                yield item
            if self._finished() or self._closed:
                return
            await self._next_change().wait()

    async def cancel(self) -> CancelResponse:
        """Ask the venue to cancel this order (the outcome arrives as reports)."""
        return await self.account.cancel(self)


class _HandleRef(weakref.ref[OrderHandle]):
    """A weak reference to an order handle that knows its order id (for its callback)."""

    __slots__ = ("order_id",)
    order_id: int


def _forgetter(handles: dict[int, _HandleRef]) -> Callable[[_HandleRef], None]:
    """The callback that drops a collected handle's entry from ``handles`` (unless a newer
    handle took the id meanwhile); one per account, so an order makes no callback object."""

    def forget(ref: _HandleRef) -> None:
        order_id = ref.order_id
        if handles.get(order_id) is ref:
            del handles[order_id]

    return forget


def _is_terminal(code: int) -> bool:
    return code in _TERMINAL_VALUES


_TERMINAL_VALUES = frozenset(int(s) for s in OrderStatus if s.is_terminal)
# Plain ints of the enum members an order's round trip compares against on every report.
_UNREPORTED = int(OrderStatus.UNREPORTED)
_JUNK = int(OrderStatus.JUNK)
_BUY = int(OrderType.STOCK_BUY)
_SELL = int(OrderType.STOCK_SELL)
_FIX_PRICE = int(PriceType.FIX_PRICE)
_LATEST_PRICE = int(PriceType.LATEST_PRICE)
_ORDER_EVENTS = (Order, Trade, OrderError, CancelError)
#: Report items that belong to no order (most of a fill's reports).
_STATE_ITEMS = frozenset((Asset, Position))
_INF = float("inf")

#: The canonical text of codes orders were placed with, by the text given: a dict lookup
#: instead of a call per order (valid codes only; emptied when full).
_CANONICAL: dict[str, str] = {}
_CANONICAL_MAX = 1 << 14


def _remember_code(given: str, canonical: str) -> None:
    if len(_CANONICAL) >= _CANONICAL_MAX:
        _CANONICAL.clear()
    _CANONICAL[given] = canonical


# --------------------------------------------------------------------------- accounts


class Account:
    """A trading account: orders, cancels, queries and its ordered report stream.

    Get one with ``await qk.account(account_id)``. Methods check their arguments before anything
    is sent: a bad code, volume, price or type raises ``InvalidArgument``/``InvalidCode`` naming the
    value. Venue rules (lots, limits, cash, T+1, unknown listings) are the venue's to judge: such
    an order is refused through the report stream and its handle resolves to status 57.
    """

    def __init__(self, client: Client, account_id: str, account_type: AccountType) -> None:
        self.client = client
        self.account_id = account_id
        self.account_type = account_type
        self._cursor = ReportCursor()
        self._fanout: ReportFanout[AccountReport] = ReportFanout()
        # order id -> a weak reference to its handle (a plain dict of weak references:
        # WeakValueDictionary's Python-level get and KeyedRef cost ~2 µs of every order)
        self._handles: dict[int, _HandleRef] = {}
        self._forget = _forgetter(self._handles)
        # Reports for order ids not known yet, kept only while a submit awaits its reply.
        self._early: dict[int, list[OrderEvent]] = {}
        self._inflight = 0
        self._listeners: tuple[Callable[[AccountReport], None], ...] = ()
        #: Makes the events its order handles wait on (one backend lookup for all of them).
        self._new_event = EventMaker()
        # The venue's ``follow_state`` once the account is open (None: it has none).
        self._follow: Callable[[str, bool], None] | None = None

    def __repr__(self) -> str:
        return f"Account({self.account_id!r}, {self.account_type.name})"

    # ----------------------------------------------------------------- reports

    def reports(self) -> ReportConsumer[AccountReport]:
        """Every report of this account from now on, in order, never dropped.

        An async iterator and async context manager; each call makes an independent consumer.
        """
        self.client._check_open()
        return self._fanout.subscribe()

    @property
    def report_consumers(self) -> int:
        """How many report consumers are attached."""
        return self._fanout.consumers

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the last report this account delivered (0: none yet)."""
        return self._cursor.last

    def add_listener(self, listener: Callable[[AccountReport], None]) -> None:
        """Call ``listener(report)`` for every report from now on, in order, as it arrives.

        For bridges that hand reports on at once (the xtquant shim's callback thread): it runs
        on the event loop's thread inside the delivery, so it must be quick and never block.
        An exception it raises is logged and does not stop the delivery.
        """
        if not callable(listener):
            raise InvalidArgument(f"listener must be callable, got {listener!r}")
        self._listeners = (*self._listeners, listener)
        self._readers_changed()

    def remove_listener(self, listener: Callable[[AccountReport], None]) -> None:
        """Stop calling ``listener`` (a listener not added is ignored)."""
        self._listeners = tuple(f for f in self._listeners if f != listener)
        self._readers_changed()

    def _followed(self, follow: Callable[[str, bool], None] | None) -> None:
        """The account is open: from now on tell ``follow`` whether anyone reads its stream."""
        self._follow = follow
        if follow is not None:
            self._fanout.on_watched = self._readers_changed
            self._readers_changed()

    def _readers_changed(self, _watched: bool = False) -> None:
        # Reports of cash and holdings are read only by the stream's consumers and listeners
        # (order handles take orders and fills): a venue that makes them only on demand (a
        # backtest) is told whether anyone is there, before any of them reads a report.
        follow = self._follow
        if follow is not None:
            follow(self.account_id, self._fanout.watched or bool(self._listeners))

    def _on_report(self, report: AccountReport) -> None:
        self._on_reports((report,))

    def _on_reports(self, reports: Sequence[AccountReport]) -> None:
        """Deliver this account's reports, in order: consumers, listeners, then order handles."""
        cursor = self._cursor
        fanout = self._fanout
        listeners = self._listeners
        if not fanout.watched and not listeners:
            if not self._handles and not self._inflight:
                # Nobody reads the stream and no order handle is alive or being made (a
                # backtest's fills of orders whose handles were dropped): only the cursor moves.
                last = cursor.last
                for report in reports:
                    if report.seq > last:
                        last = report.seq
                cursor.last = last
                return
            # Nobody reads the stream (the usual order path): only the order handles
            # (_to_handle, inlined).
            handles = self._handles
            for report in reports:
                seq = report.seq
                if seq > 0:
                    if seq <= cursor.last:
                        continue
                    cursor.last = seq
                item = report.item
                if type(item) in _STATE_ITEMS or not isinstance(item, _ORDER_EVENTS):
                    continue
                ref = handles.get(item.order_id)
                handle = ref() if ref is not None else None
                if handle is not None:
                    handle._on_item(item)
                elif self._inflight > 0:
                    self._early.setdefault(item.order_id, []).append(item)
            return
        for report in reports:
            seq = report.seq
            if seq > 0:  # ReportCursor.take, inlined: this runs for every report
                if seq <= cursor.last:
                    continue  # a replay of something already delivered
                cursor.last = seq
            if fanout.watched:  # no consumer (the usual order path): nothing to keep
                fanout.publish(report)
            for listener in listeners:
                try:
                    listener(report)
                except Exception:
                    log.exception("report listener %r failed", listener)
            item = report.item
            if isinstance(item, _ORDER_EVENTS):
                self._to_handle(item)

    def _to_handle(self, item: OrderEvent) -> None:
        """Hand an order event to its handle, or keep it for a handle still being made."""
        ref = self._handles.get(item.order_id)
        handle = ref() if ref is not None else None
        if handle is not None:
            handle._on_item(item)
        elif self._inflight > 0:
            self._early.setdefault(item.order_id, []).append(item)

    def _close(self) -> None:
        self._fanout.close()
        for ref in list(self._handles.values()):
            handle = ref()
            if handle is not None:
                handle._close()
        self._early.clear()

    # ----------------------------------------------------------------- orders

    async def order(
        self,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
        *,
        seq: int = 0,
    ) -> OrderHandle:
        """Place an order with xtquant's ``order_stock`` parameters; returns its handle.

        ``seq`` is echoed in the ``OrderResponse`` (``handle.response.seq``), as xtquant's
        asynchronous order requests do.
        """
        req = self._order_request(
            stock_code,
            order_type,
            order_volume,
            price_type,
            price,
            strategy_name,
            order_remark,
            seq,
        )
        return await self._submit(req)

    def _order_request(
        self,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
        seq: int = 0,
    ) -> SubmitOrder:
        """``order``'s arguments checked and made a request (a refusal raises, naming the value).

        A plain function, so that ``buy`` and ``sell`` reach ``_submit`` without one more
        coroutine in between.
        """
        client = self.client
        if client._closed or client._info is None:
            client._check_open()  # raises
        code = normalize_code(stock_code)
        if type(stock_code) is str:
            _remember_code(stock_code, code)
        if not (
            # The usual call, judged in one expression; anything else gets the full checks.
            type(order_type) is int
            and type(order_volume) is int
            and type(price_type) is int
            and type(price) is float
            and type(seq) is int
            and type(strategy_name) is str
            and type(order_remark) is str
            and order_type in ORDER_TYPES
            and price_type in PRICE_TYPES
            and order_volume > 0
            and seq >= 0
            and (0.0 < price < _INF or (price == 0.0 and price_type != _FIX_PRICE))
        ):
            check_order(order_type, order_volume, price_type, price, strategy_name, order_remark)
            non_negative_int("seq", seq)
            order_type, order_volume = int(order_type), int(order_volume)
            price_type, price = int(price_type), float(price)
        return SubmitOrder(
            self.account_id,
            code,
            order_type,
            order_volume,
            price_type,
            price,
            strategy_name,
            order_remark,
            seq,
        )

    def _limit_request(
        self,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price: float,
        strategy_name: str,
        order_remark: str,
    ) -> SubmitOrder:
        """``_order_request`` of a limit order (``buy``/``sell`` with a price): the same checks
        and request, with the order and price types known good (fewer tests per order)."""
        client = self.client
        if client._closed or client._info is None:
            client._check_open()  # raises
        code = _CANONICAL.get(stock_code) if type(stock_code) is str else None
        if (
            code is None
            or type(order_volume) is not int
            or type(price) is not float
            or type(strategy_name) is not str
            or type(order_remark) is not str
            or order_volume <= 0
            or not 0.0 < price < _INF
        ):
            return self._order_request(
                stock_code, order_type, order_volume, _FIX_PRICE, price, strategy_name, order_remark
            )
        return SubmitOrder(
            self.account_id,
            code,
            order_type,
            order_volume,
            _FIX_PRICE,
            price,
            strategy_name,
            order_remark,
        )

    async def _submit(self, req: SubmitOrder) -> OrderHandle:
        # A venue that answers at once is asked without the request's chain of coroutines
        # (client, terminal, guard, simulator: one each): the same answer, sooner.
        handle = self._submit_now(req)
        return handle if handle is not None else await self._submit_waiting(req)

    def _submit_now(self, req: SubmitOrder, *, in_task: bool = True) -> OrderHandle | None:
        """The order's handle if the venue answers it at once; None: nothing was sent.

        ``in_task``: the caller is a task of the client's loop (``buy``, ``order``), so a
        venue that answers its own tasks' orders at once (a backtest) may answer it too.
        """
        client = self.client
        if client._closed or client._info is None:
            client._check_open()  # raises
        answer = client._answer_in_task if in_task else client._answer_now
        if answer is None:
            return None
        # The venue's answer with _answer_with's wrapping, inlined: this runs for every order.
        self._inflight += 1
        try:
            try:
                reply = answer(req)
            except QmtkitError:
                raise
            except Exception as exc:
                raise _backend_error(req, exc) from exc
            return None if reply is None else self._handle_of(req, reply)
        finally:
            self._inflight -= 1
            if self._inflight == 0 and self._early:
                self._early.clear()

    async def _submit_waiting(self, req: SubmitOrder) -> OrderHandle:
        """Send the order and wait for the venue's answer."""
        self._inflight += 1
        try:
            client = self.client
            answer = client._send_now(req)
            if answer is None:
                return self._handle_of(req, await client.request(req))
            reply = await answer  # a link that sent it at once: no chain of coroutines
            if isinstance(reply, BaseException):
                raise reply
            return self._handle_of(req, reply)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._early.clear()

    def order_at_once(
        self,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
        *,
        seq: int = 0,
    ) -> OrderHandle | None:
        """``order`` without awaiting, where the venue answers an order at once; else None.

        For bridges on the event loop's thread that must not start a task per order (the
        xtquant shim): the simulator, and the terminal this program hosts, place an order and
        push its reports before answering, so the handle comes back complete. None means
        nothing was sent: place the order with ``await order(...)``. Checks and refusals are
        those of ``order``.
        """
        return self._submit_now(
            self._order_request(
                stock_code,
                order_type,
                order_volume,
                price_type,
                price,
                strategy_name,
                order_remark,
                seq,
            ),
            in_task=False,
        )

    def _handle_of(self, req: SubmitOrder, reply: Reply) -> OrderHandle:
        """The handle of an order the venue answered ``reply``, with its reports so far."""
        resp = reply if type(reply) is OrderResponse else expect(reply, OrderResponse)
        oid = resp.order_id
        if oid > 0:
            early = self._early.pop(oid, None) if self._early else None
            if early and type(first := early[0]) is Order and first.order_status != _JUNK:
                handle = OrderHandle(self, req, resp, first)
                rest = 1
            else:
                handle = OrderHandle(self, req, resp)
                rest = 0
            ref = self._handles[oid] = _HandleRef(handle, self._forget)
            ref.order_id = oid
            if early is not None and len(early) > rest:
                for item in early[rest:]:
                    handle._on_item(item)
        else:
            handle = OrderHandle(self, req, resp)
            handle._reject(
                OrderError(
                    account_type=int(self.account_type),
                    account_id=self.account_id,
                    order_id=resp.order_id,
                    error_id=error_id_of(resp.error_msg),
                    error_msg=resp.error_msg or "the venue refused the order",
                    strategy_name=req.strategy_name,
                    order_remark=req.order_remark,
                )
            )
            handle._notify()
        return handle

    def _simple(
        self,
        order_type: OrderType,
        code: str,
        volume: int,
        price: float | None,
        price_type: int | None,
        strategy_name: str,
        remark: str,
    ) -> tuple[str, int, int, int, float, str, str]:
        if price_type is None:
            price_type = _LATEST_PRICE if price is None else _FIX_PRICE
        if price is None:
            if price_type == _FIX_PRICE:
                raise InvalidArgument("price=None with FIX_PRICE: give the limit price")
            price = 0.0
        return code, int(order_type), volume, price_type, price, strategy_name, remark

    async def buy(
        self,
        code: str,
        volume: int,
        price: float | None = None,
        *,
        price_type: int | None = None,
        strategy_name: str = "",
        remark: str = "",
    ) -> OrderHandle:
        """Buy ``volume`` shares: at ``price`` (FIX_PRICE), or at the latest price if None."""
        if price is not None and price_type is None:  # the usual call: a limit price
            req = self._limit_request(code, _BUY, volume, price, strategy_name, remark)
        else:
            req = self._order_request(
                *self._simple(
                    OrderType.STOCK_BUY, code, volume, price, price_type, strategy_name, remark
                )
            )
        handle = self._submit_now(req)
        return handle if handle is not None else await self._submit_waiting(req)

    async def sell(
        self,
        code: str,
        volume: int,
        price: float | None = None,
        *,
        price_type: int | None = None,
        strategy_name: str = "",
        remark: str = "",
    ) -> OrderHandle:
        """Sell ``volume`` shares: at ``price`` (FIX_PRICE), or at the latest price if None."""
        if price is not None and price_type is None:  # the usual call: a limit price
            req = self._limit_request(code, _SELL, volume, price, strategy_name, remark)
        else:
            req = self._order_request(
                *self._simple(
                    OrderType.STOCK_SELL, code, volume, price, price_type, strategy_name, remark
                )
            )
        handle = self._submit_now(req)
        return handle if handle is not None else await self._submit_waiting(req)

    async def cancel(self, order: int | OrderHandle) -> CancelResponse:
        """Cancel by order id or handle; ``cancel_result`` 0 means the request was accepted."""
        self.client._check_open()
        if isinstance(order, OrderHandle):
            if order.account is not self:
                raise InvalidArgument(
                    f"{order!r} belongs to account {order.account.account_id!r}, "
                    f"not {self.account_id!r}"
                )
            order_id = order.order_id
            if order_id <= 0:
                raise InvalidArgument(
                    f"{order!r} was refused before it got a venue order id: nothing to cancel"
                )
        elif is_int(order) and order > 0:
            order_id = order
        else:
            raise InvalidArgument(
                f"bad order {order!r}: expected a positive int order id or an OrderHandle"
            )
        reply = await self.client.request(
            CancelOrder(account_id=self.account_id, order_id=order_id)
        )
        return expect(reply, CancelResponse)

    async def cancel_sysid(self, market: int, order_sysid: str) -> CancelResponse:
        """Cancel by the venue's order number (``market``: 0 SH, 1 SZ, 2 BJ)."""
        self.client._check_open()
        if not is_int(market) or market not in (0, 1, 2):
            raise InvalidArgument(f"bad market {market!r}: expected 0 (SH), 1 (SZ) or 2 (BJ)")
        if not isinstance(order_sysid, str) or not order_sysid:
            raise InvalidArgument(f"bad order_sysid {order_sysid!r}: expected a non-empty str")
        reply = await self.client.request(
            CancelOrderSysid(account_id=self.account_id, market=market, order_sysid=order_sysid)
        )
        return expect(reply, CancelResponse)

    def handle(self, order_id: int) -> OrderHandle | None:
        """The live handle of an order placed through this client, if it is still referenced."""
        ref = self._handles.get(order_id)
        return ref() if ref is not None else None

    # ----------------------------------------------------------------- queries

    async def asset(self) -> Asset:
        """Cash and totals."""
        return expect(await self.client.request(QueryAsset(self.account_id)), Asset)

    async def orders(self, cancelable_only: bool = False) -> list[Order]:
        """Today's orders (only the cancelable ones if asked)."""
        if not isinstance(cancelable_only, bool):
            raise InvalidArgument(f"cancelable_only must be a bool, got {cancelable_only!r}")
        reply = await self.client.request(QueryOrders(self.account_id, cancelable_only))
        return expect(reply, Orders).items

    async def trades(self) -> list[Trade]:
        """Today's fills."""
        return expect(await self.client.request(QueryTrades(self.account_id)), Trades).items

    async def positions(self) -> list[Position]:
        """Every holding."""
        reply = await self.client.request(QueryPositions(self.account_id))
        return expect(reply, Positions).items

    async def position(self, code: str) -> Position | None:
        """The holding of one code, or None."""
        want = normalize_code(code)
        for p in await self.positions():
            if p.stock_code == want:
                return p
        return None


# --------------------------------------------------------------------------- client


_R = TypeVar("_R")


def _backend_error(req: Request, exc: Exception) -> BackendError:
    """A backend's own failure on ``req``, as qmtkit's error."""
    return BackendError(f"the backend failed on {type(req).__name__}: {type(exc).__name__}: {exc}")


def _answer_with(answer: Callable[[Request], _R] | None, req: Request) -> _R | None:
    """``answer(req)`` (None if there is no such answerer); a backend's own failure is wrapped."""
    if answer is None:
        return None
    try:
        return answer(req)
    except QmtkitError:
        raise
    except Exception as exc:
        raise _backend_error(req, exc) from exc


class Client:
    """A live connection to one backend; made by ``connect()``.

    It is the backend's event sink: quote batches go to their subscription's fan-out and account
    reports to their account. After the ``connect`` context ends every method raises
    ``ClosedError``.
    """

    def __init__(self, backend: Backend, *, home: Path | None = None) -> None:
        self._backend = backend
        # A venue that answers an order at once (the simulator, a hosted terminal, a risk
        # guard in front of either) lets a bridge place one without a task: order_at_once.
        self._answer_now: Callable[[Request], Reply | None] | None = getattr(
            backend, "request_now", None
        )
        # A link to a venue in another process that can send a request at once and hand back
        # the future of its answer (``RemoteBackend.send_now``: an attached terminal program).
        self._send_soon: Callable[[Request], Awaitable[Reply | BaseException] | None] | None = (
            getattr(backend, "send_now", None)
        )
        # A venue that answers an order placed by one of the client's own tasks at once, but
        # not one placed from outside a task (a backtest: the replay's idle test follows
        # tasks): ``await account.buy(...)`` skips the request's chain of coroutines there.
        self._answer_in_task: Callable[[Request], Reply | None] | None = (
            self._answer_now or getattr(backend, "answer_in_task", None)
        )
        # A venue that makes an account's Asset and Position reports only while this client
        # reads them (a backtest, whose result takes orders and fills): ``Account`` tells it.
        # Not found behind a risk chain, whose rules read those reports.
        self._follow_state: Callable[[str, bool], None] | None = getattr(
            backend, "follow_state", None
        )
        self.home = home
        self._info: BackendInfo | None = None
        self._tg: TaskGroup | None = None
        self._background: set[anyio.CancelScope] = set()
        self._closed = False
        self._subs_by_key: dict[tuple[frozenset[str], str], _SharedQuotes] = {}
        self._subs_by_id: dict[int, _SharedQuotes] = {}
        self._next_sub_id = 0
        self._sub_lock = anyio.Lock()
        self._accounts: dict[str, Account] = {}
        self._account_lock = anyio.Lock()
        self._data: MarketData | None = None
        self.connection = ConnectionState(connected=True)
        self._connection_fanout: ReportFanout[ConnectionState] = ReportFanout()

    def __repr__(self) -> str:
        state = "closed" if self._closed else (self._info.url if self._info else "opening")
        return f"Client({state})"

    # ----------------------------------------------------------------- lifetime

    @property
    def closed(self) -> bool:
        """True once the ``connect`` context has ended."""
        return self._closed

    @property
    def info(self) -> BackendInfo:
        """Who answers: the backend's kind, URL and version."""
        self._check_open()
        assert self._info is not None
        return self._info

    @property
    def backend(self) -> Backend:
        """The backend behind this client (the venue's, behind the risk chain if there is one)."""
        b = self._backend
        return b.inner if isinstance(b, RiskGuard) else b

    @property
    def risk(self) -> RiskGuard | None:
        """The pre-trade risk chain in front of the backend, if there is one (docs/risk.md)."""
        b = self._backend
        return b if isinstance(b, RiskGuard) else None

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this qmtkit client is closed: use it inside `async with connect()`")
        if self._info is None:
            raise ClosedError("this qmtkit client is not open yet: get it from `connect()`")

    def _attach(self, info: BackendInfo, tg: TaskGroup) -> None:
        self._info = info
        self._tg = tg

    def _shutdown(self) -> None:
        self._closed = True
        for scope in list(self._background):
            scope.cancel()
        for shared in list(self._subs_by_id.values()):
            shared.fanout.close()
        self._subs_by_id.clear()
        self._subs_by_key.clear()
        for account in self._accounts.values():
            account._close()
        self._connection_fanout.close()
        # The data API may hold mapped cache files; release them with the client if it can.
        close = getattr(self._data, "close", None)
        if callable(close):
            close()

    def _send_now(self, req: Request) -> Awaitable[Reply | BaseException] | None:
        """Send ``req`` without waiting where the backend can; what its answer will be.

        The awaitable's result is the reply or the error to raise (qmtkit's). None: nothing
        was sent; use ``request``.
        """
        if self._closed or self._info is None:
            self._check_open()  # raises
        return _answer_with(self._send_soon, req)

    async def request(self, req: Request) -> Reply:
        """Send one raw request to the backend (the seam's own messages); errors are qmtkit's."""
        self._check_open()
        try:
            return await self._backend.request(req)
        except QmtkitError:
            raise
        except Exception as exc:
            raise _backend_error(req, exc) from exc

    # ----------------------------------------------------------------- events (EventSink)

    def on_quotes(self, batch: QuoteBatch) -> None:
        """Route a quote batch to its subscription's consumers."""
        shared = self._subs_by_id.get(batch.sub_id)
        if shared is not None and not shared.fanout.closed:
            shared.fanout.publish(batch.items)
            if batch.final:
                shared.fanout.close()

    def on_report(self, report: AccountReport) -> None:
        """Route an account report to its account (reports of unopened accounts are ignored)."""
        account = self._accounts.get(report.account_id)
        if account is not None and not self._closed:
            account._on_report(report)

    def on_reports(self, reports: Sequence[AccountReport]) -> None:
        """``on_report`` for several reports of one account (one state change), in one call."""
        if reports and not self._closed:
            account = self._accounts.get(reports[0].account_id)
            if account is not None:
                account._on_reports(reports)

    def on_connection(self, state: ConnectionState) -> None:
        """Remember the venue connection state and tell ``connection_changes`` consumers."""
        self.connection = state
        if not self._closed:  # a link may come back while the client is closing
            self._connection_fanout.publish(state)

    def connection_changes(self) -> ReportConsumer[ConnectionState]:
        """Every venue connection change from now on (lost, regained), in order.

        An async iterator and async context manager, like ``Account.reports()``; it ends when
        the client closes. ``qk.connection`` holds the latest state.
        """
        self._check_open()
        return self._connection_fanout.subscribe()

    # ----------------------------------------------------------------- quotes

    def subscribe(
        self,
        codes: str | Sequence[str],
        period: str = "tick",
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> Subscription:
        """A stream of quote batches for ``codes`` (``[]`` or ``"all"``: the whole market)."""
        self._check_open()
        p = parse_period(period).name
        _check_max_records(max_records)
        if isinstance(codes, str) and codes.strip().lower() in _WHOLE_MARKET:
            norm: list[str] = []
        else:
            norm = normalize_codes(codes)
        return Subscription(self, norm, p, max_records)

    def subscribe_whole(
        self, period: str = "tick", *, max_records: int = DEFAULT_MAX_RECORDS
    ) -> Subscription:
        """A stream of quote batches for the whole market."""
        return self.subscribe([], period, max_records=max_records)

    @property
    def quote_subscriptions(self) -> int:
        """How many backend subscriptions are live."""
        return len(self._subs_by_id)

    async def _join_quotes(
        self, codes: list[str], period: str, max_records: int
    ) -> tuple[_SharedQuotes, QuoteConsumer[Quote]]:
        self._check_open()
        key = (frozenset(codes), period)
        async with self._sub_lock:
            self._check_open()
            shared = self._subs_by_key.get(key)
            if shared is not None:
                shared.refs += 1
                return shared, shared.fanout.subscribe(max_records)
            self._next_sub_id += 1
            shared = _SharedQuotes(self._next_sub_id, key, list(codes), period)
            # Registered before the request so a batch pushed while it is answered is kept.
            consumer = shared.fanout.subscribe(max_records)
            shared.refs = 1
            self._subs_by_key[key] = shared
            self._subs_by_id[shared.sub_id] = shared
            try:
                await self.request(SubscribeQuotes(shared.sub_id, list(codes), period))
            except BaseException:
                self._subs_by_key.pop(key, None)
                self._subs_by_id.pop(shared.sub_id, None)
                shared.fanout.close()
                raise
            return shared, consumer

    def _leave_quotes(self, shared: _SharedQuotes, *, spawn: bool) -> int | None:
        shared.refs -= 1
        if shared.refs > 0 or self._subs_by_id.get(shared.sub_id) is not shared:
            return None
        del self._subs_by_id[shared.sub_id]
        del self._subs_by_key[shared.key]
        shared.fanout.close()
        if self._closed:
            return None
        if spawn and self._tg is not None:
            self._tg.start_soon(self._background_unsubscribe, shared.sub_id)
            return None
        return shared.sub_id

    async def _background_unsubscribe(self, sub_id: int) -> None:
        with anyio.CancelScope() as scope:
            self._background.add(scope)
            try:
                await self._unsubscribe(sub_id)
            finally:
                self._background.discard(scope)

    async def _unsubscribe(self, sub_id: int) -> None:
        if self._closed:
            return
        # Best effort: the backend forgets the subscription when it closes anyway.
        with contextlib.suppress(QmtkitError):
            await self.request(UnsubscribeQuotes(sub_id))

    # ----------------------------------------------------------------- reference data

    async def snapshot(self, codes: str | Sequence[str]) -> dict[str, Tick]:
        """The latest tick of each code; unknown codes are absent from the answer."""
        self._check_open()
        norm = normalize_codes(codes)
        reply = await self.request(GetSnapshot(norm))
        return {t.stock_code: t for t in expect(reply, Snapshots).items}

    async def instruments(
        self, codes: str | Sequence[str] | None = None
    ) -> dict[str, InstrumentDetail]:
        """Reference data by code; ``None`` lists every instrument the venue has."""
        self._check_open()
        norm = None if codes is None else normalize_codes(codes)
        reply = await self.request(ListInstruments(norm))
        return {i.stock_code: i for i in expect(reply, Instruments).items}

    async def instrument(self, code: str) -> InstrumentDetail | None:
        """Reference data of one code, or None if the venue does not list it."""
        want = normalize_code(code)
        return (await self.instruments([want])).get(want)

    async def sectors(self) -> list[str]:
        """The names of the sectors the venue knows."""
        self._check_open()
        return expect(await self.request(ListSectors()), Names).items

    async def sector_members(self, name: str) -> list[str]:
        """The codes in one sector."""
        self._check_open()
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"bad sector name {name!r}: expected a non-empty str")
        return expect(await self.request(GetSectorMembers(name)), Names).items

    @property
    def data(self) -> MarketData:
        """The market-data API (bars, downloads, cache) over this backend, made on first use."""
        self._check_open()
        if self._data is None:
            from qmtkit.data.api import MarketData

            # A backtest reads as of its virtual now: nothing later is visible (no look-ahead).
            point_in_time = bool(getattr(self._backend, "point_in_time", False))
            self._data = MarketData(
                self.request,
                self.home,
                now_ms=self.now,
                horizon=self.now if point_in_time else None,
            )
        return self._data

    # ----------------------------------------------------------------- time

    def now(self) -> int:
        """The venue's time, Unix ms: virtual in a backtest (and a simulator on a virtual
        clock), ``qmtkit.clock.wall_ms()`` elsewhere. Strategies ask here, not the system."""
        clock = getattr(self._backend, "clock", None)
        now_ms = getattr(clock, "now_ms", None)
        return int(now_ms()) if callable(now_ms) else wall_ms()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of the venue's time (virtual in a backtest, see ``now``)."""
        if not is_finite(seconds) or not seconds >= 0:
            raise InvalidArgument(f"seconds must be a number >= 0, got {seconds!r}")
        self._check_open()
        clock = getattr(self._backend, "clock", None)
        sleep = getattr(clock, "sleep", None)
        if callable(sleep):
            await sleep(float(seconds))
        else:
            await anyio.sleep(float(seconds))

    # ----------------------------------------------------------------- accounts

    async def account(self, account_id: str, account_type: int = AccountType.STOCK) -> Account:
        """Open an account's report stream and return it (the same object on later calls)."""
        self._check_open()
        if not isinstance(account_id, str) or not account_id.strip():
            raise InvalidArgument(f"bad account_id {account_id!r}: expected a non-empty str")
        if not is_int(account_type) or account_type not in {int(t) for t in AccountType}:
            raise InvalidArgument(
                f"bad account_type {account_type!r}: expected an AccountType, e.g. 2 (STOCK)"
            )
        async with self._account_lock:
            self._check_open()
            existing = self._accounts.get(account_id)
            if existing is not None:
                if existing.account_type != account_type:
                    raise InvalidArgument(
                        f"account {account_id!r} is already open as {existing.account_type.name}, "
                        f"not {AccountType(account_type).name}"
                    )
                return existing
            acct = Account(self, account_id, AccountType(account_type))
            # Registered first so reports replayed while the request is answered are routed.
            self._accounts[account_id] = acct
            try:
                await self.request(OpenAccount(account_id, int(account_type)))
            except BaseException:
                del self._accounts[account_id]
                raise
            acct._followed(self._follow_state)
            return acct

    async def account_infos(self) -> list[AccountInfo]:
        """Every account the venue knows."""
        self._check_open()
        return expect(await self.request(QueryAccountInfos()), AccountInfos).items

    async def account_statuses(self) -> list[AccountStatus]:
        """The state of every account the venue knows."""
        self._check_open()
        return expect(await self.request(QueryAccountStatus()), AccountStatuses).items


# --------------------------------------------------------------------------- connect


def _url_with_home(url: str | None, home: Path | None) -> str:
    full = backend_url(url)
    if home is None:
        return full
    parts = urlsplit(full)
    if parts.scheme not in ("sim", "backtest"):
        return full
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "home"]
    query.append(("home", str(home)))
    # Rebuilt by hand: urlunsplit would turn "sim://?x" into "sim:?x" (empty netloc).
    frag = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}{frag}"


def _home_path(home: object) -> Path | None:
    if home is None:
        env = os.environ.get("QMTKIT_HOME")
        return Path(env).expanduser() if env else None
    if not isinstance(home, (str, os.PathLike)):
        raise InvalidArgument(f"home must be a path (str or Path), got {home!r}")
    return Path(home).expanduser()


@asynccontextmanager
async def connect(
    url: str | None = None,
    *,
    backend: Backend | None = None,
    home: str | Path | None = None,
    risk: RiskConfig | RiskLimits | bool | None = None,
) -> AsyncIterator[Client]:
    """Open a backend and yield a ``Client`` for the duration of the ``async with`` block.

    ``url`` picks the backend (``sim://`` by default, or ``$QMTKIT_BACKEND``); ``backend`` passes
    one already built (e.g. ``MockBackend``) instead. ``home`` is the data/simulator directory
    (default ``$QMTKIT_HOME`` or ``~/.qmtkit``). No task, thread or file outlives the block.
    ``risk`` puts the pre-trade risk chain in front of the backend (docs/risk.md): a
    ``RiskConfig``, ``RiskLimits`` for every account, ``None`` (the default) to follow
    ``<home>/risk.toml`` if there is one, or ``False`` for none.
    """
    if url is not None and not isinstance(url, str):
        raise InvalidArgument(f"backend URL must be a str like 'sim://', got {url!r}")
    if backend is not None and url is not None:
        raise InvalidArgument(
            f"give either a backend URL ({url!r}) or a backend object ({backend!r}), not both"
        )
    if backend is not None and not isinstance(backend, Backend):
        raise InvalidArgument(
            f"backend {backend!r} does not implement the Backend protocol "
            "(open(sink) and async request(req))"
        )
    home_path = _home_path(home)
    if backend is None:
        backend = open_backend(_url_with_home(url, home_path if home is not None else None))
    backend = guard_backend(backend, risk, home_path)
    client = Client(backend, home=home_path)
    # The backend is opened outside the task group so that its own errors (and the caller's)
    # reach the caller as they are, not wrapped in an ExceptionGroup.
    async with (
        backend.open(client) as info,
        lifetime_tasks(lambda tg: client._shutdown()) as tg,
    ):
        client._attach(info, tg)
        yield client


__all__ = [
    "Account",
    "Client",
    "OrderEvent",
    "OrderHandle",
    "Subscription",
    "connect",
]
