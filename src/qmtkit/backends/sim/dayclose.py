"""A quiet account's day close kept as what changed, its daily rows made at the end.

A backtest's day close marks every holding at the close and writes every holding's row.
For an account nobody follows, marked with every code's price by number at each close
(``KeyedPrices`` with no price missing, all in the exact sum's range), the rows of a close
follow from little: which holdings changed since the close before (their shares and
sellable shares), the account's cash and frozen cash, and the close's prices. ``DayLog``
keeps only that per close; ``DayLog.rows`` and ``day_values`` rebuild the daily rows and
exact market values of all its closes at once, equal to what the eager close writes.

Holdings are told apart by ``Holding`` object, not code: a code dropped at a roll and
bought again is a new holding, listed after the ones kept (dict order). Each holding gets a
slot number when first seen at a close, in holding order, so a close's rows in holding
order are its live slots in slot order.

While a log is kept a holding's ``last_price`` and ``value`` lag the last close and the
account's ``market_value`` is not kept; ``freshen`` and ``Broker._value`` bring them up
to date when something reads or changes them (see ``Broker._freshen``).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from itertools import islice
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from qmtkit.backends.sim.accounts import AccountState, Holding, value_q
from qmtkit.backends.sim.marks import value_sums

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Off: every close is eager (tests compare the two).
DEFER = True
#: A log is started for an account with fewer holdings than this and dropped from
#: ``LOG_UNTIL`` on: with thousands of holdings, rebuilding every close's rows at the end
#: costs more than the columns' mark (``sim.marks``) does each close.
LOG_FROM = 96
LOG_UNTIL = 128


class DayRows(NamedTuple):
    """Daily holding rows, close by close, in holding order: how many rows each close has,
    and each row's code number, shares and sellable shares."""

    counts: I64
    keys: I64
    volume: I64
    usable: I64


class DayLog:
    """What changed at each close of one quiet account (module doc).

    ``index`` numbers the codes as the prices do; ``last`` is the last close's prices by
    number (None before the first close).
    """

    __slots__ = (
        "account_id",
        "cash",
        "entries",
        "events",
        "fresh",
        "frozen",
        "index",
        "last",
        "next_slot",
        "pending",
        "prices",
        "valued",
    )

    def __init__(self, acct: AccountState, index: Mapping[str, int]) -> None:
        self.account_id = acct.account_id
        self.index = index
        #: code -> (its holding at the last close, slot, code number)
        self.entries: dict[str, tuple[Holding, int, int]] = {}
        self.next_slot = 0
        #: Codes to read at the next close besides ``acct.touched``: every holding at the
        #: start, later a holding the roll settled before a close saw it (``settled``).
        self.pending: set[str] = set(acct.positions)
        #: Codes read or changed since the last close: their holding is the truth.
        self.fresh: set[str] = set()
        self.last: F64 | None = None
        #: Each close's prices by code number (the replay's own arrays: no copies).
        self.prices: list[F64] = []
        #: Whether ``acct.market_value`` is up to date (it is not after a close).
        self.valued = True
        self.cash = array("q")
        self.frozen = array("q")
        #: (close, slot, code number, shares, sellable shares) of each holding read at a
        #: close, flat: one extend per holding is the close's whole cost.
        self.events = array("q")

    @property
    def closes(self) -> int:
        """How many closes are logged."""
        return len(self.cash)

    def settled(self, kept: list[tuple[str, Holding]], dropped: list[str]) -> None:
        """The roll settled these holdings (``kept``) and dropped these codes' holdings: from
        the next close on, their rows are as they are now."""
        c = len(self.cash)
        add = self.events.extend
        entries = self.entries
        for code, pos in kept:
            entry = entries.get(code)
            if entry is not None and entry[0] is pos:
                add((c, entry[1], entry[2], pos.volume, pos.can_use))
            else:  # not seen at a close yet: the next close gives it its slot
                self.pending.add(code)
        for code in dropped:
            entry = entries.pop(code, None)
            if entry is not None:
                add((c, entry[1], entry[2], 0, 0))

    def freshen(self, code: str, pos: Holding) -> None:
        """Bring ``pos`` (held under ``code``) up to the last close, if it lags it."""
        fresh = self.fresh
        if code in fresh:
            return
        fresh.add(code)
        last = self.last
        entry = self.entries.get(code)
        # Shares unchanged since the close (a change freshens first): held then, marked then.
        if last is None or entry is None or entry[0] is not pos or pos.volume <= 0:
            return
        price = float(last[entry[2]])
        pos.last_price = price
        pos.value = value_q(pos.volume, price)

    def close(self, acct: AccountState, prices: F64) -> bool:
        """Log a close at ``prices`` (by code number, every one in the exact sum's range).
        False if a code bought has no number (the caller drops the log; what was written
        for this close is past the closes logged, where ``rows`` reads nothing)."""
        positions, entries, index = acct.positions, self.entries, self.index
        pending = self.pending
        changed = pending | acct.touched if pending else acct.touched
        c = len(self.cash)
        add = self.events.extend
        new: list[str] = []
        for code in changed:
            pos = positions.get(code)
            entry = entries.get(code)
            if entry is None:
                if pos is not None:
                    if code not in index:
                        return False
                    new.append(code)
                continue
            if entry[0] is pos:
                add((c, entry[1], entry[2], pos.volume, pos.can_use))
                continue
            # Gone, or a holding bought again after the roll dropped it: its rows end here.
            add((c, entry[1], entry[2], 0, 0))
            del entries[code]
            if pos is not None:
                if code not in index:
                    return False
                new.append(code)
        if new:
            # Holdings new since the last close are the last ones in holding order.
            tail = list(islice(reversed(positions.keys()), len(new)))
            tail.reverse()
            if set(tail) != set(new):
                wanted = set(new)
                tail = [code for code in positions if code in wanted]
            slot = self.next_slot
            for code in tail:
                key = index[code]
                pos = positions[code]
                entries[code] = (pos, slot, key)
                add((c, slot, key, pos.volume, pos.can_use))
                slot += 1
            self.next_slot = slot
        if pending:
            self.pending = set()
        self.cash.append(acct.cash)
        self.frozen.append(acct.frozen)
        self.last = prices
        self.prices.append(prices)
        self.fresh = set()
        self.valued = False
        return True

    def rows(self, closes: int) -> DayRows:
        """The held rows (shares > 0) of the first ``closes`` closes logged, close by close,
        in holding order."""
        events = self.events
        flat = np.frombuffer(events, dtype=np.int64) if len(events) else _EMPTY
        table = flat.reshape(-1, 5)
        # Events come in close order: a stable sort by slot orders them by slot, then close.
        table = table[_stable_order(table[:, 1], self.next_slot)]
        c, s, k, v, u = table.T
        # An event holds until its slot's next event (or the last close).
        end = np.full(len(c), closes, dtype=np.int64)
        same = s[1:] == s[:-1]
        end[:-1][same] = np.minimum(c[1:][same], closes)
        span = np.where(v > 0, np.maximum(end - c, 0), 0)
        total = int(span.sum())
        first = np.cumsum(span) - span
        # Row i of event e is at close c[e] + i - first[e].
        close = np.repeat(c - first, span)
        close += np.arange(total, dtype=np.int64)
        # Rows are by slot then close: a stable sort by close keeps slot (holding) order.
        at = _stable_order(close, closes)
        counts = np.bincount(close, minlength=closes)[:closes]
        return DayRows(
            counts, np.repeat(k, span)[at], np.repeat(v, span)[at], np.repeat(u, span)[at]
        )

    def row_prices(self, rows: DayRows) -> F64:
        """Each row's price: its code's at its close (``rows`` as ``rows`` gives them)."""
        parts = []
        a = 0
        keys = rows.keys
        for prices, n in zip(self.prices, rows.counts.tolist(), strict=False):
            if n:
                parts.append(prices[keys[a : a + n]])
                a += n
        if not parts:
            return np.zeros(0, dtype=np.float64)
        return np.concatenate(parts).astype(np.float64, copy=False)


_EMPTY: I64 = np.zeros(0, dtype=np.int64)


def _stable_order(values: I64, bound: int) -> npt.NDArray[np.intp]:
    """The stable sort order of ``values`` (all in ``[0, bound)``): numpy's radix sort of
    16-bit keys, twice (low then high half) when ``bound`` needs more than 16 bits."""
    if bound <= 1 << 16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    if bound > 1 << 32:
        return np.argsort(values, kind="stable")
    low = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
    high = np.argsort((values[low] >> 16).astype(np.uint16), kind="stable")
    return low[high]


def day_values(rows: DayRows, prices: F64) -> list[int]:
    """Each close's exact market value (``sum(value_q(shares, price))``) of ``rows``, whose
    prices are ``prices`` (one per row)."""
    return value_sums(rows.volume, prices, rows.counts)


__all__ = ["DEFER", "DayLog", "DayRows", "day_values"]
