"""The paper broker's matching ledger: which book levels an order may trade with, and how much.

A tick's book volume (read as shares) can be taken once across all our orders; a new tick (a
different ``time``) refreshes it. The broker fills what ``take`` gives an order, which counts
it as taken for the rest of the tick.
"""

from __future__ import annotations

from qmtkit.backends.sim.rules import BOOK_LEVELS
from qmtkit.constants import OrderType
from qmtkit.models import Order, Tick

_BUY = int(OrderType.STOCK_BUY)


#: One side of a book as the matcher reads it: (price, price in li, shares) of its usable levels.
Levels = tuple[tuple[float, int, int], ...]


def _side(prices: list[float], vols: list[int]) -> Levels:
    """The usable levels (price > 0, volume > 0) of one book side, at most five, best first."""
    # A plain loop, not a generator: a backtest reads a new book for nearly every fill.
    if len(prices) > BOOK_LEVELS:
        prices = prices[:BOOK_LEVELS]
    out = []
    for p, v in zip(prices, vols, strict=False):
        if p > 0 and v > 0:
            out.append((float(p), round(p * 1000), int(v)))
    return tuple(out)


class _Tick:
    """What the ledger keeps of a code's tick in force: its time, its levels, what was taken.

    A side's levels are read the first time an order on that side asks (then kept for the
    tick): a live book is met by many orders, a backtest's book by one order on one side.
    """

    __slots__ = ("asks", "bids", "book", "day", "key", "taken", "time", "used")
    time: int
    #: the ledger's day this entry's counts are of (an older day's count nothing)
    day: int
    #: shares already taken by level: its price in li on the asks (what buys take), the li's
    #: complement ``~li`` (below zero) on the bids (what sells take); an int key, no tuple.
    #: The first level taken in a tick is counted in ``key`` / ``taken`` (a bar's book has
    #: one level a side, and a kept dict per code was a cold read a fill); ``counts`` moves
    #: it into ``used`` (None: no dict yet) when a second level or a ``Tick`` path asks.
    used: dict[int, int] | None
    key: int | None
    taken: int
    #: the book in force (None: a one-level bar met by its numbers, ``take_level``)
    book: Tick | None
    asks: Levels | None
    bids: Levels | None

    def __init__(self, book: Tick | None, day: int, time: int = 0) -> None:
        self.used = None
        self.key = None
        self.taken = 0
        self.day = day
        if book is not None:
            self.renew(book, day)
        else:  # a one-level bar met through ``take_level``: no Tick to read levels from
            self.time = time
            self.book = self.asks = self.bids = None

    def renew(self, book: Tick, day: int) -> None:
        """Take ``book`` as a new tick: its time, nothing taken yet."""
        self.time = book.time
        self.day = day
        self.key = None
        if self.used is not None:
            self.used = None
        self.read(book)

    def counts(self) -> dict[int, int]:
        """The shares taken this tick by level key, as one dict (``used``)."""
        used = self.used
        if used is None:
            used = self.used = {}
        key = self.key
        if key is not None:  # never also in ``used``: moved there once, now
            used[key] = self.taken
            self.key = None
        return used

    def read(self, book: Tick) -> None:
        """Take ``book`` as the one in force; its levels are read when first asked."""
        self.book = book
        self.asks = None
        self.bids = None

    def levels(self, buy: bool) -> Levels:
        """The usable levels a buy (the asks) or a sell (the bids) may trade with."""
        assert self.book is not None  # ``_tick`` reads the book it is asked about first
        if buy:
            asks = self.asks
            if asks is None:
                asks = self.asks = _side(self.book.askPrice, self.book.askVol)
            return asks
        bids = self.bids
        if bids is None:
            bids = self.bids = _side(self.book.bidPrice, self.book.bidVol)
        return bids


class BookLedger:
    """Book volume already taken by our orders, per code, for the tick in force."""

    def __init__(self) -> None:
        self._ticks: dict[str, _Tick] = {}
        #: Bumped by ``clear``: an entry of an older day is a code's new tick whatever its time.
        self._day = 0

    def clear(self) -> None:
        """Forget every tick (a new trading day).

        The codes' entries are kept and renewed when next used (a day's clear of them made
        every code's entry anew each day: two objects a fill, and over a whole market the
        step's fills set off the garbage collector).
        """
        self._day += 1

    def _tick(self, book: Tick) -> _Tick:
        entry = self._ticks.get(book.stock_code)
        if entry is None:
            entry = self._ticks[book.stock_code] = _Tick(book, self._day)
        elif entry.time != book.time or entry.day != self._day:
            entry.renew(book, self._day)  # the code's next tick (a backtest: nearly every fill)
        elif entry.book is not book:  # the same tick passed again as another object
            entry.read(book)
        return entry

    def crossing(self, order: Order, book: Tick, enough: int = 0) -> list[tuple[float, int, int]]:
        """The book levels (price, price in li, shares still free this tick) the order may
        trade with, best first; with ``enough`` > 0, only until they offer that many shares
        (the levels after them would not be reached by an order of that size)."""
        limit = round(order.price * 1000)
        entry = self._tick(book)
        used = entry.counts()
        out = []
        offered = 0
        buy = order.order_type == _BUY
        for p, li, v in entry.levels(buy):
            if li > limit if buy else li < limit:
                continue
            free = v - used.get(li if buy else ~li, 0)
            if free > 0:
                out.append((p, li, free))
                offered += free
                if 0 < enough <= offered:
                    break
        return out

    def take(self, order: Order, book: Tick, want: int) -> list[tuple[float, int, int]]:
        """Take up to ``want`` shares of ``book`` for ``order``: the pieces (price, price in
        li, shares) it trades, best level first, counted as taken for the rest of the tick.

        What ``crossing`` offers, cut to ``want``: the shares still free at each level are
        read before any piece is counted (a book listing one price twice offers both).
        """
        limit = round(order.price * 1000)
        used = self._tick(book).counts()
        if order.order_type == _BUY:
            buy, prices, vols = True, book.askPrice, book.askVol
        else:
            buy, prices, vols = False, book.bidPrice, book.bidVol
        if len(prices) > BOOK_LEVELS:
            prices = prices[:BOOK_LEVELS]
        pieces = []
        # The book's lists are read here, level by level, not through ``levels``: an order
        # usually stops at the first level, and a backtest brings a new book for nearly
        # every fill, so reading a whole side first was most of the matching.
        for p, v in zip(prices, vols, strict=False):
            if not (p > 0 and v > 0):
                continue
            li = round(p * 1000)
            if li > limit if buy else li < limit:
                continue
            free = int(v) - used.get(li if buy else ~li, 0)
            if free > 0:
                qty = free if free < want else want
                pieces.append((float(p), li, qty))
                want -= qty
                if want <= 0:
                    break
        for _, li, qty in pieces:
            key = li if buy else ~li
            used[key] = used.get(key, 0) + qty
        return pieces

    def take_level(
        self,
        code: str,
        time: int,
        buy: bool,
        price: float | None,
        volume: int,
        limit: float,
        want: int,
    ) -> tuple[int, int]:
        """``take`` against a book of ``code`` at ``time`` with one level on the order's side
        (``price``, ``volume`` shares; None: no level), without a ``Tick``: an order that
        buys (``buy``) or sells at ``limit`` and wants ``want`` shares gets ``(shares,
        price in li)``, the shares counted as taken for the rest of the tick.

        The same counting as ``take``: a bar's book, which a backtest brings for nearly
        every fill, is met without building one.
        """
        entry = self._ticks.get(code)
        if entry is None:
            entry = self._ticks[code] = _Tick(None, self._day, time)
        elif entry.time != time or entry.day != self._day:  # its next tick, as ``_tick`` has it
            entry.time = time
            entry.day = self._day
            entry.key = None
            if entry.used is not None:
                entry.used = None
            if entry.book is not None:  # asks and bids are read from a book only
                entry.book = entry.asks = entry.bids = None
        if price is None or not (price > 0 and volume > 0):
            return 0, 0
        li = round(price * 1000)
        if li > round(limit * 1000) if buy else li < round(limit * 1000):
            return 0, li
        key = li if buy else ~li
        held = entry.key
        # The tick's first level, or the one already counted in the entry: no dict.
        inline = held == key or (held is None and entry.used is None)
        if inline:
            taken = entry.taken if held == key else 0
        else:
            used = entry.counts()
            taken = used.get(key, 0)
        free = volume - taken
        if free <= 0:
            return 0, li
        qty = free if free < want else want
        if inline:
            entry.key = key
            entry.taken = taken + qty
        else:
            used[key] = taken + qty
        return qty, li

    def fillable(self, order: Order, book: Tick) -> int:
        """Shares of ``book`` the order could trade with now."""
        if book.stock_code != order.stock_code:
            return 0
        return sum(v for _, _, v in self.crossing(order, book))
