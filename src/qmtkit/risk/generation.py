"""``<home>/risk.gen``: the mark every writer of the home's risk settings moves.

Eight bytes that change whenever ``risk.toml`` or a halt switch is written through qmtkit
(``save_config``, ``write_switch``: ``qmtkit risk set|halt|resume``, a guard's own ``halt``).
A running guard maps the file into memory and compares those bytes before every order and
cancel, so a change reaches the very next request at the cost of one memory read, where a
``stat`` of each file per order would cost a system call or two.

The mark is a fresh random number, not a counter: writers need no lock (two writers racing
both leave a value no reader has seen), and a reader only ever asks "has it moved?". The file
is only ever overwritten in place, never truncated (a reader's mapping must stay backed).
"""

from __future__ import annotations

import mmap
import os
import secrets
from pathlib import Path

__all__ = ["GENERATION_NAME", "GenerationWatch", "bump_generation"]

GENERATION_NAME = "risk.gen"
_SIZE = 8


def _open(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    try:
        if os.fstat(fd).st_size < _SIZE:
            # Extends with zeros; never overwrites a mark another writer has just put there.
            os.ftruncate(fd, _SIZE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def bump_generation(home: Path) -> None:
    """Move the mark of ``home``: every guard watching it re-reads its settings next request.

    Call it after the new settings are in place (the file replaced), never before.
    """
    home.mkdir(parents=True, exist_ok=True)
    fd = _open(home / GENERATION_NAME)
    try:
        mark = secrets.randbits(63) | 1  # never the zeros of a fresh file
        data = mark.to_bytes(_SIZE, "little")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
    finally:
        os.close(fd)


class GenerationWatch:
    """A read-only mapping of a home's mark; ``moved()`` says if it changed since last asked.

    The order path reads ``view[0]`` and compares it with ``seen`` itself (one index, no call).
    """

    __slots__ = ("_map", "seen", "view")

    def __init__(self, path: Path) -> None:
        fd = _open(path)
        try:
            self._map = mmap.mmap(fd, _SIZE, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self.view = memoryview(self._map).cast("Q")
        self.seen: int = self.view[0]

    @classmethod
    def open(cls, home: Path) -> GenerationWatch | None:
        """The watch of ``home``'s mark (created if missing), or None if it cannot be had
        (no such home yet: nothing there to watch)."""
        if not home.is_dir():
            return None
        try:
            return cls(home / GENERATION_NAME)
        except (OSError, ValueError):
            return None

    def moved(self) -> bool:
        """True (once) if the mark changed since the last time it was taken as seen."""
        now = self.view[0]
        if now == self.seen:
            return False
        self.seen = now
        return True

    def close(self) -> None:
        """Unmap the file."""
        self.view.release()
        self._map.close()
