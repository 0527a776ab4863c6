"""xtquant's ``xttrader`` module for the compat shim: ``XtQuantTrader`` over ``qmtkit.client``.

The trader translates xtquant calls onto the async client running in the shim's loop thread
(``_bridge``) and turns the account's report stream into ``XtQuantTraderCallback`` calls on one
dispatcher thread, one at a time, in order. It adds no trading behaviour of its own: venue rules,
order ids and states come from the backend.

xtquant conventions kept: ``connect``/``subscribe`` answer 0 or -1; ``order_stock`` answers the
order id or -1; ``cancel_order_stock`` answers 0 (accepted) or -1; a refused order arrives at
``on_order_error``; for an asynchronous order the ``on_order_stock_async_response`` callback comes
before that order's ``on_order_error``. Bad arguments follow the same conventions and log a
clear message to stderr (the ``qmtkit.compat`` logger).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import numbers
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, NamedTuple, NoReturn, TypeAlias, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from qmtkit import models
from qmtkit.backends import backend_url
from qmtkit.backends.sim.backend import terminal_name
from qmtkit.checks import OrderArgs, check_order, is_int, is_real
from qmtkit.client import Account, Client, OrderHandle
from qmtkit.compat import xttype
from qmtkit.compat._bridge import Dispatcher, bridge, ensure_not_in_loop
from qmtkit.compat._replay import replay_of, run_replay, submit_held
from qmtkit.compat._unsupported import XTQUANT_TRADER, unsupported_methods
from qmtkit.compat.sessions import lease_session
from qmtkit.compat.xttype import StockAccount
from qmtkit.errors import InvalidArgument, QmtkitError, Unsupported
from qmtkit.models import cut_remark
from qmtkit.recordlog import FileLock
from qmtkit.risk.refusal import error_id_of

log = logging.getLogger("qmtkit.compat")

__all__ = ["XtQuantTrader", "XtQuantTraderCallback", "cut_remark", "terminal_url"]

T = TypeVar("T")
V = TypeVar("V")
R = TypeVar("R")


def terminal_url(path: str, session: int, url: str | None = None) -> str:
    """The backend URL of the terminal a trader ``path`` names.

    For the simulator the path becomes ``terminal=<name>``: two paths are two independent
    terminals with their own accounts and journals. An ``xtquant://`` URL without a path gets the
    script's path and session. A URL that already names a terminal or home is left alone.
    """
    url = backend_url(url)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "sim":
        if "terminal" in query or "home" in query:
            return url
        query["terminal"] = terminal_name(path)
        # Built by hand: urlunsplit drops the '//' of an empty authority ('sim://').
        return f"sim://{parts.netloc}{parts.path}?{urlencode(query)}"
    if parts.scheme == "xtquant" and not (parts.netloc or parts.path):
        query.setdefault("session", str(session))
        return "xtquant://" + quote(path, safe="/:\\") + "?" + urlencode(query)
    return url


class XtQuantTraderCallback:
    """Override the ``on_*`` methods you need; each is called on the dispatcher thread."""

    def on_connected(self) -> None:
        """The connection is up."""

    def on_disconnected(self) -> None:
        """The connection to the terminal was lost."""

    def on_account_status(self, status: xttype.XtAccountStatus) -> None:
        """An account changed state."""

    def on_stock_asset(self, asset: xttype.XtAsset) -> None:
        """Cash or totals changed."""

    def on_stock_order(self, order: xttype.XtOrder) -> None:
        """An order changed state."""

    def on_stock_trade(self, trade: xttype.XtTrade) -> None:
        """A fill happened."""

    def on_stock_position(self, position: xttype.XtPosition) -> None:
        """A holding changed."""

    def on_order_error(self, order_error: xttype.XtOrderError) -> None:
        """An order was refused."""

    def on_cancel_error(self, cancel_error: xttype.XtCancelError) -> None:
        """A cancel was refused."""

    def on_order_stock_async_response(self, response: xttype.XtOrderResponse) -> None:
        """The answer to ``order_stock_async`` (``response.seq`` is the request's)."""

    def on_cancel_order_stock_async_response(self, response: xttype.XtCancelOrderResponse) -> None:
        """The answer to ``cancel_order_stock_async`` / ``cancel_order_stock_sysid_async``."""

    def on_smt_appointment_async_response(self, response: xttype.XtSmtAppointmentResponse) -> None:
        """Securities-lending appointment answer (never sent by qmtkit backends)."""

    def on_bank_transfer_async_response(self, response: xttype.XtBankTransferResponse) -> None:
        """Bank transfer answer (never sent by qmtkit backends)."""

    def on_ctp_internal_transfer_async_response(
        self, response: xttype.XtBankTransferResponse
    ) -> None:
        """CTP internal transfer answer (never sent by qmtkit backends)."""

    def on_smart_algo_order_async_response(self, response: xttype.XtSmartAlgoOrderResponse) -> None:
        """Smart-algorithm order answer (never sent by qmtkit backends)."""

    def on_operate_smart_task_async_response(
        self, response: xttype.XtOperateSmartTaskResponse
    ) -> None:
        """Smart-algorithm task answer (never sent by qmtkit backends)."""


class _ErrorGate:
    """Holds order/cancel errors back until the async response they belong to was delivered.

    Loop-thread state only. xtquant promises ``on_order_stock_async_response`` before the
    ``on_order_error`` of the same order, though the venue may report the error first.
    """

    def __init__(self) -> None:
        self.inflight = 0
        self.answered: set[int] = set()
        self.held: list[tuple[int, Callable[[], None]]] = []

    def offer(self, order_id: int, deliver: Callable[[], None]) -> None:
        if self.inflight == 0 or order_id in self.answered:
            deliver()
        else:
            self.held.append((order_id, deliver))

    def answered_id(self, order_id: int) -> None:
        self.answered.add(order_id)
        keep: list[tuple[int, Callable[[], None]]] = []
        for oid, deliver in self.held:
            if oid in self.answered or self.inflight == 0:
                deliver()
            else:
                keep.append((oid, deliver))
        self.held = keep


class XtQuantTrader:
    """A trading session with one terminal (``path``) under a session number.

    ``path`` names the terminal: on the simulator each distinct path is an independent set of
    paper accounts. ``session`` is the session id: on the simulator one live trader per id and
    terminal, in any process (``connect()`` of an id in use answers -1); the xtquant backend
    passes it to MiniQMT, which has the same rule.
    """

    def __init__(self, path: str, session: int, callback: XtQuantTraderCallback | None = None):
        if not isinstance(path, str):
            raise InvalidArgument(
                f"XtQuantTrader path must be a str (the userdata_mini directory), got {path!r}"
            )
        if not is_int(session):
            raise InvalidArgument(f"XtQuantTrader session must be an int, got {session!r}")
        self.path = path
        self.session = session
        self.callback = callback
        self.connected = False
        self._url = terminal_url(path, session)
        self._client: Client | None = None
        #: Whether the client is a backtest's (its replay waits for each push), as connected.
        self._replay = False
        self._lease: FileLock | None = None  # the session id, held while connected
        self._lock = threading.Lock()
        self._dispatcher: Dispatcher | None = None
        self._relaxed_dispatcher: Dispatcher | None = None
        self.relaxed_resp_order_enabled = False
        self._accounts: dict[tuple[str, int], Account] = {}
        self._pumps: dict[tuple[str, int], tuple[Account, _Listener]] = {}
        self._seq = itertools.count(1)
        self._timeout: float | None = None
        self._stopped = threading.Event()
        self._gate = _ErrorGate()
        self._cancel_gate = _ErrorGate()
        self._watch: Future[None] | None = None
        #: Calls queued on the loop thread during the current loop step, per dispatcher.
        self._batches: dict[Dispatcher, list[tuple[Callable[..., object], tuple[object, ...]]]] = {}
        #: True while ``_order_at_once`` runs (it hands over what is queued meanwhile itself).
        self._at_once = False

    # ------------------------------------------------------------------ lifecycle

    def register_callback(self, callback: XtQuantTraderCallback) -> None:
        """Use ``callback`` for every push from now on."""
        self.callback = callback

    def start(self) -> None:
        """Start the callback thread (call before ``connect``)."""
        if self._dispatcher is None or self._dispatcher.closed:
            self._dispatcher = Dispatcher(f"qmtkit-trader-{self.session}")
            self._relaxed_dispatcher = Dispatcher(f"qmtkit-trader-{self.session}-resp")
        self._stopped.clear()

    def stop(self) -> None:
        """Stop pushes, disconnect, and end the callback threads (after what is queued)."""
        for pump in list(self._pumps.values()):
            _detach_listener(*pump)
        self._pumps.clear()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._accounts.clear()
        if self._client is not None:
            self._client = None
            self.connected = False
            bridge().release(self._url)
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        for d in (self._dispatcher, self._relaxed_dispatcher):
            if d is not None:
                d.close()
        self._stopped.set()

    def connect(self) -> int:
        """Connect to the terminal: 0 on success, -1 on failure (the reason is logged)."""
        ensure_not_in_loop("connect")
        if self._client is not None:
            return 0
        if self._dispatcher is None:
            self.start()
        try:
            lease = lease_session(self._url, self.session)
        except QmtkitError as exc:
            log.error("connect() to %s refused: %s", self._url, exc)
            return -1
        try:
            self._client = bridge().acquire(self._url)
            self._replay = replay_of(self._client) is not None
        except QmtkitError as exc:
            if lease is not None:
                lease.release()
            log.error("connect() to %s failed: %s", self._url, exc)
            return -1
        self._lease = lease
        self.connected = True
        self._watch = bridge().spawn(self._watch_connection, self._client)
        return 0

    async def _watch_connection(self, client: Client) -> None:
        """Turn the client's venue-connection changes into ``on_disconnected`` (loop thread)."""
        async with client.connection_changes() as changes:
            async for state in changes:
                if not state.connected:
                    log.warning("connection to %s lost: %s", self._url, state.reason)
                    self._push(lambda cb: cb.on_disconnected())

    def sleep(self, time: float) -> None:
        """Block the caller for ``time`` seconds while pushes keep arriving."""
        ensure_not_in_loop("sleep")
        _time_sleep(time)

    def run_forever(self) -> None:
        """Block until ``stop()`` is called or Ctrl-C; Ctrl-C stops the trader and returns."""
        ensure_not_in_loop("run_forever")
        if self._client is not None and run_replay(self._client):
            return  # a backtest: returns when the replay has ended
        try:
            log.info("run_forever(): receiving pushes until stop() or Ctrl-C")
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            log.info("run_forever interrupted; stopping the trader")
            self.stop()

    def set_timeout(self, timeout: int = 0) -> None:
        """Wait at most ``timeout`` milliseconds for a blocking answer (0: no limit)."""
        if not is_real(timeout) or timeout < 0:
            raise InvalidArgument(f"timeout must be milliseconds >= 0, got {timeout!r}")
        self._timeout = timeout / 1000 if timeout else None

    def set_relaxed_response_order_enabled(self, enabled: bool) -> None:
        """Deliver answers to async requests on their own thread instead of the push thread."""
        self.relaxed_resp_order_enabled = bool(enabled)

    # ------------------------------------------------------------------ plumbing

    def _push(self, call: _Call) -> None:
        """Queue ``call(callback)`` on the push thread (called on the loop thread)."""
        d = self._dispatcher
        if d is not None:
            self._queue(d, self._invoke, (call,))

    def _respond(self, fn: Callable[..., object], *args: object) -> None:
        """Queue the answer to an async request (relaxed mode: on its own thread)."""
        d = self._relaxed_dispatcher if self.relaxed_resp_order_enabled else self._dispatcher
        if d is not None:
            self._queue(d, fn, args)

    def _queue(self, d: Dispatcher, fn: Callable[..., object], args: tuple[object, ...]) -> None:
        """Hand ``fn(*args)`` to ``d``: on the loop thread, batched per loop step.

        The calls queued while the loop runs one step (the six reports of a filled order and
        the answer that follows them) reach the callback thread as one item, handed over when
        the step ends: one wake-up of that thread instead of one per call, in the same order.
        A backtest's replay (which waits for each call) and other threads queue one by one.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._replay:
            submit_held(d, self._client, fn, *args)
            return
        batch = self._batches.get(d)
        if batch is None:
            batch = self._batches[d] = []
            if not self._at_once:  # else _order_at_once hands it over as it returns
                loop.call_soon(self._hand_over, d)
        batch.append((fn, args))

    def _hand_over(self, d: Dispatcher) -> None:
        batch = self._batches.pop(d, None)
        if batch:
            d.submit(_run_batch, batch)

    def _order_at_once(self, acc: Account, args: _Order) -> OrderHandle | None:
        """``acc.order_at_once`` for ``order_stock``, handing what it queued over at once.

        On a venue that answers at once (the simulator) the order is placed by the caller's
        thread lent the idle loop, or by the loop thread straight from its wake-up (no task),
        and its reports are queued by the time it returns: the callback thread is woken
        before the caller returns, not at the end of a loop step. Later pushes of the same
        step start a new batch, handed over after it (the order stays the same). None: the
        venue answers later (``_order_now``).
        """
        self._at_once = True
        try:
            return acc.order_at_once(args.code, *args.rest)
        finally:
            self._at_once = False
            for d in list(self._batches):
                self._hand_over(d)

    async def _order_now(self, acc: Account, args: _Order) -> OrderHandle:
        """``acc.order`` for ``order_stock``, handing what it queued over as soon as it returns."""
        try:
            return await acc.order(args.code, *args.rest)
        finally:
            for d in list(self._batches):
                self._hand_over(d)

    def _invoke(self, call: _Call) -> None:
        """Run ``call`` on the callback registered now (``register_callback`` may change it)."""
        cb = self.callback
        if cb is not None:
            call(cb)

    def _require_client(self, name: str) -> Client:
        if self._client is None:
            raise QmtkitError(f"{name}(): not connected; call start() and connect() first")
        return self._client

    def _call(self, name: str, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        return bridge().call(fn, *args, timeout=self._timeout, name=name)

    def _account(self, name: str, account: object, *, create: bool = False) -> Account:
        """The client's Account for a ``StockAccount``.

        Only ``subscribe`` (``create=True``) may open an account the terminal does not hold
        yet (on the simulator: a new paper account); any other call on one is refused, as on
        MiniQMT, so that a mistyped id never trades.
        """
        if not isinstance(account, StockAccount):
            raise InvalidArgument(
                f"{name}(): account must be a StockAccount (e.g. StockAccount('1000000365')), "
                f"got {account!r}"
            )
        client = self._require_client(name)
        key = (account.account_id, account.account_type)
        with self._lock:
            acc = self._accounts.get(key)
        if acc is None:
            if not create:
                held = {i.account_id for i in self._call(name, client.account_infos)}
                if account.account_id not in held:
                    raise InvalidArgument(
                        f"{name}(): account {account.account_id!r} is not held by this "
                        f"terminal (it holds {sorted(held) or 'none'}); check the id, or on "
                        "the simulator open a new paper account with subscribe() first"
                    )
            acc = self._call(name, client.account, account.account_id, account.account_type)
            with self._lock:
                acc = self._accounts.setdefault(key, acc)
        return acc

    def _next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def _fail(self, name: str, exc: BaseException) -> None:
        log.error("%s() refused: %s", name, exc)

    def _unsupported(self, name: str) -> NoReturn:
        raise Unsupported(
            f"XtQuantTrader.{name}() is not supported by qmtkit's compat shim on backend "
            f"{self._url!r}; only stock trading and its queries are (see docs/compat.md)"
        )

    # ------------------------------------------------------------------ pushes

    def subscribe(self, account: StockAccount) -> int:
        """Start the account's pushes: 0 on success, -1 on failure."""
        try:
            acc = self._account("subscribe", account, create=True)
        except QmtkitError as exc:
            self._fail("subscribe", exc)
            return -1
        key = (account.account_id, account.account_type)
        with self._lock:
            if key in self._pumps:
                return 0
            # The listener is attached before subscribe() returns, so no push is missed
            # between subscribe() and the first order. It is called as each report arrives:
            # no task of its own to wake on the loop between the venue and the callback thread.
            listener = self._on_report
            self._call("subscribe", _attach_listener, acc, listener)
            self._pumps[key] = (acc, listener)
        return 0

    def unsubscribe(self, account: StockAccount) -> int:
        """Stop the account's pushes: 0 on success, -1 if it was not subscribed."""
        if not isinstance(account, StockAccount):
            self._fail("unsubscribe", InvalidArgument(f"not a StockAccount: {account!r}"))
            return -1
        with self._lock:
            pump = self._pumps.pop((account.account_id, account.account_type), None)
        if pump is None:
            return -1
        _detach_listener(*pump)
        return 0

    def _on_report(self, report: models.AccountReport) -> None:
        item = report.item
        route = _ROUTES.get(type(item))
        if route is None:
            self._on_item(item)  # errors, through their gates
            return
        d = self._dispatcher
        if d is not None:  # _push, without a closure per report: every report's path
            self._queue(d, self._deliver, (route, item))

    def _deliver(self, route: Callable[[XtQuantTraderCallback, Any], None], item: object) -> None:
        """Run ``route`` with the callback registered now (callback thread)."""
        cb = self.callback
        if cb is not None:
            route(cb, item)

    def _on_item(self, item: object) -> None:
        """Route one account report to its callback (loop thread).

        The ``Xt*`` object is made on the callback thread, just before its callback: the loop
        thread, which every report and answer waits for, only queues the report (report items
        are never changed once pushed). A filled order's callback then waits for the objects
        of the reports before it only, not for those of the position and asset after it.
        """
        match item:
            case models.Order():
                self._push(lambda cb: cb.on_stock_order(xttype.from_order(item)))
            case models.Trade():
                self._push(lambda cb: cb.on_stock_trade(xttype.from_trade(item)))
            case models.Position():
                self._push(lambda cb: cb.on_stock_position(xttype.from_position(item)))
            case models.Asset():
                self._push(lambda cb: cb.on_stock_asset(xttype.from_asset(item)))
            case models.AccountStatus():
                self._push(lambda cb: cb.on_account_status(xttype.from_account_status(item)))
            case models.OrderError():
                err = xttype.from_order_error(item)
                self._gate.offer(
                    item.order_id, lambda: self._push(lambda cb: cb.on_order_error(err))
                )
            case models.CancelError():
                cerr = xttype.from_cancel_error(item)
                self._cancel_gate.offer(
                    item.order_id, lambda: self._push(lambda cb: cb.on_cancel_error(cerr))
                )
            # OrderResponse / CancelResponse in the stream duplicate request answers: ignored.

    # ------------------------------------------------------------------ orders

    def _order_args(
        self,
        stock_code: str,
        order_type: object,
        order_volume: object,
        price_type: object,
        price: object,
        strategy_name: object,
        order_remark: object,
    ) -> _Order:
        """xtquant's arguments as the client takes them (numbers through ``int()``/``float()``
        as xtquant passes them, the remark cut as MiniQMT keeps it), checked by the one order
        check the client also applies."""
        checked = check_order(
            _as_int(order_type), _as_int(order_volume), _as_int(price_type), _as_float(price),
            strategy_name, order_remark,
        )  # fmt: skip
        return _Order(stock_code, checked._replace(order_remark=cut_remark(checked.order_remark)))

    def _refuse_order(
        self, name: str, account: object, exc: BaseException, strategy: object, remark: object
    ) -> None:
        self._fail(name, exc)
        if isinstance(account, StockAccount):
            err = xttype.XtOrderError(
                account.account_id, -1, -1, str(exc),
                strategy if isinstance(strategy, str) else "",
                remark if isinstance(remark, str) else "",
            )  # fmt: skip
            err.account_type = account.account_type
            self._push(lambda cb: cb.on_order_error(err))

    def order_stock(
        self,
        account: StockAccount,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
    ) -> int:
        """Place an order and wait for its id; -1 (and ``on_order_error``) if refused at once."""
        ensure_not_in_loop("order_stock")
        try:
            args = self._order_args(
                stock_code, order_type, order_volume, price_type, price, strategy_name,
                order_remark,
            )  # fmt: skip
            acc = self._account("order_stock", account)
            handle = bridge().call_at_once(
                self._order_at_once, self._order_now, acc, args,
                timeout=self._timeout, name="order_stock",
            )  # fmt: skip
        except QmtkitError as exc:
            self._refuse_order("order_stock", account, exc, strategy_name, order_remark)
            return -1
        if handle.order_id < 0 and handle.error is not None:
            # Refused before it left (the risk chain): -1 and on_order_error, as xtquant.
            err = xttype.from_order_error(handle.error)
            self._push(lambda cb: cb.on_order_error(err))
            return -1
        return int(handle.order_id)

    def order_stock_async(
        self,
        account: StockAccount,
        stock_code: str,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        strategy_name: str = "",
        order_remark: str = "",
    ) -> int:
        """Place an order without waiting; the answer goes to ``on_order_stock_async_response``.

        Returns the request's ``seq`` (> 0), or -1 when the arguments are refused at once.
        """
        ensure_not_in_loop("order_stock_async")
        try:
            args = self._order_args(
                stock_code, order_type, order_volume, price_type, price, strategy_name,
                order_remark,
            )  # fmt: skip
            acc = self._account("order_stock_async", account)
        except QmtkitError as exc:
            self._refuse_order("order_stock_async", account, exc, strategy_name, order_remark)
            return -1
        seq = self._next_seq()
        bridge().spawn(self._order_async, seq, account, acc, args)
        return seq

    async def _order_async(
        self, seq: int, account: StockAccount, acc: Account, args: _Order
    ) -> None:
        strategy, remark = args.rest.strategy_name, args.rest.order_remark
        self._gate.inflight += 1
        order_id = -1
        error = ""
        error_id = -1
        try:
            handle = await acc.order(args.code, *args.rest)
            order_id = int(handle.order_id)
            if order_id < 0 and handle.error is not None:
                error, error_id = handle.error.error_msg, handle.error.error_id
        except QmtkitError as exc:
            error = str(exc)
            log.error("order_stock_async() refused: %s", exc)
        finally:
            self._gate.inflight -= 1
        resp = xttype.XtOrderResponse(account.account_id, order_id, strategy, remark, error, seq)
        resp.account_type = account.account_type
        self._respond(self._invoke, lambda cb: cb.on_order_stock_async_response(resp))
        if order_id < 0:
            err = xttype.XtOrderError(account.account_id, -1, error_id, error, strategy, remark)
            err.account_type = account.account_type
            self._respond(self._invoke, lambda cb: cb.on_order_error(err))
        self._gate.answered_id(order_id)

    def cancel_order_stock(self, account: StockAccount, order_id: int) -> int:
        """Cancel by order id and wait: 0 accepted, -1 refused (then ``on_cancel_error``)."""
        ensure_not_in_loop("cancel_order_stock")
        try:
            acc = self._account("cancel_order_stock", account)
            resp = self._call("cancel_order_stock", acc.cancel, _order_id(order_id))
        except QmtkitError as exc:
            self._fail("cancel_order_stock", exc)
            return -1
        self._local_cancel_error(account, resp)
        return int(resp.cancel_result)

    def _local_cancel_error(self, account: StockAccount, resp: models.CancelResponse) -> None:
        """A cancel the risk chain refused never reaches the venue: report it here."""
        error_id = error_id_of(resp.error_msg, 0)
        if resp.cancel_result != 0 and error_id:
            err = xttype.XtCancelError(
                account.account_id, resp.order_id, 0, resp.order_sysid, error_id, resp.error_msg
            )
            err.account_type = account.account_type
            self._push(lambda cb: cb.on_cancel_error(err))

    def cancel_order_stock_async(self, account: StockAccount, order_id: int) -> int:
        """Cancel by order id without waiting; returns the request ``seq`` or -1."""
        ensure_not_in_loop("cancel_order_stock_async")
        try:
            acc = self._account("cancel_order_stock_async", account)
            oid = _order_id(order_id)
        except QmtkitError as exc:
            self._fail("cancel_order_stock_async", exc)
            return -1
        seq = self._next_seq()
        bridge().spawn(self._cancel_async, seq, account, lambda: acc.cancel(oid), oid, "")
        return seq

    async def _cancel_async(
        self,
        seq: int,
        account: StockAccount,
        cancel: Callable[[], Awaitable[models.CancelResponse]],
        order_id: int,
        sysid: str,
    ) -> None:
        self._cancel_gate.inflight += 1
        resp: models.CancelResponse | None = None
        try:
            resp = await cancel()
            x = xttype.from_cancel_response(resp, seq)
        except QmtkitError as exc:
            log.error("cancel request refused: %s", exc)
            x = xttype.XtCancelOrderResponse(account.account_id, -1, order_id, sysid, seq, str(exc))
            x.account_type = account.account_type
        finally:
            self._cancel_gate.inflight -= 1
        self._respond(self._invoke, lambda cb: cb.on_cancel_order_stock_async_response(x))
        if resp is not None:
            self._local_cancel_error(account, resp)
        self._cancel_gate.answered_id(x.order_id)

    def cancel_order_stock_sysid(self, account: StockAccount, market: int | str, sysid: str) -> int:
        """Cancel by the venue's order number; ``market`` 0/'SH', 1/'SZ', 2/'BJ'. 0 or -1."""
        ensure_not_in_loop("cancel_order_stock_sysid")
        try:
            acc = self._account("cancel_order_stock_sysid", account)
            mk, sid = _market(market), _sysid(sysid)
            resp = self._call("cancel_order_stock_sysid", acc.cancel_sysid, mk, sid)
        except QmtkitError as exc:
            self._fail("cancel_order_stock_sysid", exc)
            return -1
        return int(resp.cancel_result)

    def cancel_order_stock_sysid_async(
        self, account: StockAccount, market: int | str, sysid: str
    ) -> int:
        """Cancel by the venue's order number without waiting; the request ``seq`` or -1."""
        ensure_not_in_loop("cancel_order_stock_sysid_async")
        try:
            acc = self._account("cancel_order_stock_sysid_async", account)
            mk, sid = _market(market), _sysid(sysid)
        except QmtkitError as exc:
            self._fail("cancel_order_stock_sysid_async", exc)
            return -1
        seq = self._next_seq()
        cancel = lambda: acc.cancel_sysid(mk, sid)  # noqa: E731
        bridge().spawn(self._cancel_async, seq, account, cancel, -1, sid)
        return seq

    # ------------------------------------------------------------------ queries

    def _query(
        self, name: str, account: object, method: Callable[..., Awaitable[T]], *args: object
    ) -> T:
        ensure_not_in_loop(name)
        return self._call(name, method, self._account(name, account), *args)

    def _query_list(
        self,
        name: str,
        account: object,
        fetch: Callable[[Account], Awaitable[list[V]]],
        convert: Callable[[V], R],
    ) -> list[R]:
        """A list query: its items converted, or [] (the reason logged) when it fails."""
        try:
            items = self._query(name, account, fetch)
        except QmtkitError as exc:
            self._fail(name, exc)
            return []
        return [convert(i) for i in items]

    def _query_async(
        self,
        name: str,
        callback: Callable[[R], object],
        fetch: Callable[[], Awaitable[V]],
        convert: Callable[[V | None], R],
    ) -> int:
        if not callable(callback):
            raise InvalidArgument(f"{name}(): callback must be callable, got {callback!r}")
        seq = self._next_seq()

        async def run() -> None:
            try:
                value = convert(await fetch())
            except QmtkitError as exc:
                log.error("%s() failed: %s", name, exc)
                value = convert(None)
            self._respond(callback, value)

        bridge().spawn(run)
        return seq

    def query_account_infos(self) -> list[xttype.XtAccountInfo]:
        """Every account the terminal knows."""
        ensure_not_in_loop("query_account_infos")
        client = self._require_client("query_account_infos")
        items = self._call("query_account_infos", client.account_infos)
        return [xttype.from_account_info(i) for i in items]

    query_account_info = query_account_infos

    def query_account_infos_async(
        self, callback: Callable[[list[xttype.XtAccountInfo]], object]
    ) -> int:
        """``query_account_infos`` answered to ``callback``; returns the request ``seq``."""
        client = self._require_client("query_account_infos_async")
        return self._query_async(
            "query_account_infos_async", callback, client.account_infos,
            lambda v: [xttype.from_account_info(i) for i in v or []],
        )  # fmt: skip

    def query_account_status(self) -> list[xttype.XtAccountStatus]:
        """The state of every account the terminal knows."""
        ensure_not_in_loop("query_account_status")
        client = self._require_client("query_account_status")
        items = self._call("query_account_status", client.account_statuses)
        return [xttype.from_account_status(i) for i in items]

    def query_account_status_async(
        self, callback: Callable[[list[xttype.XtAccountStatus]], object]
    ) -> int:
        """``query_account_status`` answered to ``callback``; returns the request ``seq``."""
        client = self._require_client("query_account_status_async")
        return self._query_async(
            "query_account_status_async", callback, client.account_statuses,
            lambda v: [xttype.from_account_status(i) for i in v or []],
        )  # fmt: skip

    def query_stock_asset(self, account: StockAccount) -> xttype.XtAsset | None:
        """The account's cash and totals, or None if it cannot be read."""
        try:
            return xttype.from_asset(self._query("query_stock_asset", account, Account.asset))
        except QmtkitError as exc:
            self._fail("query_stock_asset", exc)
            return None

    def query_stock_asset_async(
        self, account: StockAccount, callback: Callable[[xttype.XtAsset | None], object]
    ) -> None:
        """``query_stock_asset`` answered to ``callback`` (None on failure)."""
        acc = self._account("query_stock_asset_async", account)
        self._query_async(
            "query_stock_asset_async", callback, acc.asset,
            lambda v: None if v is None else xttype.from_asset(v),
        )  # fmt: skip

    def query_stock_order(self, account: StockAccount, order_id: int) -> xttype.XtOrder | None:
        """Today's order with ``order_id``, or None."""
        try:
            oid = _order_id(order_id)
            orders = self._query("query_stock_order", account, Account.orders)
        except QmtkitError as exc:
            self._fail("query_stock_order", exc)
            return None
        for o in orders:
            if o.order_id == oid:
                return xttype.from_order(o)
        return None

    def query_stock_orders(
        self, account: StockAccount, cancelable_only: bool = False
    ) -> list[xttype.XtOrder]:
        """Today's orders (only the cancelable ones if asked)."""
        only = bool(cancelable_only)
        return self._query_list(
            "query_stock_orders", account, lambda acc: acc.orders(only), xttype.from_order
        )

    def query_stock_orders_async(
        self,
        account: StockAccount,
        callback: Callable[[list[xttype.XtOrder]], object],
        cancelable_only: bool = False,
    ) -> int:
        """``query_stock_orders`` answered to ``callback``; returns the request ``seq``."""
        acc = self._account("query_stock_orders_async", account)
        return self._query_async(
            "query_stock_orders_async", callback, lambda: acc.orders(bool(cancelable_only)),
            lambda v: [xttype.from_order(o) for o in v or []],
        )  # fmt: skip

    def query_stock_trades(self, account: StockAccount) -> list[xttype.XtTrade]:
        """Today's fills."""
        return self._query_list("query_stock_trades", account, Account.trades, xttype.from_trade)

    def query_stock_trades_async(
        self, account: StockAccount, callback: Callable[[list[xttype.XtTrade]], object]
    ) -> int:
        """``query_stock_trades`` answered to ``callback``; returns the request ``seq``."""
        acc = self._account("query_stock_trades_async", account)
        return self._query_async(
            "query_stock_trades_async", callback, acc.trades,
            lambda v: [xttype.from_trade(t) for t in v or []],
        )  # fmt: skip

    def query_stock_position(
        self, account: StockAccount, stock_code: str
    ) -> xttype.XtPosition | None:
        """The holding of ``stock_code``, or None."""
        try:
            pos = self._query("query_stock_position", account, Account.position, stock_code)
        except QmtkitError as exc:
            self._fail("query_stock_position", exc)
            return None
        return None if pos is None else xttype.from_position(pos)

    def query_stock_positions(self, account: StockAccount) -> list[xttype.XtPosition]:
        """Every holding."""
        return self._query_list(
            "query_stock_positions", account, Account.positions, xttype.from_position
        )

    def query_stock_positions_async(
        self, account: StockAccount, callback: Callable[[list[xttype.XtPosition]], object]
    ) -> int:
        """``query_stock_positions`` answered to ``callback``; returns the request ``seq``."""
        acc = self._account("query_stock_positions_async", account)
        return self._query_async(
            "query_stock_positions_async", callback, acc.positions,
            lambda v: [xttype.from_position(p) for p in v or []],
        )  # fmt: skip


# The ~50 XtQuantTrader methods qmtkit cannot serve, with xtquant's signatures, so that scripts
# import and introspect cleanly; each raises Unsupported (compat/_unsupported.py).
for _name, _stub in unsupported_methods(XTQUANT_TRADER).items():
    setattr(XtQuantTrader, _name, _stub)
del _name, _stub


#: A report listener of an account (called on the loop thread as each report arrives).
_Listener: TypeAlias = Callable[[models.AccountReport], None]


def _run_batch(batch: list[tuple[Callable[..., object], tuple[object, ...]]]) -> None:
    """Run a batch of callbacks in order; one that raises is logged and the rest still run."""
    for fn, args in batch:
        try:
            fn(*args)
        except BaseException:  # as the dispatcher: a user callback never stops the rest
            log.exception("callback %s raised", getattr(fn, "__qualname__", fn))


async def _attach_listener(acc: Account, listener: _Listener) -> None:
    acc.add_listener(listener)


def _detach_listener(acc: Account, listener: _Listener) -> None:
    """Remove a report listener on the loop thread, without waiting (as a cancel would)."""
    loop = bridge().loop
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(acc.remove_listener, listener)


class _Order(NamedTuple):
    """An order's arguments as ``Account.order`` takes them: the code, then the checked rest."""

    code: str
    rest: OrderArgs


#: What a push does with the registered callback object (called on the push thread).
_Call: TypeAlias = Callable[[XtQuantTraderCallback], object]


def _to_order(cb: XtQuantTraderCallback, item: models.Order) -> None:
    cb.on_stock_order(xttype.from_order(item))


def _to_trade(cb: XtQuantTraderCallback, item: models.Trade) -> None:
    cb.on_stock_trade(xttype.from_trade(item))


def _to_position(cb: XtQuantTraderCallback, item: models.Position) -> None:
    cb.on_stock_position(xttype.from_position(item))


def _to_asset(cb: XtQuantTraderCallback, item: models.Asset) -> None:
    cb.on_stock_asset(xttype.from_asset(item))


def _to_account_status(cb: XtQuantTraderCallback, item: models.AccountStatus) -> None:
    cb.on_account_status(xttype.from_account_status(item))


#: The callback of each pushed report type that needs no gate, by exact type (the ``Xt*``
#: object is made on the callback thread, just before its callback: see ``_on_item``).
_ROUTES: dict[type, Callable[[XtQuantTraderCallback, Any], None]] = {
    models.Order: _to_order,
    models.Trade: _to_trade,
    models.Position: _to_position,
    models.Asset: _to_asset,
    models.AccountStatus: _to_account_status,
}


def _time_sleep(seconds: float) -> None:
    if not is_real(seconds) or seconds < 0:
        raise InvalidArgument(f"sleep time must be seconds >= 0, got {seconds!r}")
    time.sleep(seconds)


def _as_int(value: object) -> object:
    """xtquant passes volumes through ``int()``: numpy ints and whole floats become ints.

    Anything else is handed on unchanged for the client to refuse with its own message (a
    fractional volume is refused rather than silently truncated).
    """
    if type(value) is int or isinstance(value, bool):  # the usual call: no ABC check
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _as_float(value: object) -> object:
    """xtquant passes prices through ``float()``: numpy numbers and ints become floats.

    Anything else (a bool too) is handed on unchanged for the order check to refuse.
    """
    if type(value) is float or type(value) is bool or not isinstance(value, numbers.Real):
        return value
    return float(value)


def _order_id(order_id: object) -> int:
    order_id = _as_int(order_id)
    if not is_int(order_id):
        raise InvalidArgument(
            f"order_id must be the int returned by order_stock(), got {order_id!r}"
        )
    return order_id


def _sysid(sysid: object) -> str:
    if not isinstance(sysid, str) or not sysid:
        raise InvalidArgument(f"sysid must be the venue's order number as a str, got {sysid!r}")
    return sysid


# xtquant's market codes (names and enum values) → the backend's 0 SH, 1 SZ, 2 BJ.
_MARKETS: dict[object, int] = {"SH": 0, "SZ": 1, "BJ": 2, 0: 0, 1: 1, 70: 2}


def _market(market: object) -> int:
    key = market.upper() if isinstance(market, str) else market
    if isinstance(market, bool) or key not in _MARKETS:
        raise InvalidArgument(
            f"market must be 0/'SH', 1/'SZ' or 70/'BJ' (xtconstant.SH_MARKET, SZ_MARKET, "
            f"MARKET_ENUM_BEIJING) for stock orders, got {market!r}"
        )
    return _MARKETS[key]
