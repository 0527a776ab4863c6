"""Pinning the date for one simulator: ``sim://?clock_start=``, beside ``$QMTKIT_CLOCK``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qmtkit.backends.sim import SimBackend
from qmtkit.clock import (
    SessionClock,
    StrictClock,
    parse_pinned_start,
    trading_day_of,
    wall_ms,
)
from qmtkit.errors import InvalidArgument


def test_clock_start_pins_the_simulators_day() -> None:
    backend = SimBackend.from_url("sim://?clock_start=20270104")
    assert isinstance(backend.clock, SessionClock)
    assert trading_day_of(backend.clock.now_ms()) == 20270104
    assert backend.clock.now_ms() >= parse_pinned_start("20270104")


def test_clock_start_works_with_the_strict_clock_and_a_time() -> None:
    backend = SimBackend.from_url("sim://?clock=strict&clock_start=2030-06-28T10:00:00%2B08:00")
    assert isinstance(backend.clock, StrictClock)
    assert backend.clock.is_open()  # 10:00 Beijing on a Friday


@pytest.mark.parametrize("bad", ["tomorrow", "2027-13-01", "2027"])
def test_a_bad_clock_start_is_refused_naming_the_forms(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=r"clock_start.*YYYYMMDD"):
        SimBackend.from_url(f"sim://?clock_start={bad}")


def test_a_pinned_session_clock_runs_on_from_its_start() -> None:
    start = parse_pinned_start("20261231")
    clock = SessionClock(start)
    first = clock.now_ms()
    assert start <= first <= clock.now_ms() < start + 60_000


def test_a_session_clock_takes_qmtkit_clock_when_it_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QMTKIT_CLOCK", "20270104")
    before = SessionClock()
    assert trading_day_of(before.now_ms()) == trading_day_of(wall_ms()) == 20270104
    monkeypatch.setenv("QMTKIT_CLOCK", "20300628")
    after = SessionClock()
    assert trading_day_of(after.now_ms()) == trading_day_of(wall_ms()) == 20300628
    assert trading_day_of(before.now_ms()) == 20270104  # read once, when it was made
    monkeypatch.delenv("QMTKIT_CLOCK")
    assert abs(SessionClock().now_ms() - time.time_ns() // 10**6) < 60_000  # the system's


def test_qmtkit_clock_moves_a_script_under_qmtkit_run(tmp_path: Path) -> None:
    # docs/backends.md: `QMTKIT_CLOCK=20270104 qmtkit run my_xtquant_script.py`
    script = tmp_path / "today.py"
    script.write_text(
        "from xtquant import xtdata\n"
        "xtdata.enable_hello = False\n"
        "ms = xtdata.get_market_last_trade_date('SH')\n"
        "import datetime as dt\n"
        "print(dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=8))).date())\n",
        encoding="utf-8",
    )
    env = {**os.environ, "QMTKIT_CLOCK": "20270104", "QMTKIT_HOME": str(tmp_path / "home")}
    env.pop("QMTKIT_BACKEND", None)
    got = subprocess.run(
        [sys.executable, "-m", "qmtkit", "run", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "2027-01-04"
