"""The README's examples run as written (against the simulator, in a fresh home)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def run(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "QMTKIT_HOME": str(home)},
    )


def test_the_readme_gives_the_two_set_up_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "python -m pip install . && python -m qmtkit demo" in text
    assert 'python -m pip install -e ".[test]" && python -m pytest -q' in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert 'python -m pip install -q -e ".[test]" && python -m pytest -q' in ci


def test_the_async_example_buys_and_prints_the_account(tmp_path: Path) -> None:
    got = run(python_blocks()[0], tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "SUCCEEDED 1000"
    assert lines[1] == "600000.SH 1000 0"
    assert lines[2].startswith("Asset(")


def test_the_data_example_runs_as_written_and_prints_weekly_bars(tmp_path: Path) -> None:
    got = run(python_blocks()[1], tmp_path)
    assert got.returncode == 0, got.stderr
    assert "shape: (3," in got.stdout
    assert "600000.SH" in got.stdout or "000001.SZ" in got.stdout


def test_the_shim_install_names_the_extra_that_brings_pandas() -> None:
    text = README.read_text(encoding="utf-8")
    assert 'python -m pip install ".[compat]" && qmtkit run my_xtquant_script.py' in text
    pyproject = (README.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^compat = \["pandas>=', pyproject, re.M)
