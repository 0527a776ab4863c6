"""What resuming after a reconnect needs, held once: the reconnect pace and each stream's place.

The remote backend, the xtquant adapter and the client all resume after a link drops: they wait
between attempts (``Backoff``) and, per account, drop reports they already delivered and ask for
the rest (``ReportCursor``: the last ``seq`` delivered is the ``after_seq`` of the reopen).
"""

from __future__ import annotations

import random


class Backoff:
    """Seconds between reconnect attempts: doubling from ``first``, capped at ``maximum``.

    With an ``rng`` each delay is drawn from the upper half of its window, so many clients of a
    restarted server do not reconnect in lockstep; without one the delays are exact.
    """

    __slots__ = ("first", "maximum", "rng")

    def __init__(self, first: float, maximum: float, rng: random.Random | None = None) -> None:
        self.first = float(first)
        self.maximum = max(float(maximum), self.first)
        self.rng = rng

    def delay(self, attempt: int) -> float:
        """The wait before reconnect ``attempt`` (0-based)."""
        ceiling = min(self.maximum, self.first * (2 ** min(attempt, 60)))
        return self.rng.uniform(ceiling / 2, ceiling) if self.rng is not None else ceiling


class ReportCursor:
    """Where one account's report stream stands: the last ``seq`` delivered (0: none yet)."""

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def take(self, seq: int) -> bool:
        """True, and move on, for a report not delivered yet; False for a replay of one that was.

        An unnumbered report (``seq`` 0) is always new and does not move the cursor.
        """
        if seq <= 0:
            return True
        if seq <= self.last:
            return False
        self.last = seq
        return True
