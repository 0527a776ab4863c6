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

from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from qmtkit.backends.sim.accounts import ROUND_SPAN, round3
from qmtkit.backends.sim.rules import Listing

if TYPE_CHECKING:
    from qmtkit.backends.replay.market import FactsBlock, ReplayMarket

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
    tick = np.fromiter((i.tick for i in listings), np.float64, n) if slippage else up
    ask, bid, cap = quote_arrays(price, volume, trading, up, down, tick, participation, slippage)
    return [
        (None if a != a else a, None if b != b else b, c) if c > 0 else None
        for a, b, c in zip(ask.tolist(), bid.tolist(), cap.tolist(), strict=True)
    ]


def quote_arrays(
    price: F64,
    volume: npt.NDArray[np.int64],
    trading: npt.NDArray[np.bool_],
    up: F64,
    down: F64,
    tick: F64,
    participation: float,
    slippage: float,
) -> tuple[F64, F64, npt.NDArray[np.int64]]:
    """``quote`` of many bars at one price each, from their listings' facts as columns
    (trading flag, up and down limits, price tick; ``tick`` is read with ``slippage`` only):
    the ask, the bid (NaN: no such side) and the shares a side (0: no trading, ``quote``'s
    None), the very floats ``quote`` gives."""
    cap = (volume * _LOT * participation).astype(np.int64) // _LOT * _LOT
    cap[~trading] = 0
    if slippage:
        slip = slippage * np.where(tick == 0, 0.01, tick)  # ``tick or 0.01``
        ask_p, bid_p = round3_array(price + slip), round3_array(price - slip)
    else:
        ask_p = round3_array(price)
        bid_p = ask_p.copy()
    limited = up > 0
    np.copyto(ask_p, up, where=limited & (ask_p > up))
    ask_p[limited & (price >= up - _EPS)] = np.nan  # locked at the up limit: nobody sells
    limited = down > 0
    np.copyto(bid_p, down, where=limited & (bid_p < down))
    bid_p[limited & (price <= down + _EPS)] = np.nan
    return ask_p, bid_p, cap


class BlockQuotes:
    """The books of an aligned daily replay's bars worked out by vectors a block of steps at
    a time (``quote_arrays`` over every code of the market's ``facts_block``), then read for
    the codes a step asks about: no ``Listing`` and no vector step per step.

    ``at`` gives None where the market has no block for the day (the first step, and every
    step of other replays): then each code's book comes from ``quote``.
    """

    def __init__(self, market: ReplayMarket, participation: float, slippage: float) -> None:
        self.market = market
        self.participation = participation
        self.slippage = slippage
        #: (phase, the block's up limits (its identity), k0, asks, bids, caps) last worked out
        self._made: tuple[str, F64, int, F64, F64, npt.NDArray[np.int64]] | None = None

    def at(
        self, codes: list[str], k: int, day: int, phase: str
    ) -> list[tuple[str, float | None, float | None, int]] | None:
        """``(code, ask, bid, shares)`` of the codes that trade at step ``k`` (of ``day``) in
        ``phase`` (``open``: at the bars' opens; ``close``: at their closes), in the order
        given; None: no block for the day."""
        market = self.market
        if market.step_day(k) != day:
            return None
        block = market.facts_block(day)
        if block is None or not block.k0 <= k < block.k1:
            return None
        made = self._made
        if made is None or made[0] != phase or made[1] is not block.up:
            made = self._made = self._make(block, phase)
        _, _, k0, asks, bids, caps = made
        index = block.number
        base = (k - k0) * len(index)
        out: list[tuple[str, float | None, float | None, int]] = []
        for code in codes:
            i = index.get(code)
            if i is None:  # not replayed: no bar
                continue
            j = base + i
            cap = caps.item(j)
            if cap > 0:
                ask = asks.item(j)
                bid = bids.item(j)
                out.append((code, None if ask != ask else ask, None if bid != bid else bid, cap))
            elif cap < 0:  # rules of its own today (a new listing): its listing, as ever
                bar = market.bar_at(code, k)
                assert bar is not None  # aligned: every code has a bar at every step
                q = quote(
                    bar,
                    market.listing(code, day),
                    phase,
                    "next_open",
                    self.participation,
                    self.slippage,
                )
                if q is not None:
                    out.append((code, *q))
        return out

    def _make(
        self, block: FactsBlock, phase: str
    ) -> tuple[str, F64, int, F64, F64, npt.NDArray[np.int64]]:
        n = len(block.number)
        a, b = block.k0 * n, block.k1 * n  # aligned: step k's records are [k * n, (k + 1) * n)
        cols = self.market.long_columns()
        price = np.asarray(cols["open" if phase == "open" else "close"][a:b], dtype=np.float64)
        volume = np.asarray(cols["volume"][a:b], dtype=np.int64)
        up = block.up
        own = np.isnan(up)
        ticks = np.tile(block.ticks, block.k1 - block.k0) if self.slippage else up
        ask, bid, cap = quote_arrays(
            price,
            volume,
            block.trading,
            np.where(own, 0.0, up),
            block.down,
            ticks,
            self.participation,
            self.slippage,
        )
        cap[own] = -1
        return phase, up, block.k0, ask, bid, cap


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


__all__ = ["BlockQuotes", "Quote", "quote", "quote_arrays", "quotes", "round3_array"]
