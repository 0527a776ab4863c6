"""The ``qmt`` fill model's price for one limit order against one bar.

QMT's own backtest fills an order whose limit lies inside the bar's low–high at the limit, and
otherwise at the close. The replay applies that to every order at every bar's close, resting
ones included, so each order is judged by its own limit:

* a buy at ``L`` with ``low <= L <= high`` fills at ``L``; above the high it fills at the close
  (which is below ``L``); below the low the bar never reached it: it does not fill and rests;
* a sell mirrors it.

A resting order meets a later bar's open first: if the open is already at or better than its
limit it fills there (the open phase, as with every model), else at the close phase by the
rule above. Pure functions: the backend builds the books and the broker fills.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from qmtkit.constants import OrderType

_BUY: Final = int(OrderType.STOCK_BUY)
_EPS: Final = 1e-9


def qmt_price(side: int, limit: float, low: float, high: float, close: float) -> float | None:
    """The price an order at ``limit`` trades at against the bar, or None if it does not."""
    if low - _EPS <= limit <= high + _EPS:
        return limit
    if side == _BUY:
        return close if limit > high else None
    return close if limit < low else None


def price_groups(
    orders: Sequence[tuple[int, int, float]], low: float, high: float, close: float
) -> list[tuple[int, float, list[int]]]:
    """``(side, price, order ids)`` for resting ``(order_id, side, limit)`` orders of one code.

    Orders that trade at the same price share a group. Groups come best first, as the bar
    would have reached them: buys from the highest price down, sells from the lowest up; the
    ids inside a group keep the broker's priority (better limit first, then order id).
    """
    groups: dict[tuple[int, float], list[tuple[float, int]]] = {}
    for oid, side, limit in orders:
        price = qmt_price(side, limit, low, high, close)
        if price is not None:
            rank = -limit if side == _BUY else limit
            groups.setdefault((side, price), []).append((rank, oid))
    keys = sorted(groups, key=lambda k: (k[0] != _BUY, -k[1] if k[0] == _BUY else k[1]))
    return [(side, price, [oid for _, oid in sorted(groups[side, price])]) for side, price in keys]


__all__ = ["price_groups", "qmt_price"]
