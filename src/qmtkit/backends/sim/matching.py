"""The paper broker's matching ledger: which book levels an order may trade with, and how much.

A tick's book volume (read as shares) can be taken once across all our orders; a new tick (a
different ``time``) refreshes it. The broker fills what ``crossing`` offers and records each
fill in ``used``.
"""

from __future__ import annotations

from qmtkit.backends.sim.rules import BOOK_LEVELS
from qmtkit.constants import OrderType
from qmtkit.models import Order, Tick

_BUY = int(OrderType.STOCK_BUY)
_SELL = int(OrderType.STOCK_SELL)


class BookLedger:
    """Book volume already taken by our orders, per code, for the tick in force."""

    def __init__(self) -> None:
        # code -> (tick time, {(side, price in li): shares already taken})
        self._used: dict[str, tuple[int, dict[tuple[int, int], int]]] = {}

    def clear(self) -> None:
        """Forget every tick (a new trading day)."""
        self._used.clear()

    def used(self, book: Tick) -> dict[tuple[int, int], int]:
        """Shares taken this tick by (side, price in li) on the book's code; a new tick: none."""
        entry = self._used.get(book.stock_code)
        if entry is None or entry[0] != book.time:
            entry = (book.time, {})
            self._used[book.stock_code] = entry
        return entry[1]

    def crossing(self, order: Order, book: Tick, enough: int = 0) -> list[tuple[float, int, int]]:
        """The book levels (price, price in li, shares still free this tick) the order may
        trade with, best first; with ``enough`` > 0, only until they offer that many shares
        (the levels after them would not be reached by an order of that size)."""
        limit = round(order.price * 1000)
        used = self.used(book)
        out = []
        offered = 0
        # One pass over at most five levels: the same levels, filter and order as
        # ``_levels`` followed by the limit check, without the intermediate lists.
        if order.order_type == _BUY:
            for p, v in zip(book.askPrice[:BOOK_LEVELS], book.askVol[:BOOK_LEVELS], strict=False):
                if p > 0 and v > 0:
                    li = round(p * 1000)
                    if li <= limit:
                        free = int(v) - used.get((_BUY, li), 0)
                        if free > 0:
                            out.append((float(p), li, free))
                            offered += free
                            if 0 < enough <= offered:
                                break
        else:
            for p, v in zip(book.bidPrice[:BOOK_LEVELS], book.bidVol[:BOOK_LEVELS], strict=False):
                if p > 0 and v > 0:
                    li = round(p * 1000)
                    if li >= limit:
                        free = int(v) - used.get((_SELL, li), 0)
                        if free > 0:
                            out.append((float(p), li, free))
                            offered += free
                            if 0 < enough <= offered:
                                break
        return out

    def fillable(self, order: Order, book: Tick) -> int:
        """Shares of ``book`` the order could trade with now."""
        if book.stock_code != order.stock_code:
            return 0
        return sum(v for _, _, v in self.crossing(order, book))
