"""``qmtkit demo`` runs an async strategy end to end on the simulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_fills_cancels_and_refuses_orders_and_prints_the_account(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qmtkit.cli", "demo", "--seconds", "3", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "buy      -> SUCCEEDED" in out
    assert "rest     -> CANCELED" in out
    assert "odd lot  -> JUNK" in out
    assert "T+1      -> JUNK" in out
    assert "trade" in out and "REFUSED" in out
    assert "account at the end" in out
    assert (tmp_path / "sim" / "default" / "journal.bin").exists()


def test_the_console_command_without_a_sub_command_prints_help_and_fails() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qmtkit.cli"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "demo" in proc.stderr
