"""``qmtkit demo``: an async strategy run end-to-end on the embedded simulator.

It subscribes to quotes, buys at the ask (filled), rests a limit order below the market and
cancels it, sends one order the venue refuses, and prints every trade report as it arrives and
the account at the end. It finishes in well under a minute.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio

import qmtkit
from qmtkit.models import (
    AccountReport,
    Asset,
    CancelError,
    Order,
    OrderError,
    Position,
    Trade,
)

CODES = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "430047.BJ"]
ACCOUNT = "demo-0001"


def describe(report: AccountReport) -> str:
    """One human line for a trade report."""
    item = report.item
    head = f"  #{report.seq:<3}"
    match item:
        case Order():
            status = qmtkit.OrderStatus(item.order_status).name
            return (
                f"{head} order  {item.order_id:>4} {item.stock_code} {status:<14} "
                f"{item.traded_volume}/{item.order_volume} @ {item.traded_price:.2f} "
                f"{item.status_msg}".rstrip()
            )
        case Trade():
            return (
                f"{head} trade  {item.order_id:>4} {item.stock_code} {item.traded_volume} @ "
                f"{item.traded_price:.2f} fees {item.commission:.2f}"
            )
        case OrderError():
            return f"{head} REFUSED {item.order_id:>3} {item.error_msg}"
        case CancelError():
            return f"{head} cancel refused {item.order_id}: {item.error_msg}"
        case Asset():
            return (
                f"{head} asset  cash {item.cash:,.2f} frozen {item.frozen_cash:,.2f} "
                f"total {item.total_asset:,.2f}"
            )
        case Position():
            return (
                f"{head} position {item.stock_code} {item.volume} "
                f"(sellable {item.can_use_volume}) cost {item.avg_price:.3f}"
            )
        case _:
            return f"{head} {type(item).__name__}"


async def strategy(url: str | None, seconds: float, home: Path) -> None:
    """The demo strategy itself."""
    async with qmtkit.connect(url, home=home) as qk:
        print(f"connected to {qk.info.kind} backend ({qk.info.url})")
        account = await qk.account(ACCOUNT)
        start = await account.asset()
        print(f"account {ACCOUNT}: cash {start.cash:,.2f}")

        async with anyio.create_task_group() as tg:
            reports_ready = anyio.Event()

            async def print_reports() -> None:
                async with account.reports() as reports:
                    reports_ready.set()
                    async for report in reports:
                        print(describe(report))

            tg.start_soon(print_reports)
            await reports_ready.wait()

            print(f"\nquotes for {', '.join(CODES)} ({seconds:g}s):")
            last: dict[str, qmtkit.Tick] = {}
            batches = records = 0
            async with qk.subscribe(CODES, "tick") as sub:
                with anyio.move_on_after(seconds):
                    async for batch in sub:
                        batches += 1
                        for tick in batch:
                            if isinstance(tick, qmtkit.Tick):
                                records += 1
                                last[tick.stock_code] = tick
                        if len(last) == len(CODES) and batches >= 3:
                            break
            for code, t in last.items():
                print(
                    f"  {code} last {t.lastPrice:>8.2f}  "
                    f"bid {t.bidPrice[0]:>8.2f} x {t.bidVol[0]:<8} "
                    f"ask {t.askPrice[0]:>8.2f} x {t.askVol[0]}"
                )
            print(f"  ({records} tick records in {batches} batches, {sub.dropped} merged)\n")

            buy_code = CODES[0]
            ask = last[buy_code].askPrice[0]
            print(f"buy 1000 {buy_code} at {ask:.2f} (crosses the ask):")
            filled = await (await account.buy(buy_code, 1000, ask, remark="demo buy")).wait()
            await anyio.wait_all_tasks_blocked()

            low = round(last[CODES[1]].bidPrice[0] * 0.97, 2)
            print(f"\nrest a buy of 500 {CODES[1]} at {low:.2f}, below the market, then cancel it:")
            resting = await account.buy(CODES[1], 500, low, remark="demo rest")
            await anyio.wait_all_tasks_blocked()
            await resting.cancel()
            canceled = await resting.wait()
            await anyio.wait_all_tasks_blocked()

            print("\nan odd-lot buy (150 shares) that the venue refuses:")
            refused = await (await account.buy(CODES[2], 150, last[CODES[2]].askPrice[0])).wait()
            await anyio.wait_all_tasks_blocked()

            print(f"\nsell today's {buy_code} (T+1 says no):")
            t1 = await (await account.sell(buy_code, 1000, last[buy_code].bidPrice[0])).wait()
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()

        print("\nsummary:")
        for name, order in (("buy", filled), ("rest", canceled), ("odd lot", refused), ("T+1", t1)):
            print(f"  {name:<8} -> {qmtkit.OrderStatus(order.order_status).name}")
        asset = await account.asset()
        print(
            f"\naccount at the end: cash {asset.cash:,.2f}, frozen {asset.frozen_cash:,.2f}, "
            f"market value {asset.market_value:,.2f}, total {asset.total_asset:,.2f}"
        )
        for p in await account.positions():
            print(
                f"  {p.stock_code} {p.volume} shares, sellable {p.can_use_volume}, "
                f"cost {p.avg_price:.3f}"
            )


def run_demo(url: str | None = None, seconds: float = 8.0, home: str | None = None) -> int:
    """Run the demo; a fresh temporary state directory unless ``home`` is given."""
    if home is not None:
        anyio.run(strategy, url, seconds, Path(home))
        return 0
    with tempfile.TemporaryDirectory(prefix="qmtkit-demo-") as tmp:
        anyio.run(strategy, url, seconds, Path(tmp))
    return 0
