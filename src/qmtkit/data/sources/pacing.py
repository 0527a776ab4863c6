"""How long a polite client waits: a steady call rate, and backoff with jitter after errors.

Pure arithmetic over times the caller passes in (seconds on a monotonic clock) and a
``random.Random`` it owns, so tests seed it and never sleep.
"""

from __future__ import annotations

import random
from typing import Final

from qmtkit.checks import positive_number
from qmtkit.errors import InvalidArgument

#: Backoff never waits longer than this, whatever the attempt number.
MAX_BACKOFF_S: Final = 60.0


class Pacer:
    """Spaces calls at most ``rate`` per second and computes backoff delays.

    Backoff after the ``n``-th failed attempt (``n`` from 1) is "equal jitter": half of
    ``min(max_delay, base * 2**(n-1))`` plus a uniform random part of the other half, so
    retries from many clients spread out but never retry at once.
    """

    def __init__(
        self,
        rate: float,
        *,
        base_delay: float = 1.0,
        max_delay: float = MAX_BACKOFF_S,
        rng: random.Random | None = None,
    ) -> None:
        for name, v in (("rate", rate), ("base_delay", base_delay), ("max_delay", max_delay)):
            positive_number(name, v)
        self.interval = 1.0 / float(rate)
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.rng = rng if rng is not None else random.Random()
        self._next_at: float | None = None

    def wait_before_call(self, now: float) -> float:
        """Seconds to wait at ``now`` before the next call; books that call's slot."""
        at = now if self._next_at is None else max(now, self._next_at)
        self._next_at = at + self.interval
        return at - now

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        if attempt < 1:
            raise InvalidArgument(f"attempt must be >= 1, got {attempt!r}")
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 30))
        return cap / 2.0 + self.rng.uniform(0.0, cap / 2.0)
