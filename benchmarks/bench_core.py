"""Async core benchmarks: quote fan-out throughput and the in-process order round trip.

Run ``python benchmarks/bench_core.py`` (``--quick`` for a smoke run). Each figure is printed
as a markdown table row beside a bare-asyncio baseline measured in the same run:

(a) quote records/s from the backend's event sink through ``qk.subscribe`` to 1 and to 10
    consumers, against an ``asyncio.Queue`` per consumer passing the same pre-built batches;
(b) order round trip (submit -> accepted -> filled, i.e. ``await (await acct.buy(...))``),
    median and p99, against a future resolved by a task. It runs against the simulator when
    ``qmtkit.backends.sim.SimBackend`` exists, else against ``MockBackend`` playing an instant
    venue (the output says which).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import anyio
from ratios import record

import qmtkit
from qmtkit.backends.base import Ok, Reply, Request, SubmitOrder
from qmtkit.backends.mock import MockBackend
from qmtkit.models import Order, OrderResponse, QuoteBatch, Tick, Trade

BATCH = 1000


def make_batches(n_batches: int) -> list[list[Tick]]:
    """Pre-built batches of BATCH ticks, one tick per code per batch."""
    codes = [f"{600000 + i:06d}.SH" for i in range(BATCH)]
    out: list[list[Tick]] = []
    for b in range(n_batches):
        out.append(
            [
                Tick(
                    stock_code=c,
                    time=1_700_000_000_000 + b * 3000,
                    lastPrice=10.0 + b * 0.01,
                    open=10.0,
                    high=11.0,
                    low=9.0,
                    lastClose=10.0,
                    amount=1e6,
                    volume=1000 + b,
                )
                for c in codes
            ]
        )
    return out


# --------------------------------------------------------------------------- (a) quotes


async def qmtkit_quotes(batches: list[list[Tick]], consumers: int) -> tuple[float, int]:
    """Seconds to deliver every batch to every consumer, and records dropped (should be 0)."""
    backend = MockBackend(lambda req: Ok())
    total = len(batches) * BATCH
    async with qmtkit.connect(backend=backend) as qk:
        subs = [
            await qk.subscribe(["600000.SH"], max_records=10 * total).__aenter__()
            for _ in range(consumers)
        ]
        sub_id = subs[0].sub_id
        assert sub_id is not None
        qbatches = [QuoteBatch(sub_id=sub_id, period="tick", items=b) for b in batches]  # type: ignore[arg-type]
        done = anyio.Event()
        remaining = [consumers]

        async def consume(sub: qmtkit.Subscription) -> None:
            got = 0
            async for batch in sub:
                got += len(batch)
                if got >= total:
                    break
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

        async with anyio.create_task_group() as tg:
            for s in subs:
                tg.start_soon(consume, s)
            await anyio.wait_all_tasks_blocked()
            t0 = time.perf_counter()
            for qb in qbatches:
                backend.push_quotes(qb)
                await asyncio.sleep(0)
            await done.wait()
            elapsed = time.perf_counter() - t0
        dropped = sum(s.dropped for s in subs)
        for s in subs:
            await s.aclose()
    return elapsed, dropped


async def baseline_quotes(batches: list[list[Tick]], consumers: int) -> float:
    """The same delivery with one asyncio.Queue per consumer."""
    total = len(batches) * BATCH
    queues: list[asyncio.Queue[list[Tick]]] = [asyncio.Queue() for _ in range(consumers)]
    done = asyncio.Event()
    remaining = [consumers]

    async def consume(q: asyncio.Queue[list[Tick]]) -> None:
        got = 0
        while got < total:
            batch = await q.get()
            got += len(list(batch))  # a private copy, as the fan-out gives each consumer
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set()

    tasks = [asyncio.create_task(consume(q)) for q in queues]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for b in batches:
        for q in queues:
            q.put_nowait(b)
        await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    return elapsed


# --------------------------------------------------------------------------- (b) orders


def instant_venue() -> MockBackend:
    """A MockBackend that accepts every order before replying and fills it right after."""
    state = {"id": 0, "seq": 0}
    backend: MockBackend

    def handler(req: Request) -> Reply:
        if not isinstance(req, SubmitOrder):
            return Ok()
        state["id"] += 1
        oid = state["id"]
        base = {
            "account_id": req.account_id,
            "stock_code": req.stock_code,
            "order_id": oid,
            "order_type": req.order_type,
            "order_volume": req.order_volume,
            "price_type": req.price_type,
            "price": req.price,
        }
        backend.push_item(req.account_id, Order(order_status=50, **base))  # type: ignore[arg-type]

        def fill() -> None:
            backend.push_item(
                req.account_id,
                Trade(
                    account_id=req.account_id,
                    stock_code=req.stock_code,
                    order_type=req.order_type,
                    traded_id=str(oid),
                    traded_time=0,
                    traded_price=req.price,
                    traded_volume=req.order_volume,
                    traded_amount=req.price * req.order_volume,
                    order_id=oid,
                ),
            )
            backend.push_item(
                req.account_id,
                Order(order_status=56, traded_volume=req.order_volume, **base),  # type: ignore[arg-type]
            )

        # Accepted before the reply, filled just after it: the waiter is really woken.
        asyncio.get_running_loop().call_soon(fill)
        return OrderResponse(account_id=req.account_id, order_id=oid)

    backend = MockBackend(handler)
    return backend


def sim_available() -> bool:
    try:
        sim = importlib.import_module("qmtkit.backends.sim")
    except ImportError:
        return False
    return hasattr(sim, "SimBackend")


async def qmtkit_round_trips(n: int, use_sim: bool, url: str = "sim://?share=0") -> list[float]:
    """Seconds per ``await (await acct.buy(...))``; ``url``: the simulator's (``use_sim``)."""
    out: list[float] = []
    if use_sim:
        home = tempfile.mkdtemp(prefix="qmtkit-bench-")
        # share=0: in-process, not the shared terminal; sim://: this program hosts the terminal
        ctx = qmtkit.connect(url, home=home)
    else:
        ctx = qmtkit.connect(backend=instant_venue())
    async with ctx as qk:
        code, price = "600000.SH", 10.0
        if use_sim:
            instruments = await qk.instruments()
            stocks = [c for c, d in instruments.items() if d.UpStopPrice > 0][:50]
            snaps = await qk.snapshot(stocks)
            # The deepest ask book among cheap names: a tick's book volume is taken once, so
            # a shallow book would make some orders wait for the next tick (not a round trip).
            cheap = [kv for kv in snaps.items() if 0 < kv[1].lastPrice <= 20] or list(snaps.items())
            code, _ = max(cheap, key=lambda kv: sum(kv[1].askVol))
            # A marketable limit at the day's up-limit: it trades against the book at once
            # (at the book's prices), so every order is a real submit -> fill round trip.
            price = instruments[code].UpStopPrice
        accounts = {}
        warmup = 100
        # One deadline for the whole run: a per-order cancel scope would be timed with it.
        with anyio.fail_after(300):
            for i in range(warmup + n):
                acct_id = f"bench{i // 50}"  # a fresh paper account now and then: cash ample
                if acct_id not in accounts:
                    accounts[acct_id] = await qk.account(acct_id)
                acct = accounts[acct_id]
                t0 = time.perf_counter()
                final = await (await acct.buy(code, 100, price))
                elapsed = time.perf_counter() - t0
                if use_sim and final.order_status != 56:
                    raise RuntimeError(f"benchmark order did not fill: {final}")
                if i >= warmup:
                    out.append(elapsed)
    return out


async def baseline_round_trips(n: int) -> list[float]:
    """Seconds for a future resolved by a freshly started task."""
    loop = asyncio.get_running_loop()
    out: list[float] = []

    async def resolve(fut: asyncio.Future[int]) -> None:
        fut.set_result(1)

    for _ in range(n):
        t0 = time.perf_counter()
        fut: asyncio.Future[int] = loop.create_future()
        task = asyncio.create_task(resolve(fut))
        await fut
        out.append(time.perf_counter() - t0)
        await task
    return out


# --------------------------------------------------------------------------- report


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args(argv)
    n_batches = 50 if args.quick else 500
    n_orders = 300 if args.quick else 5000
    repeat = 1 if args.quick else 3
    batches = make_batches(n_batches)
    total = n_batches * BATCH

    print("| figure | qmtkit | bare asyncio baseline | qmtkit / baseline | target |")
    print("|---|---|---|---|---|")
    for consumers in (1, 10):
        drops: list[int] = []

        def run_q(c: int = consumers, drops: list[int] = drops) -> float:
            elapsed, dropped = asyncio.run(qmtkit_quotes(batches, c))
            drops.append(dropped)
            return elapsed

        def run_b(c: int = consumers) -> float:
            return asyncio.run(baseline_quotes(batches, c))

        tq, tb = best(run_q, repeat), best(run_b, repeat)
        rq, rb = total / tq, total / tb
        target = ">= 1,000,000 rec/s" if consumers == 1 else "-"
        record(f"quote publishing time, {consumers} consumer(s), qmtkit/bare", tq / tb)
        print(
            f"| quote records/s published, {consumers} consumer(s) "
            f"(batches of {BATCH}, {n_batches} batches; dropped {max(drops)}) "
            f"| {rq:,.0f} | {rb:,.0f} | {rq / rb:.2f} | {target} |"
        )

    use_sim = sim_available()
    base = asyncio.run(baseline_round_trips(n_orders))
    bmed, bp99 = statistics.median(base) * 1e6, pct(base, 0.99) * 1e6
    # The private in-process simulator keeps the ratio names of earlier runs; the default,
    # shared sim:// (this program hosts the terminal) gets its own.
    for url, venue, key in (
        ("sim://?share=0", "simulator (sim://?share=0)", ""),
        ("sim://", "simulator (default sim://, hosted here)", " (default sim://)"),
    ):
        if not use_sim:
            if key:
                continue
            venue = "MockBackend instant venue (SimBackend not available)"
        try:
            rt = asyncio.run(qmtkit_round_trips(n_orders, use_sim, url))
        except Exception as exc:  # the simulator is optional here: fall back and say so
            if not use_sim or key:
                raise
            print(f"<!-- simulator round trip failed ({exc!r}); falling back to MockBackend -->")
            venue = "MockBackend instant venue (simulator failed)"
            rt = asyncio.run(qmtkit_round_trips(n_orders, False))
        med, p99 = statistics.median(rt) * 1e6, pct(rt, 0.99) * 1e6
        record(f"order round trip median{key}, qmtkit/bare", med / bmed)
        record(f"order round trip p99{key}, qmtkit/bare", p99 / bp99)
        print(
            f"| order round trip median, µs ({venue}, n={n_orders}) "
            f"| {med:.1f} | {bmed:.1f} | {med / bmed:.1f} | <= 30 µs |"
        )
        print(
            f"| order round trip p99, µs ({venue}, n={n_orders}) "
            f"| {p99:.1f} | {bp99:.1f} | {p99 / bp99:.1f} | <= 100 µs |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
