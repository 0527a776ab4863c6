"""Damage is refused, torn tails are cut: and `qmtkit journal verify|repair` for the rest."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.backends.sim.journal import MAGIC, Journal, JournalWarning
from qmtkit.cli import main
from qmtkit.errors import JournalDamaged
from qmtkit.models import AccountReport, Asset


def report(seq: int) -> AccountReport:
    asset = Asset(
        account_id="acc",
        cash=1000.0 + seq,
        frozen_cash=0.0,
        market_value=0.0,
        total_asset=1000.0 + seq,
        fetch_balance=1000.0 + seq,
    )
    return AccountReport("acc", seq, asset)


def journal_of(path: Path, bursts: int) -> list[int]:
    """Write ``bursts`` bursts of two reports; returns the byte offset where each starts."""
    starts = []
    with Journal(path) as journal:
        for i in range(bursts):
            starts.append(path.stat().st_size)
            journal.extend([report(2 * i + 1), report(2 * i + 2)])
    return starts


def test_a_zero_filled_tail_is_refused_naming_file_byte_and_repair(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    journal_of(path, 3)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bytes(4096))  # what a power loss can leave after the last write
    with pytest.raises(JournalDamaged) as info:
        Journal(path).open()
    message = str(info.value)
    assert f"{path} is damaged at byte {size}" in message
    assert "4096 zero bytes" in message and f"qmtkit journal repair {path}" in message
    assert path.stat().st_size == size + 4096  # nothing cut without the user's say


def test_a_wrong_length_mid_file_is_refused_not_taken_for_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    starts = journal_of(path, 50)
    data = bytearray(path.read_bytes())
    data[starts[10] + 2] = 0x7F  # the 11th burst's length now runs past the end of the file
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match=f"damaged at byte {starts[10]}: a record length"):
        Journal(path).open()
    assert path.read_bytes() == bytes(data)


def test_only_an_incomplete_last_write_is_cut_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    starts = journal_of(path, 3)
    with open(path, "r+b") as f:
        f.truncate(starts[2] + 11)
    torn = pytest.warns(JournalWarning, match=f"torn last record .* at byte {starts[2]}")
    with torn, Journal(path) as journal:
        assert [r.seq for r in journal.replay()] == [1, 2, 3, 4]


def test_a_record_of_length_zero_is_damage_not_an_empty_report(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    journal_of(path, 1)
    with open(path, "ab") as f:
        f.write(bytes(8) + b"\x01")  # a zero header (crc32 of nothing is 0) and one more byte
    with pytest.raises(JournalDamaged, match="length 0"):
        Journal(path).open()


def test_verify_reports_damage_and_repair_keeps_the_valid_prefix_and_the_original(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.bin"
    starts = journal_of(path, 5)
    data = bytearray(path.read_bytes())
    data[starts[3] + 12] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["journal", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED at byte {starts[3]}" in out and "6 records" in out
    assert main(["journal", "repair", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    aside = tmp_path / "journal.bin.damaged-1"
    assert f"kept 6 records ({starts[3]} of {len(data)} bytes)" in out and str(aside) in out
    assert aside.read_bytes() == bytes(data)
    assert path.read_bytes() == bytes(data[: starts[3]])
    assert main(["journal", "verify", str(path)]) == 0
    assert "OK, 6 records in 3 writes" in capsys.readouterr().out
    with Journal(path) as journal:
        assert [r.seq for r in journal.replay()] == [1, 2, 3, 4, 5, 6]


def test_repair_of_a_sound_journal_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.bin"
    journal_of(path, 2)
    before = path.read_bytes()
    assert main(["journal", "repair", str(path)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert path.read_bytes() == before and list(tmp_path.glob("*.damaged-*")) == []


def test_repair_is_refused_while_the_journal_is_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.bin"
    journal_of(path, 1)
    with Journal(path):
        assert main(["journal", "repair", str(path)]) == 2
    assert "already open in this process" in capsys.readouterr().err


def test_verify_reads_a_gateway_journal_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "reports.journal"
    with ReportJournal(path) as journal:
        for i in range(3):
            journal.record("acc", report(i + 1).item, bseq=i + 1)
        journal.sync()
    with open(path, "ab") as f:
        f.write(bytes(64))
    assert main(["journal", "verify", str(path)]) == 1
    assert "64 zero bytes" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(JournalDamaged):
            ReportJournal(path).open()


def test_verify_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", str(tmp_path / "nope.bin")]) == 2
    assert "no journal at" in capsys.readouterr().err


def test_the_header_says_which_layout(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    journal_of(path, 1)
    assert path.read_bytes()[: len(MAGIC)] == b"QMTJRNL2"
