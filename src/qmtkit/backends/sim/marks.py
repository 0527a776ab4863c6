"""A quiet account's holdings as columns, marked at a close without a pass over the holdings.

A backtest marks every holding at every close: ~50 a day in the benchmark's 100 codes,
~2,300 over a whole market. One ``Holding`` at a time that was the largest part of its day
end. ``MarkBook`` keeps, per held code in holding order, the code's number in the caller's
price index, its shares, sellable shares and last price as numpy columns, and brings them
up to date each close from the codes the broker changed since (``AccountState.touched``,
kept by every change of a holding). The mark itself is then vector work: the prices read by
number, the exact market value summed in int64 digits (``exact_value_sum``).

The columns have room to grow (a code bought is written into the next free slot, not
concatenated), and a mark whose prices are known to be in the exact sum's range
(``KeyedPrices.in_range``) makes a handful of numpy calls whatever the holding count: at
~50 holdings each call's fixed cost is what the day costs.

A holding marked this way is left as it was: its ``last_price`` and ``value`` lag the book's
columns until the broker reads or changes it, and brings it up to date first
(``Broker._freshen``), so every answer and every later change is the one the plain mark gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from itertools import islice
from operator import mul
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from qmtkit.backends.sim.accounts import EXACT_FROM, SCALE_F, Holding, value_q
from qmtkit.checks import is_finite

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: An account is marked as columns from this many holdings on, and until it holds fewer than
#: ``COLUMNS_UNTIL``: below that, a pass over the holdings costs less CPU time than the vector
#: steps' ~20 numpy calls. (The columns take fewer instructions from ~16 holdings on, but
#: numpy's calls run slower per instruction: measured, ~50 holdings are quicker plain, ~100
#: as columns.)
COLUMNS_FROM = 96
COLUMNS_UNTIL = 64

#: ``exact_value_sum`` works in digits of ``price * 2**80`` (a whole number for prices in
#: ``[2**-27, 2**48)`` CNY), as wide as the shares and the count of terms allow: each
#: digit times shares, summed, stays below 2**62.
PRICE_BELOW = 2.0**48
#: Below this many terms the exact sum is cheaper as Python integers than as digit vectors.
_PYTHON_SUM_BELOW = 16
_FIRST_ROOM = 64


def _ints(values: list[int]) -> I64:
    """A list of ints as an array: about half of what numpy's own conversion of a list costs
    (the columns take a day's changed codes this way)."""
    return np.fromiter(values, np.int64, len(values))


def _floats(values: list[float]) -> F64:
    """A list of floats as an array (``_ints``' reason)."""
    return np.fromiter(values, np.float64, len(values))


def _digit_sums(volume: I64, price: F64, counts: I64) -> list[int] | None:
    """``value_sums`` in a few vector steps; None where a price or share count is out of
    their range (prices in ``[2**-27, 2**48)``, shares >= 0 and narrow enough)."""
    single = len(counts) == 1
    v_max = int(volume.max())
    n_max = len(volume) if single else int(counts.max())
    p_min, p_max = float(price.min()), float(price.max())
    w = min(52, 62 - v_max.bit_length() - n_max.bit_length())
    if int(volume.min()) < 0 or w < 8 or not EXACT_FROM <= p_min <= p_max < PRICE_BELOW:
        return None
    # price * 2**80 is a multiple of 2**(e + 28) below 2**(e + 81), e = floor(log2(price)):
    # only the w-bit digits that range reaches can be nonzero. Digit d is
    # floor(price * 2**(80 - w*d)) - floor(price * 2**(80 - w*(d+1))) * 2**w: every float
    # step exact (a power-of-two scaling, a floor, Sterbenz), several times cheaper than fmod.
    first = (math.frexp(p_min)[1] + 27) // w
    last = (math.frexp(p_max)[1] + 79) // w
    span = float(1 << w)
    if single:  # one close: a matrix of the digits, fewer numpy calls for a few hundred rows
        scales = np.exp2(80.0 - w * np.arange(first, last + 1, dtype=np.float64))
        scaled = np.floor(price[None, :] * scales[:, None])
        scaled[:-1] -= scaled[1:] * span
        sums = [[x] for x in (scaled.astype(np.int64) @ volume).tolist()]
    else:
        nonempty = counts > 0
        at = (np.cumsum(counts) - counts)[nonempty]
        sums = []
        upper = np.floor(price * 2.0 ** (80 - w * first))
        for d in range(first, last + 1):
            lower = np.floor(price * 2.0 ** (80 - w * (d + 1)))
            digit = (upper - lower * span).astype(np.int64)
            per = np.zeros(len(counts), dtype=np.int64)
            per[nonempty] = np.add.reduceat(digit * volume, at)
            sums.append(per.tolist())
            upper = lower
    out = []
    for j in range(len(counts)):
        total = 0
        for d in range(len(sums) - 1, -1, -1):
            total = (total << w) + sums[d][j]
        out.append(total << (w * first))
    return out


def value_sums(volume: I64, price: F64, counts: I64) -> list[int]:
    """``exact_value_sum`` of each run of ``counts[j]`` pairs, in order (runs may be empty)."""
    if not len(volume):
        return [0] * len(counts)
    sums = _digit_sums(volume, price, counts)
    if sums is not None:
        return sums
    out = []
    a = 0
    for n in counts.tolist():
        out.append(sum(map(value_q, volume[a : a + n].tolist(), price[a : a + n].tolist())))
        a += n
    return out


def exact_value_sum(volume: I64, price: F64) -> int:
    """``sum(value_q(v, p))`` over the pairs: the exact market value in ``2**-80`` CNY.

    In a few vector steps where every price is in ``[2**-27, 2**48)`` CNY and the shares
    are not too many (``_digit_sums``); otherwise one by one.
    """
    n = len(volume)
    if n < _PYTHON_SUM_BELOW:
        if n == 0:
            return 0
        p_min, p_max = float(price.min()), float(price.max())
        if p_min >= EXACT_FROM and p_max < PRICE_BELOW:
            # int(price * 2**80) is value_q(1, price) in range: exact products, exact sum.
            return sum(map(mul, volume.tolist(), map(int, (price * SCALE_F).tolist())))
    return value_sums(volume, price, np.asarray([n], dtype=np.int64))[0]


def in_range(prices: F64) -> bool:
    """Whether every price is in ``[2**-27, 2**48)`` CNY: finite, above zero, and summed
    exactly by ``exact_value_sum``'s vector step."""
    return bool(((prices >= EXACT_FROM) & (prices < PRICE_BELOW)).all())


class KeyedPrices(Protocol):
    """One moment's prices by code number: what ``MarkBook`` marks with."""

    @property
    def index(self) -> Mapping[str, int]:
        """Code -> its number (the same mapping at every moment of a run)."""
        ...

    @property
    def in_range(self) -> bool:
        """Whether every price given is in the exact sum's range (``in_range``)."""
        ...

    def by_key(self) -> tuple[F64, Mask | None]:
        """The price of every numbered code, and which have one (None: all of them)."""
        ...


class HeldArrays(NamedTuple):
    """An account's holdings with shares at a close, as columns in holding order: the codes'
    numbers in the price index, shares, sellable shares and last prices."""

    keys: I64
    volume: I64
    usable: I64
    close: F64


class MarkBook:
    """The columns of one account's holdings (see the module doc), numbered by ``index``.

    Slots ``[0, n)`` are in holding order; a code dropped by the day's roll leaves a dead slot
    (no shares, no longer in ``slot``) until the columns are packed again, so the order never needs
    a search.
    """

    __slots__ = (
        "codes",
        "dead",
        "fresh",
        "index",
        "keys",
        "last",
        "marked",
        "n",
        "slot",
        "usable",
        "volume",
    )

    def __init__(self, index: Mapping[str, int], room: int = _FIRST_ROOM) -> None:
        self.index = index
        self.codes: list[str] = []
        self.slot: dict[str, int] = {}
        self.n = 0
        self.dead = 0
        self.keys: I64 = np.zeros(room, dtype=np.int64)
        self.volume: I64 = np.zeros(room, dtype=np.int64)
        self.usable: I64 = np.zeros(room, dtype=np.int64)
        self.last: F64 = np.zeros(room, dtype=np.float64)
        #: Slots whose holding lags the columns since the last mark (it had shares then).
        self.marked: Mask = np.zeros(room, dtype=np.bool_)
        #: Codes brought up to date (or made) since the last mark: their holding is the truth.
        self.fresh: set[str] = set()

    @classmethod
    def of(cls, positions: Mapping[str, Holding], index: Mapping[str, int]) -> MarkBook | None:
        """A book of holdings that are up to date (none lags a book yet); None if one of
        them has no number in ``index``."""
        book = cls(index, max(_FIRST_ROOM, 2 * len(positions)))
        if not book._append(list(positions), list(positions.values())):
            return None
        return book

    def lags(self, code: str) -> int:
        """The slot of ``code`` if its holding lags the columns, else -1 (and from now on it
        does not: the caller brings it up to date)."""
        self.fresh.add(code)
        s = self.slot.get(code)
        if s is None or not self.marked[s]:
            return -1
        return s

    def drop(self, code: str) -> None:
        """``code``'s holding is gone (sold out, dropped at the roll): its slot dies."""
        s = self.slot.pop(code, None)
        if s is not None:
            self.marked[s] = False
            self.volume[s] = 0
            self.dead += 1
        self.fresh.discard(code)

    def sync(self, positions: dict[str, Holding], touched: set[str]) -> bool:
        """Bring the columns up to the holdings changed since the last roll (``touched``;
        the roll hands over what it settled, ``settled``) and append the codes bought since;
        False: the holdings are not in the order the columns expect, or a new code has no
        number (the caller starts again)."""
        slot = self.slot
        extra = len(positions) - len(slot)
        if extra < 0:
            return False
        try:
            if touched:
                self._read(positions, [c for c in touched if c in slot])
            if self.fresh:
                # A holding that lags the book keeps the book's price; only one brought up
                # to date (``lags``) may have a newer one (a fill's).
                newer = [c for c in self.fresh if c in slot]
                if newer:
                    prices = [positions[c].last_price for c in newer]
                    self.last[_ints(list(map(slot.__getitem__, newer)))] = _floats(prices)
        except KeyError:
            return False  # dropped without ``drop``: not a state this book follows
        if extra:
            # Dict order: every code bought since the last mark follows the ones kept.
            new = list(islice(reversed(positions.keys()), extra))
            new.reverse()
            if any(c in slot for c in new):
                return False
            return self._append(new, [positions[c] for c in new])
        return True

    def settled(self, holdings: list[tuple[str, Holding]]) -> None:
        """The roll settled these holdings (shares kept): their shares and sellable shares,
        for the ones in the book (a code bought since the last mark is appended later)."""
        slot = self.slot
        found = [(slot[c], p) for c, p in holdings if c in slot]
        if not found:
            return
        if len(found) <= 8:
            volume, usable = self.volume, self.usable
            for s, pos in found:
                volume[s] = pos.volume
                usable[s] = pos.can_use
            return
        slots = _ints([s for s, _ in found])
        shares = [p.volume for _, p in found]
        self.volume[slots] = _ints(shares)
        self.usable[slots] = _ints([p.can_use for _, p in found])

    def _read(self, positions: Mapping[str, Holding], codes: list[str]) -> None:
        """Shares and sellable shares of ``codes`` (all in the book) from their holdings."""
        slot, volume, usable = self.slot, self.volume, self.usable
        if len(codes) <= 8:  # a few codes (a small book's day): element writes are cheaper
            for code in codes:
                pos = positions[code]
                s = slot[code]
                volume[s] = pos.volume
                usable[s] = pos.can_use
            return
        holdings = list(map(positions.__getitem__, codes))
        slots = _ints(list(map(slot.__getitem__, codes)))
        shares = [p.volume for p in holdings]
        volume[slots] = _ints(shares)
        usable[slots] = _ints([p.can_use for p in holdings])

    def _append(self, codes: list[str], holdings: list[Holding]) -> bool:
        # Slots from ``n`` on hold no shares and are not marked (``_grow``, ``pack``).
        index = self.index
        keys = [index.get(c, -1) for c in codes]
        if keys and min(keys) < 0:
            return False
        n, m = self.n, len(codes)
        if n + m > len(self.keys):
            self._grow(max(2 * len(self.keys), n + m))
        shares = [p.volume for p in holdings]
        if m <= 4:  # a day's few new codes: element writes cost less than slice writes
            key_col, volume, usable, last = self.keys, self.volume, self.usable, self.last
            for i, pos in enumerate(holdings):
                s = n + i
                key_col[s] = keys[i]
                volume[s] = shares[i]
                usable[s] = pos.can_use
                last[s] = pos.last_price
        else:
            self.keys[n : n + m] = _ints(keys)
            self.volume[n : n + m] = _ints(shares)
            self.usable[n : n + m] = _ints([p.can_use for p in holdings])
            self.last[n : n + m] = _floats([p.last_price for p in holdings])
        slot = self.slot
        for i, code in enumerate(codes):
            slot[code] = n + i
        self.codes.extend(codes)
        self.n = n + m
        return True

    def _grow(self, room: int) -> None:
        n = self.n
        for name in ("keys", "volume", "usable", "last", "marked"):
            old = getattr(self, name)
            new = np.zeros(room, dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)

    def pack(self) -> None:
        """Drop the dead slots (kept in order) once they are many."""
        dead, n = self.dead, self.n
        if dead * 2 < n:
            return
        slot = self.slot
        keep = [i for i, code in enumerate(self.codes) if slot.get(code) == i]
        m = len(keep)
        at = np.asarray(keep, dtype=np.intp)
        for name in ("keys", "volume", "usable", "last", "marked"):
            column = getattr(self, name)
            column[:m] = column[at]
        self.marked[m:n] = False
        self.volume[m:n] = 0
        self.codes = [self.codes[i] for i in keep]
        self.slot = {c: i for i, c in enumerate(self.codes)}
        self.n = m
        self.dead = 0

    def mark(
        self, prices: KeyedPrices, fallback: Callable[[str], float | None]
    ) -> tuple[HeldArrays, int] | None:
        """Mark the held slots at ``prices`` (``fallback(code)`` for a held code without one;
        a zero price leaves the last one standing): the held rows and their exact market
        value. None, with nothing changed, where a price is one the plain mark refuses."""
        n = self.n
        values, present = prices.by_key()
        keys = self.keys[:n]
        volume = self.volume[:n]
        got = values[keys]
        held = volume > 0
        if present is None and prices.in_range:
            # Every price is there and above zero: the columns take them all (a slot without
            # shares is read from its holding before it counts again, see ``sync``).
            last = self.last[:n]
            last[...] = got
        else:
            checked = self._mark_checked(got, present, held, fallback)
            if checked is None:
                return None
            last = checked
        count = int(np.count_nonzero(held))
        if count == n:
            rows = HeldArrays(keys.copy(), volume.copy(), self.usable[:n].copy(), last.copy())
        else:
            at = np.flatnonzero(held)
            rows = HeldArrays(keys[at], volume[at], self.usable[at], last[at])
        value = exact_value_sum(rows.volume, rows.close)
        self.marked[:n] = held
        self.fresh = set()
        return rows, value

    def _mark_checked(
        self,
        got: F64,
        present: Mask | None,
        held: Mask,
        fallback: Callable[[str], float | None],
    ) -> F64 | None:
        """``mark``'s prices where some may be missing, zero or bad: the new last prices (the
        columns' own, if all is well)."""
        n = self.n
        has = held if present is None else held & present[self.keys[:n]]
        priced = got[has]
        if not bool(np.isfinite(priced).all()) or bool((priced < 0).any()):
            return None
        last: F64 = self.last[:n].copy()
        moved = has & (got != 0)
        last[moved] = got[moved]
        codes = self.codes
        for s in np.flatnonzero(held & ~has).tolist():
            price = fallback(codes[s])  # no price at this moment (suspended): it stands
            if price is None:
                continue
            if type(price) is not float or not 0.0 <= price < math.inf:
                if not is_finite(price) or price < 0:
                    return None
                price = float(price)
            if price != 0:
                last[s] = price
        self.last[:n] = last
        return last


__all__ = ["HeldArrays", "KeyedPrices", "MarkBook", "exact_value_sum", "in_range"]
