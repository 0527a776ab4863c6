"""``qmtkit run`` tells what went wrong in one line; ``--debug`` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qmtkit.cli import main

BAD_MARKET = "from xtquant import xtdata\nxtdata.get_trading_dates('XX', '20240101', '20240110')\n"


def script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    monkeypatch.delenv("QMTKIT_DEBUG", raising=False)
    return tmp_path / "home"


def test_a_qmtkit_error_is_one_line_naming_the_flag_for_the_traceback(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(script(tmp_path, BAD_MARKET))]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("qmtkit run: InvalidArgument: unknown market 'XX'")
    assert "--debug" in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(
    how: str,
    tmp_path: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["run", str(script(tmp_path, BAD_MARKET))]
    if how == "flag":
        args.insert(1, "--debug")
    else:
        monkeypatch.setenv("QMTKIT_DEBUG", "1")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "InvalidArgument" in err


def test_other_exceptions_keep_their_traceback(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(script(tmp_path, "raise ValueError('mine')\n"))]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: mine" in err


def test_an_xtdata_script_without_pandas_is_told_the_extra_in_one_line(tmp_path: Path) -> None:
    # pandas hidden as if `pip install .` had been run without the compat extra.
    code = (
        "import sys; sys.modules['pandas'] = None; from qmtkit.cli import main; "
        "sys.exit(main(['run', sys.argv[1]]))"
    )
    path = script(tmp_path, "from xtquant import xtdata\nprint('never')\n")
    env = {**os.environ, "QMTKIT_HOME": str(tmp_path / "home")}
    env.pop("QMTKIT_DEBUG", None)
    got = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert got.returncode == 1
    assert got.stdout == ""
    assert got.stderr.count("\n") == 1, got.stderr
    assert "pip install 'qmtkit[compat]'" in got.stderr
