"""The xtquant shim's cost: the same work through ``xtdata``/``xttrader`` and the async API.

Run ``python benchmarks/bench_compat.py`` (``--quick`` for a smoke run). Figures, measured in
one run on one synthetic cache and one simulator:

* ``get_market_data_ex`` of 1 code and of N codes (default 5,000 x 500 daily bars) — the shim
  (cache read + pandas frames indexed by 'YYYYMMDD' strings) beside ``await qk.data.bars(...)``
  (the Polars frame the shim starts from);
* the same single-code frame built straight from numpy arrays (same columns, index and
  dtypes: the floor any pandas shaping pays);
* a marketable buy until it is filled: ``order_stock`` until ``on_stock_order`` reports it
  filled (the callback thread) beside ``await (await account.buy(...))`` through the client,
  both on the embedded simulator.

The table is markdown: figure, shim, async API, shim / async.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ratios import record

DAY_MS = 86_400_000
ORDER_CODE = "600000.SH"
FILLED = 56  # xtquant's ORDER_SUCCEEDED
WARMUP = 20
BEIJING_MS = 8 * 3_600_000
PRIVATE = "sim://?share=0"
#: Seconds the async baseline's loop thread sleeps before each order in the idle-loop row.
IDLE_S = 100e-6


def synthetic_codes(n: int) -> list[str]:
    """``n`` valid A-share codes (SH main board first, then SZ main board and ChiNext)."""
    pools = [f"{p}{i:03d}.SH" for p in ("600", "601", "603", "605") for i in range(1000)]
    pools += [f"{p}{i:03d}.SZ" for p in ("000", "001", "002", "300") for i in range(1, 1000)]
    if n > len(pools):
        raise SystemExit(f"at most {len(pools)} synthetic codes, asked for {n}")
    return pools[:n]


def write_cache(home: Path, codes: list[str], days: int) -> None:
    """Daily bars for every code into the qmtkit cache under ``home`` (seeded, vectorised)."""
    from qmtkit.data.cache import Cache

    rng = np.random.default_rng(20240101)
    t = (np.arange(days, dtype=np.int64) + 19_000) * DAY_MS - BEIJING_MS
    data: dict[str, dict[str, np.ndarray]] = {}
    for code in codes:
        close = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.02, days))), 2)
        data[code] = {
            "time": t,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.integers(1_000, 100_000, days),
            "amount": close * 1e5,
            "preClose": np.roll(close, 1),
            "suspendFlag": np.zeros(days, dtype=np.int8),
        }
    Cache(home).write_bars("1d", data)


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds per call, ``repeat`` calls after one warm-up."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def row(
    key: str, name: str, shim: list[float], base: list[float], pct: float = 50, target: str = ""
) -> None:
    """One table row; ``key`` names its ratio for ``run_all.py --compare``."""
    s, b = float(np.percentile(shim, pct)), float(np.percentile(base, pct))
    record(key, s / b)
    print(f"| {name} | {fmt(s)} | {fmt(b)} | {s / b:.2f}x | {target} |")


def numpy_floor(frame: Any) -> Callable[[], Any]:
    """Build the single-code frame straight from numpy: same columns, index and dtypes.

    The arrays and the label index are made before timing (the shim keeps recent label
    indexes too), so the floor is the DataFrame construction alone.
    """
    import pandas as pd

    from qmtkit.compat._shapes import KLINE_FIELDS
    from qmtkit.data.frames import time_strings

    ms = frame.get_column("time").to_physical().to_numpy().copy()
    cols: dict[str, Any] = {}
    for f in KLINE_FIELDS:
        if f == "time":
            cols[f] = ms
        elif f in frame.columns:
            cols[f] = frame.get_column(f).to_numpy().copy()
        else:
            cols[f] = np.zeros(len(ms), dtype=np.float64 if f == "settelementPrice" else np.int64)
    index = pd.Index(time_strings(ms, False))
    return lambda: pd.DataFrame(cols, index=index, copy=False)


def pandas_floor(frame: Any) -> dict[str, Any]:
    """The least any pandas shaping pays: one frame over the columns, one slice per code."""
    import gc

    import pandas as pd

    cols = {n: frame.get_column(n).to_physical().to_numpy() for n in frame.columns if n != "code"}
    codes = frame.get_column("code").to_physical().to_numpy()
    starts = np.concatenate(([0], np.flatnonzero(np.diff(codes)) + 1, [len(codes)]))
    big = pd.DataFrame(cols, copy=False)
    gc.disable()
    try:
        return {i: big.iloc[starts[i] : starts[i + 1]] for i in range(len(starts) - 1)}
    finally:
        gc.enable()


def async_side(
    codes: list[str], one: str, n_orders: int, repeat_one: int, repeat_all: int
) -> dict[str, list[float]]:
    """The same work through the async client (its own simulator terminal)."""
    import anyio

    import qmtkit.client as client_mod

    results: dict[str, list[float]] = {}

    async def main() -> None:
        async with client_mod.connect("sim://?terminal=bench-async") as qk:
            data = qk.data

            def read_one() -> Any:
                return data.read_bars([one], "1d", None, None, -1)

            def read_all() -> Any:
                return data.read_bars(codes, "1d", None, None, -1)

            async def bars_one() -> None:
                await data.bars([one], "1d")

            async def bars_all() -> None:
                await data.bars(codes, "1d")

            await bars_one()
            one_t = []
            for _ in range(repeat_one):
                t0 = time.perf_counter()
                await bars_one()
                one_t.append(time.perf_counter() - t0)
            results["one"] = one_t
            await bars_all()
            all_t = []
            for _ in range(repeat_all):
                t0 = time.perf_counter()
                await bars_all()
                all_t.append(time.perf_counter() - t0)
            results["all"] = all_t
            results["floor"] = timed(lambda: pandas_floor(read_all()), repeat_all)
            results["one_floor"] = timed(numpy_floor(read_one()), repeat_one)
            results["order"] = await buy_until_filled(qk, n_orders)

    anyio.run(main)
    return results


def shim_side(
    codes: list[str], one: str, n_orders: int, repeat_one: int, repeat_all: int
) -> dict[str, list[float]]:
    """The work through the xtquant shim."""
    from qmtkit.compat import xtdata

    xtdata.enable_hello = False
    xtdata.connect()
    # The many-code read goes first: it also lets the simulator finish starting up, which
    # would otherwise compete for the GIL with the short single-code calls.
    results = {"all": timed(lambda: xtdata.get_market_data_ex([], codes, "1d"), repeat_all)}
    results["one"] = timed(lambda: xtdata.get_market_data_ex([], [one], "1d"), repeat_one)
    check = xtdata.get_market_data_ex([], codes[:2], "1d")
    assert len(check[codes[1]]) > 0
    inst = xtdata.get_instrument_detail("600000.SH")
    assert inst is not None
    price = inst["DownStopPrice"]
    # One simulator at a time, as on the async side: the data connection's goes first.
    xtdata.disconnect()
    del price

    results["order"] = shim_orders(n_orders)
    return results


def shim_orders(n_orders: int) -> list[float]:
    """Seconds from ``order_stock`` to ``on_stock_order`` reporting the fill, per order."""
    from qmtkit.compat import xtconstant
    from qmtkit.compat.xttrader import XtQuantTrader, XtQuantTraderCallback
    from qmtkit.compat.xttype import StockAccount

    filled = threading.Event()
    done: dict[int, float] = {}

    class Callback(XtQuantTraderCallback):
        def on_stock_order(self, order: Any) -> None:
            if order.order_status == FILLED:
                done[order.order_id] = time.perf_counter()
                filled.set()

    trader = XtQuantTrader("/bench/userdata_mini", 1)
    trader.register_callback(Callback())
    trader.start()
    assert trader.connect() == 0
    acc = StockAccount("bench-shim")
    assert trader.subscribe(acc) == 0
    up = trader_up_limit()
    order_t = []
    for i in range(WARMUP + n_orders):
        filled.clear()
        t0 = time.perf_counter()
        oid = trader.order_stock(
            acc, ORDER_CODE, xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, up
        )
        assert oid > 0, oid
        if not filled.wait(30):
            raise RuntimeError(f"order {oid} was not reported filled within 30 s")
        if i >= WARMUP:
            order_t.append(done[oid] - t0)
    trader.stop()
    return order_t


def async_orders(url: str, n_orders: int, idle: float = 0.0) -> list[float]:
    """Seconds per ``await (await account.buy(...))`` on a client of ``url``; ``idle``: see
    ``buy_until_filled``."""
    import anyio

    import qmtkit.client as client_mod

    out: list[float] = []

    async def main() -> None:
        async with client_mod.connect(url) as qk:
            out.extend(await buy_until_filled(qk, n_orders, idle))

    anyio.run(main)
    return out


async def buy_until_filled(qk: Any, n_orders: int, idle: float = 0.0) -> list[float]:
    """Marketable buys, each awaited until filled; seconds per order after the warm-up.

    ``idle`` > 0: the loop's thread sleeps that long (outside the timing) before each order,
    as the shim's loop thread sleeps between two calls: the order then runs on a core that has
    done other work meanwhile, as the shim's does, instead of straight after the last one.
    """
    acc = await qk.account("bench-async")
    inst = await qk.instrument(ORDER_CODE)
    assert inst is not None
    # A marketable limit at the up-limit trades at once: every order is submit -> fill.
    price = inst.UpStopPrice
    order_t = []
    for i in range(WARMUP + n_orders):
        if idle > 0:
            time.sleep(idle)  # blocking on purpose: the thread itself is to go idle
        t0 = time.perf_counter()
        final = await (await acc.buy(ORDER_CODE, 100, price))
        elapsed = time.perf_counter() - t0
        assert final.order_status == FILLED, final
        if i >= WARMUP:
            order_t.append(elapsed)
    return order_t


def trader_up_limit() -> float:
    """Today's up-limit of the order code, asked through the shim's data side."""
    from qmtkit.compat import xtdata

    xtdata.connect()
    try:
        inst = xtdata.get_instrument_detail(ORDER_CODE)
        assert inst is not None
        return float(inst["UpStopPrice"])
    finally:
        xtdata.disconnect()


def load() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # not on this platform
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--codes", type=int, default=None, help="codes in the many-code read")
    ap.add_argument("--days", type=int, default=None, help="daily bars per code")
    ap.add_argument("--orders", type=int, default=None, help="orders per side")
    args = ap.parse_args(argv)
    n_codes = args.codes or (300 if args.quick else 5000)
    days = args.days or (250 if args.quick else 500)
    n_orders = args.orders or (50 if args.quick else 300)
    repeat_one, repeat_all = (50, 2) if args.quick else (300, 5)
    print(f"<!-- load average at the start: {load()} -->")
    with tempfile.TemporaryDirectory(prefix="qmtkit-bench-compat-") as tmp:
        home = Path(tmp)
        os.environ["QMTKIT_HOME"] = str(home)
        os.environ.pop("QMTKIT_BACKEND", None)
        codes = synthetic_codes(n_codes)
        t0 = time.perf_counter()
        write_cache(home, codes, days)
        print(
            f"<!-- cache: {n_codes} codes x {days} daily bars written in "
            f"{time.perf_counter() - t0:.1f} s -->",
            file=sys.stderr,
        )
        one = codes[0]
        shim = shim_side(codes, one, n_orders, repeat_one, repeat_all)
        base = async_side(codes, one, n_orders, repeat_one, repeat_all)
        # The same orders on a private in-process simulator (sim://?share=0) on both sides.
        os.environ["QMTKIT_BACKEND"] = PRIVATE
        private_shim = shim_orders(n_orders)
        private_async = async_orders(f"{PRIVATE}&terminal=bench-async", n_orders)
        os.environ.pop("QMTKIT_BACKEND", None)
        idle_async = async_orders("sim://?terminal=bench-async-idle", n_orders, IDLE_S)
        from qmtkit.compat._bridge import bridge

        bridge().shutdown()
    print(f"<!-- load average at the end: {load()} (2-core hosts: above 2 is contention) -->")
    print("| figure | xtquant shim | baseline | shim / baseline | target |")
    print("|---|---|---|---|---|")
    one, many = f"1 code x {days} bars", f"{n_codes} codes x {days} bars"
    row(
        "ex one/async",
        f"get_market_data_ex, {one}, median; baseline: async `qk.data.bars`",
        shim["one"],
        base["one"],
    )
    row(
        "ex one/numpy floor",
        f"get_market_data_ex, {one}, median; baseline: the same DataFrame built from numpy arrays",
        shim["one"],
        base["one_floor"],
        target="≤ 1.5x",
    )
    row(
        "ex many/async",
        f"get_market_data_ex, {many}, median; baseline: async `qk.data.bars`",
        shim["all"],
        base["all"],
    )
    row(
        "ex many/pandas floor",
        f"get_market_data_ex, {many}, median; baseline: the pandas "
        f"floor (1 frame + {n_codes} slices, no labels)",
        shim["all"],
        base["floor"],
    )
    row(
        "buy to filled median/async",
        "buy → filled, median: `order_stock` → `on_stock_order`;"
        " baseline: async `await (await account.buy(...))`",
        shim["order"],
        base["order"],
        target="≤ 3x",
    )
    row("buy to filled p99/async", "buy → filled, p99 (as above)", shim["order"], base["order"], 99)
    row(
        "buy to filled median/async (share=0)",
        "buy → filled, median, both on a private simulator (`sim://?share=0`)",
        private_shim,
        private_async,
        target="≤ 3x",
    )
    row(
        "buy to filled p99/async (share=0)",
        "buy → filled, p99 (as above)",
        private_shim,
        private_async,
        99,
    )
    row(
        "buy to filled median/async after idle",
        "informative, not the target: buy → filled, median, default `sim://`; baseline: "
        f"async, its loop's thread asleep {IDLE_S * 1e6:.0f} µs before each order (as the "
        "shim's is between calls)",
        shim["order"],
        idle_async,
    )
    print()
    print(
        "The first two order figures are marketable buys on the default `sim://` (since the "
        "shared terminal, a lone program hosts it and reaches the simulator directly), the last "
        "two on a private in-process simulator (`sim://?share=0`); each timed from the call "
        "until the fill is seen (the shim: in its callback thread). "
        f"{statistics.mean([len(shim['order']), len(base['order'])]):.0f} orders per side "
        f"after {WARMUP} warm-up orders. The target (≤ 3x) is judged on the plain ratio to the "
        "async API; the last row is informative only: the async API with its loop thread gone "
        "cold (asleep before each order), as the shim's order would run if the shim's loop "
        "thread placed it rather than the caller's thread it borrows the idle loop for."
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
