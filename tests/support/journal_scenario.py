"""A seeded trading scenario recorded into a simulator journal, and the account invariants.

Used by the crash tests: the scenario exercises every path that journals reports (orders
filled when placed, resting orders filled on later ticks, cancels, a day roll that expires
open orders and settles T+1), and ``check_invariants`` says whether a set of journaled
reports describes a consistent account.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from pathlib import Path

import anyio

from qmtkit.backends.base import CancelOrder, OpenAccount, SubmitOrder
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.sim.broker import Broker
from qmtkit.clock import BEIJING, VirtualClock
from qmtkit.constants import OrderStatus, OrderType, PriceType
from qmtkit.models import AccountReport, Order, OrderResponse, Trade

ACCOUNTS = ("crash-a", "crash-b")
CODES = ("600000.SH", "000001.SZ", "600519.SH")
INITIAL_CASH = 1_000_000.0
_OPEN = (int(OrderStatus.REPORTED), int(OrderStatus.PART_SUCC))


class _Sink:
    def on_quotes(self, batch: object) -> None:
        pass

    def on_report(self, report: AccountReport) -> None:
        pass

    def on_connection(self, state: object) -> None:
        pass


def _start() -> int:
    return int(dt.datetime(2024, 6, 3, 10, 0, tzinfo=BEIJING).timestamp() * 1000)


async def record_scenario(home: Path, *, seed: int, orders: int) -> Path:
    """Trade ``orders`` seeded orders over two days on a simulator in ``home``; its journal."""
    rng = random.Random(seed)
    clock = VirtualClock(_start())
    backend = SimBackend(home=home, clock=clock, initial_cash=INITIAL_CASH)
    open_orders: list[tuple[str, int]] = []
    async with backend.open(_Sink()):  # type: ignore[arg-type]
        for account in ACCOUNTS:
            await backend.request(OpenAccount(account))
        for i in range(orders):
            if i == orders // 2:
                clock.advance(24 * 3600)  # the next trading day: expiries and T+1
                await anyio.wait_all_tasks_blocked()
            account = rng.choice(ACCOUNTS)
            code = rng.choice(CODES)
            tick = backend.market.tick(code, backend.session_now())
            sell = i >= orders // 2 and rng.random() < 0.4
            side = OrderType.STOCK_SELL if sell else OrderType.STOCK_BUY
            # crossing now, or a few ticks away so that it rests and fills later (or never)
            ticks_away = rng.choice((0, 0, 1, 2, 3, 5))
            if sell:
                price = tick.bidPrice[0] + ticks_away * 0.01
            else:
                price = tick.askPrice[0] - ticks_away * 0.01
            volume = 100 * rng.randint(1, 4)
            reply = await backend.request(
                SubmitOrder(
                    account, code, int(side), volume, int(PriceType.FIX_PRICE), round(price, 2)
                )
            )
            if isinstance(reply, OrderResponse) and reply.order_id > 0:
                open_orders.append((account, reply.order_id))
            if open_orders and rng.random() < 0.15:
                account, order_id = open_orders.pop(rng.randrange(len(open_orders)))
                await backend.request(CancelOrder(account, order_id))
            clock.advance(3 * rng.randint(1, 8))  # resting orders meet the next books
            await anyio.wait_all_tasks_blocked()
    return backend.state_dir / "journal.bin"


async def reopen_scenario(home: Path) -> None:
    """Open the scenario's accounts again two days after it started (restore and day roll)."""
    clock = VirtualClock(_start() + 2 * 24 * 3600 * 1000)
    backend = SimBackend(home=home, clock=clock, initial_cash=INITIAL_CASH)
    async with backend.open(_Sink()):  # type: ignore[arg-type]
        for account in ACCOUNTS:
            await backend.request(OpenAccount(account))


def check_invariants(reports: list[AccountReport]) -> None:
    """Assert that ``reports`` (a journal's content, oldest first) describe sound accounts."""
    seqs: dict[str, list[int]] = defaultdict(list)
    for r in reports:
        seqs[r.account_id].append(r.seq)
    for account, got in seqs.items():
        assert got == list(range(1, len(got) + 1)), f"{account}: seq not contiguous"
    broker = Broker.restore(reports, initial_cash=INITIAL_CASH)
    trades = [r.item for r in reports if isinstance(r.item, Trade)]
    assert len({t.traded_id for t in trades}) == len(trades), "a fill was journaled twice"
    last_order: dict[int, Order] = {}
    for r in reports:
        if isinstance(r.item, Order):
            last_order[r.item.order_id] = r.item
    for account in broker.known_accounts:
        mine = [t for t in trades if t.account_id == account]
        cash = INITIAL_CASH
        net: dict[str, int] = defaultdict(int)
        for t in mine:
            if t.order_type == int(OrderType.STOCK_BUY):
                cash -= t.traded_amount + t.commission
                net[t.stock_code] += t.traded_volume
            else:
                cash += t.traded_amount - t.commission
                net[t.stock_code] -= t.traded_volume
        asset = broker.asset(account)
        assert round(asset.cash + asset.frozen_cash, 2) == round(cash, 2), (
            f"{account}: cash {asset.cash} + frozen {asset.frozen_cash} != {cash:.2f} "
            "from fills and fees"
        )
        held = {p.stock_code: p.volume for p in broker.positions(account) if p.volume}
        assert held == {c: v for c, v in net.items() if v}, f"{account}: positions != net fills"
        for p in broker.positions(account):
            if p.volume:
                assert p.open_price > 0, f"{account}: {p.stock_code} held at no cost"
        orders = broker.orders(account)
        ids = [o.order_id for o in orders]
        assert len(ids) == len(set(ids)), f"{account}: an order is listed twice"
        for o in orders:
            filled = sum(t.traded_volume for t in mine if t.order_id == o.order_id)
            assert o.traded_volume == filled, f"order {o.order_id}: traded != its fills"
            assert last_order[o.order_id] == o, f"order {o.order_id} lost its last state"
        open_buys = [o for o in orders if o.order_type == int(OrderType.STOCK_BUY)]
        if not any(o.order_status in _OPEN for o in open_buys):
            assert asset.frozen_cash == 0, f"{account}: cash frozen for no open buy"
    today = broker.day
    for order_id, o in last_order.items():
        if o.order_sysid.startswith(f"{today:08d}") and o.account_id in broker.known_accounts:
            assert broker.order(o.account_id, order_id) is not None, f"order {order_id} lost"
