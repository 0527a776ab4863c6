"""``qmtkit demo`` runs an async strategy end to end on the simulator."""

from __future__ import annotations

import os
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


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QMTKIT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "qmtkit.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_download_then_bars_prints_the_cached_table(tmp_path: Path) -> None:
    got = run_cli("download", "600000.SH", "--period", "1d", "--start", "20240101", home=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "fetched" in got.stdout
    shown = run_cli(
        "bars", "600000.SH", "--period", "1w", "--count", "3", "--adjust", "front", home=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("600000.SH") == 3
    info = run_cli("cache", "info", home=tmp_path)
    assert "1d: 1 codes" in info.stdout
    assert run_cli("cache", "verify", home=tmp_path).stdout.strip() == "cache OK"


def test_a_bad_code_on_the_command_line_names_it_and_fails(tmp_path: Path) -> None:
    got = run_cli("download", "60000.SH", home=tmp_path)
    assert got.returncode != 0
    assert "60000.SH" in got.stderr
