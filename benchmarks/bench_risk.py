"""Risk chain cost: the in-process order round trip with every rule on, beside no chain.

Both clients talk to the same kind of instant venue (a MockBackend that accepts an order before
replying and fills it right after), in the same process and event loop; the orders alternate
in blocks between the client without a risk chain and the one whose chain has every rule
configured (limits set so that the orders pass: the chain judges every one of them in full).
Several rounds of that, each giving the difference of its two medians; the figure is the
median of those differences (target: <= 5 µs added), printed with every round's and the
machine's load average before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import anyio
from ratios import record

import qmtkit
from qmtkit.backends.base import (
    GetSnapshot,
    Instruments,
    ListInstruments,
    Ok,
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
from qmtkit.backends.mock import MockBackend
from qmtkit.models import Asset, InstrumentDetail, Order, OrderResponse, Tick, Trade
from qmtkit.risk import RiskLimits

CODE = "600000.SH"

EVERY_RULE = RiskLimits(
    max_order_volume=100_000,
    max_order_notional=10_000_000.0,
    max_position_volume=10_000_000,
    max_position_value=1e12,
    max_position_share=1.0,
    max_gross_exposure=1e12,
    max_active_orders=1_000,
    max_orders_per_second=1e6,
    max_cancels_per_second=1e6,
    max_actions_per_second=1e6,
    max_orders_per_day=10_000_000,
    max_cancels_per_day=10_000_000,
    max_actions_per_day=10_000_000,
    duplicate_window_ms=1,
    max_cancel_ratio=1.0,
    instant_cancel_ms=1000,
    max_instant_cancels_per_day=1_000_000,
    price_band=0.05,
    price_within_limits=True,
    self_trade=True,
    blacklist=frozenset({"000001.SZ"}),
    block_st=True,
    daily_loss_reducing=1e11,
    daily_loss_halted=1e12,
    drawdown_reducing=0.99,
    drawdown_halted=1.0,
)


def instant_venue() -> MockBackend:
    """Accepts every order before replying and fills it just after; knows one code."""
    state = {"id": 0}
    backend: MockBackend

    def handler(req: Request) -> Reply:
        if isinstance(req, QueryAsset):
            return Asset(account_id=req.account_id, cash=1e9, frozen_cash=0.0,
                         market_value=0.0, total_asset=1e9, fetch_balance=1e9)  # fmt: skip
        if isinstance(req, (QueryOrders,)):
            return Orders([])
        if isinstance(req, QueryPositions):
            return Positions([])
        if isinstance(req, GetSnapshot):
            return Snapshots([Tick(stock_code=CODE, time=0, lastPrice=10.0, open=10.0,
                                   high=10.0, low=10.0, lastClose=10.0, amount=0.0,
                                   volume=0)])  # fmt: skip
        if isinstance(req, ListInstruments):
            return Instruments([InstrumentDetail(ExchangeID="SH", InstrumentID="600000",
                                                 InstrumentName="PFYH", UpStopPrice=11.0,
                                                 DownStopPrice=9.0)])  # fmt: skip
        if not isinstance(req, SubmitOrder):
            return Ok()
        state["id"] += 1
        oid = state["id"]
        base: dict[str, Any] = {
            "account_id": req.account_id,
            "stock_code": req.stock_code,
            "order_id": oid,
            "order_type": req.order_type,
            "order_volume": req.order_volume,
            "price_type": req.price_type,
            "price": req.price,
        }
        backend.push_item(req.account_id, Order(order_status=50, **base))

        def fill() -> None:
            backend.push_item(
                req.account_id,
                Trade(account_id=req.account_id, stock_code=req.stock_code,
                      order_type=req.order_type, traded_id=str(oid), traded_time=0,
                      traded_price=req.price, traded_volume=req.order_volume,
                      traded_amount=req.price * req.order_volume, order_id=oid),
            )  # fmt: skip
            backend.push_item(
                req.account_id, Order(order_status=56, traded_volume=req.order_volume, **base)
            )

        asyncio.get_running_loop().call_soon(fill)
        return OrderResponse(account_id=req.account_id, order_id=oid)

    backend = MockBackend(handler)
    return backend


async def round_trips(
    n: int, block: int, rounds: int = 1
) -> tuple[list[list[float]], list[list[float]], dict[str, int]]:
    """Seconds per ``await (await acct.buy(...))`` without and with the chain, interleaved:
    ``rounds`` lists of ``n`` each, after a warm-up."""
    off: list[list[float]] = [[] for _ in range(rounds)]
    on: list[list[float]] = [[] for _ in range(rounds)]
    home = tempfile.mkdtemp(prefix="qmtkit-bench-risk-")
    async with (
        qmtkit.connect(backend=instant_venue(), home=home, risk=False) as plain,
        qmtkit.connect(backend=instant_venue(), home=home, risk=EVERY_RULE) as guarded,
    ):
        assert plain.risk is None and guarded.risk is not None
        a_off = await plain.account("bench")
        a_on = await guarded.account("bench")
        warmup = 2 * block
        with anyio.fail_after(600):
            for i in range(warmup + rounds * 2 * n):
                # 100 distinct (price, volume) pairs: no order repeats within the 1 ms window
                price = round(9.9 + (i % 20) * 0.01, 2)
                volume = 100 * (1 + (i // 20) % 5)
                use_on = (i // block) % 2 == 1
                acct = a_on if use_on else a_off
                t0 = time.perf_counter()
                final = await (await acct.buy(CODE, volume, price))
                elapsed = time.perf_counter() - t0
                if final.order_status != 56:
                    raise RuntimeError(f"benchmark order did not fill: {final}")
                if i >= warmup:
                    r = (i - warmup) // (2 * n)
                    (on if use_on else off)[r].append(elapsed)
        engine = guarded.risk.engine("bench")
        assert engine is not None
        refusals = dict(engine.refusals)
        rules = len(engine.rules)
    return off, on, {"rules": rules, **refusals}


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 9; quick 3)")
    args = ap.parse_args(argv)
    n = 1_000 if args.quick else 5_000
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 9)
    if rounds < 1:
        raise SystemExit(f"--rounds must be at least 1, got {rounds}")
    before = _load()
    off, on, info = asyncio.run(round_trips(n, block=100, rounds=rounds))
    after = _load()
    if len(info) > 1:
        raise RuntimeError(f"the chain refused benchmark orders: {info}")
    med = statistics.median
    moff = [med(r) * 1e6 for r in off]
    mon = [med(r) * 1e6 for r in on]
    added = [a - b for a, b in zip(mon, moff, strict=True)]
    ratio = med([a / b for a, b in zip(mon, moff, strict=True)])
    pooled_off = [x for r in off for x in r]
    pooled_on = [x for r in on for x in r]
    q = statistics.quantiles
    p99off, p99on = q(pooled_off, n=100)[98] * 1e6, q(pooled_on, n=100)[98] * 1e6
    record("order round trip median, every risk rule on / risk off", ratio)
    print(f"load average (1/5/15 min) {before} before, {after} after, on {os.cpu_count()} cores")
    print("| figure | risk chain, every rule on | no risk chain (same run) | added | target |")
    print("|---|---|---|---|---|")
    print(
        f"| order round trip median, µs (MockBackend instant venue, {info['rules']} rules, "
        f"{rounds} rounds of {n} each, interleaved; median of the rounds) | {med(mon):.2f} | "
        f"{med(moff):.2f} | {med(added):+.2f} µs ({ratio:.2f}x) | <= +5 µs |"
    )
    print(
        f"| order round trip p99, µs (all rounds) | {p99on:.1f} | {p99off:.1f} | "
        f"{p99on - p99off:+.1f} µs | - |"
    )
    print("added per round, µs: " + ", ".join(f"{a:+.2f}" for a in added))
    return 0


if __name__ == "__main__":
    sys.exit(main())
