"""A quiet account's holdings as columns, marked at a close without a pass over the holdings.

A backtest over a whole market marks ~2,300 holdings at every close; one ``Holding`` at a time
that was the largest part of its day end, most of it memory reads of objects scattered over
the heap. ``MarkBook`` keeps, per held code in holding order, the code's number in the
caller's price index, its shares, sellable shares and last price as numpy columns, and brings
them up to date each close from the codes the broker changed since (``AccountState.touched``,
kept by every change of a holding). The mark itself is then vector work: the prices read by
number, the exact market value summed in int64 limbs (``exact_value_sum``).

A holding marked this way is left as it was: its ``last_price`` and ``value`` lag the book's
columns until the broker reads or changes it, and brings it up to date first
(``Broker._freshen``), so every answer and every later change is the one the plain mark gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from qmtkit.backends.sim.accounts import EXACT_FROM, Holding, value_q

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: An account is marked as columns from this many holdings on, and until it holds fewer than
#: ``COLUMNS_UNTIL``: below that, the vector steps' fixed cost is more than a pass over them
#: (measured: even at ~200 holdings, dearer at ~50).
COLUMNS_FROM = 256
COLUMNS_UNTIL = 128

#: ``exact_value_sum`` works in 16-bit digits of ``price * 2**80``: eight of them cover the
#: prices below 2**48 CNY; a product of a digit and shares below 2**32 is below 2**48, and up
#: to 2**15 of those add up below 2**63.
_DIGIT = 16
_DIGITS = 8
_SCALES = np.asarray([2.0 ** (80 - _DIGIT * k) for k in range(_DIGITS)])
_PRICE_BELOW = 2.0**48
_DIGIT_SPAN = 65536.0
_INV_DIGIT = 1.0 / _DIGIT_SPAN
_VOLUME_BELOW = 1 << 32
_TERMS = 1 << 15
_VOLUME = attrgetter("volume")
_CAN_USE = attrgetter("can_use")


def exact_value_sum(volume: I64, price: F64) -> int:
    """``sum(value_q(v, p))`` over the pairs: the exact market value in ``2**-80`` CNY.

    In one vector step where every price is in ``[2**-27, 2**48)`` CNY and every volume in
    ``[0, 2**32)`` (there ``price * 2**80`` is a whole number, and its 16-bit digits are
    ``floor(price * 2**(80 - 16k)) mod 2**16``, each float step exact); otherwise one by one.
    """
    n = len(volume)
    if n == 0:
        return 0
    if (
        n <= _TERMS
        and float(price.min()) >= EXACT_FROM
        and float(price.max()) < _PRICE_BELOW
        and int(volume.min()) >= 0
        and int(volume.max()) < _VOLUME_BELOW
    ):
        # x - floor(x / 2**16) * 2**16 is exact for a whole float x (Sterbenz), and several
        # times cheaper than np.fmod.
        scaled = np.floor(price[None, :] * _SCALES[:, None])
        digits = (scaled - np.floor(scaled * _INV_DIGIT) * _DIGIT_SPAN).astype(np.int64)
        sums = (digits @ volume).tolist()
        total = 0
        for k in range(_DIGITS - 1, -1, -1):
            total = (total << _DIGIT) + sums[k]
        return total
    return sum(map(value_q, volume.tolist(), price.tolist()))


class KeyedPrices(Protocol):
    """One moment's prices by code number: what ``MarkBook`` marks with."""

    @property
    def index(self) -> Mapping[str, int]:
        """Code -> its number (the same mapping at every moment of a run)."""
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

    Slots are in holding order; a code dropped by the day's roll leaves a dead slot (``alive``
    false) until the columns are packed again, so the order never needs a search.
    """

    __slots__ = (
        "alive",
        "codes",
        "dirty",
        "fresh",
        "index",
        "keys",
        "last",
        "marked",
        "slot",
        "usable",
        "volume",
    )

    def __init__(self, positions: Mapping[str, Holding], index: Mapping[str, int]) -> None:
        # Built from holdings that are up to date (none lags a book yet).
        self.index = index
        self.codes: list[str] = list(positions)
        self.slot: dict[str, int] = {c: i for i, c in enumerate(self.codes)}
        holdings = list(positions.values())
        self.keys: I64 = np.asarray([index.get(c, -1) for c in self.codes], dtype=np.int64)
        self.volume: I64 = np.asarray([p.volume for p in holdings], dtype=np.int64)
        self.usable: I64 = np.asarray([p.can_use for p in holdings], dtype=np.int64)
        self.last: F64 = np.asarray([p.last_price for p in holdings], dtype=np.float64)
        self.alive: Mask = np.ones(len(self.codes), dtype=np.bool_)
        #: Slots whose holding lags the columns since the last mark (it had shares then).
        self.marked: Mask = np.zeros(len(self.codes), dtype=np.bool_)
        #: Codes brought up to date (or made) since the last mark: their holding is the truth.
        self.fresh: set[str] = set()
        #: Codes the broker changed before a roll forgot them (see ``Broker._settle_touched``).
        self.dirty: set[str] = set()

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
            self.alive[s] = False
            self.marked[s] = False
            self.volume[s] = 0
        self.fresh.discard(code)

    def sync(self, positions: Mapping[str, Holding], touched: set[str]) -> bool:
        """Bring the columns up to the holdings changed since the last mark (``touched`` and
        the roll's ``dirty``) and append the codes bought since; False: the holdings are not in
        the order the columns expect (the caller builds a new book)."""
        slot = self.slot
        if len(positions) < len(slot):
            return False
        changed = touched | self.dirty if self.dirty else touched
        self.dirty = set()
        # C-level passes (map) over the changed codes: a few hundred a day over a whole market.
        kept = [c for c in changed if c in slot]  # the others were bought since, or dropped
        # A holding that lags the book keeps the book's price; only one brought up to date
        # (``lags``) may have a newer one (a fill's).
        newer = [c for c in self.fresh if c in slot]
        try:
            holdings = list(map(positions.__getitem__, kept))
            prices = [positions[c].last_price for c in newer]
        except KeyError:
            return False  # dropped without ``drop``: not a state this book follows
        if kept:
            slots = list(map(slot.__getitem__, kept))
            self.volume[slots] = list(map(_VOLUME, holdings))
            self.usable[slots] = list(map(_CAN_USE, holdings))
        if newer:
            self.last[list(map(slot.__getitem__, newer))] = prices
        if len(positions) > len(slot):
            # Dict order: every code bought since the last mark follows the ones kept.
            new = list(positions)[len(slot) :]
            if any(c in slot for c in new):
                return False
            self._append(new, [positions[c] for c in new])
        return True

    def _append(self, codes: list[str], holdings: list[Holding]) -> None:
        n = len(self.codes)
        index = self.index
        self.codes.extend(codes)
        for i, code in enumerate(codes):
            self.slot[code] = n + i
        self.keys = np.concatenate(
            [self.keys, np.asarray([index.get(c, -1) for c in codes], dtype=np.int64)]
        )
        self.volume = np.concatenate(
            [self.volume, np.asarray([p.volume for p in holdings], dtype=np.int64)]
        )
        self.usable = np.concatenate(
            [self.usable, np.asarray([p.can_use for p in holdings], dtype=np.int64)]
        )
        self.last = np.concatenate(
            [self.last, np.asarray([p.last_price for p in holdings], dtype=np.float64)]
        )
        self.alive = np.concatenate([self.alive, np.ones(len(codes), dtype=np.bool_)])
        self.marked = np.concatenate([self.marked, np.zeros(len(codes), dtype=np.bool_)])

    def pack(self) -> None:
        """Drop the dead slots (kept in order) once they are many."""
        alive = self.alive
        dead = len(alive) - int(np.count_nonzero(alive))
        if dead * 2 < len(alive):
            return
        keep = np.flatnonzero(alive)
        self.codes = [self.codes[i] for i in keep.tolist()]
        self.slot = {c: i for i, c in enumerate(self.codes)}
        self.keys = self.keys[keep]
        self.volume = self.volume[keep]
        self.usable = self.usable[keep]
        self.last = self.last[keep]
        self.marked = self.marked[keep]
        self.alive = np.ones(len(keep), dtype=np.bool_)

    def prices(self, prices: KeyedPrices) -> tuple[F64, Mask]:
        """Each slot's price at this moment and whether it has one (by the code's number)."""
        values, present = prices.by_key()
        keys = self.keys
        known = keys >= 0
        safe = np.where(known, keys, 0)
        got: F64 = values[safe]
        has: Mask = known if present is None else known & present[safe]
        return got, has


__all__ = ["HeldArrays", "KeyedPrices", "MarkBook", "exact_value_sum"]
