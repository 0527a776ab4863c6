"""The guard's poll of halt switches: one look at the directory while nothing new is there."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from qmtkit.atomicfile import write_atomically
from qmtkit.backends.mock import MockBackend
from qmtkit.risk import RiskLimits, TradingState
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.guard import RiskGuard
from qmtkit.risk.journal import HaltSwitch, switch_path

LIMITED = [f"acct{i}" for i in range(20)]
IDLE = [f"idle{i}" for i in range(20)]
LONG_AGO = 1_600_000_000  # a directory mtime well in the past (Unix seconds)


def _guard(home: Path) -> RiskGuard:
    limits = RiskLimits(max_order_volume=1_000)
    guard = RiskGuard(MockBackend(), RiskConfig(accounts=dict.fromkeys(LIMITED, limits)), home=home)
    guard.dir.mkdir(parents=True)
    for account_id in LIMITED + IDLE:
        guard.engine(account_id)  # an engine for the limited ones, none for the idle ones
    return guard


def _settle(directory: Path) -> None:
    """Date the directory (or a file) long ago, as if nothing had touched it for years."""
    os.utime(directory, (LONG_AGO, LONG_AGO))


def _stamped(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths the guard stamps from now on."""
    seen: list[Path] = []
    stamp = RiskGuard._stamp

    def counting(path: Path) -> tuple[int, int, int] | None:
        seen.append(path)
        return stamp(path)

    monkeypatch.setattr(RiskGuard, "_stamp", staticmethod(counting))
    return seen


def test_a_settled_directory_without_switches_is_one_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = _guard(tmp_path)
    _settle(guard.dir)
    assert guard._scan_switches() == []  # the first look reads every account's file
    seen = _stamped(monkeypatch)
    assert guard._scan_switches() == []
    assert seen == [guard.dir]


def test_a_directory_changed_just_now_is_looked_at_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = _guard(tmp_path)
    (guard.dir / "unrelated").write_bytes(b"")  # the directory's mtime is now
    guard._scan_switches()
    seen = _stamped(monkeypatch)
    guard._scan_switches()
    # Not settled yet: a write within the same tick of the file-system clock would not show.
    assert len(seen) == 1 + len(LIMITED) + len(IDLE)


@pytest.mark.parametrize("account_id", [LIMITED[3], IDLE[5]])
def test_a_switch_file_made_after_a_settled_look_is_obeyed(tmp_path: Path, account_id: str) -> None:
    guard = _guard(tmp_path)
    _settle(guard.dir)
    guard._scan_switches()
    # Renamed in whole without moving the home's mark: only the directory says so.
    halt = msgspec.msgpack.encode(HaltSwitch(halted=True, reason="copied in"))
    write_atomically(switch_path(guard.dir, account_id), halt)
    assert guard._scan_switches() == [account_id]
    assert guard.state(account_id) is TradingState.HALTED


def test_a_switch_file_rewritten_in_place_is_still_seen(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    path = switch_path(guard.dir, LIMITED[0])
    path.write_bytes(msgspec.msgpack.encode(HaltSwitch(halted=False, reason="fine")))
    _settle(guard.dir)
    guard._scan_switches()
    assert guard.state(LIMITED[0]) is TradingState.ACTIVE
    with path.open("r+b") as f:  # the same file, so the directory does not change
        f.write(msgspec.msgpack.encode(HaltSwitch(halted=True, reason="edited in place")))
    _settle(path)
    _settle(guard.dir)
    assert guard._scan_switches() == [LIMITED[0]]
    assert guard.state(LIMITED[0]) is TradingState.HALTED
