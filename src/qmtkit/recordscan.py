"""Reading a record log's frames: where the good records end, and what is wrong after them.

Pure functions over bytes already in memory (no I/O), shared by ``RecordLog.open`` (which cuts
a torn tail away or refuses damage), ``RecordLog.verify``/``repair`` (``qmtkit journal``) and
replay.

A frame is a header (``length``, then a crc32 of the payload when the framing has checksums)
and a payload. With ``Framing.groups`` the top bit of ``length`` marks a *group*: its payload
is several records, each a u32 length and the record's bytes, written and checked as one unit,
so that a crash mid-write loses the whole group and never half of it.

What counts as a torn tail (a crash during the last write, safe to cut away): a last frame
whose header is incomplete, or whose length runs past the end of the file while nothing after
its header reads as a whole frame. Everything else is damage, to be refused: a checksum that
does not match (even on the last frame: a torn write is a prefix of what was written, never a
whole-length frame with other bytes), an impossible length, a run of zero bytes (a power loss
leaves those), or a length running past the end while whole frames follow it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class Framing(Protocol):
    """What reading needs of a ``qmtkit.recordlog.Framing``."""

    @property
    def checksum(self) -> bool: ...
    @property
    def groups(self) -> bool: ...
    @property
    def header(self) -> struct.Struct: ...
    @property
    def inner(self) -> struct.Struct: ...


__all__ = ["GROUP_FLAG", "MAX_RECORD", "Damage", "Scan", "payloads", "scan"]

#: The largest payload of one frame (a record or a group), in bytes.
MAX_RECORD = 64 << 20
#: The bit of a frame's length that marks a group of records (framings with ``groups``).
GROUP_FLAG = 1 << 31

Decode = Callable[[memoryview], Any]


@dataclass(frozen=True)
class Damage:
    """The first bad frame: its absolute byte offset, what is wrong, and whether it is torn."""

    at: int
    reason: str
    torn: bool


@dataclass
class Scan:
    """The result of checking a log: ``end`` is just past the last good frame (absolute)."""

    end: int
    records: int = 0
    frames: int = 0
    damage: Damage | None = None
    decoded: list[Any] = field(default_factory=list)


def _split(payload: memoryview, inner: struct.Struct) -> list[memoryview] | None:
    """The records of a group's payload, or None when its inner lengths do not add up."""
    out: list[memoryview] = []
    at, size, n = 0, inner.size, len(payload)
    while at < n:
        if at + size > n:
            return None
        (length,) = inner.unpack_from(payload, at)
        at += size
        if length == 0 or at + length > n:
            return None
        out.append(payload[at : at + length])
        at += length
    return out if out else None


def _frame(
    view: memoryview, at: int, framing: Framing, decode: Decode | None, out: list[Any] | None
) -> tuple[int, int] | str:
    """``(end, records)`` of the good frame at ``at``, or a phrase saying what is wrong."""
    header = framing.header
    if at + header.size > len(view):
        return "torn-header"
    fields = header.unpack_from(view, at)
    word = fields[0]
    group = framing.groups and bool(word & GROUP_FLAG)
    length = word & ~GROUP_FLAG if group else word
    if length == 0:
        return "a record of length 0"
    if length > MAX_RECORD:
        return f"an impossible record length {length}"
    end = at + header.size + length
    if end > len(view):
        return "past-end"
    payload = view[at + header.size : end]
    if framing.checksum and zlib.crc32(payload) != fields[1]:
        return "a checksum that does not match its record"
    items = _split(payload, framing.inner) if group else [payload]
    if items is None:
        return "a group whose records do not add up"
    if decode is not None:
        try:
            decoded = [decode(p) for p in items]
        except Exception:  # any decoding failure means the bytes are bad
            return "a record that does not decode"
        if out is not None:
            out.extend(decoded)
    return end, len(items)


def _whole_frame_after(
    view: memoryview, start: int, framing: Framing, decode: Decode | None
) -> int:
    """The offset of the first whole, valid frame at or after ``start`` (-1 if none)."""
    for p in range(start, len(view) - framing.header.size):
        if isinstance(_frame(view, p, framing, None if framing.checksum else decode, None), tuple):
            return p
    return -1


def scan(
    view: memoryview,
    base: int,
    framing: Framing,
    decode: Decode | None = None,
    *,
    keep: bool = False,
) -> Scan:
    """Check the frames in ``view`` (which starts at file offset ``base``).

    ``decode`` (when given) must accept every record; without a checksum it is the only check.
    ``keep`` collects the decoded records in ``Scan.decoded``.
    """
    result = Scan(end=base)
    out = result.decoded if keep else None
    at = 0
    n = len(view)
    while at < n:
        got = _frame(view, at, framing, decode, out)
        if isinstance(got, tuple):
            at, count = got
            result.frames += 1
            result.records += count
            result.end = base + at
            continue
        result.damage = _classify(view, at, base, got, framing, decode)
        return result
    return result


def _classify(
    view: memoryview, at: int, base: int, why: str, framing: Framing, decode: Decode | None
) -> Damage:
    tail = len(view) - at
    if why == "torn-header":
        return Damage(base + at, f"an incomplete record header ({tail} bytes)", torn=True)
    if not any(view[at:]):
        return Damage(base + at, f"{tail} zero bytes where a record should be", torn=False)
    if why == "past-end":
        found = _whole_frame_after(view, at + 1, framing, decode)
        if found < 0:
            return Damage(base + at, f"an incomplete last record ({tail} bytes)", torn=True)
        return Damage(
            base + at,
            f"a record length running past the end of the file while whole records "
            f"follow at byte {base + found}",
            torn=False,
        )
    return Damage(base + at, why, torn=False)


def payloads(view: memoryview, framing: Framing) -> Iterator[memoryview | None]:
    """Every record's payload in order; yields None once where the bytes stop making sense."""
    at = 0
    while at < len(view):
        got = _frame(view, at, framing, None, None)
        if not isinstance(got, tuple):
            yield None
            return
        end = got[0]
        header = framing.header
        fields = header.unpack_from(view, at)
        payload = view[at + header.size : end]
        if framing.groups and fields[0] & GROUP_FLAG:
            yield from _split(payload, framing.inner) or ()
        else:
            yield payload
        at = end
