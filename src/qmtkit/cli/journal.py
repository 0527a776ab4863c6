"""``qmtkit journal verify|repair PATH``: check a journal, or keep its longest valid prefix.

Both kinds of journal are recognised by their content: the simulator's account journal
(``journal.bin`` in a terminal's directory, header ``QMTJRNL``) and the gateway's report
journal (``gateway/reports.journal`` under its home). ``PATH`` may be the file or the
directory holding ``journal.bin``. ``verify`` changes nothing and exits 0 when the journal
opens as it is (a torn last write is cut away on open), 1 when it is damaged; ``repair`` keeps
the records before the damage and moves the damaged file aside, never deleting it (refused
while a process has the journal open).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qmtkit.errors import QmtkitError
from qmtkit.models import AccountReport
from qmtkit.recordlog import RecordLog

__all__ = ["add_subcommands", "open_log"]


def open_log(path: Path) -> RecordLog[Any]:
    """A (closed) ``RecordLog`` over the journal at ``path``, of the kind its header says."""
    from qmtkit.backends.hub import journal as gateway
    from qmtkit.backends.sim import journal as sim

    if path.is_dir():
        path = path / "journal.bin"
    if not path.is_file():
        raise FileNotFoundError(f"no journal at {path}: name the journal file")
    with open(path, "rb") as f:
        head = f.read(len(sim.MAGIC))
    if head[:7] == sim.MAGIC[:7]:
        return RecordLog(
            path,
            AccountReport,
            framing=sim.FRAMING,
            kind="journal",
            lock_path=path.parent / sim.LOCK_NAME,
            lock_hint="stop the program using this simulator terminal first",
        )
    return RecordLog(
        path,
        gateway.JournalEntry,
        framing=gateway.FRAMING,
        kind="gateway journal",
        lock_hint="stop the gateway first",
    )


def _verify(args: argparse.Namespace) -> int:
    try:
        log = open_log(Path(args.path))
        checked = log.verify()
    except (OSError, QmtkitError) as exc:
        print(f"qmtkit journal verify: {exc}", file=sys.stderr)
        return 2
    good = f"{checked.records} records in {checked.frames} writes, {checked.end} bytes"
    damage = checked.damage
    if damage is None:
        print(f"{log.path}: OK, {good}")
        return 0
    if damage.torn:
        print(
            f"{log.path}: {good}, then {damage.reason} at byte {damage.at} (a write cut short "
            "by a crash; cut away when the journal is next opened)"
        )
        return 0
    print(
        f"{log.path}: DAMAGED at byte {damage.at}: {damage.reason}. Before it: {good}. "
        f"`qmtkit journal repair {log.path}` keeps those and moves the damaged file aside"
    )
    return 1


def _repair(args: argparse.Namespace) -> int:
    try:
        log = open_log(Path(args.path))
        done = log.repair()
    except (OSError, QmtkitError) as exc:
        print(f"qmtkit journal repair: {exc}", file=sys.stderr)
        return 2
    checked = done.scan
    if done.aside is None:
        print(f"{log.path}: nothing to repair ({checked.records} records, {checked.end} bytes)")
        return 0
    print(
        f"{log.path}: kept {checked.records} records ({checked.end} of {done.size} bytes); "
        f"the file as it was is kept as {done.aside}"
    )
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add ``journal verify`` and ``journal repair`` to an argparse ``add_subparsers()``."""
    journal = subparsers.add_parser("journal", help="check or repair a journal file")
    sub = journal.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="check a journal without changing it")
    verify.add_argument("path", help="the journal file (or a simulator terminal's directory)")
    verify.set_defaults(func=_verify)
    repair = sub.add_parser(
        "repair", help="keep a damaged journal's valid records; the damaged file is kept aside"
    )
    repair.add_argument("path", help="the journal file (or a simulator terminal's directory)")
    repair.set_defaults(func=_repair)
