"""The simulator's account journal: an append-only file of ``AccountReport`` records.

A thin user of ``qmtkit.recordlog.RecordLog``. File layout: an 8-byte magic header, then
frames of ``length`` (u32 little-endian), ``crc32`` of the payload (u32 little-endian) and
the payload: one msgpack ``AccountReport``, or (top bit of ``length`` set) a group of them,
each behind its own u32 length. ``extend`` writes every report of one state change (an order
with its fills, position and asset reports; a day roll) as one group, so a crash mid-write
loses the whole change and never leaves an account half-updated. A torn last frame is cut
away on open with a ``JournalWarning``; anything else wrong raises ``JournalDamaged`` naming
the file, the byte and ``qmtkit journal repair``. Journals of the first layout
(``QMTJRNL1``: single records only) still open; their header becomes ``QMTJRNL2``.

One process at a time owns a journal: ``open()`` takes an exclusive lock on the ``LOCK``
file in the journal's directory and writes the holder's pid and host into it. The same
process opening it twice is refused too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from qmtkit.errors import InvalidArgument
from qmtkit.models import AccountReport
from qmtkit.recordlog import Framing, RecordLog, RecordLogWarning

__all__ = ["LEGACY_MAGIC", "LOCK_NAME", "MAGIC", "Journal", "JournalWarning"]

MAGIC = b"QMTJRNL2"
#: The first layout, single records only: still read, and upgraded to ``MAGIC`` on open.
LEGACY_MAGIC = b"QMTJRNL1"
LOCK_NAME = "LOCK"
FRAMING = Framing(magic=MAGIC, checksum=True, groups=True, legacy_magic=(LEGACY_MAGIC,))


class JournalWarning(RecordLogWarning):
    """A journal needed repair (a torn last record was cut away)."""


class Journal:
    """An append-only, crash-tolerant file of ``AccountReport`` records.

    Use it as a context manager or call ``open()`` / ``close()``. ``fsync=True`` makes every
    ``append`` durable before it returns (slower); otherwise appends are flushed to the OS.
    """

    def __init__(self, path: Path | str, *, fsync: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgument(f"journal path must be a path, got {path!r}")
        self.path = Path(path)
        if self.path.name in ("", LOCK_NAME):
            raise InvalidArgument(
                f"bad journal path {path!r}: name a file in the terminal directory, "
                f"e.g. {Path(path) / 'journal.bin'}"
            )
        self.fsync = bool(fsync)
        self._log: RecordLog[AccountReport] = RecordLog(
            self.path,
            AccountReport,
            framing=FRAMING,
            fsync=self.fsync,
            autoflush=True,
            kind="journal",
            lock_path=self.path.parent / LOCK_NAME,
            lock_hint="share the account through one process (the gateway: `qmtkit serve`)",
            warning=JournalWarning,
        )

    @property
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._log.is_open

    def open(self) -> Journal:
        """Lock the directory, repair a torn tail and get ready to append; returns self."""
        self._log.open()
        return self

    def close(self) -> None:
        """Flush, close the file and release the lock (closing twice is harmless)."""
        self._log.close()

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def append(self, report: AccountReport) -> None:
        """Write one report at the end and flush it (and fsync it if asked)."""
        self._log.extend((report,))

    def extend(self, reports: Sequence[AccountReport]) -> None:
        """Write several reports at the end as one unit, with one flush (and fsync if asked).

        Pass every report of one state change at once: on disk they are one group, so after a
        crash at any byte either all of them are there or none is.
        """
        self._log.extend(reports)

    def extend_made(self, reports: list[AccountReport]) -> None:
        """``extend`` for reports the caller has just made as ``AccountReport`` (not re-checked).

        For the paper accounts' numbering, which builds every report it writes; anything
        else goes through ``extend``, which checks each record's type first.
        """
        self._log.extend_made(reports)

    def replay(self) -> Iterator[AccountReport]:
        """Every report in the order it was appended (up to the end at the time of the call)."""
        return self._log.replay()
