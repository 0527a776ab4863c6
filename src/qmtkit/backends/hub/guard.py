"""Login policy of the gateway: who may try to log in, how soon, and how refusals are logged.

A pure state machine (the caller passes the time): no I/O, no sleeping.

- Connections that have not logged in yet are capped, in all and per address, so that a peer
  cannot make the gateway hold many of them (each holds at most one small login frame).
- After a failed login from an address, its next attempts are judged only after a delay that
  doubles with each failure (``base`` .. ``cap`` seconds); a success clears it. Guessing a
  32-character token is hopeless anyway; the delay keeps the cost of trying high and the
  gateway's work per address low.
- Refusals are counted, not logged one by one: ``summary`` gives at most one line per
  ``interval`` seconds, so a flood of bad logins cannot flood the log.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

__all__ = ["LoginGuard"]


@dataclass
class _Failures:
    count: int = 0
    until: float = 0.0


@dataclass
class LoginGuard:
    """Caps, delays and refusal counts for the gateway's logins (see the module's doc)."""

    max_pending: int = 64
    max_pending_per_address: int = 8
    base: float = 0.1
    cap: float = 10.0
    interval: float = 5.0
    max_addresses: int = 10_000
    pending: Counter[str] = field(default_factory=Counter)
    _failures: OrderedDict[str, _Failures] = field(default_factory=OrderedDict)
    _refused: Counter[str] = field(default_factory=Counter)
    _refused_from: Counter[str] = field(default_factory=Counter)
    _last_summary: float = float("-inf")

    # ------------------------------------------------------------------ admission

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address`` as waiting to log in; None, or why not."""
        if self.pending.total() >= self.max_pending:
            return f"too many connections waiting to log in (limit {self.max_pending})"
        if self.pending[address] >= self.max_pending_per_address:
            return (
                f"too many connections from {address} waiting to log in "
                f"(limit {self.max_pending_per_address})"
            )
        self.pending[address] += 1
        return None

    def leave(self, address: str) -> None:
        """The connection ``admit`` counted has logged in, or gone."""
        self.pending[address] -= 1
        if self.pending[address] <= 0:
            del self.pending[address]

    # ------------------------------------------------------------------ delays

    def wait(self, address: str, now: float) -> float:
        """Seconds to wait before judging a login from ``address`` (0: judge it now)."""
        entry = self._failures.get(address)
        return max(0.0, entry.until - now) if entry is not None else 0.0

    def failed(self, address: str, now: float) -> None:
        """A login from ``address`` failed: delay its next ones (doubling, capped)."""
        entry = self._failures.pop(address, None) or _Failures()
        entry.count += 1
        entry.until = now + min(self.cap, self.base * 2 ** min(entry.count - 1, 30))
        self._failures[address] = entry  # most recent last
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """A login from ``address`` succeeded: no more delay for it."""
        self._failures.pop(address, None)

    # ------------------------------------------------------------------ logging

    def refused(self, address: str, reason: str) -> None:
        """Count one refused connection (``reason`` is a short kind, e.g. "wrong token")."""
        self._refused[reason] += 1
        self._refused_from[address] += 1
        if len(self._refused_from) > self.max_addresses:
            self._refused_from = Counter(dict(self._refused_from.most_common(100)))

    def summary(self, now: float, *, force: bool = False) -> str | None:
        """One line about the refusals since the last one, at most once per ``interval``."""
        if not self._refused or (not force and now - self._last_summary < self.interval):
            return None
        since = now - self._last_summary
        window = f"in the last {since:.0f}s" if since != float("inf") else "so far"
        total = self._refused.total()
        kinds = ", ".join(f"{n} {kind}" for kind, n in self._refused.most_common())
        top = ", ".join(f"{a} x{n}" for a, n in self._refused_from.most_common(3))
        self._refused.clear()
        self._refused_from.clear()
        self._last_summary = now
        return (
            f"refused {total} connection{'s' if total != 1 else ''} {window} ({kinds}); "
            f"most from {top}"
        )
