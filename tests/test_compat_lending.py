"""order_stock on the simulator, placed on the caller's thread when the shim's loop is idle.

The semantics that lending must keep (docs/architecture.md, "Threads and loops"): callbacks run
on a thread of their own, one at a time, in the venue's order, never on the caller's or the
loop's thread; a callback may call order_stock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from qmtkit.compat import xtconstant
from qmtkit.compat._bridge import bridge
from qmtkit.compat._lending import LendingLoop
from qmtkit.compat.xttrader import XtQuantTrader, XtQuantTraderCallback
from qmtkit.compat.xttype import StockAccount

WAIT = 20.0
SUBMITTED_OR_LATER = {50, 55, 56}


@pytest.fixture
def private_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    monkeypatch.setenv("QMTKIT_BACKEND", "sim://?share=0")
    return tmp_path


class Chain(XtQuantTraderCallback):
    """Places the next order from inside on_stock_order until ``n`` orders were placed in all."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.trader: XtQuantTrader | None = None
        self.acc = StockAccount("lend-acct")
        self.placed: list[int] = []
        self.pushed: list[tuple[int, str]] = []
        self.first_seen: list[int] = []
        self.chained = 0
        self.done = threading.Event()

    def on_stock_order(self, order: Any) -> None:
        self.pushed.append((order.order_id, threading.current_thread().name))
        if order.order_id in self.first_seen:
            return
        self.first_seen.append(order.order_id)
        # Counted here, not by len(placed): the caller's first order may reach this callback
        # before the caller has recorded its id.
        if self.chained < self.n - 1:
            self.chained += 1
            self.placed.append(self.order())
        else:
            self.done.set()

    def order(self) -> int:
        assert self.trader is not None
        return self.trader.order_stock(
            self.acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.LATEST_PRICE, 0
        )


def test_a_callback_that_orders_chains_orders_without_deadlock_in_venue_order(
    private_sim: Path,
) -> None:
    chain = Chain(30)
    trader = XtQuantTrader("/qmt/userdata_mini", 7, chain)
    chain.trader = trader
    trader.start()
    try:
        assert trader.connect() == 0
        assert trader.subscribe(chain.acc) == 0
        chain.placed.append(chain.order())
        assert chain.done.wait(WAIT)
        assert all(oid > 0 for oid in chain.placed) and len(set(chain.placed)) == 30
        # Each order's pushes come after its predecessor's, on one thread that is neither
        # the caller's nor the loop's.
        assert chain.first_seen == sorted(chain.placed)  # the venue numbers them in turn
        threads = {name for _, name in chain.pushed}
        assert len(threads) == 1
        assert threads.isdisjoint({threading.current_thread().name, "qmtkit-loop"})
    finally:
        trader.stop()


def test_orders_from_two_threads_reach_the_callback_in_the_order_the_venue_took_them(
    private_sim: Path,
) -> None:
    seen: list[int] = []

    class Record(XtQuantTraderCallback):
        def on_stock_order(self, order: Any) -> None:
            if order.order_id not in seen:
                seen.append(order.order_id)

    trader = XtQuantTrader("/qmt/userdata_mini", 8, Record())
    trader.start()
    acc = StockAccount("lend-two")
    try:
        assert trader.connect() == 0
        assert trader.subscribe(acc) == 0
        placed: list[int] = []
        lock = threading.Lock()

        def place(k: int) -> None:
            for _ in range(k):
                oid = trader.order_stock(
                    acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.LATEST_PRICE, 0
                )
                with lock:
                    placed.append(oid)

        other = threading.Thread(target=place, args=(25,))
        other.start()
        place(25)
        other.join(WAIT)
        assert trader.query_stock_orders(acc) is not None
        done = threading.Event()
        trader._dispatcher.submit(done.set)  # type: ignore[union-attr]
        assert done.wait(WAIT)
        assert len(placed) == 50 and all(oid > 0 for oid in placed)
        assert seen == sorted(placed)  # the venue numbers orders in the order it took them
    finally:
        trader.stop()


def test_a_stopped_trader_and_a_new_one_after_lent_orders(private_sim: Path) -> None:
    got = threading.Event()

    class Once(XtQuantTraderCallback):
        def on_stock_order(self, order: Any) -> None:
            got.set()

    acc = StockAccount("lend-stop")
    for session in (9, 10):
        got.clear()
        trader = XtQuantTrader("/qmt/userdata_mini", session, Once())
        trader.start()
        try:
            assert trader.connect() == 0
            assert trader.subscribe(acc) == 0
            oid = trader.order_stock(
                acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.LATEST_PRICE, 0
            )
            assert oid > 0
            assert got.wait(WAIT)
        finally:
            trader.stop()
        assert trader._dispatcher is not None and not trader._dispatcher.thread.is_alive()
    bridge().shutdown()


class IdleWatch:
    """Knows when the shim's loop is idle: blocked waiting, nothing queued, nothing lent out.

    It wraps the selector's blocking wait (which runs with the loop's baton free) and the
    loop's ``run_lent`` (a borrower holds the baton until it returns). A thread that waits
    for idleness then finds the loop idle, unless a timer wakes the loop in between.
    """

    def __init__(self, loop: LendingLoop) -> None:
        self.loop = loop
        self.cond = threading.Condition()
        self.waiting = False
        self.lent = 0
        real_wait = loop.lending._wait
        real_run_lent = loop.run_lent
        watch = self

        class Poll:
            def poll(self, ms: int | None) -> Any:
                watch._set(waiting=True)
                try:
                    return real_wait.poll(ms)
                finally:
                    watch._set(waiting=False)

        def run_lent(fn: Any, *args: object) -> Any:
            with self.cond:
                self.lent += 1
            try:
                return real_run_lent(fn, *args)
            finally:
                with self.cond:
                    self.lent -= 1
                    self.cond.notify_all()

        loop.lending._wait = Poll()  # type: ignore[assignment]
        loop.run_lent = run_lent  # type: ignore[method-assign]
        # The loop may be inside the real wait now: wake it so its next wait is watched.
        loop.call_soon_threadsafe(lambda: None)

    def _set(self, *, waiting: bool) -> None:
        with self.cond:
            self.waiting = waiting
            self.cond.notify_all()

    def wait_idle(self) -> None:
        def idle() -> bool:
            return self.waiting and not self.loop._ready and not self.lent

        with self.cond:
            assert self.cond.wait_for(idle, WAIT)


def test_an_order_on_an_idle_loop_is_placed_on_the_calling_thread(
    private_sim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed_on: list[str] = []
    real = XtQuantTrader._order_at_once

    def spy(self: XtQuantTrader, acc: Any, args: Any) -> Any:
        placed_on.append(threading.current_thread().name)
        return real(self, acc, args)

    monkeypatch.setattr(XtQuantTrader, "_order_at_once", spy)

    class WaitIdle(Chain):
        """Places each chained order only once the loop is idle (after this order's pushes)."""

        watch: IdleWatch | None = None

        def order(self) -> int:
            assert self.watch is not None
            self.watch.wait_idle()
            return super().order()

    chain = WaitIdle(3)
    trader = XtQuantTrader("/qmt/userdata_mini", 11, chain)
    chain.trader = trader
    trader.start()
    try:
        assert trader.connect() == 0
        assert trader.subscribe(chain.acc) == 0
        loop = bridge()._loop
        assert isinstance(loop, LendingLoop)
        chain.watch = IdleWatch(loop)
        chain.placed.append(chain.order())
        assert chain.done.wait(WAIT)
        # The first order from this thread, the next two from inside on_stock_order, each made
        # once the loop was idle. Only the simulator's tick timer could wake the loop between
        # that and the order (a wake-up a second, a window of microseconds): at most one.
        callback_thread = chain.pushed[0][1]
        callers = [threading.current_thread().name, callback_thread, callback_thread]
        assert len(placed_on) == 3
        pairs = list(zip(placed_on, callers, strict=True))
        assert all(got in (caller, "qmtkit-loop") for got, caller in pairs)
        assert sum(got == caller for got, caller in pairs) >= 2
    finally:
        trader.stop()
