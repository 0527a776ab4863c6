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
from support.journal_scenario import check_invariants, record_scenario, reopen_scenario


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


# A trader whose journal file dies at its N-th write(2): the first ``keep`` bytes of that write
# reach the file (0 = none, a torn write otherwise), then the process SIGKILLs itself.
_KILLED_AT_WRITE = """
import io, os, signal, sys, anyio
sys.path.insert(0, {tests!r})
import qmtkit.recordlog
from support.journal_scenario import record_scenario
from pathlib import Path

home, seed = Path(sys.argv[1]), int(sys.argv[2])
kill_at, keep = int(sys.argv[3]), float(sys.argv[4])
writes = 0

class Dying(io.FileIO):
    def write(self, data):
        global writes
        writes += 1
        if writes == kill_at:
            cut = int(len(data) * keep)
            if cut:
                super().write(bytes(memoryview(data)[:cut]))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().write(data)

def dying_open(path, mode="r", *args, **kwargs):
    if not str(path).endswith("journal.bin") or mode != "a+b":
        return open(path, mode, *args, **kwargs)
    return io.BufferedRandom(Dying(path, "a+"))

qmtkit.recordlog.open = dying_open  # the record log opens its file through this name
anyio.run(lambda: record_scenario(home, seed=seed, orders=60))
print(writes)
"""


def _trade_until_write(tests: str, home: Path, seed: int, kill_at: int, keep: float) -> int:
    """Run the dying trader; its return code (-9 once killed, 0 if it had fewer writes)."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AT_WRITE.format(tests=tests), str(home), str(seed),
         str(kill_at), str(keep)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode in (0, -9), proc.stderr
    return proc.returncode


def test_a_kill_at_the_nth_write_leaves_sound_accounts_for_every_n(tmp_path: Path) -> None:
    tests = str(Path(__file__).resolve().parents[1])
    rng = random.Random(5)
    # A run that is never killed says how many writes the scenario makes.
    whole = tmp_path / "whole"
    assert _trade_until_write(tests, whole, 3, 10**9, 0.0) == 0
    with Journal(next(whole.glob("sim/*/journal.bin"))) as j:
        full = list(j.replay())
    check_invariants(full)
    killed = 0
    for n in range(1, 10**6):
        home = tmp_path / f"n{n}"
        keep = rng.choice((0.0, rng.random()))  # before the write, or torn inside it
        if _trade_until_write(tests, home, 3, n, keep) == 0:
            break  # the scenario made fewer than n writes: every one has been tried
        killed += 1
        (journal,) = home.glob("sim/*/journal.bin")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a torn tail is cut with a warning
            with Journal(journal) as j:
                reports = list(j.replay())
        assert reports == full[: len(reports)], f"killed at write {n}: not a prefix of the run"
        check_invariants(reports)
        # ... and a simulator reopens its accounts from it on a later day.
        anyio.run(reopen_scenario, home)
        with Journal(journal) as j:
            check_invariants(list(j.replay()))
    print(f"\nkilled at each of {killed} write(2) calls of the journal; every reopen was sound")
    assert killed > 20
