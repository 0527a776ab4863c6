"""The risk journal and the halt switch of an account, under ``<home>/risk``.

``<account>.journal`` is an append-only ``RecordLog`` of ``RiskEntry`` records (refusals,
state changes, flags, commands). Several processes may write one account's journal (a
gateway, a script, ``qmtkit risk halt``): each opens it, appends and closes, holding the lock
only that long. ``<account>.switch`` holds the operator's halt (``HaltSwitch``), replaced
atomically; running guards poll it, so ``qmtkit risk halt`` reaches them within a poll.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec

from qmtkit.atomicfile import write_atomically
from qmtkit.recordlog import Framing, RecordLog
from qmtkit.risk.engine import RiskEntry
from qmtkit.risk.generation import bump_generation

__all__ = [
    "HaltSwitch",
    "append_entries",
    "journal_path",
    "read_entries",
    "read_switch",
    "switch_path",
    "write_switch",
]

_FRAMING = Framing(magic=b"QMTKRISK1\n")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _stem(account_id: str) -> str:
    safe = _SAFE.sub("_", account_id)
    if safe != account_id or not safe.strip("."):
        # Different ids must never share a file once unsafe characters are replaced.
        safe = f"{safe}-{hashlib.sha256(account_id.encode()).hexdigest()[:8]}"
    return safe


def journal_path(directory: Path, account_id: str) -> Path:
    """The journal file of ``account_id``."""
    return directory / f"{_stem(account_id)}.journal"


def switch_path(directory: Path, account_id: str) -> Path:
    """The halt-switch file of ``account_id``."""
    return directory / f"{_stem(account_id)}.switch"


def _log(path: Path) -> RecordLog[RiskEntry]:
    return RecordLog(
        path,
        RiskEntry,
        framing=_FRAMING,
        kind="risk journal",
        lock_hint="wait a moment and retry",
    )


def append_entries(path: Path, entries: list[RiskEntry]) -> None:
    """Append ``entries`` (open, write, close); raises ``JournalLocked`` if another holds it."""
    if not entries:
        return
    with _log(path) as log:
        log.extend(entries)


def read_entries(path: Path) -> Iterator[RiskEntry]:
    """Every entry of a journal, oldest first (nothing if there is none)."""
    if not path.exists():
        return iter(())
    with _log(path) as log:
        return iter(list(log.replay()))


class HaltSwitch(msgspec.Struct, frozen=True, kw_only=True):
    """The operator's word on an account: ``halted`` or not, why, and when (Unix ms)."""

    halted: bool
    reason: str = ""
    at_ms: int = 0


def read_switch(path: Path) -> HaltSwitch | None:
    """The switch in ``path``, or None if there is none (or it cannot be read)."""
    try:
        return msgspec.msgpack.decode(path.read_bytes(), type=HaltSwitch)
    except (OSError, msgspec.DecodeError):
        return None


def write_switch(path: Path, switch: HaltSwitch) -> None:
    """Replace the switch atomically (running guards of the home obey it from their next
    request: ``risk.generation``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, msgspec.msgpack.encode(switch))
    bump_generation(path.parent.parent)
