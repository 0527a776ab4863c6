"""The fake MiniQMT terminal behind the fake ``xttrader`` (test control surface).

Tests reach it as ``xtquant._terminal.TERMINAL`` and steer it:

- ``response_first``: answer ``order_stock_async`` before (True) or after (False) the order push;
- ``hold_responses`` / ``hold_pushes``: keep order responses / order pushes back until
  ``release()``, to prove that either one alone resolves a submission;
- ``refuse_connects``: how many coming ``connect()`` calls return -1;
- ``reject``: code -> (error_id, error_msg) for orders to refuse;
- ``disconnect()``, ``fill()``, ``replay_pushes()``, ``push_order_status()``;
- ``account_calls``: (method, account id) of every account subscription, order, cancel and
  query a trader made.

Every callback is delivered on the receiving trader's own single worker thread, like xtquant.
"""

from __future__ import annotations

import itertools
import threading
import time

from qmtkit.clock import wall_ms

from . import xtconstant as C
from . import xttype as T

TERMINAL_STATES = {C.ORDER_PART_CANCEL, C.ORDER_CANCELED, C.ORDER_SUCCEEDED, C.ORDER_JUNK}


def _now_s() -> int:
    """The terminal's clock in Unix seconds: the suite's pinned clock, as MiniQMT's would be."""
    return wall_ms() // 1000


class Terminal:
    def __init__(self):
        self.lock = threading.RLock()
        self.accounts = {"1000000365": 1_000_000.0}
        self.response_first = True
        self.hold_responses = False
        self.hold_pushes = False
        self.refuse_connects = 0
        self.reject = {}
        self.traders = []  # connected, in connection order
        self.connect_log = []  # (session, result)
        self.last_connect = {}  # session -> monotonic time of the last successful connect
        self.orders = {}  # order_id -> XtOrder (latest state)
        self.trades = []
        self.pushed = []  # (account_id, method, obj) in delivery order
        self.placed = []  # every order_stock_async call
        self.account_calls = []  # (method, account id) of every account call
        self.placed_signal = threading.Event()  # set by the first one
        self._held = []
        self._ids = itertools.count(1001)
        self._trade_ids = itertools.count(1)
        self.callback_threads = set()

    # ------------------------------------------------------------------ connection
    def connect(self, trader):
        with self.lock:
            now = time.monotonic()
            recent = self.last_connect.get(trader.session)
            if self.refuse_connects > 0:
                self.refuse_connects -= 1
                result = -1
            elif recent is not None and now - recent < 3.0:
                result = -1  # a session id may not be reused within 3 s
            else:
                result = 0
                self.last_connect[trader.session] = now
                self.traders.append(trader)
            self.connect_log.append((trader.session, result))
            return result

    def drop(self, trader):
        with self.lock:
            if trader in self.traders:
                self.traders.remove(trader)

    def disconnect(self, refuse=0):
        """Every connected trader gets ``on_disconnected``; the next ``refuse`` connects fail."""
        with self.lock:
            self.refuse_connects = refuse
            gone, self.traders = self.traders, []
        for trader in gone:
            trader.connected = False
            trader.deliver("on_disconnected")

    # ------------------------------------------------------------------ delivery
    def _subscribers(self, account_id):
        return [t for t in self.traders if account_id in t.accounts]

    def push(self, account_id, method, obj, only=None):
        with self.lock:
            self.pushed.append((account_id, method, obj))
            targets = [only] if only is not None else self._subscribers(account_id)
            for trader in targets:
                trader.deliver(method, obj)

    def _emit(self, kind, trader, method, obj, account_id=None):
        if (kind == "response" and self.hold_responses) or (kind == "push" and self.hold_pushes):
            self._held.append((kind, trader, method, obj, account_id))
        elif kind == "response":
            trader.deliver(method, obj)
        else:
            self.push(account_id, method, obj)

    def release(self):
        """Deliver what ``hold_responses`` / ``hold_pushes`` kept back, in order."""
        with self.lock:
            held, self._held = self._held, []
            self.hold_responses = self.hold_pushes = False
            for kind, trader, method, obj, account_id in held:
                self._emit(kind, trader, method, obj, account_id)

    # ------------------------------------------------------------------ orders
    def place(
        self,
        trader,
        seq,
        account,
        code,
        order_type,
        volume,
        price_type,
        price,
        strategy_name,
        order_remark,
    ):
        with self.lock:
            self.placed.append((seq, account.account_id, code, order_type, volume, price))
            self.placed_signal.set()
            order_id = next(self._ids)
            remark = order_remark.encode("utf-8")[:24].decode("utf-8", "ignore")
            rejected = self.reject.get(code)
            order = T.XtOrder(
                account.account_id,
                code,
                order_id,
                f"S{order_id}",
                _now_s(),
                order_type,
                volume,
                price_type,
                price,
                0,
                0.0,
                C.ORDER_JUNK if rejected else C.ORDER_REPORTED,
                rejected[1] if rejected else "",
                strategy_name,
                remark,
                C.DIRECTION_FLAG_LONG,
                C.OFFSET_FLAG_OPEN if order_type == C.STOCK_BUY else C.OFFSET_FLAG_CLOSE,
                "A123",
                "name",
            )
            self.orders[order_id] = order
            response = T.XtOrderResponse(
                account.account_id,
                order_id,
                strategy_name,
                remark,
                rejected[1] if rejected else "",
                seq,
            )
            steps = [
                ("response", "on_order_stock_async_response", response),
                ("push", "on_stock_order", order),
            ]
            if not self.response_first:
                steps.reverse()
            if rejected:
                error = T.XtOrderError(
                    account.account_id, order_id, rejected[0], rejected[1], strategy_name, remark
                )
                error.seq = seq  # the raw push carries the request seq
                steps.append(("error", "on_order_error", error))  # never held
            for kind, method, obj in steps:
                self._emit(kind, trader, method, obj, account.account_id)
            return order_id

    def _copy(self, order, **changes):
        fields = {f: getattr(order, f) for f in T.XtOrder._fields}
        fields.update(changes)
        return T.XtOrder(**fields)

    def push_order_status(self, order_id, status, traded_volume=None):
        with self.lock:
            old = self.orders[order_id]
            new = self._copy(
                old,
                order_status=status,
                traded_volume=old.traded_volume if traded_volume is None else traded_volume,
            )
            self.orders[order_id] = new
            self.push(new.account_id, "on_stock_order", new)

    def fill(self, order_id, volume, price):
        with self.lock:
            old = self.orders[order_id]
            traded = old.traded_volume + volume
            trade = T.XtTrade(
                old.account_id,
                old.stock_code,
                old.order_type,
                f"T{next(self._trade_ids)}",
                _now_s(),
                price,
                volume,
                price * volume,
                order_id,
                old.order_sysid,
                old.strategy_name,
                old.order_remark,
                old.direction,
                old.offset_flag,
                5.0,
                "A123",
                "name",
            )
            self.trades.append(trade)
            status = C.ORDER_SUCCEEDED if traded >= old.order_volume else C.ORDER_PART_SUCC
            new = self._copy(old, traded_volume=traded, traded_price=price, order_status=status)
            self.orders[order_id] = new
            self.push(old.account_id, "on_stock_trade", trade)
            self.push(old.account_id, "on_stock_order", new)

    def cancel(self, trader, seq, account, order_id=None, sysid=None, market=None):
        with self.lock:
            order = (
                self.orders.get(order_id)
                if order_id is not None
                else next((o for o in self.orders.values() if o.order_sysid == sysid), None)
            )
            if order is None or order.order_status in TERMINAL_STATES:
                oid = order.order_id if order is not None else (order_id or -1)
                response = T.XtCancelOrderResponse(
                    account.account_id, -1, oid, sysid or "", seq, "order cannot be canceled"
                )
                trader.deliver("on_cancel_order_stock_async_response", response)
                error = T.XtCancelError(
                    account.account_id,
                    oid,
                    market or 0,
                    sysid or "",
                    -61,
                    "order cannot be canceled",
                )
                self.push(account.account_id, "on_cancel_error", error)
                return
            response = T.XtCancelOrderResponse(
                account.account_id, 0, order.order_id, order.order_sysid, seq, ""
            )
            trader.deliver("on_cancel_order_stock_async_response", response)
            status = C.ORDER_PART_CANCEL if order.traded_volume else C.ORDER_CANCELED
            new = self._copy(order, order_status=status)
            self.orders[order.order_id] = new
            self.push(order.account_id, "on_stock_order", new)

    def replay_pushes(self, account_id):
        """Re-send every order and trade push of an account (as after a reconnect)."""
        with self.lock:
            old = [
                (m, o)
                for a, m, o in self.pushed
                if a == account_id and m in ("on_stock_order", "on_stock_trade")
            ]
            for method, obj in old:
                self.push(account_id, method, obj)

    # ------------------------------------------------------------------ queries
    def asset(self, account_id):
        cash = self.accounts[account_id]
        return T.XtAsset(account_id, cash, 0.0, 0.0, cash, cash)


TERMINAL = Terminal()
