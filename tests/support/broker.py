"""Shared builders for the broker tests (instruments, books, orders); holds no tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.sim.broker import Broker
from qmtkit.models import InstrumentDetail, Tick, TradeReportItem

ACC = "A1"
DAY = 20250107
T0 = 1_736_213_400_000  # 2025-01-07 09:30 +08:00, Unix ms
BUY, SELL = 23, 24
FIX, LATEST = 11, 5


def instrument(
    code: str = "600000.SH",
    *,
    pre_close: float = 10.0,
    up: float = 11.0,
    down: float = 9.0,
    board: str = "main",
    name: str = "PFB",
    trading: bool = True,
    tick: float = 0.01,
) -> InstrumentDetail:
    """Reference data with explicit limit prices."""
    sym, ex = code.split(".")
    return InstrumentDetail(
        ExchangeID=ex,
        InstrumentID=sym,
        InstrumentName=name,
        PreClose=pre_close,
        UpStopPrice=up,
        DownStopPrice=down,
        PriceTick=tick,
        IsTrading=trading,
        board=board,
    )


def book(
    code: str = "600000.SH",
    *,
    last: float = 10.0,
    asks: list[tuple[float, int]] | None = None,
    bids: list[tuple[float, int]] | None = None,
    time: int = T0,
    volume: int = 0,
) -> Tick:
    """A tick whose book levels are (price, shares); ``volume`` is the day's so far."""
    asks = asks if asks is not None else [(10.01, 1000), (10.02, 1000)]
    bids = bids if bids is not None else [(10.0, 1000), (9.99, 1000)]
    return Tick(
        stock_code=code,
        time=time,
        lastPrice=last,
        open=last,
        high=last,
        low=last,
        lastClose=10.0,
        amount=0.0,
        volume=volume,
        askPrice=[p for p, _ in asks],
        askVol=[v for _, v in asks],
        bidPrice=[p for p, _ in bids],
        bidVol=[v for _, v in bids],
    )


def order(
    side: int = BUY,
    volume: int = 1000,
    price: float = 10.0,
    *,
    code: str = "600000.SH",
    price_type: int = FIX,
    account: str = ACC,
    remark: str = "",
) -> SubmitOrder:
    """A submit request with the usual defaults."""
    return SubmitOrder(
        account_id=account,
        stock_code=code,
        order_type=side,
        order_volume=volume,
        price_type=price_type,
        price=price,
        strategy_name="s",
        order_remark=remark,
    )


def submit(
    b: Broker,
    req: SubmitOrder,
    tick: Tick | None = None,
    inst: InstrumentDetail | None = None,
    *,
    now_ms: int = T0,
    day: int = DAY,
    market_open: bool = True,
) -> list[TradeReportItem]:
    """Submit with a default instrument matching the request's code; returns the reports."""
    if inst is None:
        inst = instrument(req.stock_code)
    _, reports = b.submit(
        req, book=tick, instrument=inst, now_ms=now_ms, day=day, market_open=market_open
    )
    return reports


def kinds(reports: list[TradeReportItem]) -> list[str]:
    """The report kinds, with an order's status: ['order:50', 'asset', 'trade', ...]."""
    out = []
    for r in reports:
        name = type(r).__name__.lower()
        status = getattr(r, "order_status", None)
        out.append(f"{name}:{status}" if name == "order" else name)
    return out


def one_level_tick(code: str, time: int, ask: float | None, bid: float | None, volume: int) -> Tick:
    """A tick whose book is one level a side (None: that side empty), ``volume`` on each."""
    return book(
        code,
        asks=[] if ask is None else [(ask, volume)],
        bids=[] if bid is None else [(bid, volume)],
        time=time,
        volume=volume,
    )


def broker_state(broker: Broker, accounts: Iterable[str]) -> list[Any]:
    """Everything a broker shows of ``accounts`` (asset, positions, orders, trades) and its
    resting codes: two brokers that went through the same must show the same."""
    return [
        (broker.asset(a), broker.positions(a), broker.orders(a), broker.trades(a)) for a in accounts
    ] + [broker.resting_codes]
