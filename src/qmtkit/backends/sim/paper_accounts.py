"""``PaperAccounts``: the account side of every paper venue, whatever its market.

``sim://`` (the synthetic market), ``backtest://`` (replayed history) and ``paper+...`` (another
backend's live quotes) are this one piece plus their market. It owns the paper broker, the
accounts' journal (or none: a backtest keeps its reports in memory), the per-account report
numbering, the push of reports to the client's sink, and the answers to account requests
(``OpenAccount``, ``CloseAccount``, ``SubmitOrder``, cancels, queries). The market side tells
it the time of each request and, for an order, the book and instrument the order meets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from qmtkit.backends.base import (
    AccountInfos,
    AccountStatuses,
    CancelOrder,
    CancelOrderSysid,
    CloseAccount,
    EventSink,
    Ok,
    OpenAccount,
    Orders,
    Positions,
    QueryAccountInfos,
    QueryAccountStatus,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    QueryTrades,
    Reply,
    Request,
    SubmitOrder,
    Trades,
)
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.rules import Listing
from qmtkit.constants import AccountStatusCode
from qmtkit.errors import BackendError, ClosedError, InvalidArgument
from qmtkit.models import (
    AccountInfo,
    AccountReport,
    AccountStatus,
    InstrumentDetail,
    OrderResponse,
    Tick,
    TradeReportItem,
)


class ReportJournal(Protocol):
    """Where reports go before anyone sees them (``backends.sim.journal.Journal``)."""

    def extend(self, reports: list[AccountReport]) -> None:
        """Write the reports of one state change as one unit."""

    def extend_made(self, reports: list[AccountReport]) -> None:
        """``extend`` for reports made by the caller as ``AccountReport`` (not re-checked)."""


def check_account_id(account_id: object) -> None:
    """Refuse an account id that is not a non-empty, non-blank string."""
    if not isinstance(account_id, str) or not account_id.strip():
        raise InvalidArgument(f"account id must be a non-empty string, got {account_id!r}")


class PaperAccounts:
    """The paper broker's accounts: broker, journal, report numbering and account requests.

    ``journal``: reports are written there (one unit per state change) before they are
    pushed; None keeps them in memory only. ``history``: the reports already journaled (a
    restart), so numbering and replays continue. ``observe(account_id, items)`` is called
    with the items of every new batch of an account's reports, in order, before they are
    pushed (a backtest records its result frames from them).
    ``mark(account_id, now)`` is called before an asset or positions query (to price holdings
    at the market's last prices); ``on_cancel(now, order_id, code, ok)`` after each cancel.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        journal: ReportJournal | None = None,
        history: Iterable[AccountReport] = (),
        observe: Callable[[str, list[TradeReportItem]], None] | None = None,
        mark: Callable[[str, int], None] | None = None,
        on_cancel: Callable[[int, int, str, bool], None] | None = None,
    ) -> None:
        self.broker = broker
        self.journal = journal
        self._sink: EventSink | None = None
        self._push_many: Callable[[list[AccountReport]], None] | None = None
        self.reports: dict[str, list[AccountReport]] = {}
        #: The last report number of each account (the log's length while it is kept).
        self.last_seq: dict[str, int] = {}
        for report in history:
            self.reports.setdefault(report.account_id, []).append(report)
            self.last_seq[report.account_id] = report.seq
        #: Whether reports are kept in ``reports`` (for replays to a client that opens an
        #: account). A backtest's fast form, which no client follows, turns it off: over a
        #: whole market the log was most of a run's memory.
        self.keep_log = True
        #: Accounts whose reports are pushed to the sink (opened and not closed).
        self.streaming: set[str] = set()
        #: Reports made by this object (not counting ``history``).
        self.report_count = 0
        self._observe = observe
        self._mark = mark
        self._on_cancel = on_cancel

    # ------------------------------------------------------------------ reports

    @property
    def sink(self) -> EventSink | None:
        """Where new reports of the streaming accounts are pushed (None: nowhere)."""
        return self._sink

    @sink.setter
    def sink(self, sink: EventSink | None) -> None:
        self._sink = sink
        # A sink with ``on_reports`` takes one state change's reports of an account in one
        # call (one call per order instead of one per report); the list is not to be changed.
        self._push_many = getattr(sink, "on_reports", None)

    def publish(self, account_id: str, items: Iterable[TradeReportItem]) -> None:
        """Number, journal (as one unit), observe and push the reports of one account."""
        items = items if type(items) is list else list(items)
        n = len(items)
        if not n:
            return
        first = self.last_seq.get(account_id, 0) + 1
        self.last_seq[account_id] = first + n - 1
        self.report_count += n
        sink = self._sink
        streaming = sink is not None and account_id in self.streaming
        if self.journal is not None or self.keep_log or streaming:
            reports = [AccountReport(account_id, first + i, item) for i, item in enumerate(items)]
            if self.journal is not None:
                self.journal.extend_made(reports)  # on disk, as one unit, before anyone sees them
            if self.keep_log:
                self.reports.setdefault(account_id, []).extend(reports)
        else:
            # Nobody keeps or follows the numbered reports (a backtest's fast form): only
            # the observer sees the items, and no AccountReport is made for them.
            reports = []
        if self._observe is not None:
            self._observe(account_id, items)
        if streaming:
            assert sink is not None
            many = self._push_many
            if many is not None:
                many(reports)
            else:
                on_report = sink.on_report
                for report in reports:
                    on_report(report)

    def publish_many(self, pairs: Iterable[tuple[str, TradeReportItem]]) -> None:
        """Like ``publish`` for one state change of any accounts (one journal unit for all).

        One journal write holds them all, so after a crash at any byte the journal has the
        whole change or none of it (never a fill without its position and asset reports).
        """
        pairs = pairs if type(pairs) is list else list(pairs)
        if pairs:
            self._publish_runs(_runs(pairs), len(pairs))

    def publish_runs(self, runs: list[tuple[str, list[TradeReportItem]]]) -> None:
        """``publish_many`` for reports given as runs of one account each, in order (what
        ``Broker.on_bars`` gives): numbered, kept, observed and pushed the same way."""
        merged: list[tuple[str, list[TradeReportItem]]] = []
        n = 0
        for account_id, items in runs:
            if not items:
                continue
            n += len(items)
            if merged and merged[-1][0] == account_id:  # as ``_runs`` would have made them
                merged[-1] = (account_id, merged[-1][1] + items)
            else:
                merged.append((account_id, items))
        if merged:
            self._publish_runs(merged, n)

    def _publish_runs(self, runs: list[tuple[str, list[TradeReportItem]]], n: int) -> None:
        """Publish ``n`` reports as maximal runs of one account each (none empty)."""
        last = self.last_seq
        if self.journal is None and not self.keep_log and not self.streaming:
            # Nothing numbered is kept or pushed (a backtest's fast form): count and observe.
            for account_id, items in runs:
                last[account_id] = last.get(account_id, 0) + len(items)
            self._observe_all(n, runs)
            return
        numbered: list[list[AccountReport]] = []
        for account_id, items in runs:
            seq = last.get(account_id, 0)
            numbered.append(
                [AccountReport(account_id, seq + i, item) for i, item in enumerate(items, 1)]
            )
            last[account_id] = seq + len(items)
        if self.journal is not None:
            self.journal.extend_made([report for run in numbered for report in run])
        if self.keep_log:
            logs = self.reports
            for (account_id, _), reports in zip(runs, numbered, strict=True):
                logs.setdefault(account_id, []).extend(reports)
        self._observe_all(n, runs if self._observe is not None else [])
        sink = self._sink
        if sink is None:
            return
        streaming = self.streaming
        many = self._push_many
        if many is None:
            for (account_id, _), reports in zip(runs, numbered, strict=True):
                if account_id in streaming:
                    for report in reports:
                        sink.on_report(report)
            return
        # A sink that takes an account's reports in one call gets each run of one streaming
        # account in one call (a step's fills: one call per run, not per report); the runs of
        # accounts nobody streams do not break it.
        run: list[AccountReport] = []
        for (account_id, _), reports in zip(runs, numbered, strict=True):
            if account_id in streaming:
                if run and run[0].account_id != account_id:
                    many(run)
                    run = []
                if run:
                    run.extend(reports)
                else:
                    run = reports
        if run:
            many(run)

    def _observe_all(self, n: int, runs: list[tuple[str, list[TradeReportItem]]]) -> None:
        self.report_count += n
        observe = self._observe
        if observe is not None:
            for account_id, items in runs:
                observe(account_id, items)

    def close(self) -> None:
        """Stop pushing: the client's stream is gone."""
        self.sink = None
        self.streaming.clear()

    # ------------------------------------------------------------------ requests

    def submit(
        self,
        req: SubmitOrder,
        *,
        book: Tick | None,
        instrument: InstrumentDetail | None,
        now: int,
        day: int,
        market_open: bool = True,
        listing: Listing | None = None,
    ) -> OrderResponse:
        """Place one order against ``book`` (what the market offers it now) and publish.

        ``listing``: the instrument as the rules read it, if the market made one (see
        ``Broker.submit``).
        """
        response, items = self.broker.submit(
            req,
            book=book,
            instrument=instrument,
            now_ms=now,
            day=day,
            market_open=market_open,
            listing=listing,
        )
        self.publish(req.account_id, items)
        return response

    def submit_many(
        self,
        reqs: list[SubmitOrder],
        *,
        books: list[Tick | None],
        listings: Sequence[Listing | None],
        now: int,
        day: int,
    ) -> list[OrderResponse]:
        """Place the orders of one account as ``submit`` on each in turn would, and publish
        their reports together (see ``Broker.submit_many``)."""
        items: list[TradeReportItem] = []
        try:
            return self.broker.submit_many(
                reqs, books=books, listings=listings, now_ms=now, day=day, out=items
            )
        finally:
            # Whatever was placed before a failure is published, as single submits had.
            if items:
                self.publish(reqs[0].account_id, items)

    def _open_unlogged(self, account_id: str, after_seq: int) -> AccountStatus:
        """Open an account's stream when no log is kept: only if nothing is to be replayed."""
        if self.last_seq.get(account_id, 0) > after_seq:
            raise BackendError(
                f"the reports of account {account_id!r} after #{after_seq} were not kept "
                "(a backtest's fast form keeps none): open the account before the run, "
                "e.g. with a strategy(qk, account) beside on_bars"
            )
        self.streaming.add(account_id)
        created = self.broker.open_account(account_id)
        self.broker.state_reports(account_id, True)  # followed from now on: every report
        self.publish(account_id, created)
        return AccountStatus(account_id=account_id, status=int(AccountStatusCode.OK))

    def handle(self, req: Request, now: int) -> Reply | None:
        """Answer an account request at ``now``; None if ``req`` is not one."""
        broker = self.broker
        match req:
            case OpenAccount(account_id=account_id, after_seq=after_seq):
                check_account_id(account_id)
                if not self.keep_log:
                    return self._open_unlogged(account_id, after_seq)
                self.publish(account_id, broker.open_account(account_id))
                sink = self.sink
                if sink is not None:
                    for report in self.reports.get(account_id, []):
                        if report.seq > after_seq:
                            sink.on_report(report)
                self.streaming.add(account_id)
                return AccountStatus(account_id=account_id, status=int(AccountStatusCode.OK))
            case CloseAccount(account_id=account_id):
                self.streaming.discard(account_id)
                return Ok()
            case CancelOrder(account_id=account_id, order_id=order_id, seq=seq):
                check_account_id(account_id)
                code = ""
                if self._on_cancel is not None and account_id in broker.known_accounts:
                    found = broker.order(account_id, order_id)
                    code = found.stock_code if found is not None else ""
                reply, items = broker.cancel(account_id, order_id, now, seq=seq)
                self.publish(account_id, items)
                if self._on_cancel is not None:
                    self._on_cancel(now, order_id, code, reply.cancel_result == 0)
                return reply
            case CancelOrderSysid(account_id=account_id, market=market, order_sysid=sysid, seq=seq):
                check_account_id(account_id)
                sreply, items = broker.cancel_by_sysid(account_id, market, sysid, now, seq=seq)
                self.publish(account_id, items)
                if self._on_cancel is not None:
                    self._on_cancel(now, sreply.order_id, "", sreply.cancel_result == 0)
                return sreply
            case QueryAsset(account_id=account_id):
                if self._mark is not None:
                    self._mark(account_id, now)
                return broker.asset(account_id)
            case QueryOrders(account_id=account_id, cancelable_only=cancelable):
                return Orders(broker.orders(account_id, cancelable))
            case QueryTrades(account_id=account_id):
                return Trades(broker.trades(account_id))
            case QueryPositions(account_id=account_id):
                if self._mark is not None:
                    self._mark(account_id, now)
                return Positions(broker.positions(account_id))
            case QueryAccountInfos():
                return AccountInfos(
                    [
                        AccountInfo(account_id=a, login_status=0)
                        for a in sorted(broker.known_accounts)
                    ]
                )
            case QueryAccountStatus():
                return AccountStatuses(
                    [
                        AccountStatus(account_id=a, status=int(AccountStatusCode.OK))
                        for a in sorted(broker.known_accounts)
                    ]
                )
        return None


def _runs(pairs: list[tuple[str, TradeReportItem]]) -> list[tuple[str, list[TradeReportItem]]]:
    """``pairs`` as runs of one account each, in order."""
    out: list[tuple[str, list[TradeReportItem]]] = []
    for account_id, item in pairs:
        if out and out[-1][0] == account_id:
            out[-1][1].append(item)
        else:
            out.append((account_id, [item]))
    return out


def need(accounts: PaperAccounts | None, what: str) -> PaperAccounts:
    """``accounts``, or ClosedError naming the venue (``what``) when it is not open."""
    if accounts is None:
        raise ClosedError(f"{what} is not open: use it inside `async with connect()`")
    return accounts


__all__ = ["PaperAccounts", "ReportJournal", "check_account_id", "need"]
