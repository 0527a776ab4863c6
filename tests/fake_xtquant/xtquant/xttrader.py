"""Fake ``xtquant.xttrader``: ``XtQuantTrader`` and ``XtQuantTraderCallback`` over ``TERMINAL``."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from . import xttype as T
from ._terminal import TERMINAL


class XtQuantTraderCallback:
    """Callback base class: every hook does nothing until overridden."""

    def on_connected(self):
        pass

    def on_disconnected(self):
        pass

    def on_account_status(self, status):
        pass

    def on_stock_asset(self, asset):
        pass

    def on_stock_order(self, order):
        pass

    def on_stock_trade(self, trade):
        pass

    def on_stock_position(self, position):
        pass

    def on_order_error(self, order_error):
        pass

    def on_cancel_error(self, cancel_error):
        pass

    def on_order_stock_async_response(self, response):
        pass

    def on_cancel_order_stock_async_response(self, response):
        pass

    # Hooks for requests the adapter never sends; present so the base class has every hook.
    def on_smt_appointment_async_response(self, response):
        pass

    def on_bank_transfer_async_response(self, response):
        pass

    def on_ctp_internal_transfer_async_response(self, response):
        pass

    def on_smart_algo_order_async_response(self, response):
        pass

    def on_operate_smart_task_async_response(self, response):
        pass


class XtQuantTrader:
    """``XtQuantTrader(path, session, callback=None)`` talking to the fake terminal."""

    def __init__(self, path, session, callback=None):
        self.path = path
        self.session = session
        self.callback = callback
        self.connected = False
        self.accounts = set()
        self._executor = None
        self._seq = 0
        self._seq_lock = threading.Lock()

    def register_callback(self, callback):
        self.callback = callback

    def start(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fake-xttrader")

    def stop(self):
        self.connected = False
        TERMINAL.drop(self)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def connect(self):
        result = TERMINAL.connect(self)
        self.connected = result == 0
        return result

    def deliver(self, method, *args):
        """Run a callback hook on this trader's worker thread (after earlier ones)."""

        def run():
            TERMINAL.callback_threads.add(threading.get_ident())
            if self.callback is not None:
                getattr(self.callback, method)(*args)

        with contextlib.suppress(RuntimeError):  # stopped: the push is lost, as in xtquant
            self._executor.submit(run)

    def _next_seq(self):
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def subscribe(self, account):
        TERMINAL.account_calls.append(("subscribe", account.account_id))
        if not self.connected or account.account_id not in TERMINAL.accounts:
            return -1
        self.accounts.add(account.account_id)
        return 0

    def unsubscribe(self, account):
        self.accounts.discard(account.account_id)
        return 0

    def order_stock_async(
        self,
        account,
        stock_code,
        order_type,
        order_volume,
        price_type,
        price,
        strategy_name="",
        order_remark="",
    ):
        TERMINAL.account_calls.append(("order_stock_async", account.account_id))
        if not self.connected:
            return -1
        seq = self._next_seq()
        TERMINAL.place(
            self,
            seq,
            account,
            stock_code,
            order_type,
            int(order_volume),
            price_type,
            price,
            strategy_name,
            order_remark,
        )
        return seq

    def cancel_order_stock_async(self, account, order_id):
        TERMINAL.account_calls.append(("cancel_order_stock_async", account.account_id))
        if not self.connected:
            return -1
        seq = self._next_seq()
        TERMINAL.cancel(self, seq, account, order_id=order_id)
        return seq

    def cancel_order_stock_sysid_async(self, account, market, sysid):
        TERMINAL.account_calls.append(("cancel_order_stock_sysid_async", account.account_id))
        if not self.connected:
            return -1
        seq = self._next_seq()
        TERMINAL.cancel(
            self, seq, account, sysid=sysid, market={"SH": 0, "SZ": 1, "BJ": 70}.get(market, market)
        )
        return seq

    def query_stock_asset(self, account):
        TERMINAL.account_calls.append(("query_stock_asset", account.account_id))
        if account.account_id not in TERMINAL.accounts:
            return None
        return TERMINAL.asset(account.account_id)

    def query_stock_orders(self, account, cancelable_only=False):
        TERMINAL.account_calls.append(("query_stock_orders", account.account_id))
        from ._terminal import TERMINAL_STATES

        return [
            o
            for o in TERMINAL.orders.values()
            if o.account_id == account.account_id
            and not (cancelable_only and o.order_status in TERMINAL_STATES)
        ]

    def query_stock_trades(self, account):
        TERMINAL.account_calls.append(("query_stock_trades", account.account_id))
        return [t for t in TERMINAL.trades if t.account_id == account.account_id]

    def query_stock_positions(self, account):
        TERMINAL.account_calls.append(("query_stock_positions", account.account_id))
        return [
            T.XtPosition(
                account.account_id,
                "600000.SH",
                1000,
                600,
                10.0,
                10500.0,
                0,
                0,
                600,
                10.0,
                48,
                10.5,
                0.05,
                "A123",
                "浦发银行",
            )
        ]

    def query_account_infos(self):
        TERMINAL.account_calls.append(("query_account_infos", None))
        return [T.XtAccountInfo(2, a, 2, 1, 0, 0) for a in TERMINAL.accounts]

    def query_account_status(self):
        TERMINAL.account_calls.append(("query_account_status", None))
        return [T.XtAccountStatus(a, 2, 0) for a in TERMINAL.accounts]
