"""The docs say what the code does: their snippets run, their figures and references hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qmtkit import __version__
from qmtkit.backends.sim.universe import Universe

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def run(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QMTKIT_HOME": str(home)}
    env.pop("QMTKIT_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
        env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("page", "url"),
    [
        ("backends.md", "xtquant://D:/qmt/userdata_mini?session=123456"),
        ("deploy.md", "qmtkit://gw.example.lan:58610?tls=1&cafile=/etc/qmtkit/gateway-cert.pem"),
    ],
)
def test_the_order_examples_buy_at_a_market_price(page: str, url: str, tmp_path: Path) -> None:
    # The venue is the page's own (a MiniQMT, a gateway); the simulator stands in for it.
    [block] = [b for b in python_blocks(ROOT / "docs" / page) if url in b]
    assert not re.search(r"\.buy\([^)]*\d+\.\d+\)", block), "a fixed price in the example"
    got = run(block.replace(url, "sim://"), tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split()[0] == "SUCCEEDED"


def test_no_doc_buys_at_a_fixed_price() -> None:
    fixed = [
        f"{page.name}: {line.strip()}"
        for page in PAGES
        for block in python_blocks(page)
        for line in block.splitlines()
        if re.search(r"\.(buy|sell)\([^)]*,\s*\d+\.\d+\)", line)
    ]
    assert not fixed, fixed


def test_every_universe_figure_is_the_simulators_count() -> None:
    size = len(list(Universe(20240101)))
    pattern = re.compile(r"(~?\d{3}) (?:listed |made-up )?codes")
    figures = {
        (page.name, m.group(1))
        for page in PAGES
        for m in pattern.finditer(page.read_text(encoding="utf-8"))
        if "universe" in page.read_text(encoding="utf-8")[max(0, m.start() - 400) : m.end()]
        or "simulator" in page.read_text(encoding="utf-8")[max(0, m.start() - 400) : m.end()]
    }
    assert figures, "no universe figure found"
    assert {f for _, f in figures} == {str(size)}, figures


def test_docs_cite_only_files_that_exist() -> None:
    cited = {
        (page.name, ref)
        for page in PAGES
        for ref in re.findall(
            r"`?((?:docs|tests|benchmarks)/[\w./-]+\.(?:md|py))`?", page.read_text()
        )
    }
    assert cited, "no file references found"
    missing = [c for c in cited if not (ROOT / c[1]).exists()]
    assert not missing, missing
    assert "card" not in (ROOT / "docs" / "architecture.md").read_text().lower()


def test_deploy_installs_from_the_source_tree_or_a_wheel_of_this_version() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "pip install qmtkit\n" not in text
    assert "python -m pip wheel --no-deps -w dist ." in text
    assert f"qmtkit-{__version__}-py3-none-any.whl" in text


def test_the_compat_install_snippet_runs(tmp_path: Path) -> None:
    [block] = [b for b in python_blocks(ROOT / "docs" / "compat.md") if "install()" in b]
    got = run(block + "print(xtdata.__name__, XtQuantTrader.__name__)\n", tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["qmtkit.compat.xtdata", "XtQuantTrader"]


def test_the_busy_polling_snippet_runs(tmp_path: Path) -> None:
    url = "qmtkit://gw:58610?token=..."
    [block] = [b for b in python_blocks(ROOT / "docs" / "deploy.md") if "busy_poll_us=200" in b]
    code = block.replace(url, "sim://").replace("        ...\n", "        print(qk.info.kind)\n")
    got = run(code, tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "sim"
