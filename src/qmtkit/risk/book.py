"""``AccountBook``: what the risk rules know about one account, folded from its reports.

A pure state holder (no I/O, no clock): the guard feeds it the venue's reports, quotes and
reference data, and the rules read it. Resting orders are tracked from the moment the risk
chain lets them through: first in ``sent`` (under a provisional key, in the totals and in every
rule that counts resting orders, but in no dict), then, once the venue's first report or its
answer names one, under the venue's id in ``open`` and ``by_code``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from qmtkit.constants import OrderStatus, OrderType
from qmtkit.models import AccountReport, Asset, InstrumentDetail, Order, Position, Trade

__all__ = ["AccountBook", "OpenOrder"]

_TERMINAL = frozenset(int(s) for s in OrderStatus if s.is_terminal)
_BUY = int(OrderType.STOCK_BUY)


class OpenOrder(msgspec.Struct, gc=False):
    """One resting order: its side, price, shares still open and when it was sent (ms).

    A struct without garbage-collector tracking (scalars only, never in a cycle): one is made
    for every order let through, and making one costs a third of a class with ``__init__``.
    """

    key: int
    code: str
    buy: bool
    price: float  # the limit price, 0 for a market order
    volume: int  # shares still open
    submit_ms: int
    unit: float  # the price its exposure is valued at

    def __repr__(self) -> str:
        side = "buy" if self.buy else "sell"
        return f"OpenOrder({self.key}, {self.code} {side} {self.volume}@{self.price})"


class AccountBook:
    """Positions, resting orders, totals, last prices and reference facts of one account."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}
        self.open: dict[int, OpenOrder] = {}
        #: Orders let through that the venue has not named yet (provisional keys below 0).
        self.sent: list[OpenOrder] = []
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
        self._count(code, buy, volume, unit)

    def send(
        self, key: int, code: str, buy: bool, price: float, volume: int, now_ms: int
    ) -> OpenOrder:
        """An order the chain let through (positive ``volume``), resting as ``key`` (< 0) in
        ``sent`` until the venue names it (its first report, or ``name``)."""
        unit = price if price > 0 else self.marks.get(code, 0.0)
        o = OpenOrder(key, code, buy, price, volume, now_ms, unit)
        self.sent.append(o)
        # The side totals, inline: this is every order's path.
        if buy:
            self.open_buy_volume[code] = self.open_buy_volume.get(code, 0) + volume
            self.open_buy_notional += volume * unit
        else:
            self.open_sell_volume[code] = self.open_sell_volume.get(code, 0) + volume
        return o

    def _count(self, code: str, buy: bool, volume: int, unit: float) -> None:
        if buy:
            self.open_buy_volume[code] = self.open_buy_volume.get(code, 0) + volume
            self.open_buy_notional += volume * unit
        else:
            self.open_sell_volume[code] = self.open_sell_volume.get(code, 0) + volume

    def _file(self, o: OpenOrder, order_id: int) -> None:
        """File a sent order under the id the venue gave it."""
        o.key = order_id
        self.open[order_id] = o
        codes = self.by_code.get(o.code)
        if codes is None:
            self.by_code[o.code] = {order_id: o}
        else:
            codes[order_id] = o

    def name(self, o: OpenOrder, order_id: int) -> None:
        """The venue answered sent order ``o`` with ``order_id`` (<= 0: refused, so gone).

        Nothing to do if a venue report named it first.
        """
        sent = self.sent
        for i, x in enumerate(sent):
            if x is o:
                del sent[i]
                break
        else:
            return
        if order_id <= 0 or order_id in self.open or order_id in self.done:
            self._count(o.code, o.buy, -o.volume, o.unit)
            return
        self._file(o, order_id)

    def find(self, key: int) -> OpenOrder | None:
        """The resting order under ``key``: a venue id, or a sent order's provisional key."""
        o = self.open.get(key)
        if o is None and key < 0:
            for x in self.sent:
                if x.key == key:
                    return x
        return o

    @property
    def resting(self) -> int:
        """How many orders rest: those the venue named and those sent but not named yet."""
        return len(self.open) + len(self.sent)

    def _resize(self, o: OpenOrder, left: int) -> None:
        delta = left - o.volume
        o.volume = left
        if o.buy:
            self.open_buy_volume[o.code] = self.open_buy_volume.get(o.code, 0) + delta
            self.open_buy_notional += delta * o.unit
        else:
            self.open_sell_volume[o.code] = self.open_sell_volume.get(o.code, 0) + delta

    def rekey(self, old: int, new: int) -> None:
        """The venue named the sent order ``old`` ``new``; a refused one (``new <= 0``) is gone."""
        for o in self.sent:
            if o.key == old:
                self.name(o, new)
                return

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
            # The sent order this first report names, if any (it may beat the reply).
            code = order.stock_code
            buy = order.order_type == _BUY
            price = order.price
            volume = order.order_volume
            for i, o in enumerate(self.sent):
                if o.code == code and o.buy == buy and o.price == price and o.volume == volume:
                    del self.sent[i]
                    self._file(o, oid)
                    break
            else:
                now = now_ms if isinstance(now_ms, int) else now_ms()
                self.add_open(oid, code, buy, price, left, now)
                return
        if left != o.volume:
            self._resize(o, left if left > 0 else 0)

    def report_folder(
        self,
        account_id: str,
        clock: Callable[[], int],
        on_asset: Callable[[float], None],
        pass_on: Callable[[AccountReport], None] | None,
    ) -> Callable[[AccountReport], None]:
        """The folding of ``account_id``'s reports into this book as one function, handing
        every report (of any account) on to ``pass_on`` (None: fold only).

        What the guard's relay calls for every report while one account has a chain: it does
        what ``on_order``, ``on_trade`` (dated by ``clock``), ``on_position`` and ``on_asset``
        (then ``on_asset(total_asset)``) do, with an order's two common reports (its first,
        naming the order sent first, and its last) written out inline, since a call per report
        is a good part of their cost. Anything else goes to ``on_order``.
        """
        env: dict[str, Any] = {
            "account_id": account_id,
            "clock": clock,
            "on_asset": on_asset,
            "pass_on": pass_on,
            "book": self,
            "terminal": _TERMINAL,
            "BUY": _BUY,
            "Order": Order,
            "Trade": Trade,
            "Position": Position,
            "Asset": Asset,
            "open_": self.open,
            "done": self.done,
            "sent": self.sent,
            "by_code": self.by_code,
            "obv": self.open_buy_volume,
            "osv": self.open_sell_volume,
            "marks": self.marks,
            "mark_ms": self.mark_ms,
        }
        # Its names are globals of its own, not a closure's cells: a closure copies every cell
        # it uses into each call's frame, ~2 ns a cell, three times an order.
        exec(_FOLD_CODE if pass_on is not None else _FOLD_ONLY_CODE, env)
        fold: Callable[[AccountReport], None] = env["fold"]
        return fold

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


# ``AccountBook.report_folder``'s function, written once and bound per account to its names.
_FOLD_SOURCE = """
def fold(report):
    if report.account_id == account_id:
        item = report.item
        if isinstance(item, Order):
            oid = item.order_id
            if item.order_status in terminal:
                # remove(), inline: every order's last report comes here.
                done.add(oid)
                o = open_.pop(oid, None)
                if o is not None:
                    code = o.code
                    codes = by_code.get(code)
                    if codes is not None:
                        codes.pop(oid, None)
                    if o.buy:
                        obv[code] -= o.volume
                        book.open_buy_notional -= o.volume * o.unit
                    else:
                        osv[code] -= o.volume
            elif oid in open_ or not sent or oid in done:
                book.on_order(item, clock)
            else:
                # The first report of the order sent first (the usual one): filed under the
                # venue's id as on_order would; any other goes there.
                o = sent[0]
                volume = item.order_volume
                code = item.stock_code
                if (
                    o.code == code
                    and o.price == item.price
                    and o.volume == volume
                    and o.buy == (item.order_type == BUY)
                ):
                    del sent[0]
                    o.key = oid
                    open_[oid] = o
                    codes = by_code.get(code)
                    if codes is None:
                        by_code[code] = {oid: o}
                    else:
                        codes[oid] = o
                    left = volume - item.traded_volume
                    if left != volume:
                        book._resize(o, left if left > 0 else 0)
                else:
                    book.on_order(item, clock)
        elif isinstance(item, Trade):
            price = item.traded_price
            if price > 0:  # a fill is the freshest price of its code
                code = item.stock_code
                marks[code] = price
                mark_ms[code] = clock()
        elif isinstance(item, Position):
            book.on_position(item)
        elif isinstance(item, Asset):
            book.on_asset(item)
            on_asset(item.total_asset)
    pass_on(report)
"""
#: The function that hands each report on, and the one that only folds (no test per report).
_FOLD_CODE = compile(_FOLD_SOURCE, "<qmtkit.risk.book fold>", "exec")
_FOLD_ONLY_CODE = compile(
    _FOLD_SOURCE.replace("    pass_on(report)\n", ""), "<qmtkit.risk.book fold>", "exec"
)
