"""Data-only programs share a home with a program that trades there (no journal needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HOLDER = """
import sys, anyio, qmtkit
async def main():
    async with qmtkit.connect() as qk:
        await qk.account("holder")  # takes the paper accounts' journal
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)
anyio.run(main)
"""

DATA_SCRIPT = """
from xtquant import xtdata
xtdata.download_history_data("600000.SH", "1d", "20240101", "20240131")
frames = xtdata.get_market_data_ex(["close"], ["600000.SH"], "1d", "20240101", "20240131")
print("rows", len(frames["600000.SH"]))
"""


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmtkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.fixture
def trading(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A process trading on a fresh home; yields the environment that names that home."""
    env = {**os.environ, "QMTKIT_HOME": str(tmp_path / "home")}
    for name in ("QMTKIT_BACKEND", "QMTKIT_DEBUG"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr and proc.stderr.read()
        yield env
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_data_only_script_runs_while_another_process_trades(
    trading: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "data_only.py"
    script.write_text(DATA_SCRIPT, encoding="utf-8")
    got = run(["run", str(script)], trading)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[-1] == "rows 22"


def test_download_and_bars_work_while_another_process_trades(trading: dict[str, str]) -> None:
    got = run(["download", "600000.SH", "--start", "20240101", "--end", "20240131"], trading)
    assert got.returncode == 0, got.stderr
    got = run(["bars", "600000.SH", "--start", "20240101", "--end", "20240131"], trading)
    assert got.returncode == 0, got.stderr
    assert "600000.SH" in got.stdout
