"""Long journal probes (``nox -s stress``): every byte of a recorded journal, and real SIGKILLs."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import warnings
from pathlib import Path

import anyio

from qmtkit.backends.sim.journal import MAGIC, Journal
from support.journal_scenario import check_invariants, record_scenario


def test_a_cut_at_every_byte_of_a_recorded_journal_reopens_sound(tmp_path: Path) -> None:
    path = anyio.run(lambda: record_scenario(tmp_path / "rec", seed=11, orders=40))
    data = path.read_bytes()
    home = tmp_path / "cut"
    home.mkdir()
    cut_path = home / "journal.bin"
    whole: list[object] | None = None
    for cut in range(len(data), len(MAGIC) - 1, -1):
        cut_path.write_bytes(data[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Journal(cut_path) as journal:
                reports = list(journal.replay())
        if whole is None:
            whole = list(reports)
        assert reports == whole[: len(reports)], f"cut at {cut}"
        check_invariants(reports)


_TRADER = """
import sys, anyio
sys.path.insert(0, {tests!r})
from support.journal_scenario import record_scenario
from pathlib import Path
seed = int(sys.argv[2])
for k in range(1000):  # until killed
    anyio.run(lambda: record_scenario(Path(sys.argv[1]) / str(k), seed=seed + k, orders=400))
"""


def test_sigkill_at_random_moments_leaves_sound_accounts(tmp_path: Path) -> None:
    rng = random.Random(10)
    tests = str(Path(__file__).resolve().parents[1])
    for round_ in range(25):
        home = tmp_path / f"run{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-c", _TRADER.format(tests=tests), str(home), str(round_)],
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(1.5, 4.0))
        proc.kill()
        proc.wait()
        for journal in sorted(home.glob("*/sim/default/journal.bin")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Journal(journal) as j:
                    check_invariants(list(j.replay()))
