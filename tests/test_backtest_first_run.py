"""A process's first backtest pays for no module it does not use: the risk layer tells a
shared terminal's backend apart without importing the terminal (and with it the hub, the
gateway and the wire protocol)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

_SCRIPT = """
import sys
from pathlib import Path
from support.marks_replay import run_small_backtest
unused = ["qmtkit.backends.terminal.backend", "qmtkit.backends.hub.gateway", "qmtkit.wire"]
assert not [m for m in unused if m in sys.modules], "imported before the run"
run_small_backtest(Path(sys.argv[1]))
print(",".join(m for m in unused if m in sys.modules) or "none")
"""


def test_a_backtest_imports_no_terminal_hub_or_wire_module(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
