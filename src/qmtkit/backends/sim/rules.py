"""The paper broker's order rules: what the venue refuses, and at which limit it works an order.

Pure functions of the order, the account state and the market data: ``validate`` either plans
an accepted order (code, working limit, price type, freeze) or raises ``Refused`` with a ``Reject``
reason. Lots, ticks, price limits by board, market hours, cash and T+1 shares live here.
"""

from __future__ import annotations

import math
from enum import IntEnum

import msgspec

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.sim.accounts import AccountState
from qmtkit.backends.sim.fees import FeeRates
from qmtkit.checks import is_finite, is_int
from qmtkit.codes import Board, parsed_code
from qmtkit.constants import SH_MARKET_PRICE_TYPES, SZ_MARKET_PRICE_TYPES, OrderType, PriceType
from qmtkit.errors import InvalidArgument, InvalidCode
from qmtkit.models import InstrumentDetail, Tick

#: Shares per lot: every buy is whole lots; only a sell of the whole holding may be odd.
_LOT = 100
#: Book levels a market order may reach.
BOOK_LEVELS = 5
_EPS = 1e-9
_INF = float("inf")
_STOCK_PRICE_TYPES = frozenset(
    int(t)
    for t in frozenset({PriceType.LATEST_PRICE, PriceType.FIX_PRICE})
    | SH_MARKET_PRICE_TYPES
    | SZ_MARKET_PRICE_TYPES
)
_SH_ONLY_TYPES = frozenset(int(t) for t in SH_MARKET_PRICE_TYPES - SZ_MARKET_PRICE_TYPES)
_SZ_ONLY_TYPES = frozenset(int(t) for t in SZ_MARKET_PRICE_TYPES - SH_MARKET_PRICE_TYPES)
_FIX_PRICE = int(PriceType.FIX_PRICE)
_LATEST_PRICE = int(PriceType.LATEST_PRICE)
_PEER_FIRST = int(PriceType.MARKET_PEER_PRICE_FIRST)
_MINE_FIRST = int(PriceType.MARKET_MINE_PRICE_FIRST)
_INDEX_BOARD = Board.INDEX.value
_BUY = int(OrderType.STOCK_BUY)
_SELL = int(OrderType.STOCK_SELL)


class Reject(IntEnum):
    """Why an order was refused: the ``error_id`` of its ``OrderError``."""

    UNKNOWN_ACCOUNT = 1
    BAD_ORDER_TYPE = 2
    BAD_VOLUME = 3
    BAD_CODE = 4
    NOT_TRADABLE = 5
    BAD_PRICE_TYPE = 6
    BAD_PRICE = 7
    PRICE_LIMIT = 8
    MARKET_CLOSED = 9
    NO_QUOTE = 10
    BAD_LOT = 11
    NO_CASH = 12
    NO_SHARES = 13


class Refused(Exception):
    """An order fails a rule (caught by the broker, never raised to its callers)."""

    def __init__(self, reason: Reject, msg: str) -> None:
        super().__init__(msg)
        self.reason = reason
        self.msg = msg


#: An accepted order's plan: its code, working limit price and price type, and for a buy the
#: cents it freezes (amount at the limit plus estimated fees, as the cash check worked out).
#: A plain tuple: one is made per order, and a class's ``__init__`` cost more than the rest.
Plan = tuple[str, float, int, int]


class Listing(msgspec.Struct, gc=False):
    """What the rules read of one instrument on one day.

    Made once per ``InstrumentDetail`` from it (``source``), or by a market straight from
    its own day facts (``source`` None: no ``InstrumentDetail`` is built for an order).
    ``tick`` is > 0; ``up`` / ``down`` are the day's limits (0: none); ``index``: the code is
    an index; ``trading``: it trades today (not suspended). A struct: made per order.
    """

    code: str
    exchange: str
    name: str
    tick: float
    up: float
    down: float
    trading: bool
    index: bool
    source: InstrumentDetail | None = None


#: Listings by the code text an order gave, each valid for the very instrument object it was
#: made from (a new day's reference data is a new object). Emptied when full: bounded memory.
_LISTINGS: dict[str, Listing] = {}
_LISTINGS_MAX = 1 << 12


def _admit(listing: Listing) -> Listing:
    """``listing`` if its code may be traded today, else ``Refused``."""
    if listing.index:
        raise Refused(Reject.NOT_TRADABLE, f"{listing.code} is an index and cannot be traded")
    if not listing.trading:
        raise Refused(Reject.NOT_TRADABLE, f"{listing.code} is suspended from trading today")
    return listing


def _code_of(stock_code: object) -> tuple[str, str, Board]:
    """(canonical code, exchange, board) of an order's code, or ``Refused``."""
    try:
        code, sc, board = parsed_code(stock_code)
    except InvalidCode as e:
        raise Refused(Reject.BAD_CODE, str(e)) from None
    return code, sc.exchange, board


def _listing(stock_code: object, instrument: InstrumentDetail | None) -> Listing:
    """The order's listing, or ``Refused`` / ``InvalidArgument`` as the rules say, in order."""
    if type(stock_code) is str:
        hit = _LISTINGS.get(stock_code)
        if hit is not None and hit.source is instrument:
            return hit
    code, exchange, board = _code_of(stock_code)
    if instrument is None:
        raise Refused(
            Reject.BAD_CODE, f"unknown security {code}: it is not listed on this simulator"
        )
    if instrument.stock_code != code:
        raise InvalidArgument(
            f"instrument {instrument.stock_code} was passed for an order on {code}"
        )
    listing = _admit(
        Listing(
            code,
            exchange,
            instrument.InstrumentName,
            instrument.PriceTick if instrument.PriceTick > 0 else 0.01,
            instrument.UpStopPrice,
            instrument.DownStopPrice,
            instrument.IsTrading,
            board is Board.INDEX or instrument.board == _INDEX_BOARD,
            instrument,
        )
    )
    if type(stock_code) is str:
        if len(_LISTINGS) >= _LISTINGS_MAX:
            _LISTINGS.clear()
        _LISTINGS[stock_code] = listing
    return listing


def _given(stock_code: object, listing: Listing) -> Listing:
    """``_listing`` for a listing the market made itself: the same refusals, in order."""
    if type(stock_code) is not str or stock_code != listing.code:  # a canonical code parses
        code = _code_of(stock_code)[0]
        if code != listing.code:
            raise InvalidArgument(f"listing {listing.code} was passed for an order on {code}")
    return _admit(listing)


def validate(
    acct: AccountState,
    rates: FeeRates,
    req: SubmitOrder,
    book: Tick | None,
    instrument: InstrumentDetail | None,
    market_open: bool,
    listing: Listing | None = None,
) -> Plan:
    """Check an order against the venue's rules: its plan, or ``Refused`` with the reason.

    ``listing``: the instrument as the rules read it, when the market made one itself
    (``instrument`` is then not read).
    """
    side = req.order_type
    if (type(side) is not int and not is_int(side)) or side not in (_BUY, _SELL):
        raise Refused(
            Reject.BAD_ORDER_TYPE,
            f"bad order_type {side!r}: stocks take {_BUY} (STOCK_BUY) or {_SELL} (STOCK_SELL)",
        )
    volume = req.order_volume
    if (type(volume) is not int and not is_int(volume)) or volume <= 0:
        raise Refused(
            Reject.BAD_VOLUME,
            f"bad order_volume {volume!r}: expected a whole number of shares > 0",
        )
    if listing is None:
        listing = _listing(req.stock_code, instrument)
    elif not (  # the usual case, cheaply: nothing for _given to refuse
        listing.trading and not listing.index and req.stock_code == listing.code
    ):
        listing = _given(req.stock_code, listing)
    code = listing.code
    exchange = listing.exchange

    pt = req.price_type
    if (type(pt) is not int and not is_int(pt)) or pt not in _STOCK_PRICE_TYPES:
        raise Refused(
            Reject.BAD_PRICE_TYPE,
            f"bad price_type {pt!r} for a stock: expected 11 (FIX_PRICE), 5 (LATEST_PRICE) "
            "or an exchange market type (SH/BJ: 42, 43, 44, 45; SZ: 44, 45, 46, 47, 48)",
        )
    if pt != _FIX_PRICE:
        if exchange == "SZ" and pt in _SH_ONLY_TYPES:
            raise Refused(
                Reject.BAD_PRICE_TYPE,
                f"price_type {price_type_name(pt)} is a Shanghai market type and {code} trades "
                "in Shenzhen: use 44, 45, 46, 47 or 48",
            )
        if exchange != "SZ" and pt in _SZ_ONLY_TYPES:
            raise Refused(
                Reject.BAD_PRICE_TYPE,
                f"price_type {price_type_name(pt)} is a Shenzhen market type and {code} trades "
                f"on {exchange}: use 42, 43, 44 or 45",
            )
    else:
        price = req.price
        if not (type(price) is float and 0.0 < price < _INF) and (  # the usual price, cheaply
            not is_finite(price) or price <= 0
        ):
            raise Refused(Reject.BAD_PRICE, f"bad price {price!r}: a limit order needs a price > 0")
        tick = listing.tick
        steps = price / tick
        if abs(steps - round(steps)) > 1e-6:
            raise Refused(
                Reject.BAD_PRICE,
                f"price {price!r} is not on the {tick:g} tick of {code}: "
                f"use e.g. {round(steps) * tick:.{decimals(tick)}f}",
            )
        up, down = listing.up, listing.down
        if (up > 0 and price > up + _EPS) or (down > 0 and price < down - _EPS):
            raise Refused(
                Reject.PRICE_LIMIT,
                f"price {fmt_price(price)} is outside today's limits of {code} "
                f"[{fmt_price(down)}, {fmt_price(up)}]",
            )

    if not market_open:
        raise Refused(
            Reject.MARKET_CLOSED,
            f"the market is closed: orders on {code} are taken during trading sessions only",
        )

    if pt == _FIX_PRICE:
        limit = float(req.price)
    else:
        limit = limit_for(code, side, pt, req.price, book, listing)

    if side == _BUY:
        if volume % _LOT:
            raise Refused(
                Reject.BAD_LOT,
                f"buy volume {volume} is not a multiple of {_LOT} shares: "
                f"buy whole lots of {_LOT} (BJ too)",
            )
        amount = (round(limit * 1000) * volume + 5) // 10  # amount_cents, inlined
        need = amount + rates.total_cents(_BUY, amount)
        freeze = need
        if need > acct.cash:
            raise Refused(
                Reject.NO_CASH,
                f"insufficient cash: buying {volume} {code} at {fmt_price(limit)} needs "
                f"{need / 100:.2f} CNY (amount plus estimated fees), available "
                f"{acct.cash / 100:.2f}",
            )
    else:
        freeze = 0
        pos = acct.positions.get(code)
        sellable = pos.can_use if pos is not None else 0
        if volume > sellable:
            raise Refused(
                Reject.NO_SHARES,
                f"insufficient sellable shares of {code}: asked {volume}, sellable {sellable} "
                "(shares bought today become sellable the next trading day, T+1)",
            )
        if volume % _LOT and volume != sellable:
            raise Refused(
                Reject.BAD_LOT,
                f"sell volume {volume} is not a multiple of {_LOT}: an odd lot may only be "
                f"sold together with the whole sellable position ({sellable} shares)",
            )
    return code, limit, pt, freeze


def limit_for(
    code: str,
    side: int,
    pt: int,
    price: float,
    book: Tick | None,
    listing: Listing,
) -> float:
    """The limit price an accepted order works at (see the module docstring)."""
    if pt == _FIX_PRICE:
        return float(price)
    usable = book is not None and book.stock_code == code
    if pt == _LATEST_PRICE:
        if not usable or book is None or book.lastPrice <= 0:
            raise Refused(
                Reject.NO_QUOTE, f"no last price for {code}: a LATEST_PRICE order needs a quote"
            )
        return float(book.lastPrice)
    asks = book_levels(book.askPrice, book.askVol) if usable and book is not None else []
    bids = book_levels(book.bidPrice, book.bidVol) if usable and book is not None else []
    if pt == _PEER_FIRST:
        levels = asks if side == _BUY else bids
        if not levels:
            raise Refused(
                Reject.NO_QUOTE,
                f"no opposite quote for {code}: a peer-price-first order needs one",
            )
        return levels[0][0]
    if pt == _MINE_FIRST:
        levels = bids if side == _BUY else asks
        if not levels:
            raise Refused(
                Reject.NO_QUOTE,
                f"no own-side quote for {code}: a mine-price-first order needs one",
            )
        return levels[0][0]
    # Immediate-or-cancel kinds: a protective price bounds the fill and the freeze.
    if side == _BUY:
        if listing.up > 0:
            return float(listing.up)
        if asks:
            return max(p for p, _ in asks)
    else:
        if listing.down > 0:
            return float(listing.down)
        if bids:
            return min(p for p, _ in bids)
    raise Refused(
        Reject.NO_QUOTE, f"no quote and no price limit for {code}: cannot price a market order"
    )


def book_levels(prices: list[float], vols: list[int]) -> list[tuple[float, int]]:
    """The usable (price, shares) levels of one book side, best first, at most five."""
    out = []
    for p, v in zip(prices[:BOOK_LEVELS], vols[:BOOK_LEVELS], strict=False):
        if p > 0 and v > 0:
            out.append((float(p), int(v)))
    return out


def fmt_price(x: float) -> str:
    """A price as reports show it: two decimals, three where the price needs them."""
    return f"{x:.2f}" if abs(x * 100 - round(x * 100)) < 1e-6 else f"{x:.3f}"


def price_type_name(pt: int) -> str:
    """A price type with its xtquant name, e.g. ``42 (MARKET_SH_CONVERT_5_CANCEL)``."""
    try:
        return f"{pt} ({PriceType(pt).name})"
    except ValueError:
        return str(pt)


def decimals(tick: float) -> int:
    """The decimals a price tick needs."""
    return max(0, -math.floor(math.log10(tick) + 1e-9))
