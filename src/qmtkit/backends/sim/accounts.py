"""The paper broker's account state: cash and frozen cash in cents, holdings, today's orders.

Plain mutable records that the broker's transitions (``broker.py``) change in place, and the
money arithmetic they share: prices in thousandths of a yuan (li), amounts in whole cents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qmtkit.models import Order, Trade

if TYPE_CHECKING:
    from qmtkit.backends.sim.dayclose import DayLog
    from qmtkit.backends.sim.marks import MarkBook


@dataclass(slots=True)
class Holding:
    """One code an account holds: all, sellable, sell-frozen and pre-today shares, and costs."""

    volume: int = 0
    can_use: int = 0
    frozen: int = 0
    yesterday: int = 0
    open_price: float = 0.0
    avg_price: float = 0.0
    last_price: float = 0.0
    name: str = ""
    #: ``volume`` x ``last_price`` exactly, in units of ``1 / VALUE_SCALE`` CNY (``value_q``).
    value: int = 0


@dataclass
class AccountState:
    """One paper account: cash and frozen cash in cents, holdings, and today's orders and trades."""

    account_id: str
    cash: int  # cents available
    frozen: int  # cents frozen for open buys
    positions: dict[str, Holding] = field(default_factory=dict)
    #: The holdings' market value: the sum of their ``Holding.value``, kept on every change
    #: (an ``Asset`` report is made on most state changes; summing every holding each time
    #: was most of a backtest's broker time with many codes held).
    market_value: int = 0
    #: ``(market_value, its CNY float, that rounded to cents)`` as last reported: most Asset
    #: reports repeat the value of the one before (a buy's freeze), so it is worked out once.
    value_shown: tuple[int, float, float] = (0, 0.0, 0.0)
    #: ``(cash + frozen, market_value, total_asset)`` as last reported, the same way: a buy's
    #: freeze moves cash to frozen and leaves the total as it was.
    total_shown: tuple[int, int, float] = (-1, 0, 0.0)
    #: No ``Asset`` or ``Position`` reports of this account's changes (``Broker.state_reports``).
    quiet: bool = False
    orders: dict[int, Order] = field(default_factory=dict)  # today's, in id order
    trades: list[Trade] = field(default_factory=list)  # today's
    #: Codes whose holding may need settling at the day's roll (shares bought, sold, frozen
    #: or released, restored or given since the last roll); every other holding is settled
    #: (all shares sellable, all held since yesterday), so a quiet account's roll visits
    #: only these instead of every holding every day.
    touched: set[str] = field(default_factory=set)
    #: A quiet account's holdings as columns once a close was marked by code number
    #: (``sim.marks``), or its closes kept as what changed (``sim.dayclose``): while it is
    #: set, a holding's ``last_price`` and ``value`` may lag it.
    marks: MarkBook | DayLog | None = None


#: The fixed point of exact market values: 2**-80 CNY holds every product of whole shares and
#: a float price >= 2**-28 CNY without rounding (a float is an odd integer times a power of 2).
VALUE_SCALE = 1 << 80


def value_q(volume: int, price: float) -> int:
    """``volume`` x ``price`` exactly, in units of ``1 / VALUE_SCALE`` CNY.

    Exact sums do not depend on the order of their terms, so a market value kept by adding
    and removing terms equals the one summed afresh. A price below 2**-28 CNY (no traded
    price is) is truncated to the scale.
    """
    if type(price) is float and EXACT_FROM <= price < EXACT_BELOW:
        # A float >= 2**-27 is a whole multiple of 2**-80 (53 bits of mantissa), so scaling
        # it by 2**80 is exact and so is int(): no fraction and no remembered units, whose
        # table (a whole market's prices) was a cache miss per holding-day.
        return volume * int(price * SCALE_F)
    n, d = price.as_integer_ratio()
    if d > VALUE_SCALE:
        return volume * n * VALUE_SCALE // d
    return volume * n * (VALUE_SCALE // d)


#: ``VALUE_SCALE`` as a float (a power of two: multiplying by it is exact).
SCALE_F = float(VALUE_SCALE)
#: From this price (2**-27 CNY) up to ``EXACT_BELOW`` (far from a float's overflow once scaled)
#: ``int(price * SCALE_F)`` is ``value_q(1, price)`` exactly.
EXACT_FROM = 2.0**-27
EXACT_BELOW = 2.0**900


def revalue(acct: AccountState, pos: Holding) -> None:
    """Bring ``pos.value`` and the account's market value up to the holding's volume and price."""
    q = value_q(pos.volume, pos.last_price)
    acct.market_value += q - pos.value
    pos.value = q


def li(price: float) -> int:
    """A price in thousandths of a yuan."""
    return round(price * 1000)


def amount_cents(price: float, volume: int) -> int:
    """``price`` x ``volume`` in whole cents, rounded half up."""
    return (li(price) * volume + 5) // 10


#: Beyond this many cents ``round2`` leaves the work to ``round``: below it a float's error
#: in ``x * 100`` is under 2**-13, far inside the margin it keeps from a half cent.
_ROUND2_SPAN = float(1 << 40)


def round2(x: float) -> float:
    """``round(x, 2)``, bit for bit, about twice as fast for the amounts reports carry.

    ``round(x, 2)`` rounds the exact value of ``x`` to two decimals and converts that back;
    ``c / 100`` with ``c`` the nearest integer to ``x * 100`` is the same float (IEEE division
    rounds correctly) whenever ``c`` is surely the nearest integer to the exact ``x * 100``:
    when the float product is clear of a half cent by more than its own error. Near a half
    cent, at zero (the sign of -0.0) and beyond ``_ROUND2_SPAN`` cents, ``round`` decides.
    """
    y = x * 100.0
    if -_ROUND2_SPAN < y < _ROUND2_SPAN:
        c = round(y)
        d = y - c
        if c and -0.499 < d < 0.499:
            return c / 100
    return round(x, 2)


#: Beyond this many li ``round3`` leaves the work to ``round`` (``_ROUND2_SPAN``'s reason).
ROUND_SPAN = float(1 << 40)


def round3(x: float) -> float:
    """``round(x, 3)``, bit for bit, about three times as fast: ``round2``'s reasoning at the
    li (a bar's book prices every fill's price with it)."""
    y = x * 1000.0
    if -ROUND_SPAN < y < ROUND_SPAN:
        c = round(y)
        d = y - c
        if c and -0.499 < d < 0.499:
            return c / 1000
    return round(x, 3)


def cents(value: float) -> int:
    """A CNY amount in whole cents."""
    return round(value * 100)
