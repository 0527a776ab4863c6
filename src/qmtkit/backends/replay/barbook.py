"""What a bar's book offers the orders that meet it: one level a side.

A bar has no book; the replay gives the orders that meet it one price a side (the open, or the
close, or a ``qmt`` order's own limit; moved ``slippage`` ticks against the order and held
inside the day's limits), the same number of shares on each side (``participation`` of the
bar's volume, in whole lots) and no side at all where the bar is locked at a limit (nobody
sells at the upper limit, nobody buys at the lower one). A suspended code offers nothing.

``quote`` works that out for one bar; ``quotes`` for a step's many codes at once from the
replay's arrays (the whole market's resting orders meet a step together), with the very
floats ``quote`` gives. Pure functions: the replay reads the bars and each code's listing of
the day (``rules.Listing``: trading flag, limits, price tick; the very facts the order rules
judged by), the broker fills (``Broker.on_bars``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from qmtkit.backends.sim.accounts import ROUND_SPAN, round3
from qmtkit.backends.sim.rules import Listing

_LOT: Final = 100
_EPS: Final = 1e-9

#: (ask, bid, shares a side); a side is None when the bar is locked at its limit there.
Quote = tuple[float | None, float | None, int]
Bar = tuple[float, float, float, float, int]  # open, high, low, close, volume (lots)


def quote(
    bar: Bar,
    listing: Listing,
    phase: str,
    fill: str,
    participation: float,
    slippage: float,
    limit: float | None = None,
) -> Quote | None:
    """What ``bar`` offers in ``phase`` (``open``: at its open; otherwise at its close, or
    for ``fill`` ``qmt`` with an order's ``limit``, at the limit inside the bar's range);
    None: no trading (suspended, or no volume to take)."""
    if not listing.trading:
        return None
    opn, high, low, close, volume = bar
    cap = int(volume * _LOT * participation) // _LOT * _LOT
    if cap <= 0:
        return None
    up, down = listing.up, listing.down
    if phase == "open":
        ask = bid = opn
    elif fill == "qmt" and limit is not None:
        ask = limit if low - _EPS <= limit <= high + _EPS else close
        bid = ask
    else:
        ask = bid = close
    if slippage:
        slip = slippage * (listing.tick or 0.01)
        ask_p, bid_p = round3(ask + slip), round3(bid - slip)
    else:
        ask_p = bid_p = round3(ask)
    if up > 0 and ask_p > up:
        ask_p = up
    if down > 0 and bid_p < down:
        bid_p = down
    if fill == "qmt" and limit is not None and phase != "open":
        # Slippage never takes a qmt fill that crosses past the order's own limit.
        if ask <= limit + _EPS:
            ask_p = min(ask_p, limit)
        if bid >= limit - _EPS:
            bid_p = max(bid_p, limit)
    return (
        None if up > 0 and ask >= up - _EPS else ask_p,
        None if down > 0 and bid <= down + _EPS else bid_p,
        cap,
    )


F64 = npt.NDArray[np.float64]


def quotes(
    price: F64,
    volume: npt.NDArray[np.int64],
    listings: list[Listing],
    participation: float,
    slippage: float,
) -> list[Quote | None]:
    """``quote`` of many bars at one price each (their open, or their close: not ``qmt``'s
    limits), ``price`` and ``volume`` and ``listings`` a bar each: the same floats, by vectors."""
    n = len(listings)
    trading = np.fromiter((i.trading for i in listings), np.bool_, n)
    up = np.fromiter((i.up for i in listings), np.float64, n)
    down = np.fromiter((i.down for i in listings), np.float64, n)
    cap = (volume * _LOT * participation).astype(np.int64) // _LOT * _LOT
    if slippage:
        tick = np.fromiter((i.tick for i in listings), np.float64, n)
        slip = slippage * np.where(tick == 0, 0.01, tick)  # ``tick or 0.01``
        ask_p, bid_p = round3_array(price + slip), round3_array(price - slip)
    else:
        ask_p = bid_p = round3_array(price)
    ask_p = np.where((up > 0) & (ask_p > up), up, ask_p)
    bid_p = np.where((down > 0) & (bid_p < down), down, bid_p)
    asks = ask_p.tolist()
    bids = bid_p.tolist()
    ask_shut = ((up > 0) & (price >= up - _EPS)).tolist()
    bid_shut = ((down > 0) & (price <= down + _EPS)).tolist()
    ok = (trading & (cap > 0)).tolist()
    return [
        (None if a_shut else a, None if b_shut else b, c) if go else None
        for go, a, b, a_shut, b_shut, c in zip(
            ok, asks, bids, ask_shut, bid_shut, cap.tolist(), strict=True
        )
    ]


def round3_array(x: F64) -> F64:
    """``round3`` (``round(v, 3)``, bit for bit) of every value: the same test of the float
    product's margin from a half li, in one vector step; the doubtful ones one by one."""
    y = x * 1000.0
    c = np.rint(y)
    out: F64 = c / 1000.0
    with np.errstate(invalid="ignore"):  # inf - inf: doubtful, and decided by ``round``
        doubtful = ~((np.abs(y) < ROUND_SPAN) & (c != 0) & (np.abs(y - c) < 0.499))
    for i in np.flatnonzero(doubtful).tolist():
        out[i] = round(float(x[i]), 3)
    return out


__all__ = ["Quote", "quote", "quotes", "round3_array"]
