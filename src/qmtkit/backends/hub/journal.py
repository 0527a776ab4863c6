"""The gateway's journal of account reports, so clients (and a restarted gateway) can resume.

The gateway numbers the reports it hands to clients itself (per account, 1, 2, 3 ...): a
backend's own numbering may start again at 1 when the backend restarts (xtquant's does), while
clients must see one ever-growing sequence. Each entry keeps both numbers: the gateway's
``seq`` (inside the ``AccountReport``) and the backend's ``bseq``, which tells a restarted
gateway where to ask the backend to resume.

Entries are kept in memory per account and appended to one file through
``qmtkit.recordlog.RecordLog``: the header ``QMTGWJR2``, then checksummed msgpack
``JournalEntry`` records; the entries recorded between two ``sync`` calls (a burst of reports,
one state change or more) are written as one group frame, so a crash keeps all of them or none.
On open the file is read back; a torn last write is cut away with a logged warning instead of
being misread, and damage before it raises ``JournalDamaged``. A journal of the first layout
(no header, no checksums, one record per report) is rewritten in this one when opened. One
process at a time may hold a journal file (the lock file ``<journal>.lock`` names the holder).
The sidecar ``<journal>.venue`` names the venue whose reports the journal holds (see
``ReportJournal.bind_venue``).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import msgspec

from qmtkit.atomicfile import write_atomically
from qmtkit.errors import ClosedError, InvalidArgument, JournalMismatch
from qmtkit.models import AccountReport, TradeReportItem
from qmtkit.recordlog import MAX_RECORD, Framing, RecordLog

log = logging.getLogger(__name__)

MAGIC = b"QMTGWJR2"
FRAMING = Framing(magic=MAGIC, checksum=True, big_endian=True, groups=True)
# The first layout: the wire's 4-byte length prefix, no header, no checksum, no groups.
LEGACY_FRAMING = Framing(magic=b"", checksum=False, big_endian=True)
#: Bytes of entries written as one group at most (a larger backlog is several groups).
GROUP_BYTES = MAX_RECORD // 2


class JournalEntry(msgspec.Struct, array_like=True):
    """One journaled report: the gateway-numbered report and the backend's own seq for it."""

    bseq: int
    report: AccountReport


class _EncodedEntry(msgspec.Struct, array_like=True):
    """A ``JournalEntry`` whose report is already encoded (the same bytes on disk)."""

    bseq: int
    report: msgspec.Raw


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
        self._encoder = msgspec.msgpack.Encoder()
        self._venue_id = ""  # the venue ``bind_venue`` tied the journal to ("": none yet)
        self._log: RecordLog[JournalEntry] | None = None
        self._pending: list[bytes] = []  # entries recorded since the last sync, encoded
        if self.path is not None:
            self._log = self._record_log(self.path, FRAMING)
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
            assert self.path is not None
            _upgrade_legacy(self.path, self._record_log)
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
            if self._log.is_open:
                self._write_pending(self._log)
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
        return self.record_encoded(account_id, item, bseq)[0]

    def record_encoded(
        self, account_id: str, item: TradeReportItem, bseq: int = 0
    ) -> tuple[AccountReport, msgspec.Raw]:
        """``record``, also returning the report msgpack-encoded (encoded once for both uses)."""
        if not self._opened or self._closed:
            raise ClosedError("the gateway journal is not open")
        stream = self._streams.get(account_id)
        if stream is None:
            stream = self._streams[account_id] = _Stream()
        seqs = stream.seqs
        report = AccountReport(account_id, seqs[-1] + 1 if seqs else 1, item)
        raw = msgspec.Raw(self._encoder.encode(report))
        if self._log is not None:
            self._pending.append(self._encoder.encode(_EncodedEntry(bseq, raw)))
        stream.keep(report, bseq)
        return report, raw

    def sync(self) -> None:
        """Hand every recorded report to the OS (and to the disk with ``fsync=True``).

        ``record`` only buffers, so a burst of reports costs one write and is one unit on disk
        (a group frame): the gateway calls ``sync`` once a burst is complete and before any of
        it leaves for a client, so nothing a client saw can be missing from the journal.
        """
        if self._log is not None and self._log.is_open:
            self._write_pending(self._log)
            self._log.sync()

    def _write_pending(self, journal: RecordLog[JournalEntry]) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        start, size = 0, 0
        for i, entry in enumerate(pending):
            if size and size + len(entry) > GROUP_BYTES:
                journal.extend_encoded(pending[start:i])
                start, size = i, 0
            size += len(entry)
        journal.extend_encoded(pending[start:])

    # ------------------------------------------------------------------ venue

    @property
    def venue_id(self) -> str:
        """The id of the venue this journal was bound to by ``bind_venue`` ("" until then)."""
        return self._venue_id

    @property
    def venue_path(self) -> Path | None:
        """The sidecar file naming the journal's venue: ``<journal>.venue`` (None in memory)."""
        return None if self.path is None else self.path.with_name(self.path.name + ".venue")

    def bind_venue(self, venue_id: str) -> None:
        """Tie the journal to the venue whose reports it holds, or refuse a different one.

        Backend seqs only mean something within one venue's history: the gateway recognises
        replayed reports by them, so the reports of another venue that happen to look alike
        would be swallowed as already delivered. Rules: an empty ``venue_id`` (unknown) is not
        checked and nothing is written; a journal without reports is (re)bound to it; a journal
        with reports but no sidecar (written before venues were recorded) is bound to it; one
        bound to another id raises ``JournalMismatch`` and writes nothing. The sidecar
        ``<journal>.venue`` holds the id as text and is replaced atomically.
        """
        if not isinstance(venue_id, str) or "\n" in venue_id or "\r" in venue_id:
            raise InvalidArgument(
                f'venue_id must be a one-line string ("" when unknown), got {venue_id!r}'
            )
        if not self._opened or self._closed:
            raise ClosedError("the gateway journal is not open: open it before bind_venue")
        if not venue_id:
            return
        sidecar = self.venue_path
        if sidecar is None:
            self._venue_id = venue_id
            return
        has_reports = any(stream.seqs for stream in self._streams.values())
        bound = _read_venue(sidecar)
        if has_reports and bound == venue_id:
            self._venue_id = venue_id
            return
        if has_reports and bound:
            raise JournalMismatch(
                f"the gateway journal {self.path} holds the reports of venue {bound!r}, but the "
                f"backend being served is venue {venue_id!r}: its reports would be mistaken for "
                f"ones already delivered; give this gateway its own home with --home, or move "
                f"{self.path} away to start a new history"
            )
        if has_reports:
            log.info(
                "gateway journal %s had no venue recorded; binding it to venue %r",
                self.path,
                venue_id,
            )
        if bound != venue_id:
            write_atomically(sidecar, (venue_id + "\n").encode("utf-8"))
        self._venue_id = venue_id

    # ------------------------------------------------------------------ internals

    def _record_log(self, path: Path, framing: Framing) -> RecordLog[JournalEntry]:
        return RecordLog(
            path,
            JournalEntry,
            framing=framing,
            fsync=self._fsync,
            autoflush=False,
            kind="gateway journal",
            lock_hint="give this gateway another home (--home)",
            on_torn=_log_torn,
        )

    def _load(self, journal: RecordLog[JournalEntry]) -> None:
        for entry in journal.replay():
            report = entry.report
            stream = self._streams.setdefault(report.account_id, _Stream())
            if not stream.seqs or report.seq > stream.seqs[-1]:
                stream.keep(report, entry.bseq)


def _upgrade_legacy(
    path: Path, record_log: Callable[[Path, Framing], RecordLog[JournalEntry]]
) -> None:
    """Rewrite a journal of the first layout (no header) in the current one, atomically."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
    except FileNotFoundError:
        return
    if not head or head == MAGIC:
        return
    # A first-layout file starts with a length; MAGIC read as one is over any record's limit.
    with record_log(path, LEGACY_FRAMING) as old:  # locked; a torn tail cut as before
        entries = list(old.replay())
    # Replaced once closed (Windows renames over no open file); a new gateway takes the lock.
    encoder = msgspec.msgpack.Encoder()
    body = b"".join(FRAMING.frame_payload(encoder.encode(e)) for e in entries)
    write_atomically(path, MAGIC + body)
    log.info(
        "gateway journal %s rewritten in the checksummed layout (%d reports)", path, len(entries)
    )


def _log_torn(message: str) -> None:
    log.warning("%s", message)


def _read_venue(sidecar: Path) -> str:
    """The venue id a sidecar file names ("" if there is none)."""
    try:
        text = sidecar.read_text(encoding="utf-8", errors="replace").rstrip("\r\n")
    except FileNotFoundError:
        return ""
    return text if text.strip() else ""
