"""``AccountBook``: what the risk rules know about one account, folded from its reports.

A pure state holder (no I/O, no clock): the guard feeds it the venue's reports, quotes and
reference data, and the rules read it. Resting orders are tracked from the moment the risk
chain lets them through (under a provisional key until the venue names them).
"""

from __future__ import annotations

from collections.abc import Callable

from qmtkit.constants import OrderStatus, OrderType
from qmtkit.models import Asset, InstrumentDetail, Order, Position, Trade

__all__ = ["AccountBook", "OpenOrder"]

_TERMINAL = frozenset(int(s) for s in OrderStatus if s.is_terminal)
_BUY = int(OrderType.STOCK_BUY)


class OpenOrder:
    """One resting order: its side, price, shares still open and when it was sent (ms)."""

    __slots__ = ("buy", "code", "key", "price", "submit_ms", "unit", "volume")

    def __init__(
        self, key: int, code: str, buy: bool, price: float, volume: int, submit_ms: int, unit: float
    ) -> None:
        self.key = key
        self.code = code
        self.buy = buy
        self.price = price  # the limit price, 0 for a market order
        self.volume = volume  # shares still open
        self.submit_ms = submit_ms
        self.unit = unit  # the price its exposure is valued at

    def __repr__(self) -> str:
        side = "buy" if self.buy else "sell"
        return f"OpenOrder({self.key}, {self.code} {side} {self.volume}@{self.price})"


class AccountBook:
    """Positions, resting orders, totals, last prices and reference facts of one account."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.open: dict[int, OpenOrder] = {}
        self.by_code: dict[str, dict[int, OpenOrder]] = {}
        self.open_buy_volume: dict[str, int] = {}
        self.open_sell_volume: dict[str, int] = {}
        self.open_buy_notional = 0.0
        self.done: set[int] = set()
        self.total_asset: float | None = None
        self.market_value = 0.0
        self.marks: dict[str, float] = {}
        self.mark_ms: dict[str, int] = {}
        self.day_limits: dict[str, tuple[float, float]] = {}
        self.st: set[str] = set()
        self.facts_day: dict[str, int] = {}

    # ------------------------------------------------------------------ resting orders

    def add_open(
        self, key: int, code: str, buy: bool, price: float, volume: int, now_ms: int
    ) -> None:
        """Track an order that is (about to be) resting; a known or finished key is ignored."""
        if key in self.open or key in self.done or volume <= 0:
            return
        self.rest(key, code, buy, price, volume, now_ms)

    def rest(self, key: int, code: str, buy: bool, price: float, volume: int, now_ms: int) -> None:
        """``add_open`` for a new key and a positive volume (the caller knows both)."""
        unit = price if price > 0 else self.marks.get(code, 0.0)
        o = OpenOrder(key, code, buy, price, volume, now_ms, unit)
        self.open[key] = o
        codes = self.by_code.get(code)
        if codes is None:
            self.by_code[code] = {key: o}
        else:
            codes[key] = o
        # The side totals are kept inline here and in remove(): this is every order's path.
        if buy:
            self.open_buy_volume[code] = self.open_buy_volume.get(code, 0) + volume
            self.open_buy_notional += volume * unit
        else:
            self.open_sell_volume[code] = self.open_sell_volume.get(code, 0) + volume

    def _resize(self, o: OpenOrder, left: int) -> None:
        delta = left - o.volume
        o.volume = left
        if o.buy:
            self.open_buy_volume[o.code] = self.open_buy_volume.get(o.code, 0) + delta
            self.open_buy_notional += delta * o.unit
        else:
            self.open_sell_volume[o.code] = self.open_sell_volume.get(o.code, 0) + delta

    def rekey(self, old: int, new: int) -> None:
        """The venue named a provisional order ``new``; a refused one (``new <= 0``) is gone."""
        o = self.open.get(old)
        if o is None:
            return  # gone, or a venue report named it first
        if new <= 0 or new in self.open or new in self.done:
            self.remove(old)
            return
        del self.open[old]
        codes = self.by_code[o.code]
        del codes[old]
        o.key = new
        self.open[new] = o
        codes[new] = o

    def remove(self, key: int) -> OpenOrder | None:
        """Forget a resting order (it finished)."""
        o = self.open.pop(key, None)
        if o is None:
            return None
        code = o.code
        codes = self.by_code.get(code)
        if codes is not None:
            codes.pop(key, None)  # an emptied dict stays: the code is likely traded again
        if o.buy:
            self.open_buy_volume[code] -= o.volume
            self.open_buy_notional -= o.volume * o.unit
        else:
            self.open_sell_volume[code] -= o.volume
        return o

    # ------------------------------------------------------------------ reports

    def on_order(self, order: Order, now_ms: int | Callable[[], int]) -> None:
        """Fold an order report: a final one ends the resting order, others update its size.

        ``now_ms`` (or a clock giving it, asked only if needed) dates an order first seen here.
        """
        oid = order.order_id
        if order.order_status in _TERMINAL:
            self.done.add(oid)
            self.remove(oid)
            return
        left = order.order_volume - order.traded_volume
        o = self.open.get(oid)
        if o is None:
            if oid in self.done:
                return
            o = self._adopt(order)
            if o is None:
                now = now_ms if isinstance(now_ms, int) else now_ms()
                self.add_open(
                    oid, order.stock_code, order.order_type == _BUY, order.price, left, now
                )
                return
        if left != o.volume:
            self._resize(o, left if left > 0 else 0)

    def _adopt(self, order: Order) -> OpenOrder | None:
        """The provisional order a venue's first report names (it may beat the reply)."""
        mine = self.by_code.get(order.stock_code)
        if not mine:
            return None
        buy = order.order_type == _BUY
        price = order.price
        volume = order.order_volume
        for key, o in mine.items():
            if key < 0 and o.buy == buy and o.price == price and o.volume == volume:
                oid = order.order_id
                del self.open[key]
                del mine[key]
                o.key = oid
                self.open[oid] = o
                mine[oid] = o
                return o
        return None

    def on_position(self, position: Position) -> None:
        """A holding changed."""
        if position.volume > 0:
            self.positions[position.stock_code] = position.volume
        else:
            self.positions.pop(position.stock_code, None)
        if position.last_price > 0 and position.stock_code not in self.marks:
            self.marks[position.stock_code] = position.last_price

    def on_asset(self, asset: Asset) -> None:
        """Totals changed."""
        self.total_asset = asset.total_asset
        self.market_value = asset.market_value

    def on_trade(self, trade: Trade, now_ms: int) -> None:
        """A fill is the freshest price of its code."""
        if trade.traded_price > 0:
            self.set_mark(trade.stock_code, trade.traded_price, now_ms)

    def set_mark(self, code: str, price: float, now_ms: int) -> None:
        """The last price of ``code`` as of ``now_ms``."""
        if price > 0:
            self.marks[code] = price
            self.mark_ms[code] = now_ms

    def set_facts(self, detail: InstrumentDetail, day: int) -> None:
        """Reference facts of one code for trading day ``day``: its price limits and ST flag."""
        code = detail.stock_code
        if detail.UpStopPrice > 0 and detail.DownStopPrice > 0:
            self.day_limits[code] = (detail.DownStopPrice, detail.UpStopPrice)
        else:
            self.day_limits.pop(code, None)
        if detail.is_st or "ST" in detail.InstrumentName.upper():
            self.st.add(code)
        else:
            self.st.discard(code)
        self.facts_day[code] = day

    def new_day(self) -> None:
        """A trading day began: yesterday's finished orders and price limits no longer apply."""
        self.done.clear()
        self.day_limits.clear()
        self.facts_day.clear()
