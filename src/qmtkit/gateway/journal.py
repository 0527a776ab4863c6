"""The gateway's journal of account reports, so clients (and a restarted gateway) can resume.

The gateway numbers the reports it hands to clients itself (per account, 1, 2, 3 ...): a
backend's own numbering may start again at 1 when the backend restarts (xtquant's does), while
clients must see one ever-growing sequence. Each entry keeps both numbers: the gateway's
``seq`` (inside the ``AccountReport``) and the backend's ``bseq``, which tells a restarted
gateway where to ask the backend to resume.

Entries are kept in memory per account and appended to one file through
``qmtkit.recordlog.RecordLog``: a sequence of 4-byte big-endian lengths, each followed by a
msgpack ``JournalEntry``. On open the file is read back; a torn last record (a crash
mid-write) is cut away with a logged warning instead of being misread, and damage before the
last record raises ``CacheError``. One process at a time may hold a journal file (the lock
file ``<journal>.lock`` names the holder).
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path
from types import TracebackType

import msgspec

from qmtkit.errors import ClosedError
from qmtkit.models import AccountReport, TradeReportItem
from qmtkit.recordlog import Framing, RecordLog

log = logging.getLogger(__name__)

# The gateway's length prefix (see ``gateway.protocol.HEADER``), without magic or checksum.
FRAMING = Framing(magic=b"", checksum=False, big_endian=True)


class JournalEntry(msgspec.Struct, array_like=True):
    """One journaled report: the gateway-numbered report and the backend's own seq for it."""

    bseq: int
    report: AccountReport


class _Stream:
    """The reports of one account, ascending by seq."""

    __slots__ = ("bseq", "by_bseq", "reports", "seqs")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.reports: list[AccountReport] = []
        self.bseq = 0
        self.by_bseq: dict[int, int] = {}  # backend seq -> index of the latest entry with it

    def keep(self, report: AccountReport, bseq: int) -> None:
        if bseq > 0:
            self.by_bseq[bseq] = len(self.reports)
        self.seqs.append(report.seq)
        self.reports.append(report)
        self.bseq = bseq


class ReportJournal:
    """Reports per account, in memory and (when ``path`` is given) appended to a file.

    ``record(account, item, bseq)`` numbers a new report and keeps it; ``since(account, n)``
    returns the kept reports with ``seq > n`` in order. Records are buffered until ``sync``
    (the gateway syncs before sending any report); with ``fsync=True`` ``sync`` also forces
    them to disk.
    """

    def __init__(self, path: str | Path | None = None, *, fsync: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self._fsync = fsync
        self._streams: dict[str, _Stream] = {}
        self._log: RecordLog[JournalEntry] | None = None
        if self.path is not None:
            self._log = RecordLog(
                self.path,
                JournalEntry,
                framing=FRAMING,
                fsync=fsync,
                autoflush=False,
                kind="gateway journal",
                lock_hint="give this gateway another home (--home)",
                on_torn=_log_torn,
            )
        self._opened = False
        self._closed = False

    # ------------------------------------------------------------------ lifetime

    def open(self) -> ReportJournal:
        """Lock the file, load what it holds and get ready to append."""
        if self._closed:
            raise ClosedError("this ReportJournal was closed; create a new one")
        if self._opened:
            return self
        if self._log is not None:
            self._log.open()
            try:
                self._load(self._log)
            except BaseException:
                self._log.close()
                raise
        self._opened = True
        return self

    def close(self) -> None:
        """Release the file; the journal cannot be used afterwards."""
        self._closed = True
        if self._log is not None:
            self._log.close()  # flushes what ``sync`` has not handed over yet

    def __enter__(self) -> ReportJournal:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ queries

    def accounts(self) -> list[str]:
        """The accounts with at least one report."""
        return [a for a, s in self._streams.items() if s.seqs]

    def last_seq(self, account_id: str) -> int:
        """The gateway seq of the account's latest report (0 if none)."""
        stream = self._streams.get(account_id)
        return stream.seqs[-1] if stream is not None and stream.seqs else 0

    def last_bseq(self, account_id: str) -> int:
        """The backend's seq of the account's latest report (0 if none)."""
        stream = self._streams.get(account_id)
        return stream.bseq if stream is not None else 0

    def item_at_bseq(self, account_id: str, bseq: int) -> TradeReportItem | None:
        """The item of the latest report the backend numbered ``bseq`` (None if none)."""
        stream = self._streams.get(account_id)
        if stream is None:
            return None
        i = stream.by_bseq.get(bseq)
        return stream.reports[i].item if i is not None else None

    def since(self, account_id: str, after_seq: int) -> list[AccountReport]:
        """The kept reports of ``account_id`` with ``seq > after_seq``, oldest first."""
        stream = self._streams.get(account_id)
        if stream is None:
            return []
        i = bisect.bisect_right(stream.seqs, after_seq)
        return stream.reports[i:]

    # ------------------------------------------------------------------ writes

    def record(self, account_id: str, item: TradeReportItem, bseq: int = 0) -> AccountReport:
        """Number ``item`` as the account's next report, keep it and return the report."""
        if not self._opened or self._closed:
            raise ClosedError("the gateway journal is not open")
        stream = self._streams.setdefault(account_id, _Stream())
        seq = (stream.seqs[-1] if stream.seqs else 0) + 1
        report = AccountReport(account_id=account_id, seq=seq, item=item)
        if self._log is not None:
            self._log.append(JournalEntry(bseq, report))
        stream.keep(report, bseq)
        return report

    def sync(self) -> None:
        """Hand every recorded report to the OS (and to the disk with ``fsync=True``).

        ``record`` only buffers, so a burst of reports costs one write: the gateway calls
        ``sync`` before any of them leaves for a client, so nothing a client saw can be missing
        from the journal.
        """
        if self._log is not None and self._log.is_open:
            self._log.sync()

    # ------------------------------------------------------------------ internals

    def _load(self, journal: RecordLog[JournalEntry]) -> None:
        for entry in journal.replay():
            report = entry.report
            stream = self._streams.setdefault(report.account_id, _Stream())
            if not stream.seqs or report.seq > stream.seqs[-1]:
                stream.keep(report, entry.bseq)


def _log_torn(message: str) -> None:
    log.warning("%s", message)
