"""The simulator's paper broker: accounts, A-share rules and matching, as a pure state machine.

``Broker`` does no I/O, knows no clock and runs no tasks: every call gets the time and the
market data it needs as arguments and returns the account reports it produced, in the order
the account's report stream must show them. The simulator backend journals those reports
and pushes them to clients; ``Broker.restore`` rebuilds the same state from them.

Units and readings worth knowing:

- Money is kept in whole cents internally, so cash never drifts; reports carry CNY floats.
- Book volumes (``Tick.askVol`` / ``bidVol``) are read as **shares** in the simulator, not
  as the lots of 100 that MiniQMT reports for live stocks. A tick's book volume can be
  consumed once across all our orders; a new tick (a different ``time``) refreshes it.
- Order ids grow by one per broker and are never reused (also not after a restore).
  ``order_sysid`` and ``traded_id`` are numeric strings: the 8-digit trading day followed
  by a 10-digit counter. ``order_time`` and ``traded_time`` are Unix seconds.
- An accepted order's ``price`` is the limit the venue works with: the given price for
  ``FIX_PRICE``; the last price for ``LATEST_PRICE``; the best opposite (own-side) quote for
  ``MARKET_PEER_PRICE_FIRST`` (``MARKET_MINE_PRICE_FIRST``); the protective up-limit (buys)
  or down-limit (sells) price for the immediate-or-cancel market kinds, which is also the
  price cash is frozen at. A ``MARKET_SH_CONVERT_5_LIMIT`` remainder rests at its last fill
  price and its ``price`` changes to that.
- Market kinds, as the simulator reads them: 42 and 47 fill against up to five book levels
  and cancel the rest; 46 fills what the (5-level) book offers and cancels the rest; 48 fills
  completely or cancels everything; 43 fills up to five levels and rests the remainder as a
  limit at the last fill price (nothing filled: canceled); 44 and 45 become limit orders at
  the best opposite / own-side quote and rest (no such quote: refused).
- A buy freezes price × volume plus the estimated fees of that amount; each fill takes its
  real amount and fees and re-freezes what the remainder needs, so an order filled in many
  small pieces (each paying the minimum commission) can cost a little more than it froze.
- ``fetch_balance`` equals ``cash`` (withdrawal rules are not simulated). Sells leave
  ``avg_price`` (cost incl. fees) and ``open_price`` (cost excl. fees) unchanged.
- The trading day is an increasing int (YYYYMMDD). ``submit`` refuses a day other than the
  current one (the first ``submit`` or ``roll_day`` sets it): call ``roll_day`` at each new
  trading day to expire orders and settle T+1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.sim import dayclose, marks
from qmtkit.backends.sim.accounts import (
    EXACT_BELOW,
    EXACT_FROM,
    SCALE_F,
    VALUE_SCALE,
    AccountState,
    Holding,
    amount_cents,
    cents,
    li,
    revalue,
    round2,
    value_q,
)
from qmtkit.backends.sim.dayclose import DayLog
from qmtkit.backends.sim.fees import DEFAULT_FEES, FeeRates, FeeSchedule
from qmtkit.backends.sim.marks import HeldArrays, MarkBook
from qmtkit.backends.sim.matching import BookLedger
from qmtkit.backends.sim.rules import Listing, Plan, Refused, Reject, fmt_price, validate
from qmtkit.checks import is_finite, is_int
from qmtkit.codes import limit_prices
from qmtkit.constants import (
    OffsetFlag,
    OrderStatus,
    OrderType,
    PriceType,
)
from qmtkit.errors import InvalidArgument, UnknownAccount
from qmtkit.models import (
    REMARK_BYTES,
    AccountReport,
    Asset,
    CancelError,
    CancelResponse,
    InstrumentDetail,
    Order,
    OrderError,
    OrderResponse,
    Position,
    Tick,
    Trade,
    TradeReportItem,
    cut_remark,
)

__all__ = [
    "REMARK_BYTES",
    "Broker",
    "HeldArrays",
    "HeldColumns",
    "Reject",
    "cut_remark",
    "limit_prices",
]

_DAY_DIGITS = 8
_COUNTER_DIGITS = 10
_BUY = int(OrderType.STOCK_BUY)
_SELL = int(OrderType.STOCK_SELL)
#: ``market`` numbers accepted by ``cancel_by_sysid``: 0 SH, 1 SZ, 2 or 70 (xtquant's) BJ.
_MARKETS = {0: "SH", 1: "SZ", 2: "BJ", 70: "BJ"}
#: How many held accounts the refusal of an unknown one lists by name.
_SHOWN_ACCOUNTS = 10
_EXCHANGE_MARKET = {"SH": 0, "SZ": 1, "BJ": 2}

_IOC_KINDS = frozenset(
    int(k)
    for k in (
        PriceType.MARKET_SH_CONVERT_5_CANCEL,
        PriceType.MARKET_SZ_CONVERT_5_CANCEL,
        PriceType.MARKET_SZ_INSTBUSI_RESTCANCEL,
        PriceType.MARKET_SZ_FULL_OR_CANCEL,
        PriceType.MARKET_SH_CONVERT_5_LIMIT,
    )
)
# Plain ints of the enum members used on every order: an enum lookup or construction per
# use was a measurable part of an order's round trip.
_TERMINAL = frozenset(int(s) for s in OrderStatus if s.is_terminal)
_REPORTED = int(OrderStatus.REPORTED)
_JUNK = int(OrderStatus.JUNK)
_SUCCEEDED = int(OrderStatus.SUCCEEDED)
_PART_SUCC = int(OrderStatus.PART_SUCC)
_PART_CANCEL = int(OrderStatus.PART_CANCEL)
_CANCELED = int(OrderStatus.CANCELED)
_OPEN_FLAG = int(OffsetFlag.OPEN)
_CLOSE_FLAG = int(OffsetFlag.CLOSE)
_FULL_OR_CANCEL = int(PriceType.MARKET_SZ_FULL_OR_CANCEL)
_FIX_PRICE = int(PriceType.FIX_PRICE)
_SH_5_LIMIT = int(PriceType.MARKET_SH_CONVERT_5_LIMIT)
_DAY_LIMIT = 10**_DAY_DIGITS
_copy = msgspec.structs.replace
#: An order's copy for its report: the struct's own shallow copy (a third of ``_copy``'s cost).
_order_copy: Callable[[Order], Order] = Order.__copy__  # type: ignore[attr-defined]  # untyped


def _check_batch_item(req: object, account_id: object, book: object, listing: object) -> None:
    """Refuse one item of a ``submit_many`` batch that ``submit`` would not take (or that
    names another account than the batch's first order)."""
    if not isinstance(req, SubmitOrder):
        raise InvalidArgument(f"req must be a SubmitOrder, got {type(req).__name__}")
    if req.account_id != account_id:
        raise InvalidArgument(f"one account per batch: {req.account_id!r} after {account_id!r}")
    if book is not None and not isinstance(book, Tick):
        raise InvalidArgument(f"book must be a Tick or None, got {type(book).__name__}")
    if listing is not None and type(listing) is not Listing:
        raise InvalidArgument(f"listing must be a Listing or None, got {type(listing).__name__}")


# --------------------------------------------------------------------------- internal state


def _day_of(counter_id: str) -> int | None:
    if len(counter_id) != _DAY_DIGITS + _COUNTER_DIGITS or not counter_id.isdigit():
        return None
    return int(counter_id[:_DAY_DIGITS])


def _seq_of(counter_id: str) -> int:
    return int(counter_id[_DAY_DIGITS:]) if _day_of(counter_id) is not None else 0


def _remaining(order: Order) -> int:
    return order.order_volume - order.traded_volume


def _is_open(order: Order) -> bool:
    return order.order_status not in _TERMINAL


#: An account's holdings with shares, a column each: codes, shares, sellable shares, last prices.
HeldColumns = tuple[list[str], list[int], list[int], list[float]]


def _held_columns(acct: AccountState) -> HeldColumns:
    held = [(code, p) for code, p in acct.positions.items() if p.volume > 0]
    return (
        [code for code, _ in held],
        [p.volume for _, p in held],
        [p.can_use for _, p in held],
        [p.last_price for _, p in held],
    )


class _Fills:
    """One account's fills waiting to be made, a column each: orders, prices, prices in li,
    shares. Columns, not a tuple per fill: a whole market's step holds hundreds, and that
    many young tuples at once set off the garbage collector about every step."""

    __slots__ = ("lis", "orders", "prices", "shares")

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.prices: list[float] = []
        self.lis: list[int] = []
        self.shares: list[int] = []

    def add(self, order: Order, price: float, price_li: int, shares: int) -> None:
        """One more fill of ``shares`` of ``order`` at ``price`` (``price_li`` in li)."""
        self.orders.append(order)
        self.prices.append(price)
        self.lis.append(price_li)
        self.shares.append(shares)

    def clear(self) -> None:
        """Forget the fills (made): the lists are kept, and so their bound ``append``."""
        self.orders.clear()
        self.prices.clear()
        self.lis.clear()
        self.shares.clear()


# --------------------------------------------------------------------------- the broker


class Broker:
    """Paper accounts with A-share rules and an immediate matcher against a 5-level book.

    ``initial_cash`` funds every new account; ``fees`` prices every fill;
    ``allow_new_accounts`` decides whether an unknown account id is created on first use
    (True) or refused with ``UnknownAccount`` and nothing changed (False: what every venue
    uses, so that only ``open_account`` creates one); ``accounts`` are created up front.
    """

    def __init__(
        self,
        *,
        initial_cash: float = 1_000_000.0,
        fees: FeeSchedule | None = None,
        allow_new_accounts: bool = True,
        accounts: Iterable[str] = (),
    ) -> None:
        if not is_finite(initial_cash) or initial_cash < 0:
            raise InvalidArgument(
                f"initial_cash must be a finite amount >= 0, got {initial_cash!r}"
            )
        if fees is not None and not isinstance(fees, FeeSchedule):
            raise InvalidArgument(f"fees must be a FeeSchedule, got {fees!r}")
        self._initial_cents = cents(float(initial_cash))
        self._rates = FeeRates(fees if fees is not None else DEFAULT_FEES)
        self.allow_new_accounts = bool(allow_new_accounts)
        self._accounts: dict[str, AccountState] = {}
        self._next_order_id = 1
        self._trade_counter = 0
        self._day = 0
        self._prefix_day, self._prefix = -1, ""
        # code -> {order_id: account_id} of orders that can still trade
        self._resting: dict[str, dict[int, str]] = {}
        self._ledger = BookLedger()
        for acc in accounts:
            self._check_account_id(acc)
            self._create(acc)

    # ------------------------------------------------------------------ accounts

    @property
    def fees(self) -> FeeSchedule:
        """The fee schedule every fill is priced with."""
        return self._rates.schedule

    @fees.setter
    def fees(self, schedule: FeeSchedule) -> None:
        self._rates = FeeRates(schedule)

    @property
    def resting_codes(self) -> list[str]:
        """The codes with orders that can still trade, sorted (what a new book may fill)."""
        # A code's entry goes with its last order (``_unrest``): every entry has orders.
        return sorted(self._resting)

    @property
    def known_accounts(self) -> frozenset[str]:
        """The ids of the accounts that exist."""
        return frozenset(self._accounts)

    @property
    def day(self) -> int:
        """The current trading day (0 until the first ``submit`` or ``roll_day``)."""
        return self._day

    @property
    def next_order_id(self) -> int:
        """The id the next submitted order will get."""
        return self._next_order_id

    def open_account(self, account_id: str) -> list[TradeReportItem]:
        """Create ``account_id`` if it is new (whatever ``allow_new_accounts`` says).

        Returns the new account's first ``Asset`` report, or nothing if it existed.
        """
        self._check_account_id(account_id)
        if account_id in self._accounts:
            return []
        return [self._asset_report(self._create(account_id))]

    def state_reports(self, account_id: str, on: bool) -> None:
        """Whether the changes of ``account_id`` come with their ``Asset`` and ``Position``
        reports (on, the default for every account).

        Off is for an account nobody follows (a backtest's fast form, whose result frames
        take only orders and trades): its state changes exactly as before, and its ``Order``,
        ``Trade``, ``OrderError`` and ``CancelError`` reports are made as before, but no
        report of its cash or holdings is made. Queries answer as always.
        """
        self._check_account_id(account_id)
        if type(on) is not bool:
            raise InvalidArgument(f"on must be True or False, got {on!r}")
        acct = self._accounts.get(account_id)
        if acct is None:
            raise self._unknown(account_id)
        if on:
            self._materialize(acct)  # reports read every holding's price and value
        acct.quiet = not on

    def _create(self, account_id: str) -> AccountState:
        acct = AccountState(account_id, cash=self._initial_cents, frozen=0)
        self._accounts[account_id] = acct
        return acct

    @staticmethod
    def _check_account_id(account_id: object) -> None:
        if not isinstance(account_id, str) or not account_id:
            raise InvalidArgument(f"account id must be a non-empty string, got {account_id!r}")

    def _query_account(self, account_id: str) -> AccountState:
        self._check_account_id(account_id)
        acct = self._accounts.get(account_id)
        if acct is not None:
            return acct
        if self.allow_new_accounts:
            # A query never creates: answer what a fresh account would show.
            return AccountState(account_id, cash=self._initial_cents, frozen=0)
        raise self._unknown(account_id)

    def _unknown(self, account_id: str) -> UnknownAccount:
        """The refusal of a request on an account this broker does not hold."""
        held = sorted(self._accounts)
        # Bounded: a venue may hold many accounts, and the message travels to any client.
        shown = ", ".join(repr(a) for a in held[:_SHOWN_ACCOUNTS]) or "none"
        if len(held) > _SHOWN_ACCOUNTS:
            shown += f" and {len(held) - _SHOWN_ACCOUNTS} more"
        return UnknownAccount(
            f"unknown account {account_id!r}: this venue holds {shown}; nothing was created. "
            f"An account is opened only explicitly: qk.account({account_id!r}) in the async "
            "API, or subscribe(StockAccount(...)) in the xtquant shim"
        )

    # ------------------------------------------------------------------ queries

    def asset(self, account_id: str) -> Asset:
        """The account's cash and totals."""
        acct = self._query_account(account_id)
        if type(acct.marks) is DayLog:
            self._value(acct)
        return self._asset_report(acct)

    def orders(self, account_id: str, cancelable_only: bool = False) -> list[Order]:
        """Today's orders in id order; only those that can still trade if ``cancelable_only``."""
        acct = self._query_account(account_id)
        return [_copy(o) for o in acct.orders.values() if not cancelable_only or _is_open(o)]

    def order(self, account_id: str, order_id: int) -> Order | None:
        """One of today's orders, or None."""
        acct = self._query_account(account_id)
        o = acct.orders.get(order_id)
        return None if o is None else _copy(o)

    def trades(self, account_id: str) -> list[Trade]:
        """Today's fills in the order they happened."""
        return [_copy(t) for t in self._query_account(account_id).trades]

    def positions(self, account_id: str) -> list[Position]:
        """The holdings (a position sold out today is listed with volume 0 until the day ends)."""
        acct = self._query_account(account_id)
        return [self._position_report(acct, code) for code in acct.positions]

    def holding(self, account_id: str, code: str) -> tuple[int, int]:
        """(shares held, shares sellable now) of ``code`` in an account; (0, 0) if none."""
        pos = self._query_account(account_id).positions.get(code)
        return (pos.volume, pos.can_use) if pos is not None else (0, 0)

    def holdings(self, account_id: str) -> list[tuple[str, int, int, float]]:
        """(code, shares, sellable shares, last price) of each holding, as ``positions`` lists
        them, without building the reports (a backtest snapshots every account every day)."""
        acct = self._query_account(account_id)
        if acct.marks is not None:
            for code, p in acct.positions.items():
                self._freshen(acct, code, p)
        return [(code, p.volume, p.can_use, p.last_price) for code, p in acct.positions.items()]

    def held_codes(self) -> set[str]:
        """The codes some account holds shares of (a position sold out today is not held)."""
        return {
            code
            for acct in self._accounts.values()
            for code, p in acct.positions.items()
            if p.volume > 0
        }

    def mark_to_market(self, last_prices: Mapping[str, float]) -> None:
        """Value positions at ``last_prices`` (code -> price); codes not held are ignored."""
        if not isinstance(last_prices, Mapping):
            raise InvalidArgument(f"last_prices must map codes to prices, got {last_prices!r}")
        for code, price in last_prices.items():
            if type(price) is float and 0.0 <= price < math.inf:  # the usual case, cheaply
                continue
            if not is_finite(price) or price < 0:
                raise InvalidArgument(
                    f"last price of {code!r} must be a finite price >= 0, got {price!r}"
                )
        accounts = list(self._accounts.values())
        for acct in accounts:
            self._materialize(acct)
        for code, price in last_prices.items():
            if price <= 0:
                continue
            for acct in accounts:
                pos = acct.positions.get(code)
                if pos is not None and pos.last_price != price:
                    pos.last_price = p = float(price)
                    q = value_q(pos.volume, p)  # revalue(), inlined: every holding every day
                    acct.market_value += q - pos.value
                    pos.value = q

    def mark_held(
        self, prices: Mapping[str, float], fallback: Callable[[str], float | None]
    ) -> None:
        """Value every held code at ``prices[code]``, or at ``fallback(code)`` when ``prices``
        has none (None: left as it is); the same as ``mark_to_market`` over the held codes.

        A backtest marks every holding every day: with one account this is one pass over its
        holdings, with no set of held codes and no price map built first.
        """
        accounts = list(self._accounts.values())
        if len(accounts) != 1:
            self._mark_many(prices, fallback)
            return
        if self._mark_columns(accounts[0], prices, fallback) is None:
            self._mark_one(accounts[0], prices, fallback, None)

    def mark_and_snapshot(
        self, prices: Mapping[str, float], fallback: Callable[[str], float | None]
    ) -> dict[str, HeldColumns | HeldArrays]:
        """``mark_held``, then every account's holdings with shares as columns (codes, shares,
        sellable shares, last prices, in holding order): a backtest's day end.

        With one account the holdings are read once for both (over a whole market a day's
        thousands of holdings cost more in memory reads than in arithmetic). An account
        without state reports marked with prices by code number (``sim.marks.KeyedPrices``)
        is marked as columns and its rows come as ``HeldArrays`` (codes by number).
        """
        accounts = list(self._accounts.values())
        if len(accounts) != 1:
            self._mark_many(prices, fallback)
            return {acct.account_id: _held_columns(acct) for acct in accounts}
        acct = accounts[0]
        arrays = self._mark_columns(acct, prices, fallback)
        if arrays is not None:
            return {acct.account_id: arrays}
        columns: HeldColumns = ([], [], [], [])
        self._mark_one(acct, prices, fallback, columns)
        return {acct.account_id: columns}

    def _mark_many(
        self, prices: Mapping[str, float], fallback: Callable[[str], float | None]
    ) -> None:
        marks = {}
        for code in self.held_codes():
            price = prices.get(code)
            if price is None:
                price = fallback(code)
            if price is not None:
                marks[code] = price
        self.mark_to_market(marks)

    def _mark_columns(
        self,
        acct: AccountState,
        prices: Mapping[str, float],
        fallback: Callable[[str], float | None],
    ) -> HeldArrays | None:
        """Mark a quiet account's holdings as columns (``sim.marks``) and return its held rows;
        None, with every holding up to date, where the plain mark must do it: an account with
        state reports, prices not by number, a held code without a number, too few holdings,
        or a price the plain mark refuses (it raises the same error, after the same changes)."""
        index = getattr(prices, "index", None)
        if not acct.quiet or index is None or not hasattr(prices, "by_key"):
            self._materialize(acct)
            return None
        if isinstance(acct.marks, DayLog):
            self._materialize(acct)
        book = acct.marks
        assert not isinstance(book, DayLog)
        count = len(acct.positions)
        if count < (marks.COLUMNS_FROM if book is None else marks.COLUMNS_UNTIL):
            self._materialize(acct)
            return None
        if book is not None and (
            book.index is not index or not book.sync(acct.positions, acct.touched)
        ):
            self._materialize(acct)
            book = None
        if book is None:
            book = acct.marks = MarkBook.of(acct.positions, index)
            if book is None:
                return None
        else:
            book.pack()
        marked = book.mark(prices, fallback)  # type: ignore[arg-type]  # by_key: checked above
        if marked is None:
            self._materialize(acct)
            return None
        rows, acct.market_value = marked
        return rows

    @staticmethod
    def _freshen(acct: AccountState, code: str, pos: Holding) -> None:
        """Bring a holding that lags its account's ``MarkBook`` (or ``DayLog``) up to the
        last mark."""
        book = acct.marks
        if book is None or code in book.fresh:
            return
        if isinstance(book, DayLog):
            book.freshen(code, pos)
            return
        s = book.lags(code)
        if s >= 0:
            price = float(book.last[s])
            pos.last_price = price
            pos.value = value_q(pos.volume, price)

    def _materialize(self, acct: AccountState) -> None:
        """Bring every holding of ``acct`` up to its ``MarkBook`` (or ``DayLog``) and drop it."""
        book = acct.marks
        if book is None:
            return
        if isinstance(book, DayLog):
            self._value(acct)
        else:
            for code, pos in acct.positions.items():
                self._freshen(acct, code, pos)
        acct.marks = None

    @staticmethod
    def _value(acct: AccountState) -> None:
        """Bring every holding and the market value of an account kept by a ``DayLog`` up to
        date (the log keeps no market value between closes: most days nothing reads it)."""
        log = acct.marks
        assert isinstance(log, DayLog)
        if log.valued:
            return
        freshen = log.freshen
        total = 0
        for code, pos in acct.positions.items():
            freshen(code, pos)
            total += pos.value
        # Exact integers: the sum afresh is the one the eager close keeps by differences.
        acct.market_value = total
        log.valued = True

    def close_quietly(self, prices: Mapping[str, float]) -> DayLog | None:
        """The day close of a broker's only account when nobody follows it: the close is
        logged (``sim.dayclose``), nothing is marked, and the log is returned; None where
        the eager close must do it (``mark_and_snapshot``): several accounts, state reports,
        prices not by number, a code without a price or one out of the exact sum's range,
        a held code without a number, many holdings (``dayclose.LOG_FROM``)."""
        if not dayclose.DEFER or len(self._accounts) != 1:
            return None
        acct = next(iter(self._accounts.values()))
        index = getattr(prices, "index", None)
        if not acct.quiet or index is None or not getattr(prices, "in_range", False):
            return None
        values, present = prices.by_key()  # type: ignore[attr-defined]  # KeyedPrices
        if present is not None:
            return None
        log = acct.marks
        held = len(acct.positions)
        if not isinstance(log, DayLog) or log.index is not index:
            if held >= dayclose.LOG_FROM:
                return None
            self._materialize(acct)
            log = acct.marks = DayLog(acct, index)
        elif held >= dayclose.LOG_UNTIL:
            self._materialize(acct)
            return None
        if not log.close(acct, values):
            self._materialize(acct)
            return None
        return log

    @staticmethod
    def _mark_one(
        acct: AccountState,
        prices: Mapping[str, float],
        fallback: Callable[[str], float | None],
        columns: HeldColumns | None,
    ) -> None:
        """Mark one account's holdings; with ``columns``, append each held one's row to them."""
        price_of = prices.get
        if columns is not None:
            add_code, add_volume = columns[0].append, columns[1].append
            add_usable, add_price = columns[2].append, columns[3].append
        gained = lost = 0  # the change of the account's market value, summed once
        for code, pos in acct.positions.items():
            volume = pos.volume
            if volume <= 0:
                continue
            price = price_of(code)
            if price is None:
                price = fallback(code)
            if price is not None and price != pos.last_price:
                if type(price) is not float or not 0.0 < price < math.inf:
                    if not is_finite(price) or price < 0:
                        raise InvalidArgument(
                            f"last price of {code!r} must be a finite price >= 0, got {price!r}"
                        )
                    price = float(price)
                if price != 0 and price != pos.last_price:
                    pos.last_price = price
                    # revalue(), inlined: every holding every day (value_q's exact scaling)
                    q = (
                        volume * int(price * SCALE_F)
                        if EXACT_FROM <= price < EXACT_BELOW
                        else value_q(volume, price)
                    )
                    gained += q
                    lost += pos.value
                    pos.value = q
            if columns is not None:
                add_code(code)
                add_volume(volume)
                add_usable(pos.can_use)
                add_price(pos.last_price)
        acct.market_value += gained - lost

    # ------------------------------------------------------------------ reports

    def _asset_report(self, acct: AccountState) -> Asset:
        key, mv, shown = acct.value_shown
        if key != acct.market_value:
            key = acct.market_value
            mv = key / VALUE_SCALE  # exact, then rounded once (int / int)
            shown = round2(mv)
            acct.value_shown = (key, mv, shown)
        held = acct.cash + acct.frozen
        held_key, value_key, total = acct.total_shown
        if held_key != held or value_key != key:  # a buy's freeze changes neither
            total = round2(held / 100 + mv)
            acct.total_shown = (held, key, total)
        cash = acct.cash / 100
        return Asset(
            account_id=acct.account_id,
            cash=cash,
            frozen_cash=acct.frozen / 100,
            market_value=shown,
            total_asset=total,
            fetch_balance=cash,
        )

    def _position_report(self, acct: AccountState, code: str) -> Position:
        p = acct.positions[code]
        if acct.marks is not None:
            self._freshen(acct, code, p)
        return Position(
            account_id=acct.account_id,
            stock_code=code,
            volume=p.volume,
            can_use_volume=p.can_use,
            open_price=p.open_price,
            market_value=round2(p.volume * p.last_price),
            frozen_volume=p.frozen,
            yesterday_volume=p.yesterday,
            avg_price=p.avg_price,
            last_price=p.last_price,
            profit_rate=(p.last_price - p.avg_price) / p.avg_price if p.avg_price > 0 else 0.0,
            instrument_name=p.name,
        )

    # ------------------------------------------------------------------ freezing

    def _freeze_of(self, order: Order) -> int:
        """Cents a buy order holds frozen: its remainder's amount plus estimated fees."""
        if order.order_type != _BUY or not _is_open(order):
            return 0
        amount = amount_cents(order.price, _remaining(order))
        return amount + self._rates.total_cents(_BUY, amount)

    # ------------------------------------------------------------------ submit

    def submit(
        self,
        req: SubmitOrder,
        *,
        book: Tick | None,
        instrument: InstrumentDetail | None,
        now_ms: int,
        day: int,
        market_open: bool = True,
        listing: Listing | None = None,
    ) -> tuple[OrderResponse, list[TradeReportItem]]:
        """Place one order; returns the response and the account's reports, in venue order.

        ``listing``: the order's instrument as the rules read it (``rules.Listing``), when the
        market made one from its own day facts; ``instrument`` is then not read.

        A refused order yields one ``Order`` at 57 (JUNK) and an ``OrderError`` and changes
        no cash or shares. An accepted one yields an ``Order`` at 50 (REPORTED) and the freeze
        (``Asset`` for buys, ``Position`` for sells), then for each fill a ``Trade``, the
        updated ``Order`` (55 / 56), ``Position`` and ``Asset``, and for a market remainder
        its final ``Order`` (53 / 54) with the unfreeze.
        """
        # Exact-type tests first: this runs on every order, the full checks only on odd input.
        if type(req) is not SubmitOrder and not isinstance(req, SubmitOrder):
            raise InvalidArgument(f"req must be a SubmitOrder, got {type(req).__name__}")
        if book is not None and type(book) is not Tick and not isinstance(book, Tick):
            raise InvalidArgument(f"book must be a Tick or None, got {type(book).__name__}")
        if (
            instrument is not None
            and type(instrument) is not InstrumentDetail
            and not isinstance(instrument, InstrumentDetail)
        ):
            raise InvalidArgument(
                f"instrument must be an InstrumentDetail or None, got {type(instrument).__name__}"
            )
        if listing is not None and type(listing) is not Listing:
            raise InvalidArgument(
                f"listing must be a Listing or None, got {type(listing).__name__}"
            )
        out: list[TradeReportItem] = []
        account_id = req.account_id
        acct = self._accounts.get(account_id) if type(account_id) is str else None
        # A known account on the broker's day at a plain time is what _submitter would find.
        if (
            acct is None
            or type(day) is not int
            or day != self._day
            or type(now_ms) is not int
            or now_ms < 0
        ):
            acct = self._submitter(account_id, now_ms, day, out)
        resp = self._place(acct, req, book, instrument, listing, now_ms, market_open, out)
        return resp, out

    def submit_many(
        self,
        reqs: list[SubmitOrder],
        *,
        books: list[Tick | None],
        listings: Sequence[Listing | None],
        now_ms: int,
        day: int,
        out: list[TradeReportItem],
        market_open: bool = True,
    ) -> list[OrderResponse]:
        """Place the orders of one account at one time, as ``submit`` called on each in turn
        would: the same ids, refusals and state; their reports are appended to ``out`` as they
        are made (one list for all, in the same order), and the responses returned.

        ``books[i]`` / ``listings[i]`` are what ``submit`` takes for ``reqs[i]``. The time, the
        day and the account are checked once (an empty batch changes nothing); an order that
        ``submit`` would not take, or of another account, raises when reached (the orders
        before it stand, their reports in ``out``).
        """
        n = len(reqs) if type(reqs) is list else -1
        if n < 0 or type(books) is not list or type(listings) is not list:
            raise InvalidArgument(
                "reqs, books and listings must be lists, got "
                f"{type(reqs).__name__}, {type(books).__name__}, {type(listings).__name__}"
            )
        if len(books) != n or len(listings) != n:
            raise InvalidArgument(
                f"{n} orders need {n} books and listings, got {len(books)} and {len(listings)}"
            )
        if not n:
            return []
        first = reqs[0]
        if not isinstance(first, SubmitOrder):
            raise InvalidArgument(f"req must be a SubmitOrder, got {type(first).__name__}")
        account_id = first.account_id
        acct = self._submitter(account_id, now_ms, day, out)
        place = self._place
        responses = []
        for req, book, listing in zip(reqs, books, listings, strict=True):
            if (
                type(req) is not SubmitOrder
                or req.account_id != account_id
                or (book is not None and type(book) is not Tick)
                or (listing is not None and type(listing) is not Listing)
            ):
                _check_batch_item(req, account_id, book, listing)
            responses.append(place(acct, req, book, None, listing, now_ms, market_open, out))
        return responses

    def _submitter(
        self, account_id: object, now_ms: int, day: int, out: list[TradeReportItem]
    ) -> AccountState:
        """The account an order at ``now_ms`` on ``day`` is placed in (created, with its
        ``Asset`` report in ``out``, if new and allowed), after checking the three."""
        if type(now_ms) is not int or now_ms < 0:
            self._check_time(now_ms)
        if type(day) is not int or not 0 < day < _DAY_LIMIT:
            self._check_day_arg(day)
        if type(account_id) is not str or not account_id:
            self._check_account_id(account_id)
        assert isinstance(account_id, str)
        acct = self._accounts.get(account_id)
        if acct is None and not self.allow_new_accounts:
            raise self._unknown(account_id)
        if self._day == 0:
            self._day = day
        elif day != self._day:
            raise InvalidArgument(
                f"order for trading day {day} but the broker is on day {self._day}: "
                + (f"call roll_day({day}) first" if day > self._day else "days cannot go backwards")
            )
        if acct is None:
            acct = self._create(account_id)
            out.append(self._asset_report(acct))
        return acct

    def _place(
        self,
        acct: AccountState,
        req: SubmitOrder,
        book: Tick | None,
        instrument: InstrumentDetail | None,
        listing: Listing | None,
        now_ms: int,
        market_open: bool,
        out: list[TradeReportItem],
    ) -> OrderResponse:
        """Judge and place one order of ``acct`` (its reports appended to ``out``)."""
        if (
            book is None
            and listing is not None
            and req.price_type == _FIX_PRICE
            and type(req.order_type) is int
            and type(req.order_volume) is int
            and type(req.price) is float
            and type(req.stock_code) is str
            and type(req.strategy_name) is str
            and type(req.order_remark) is str
            and type(req.seq) is int
        ):
            # The usual order: a limit order with plain values that meets no book now. What
            # the general path below does with it, less the normalising and the branches
            # that cannot apply; a refusal is left to the general path.
            try:
                plan = validate(acct, self._rates, req, None, None, market_open, listing)
            except Refused:
                pass
            else:
                return self._rest(acct, req, plan, listing.name, now_ms, out)
        remark = req.order_remark
        if type(remark) is not str:
            remark = cut_remark(remark) if isinstance(remark, str) else ""
        elif remark:
            remark = cut_remark(remark)
        strategy = req.strategy_name if isinstance(req.strategy_name, str) else ""
        seq = req.seq
        if type(seq) is not int:
            seq = seq if is_int(seq) else 0
        order_id = self._next_order_id
        self._next_order_id += 1

        side, volume, pt, price = req.order_type, req.order_volume, req.price_type, req.price
        order = Order(
            account_id=acct.account_id,
            stock_code=req.stock_code if isinstance(req.stock_code, str) else str(req.stock_code),
            order_id=order_id,
            order_sysid=self._counter_id(order_id),
            order_time=now_ms // 1000,
            order_type=side if type(side) is int or is_int(side) else 0,
            order_volume=volume if type(volume) is int or is_int(volume) else 0,
            price_type=pt if type(pt) is int or is_int(pt) else 0,
            price=price
            if type(price) is float and price - price == 0.0
            else (float(price) if is_finite(price) else 0.0),
            order_status=_REPORTED,
            strategy_name=strategy,
            order_remark=remark,
            offset_flag=_CLOSE_FLAG if side == _SELL else _OPEN_FLAG,
        )
        try:
            code, limit, kind, freeze = validate(
                acct, self._rates, req, book, instrument, market_open, listing
            )
        except Refused as r:
            order.order_status = _JUNK
            order.status_msg = r.msg
            if listing is not None:
                order.instrument_name = listing.name
            elif instrument is not None:
                order.instrument_name = instrument.InstrumentName
            acct.orders[order_id] = order
            out.append(_copy(order))
            out.append(
                OrderError(
                    account_id=req.account_id,
                    order_id=order_id,
                    error_id=int(r.reason),
                    error_msg=r.msg,
                    strategy_name=strategy,
                    order_remark=remark,
                )
            )
            resp = OrderResponse(
                account_id=req.account_id,
                order_id=order_id,
                strategy_name=strategy,
                order_remark=remark,
                error_msg=r.msg,
                seq=seq,
            )
            return resp

        order.stock_code = code
        order.price = limit
        if listing is not None:
            order.instrument_name = listing.name
        else:
            assert instrument is not None  # validate refuses a missing instrument
            order.instrument_name = instrument.InstrumentName
        self._book(acct, order, freeze, out)

        if kind == _FULL_OR_CANCEL and (
            book is None or self._ledger.fillable(order, book) < order.order_volume
        ):
            self._finish(acct, order, "canceled: the book cannot fill the whole order", out)
        else:
            if book is not None:
                self._match(acct, order, book, now_ms, out)
            if order.order_status not in _TERMINAL and kind in _IOC_KINDS:
                if kind == _SH_5_LIMIT and order.traded_volume > 0:
                    self._convert_to_limit(acct, order, out)
                else:
                    self._finish(
                        acct, order, "remainder canceled: market order with no more liquidity", out
                    )
        resp = OrderResponse(
            account_id=acct.account_id,
            order_id=order_id,
            strategy_name=strategy,
            order_remark=remark,
            seq=seq,
        )
        return resp

    def _rest(
        self,
        acct: AccountState,
        req: SubmitOrder,
        plan: Plan,
        name: str,
        now_ms: int,
        out: list[TradeReportItem],
    ) -> OrderResponse:
        """Place an accepted limit order of plain values that meets no book (``_place``'s
        usual order): booked as the general path books it, with the same reports."""
        code, limit, kind, freeze = plan
        order_id = self._next_order_id
        self._next_order_id += 1
        side, strategy, remark = req.order_type, req.strategy_name, req.order_remark
        if remark:
            remark = cut_remark(remark)
        order = Order(
            account_id=acct.account_id,
            stock_code=code,
            order_id=order_id,
            order_sysid=self._counter_id(order_id),
            order_time=now_ms // 1000,
            order_type=side,
            order_volume=req.order_volume,
            price_type=kind,
            price=limit,
            order_status=_REPORTED,
            strategy_name=strategy,
            order_remark=remark,
            offset_flag=_CLOSE_FLAG if side == _SELL else _OPEN_FLAG,
            instrument_name=name,
        )
        self._book(acct, order, freeze, out)
        return OrderResponse(
            account_id=acct.account_id,
            order_id=order_id,
            strategy_name=strategy,
            order_remark=remark,
            seq=req.seq,
        )

    def _book(
        self, acct: AccountState, order: Order, freeze: int, out: list[TradeReportItem]
    ) -> None:
        """Book an accepted order: open in ``acct``, resting on its code, its cash (``freeze``
        cents, what the cash check worked out: ``_freeze_of(order)``) or shares frozen."""
        code = order.stock_code
        acct.orders[order.order_id] = order
        resting = self._resting.get(code)
        if resting is None:
            resting = self._resting[code] = {}
        resting[order.order_id] = acct.account_id
        out.append(_order_copy(order))
        if order.order_type == _BUY:
            acct.cash -= freeze
            acct.frozen += freeze
            if not acct.quiet:
                out.append(self._asset_report(acct))
        else:
            pos = acct.positions[code]
            pos.can_use -= order.order_volume
            pos.frozen += order.order_volume
            acct.touched.add(code)
            if not acct.quiet:
                out.append(self._position_report(acct, code))

    def _counter_id(self, n: int) -> str:
        day = self._day
        if day != self._prefix_day:  # the day's 8 digits, made once a day
            self._prefix_day, self._prefix = day, f"{day:08d}"  # _DAY_DIGITS
        return self._prefix + str(n).zfill(_COUNTER_DIGITS)  # cheaper than an f-string's 010d

    @staticmethod
    def _check_time(now_ms: object) -> None:
        if not is_int(now_ms) or now_ms < 0:
            raise InvalidArgument(f"now_ms must be Unix milliseconds (int >= 0), got {now_ms!r}")

    @staticmethod
    def _check_day_arg(day: object) -> None:
        if not is_int(day) or not 0 < day < 10**_DAY_DIGITS:
            raise InvalidArgument(f"trading day must be an int like 20250107, got {day!r}")

    # ------------------------------------------------------------------ matching

    def _match(
        self, acct: AccountState, order: Order, book: Tick, now_ms: int, out: list[TradeReportItem]
    ) -> None:
        if book.stock_code != order.stock_code or order.order_status in _TERMINAL:
            return
        want = order.order_volume - order.traded_volume
        pieces = self._ledger.take(order, book, want)
        if pieces:
            fills = _Fills()
            for p, p_li, q in pieces:
                fills.add(order, p, p_li, q)
            self._fill_run(acct, fills, now_ms, out)

    def _fill_run(
        self,
        acct: AccountState,
        fills: _Fills,
        now_ms: int,
        out: list[TradeReportItem],
    ) -> None:
        """Fill one account's ``(order, price, price in li, shares)`` pieces, in order: the
        one place a fill's rules live (a book's pieces of one order, or a step's bar fills
        of many orders, ``on_bars``). Each piece's reports are appended to ``out``: its
        ``Trade`` and the order's new state, then (an account with state reports) its
        ``Position`` and ``Asset``."""
        total_cents = self._rates.total_cents
        fill_cents = self._rates.fill_cents
        positions = acct.positions
        touched = acct.touched
        trades = acct.trades
        quiet = acct.quiet
        marked = acct.marks is not None
        resting = self._resting
        account_id = acct.account_id
        add = out.append
        traded_time = now_ms // 1000
        n = self._trade_counter
        day = self._day
        if day != self._prefix_day:  # _counter_id's prefix, made once a day
            self._prefix_day, self._prefix = day, f"{day:08d}"  # _DAY_DIGITS
        prefix = self._prefix
        # The account's cash, frozen cash and market value move by these sums, written to it
        # once per run (or before each report that reads them).
        cash = frozen = value = 0
        for order, price, price_li, qty in zip(
            fills.orders, fills.prices, fills.lis, fills.shares, strict=True
        ):
            code = order.stock_code
            side = order.order_type
            amount = (price_li * qty + 5) // 10  # amount_cents, inlined: hot path
            fee = fill_cents(side, amount)
            done = order.traded_volume
            left = order.order_volume - done - qty
            order.traded_price = (order.traded_price * done + price * qty) / (done + qty)
            order.traded_volume = done + qty
            order.order_status = _SUCCEEDED if left == 0 else _PART_SUCC
            pos = positions.get(code)
            if pos is None:
                pos = positions[code] = Holding(name=order.instrument_name)
            elif marked:
                self._freshen(acct, code, pos)  # dayend's hook: the value below must be current
            touched.add(code)
            if side == _BUY:
                # The freeze of the remainder before and after this fill (``_freeze_of``).
                limit_li = round(order.price * 1000)
                before = (limit_li * (left + qty) + 5) // 10
                old_freeze = before + total_cents(_BUY, before)
                if left > 0:
                    after = (limit_li * left + 5) // 10
                    new_freeze = after + total_cents(_BUY, after)
                else:
                    new_freeze = 0
                frozen += new_freeze - old_freeze
                cash += old_freeze - new_freeze - amount - fee
                held = pos.volume
                volume = held + qty
                if held > 0:
                    pos.open_price = (pos.open_price * held + amount / 100) / volume
                    pos.avg_price = (pos.avg_price * held + (amount + fee) / 100) / volume
                else:
                    pos.open_price = amount / 100 / qty
                    pos.avg_price = (amount + fee) / 100 / qty
            else:
                cash += amount - fee
                volume = pos.volume - qty
                pos.frozen -= qty
            pos.volume = volume
            pos.last_price = price
            # revalue(), inlined with value_q's usual case: hot path
            if type(price) is float and EXACT_FROM <= price < EXACT_BELOW:
                q = volume * int(price * SCALE_F)
            else:
                q = value_q(volume, price)
            value += q - pos.value
            pos.value = q
            if left == 0:  # _unrest
                on_code = resting.get(code)
                if on_code is not None:
                    on_code.pop(order.order_id, None)
                    if not on_code:  # resting_codes (every step) walks only codes in use
                        del resting[code]
            n += 1
            trade = Trade(
                account_id=account_id,
                stock_code=code,
                order_type=side,
                traded_id=prefix + str(n).zfill(_COUNTER_DIGITS),  # _counter_id
                traded_time=traded_time,
                traded_price=price,
                traded_volume=qty,
                traded_amount=amount / 100,
                order_id=order.order_id,
                order_sysid=order.order_sysid,
                strategy_name=order.strategy_name,
                order_remark=order.order_remark,
                offset_flag=order.offset_flag,
                commission=fee / 100,
                instrument_name=order.instrument_name,
            )
            trades.append(trade)
            add(trade)  # never changed once made (queries hand out copies)
            add(_copy(order))
            if not quiet:  # the reports read the account: bring it up to date first
                acct.cash += cash
                acct.frozen += frozen
                acct.market_value += value
                cash = frozen = value = 0
                self._trade_counter = n
                add(self._position_report(acct, code))
                add(self._asset_report(acct))
        acct.cash += cash
        acct.frozen += frozen
        acct.market_value += value
        self._trade_counter = n

    def _unrest(self, order: Order) -> None:
        book = self._resting.get(order.stock_code)
        if book is not None:
            book.pop(order.order_id, None)
            if not book:  # resting_codes (every step of a backtest) walks only codes in use
                del self._resting[order.stock_code]

    def _finish(
        self, acct: AccountState, order: Order, msg: str, out: list[TradeReportItem]
    ) -> None:
        """End an open order's remainder (cancel or expiry) and release what it froze."""
        old_freeze = self._freeze_of(order)
        rest = _remaining(order)
        order.order_status = _PART_CANCEL if order.traded_volume > 0 else _CANCELED
        order.status_msg = msg
        self._unrest(order)
        out.append(_copy(order))
        if order.order_type == _BUY:
            acct.frozen -= old_freeze
            acct.cash += old_freeze
            if not acct.quiet:
                out.append(self._asset_report(acct))
        else:
            pos = acct.positions[order.stock_code]
            pos.frozen -= rest
            pos.can_use += rest
            acct.touched.add(order.stock_code)
            if not acct.quiet:
                out.append(self._position_report(acct, order.stock_code))

    def _convert_to_limit(
        self, acct: AccountState, order: Order, out: list[TradeReportItem]
    ) -> None:
        """A five-level-then-limit remainder rests at its last fill's price."""
        last = acct.trades[-1].traded_price
        old_freeze = self._freeze_of(order)
        order.price = last
        order.status_msg = f"remainder rests as a limit order at {fmt_price(last)}"
        out.append(_copy(order))
        if order.order_type == _BUY:
            new_freeze = self._freeze_of(order)
            acct.frozen += new_freeze - old_freeze
            acct.cash += old_freeze - new_freeze
            if not acct.quiet:
                out.append(self._asset_report(acct))

    def on_tick(self, tick: Tick, now_ms: int) -> list[tuple[str, TradeReportItem]]:
        """Match the resting orders on ``tick.stock_code`` against the new book.

        Buys go best (highest) price first, sells lowest first, ties by order id; the book's
        volume at each level is shared by all of them once per tick.
        """
        if type(tick) is not Tick and not isinstance(tick, Tick):
            raise InvalidArgument(f"tick must be a Tick, got {type(tick).__name__}")
        if type(now_ms) is not int or now_ms < 0:
            self._check_time(now_ms)
        resting = self._resting.get(tick.stock_code)
        if not resting:
            return []
        if len(resting) == 1:  # one order: nothing to rank (a backtest's usual case)
            ((oid, account_id),) = resting.items()
            acct = self._accounts[account_id]
            one: list[TradeReportItem] = []
            self._match(acct, acct.orders[oid], tick, now_ms, one)
            return [(account_id, item) for item in one]
        result: list[tuple[str, TradeReportItem]] = []
        for order, account_id in self._ranked(resting):
            out: list[TradeReportItem] = []
            self._match(self._accounts[account_id], order, tick, now_ms, out)
            result.extend((account_id, item) for item in out)
        return result

    def _ranked(self, resting: dict[int, str]) -> list[tuple[Order, str]]:
        """A code's resting ``(order, account id)``: buys best (highest) price first, then
        sells lowest first, ties by order id (the order a new book meets them in)."""
        entries = [(self._accounts[a].orders[oid], a) for oid, a in resting.items()]
        buys = sorted(
            (e for e in entries if e[0].order_type == _BUY),
            key=lambda e: (-li(e[0].price), e[0].order_id),
        )
        sells = sorted(
            (e for e in entries if e[0].order_type == _SELL),
            key=lambda e: (li(e[0].price), e[0].order_id),
        )
        return buys + sells

    def on_bar(
        self,
        code: str,
        time: int,
        ask: float | None,
        bid: float | None,
        volume: int,
        now_ms: int,
    ) -> list[tuple[str, TradeReportItem]]:
        """``on_tick`` for a book of one level a side, given by its numbers: buys meet
        ``ask``, sells ``bid`` (None: nobody sells, or buys, there), ``volume`` shares each,
        at book time ``time``.

        The same fills and reports, in the same order, as ``on_tick`` with the ``Tick`` of
        those levels (the same ranking, ledger and ``_fill_run``), without making the ``Tick``:
        a backtest's bars bring such a book for nearly every fill.
        """
        runs = self.on_bars([(code, ask, bid, volume)], time, now_ms)
        return [(account_id, item) for account_id, items in runs for item in items]

    def on_bars(
        self,
        quotes: Iterable[tuple[str, float | None, float | None, int]],
        time: int,
        now_ms: int,
    ) -> list[tuple[str, list[TradeReportItem]]]:
        """``on_bar`` for several codes' books at one time, ``(code, ask, bid, volume)``
        each, met in the order given: the reports as runs of one account each, in order
        (``PaperAccounts.publish_runs``), instead of an (account, report) pair per report.

        The ledger is asked for every order first; the shares each order takes are then
        filled one account's run at a time (``_fill_run``): a step's fills in one pass.
        """
        if type(now_ms) is not int or now_ms < 0:
            self._check_time(now_ms)
        all_resting = self._resting
        accounts = self._accounts
        take = self._ledger.take_level
        runs: list[tuple[str, list[TradeReportItem]]] = []
        run_id = ""
        pending = _Fills()
        # pending.add, unrolled: a call per fill was a measurable part of a step's matching
        add_order, add_price = pending.orders.append, pending.prices.append
        add_li, add_shares = pending.lis.append, pending.shares.append
        met: set[str] = set()
        for code, ask, bid, volume in quotes:
            resting = all_resting.get(code)
            if not resting:
                continue
            if code in met:  # met again: its orders must show the fills so far
                if pending.orders:
                    self._fill_run(accounts[run_id], pending, now_ms, runs[-1][1])
                    pending.clear()
            else:
                met.add(code)
            if len(resting) == 1:  # one order: nothing to rank (a backtest's usual case)
                ((oid, account_id),) = resting.items()
                entries = [(accounts[account_id].orders[oid], account_id)]
            else:
                entries = self._ranked(resting)
            for order, account_id in entries:
                if order.order_status in _TERMINAL:
                    continue
                buy = order.order_type == _BUY
                price = ask if buy else bid
                want = order.order_volume - order.traded_volume
                qty, price_li = take(code, time, buy, price, volume, order.price, want)
                if qty:
                    assert price is not None  # something was taken at it
                    if account_id != run_id or not runs:
                        if pending.orders:
                            self._fill_run(accounts[run_id], pending, now_ms, runs[-1][1])
                            pending.clear()
                        run_id = account_id
                        runs.append((account_id, []))
                    add_order(order)
                    add_price(price)
                    add_li(price_li)
                    add_shares(qty)
        if pending.orders:
            self._fill_run(accounts[run_id], pending, now_ms, runs[-1][1])
        return runs

    def resting_on(self, code: str) -> list[tuple[int, int, float]]:
        """``(order_id, order_type, limit price)`` of the orders on ``code`` that can still
        trade, by order id (a venue that judges each order by its own limit reads them)."""
        resting = self._resting.get(code) or {}
        out = []
        for oid in sorted(resting):
            order = self._accounts[resting[oid]].orders[oid]
            out.append((oid, order.order_type, order.price))
        return out

    def on_tick_for(
        self, tick: Tick, now_ms: int, order_ids: Iterable[int]
    ) -> list[tuple[str, TradeReportItem]]:
        """Like `on_tick`, for the given resting orders of ``tick.stock_code`` only, in the
        order given (ids that cannot trade any more are skipped)."""
        if not isinstance(tick, Tick):
            raise InvalidArgument(f"tick must be a Tick, got {type(tick).__name__}")
        self._check_time(now_ms)
        resting = self._resting.get(tick.stock_code) or {}
        result: list[tuple[str, TradeReportItem]] = []
        for oid in order_ids:
            account_id = resting.get(oid)
            if account_id is None:
                continue
            out: list[TradeReportItem] = []
            acct = self._accounts[account_id]
            self._match(acct, acct.orders[oid], tick, now_ms, out)
            result.extend((account_id, item) for item in out)
        return result

    # ------------------------------------------------------------------ cancel

    def cancel(
        self, account_id: str, order_id: int, now_ms: int, *, seq: int = 0
    ) -> tuple[CancelResponse, list[TradeReportItem]]:
        """Cancel a resting order: final ``Order`` at 54 / 53 plus the unfreeze.

        A cancel the broker cannot do answers ``cancel_result`` -1 and reports a
        ``CancelError`` saying why; nothing changes.
        """
        self._check_account_id(account_id)
        self._check_time(now_ms)
        if not is_int(order_id):
            raise InvalidArgument(f"order_id must be an int, got {order_id!r}")
        acct = self._accounts.get(account_id)
        if acct is None and not self.allow_new_accounts:
            raise self._unknown(account_id)
        order = acct.orders.get(order_id) if acct is not None else None
        if acct is None:
            why = f"unknown account {account_id!r}: nothing to cancel"
        elif order is None:
            why = f"no order {order_id} today in account {account_id!r}"
        else:
            why = ""
        return self._cancel(account_id, acct, order, order_id, why, seq)

    def cancel_by_sysid(
        self, account_id: str, market: int, order_sysid: str, now_ms: int, *, seq: int = 0
    ) -> tuple[CancelResponse, list[TradeReportItem]]:
        """Cancel by the venue's order number; ``market`` is 0 SH, 1 SZ, 2 (or 70) BJ."""
        self._check_account_id(account_id)
        self._check_time(now_ms)
        if not is_int(market) or market not in _MARKETS:
            raise InvalidArgument(f"bad market {market!r}: expected 0 (SH), 1 (SZ) or 2 (BJ)")
        if not isinstance(order_sysid, str):
            raise InvalidArgument(f"order_sysid must be a string, got {order_sysid!r}")
        acct = self._accounts.get(account_id)
        if acct is None and not self.allow_new_accounts:
            raise self._unknown(account_id)
        order = None
        why = ""
        if acct is None:
            why = f"unknown account {account_id!r}: nothing to cancel"
        else:
            order = next((o for o in acct.orders.values() if o.order_sysid == order_sysid), None)
            if order is None:
                why = f"no order with sysid {order_sysid!r} today in account {account_id!r}"
            elif not order.stock_code.endswith("." + _MARKETS[market]):
                why = (
                    f"order {order_sysid!r} is on {order.stock_code}, not on market {market} "
                    f"({_MARKETS[market]})"
                )
        order_id = order.order_id if order is not None else -1
        return self._cancel(account_id, acct, order, order_id, why, seq, sysid=order_sysid)

    def _cancel(
        self,
        account_id: str,
        acct: AccountState | None,
        order: Order | None,
        order_id: int,
        why: str,
        seq: int,
        sysid: str = "",
    ) -> tuple[CancelResponse, list[TradeReportItem]]:
        if not why and order is not None and not _is_open(order):
            why = (
                f"order {order.order_id} is already final "
                f"({OrderStatus(order.order_status).name}, status {order.order_status}): "
                "only orders still in the book can be canceled"
            )
        sysid = order.order_sysid if order is not None else sysid
        if why or acct is None or order is None:
            market = _EXCHANGE_MARKET.get(order.stock_code[-2:], 0) if order is not None else 0
            err = CancelError(
                account_id=account_id,
                order_id=order_id,
                market=market,
                order_sysid=sysid,
                error_id=-1,
                error_msg=why,
            )
            resp = CancelResponse(
                account_id=account_id,
                cancel_result=-1,
                order_id=order_id,
                order_sysid=sysid,
                seq=seq,
                error_msg=why,
            )
            return resp, [err]
        out: list[TradeReportItem] = []
        self._finish(acct, order, "canceled by request", out)
        resp = CancelResponse(
            account_id=account_id,
            cancel_result=0,
            order_id=order.order_id,
            order_sysid=sysid,
            seq=seq,
        )
        return resp, out

    # ------------------------------------------------------------------ day roll

    def roll_day(self, new_day: int) -> list[tuple[str, TradeReportItem]]:
        """Start trading day ``new_day``: expire open orders, settle T+1, clear today's lists.

        Rolling to the current day again does nothing; earlier days are refused.
        """
        self._check_day_arg(new_day)
        if new_day < self._day:
            raise InvalidArgument(
                f"cannot roll back to day {new_day}: the broker is already on day {self._day}"
            )
        if new_day == self._day:
            return []
        result: list[tuple[str, TradeReportItem]] = []
        for acct in self._accounts.values():
            out: list[TradeReportItem] = []
            for order in list(acct.orders.values()):
                if _is_open(order):
                    self._finish(acct, order, f"expired at the end of trading day {self._day}", out)
            if acct.quiet:
                self._settle_touched(acct)
            else:
                self._settle_all(acct, out)
            acct.orders.clear()
            acct.trades.clear()
            result.extend((acct.account_id, item) for item in out)
        self._day = new_day
        self._ledger.clear()
        return result

    def _settle_all(self, acct: AccountState, out: list[TradeReportItem]) -> None:
        """T+1 for every holding, with a ``Position`` report of each one that changed, in
        holding order; sold-out holdings are dropped."""
        self._materialize(acct)
        sold_out = []
        positions = acct.positions
        for code, pos in positions.items():
            volume = pos.volume
            if volume == 0:
                sold_out.append(code)
            elif pos.can_use != volume or pos.yesterday != volume:
                pos.can_use = volume - pos.frozen
                pos.yesterday = volume
                out.append(self._position_report(acct, code))
        for code in sold_out:
            del positions[code]
        acct.touched = {code for code, pos in positions.items() if pos.frozen}

    @staticmethod
    def _settle_touched(acct: AccountState) -> None:
        """``_settle_all`` without reports, for the touched holdings only: the others are
        settled already (a quiet account with thousands of holdings rolls every day).

        An account marked as columns (or logged) gets the settled shares into its book (log)
        here, while each holding is in hand (the next close reads only what changes after
        the roll)."""
        positions = acct.positions
        book = acct.marks
        log = None
        if isinstance(book, DayLog):
            log, book = book, None
        unsettled = set()
        settled: list[tuple[str, Holding]] = []
        dropped: list[str] = []
        for code in acct.touched:
            pos = positions.get(code)
            if pos is None:
                continue
            volume = pos.volume
            if volume == 0:
                del positions[code]
                if book is not None:
                    book.drop(code)
                dropped.append(code)
                continue
            if pos.can_use != volume or pos.yesterday != volume:
                pos.can_use = volume - pos.frozen
                pos.yesterday = volume
            if pos.frozen:  # still not all sellable: settled again at the next roll
                unsettled.add(code)
            settled.append((code, pos))
        if book is not None:
            book.settled(settled)
        elif log is not None:
            log.settled(settled, dropped)
        acct.touched = unsettled

    # ------------------------------------------------------------------ corporate actions

    def ex_rights(
        self, code: str, cash_per_share: float, shares_per_share: float
    ) -> list[tuple[str, TradeReportItem]]:
        """Apply an ex-date to every holding of ``code`` before the day trades.

        Each account is credited ``cash_per_share`` CNY per share held (whole cents, rounded
        down; no dividend tax) and given ``shares_per_share`` bonus/transfer shares per share
        (whole shares, rounded down, sellable at once); the cost per share falls accordingly.
        """
        if not is_finite(cash_per_share) or cash_per_share < 0:
            raise InvalidArgument(f"cash_per_share must be >= 0, got {cash_per_share!r}")
        if not is_finite(shares_per_share) or shares_per_share < 0:
            raise InvalidArgument(f"shares_per_share must be >= 0, got {shares_per_share!r}")
        result: list[tuple[str, TradeReportItem]] = []
        for acct in self._accounts.values():
            pos = acct.positions.get(code)
            if pos is None or pos.volume <= 0:
                continue
            if acct.marks is not None:
                self._freshen(acct, code, pos)
            cash = math.floor(pos.volume * cash_per_share * 100 + 1e-6)
            extra = math.floor(pos.volume * shares_per_share + 1e-9)
            if cash <= 0 and extra <= 0:
                continue
            acct.cash += cash
            acct.touched.add(code)
            if extra > 0:
                scale = pos.volume / (pos.volume + extra)
                pos.avg_price *= scale
                pos.open_price *= scale
                pos.last_price *= scale
                pos.volume += extra
                pos.can_use += extra
                pos.yesterday += extra
                revalue(acct, pos)
            if not acct.quiet:
                result.append((acct.account_id, self._position_report(acct, code)))
                result.append((acct.account_id, self._asset_report(acct)))
        return result

    def charge(self, account_id: str, amount: float) -> list[TradeReportItem]:
        """Take ``amount`` CNY (a tax the venue collects) from the account's available cash.

        Returns the account's new ``Asset`` report (nothing for a zero amount, or for an
        account without state reports: ``state_reports``).
        """
        if not is_finite(amount) or amount < 0:
            raise InvalidArgument(f"amount must be a finite amount >= 0, got {amount!r}")
        self._check_account_id(account_id)
        acct = self._accounts.get(account_id)
        if acct is None:
            raise self._unknown(account_id)
        taken = cents(amount)
        if taken == 0:
            return []
        acct.cash -= taken
        return [] if acct.quiet else [self._asset_report(acct)]

    # ------------------------------------------------------------------ restore

    @classmethod
    def restore(
        cls,
        reports: Iterable[AccountReport],
        *,
        initial_cash: float = 1_000_000.0,
        fees: FeeSchedule | None = None,
        allow_new_accounts: bool = True,
        accounts: Iterable[str] = (),
    ) -> Broker:
        """Rebuild a broker from the reports it emitted (e.g. a journal), oldest first.

        Accounts come back from their ``Asset`` reports (every account's first report is
        one), holdings from ``Position``, orders (and so the frozen amounts and the resting
        book) from ``Order``, today's fills from ``Trade``. The trading day is the latest one
        seen in an order or trade number; after a restart call ``roll_day(today)``, which
        emits only what the journal does not already hold. Pass the same ``fees`` as the
        broker that wrote the reports: a resting buy's frozen cash is derived from them.
        """
        b = cls(
            initial_cash=initial_cash,
            fees=fees,
            allow_new_accounts=allow_new_accounts,
            accounts=accounts,
        )
        for rep in reports:
            if not isinstance(rep, AccountReport):
                raise InvalidArgument(f"restore takes AccountReports, got {type(rep).__name__}")
            b._fold(rep.account_id, rep.item)
        return b

    def _see_day(self, counter_id: str) -> None:
        day = _day_of(counter_id)
        if day is None or day <= self._day:
            return
        if self._day:
            # The journaled roll already expired and settled; this drops what a roll
            # removes silently (sold-out positions, yesterday's lists).
            self.roll_day(day)
        self._day = day

    def _fold(self, account_id: str, item: TradeReportItem) -> None:
        acct = self._accounts.get(account_id)
        if isinstance(item, Asset):
            if acct is None:
                acct = self._create(account_id)
            acct.cash = cents(item.cash)
            acct.frozen = cents(item.frozen_cash)
        elif isinstance(item, Order):
            self._next_order_id = max(self._next_order_id, item.order_id + 1)
            self._see_day(item.order_sysid)
            if acct is None:
                return
            order = _copy(item)
            acct.orders[order.order_id] = order
            if order.order_status != _JUNK and _is_open(order):
                self._resting.setdefault(order.stock_code, {})[order.order_id] = account_id
            else:
                self._unrest(order)
        elif isinstance(item, Trade):
            self._trade_counter = max(self._trade_counter, _seq_of(item.traded_id))
            self._see_day(item.traded_id)
            if acct is not None:
                acct.trades.append(_copy(item))
        elif isinstance(item, Position):
            if acct is None:
                return
            old = acct.positions.get(item.stock_code)
            if old is not None:
                acct.market_value -= old.value
            pos = acct.positions[item.stock_code] = Holding(
                volume=item.volume,
                can_use=item.can_use_volume,
                frozen=item.frozen_volume,
                yesterday=item.yesterday_volume,
                open_price=item.open_price,
                avg_price=item.avg_price,
                last_price=item.last_price,
                name=item.instrument_name,
            )
            revalue(acct, pos)
            acct.touched.add(item.stock_code)
        elif isinstance(item, OrderError):
            self._next_order_id = max(self._next_order_id, item.order_id + 1)
