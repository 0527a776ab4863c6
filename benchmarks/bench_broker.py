"""The paper broker's own cost per order, at backtest scale: 1,000,000 orders, no wall clock.

Run ``python benchmarks/bench_broker.py`` (``--quick``: 100,000 orders). The broker is the
pure state machine every simulated venue shares (``sim://`` today, the backtest next), so
this is what a backtest pays per order before any strategy code runs. Time is virtual: each
order is stamped 3 s of session time after the previous one and a new trading day starts
every 4,800 orders (one day of 3 s steps), which releases yesterday's buys for sale (T+1).

Orders alternate between a marketable buy (it fills against the book at once: an order, a
freeze, a trade, position and asset reports) and, once shares are sellable, a marketable
sell; every 10th order is a passive buy that rests and is cancelled by the next order.

A second figure runs the same inputs the way a backtest's fast form meets the broker: the
account makes no ``Asset``/``Position`` reports (``state_reports(..., False)``), every order
is placed without a book (it rests) and fills when ``on_tick`` brings the step's book, a new
tick per order (two tick objects with different times, made before the clock starts, take
turns: the market's input is not the broker's cost).

Baseline, in the same run: a bare Python loop over the same inputs that does the least an
order book must (the amount, one dict update per side, a list append per report) — the
interpreter's floor for per-order work written in Python.
"""

from __future__ import annotations

import argparse
import sys
import time

from ratios import record

from qmtkit.backends.sim.broker import Broker
from qmtkit.messages import SubmitOrder
from qmtkit.models import InstrumentDetail, Tick

CODE = "600000.SH"
ACCOUNT = "bench"
T0 = 1_736_213_400_000  # 2025-01-07 09:30 Beijing, Unix ms
STEP_MS = 3_000
ORDERS_PER_DAY = 4_800
BUY, SELL, FIX = 23, 24, 11


def instrument() -> InstrumentDetail:
    """Reference data for the one code traded."""
    return InstrumentDetail(
        ExchangeID="SH", InstrumentID="600000", InstrumentName="PFB", PreClose=10.0,
        UpStopPrice=11.0, DownStopPrice=9.0, PriceTick=0.01, IsTrading=True, board="main",
    )  # fmt: skip


def book(now: int) -> Tick:
    """A deep book around 10.00 (every marketable order fills in full)."""
    return Tick(
        stock_code=CODE, time=now, lastPrice=10.0, open=10.0, high=10.0, low=10.0,
        lastClose=10.0, amount=0.0, volume=0,
        askPrice=[10.01, 10.02, 10.03, 10.04, 10.05], askVol=[10**9] * 5,
        bidPrice=[10.0, 9.99, 9.98, 9.97, 9.96], bidVol=[10**9] * 5,
    )  # fmt: skip


def inputs(n: int) -> list[tuple[int, int, SubmitOrder | None]]:
    """(time, day, order or None for "cancel the last resting order"), the same for both."""
    out: list[tuple[int, int, SubmitOrder | None]] = []
    day_ms = 86_400_000
    for i in range(n):
        d = i // ORDERS_PER_DAY
        now = T0 + d * day_ms + (i % ORDERS_PER_DAY) * STEP_MS // 2
        day = int(time.strftime("%Y%m%d", time.gmtime((now + 8 * 3_600_000) / 1000)))
        if i % 10 == 9:
            out.append((now, day, None))
        elif i % 10 == 8:
            out.append((now, day, SubmitOrder(ACCOUNT, CODE, BUY, 100, FIX, 9.5)))
        elif d > 0 and i % 2:
            out.append((now, day, SubmitOrder(ACCOUNT, CODE, SELL, 100, FIX, 10.0)))
        else:
            out.append((now, day, SubmitOrder(ACCOUNT, CODE, BUY, 100, FIX, 10.01)))
    return out


def run_broker(orders: list[tuple[int, int, SubmitOrder | None]]) -> tuple[float, int, int]:
    """Seconds for every order through the broker; (seconds, reports, fills)."""
    broker = Broker(initial_cash=1e12)
    inst = instrument()
    broker.roll_day(orders[0][1])
    broker.open_account(ACCOUNT)
    reports = fills = 0
    day = orders[0][1]
    last_resting = 0
    tick = book(orders[0][0])  # the market's input, made once: not the broker's cost
    t0 = time.perf_counter()
    for now, today, req in orders:
        if today != day:
            reports += len(broker.roll_day(today))
            day = today
        if req is None:
            _, items = broker.cancel(ACCOUNT, last_resting, now)
        else:
            response, items = broker.submit(req, book=tick, instrument=inst, now_ms=now, day=today)
            if req.price == 9.5:
                last_resting = response.order_id
            fills += sum(1 for item in items if type(item).__name__ == "Trade")
        reports += len(items)
    return time.perf_counter() - t0, reports, fills


def run_backtest_form(
    orders: list[tuple[int, int, SubmitOrder | None]],
) -> tuple[float, int, int]:
    """Seconds for every order placed without a book and filled by the next ``on_tick``, on a
    quiet account (a backtest's fast form); (seconds, reports, fills)."""
    broker = Broker(initial_cash=1e12)
    inst = instrument()
    broker.roll_day(orders[0][1])
    broker.open_account(ACCOUNT)
    broker.state_reports(ACCOUNT, False)
    reports = fills = 0
    day = orders[0][1]
    last_resting = 0
    ticks = (book(orders[0][0]), book(orders[0][0] + 1))  # two times: each call a new tick
    t0 = time.perf_counter()
    for i, (now, today, req) in enumerate(orders):
        if today != day:
            reports += len(broker.roll_day(today))
            day = today
        if req is None:
            _, items = broker.cancel(ACCOUNT, last_resting, now)
            reports += len(items)
            continue
        response, items = broker.submit(req, book=None, instrument=inst, now_ms=now, day=today)
        if req.price == 9.5:
            last_resting = response.order_id
        matched = broker.on_tick(ticks[i & 1], now)
        fills += sum(1 for _, item in matched if type(item).__name__ == "Trade")
        reports += len(items) + len(matched)
    return time.perf_counter() - t0, reports, fills


def run_bare(orders: list[tuple[int, int, SubmitOrder | None]]) -> float:
    """The same inputs through the least per-order work a Python book does."""
    cash = 1e12
    shares: dict[str, int] = {}
    log: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    for now, _, req in orders:
        if req is None:
            log.append((now, 0.0))
            continue
        amount = req.price * req.order_volume
        sign = 1 if req.order_type == BUY else -1
        cash -= sign * amount
        shares[req.stock_code] = shares.get(req.stock_code, 0) + sign * req.order_volume
        log.append((now, amount))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="100,000 orders instead of 1,000,000")
    args = ap.parse_args(argv)
    n = 100_000 if args.quick else 1_000_000
    orders = inputs(n)
    seconds, reports, fills = run_broker(orders)
    quiet, quiet_reports, quiet_fills = run_backtest_form(orders)
    bare = run_bare(orders)
    record("broker seconds per order / bare loop", seconds / bare)
    record("broker, backtest form, seconds per order / bare loop", quiet / bare)
    print("| figure | broker | bare Python loop, same inputs | broker / bare |")
    print("|---|---|---|---|")
    print(f"| {n:,} orders on a virtual clock, orders/s | {n / seconds:,.0f} | {n / bare:,.0f} "
          f"| {seconds / bare:.1f}x the time |")  # fmt: skip
    print(f"| µs per order | {seconds / n * 1e6:.2f} | {bare / n * 1e6:.3f} | |")
    print(f"| µs per order, backtest form (rests, fills on the next tick; no Asset/Position "
          f"reports) | {quiet / n * 1e6:.2f} | {bare / n * 1e6:.3f} | {quiet / bare:.1f}x the "
          "time |")  # fmt: skip
    print()
    print(f"Backtest form: {quiet_reports:,} reports and {quiet_fills:,} fills.")
    print(f"{reports:,} reports and {fills:,} fills produced; {n // ORDERS_PER_DAY + 1} virtual "
          "trading days. The broker's figure is what a backtest pays per order before strategy "
          "code; the baseline does no A-share checks, no fees and no reports.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
