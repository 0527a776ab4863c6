"""The gateway's journal of account reports, so clients (and a restarted gateway) can resume.

The gateway numbers the reports it hands to clients itself (per account, 1, 2, 3 ...): a
backend's own numbering may start again at 1 when the backend restarts (xtquant's does), while
clients must see one ever-growing sequence. Each entry keeps both numbers: the gateway's
``seq`` (inside the ``AccountReport``) and the backend's ``bseq``, which tells a restarted
gateway where to ask the backend to resume.

Entries are kept in memory per account and appended to one file: a sequence of 4-byte
big-endian lengths, each followed by a msgpack ``JournalEntry``. On open the file is read
back; a torn last record (a crash mid-write) is cut away with a warning instead of being
misread. One process at a time may hold a journal file.
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

import msgspec

from qmtkit.errors import ClosedError, JournalLocked
from qmtkit.gateway.protocol import HEADER
from qmtkit.models import AccountReport, TradeReportItem

log = logging.getLogger(__name__)


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
        self._file: IO[bytes] | None = None
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(JournalEntry)
        self._opened = False
        self._closed = False
        self._dirty = False

    # ------------------------------------------------------------------ lifetime

    def open(self) -> ReportJournal:
        """Lock the file, load what it holds and get ready to append."""
        if self._closed:
            raise ClosedError("this ReportJournal was closed; create a new one")
        if self._opened:
            return self
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+b")  # noqa: SIM115 - held for the journal's lifetime
            try:
                _lock(f, self.path)
                self._load(f)
            except BaseException:
                f.close()
                raise
            self._file = f
        self._opened = True
        return self

    def close(self) -> None:
        """Release the file; the journal cannot be used afterwards."""
        if self._file is not None and not self._closed:
            self.sync()
        self._closed = True
        if self._file is not None:
            f, self._file = self._file, None
            _unlock(f)
            f.close()

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
        if self._file is not None:
            buf = bytearray(HEADER.size)
            self._enc.encode_into(JournalEntry(bseq, report), buf, HEADER.size)
            HEADER.pack_into(buf, 0, len(buf) - HEADER.size)
            self._file.write(buf)
            self._dirty = True
        stream.keep(report, bseq)
        return report

    def sync(self) -> None:
        """Hand every recorded report to the OS (and to the disk with ``fsync=True``).

        ``record`` only buffers, so a burst of reports costs one write: the gateway calls
        ``sync`` before any of them leaves for a client, so nothing a client saw can be missing
        from the journal.
        """
        if self._dirty and self._file is not None:
            self._dirty = False
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())

    # ------------------------------------------------------------------ internals

    def _load(self, f: IO[bytes]) -> None:
        f.seek(0)
        data = f.read()
        pos = 0
        good = 0
        while pos + HEADER.size <= len(data):
            (size,) = HEADER.unpack_from(data, pos)
            end = pos + HEADER.size + size
            if end > len(data):
                break
            try:
                entry = self._dec.decode(data[pos + HEADER.size : end])
            except msgspec.DecodeError:
                break
            report = entry.report
            stream = self._streams.setdefault(report.account_id, _Stream())
            if not stream.seqs or report.seq > stream.seqs[-1]:
                stream.keep(report, entry.bseq)
            pos = good = end
        if good < len(data):
            log.warning(
                "gateway journal %s: cut %d bytes of a torn or unreadable tail at offset %d",
                self.path,
                len(data) - good,
                good,
            )
            f.truncate(good)
        f.seek(0, os.SEEK_END)


def _lock(f: IO[bytes], path: Path) -> None:
    """Take an exclusive, non-blocking lock on the open journal file."""
    try:
        if sys.platform == "win32":
            import msvcrt

            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _read_holder(path)
        raise JournalLocked(
            f"gateway journal {path} is held by another gateway ({holder}); stop that gateway "
            "or give this one another home (--home)"
        ) from None
    _write_holder(path)


def _unlock(f: IO[bytes]) -> None:
    try:
        if sys.platform == "win32":
            import msvcrt

            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:  # pragma: no cover - closing releases it anyway
        pass


def _holder_path(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def _write_holder(path: Path) -> None:
    _holder_path(path).write_text(f"pid {os.getpid()} on {socket.gethostname()}\n")


def _read_holder(path: Path) -> str:
    try:
        return _holder_path(path).read_text().strip()
    except OSError:
        return "unknown holder"
