"""docs/data.md's "Real data in ten minutes" runs as written, against the fake baostock.

The ``qmtkit`` lines of its shell block run through the console command's ``main`` in this
process (the pip line is skipped: the fake stands in for the installed package); the Python
block runs as written. Expected values come from the fake's rows.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from bsfake import FAKE_DIR, fake_module, raw_daily
from qmtkit.cli import main
from qmtkit.data.api import MarketData

DOC = Path(__file__).resolve().parents[1] / "docs" / "data.md"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Real data in ten minutes")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture
def bs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QMTKIT_BAOSTOCK_RATE", "1000000")
    monkeypatch.chdir(tmp_path)
    return fake_module()


async def _no_backend(req: object) -> object:
    raise AssertionError(req)


def test_the_shell_walkthrough_runs(
    bs: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shell,) = re.findall(r"```bash\n(.*?)```", section(), re.S)
    lines = [ln for ln in shell.splitlines() if ln.startswith("qmtkit ")]
    assert len(lines) == 5
    for line in lines:
        assert main(shlex.split(line)[1:]) == 0, line
    out = capsys.readouterr().out
    assert "1d: 1024 rows in 2 files" in out  # two codes x 512 days, years 2023 and 2024
    md = MarketData(_no_backend, tmp_path / "home")  # type: ignore[arg-type]
    got = md.read_bars("000001.SZ", "1d")
    assert got["close"].to_list() == raw_daily(bs, "sz.000001")["close"].tolist()
    assert md.cache.codes("5m") == ["600000.SH"]
    export = pl.scan_parquet(
        tmp_path / "qk-export" / "period=*/**/*.parquet", hive_partitioning=True
    )
    assert export.select(pl.len()).collect().item() == 1024


def test_the_python_walkthrough_runs(bs: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", section(), re.S)
    exec(compile(code, "data.md walkthrough", "exec"), {"__name__": "__walkthrough__"})
    out = capsys.readouterr().out
    assert "600000.SH" in out and "2024-12-29" in out  # the last week, labelled on its Sunday
