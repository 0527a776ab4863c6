"""The account journal: ordered replay, torn-tail repair and one owner at a time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qmtkit.backends.sim.journal import LOCK_NAME, MAGIC, Journal, JournalWarning
from qmtkit.errors import CacheError, ClosedError, InvalidArgument, JournalDamaged, JournalLocked
from qmtkit.models import AccountReport, Asset, Order

SRC = str(Path(__file__).resolve().parents[1] / "src")


def report(seq: int, account: str = "A1") -> AccountReport:
    """A distinct report per ``seq``."""
    if seq % 2:
        item: Asset | Order = Asset(
            account_id=account,
            cash=1000.0 + seq,
            frozen_cash=0.5 * seq,
            market_value=0.0,
            total_asset=1000.0 + 1.5 * seq,
            fetch_balance=1000.0 + seq,
        )
    else:
        item = Order(
            account_id=account,
            stock_code="600000.SH",
            order_id=seq,
            order_type=23,
            order_volume=100 * seq,
            price_type=11,
            price=10.01,
            order_status=50,
            order_remark="备注",
        )
    return AccountReport(account, seq, item)


def test_replay_returns_reports_in_append_order(tmp_path: Path) -> None:
    reports = [report(i, "A1" if i % 3 else "B2") for i in range(1, 21)]
    with Journal(tmp_path / "journal.bin") as j:
        for r in reports:
            j.append(r)
        assert list(j.replay()) == reports


def test_reports_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "term" / "journal.bin"
    with Journal(path) as j:
        j.append(report(1))
    with Journal(path, fsync=True) as j:
        j.append(report(2))
        assert list(j.replay()) == [report(1), report(2)]
    assert path.read_bytes().startswith(MAGIC)


def test_empty_journal_replays_nothing(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.bin") as j:
        assert list(j.replay()) == []


def _write(path: Path, n: int) -> int:
    """Journal ``n`` reports; returns the file size."""
    with Journal(path) as j:
        for i in range(1, n + 1):
            j.append(report(i))
    return path.stat().st_size


@pytest.mark.parametrize("cut", [1, 5, 8, 20])
def test_torn_last_record_is_cut_away_with_a_warning(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "journal.bin"
    size = _write(path, 3)
    with open(path, "r+b") as f:
        f.truncate(size - cut)  # a crash in the middle of the third append
    with pytest.warns(JournalWarning, match="torn last record"), Journal(path) as j:
        assert list(j.replay()) == [report(1), report(2)]
        j.append(report(3))
    with Journal(path) as j:
        assert list(j.replay()) == [report(1), report(2), report(3)]


def test_a_garbled_last_record_of_full_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    size = _write(path, 2)
    with open(path, "r+b") as f:
        f.seek(size - 3)
        f.write(b"\xff\xff\xff")
    with pytest.raises(JournalDamaged, match="checksum"):
        Journal(path).open()


def test_torn_header_is_repaired(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    path.write_bytes(MAGIC[:3])
    with pytest.warns(JournalWarning), Journal(path) as j:
        j.append(report(1))
        assert list(j.replay()) == [report(1)]


def test_damage_before_the_last_record_raises(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    _write(path, 3)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF  # inside the first payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match="damaged at byte 8"):
        Journal(path).open()
    # the refusal released the lock and changed nothing
    assert path.read_bytes() == bytes(data)
    with pytest.raises(CacheError):
        Journal(path).open()


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    path.write_bytes(b"hello world, not a journal")
    with pytest.raises(CacheError, match="not a qmtkit journal"):
        Journal(path).open()


def test_append_needs_an_open_journal(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.bin")
    with pytest.raises(ClosedError, match="not open"):
        j.append(report(1))
    with pytest.raises(ClosedError):
        list(j.replay())


def test_append_takes_only_account_reports(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.bin") as j:
        with pytest.raises(InvalidArgument, match="got Asset"):
            j.append(report(1).item)  # type: ignore[arg-type]
        assert list(j.replay()) == []


def test_bad_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="journal path"):
        Journal(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="LOCK"):
        Journal(tmp_path / LOCK_NAME)


def test_lock_file_names_the_holder(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.bin"):
        text = (tmp_path / LOCK_NAME).read_text()
        assert f"pid {os.getpid()}" in text
        assert f"host {socket.gethostname()}" in text


def test_same_process_cannot_open_twice(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    with Journal(path):
        with pytest.raises(JournalLocked) as info:
            Journal(path).open()
        msg = str(info.value)
        assert str(os.getpid()) in msg and LOCK_NAME in msg and "qmtkit serve" in msg
    # released on close
    with Journal(path) as j:
        assert j.is_open


def _child(code: str, journal: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    header = (
        "import sys\n"
        "from pathlib import Path\n"
        "from qmtkit.backends.sim.journal import Journal\n"
        "from qmtkit.errors import JournalLocked\n"
        f"path = Path({str(journal)!r})\n"
    )
    script = header + textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_another_process_is_refused_while_we_hold_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    with Journal(path):
        child = _child(
            """
            try:
                Journal(path).open()
                print("OPENED")
            except JournalLocked as e:
                print("LOCKED", e)
            """,
            path,
        )
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.startswith("LOCKED")
    assert f"pid {os.getpid()}" in out and str(tmp_path) in out


def test_we_are_refused_while_another_process_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    child = _child(
        "j = Journal(path).open(); print('READY', flush=True); sys.stdin.readline(); j.close()",
        path,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "READY"
        with pytest.raises(JournalLocked, match=f"pid {child.pid} on host"):
            Journal(path).open()
        child.stdin.write("done\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # the child let go: now it is ours
    with Journal(path) as j:
        assert list(j.replay()) == []
