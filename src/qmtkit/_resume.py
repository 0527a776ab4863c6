"""Resuming after a reconnect, held once: what to redo, where each report stream stands, the pace.

The remote backend and the xtquant adapter each keep one ``Resume``. It remembers the quote
subscriptions and accounts a backend holds, restores them on a new link (``restore``), drops
reports already delivered by their ``seq`` (``take``) and paces reconnect attempts
(``Backoff``). The client keeps a bare ``ReportCursor`` per account for the same drop.

Seqs. A gateway numbers each account's reports itself, so the remote backend receives them
numbered. MiniQMT's pushes carry no number: the xtquant adapter has its ``Resume`` number them
(``number``). A push is known by what names it (an order by order id, status and traded volume;
a fill by order id and trade id; an order error by order id and error id); a push MiniQMT sends
again (it re-sends the day's orders and fills after a reconnect) gets the seq it got the first
time, so ``take`` drops it as a replay like any other. The numbered reports are kept (the last
``keep`` per account) so that a consumer resumes after the seq it saw last (``replay``).

Nothing here does I/O: ``restore`` awaits only the callbacks it is given.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from qmtkit.messages import OpenAccount
from qmtkit.models import AccountReport, Order, OrderError, Trade, TradeReportItem

S = TypeVar("S")


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


def push_identity(item: TradeReportItem) -> tuple[object, ...] | None:
    """What names a venue push for recognising it when it is sent again (None: never a repeat)."""
    if isinstance(item, Order):
        return ("order", item.order_id, item.order_status, item.traded_volume)
    if isinstance(item, Trade):
        return ("trade", item.order_id, item.traded_id)
    if isinstance(item, OrderError):
        return ("order_error", item.order_id, item.error_id)
    return None


class _Numbering:
    """One account's seqs for a venue whose pushes carry none, and the last reports kept."""

    __slots__ = ("kept", "last", "seen")

    def __init__(self, keep: int) -> None:
        self.last = 0
        self.seen: dict[tuple[object, ...], int] = {}
        self.kept: deque[AccountReport] = deque(maxlen=keep)


class Resume(Generic[S]):
    """One backend's resume state: requests to redo, report cursors, numbering, reconnect pace.

    ``S`` is what the backend keeps per quote subscription (the request itself, or the
    request with the venue's handles). ``keep`` bounds the reports kept per account for
    ``replay`` when this object numbers them.
    """

    def __init__(self, backoff: Backoff, *, keep: int = 100_000) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep!r}")
        self.backoff = backoff
        self._keep = keep
        self._attempt = 0
        self._subs: dict[int, S] = {}
        self._accounts: dict[str, int] = {}  # account_id -> account_type
        self._cursors: dict[str, ReportCursor] = {}
        self._numbers: dict[str, _Numbering] = {}

    # ------------------------------------------------------------ quote subscriptions

    def subscribed(self, sub_id: int, sub: S) -> None:
        """Remember a subscription the venue accepted."""
        self._subs[sub_id] = sub

    def unsubscribed(self, sub_id: int) -> S | None:
        """Forget a subscription; returns what was kept for it (None: there was none)."""
        return self._subs.pop(sub_id, None)

    def subscription(self, sub_id: int) -> S | None:
        """What is kept for subscription ``sub_id``, if it is held."""
        return self._subs.get(sub_id)

    def subscriptions(self) -> list[S]:
        """Every held subscription, oldest first."""
        return list(self._subs.values())

    def drop_subscriptions(self) -> list[S]:
        """Forget every subscription (the backend is closing); returns them."""
        subs = list(self._subs.values())
        self._subs.clear()
        return subs

    # ------------------------------------------------------------ accounts

    def opened(self, account_id: str, account_type: int) -> None:
        """Remember an account the venue opened."""
        self._accounts[account_id] = account_type

    def closed(self, account_id: str) -> int | None:
        """Forget an account; returns its type (None: it was not open)."""
        return self._accounts.pop(account_id, None)

    def account_type(self, account_id: str) -> int | None:
        """The type of an open account, None when it is not open."""
        return self._accounts.get(account_id)

    def is_open(self, account_id: str) -> bool:
        """True while ``account_id`` is held."""
        return account_id in self._accounts

    def reopen_requests(self) -> list[OpenAccount]:
        """``OpenAccount`` for every held account, resuming after the last seq delivered."""
        return [
            OpenAccount(account_id, account_type, after_seq=self.last_seq(account_id))
            for account_id, account_type in self._accounts.items()
        ]

    # ------------------------------------------------------------ report streams

    def resume_after(self, account_id: str, after_seq: int) -> None:
        """A consumer says it has seen ``account_id``'s reports up to ``after_seq``."""
        self._cursors[account_id] = ReportCursor(after_seq)

    def delivered_up_to(self, account_id: str, seq: int) -> None:
        """Reports up to ``seq`` reached the consumer another way; later ones follow them."""
        cursor = self._cursors.setdefault(account_id, ReportCursor())
        cursor.last = max(cursor.last, seq)

    def last_seq(self, account_id: str) -> int:
        """The last seq delivered (or numbered) for ``account_id``; 0 before the first."""
        cursor = self._cursors.get(account_id)
        return cursor.last if cursor is not None else 0

    def take(self, report: AccountReport) -> bool:
        """True, and move the account's cursor, for a report not delivered yet; False for a
        replay (``seq`` at or below the last delivered)."""
        cursor = self._cursors.get(report.account_id)
        if cursor is None:
            cursor = self._cursors[report.account_id] = ReportCursor()
        return cursor.take(report.seq)

    def deliver(
        self, reports: Iterable[AccountReport], on_report: Callable[[AccountReport], None]
    ) -> None:
        """``on_report`` each report ``take`` lets through, in order (a burst in one call)."""
        cursors = self._cursors
        for report in reports:
            cursor = cursors.get(report.account_id)
            if cursor is None:
                cursor = cursors[report.account_id] = ReportCursor()
            seq = report.seq
            if seq > 0:  # ReportCursor.take, inlined: every report of every burst runs this
                if seq <= cursor.last:
                    continue
                cursor.last = seq
            on_report(report)

    def take_burst(self, reports: list[AccountReport]) -> list[AccountReport] | None:
        """The reports of one account's burst not delivered yet, in order (``reports`` itself
        when all are new), moving its cursor; None, moving nothing, if it mixes accounts.
        """
        if not reports:
            return reports
        account_id = reports[0].account_id
        cursor = self._cursors.get(account_id)
        if cursor is None:
            cursor = self._cursors[account_id] = ReportCursor()
        last = cursor.last
        fresh: list[AccountReport] | None = None
        for i, report in enumerate(reports):
            if report.account_id != account_id:
                return None
            seq = report.seq
            if seq > 0:  # ReportCursor.take, inlined
                if seq <= last:
                    if fresh is None:
                        fresh = reports[:i]
                    continue
                last = seq
            if fresh is not None:
                fresh.append(report)
        cursor.last = last
        return reports if fresh is None else fresh

    def number(self, item: TradeReportItem) -> AccountReport:
        """Give a venue push its account's next seq, or, for a push sent again, its first seq.

        A push sent again returns the report numbered the first time, which ``take`` drops.
        """
        nums = self._numbers.get(item.account_id)
        if nums is None:
            nums = self._numbers[item.account_id] = _Numbering(self._keep)
        ident = push_identity(item)
        if ident is not None:
            first = nums.seen.get(ident)
            if first is not None:
                return AccountReport(account_id=item.account_id, seq=first, item=item)
            nums.seen[ident] = nums.last + 1
        nums.last += 1
        report = AccountReport(account_id=item.account_id, seq=nums.last, item=item)
        nums.kept.append(report)
        return report

    def numbered(self, account_id: str) -> int:
        """The seq of the last report ``number`` gave ``account_id`` (0 before the first)."""
        nums = self._numbers.get(account_id)
        return nums.last if nums is not None else 0

    def replay(self, account_id: str, after_seq: int) -> list[AccountReport]:
        """The kept numbered reports with ``seq > after_seq``, in order; the account's cursor
        then stands at its last numbered report, so only later ones are taken."""
        nums = self._numbers.get(account_id)
        self._cursors[account_id] = ReportCursor(nums.last if nums is not None else 0)
        if nums is None or not nums.kept:
            return []
        first = nums.kept[0].seq
        start = max(0, after_seq - first + 1)
        return [nums.kept[i] for i in range(start, len(nums.kept))]

    # ------------------------------------------------------------ reconnecting

    def next_delay(self) -> float:
        """The wait before the next reconnect attempt; each call counts one attempt."""
        delay = self.backoff.delay(self._attempt)
        self._attempt += 1
        return delay

    def link_restored(self) -> None:
        """The link is back: the next outage's attempts start from the first delay again."""
        self._attempt = 0

    async def restore(
        self,
        reopen: Callable[[OpenAccount], Awaitable[bool]],
        resubscribe: Callable[[S], Awaitable[bool]],
    ) -> None:
        """Reopen every held account, then remake every held subscription, on a new link.

        Each callback returns False when the venue refused that one for good; it is then
        forgotten. An exception from a callback ends the restore (the link failed again).
        """
        for req in self.reopen_requests():
            if not await reopen(req):
                self.closed(req.account_id)
        for sub_id, sub in list(self._subs.items()):
            if not await resubscribe(sub):
                self._subs.pop(sub_id, None)
