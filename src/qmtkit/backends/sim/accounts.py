"""The paper broker's account state: cash and frozen cash in cents, holdings, today's orders.

Plain mutable records that the broker's transitions (``broker.py``) change in place, and the
money arithmetic they share: prices in thousandths of a yuan (li), amounts in whole cents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qmtkit.models import Order, Trade


@dataclass
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


@dataclass
class AccountState:
    """One paper account: cash and frozen cash in cents, holdings, and today's orders and trades."""

    account_id: str
    cash: int  # cents available
    frozen: int  # cents frozen for open buys
    positions: dict[str, Holding] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # today's, in id order
    trades: list[Trade] = field(default_factory=list)  # today's


def li(price: float) -> int:
    """A price in thousandths of a yuan."""
    return round(price * 1000)


def amount_cents(price: float, volume: int) -> int:
    """``price`` x ``volume`` in whole cents, rounded half up."""
    return (li(price) * volume + 5) // 10


def cents(value: float) -> int:
    """A CNY amount in whole cents."""
    return round(value * 100)
