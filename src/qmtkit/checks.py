"""Argument checks shared by every entry point: the client, the adapters, the shim, the data API.

Each check either returns the value (narrowed) or raises ``InvalidArgument`` naming the bad
value and what is expected. ``bool`` is never taken for a number: ``True`` is not 1 share.
Venue rules (lots, ticks, price limits, T+1) are not argument checks; they stay with the venue.
"""

from __future__ import annotations

import math
from typing import Any, Final, NamedTuple, TypeGuard

import numpy as np

from qmtkit.constants import OrderType, PriceType
from qmtkit.errors import InvalidArgument

ORDER_TYPES: Final = frozenset(int(t) for t in OrderType)
PRICE_TYPES: Final = frozenset(int(t) for t in PriceType)
_FIX_PRICE: Final = int(PriceType.FIX_PRICE)


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``."""
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def is_whole(value: object) -> TypeGuard[int | np.integer[Any]]:
    """An ``int`` or numpy integer that is not a ``bool`` (numpy's own bool is not an integer)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[int | float]:
    """An ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: object) -> TypeGuard[int | float]:
    """A real number (see ``is_real``) that is neither NaN nor infinite."""
    return is_real(value) and math.isfinite(value)


def positive_int(name: str, value: object, what: str = "") -> int:
    """``value`` if it is an int > 0; ``what`` says what it counts, for the error."""
    if not is_int(value) or value <= 0:
        raise InvalidArgument(f"bad {name} {value!r}: expected a positive int{what}")
    return value


def non_negative_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 0."""
    if not is_int(value) or value < 0:
        raise InvalidArgument(f"bad {name} {value!r}: expected a non-negative int")
    return value


def finite_number(name: str, value: object, what: str = "") -> float:
    """``value`` as a float if it is a finite int or float (not a bool, NaN or infinite)."""
    if not is_finite(value):
        raise InvalidArgument(f"bad {name} {value!r}: expected a finite number{what}")
    return float(value)


def positive_number(name: str, value: object, what: str = "") -> float:
    """``value`` as a float if it is a finite number > 0; ``what`` says its unit, for the error."""
    if not is_finite(value) or value <= 0:
        raise InvalidArgument(f"bad {name} {value!r}: expected a positive number{what}")
    return float(value)


def check_count(count: object, name: str = "count") -> int:
    """A number of rows to keep: -1 (all), 0 (none) or more (numpy integers accepted)."""
    if not is_whole(count) or int(count) < -1:
        raise InvalidArgument(f"bad {name} {count!r}: expected -1 (all), 0 (none) or a count > 0")
    return int(count)


def text(name: str, value: object) -> str:
    """``value`` if it is a ``str``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a str, got {type(value).__name__} {value!r}")
    return value


class OrderArgs(NamedTuple):
    """xtquant's ``order_stock`` arguments after the code, checked and typed."""

    order_type: int
    order_volume: int
    price_type: int
    price: float
    strategy_name: str
    order_remark: str


def check_order(
    order_type: object,
    order_volume: object,
    price_type: object,
    price: object,
    strategy_name: object,
    order_remark: object,
) -> OrderArgs:
    """Check xtquant's ``order_stock`` arguments after the code, before any venue sees them.

    The price is a finite number, never negative, and above zero for a FIX_PRICE (limit) order;
    other price types ignore it. Returns them typed (the price as a float).
    """
    if not is_int(order_type) or order_type not in ORDER_TYPES:
        raise InvalidArgument(
            f"bad order_type {order_type!r}: expected 23 (STOCK_BUY) or 24 (STOCK_SELL)"
        )
    volume = positive_int("order_volume", order_volume, " number of shares")
    if not is_int(price_type) or price_type not in PRICE_TYPES:
        raise InvalidArgument(
            f"bad price_type {price_type!r}: expected one of xtquant's price types, e.g. "
            f"11 (FIX_PRICE) or 5 (LATEST_PRICE)"
        )
    if not is_finite(price) or price < 0:
        raise InvalidArgument(f"bad price {price!r}: expected a finite number >= 0")
    if price_type == _FIX_PRICE and price <= 0:
        raise InvalidArgument(f"bad price {price!r} for FIX_PRICE: expected a positive limit price")
    return OrderArgs(
        order_type,
        volume,
        price_type,
        float(price),
        text("strategy_name", strategy_name),
        text("order_remark", order_remark),
    )
