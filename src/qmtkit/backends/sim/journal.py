"""The simulator's account journal: an append-only file of ``AccountReport`` records.

File layout: an 8-byte magic header, then records of ``length`` (u32 little-endian),
``crc32`` of the payload (u32 little-endian) and the msgpack payload (one ``AccountReport``).
A crash in the middle of an append leaves a short or corrupt last record; opening the
journal detects it by length and checksum and cuts it away with a ``JournalWarning``, so it
is never misread. A bad record followed by good data is corruption, not a torn tail, and
raises ``CacheError`` instead of silently dropping history.

One process at a time owns a journal: ``open()`` takes an exclusive lock on the ``LOCK``
file in the journal's directory (``flock`` on POSIX, ``msvcrt.locking`` on Windows) and
writes the holder's pid and host into it. The same process opening it twice is refused too.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import msgspec

from qmtkit.errors import CacheError, ClosedError, InvalidArgument, JournalLocked
from qmtkit.models import AccountReport

__all__ = ["LOCK_NAME", "MAGIC", "Journal", "JournalWarning"]

MAGIC = b"QMTJRNL1"
LOCK_NAME = "LOCK"
_HEADER = struct.Struct("<II")
_MAX_RECORD = 64 << 20
# Windows locks byte ranges mandatorily; lock a byte past the pid/host text so that a
# refused opener can still read who holds the journal.
_WIN_LOCK_OFFSET = 4096

_held_lock = threading.Lock()
_held: dict[str, int] = {}  # lock file -> pid holding it (a forked child does not)


class JournalWarning(RuntimeWarning):
    """A journal needed repair (a torn last record was cut away)."""


class _Lock:
    """An exclusive, non-blocking lock on one file, held until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        key = str(self.path.resolve())
        with _held_lock:
            if _held.get(key) == os.getpid():
                raise JournalLocked(
                    f"the simulator journal lock {self.path} is already held by this process "
                    f"(pid {os.getpid()}): close the other Journal first, or share the account "
                    "through one process (the gateway: `qmtkit serve`)"
                )
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_fd(fd)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise JournalLocked(
                    f"the simulator journal in {self.path.parent} is in use by {holder} "
                    f"(lock file {self.path}): stop that process, or share its accounts through "
                    "the gateway (`qmtkit serve`) and connect to it instead"
                ) from None
            _held[key] = os.getpid()
        self._fd = fd
        info = f"pid {os.getpid()}\nhost {socket.gethostname()}\n".encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, info)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            _unlock_fd(fd)
        finally:
            os.close(fd)
            with _held_lock:
                _held.pop(str(self.path.resolve()), None)


if sys.platform == "win32":
    import msvcrt

    def _lock_fd(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 256).decode("utf-8", errors="replace")
    except OSError:
        text = ""
    fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    pid = fields.get("pid", "?")
    host = fields.get("host", "?")
    return f"pid {pid} on host {host}"


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
        self._lock = _Lock(self.path.parent / LOCK_NAME)
        self._file: BinaryIO | None = None
        self._end = 0
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(AccountReport)

    @property
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._file is not None

    def open(self) -> Journal:
        """Lock the directory, repair a torn tail and get ready to append; returns self."""
        if self._file is not None:
            raise InvalidArgument(f"journal {self.path} is already open")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            f = open(self.path, "a+b")  # noqa: SIM115 - lives until close()
            try:
                self._end = self._check(f)
            except BaseException:
                f.close()
                raise
        except BaseException:
            self._lock.release()
            raise
        self._file = f
        return self

    def close(self) -> None:
        """Flush, close the file and release the lock (closing twice is harmless)."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            f.close()
        finally:
            self._lock.release()

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _need_open(self) -> BinaryIO:
        if self._file is None:
            raise ClosedError(f"journal {self.path} is not open: call open() or use `with`")
        return self._file

    def _check(self, f: BinaryIO) -> int:
        """Validate the file, cut a torn tail away; returns the end of the last good record."""
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(len(MAGIC))
        if size < len(MAGIC):
            if head and not MAGIC.startswith(head):
                raise CacheError(f"{self.path} is not a qmtkit journal (bad header {head!r})")
            if head:
                self._warn_torn(0, size)
            f.truncate(0)
            f.write(MAGIC)
            f.flush()
            return len(MAGIC)
        if head != MAGIC:
            raise CacheError(
                f"{self.path} is not a qmtkit journal (header {head!r}, expected {MAGIC!r}): "
                "move it away or point the simulator at another directory"
            )
        pos = len(MAGIC)
        while pos < size:
            ok, end = _probe(f, pos, size)
            if not ok:
                if end < size:
                    raise CacheError(
                        f"journal {self.path} is corrupted at byte {pos} with {size - end} bytes "
                        "of records after it: restore it from a backup or move it away"
                    )
                self._warn_torn(pos, size)
                f.truncate(pos)
                f.flush()
                return pos
            pos = end
        return pos

    def _warn_torn(self, pos: int, size: int) -> None:
        warnings.warn(
            f"journal {self.path}: cut away a torn last record ({size - pos} bytes at byte "
            f"{pos}), left by a crash during a write",
            JournalWarning,
            stacklevel=4,
        )

    def append(self, report: AccountReport) -> None:
        """Write one report at the end and flush it (and fsync it if asked)."""
        self.extend((report,))

    def extend(self, reports: Sequence[AccountReport]) -> None:
        """Write several reports at the end with one flush (and one fsync if asked).

        One order produces several reports at once; writing them in one system call keeps an
        order's round trip short. A crash mid-way leaves a torn tail, cut away on open.
        """
        chunks = []
        for report in reports:
            if not isinstance(report, AccountReport):
                raise InvalidArgument(
                    f"a journal stores AccountReport records, got {type(report).__name__}"
                )
            payload = self._encoder.encode(report)
            chunks.append(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        f = self._need_open()
        data = b"".join(chunks)
        f.write(data)
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())
        self._end += len(data)

    def replay(self) -> Iterator[AccountReport]:
        """Every report in the order it was appended (up to the end at the time of the call)."""
        self._need_open()
        end = self._end
        with open(self.path, "rb") as f:
            f.seek(len(MAGIC))
            pos = len(MAGIC)
            while pos < end:
                header = f.read(_HEADER.size)
                length, crc = _HEADER.unpack(header)
                payload = f.read(length)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    raise CacheError(f"journal {self.path} changed under us at byte {pos}")
                yield self._decoder.decode(payload)
                pos += _HEADER.size + length


def _probe(f: BinaryIO, pos: int, size: int) -> tuple[bool, int]:
    """Is the record at ``pos`` whole and intact? Returns (ok, where it ends or would end)."""
    f.seek(pos)
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return False, size
    length, crc = _HEADER.unpack(header)
    end = pos + _HEADER.size + length
    if length > _MAX_RECORD or end > size:
        return False, size
    payload = f.read(length)
    if zlib.crc32(payload) != crc:
        return False, end
    return True, end
