"""A typed, append-only file of msgspec records, owned by one process at a time.

``RecordLog[T]`` is the mechanism under both journals (the simulator's account journal and
the gateway's report journal): it frames each record, repairs a torn tail left by a crash,
refuses a file damaged in the middle, and holds an exclusive lock that names its holder.

Framing (see ``Framing``): an optional magic header, then per record a ``length`` (u32), an
optional ``crc32`` of the payload (u32) and the msgpack payload. With ``Framing.groups`` the
records of one ``extend`` are written as one *group* frame under one checksum, so a crash
mid-write loses the whole group, never part of it (``qmtkit.recordscan`` has the layout).

A crash in the middle of an append leaves an incomplete *last* frame: ``open()`` cuts it away
with a warning, so it is never misread. Anything else that is wrong (a checksum mismatch, an
impossible length, a run of zero bytes, a length running past the end while whole records
follow) is damage: ``open()`` raises ``JournalDamaged`` naming the file, the byte and the
command that repairs it, and changes nothing. ``verify()`` reports what a file holds;
``repair()`` keeps the longest valid prefix and moves the damaged file aside (never deleting
it). Without a checksum a record is "bad" when its payload does not decode.

Locking: ``open()`` takes a non-blocking exclusive lock on a separate lock file (``flock`` on
POSIX, ``msvcrt.locking`` on Windows) and writes ``pid``/``host`` into it, so a refused opener
can say who holds the log. A second open in the same process is refused too.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Generic, TypeVar

import msgspec

from qmtkit.atomicfile import write_atomically
from qmtkit.errors import CacheError, ClosedError, InvalidArgument, JournalDamaged, JournalLocked
from qmtkit.recordscan import GROUP_FLAG, MAX_RECORD, Scan, payloads, scan

__all__ = ["MAX_RECORD", "FileLock", "Framing", "RecordLog", "RecordLogWarning", "Repair"]

T = TypeVar("T")

# Windows locks byte ranges mandatorily; lock a byte past the pid/host text so that a
# refused opener can still read who holds the file.
_WIN_LOCK_OFFSET = 4096

_held_lock = threading.Lock()
_held: dict[str, int] = {}  # lock file -> pid holding it (a forked child does not)


class RecordLogWarning(RuntimeWarning):
    """A record log needed repair (a torn last record was cut away)."""


@dataclass(frozen=True)
class Framing:
    """How records are laid out on disk.

    ``magic`` is written once at the start of the file (empty: none); ``checksum`` adds a
    crc32 of each payload after its length; ``big_endian`` picks the byte order of both.
    ``groups`` (needs ``checksum``) writes the records of one ``extend`` as one group frame;
    ``legacy_magic`` lists older headers still read (an opened legacy file gets ``magic``).
    """

    magic: bytes = b""
    checksum: bool = True
    big_endian: bool = False
    groups: bool = False
    legacy_magic: tuple[bytes, ...] = ()
    header: struct.Struct = field(init=False, repr=False, compare=False)
    inner: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.magic, bytes):
            raise InvalidArgument(f"framing magic must be bytes, got {self.magic!r}")
        if self.groups and not (self.checksum and self.magic):
            raise InvalidArgument("group framing needs a checksum and a magic header")
        if any(
            not isinstance(m, bytes) or len(m) != len(self.magic) or m == self.magic
            for m in self.legacy_magic
        ):
            raise InvalidArgument(
                f"legacy_magic must be other headers as long as {self.magic!r}, "
                f"got {self.legacy_magic!r}"
            )
        order = ">" if self.big_endian else "<"
        fmt = order + ("II" if self.checksum else "I")
        object.__setattr__(self, "header", struct.Struct(fmt))
        object.__setattr__(self, "inner", struct.Struct(order + "I"))

    def frame_group(self, payloads: list[bytes]) -> bytes:
        """One group frame holding ``payloads`` (two or more encoded records), checked as one."""
        pack = self.inner.pack
        parts: list[bytes] = []
        add = parts.append
        for p in payloads:  # one join of all the pieces, not a concatenation per record
            add(pack(len(p)))
            add(p)
        body = b"".join(parts)
        if len(body) > MAX_RECORD:
            raise InvalidArgument(
                f"a group of {len(payloads)} records is {len(body)} bytes, over the "
                f"{MAX_RECORD}-byte limit of one write"
            )
        return self.header.pack(len(body) | GROUP_FLAG, zlib.crc32(body)) + body

    def encode_group_into(
        self, encoder: msgspec.msgpack.Encoder, records: Sequence[object], buf: bytearray
    ) -> bytes:
        """``frame_group`` of ``records`` encoded by ``encoder``, in one pass, with the body
        encoded into ``buf`` (its old content is replaced): returns the header, and ``buf``
        holds the body. The two are written together (``os.writev`` where there is one), so
        the body is not copied behind its header.

        Each record is encoded straight behind the room left for its length, so no bytes
        object is made per record and no join copies them (``buf`` keeps its memory from one
        call to the next).
        """
        pack_into = self.inner.pack_into
        encode_into = encoder.encode_into
        room = self.inner.size
        end = 0
        for record in records:
            encode_into(record, buf, end + room)  # leaves buf ending at this record's end
            size = len(buf)
            pack_into(buf, end, size - end - room)
            end = size
        if end > MAX_RECORD:
            raise InvalidArgument(
                f"a group of {len(records)} records is {end} bytes, over the "
                f"{MAX_RECORD}-byte limit of one write"
            )
        return self.header.pack(end | GROUP_FLAG, zlib.crc32(buf))

    def frame_payload(self, payload: bytes) -> bytes:
        """One record's bytes on disk, for a record already encoded as ``payload``."""
        if self.checksum:
            return self.header.pack(len(payload), zlib.crc32(payload)) + payload
        return self.header.pack(len(payload)) + payload

    def frame(self, encoder: msgspec.msgpack.Encoder, record: object) -> bytes | bytearray:
        """One record's bytes on disk: ``record`` encoded by ``encoder`` behind its header."""
        header = self.header
        if self.checksum:
            payload = encoder.encode(record)
            return header.pack(len(payload), zlib.crc32(payload)) + payload
        # encoding straight behind the reserved header spares a copy of the payload
        buf = bytearray(header.size)
        encoder.encode_into(record, buf, header.size)
        header.pack_into(buf, 0, len(buf) - header.size)
        return buf


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (one write(2) unless the OS takes less at a time)."""
    done = os.write(fd, data)
    if done != len(data):
        with memoryview(data) as view:
            while done < len(data):
                done += os.write(fd, view[done:])


_writev = getattr(os, "writev", None)  # POSIX only
#: The largest group buffer a log keeps for its next group (an order's group is ~2 kB).
_GROUP_BUF_KEEP = 1 << 16


def _write_pair(fd: int, head: bytes, body: bytes | bytearray) -> None:
    """Write ``head`` then ``body`` to ``fd`` as if joined (one writev(2) where there is one)."""
    if _writev is None:
        _write_all(fd, head + body)
        return
    done = _writev(fd, (head, body))
    if done != len(head) + len(body):
        _write_all(fd, (head + body)[done:])


class FileLock:
    """An exclusive, non-blocking lock on one file that records its holder, until ``release``.

    ``what`` names the guarded thing in refusals (e.g. "the simulator journal /x/j.bin");
    ``hint`` says what to do about a refusal.
    """

    def __init__(self, path: Path, *, what: str, hint: str) -> None:
        self.path = path
        self.what = what
        self.hint = hint
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between ``acquire`` and ``release``."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write our pid and host into the lock file, or raise JournalLocked."""
        if self._fd is not None:
            raise InvalidArgument(f"the lock {self.path} is already held by this object")
        key = str(self.path.resolve())
        with _held_lock:
            if _held.get(key) == os.getpid():
                raise JournalLocked(
                    f"{self.what} is already open in this process (pid {os.getpid()}, lock "
                    f"file {self.path}): close the other one first, or {self.hint}"
                )
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_fd(fd)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise JournalLocked(
                    f"{self.what} is in use by {holder} (lock file {self.path}): "
                    f"stop that process, or {self.hint}"
                ) from None
            _held[key] = os.getpid()
        self._fd = fd
        info = f"pid {os.getpid()}\nhost {socket.gethostname()}\n".encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, info)

    def release(self) -> None:
        """Clear the holder, unlock and close (releasing twice is harmless)."""
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
    return f"pid {fields.get('pid', '?')} on host {fields.get('host', '?')}"


@dataclass(frozen=True)
class Repair:
    """What ``RecordLog.repair`` did: the check, where the damaged file was kept (None when
    nothing needed repair) and the file's size before."""

    scan: Scan
    aside: Path | None
    size: int


class RecordLog(Generic[T]):
    """An append-only, crash-tolerant file of ``record_type`` records (any msgspec-encodable type).

    ``open()`` locks, checks and repairs the file; ``append``/``extend`` add records at the
    end; ``replay()`` yields every record in order. With ``autoflush=True`` (the default)
    each ``append``/``extend`` is handed to the OS before it returns; otherwise records are
    buffered until ``sync()``. ``fsync=True`` makes every flush durable on disk.

    ``kind`` names the file in messages ("journal", "record log"); ``lock_path`` is the lock
    file (default: ``<path>.lock``); ``lock_hint`` says what to do when the lock is refused;
    ``warning`` is the warning class used when a torn tail is cut away, unless ``on_torn``
    is given: then it is called with the message instead (e.g. to log it).

    One thread at a time: writes share the log's end offset and its group buffer (the
    simulator's journal is written on its loop's thread, or by a caller holding that loop).
    """

    def __init__(
        self,
        path: Path | str,
        record_type: type[T],
        *,
        framing: Framing | None = None,
        fsync: bool = False,
        autoflush: bool = True,
        kind: str = "record log",
        lock_path: Path | str | None = None,
        lock_hint: str = "use another path",
        warning: type[Warning] = RecordLogWarning,
        on_torn: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgument(f"{kind} path must be a path, got {path!r}")
        self.path = Path(path)
        if self.path.name == "":
            raise InvalidArgument(
                f"bad {kind} path {path!r}: name a file, e.g. {self.path / 'log.bin'}"
            )
        if lock_path is not None and not isinstance(lock_path, (str, os.PathLike)):
            raise InvalidArgument(f"lock_path must be a path or None, got {lock_path!r}")
        self.lock_path = (
            Path(lock_path)
            if lock_path is not None
            else self.path.with_name(self.path.name + ".lock")
        )
        if self.lock_path.resolve() == self.path.resolve():
            raise InvalidArgument(
                f"bad {kind} path {path!r}: it is the lock file; name another file"
            )
        if not (isinstance(warning, type) and issubclass(warning, Warning)):
            raise InvalidArgument(f"warning must be a Warning subclass, got {warning!r}")
        if not isinstance(record_type, type):
            raise InvalidArgument(f"record_type must be a class, got {record_type!r}")
        self.record_type = record_type
        self.framing = framing if framing is not None else Framing()
        self.fsync = bool(fsync)
        self.autoflush = bool(autoflush)
        self.kind = kind
        if on_torn is not None and not callable(on_torn):
            raise InvalidArgument(f"on_torn must be callable or None, got {on_torn!r}")
        self._warning = warning
        self._on_torn = on_torn
        self._lock = FileLock(self.lock_path, what=f"the {kind} {self.path}", hint=lock_hint)
        self._file: BinaryIO | None = None
        self._end = 0
        self._dirty = False
        self._preloaded: tuple[list[T], int] | None = None
        self._encoder = msgspec.msgpack.Encoder()
        #: Where a group's body is encoded (``Framing.encode_group_into``), kept between calls.
        self._group_buf = bytearray()
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(record_type)

    # ------------------------------------------------------------------ lifetime

    @property
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._file is not None

    @property
    def end(self) -> int:
        """The file offset just past the last record written (buffered ones included)."""
        return self._end

    def open(self) -> RecordLog[T]:
        """Lock, check the file, cut a torn tail away and get ready to append; returns self."""
        if self._file is not None:
            raise InvalidArgument(f"{self.kind} {self.path} is already open")
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
        self._dirty = False
        return self

    def close(self) -> None:
        """Flush (and fsync if asked), close the file and release the lock (twice is harmless)."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            f.close()
        finally:
            self._dirty = False
            self._preloaded = None
            self._lock.release()

    def __enter__(self) -> RecordLog[T]:
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
            raise ClosedError(f"{self.kind} {self.path} is not open: call open() or use `with`")
        return self._file

    # ------------------------------------------------------------------ writes

    def append(self, record: T) -> None:
        """Write one record at the end (flushed now with ``autoflush``, else at ``sync``)."""
        f = self._need_open()
        if not isinstance(record, self.record_type):
            raise self._wrong_type(record)
        self._write(f, self.framing.frame(self._encoder, record))

    def append_encoded(self, payload: bytes) -> None:
        """Write one record the caller has already msgpack-encoded as a ``record_type``.

        For callers that need the encoded bytes themselves too (one encoding instead of two);
        the payload is not checked, so it must come from encoding a ``record_type``.
        """
        f = self._need_open()
        if not isinstance(payload, bytes) or not payload:
            raise InvalidArgument(f"payload must be non-empty bytes, got {payload!r:.60}")
        if len(payload) > MAX_RECORD:
            raise InvalidArgument(
                f"a record of {len(payload)} bytes is over the {MAX_RECORD}-byte limit"
            )
        self._write(f, self.framing.frame_payload(payload))

    def extend_encoded(self, payloads: list[bytes]) -> None:
        """``extend`` for records the caller has already msgpack-encoded (see ``append_encoded``).

        With group framing they are one unit on disk, as with ``extend``.
        """
        f = self._need_open()
        for payload in payloads:
            if not isinstance(payload, bytes) or not payload:
                raise InvalidArgument(f"payload must be non-empty bytes, got {payload!r:.60}")
            if len(payload) > MAX_RECORD:
                raise InvalidArgument(
                    f"a record of {len(payload)} bytes is over the {MAX_RECORD}-byte limit"
                )
        framing = self.framing
        if len(payloads) > 1 and framing.groups:
            self._write(f, framing.frame_group(payloads))
        elif payloads:
            self._write(f, b"".join([framing.frame_payload(p) for p in payloads]))

    def _wrong_type(self, record: object) -> InvalidArgument:
        return InvalidArgument(
            f"{self.kind} {self.path} stores {self.record_type.__name__} records, "
            f"got {type(record).__name__}"
        )

    def extend(self, records: Iterable[T]) -> None:
        """Write several records at the end in one system call.

        Every record is checked before anything is written, so a refused call changes
        nothing. With group framing the records are one unit on disk: a crash mid-write
        loses all of them, never some (without it, a torn tail cut on the next open).
        """
        self._need_open()
        items = records if type(records) is list else list(records)
        record_type = self.record_type
        for record in items:
            if type(record) is not record_type and not isinstance(record, record_type):
                raise self._wrong_type(record)
        self.extend_made(items)

    def extend_made(self, records: list[T]) -> None:
        """``extend`` for records the caller has just made itself as ``record_type``.

        The records are not checked one by one (``extend`` is the door for records from
        anywhere else): a caller that builds them itself, such as the simulator's account
        numbering on every order, knows their type already.
        """
        f = self._file
        if f is None:
            f = self._need_open()  # raises: closed
        framing = self.framing
        if len(records) > 1 and framing.groups:
            body = self._group_buf
            head = framing.encode_group_into(self._encoder, records, body)
            size = len(head) + len(body)
            if self.autoflush and not self.fsync and not self._dirty:
                # _write and sync, inlined: one state change's reports per call, on every order.
                # Nothing is buffered (autoflush, not dirty), so the bytes go straight to the
                # file in one system call, without the copy into the file object's buffer.
                _write_pair(f.fileno(), head, body)
                self._end += size
            else:
                self._write(f, head + body)
            if size > _GROUP_BUF_KEEP:  # a day roll's big group: do not hold its memory
                self._group_buf = bytearray()
            return
        chunks = [framing.frame(self._encoder, r) for r in records]
        if chunks:
            self._write(f, chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _write(self, f: BinaryIO, data: bytes | bytearray) -> None:
        """Add framed ``data`` at the end; hand it to the OS now with ``autoflush``."""
        f.write(data)
        self._end += len(data)
        self._dirty = True
        if self.autoflush:
            self.sync()

    def sync(self) -> None:
        """Hand every written record to the OS (and to the disk with ``fsync=True``)."""
        f = self._need_open()
        if not self._dirty:
            return
        self._dirty = False
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())

    flush = sync

    # ------------------------------------------------------------------ reads

    def replay(self) -> Iterator[T]:
        """Every record in the order it was appended, up to the end when iteration starts.

        Buffered records are flushed to the OS first so that they are included.
        """
        self._need_open()
        self.sync()
        end = self._end
        framing = self.framing
        pos = len(framing.magic)
        preloaded, self._preloaded = self._preloaded, None
        if preloaded is not None:
            # without a checksum, open() had to decode every record to check it: reuse them
            records, pos = preloaded
            yield from records
        if pos >= end:
            return
        with open(self.path, "rb") as f:
            f.seek(pos)
            data = f.read(end - pos)
        decode = self._decoder.decode
        for payload in payloads(memoryview(data), framing):
            if payload is None:
                raise CacheError(f"{self.kind} {self.path} changed under us after byte {pos}")
            yield decode(payload)

    # ------------------------------------------------------------------ repair

    def _check(self, f: BinaryIO) -> int:
        """Validate the file, cut a torn tail away; returns the end of the last good record."""
        magic = self.framing.magic
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(len(magic))
        if size < len(magic):
            if head and not magic.startswith(head):
                raise CacheError(
                    f"{self.path} is not a qmtkit {self.kind} (bad header {head!r}): "
                    "move it away or use another path"
                )
            if head:
                self._warn_torn(0, size)
            f.truncate(0)
            f.write(magic)
            f.flush()
            return len(magic)
        if head != magic and head not in self.framing.legacy_magic:
            raise CacheError(
                f"{self.path} is not a qmtkit {self.kind} (header {head!r}, expected "
                f"{magic!r}): move it away or use another path"
            )
        base = len(magic)
        view = memoryview(f.read())
        checked = self._scan(view, base, keep=not self.framing.checksum)
        damage = checked.damage
        if damage is not None and not damage.torn:
            raise JournalDamaged(self._damage_message(checked))
        if damage is not None:
            self._warn_torn(damage.at, size)
            f.truncate(damage.at)
            f.flush()
        if head != magic:
            self._upgrade_header()
        self._keep_preloaded(checked.decoded, checked.end)
        return checked.end

    def _upgrade_header(self) -> None:
        """Give a legacy file the current header before anything is appended in the new layout.

        The records already there read the same in both layouts; the new header keeps older
        versions of qmtkit, which cannot read group frames, from misreading the file.
        """
        with open(self.path, "r+b") as g:
            g.write(self.framing.magic)
            g.flush()
            os.fsync(g.fileno())

    # ------------------------------------------------------------------ verify / repair

    def verify(self) -> Scan:
        """Check the whole file without changing it or taking the lock; every record is decoded.

        The result says how many records and frames are good, where they end and what (if
        anything) is wrong after them. Raises ``CacheError`` for a file that is not this kind
        of log at all.
        """
        data = self.path.read_bytes()
        base = self._header_length(data)
        return self._scan(memoryview(data)[base:], base, decode=True)

    def repair(self) -> Repair:
        """Keep the longest valid prefix of a damaged (or torn) file; never delete anything.

        Takes the lock (refused while another process holds the log). When the file needs
        repair, its damaged version is first kept under a new name beside it (a hard link, or
        a copy where links are not possible), then the file is replaced atomically by its
        valid prefix. A file without damage is left as it is.
        """
        if self._file is not None:
            raise InvalidArgument(f"close the {self.kind} {self.path} before repairing it")
        self._lock.acquire()
        try:
            data = self.path.read_bytes()
            base = self._header_length(data)
            checked = self._scan(memoryview(data)[base:], base, decode=True)
            if checked.damage is None:
                return Repair(checked, None, len(data))
            aside = self._aside_name()
            try:
                os.link(self.path, aside)
            except OSError:
                shutil.copy2(self.path, aside)
            prefix = self.framing.magic + data[base : checked.end]
            write_atomically(self.path, prefix)
            return Repair(checked, aside, len(data))
        finally:
            self._lock.release()

    def _header_length(self, data: bytes) -> int:
        magic = self.framing.magic
        head = data[: len(magic)]
        if head != magic and head not in self.framing.legacy_magic:
            raise CacheError(
                f"{self.path} is not a qmtkit {self.kind} (header {head!r}, expected {magic!r})"
            )
        return len(magic)

    def _aside_name(self) -> Path:
        for n in range(1, 10_000):
            aside = self.path.with_name(f"{self.path.name}.damaged-{n}")
            if not aside.exists():
                return aside
        raise CacheError(f"too many damaged copies of {self.path} beside it: clear some away")

    def _scan(
        self, view: memoryview, base: int, *, keep: bool = False, decode: bool = False
    ) -> Scan:
        checksum = self.framing.checksum
        decoder = self._decoder.decode if decode or not checksum else None
        return scan(view, base, self.framing, decoder, keep=keep)

    def _damage_message(self, checked: Scan) -> str:
        damage = checked.damage
        assert damage is not None
        return (
            f"{self.kind} {self.path} is damaged at byte {damage.at}: {damage.reason}. "
            f"The {checked.records} records before it are intact and nothing was changed. "
            f"`qmtkit journal verify {self.path}` shows the damage; `qmtkit journal repair "
            f"{self.path}` keeps the records before byte {damage.at} and moves the damaged "
            "file aside (it deletes nothing); or restore the file from a backup"
        )

    def _keep_preloaded(self, records: list[T], end: int) -> None:
        self._preloaded = None if self.framing.checksum else (records, end)

    def _warn_torn(self, pos: int, size: int) -> None:
        message = (
            f"{self.kind} {self.path}: cut away a torn last record ({size - pos} bytes at byte "
            f"{pos}), left by a crash during a write"
        )
        if self._on_torn is not None:
            self._on_torn(message)
        else:
            warnings.warn(message, self._warning, stacklevel=5)
