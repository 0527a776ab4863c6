"""One shard file of the K-line cache: columns of many codes, memory-mapped, checksummed.

Layout of a ``.qkc`` file (all integers little-endian)::

    0   magic  b"QKCOLS\\x00\\x01"
    8   u32    header version (1)
    12  u32    length of the meta block
    16  u64    total file length
    24  u32    CRC-32 of the meta block
    28  u32    reserved (0)
    32  meta   msgspec JSON: codes, row count, and for every block its offset, length, CRC-32
    ..  blocks, each starting on a 64-byte boundary: the row index ``starts`` (int64,
        ncodes + 1), the coverage ``cov_first``/``cov_last`` (int64, ncodes), then one
        block per stored column; rows are sorted by (code, time).

``open_shard`` checks on every open what is cheap: magic, header, meta CRC, the file length
(catches truncation), every block's bounds and size, the CRCs of the small index blocks and
that the row index is monotone. ``verify_shard`` also checks the CRC of every column.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import msgspec
import numpy as np
import numpy.typing as npt

from qmtkit.atomicfile import write_atomically
from qmtkit.errors import CacheError

MAGIC: Final = b"QKCOLS\x00\x01"
VERSION: Final = 1
_HEADER = struct.Struct("<8sIIQII")
ALIGN: Final = 64
INDEX_BLOCKS: Final = ("__starts__", "__cov_first__", "__cov_last__")
REPAIR_HINT: Final = (
    "run `qmtkit cache verify --repair` (drops the damaged shard) and download again, "
    "or delete the file and re-download"
)


class Block(msgspec.Struct, frozen=True):
    """Where one array lives in the file."""

    name: str
    dtype: str
    offset: int
    nbytes: int
    crc: int


class Meta(msgspec.Struct, frozen=True):
    """The self-description of a shard file."""

    period: str
    codes: list[str]
    rows: int
    blocks: list[Block]


class Shard:
    """A mapped shard: zero-copy numpy views of its index and columns.

    The views keep the mapping alive; it is released when the last view is gone.
    """

    __slots__ = ("codes", "columns", "cov_first", "cov_last", "index", "meta", "path", "starts")

    def __init__(
        self,
        path: Path,
        meta: Meta,
        starts: npt.NDArray[np.int64],
        cov_first: npt.NDArray[np.int64],
        cov_last: npt.NDArray[np.int64],
        columns: dict[str, npt.NDArray[np.generic]],
    ) -> None:
        self.path = path
        self.meta = meta
        self.codes = meta.codes
        self.index = {c: i for i, c in enumerate(meta.codes)}
        self.starts = starts
        self.cov_first = cov_first
        self.cov_last = cov_last
        self.columns = columns

    @property
    def rows(self) -> int:
        """Total number of rows."""
        return self.meta.rows

    def span(self, code: str) -> tuple[int, int] | None:
        """The row range ``[lo, hi)`` of ``code``, or None if the shard does not hold it."""
        i = self.index.get(code)
        if i is None:
            return None
        return int(self.starts[i]), int(self.starts[i + 1])

    def coverage(self, code: str) -> tuple[int, int] | None:
        """The stored coverage interval of ``code``."""
        i = self.index.get(code)
        if i is None:
            return None
        first, last = int(self.cov_first[i]), int(self.cov_last[i])
        return None if first > last else (first, last)

    def arrays(self, code: str) -> dict[str, npt.NDArray[np.generic]]:
        """Zero-copy views of one code's columns (empty arrays if absent)."""
        sp = self.span(code) or (0, 0)
        return {k: v[sp[0] : sp[1]] for k, v in self.columns.items()}


def _raw(arr: npt.NDArray[np.generic]) -> memoryview:
    """The bytes of a contiguous array, without a copy."""
    return np.ascontiguousarray(arr).view(np.uint8).data


def _pad(n: int) -> int:
    return (-n) % ALIGN


def write_shard(
    path: Path,
    period: str,
    dtypes: Mapping[str, np.dtype[np.generic]],
    codes: Sequence[str],
    parts: Sequence[Mapping[str, npt.NDArray[np.generic]]],
    coverage: Sequence[tuple[int, int]],
) -> None:
    """Write a shard atomically: temp file, fsync, rename; the directory is fsynced after.

    ``parts[i]`` holds the columns of ``codes[i]`` (sorted by time, every column present).
    A crash at any point leaves either no file or the complete file at ``path``.
    """
    counts = [len(p["time"]) for p in parts]
    starts = np.zeros(len(codes) + 1, dtype="<i8")
    np.cumsum(counts, out=starts[1:])
    rows = int(starts[-1])
    cov = np.asarray(coverage, dtype="<i8").reshape(len(codes), 2)
    index = {
        "__starts__": starts,
        "__cov_first__": np.ascontiguousarray(cov[:, 0]),
        "__cov_last__": np.ascontiguousarray(cov[:, 1]),
    }

    def column(name: str) -> npt.NDArray[np.generic]:
        dt = dtypes[name]
        if len(parts) == 1:
            return np.ascontiguousarray(parts[0][name], dtype=dt)
        if not parts:
            return np.zeros(0, dtype=dt)
        return np.concatenate([np.asarray(p[name], dtype=dt) for p in parts])

    arrays: list[tuple[str, npt.NDArray[np.generic]]] = list(index.items())
    arrays += [(name, column(name)) for name in dtypes]

    blocks: list[Block] = []
    # The meta's length depends on the offsets it lists: lay out with a generous bound first.
    meta_bound = 4096 + 64 * len(codes) + 128 * len(arrays)
    offset = _HEADER.size + meta_bound
    offset += _pad(offset)
    for name, arr in arrays:
        crc = zlib.crc32(_raw(arr))
        blocks.append(Block(name, arr.dtype.str, offset, arr.nbytes, crc))
        offset += arr.nbytes + _pad(arr.nbytes)
    file_len = offset
    meta = msgspec.json.encode(Meta(period, list(codes), rows, blocks))
    if len(meta) > meta_bound:
        raise CacheError(f"shard meta of {path} outgrew its reserved space ({len(meta)} bytes)")
    header = _HEADER.pack(MAGIC, VERSION, len(meta), file_len, zlib.crc32(meta), 0)

    def write(f: BinaryIO) -> None:
        f.write(header)
        f.write(meta)
        f.write(b"\0" * (blocks[0].offset - _HEADER.size - len(meta)))
        for (_, arr), blk in zip(arrays, blocks, strict=True):
            f.write(_raw(arr))
            f.write(b"\0" * _pad(blk.nbytes))

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write)


def _corrupt(path: Path, what: str) -> CacheError:
    return CacheError(f"cache file {path} is damaged: {what}; {REPAIR_HINT}")


def open_shard(
    path: Path, dtypes: Mapping[str, np.dtype[np.generic]], *, checksums: bool = False
) -> Shard:
    """Map a shard file and check it cheaply (all column CRCs too if ``checksums``).

    Raises FileNotFoundError if the file is gone, CacheError if it is damaged.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < _HEADER.size:
            raise _corrupt(path, f"{size} bytes is shorter than the header (truncated)")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    buf = memoryview(mm)
    try:
        magic, version, meta_len, file_len, meta_crc, _ = _HEADER.unpack_from(buf, 0)
        if magic != MAGIC:
            raise _corrupt(path, "bad magic bytes (not a qmtkit cache file)")
        if version != VERSION:
            raise _corrupt(path, f"unknown format version {version}")
        if file_len != size:
            raise _corrupt(path, f"length is {size} bytes, header says {file_len} (truncated)")
        raw = bytes(buf[_HEADER.size : _HEADER.size + meta_len])
        if len(raw) != meta_len or zlib.crc32(raw) != meta_crc:
            raise _corrupt(path, "meta block checksum mismatch")
        try:
            meta = msgspec.json.decode(raw, type=Meta)
        except msgspec.ValidationError as exc:
            raise _corrupt(path, f"meta block unreadable ({exc})") from None
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        for blk in meta.blocks:
            dt = np.dtype(blk.dtype)
            if blk.offset < 0 or blk.offset + blk.nbytes > size or blk.nbytes % dt.itemsize:
                raise _corrupt(path, f"block {blk.name!r} lies outside the file")
            arr = np.frombuffer(mm, dtype=dt, count=blk.nbytes // dt.itemsize, offset=blk.offset)
            if (checksums or blk.name in INDEX_BLOCKS) and zlib.crc32(_raw(arr)) != blk.crc:
                raise _corrupt(path, f"checksum mismatch in column {blk.name!r}")
            arrays[blk.name] = arr
    finally:
        buf.release()
    n = len(meta.codes)
    for name in INDEX_BLOCKS:
        if name not in arrays:
            raise _corrupt(path, f"index block {name!r} is missing")
    starts = arrays.pop("__starts__").view(np.int64)
    cov_first = arrays.pop("__cov_first__").view(np.int64)
    cov_last = arrays.pop("__cov_last__").view(np.int64)
    if len(starts) != n + 1 or len(cov_first) != n or len(cov_last) != n:
        raise _corrupt(path, "index size does not match the code list")
    if n and (starts[0] != 0 or starts[-1] != meta.rows or np.any(np.diff(starts) < 0)):
        raise _corrupt(path, "row index is not monotone")
    for name, dt in dtypes.items():
        col = arrays.get(name)
        if col is None or col.dtype != dt or len(col) != meta.rows:
            raise _corrupt(path, f"column {name!r} is missing or has the wrong type/length")
    return Shard(path, meta, starts, cov_first, cov_last, arrays)


def verify_shard(path: Path, dtypes: Mapping[str, np.dtype[np.generic]]) -> None:
    """Full check of a shard: everything ``open_shard`` checks plus every column's CRC."""
    open_shard(path, dtypes, checksums=True)
