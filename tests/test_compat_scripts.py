"""Unchanged xtquant example scripts run under ``qmtkit run`` against the simulator.

Each script runs in a subprocess through ``qmtkit.compat.runner.run_script`` with its own
``QMTKIT_HOME``; scripts that block (``run_forever`` / ``xtdata.run``) are interrupted with
SIGINT once their output shows they are up, and must exit cleanly.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "scripts"
TIMEOUT = 60.0
RUN = (
    "import sys; from qmtkit.compat.runner import run_script; "
    "sys.exit(run_script(sys.argv[1], sys.argv[2:]))"
)

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGINT delivery to a child differs on Windows"
)


class Proc:
    """A script under ``run_script`` whose stdout lines can be awaited.

    ``clock`` pins the simulator's start (``QMTKIT_CLOCK``) for scripts that trade at fixed
    prices, which are valid only on the days whose limits contain them.
    """

    def __init__(self, script: Path, home: Path, *args: str, clock: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "QMTKIT_BACKEND"}
        env["QMTKIT_HOME"] = str(home)
        if clock is not None:
            env["QMTKIT_CLOCK"] = clock
        env["PYTHONUNBUFFERED"] = "1"
        self.p = subprocess.Popen(
            [sys.executable, "-c", RUN, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.queues: dict[str, queue.Queue[str | None]] = {
            "out": queue.Queue(),
            "err": queue.Queue(),
        }
        self.seen: dict[str, list[str]] = {"out": [], "err": []}
        self._readers = [
            threading.Thread(target=self._read, args=(self.p.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.p.stderr, "err"), daemon=True),
        ]
        for r in self._readers:
            r.start()

    def _read(self, stream: Any, name: str) -> None:
        for line in stream:
            self.queues[name].put(line.rstrip("\n"))
        self.queues[name].put(None)

    def wait_for(self, pattern: str, stream: str = "out") -> str:
        """Block until a line of ``stream`` matches ``pattern`` (the process is killed if never)."""
        deadline = time.monotonic() + TIMEOUT
        rx = re.compile(pattern)
        q = self.queues[stream]
        while time.monotonic() < deadline:
            try:
                line = q.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                q.put(None)
                break
            self.seen[stream].append(line)
            if rx.search(line):
                return line
        self.p.kill()
        raise AssertionError(f"{pattern!r} never printed on std{stream}: {self.seen}")

    def finish(self, interrupt: bool = False) -> tuple[int, list[str], str]:
        """Optionally send SIGINT, wait for the exit; (exit code, stdout lines, stderr text)."""
        if interrupt:
            self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        for r in self._readers:
            r.join(TIMEOUT)
        for name, q in self.queues.items():
            while not q.empty():
                line = q.get_nowait()
                if line is not None:
                    self.seen[name].append(line)
        return rc, self.seen["out"], "\n".join(self.seen["err"])


#: A day on which 600000.SH's limits (10.14-12.40) admit the quick start's fixed 10.50 buy,
#: below the ask so that it rests and can be canceled.
QUICKSTART_DAY = "20261026"


def test_trader_quick_start_runs_and_ctrl_c_exits_cleanly(tmp_path: Path) -> None:
    proc = Proc(SCRIPTS / "trader_quickstart.py", tmp_path, clock=QUICKSTART_DAY)
    proc.wait_for(r"^query position:$")
    proc.wait_for(r"run_forever\(\): receiving pushes", "err")
    rc, out, err = proc.finish(interrupt=True)
    assert rc == 0, err
    text = "\n".join(out)
    assert out[:3] == ["demo test", "0", "0"]  # connect() and subscribe(): nothing pushed yet
    # Callbacks print from their own thread, so their writes may land between (or inside) the
    # main thread's lines, as with xtquant; check what each single write proves.
    pos = 0
    for phrase in (
        "demo test", "order using the fix price:", "cancel order:", "order using async api:",
        "query asset:", "query order:", "query orders:", "query trade:", "query positions:",
        "query position:",
    ):  # fmt: skip
        found = text.find(phrase, pos)
        assert found >= 0, f"{phrase!r} missing or out of order in {text!r}"
        pos = found + len(phrase)
    assert re.search(r"cash \d+\.\d+", text)
    assert re.search(r"order [1-9]", text)  # query_stock_order found the order
    # The counts are printed in several writes; the messages printed only when a list is not
    # empty are single writes.
    assert "last order:" in text and "600000.SH 200 10.5" in text  # the last of today's orders
    assert "last trade:" not in text and "last position:" not in text  # nothing filled
    assert text.count("on order callback:") >= 3  # reported, canceled, second reported
    assert "on asset callback" in text
    assert "Traceback" not in err


def test_data_download_example_prints_the_daily_history(tmp_path: Path) -> None:
    rc, out, err = Proc(SCRIPTS / "data_download.py", tmp_path).finish()
    assert rc == 0, err
    text = "\n".join(out)
    assert "{'000001.SZ':" in text
    assert re.search(r"\[\d{3,} rows x 11 columns\]", text)
    assert re.search(r"^\d{8}\s+\d{13}\s", text, re.M)  # 'YYYYMMDD' index, ms time column
    assert (tmp_path / "data").is_dir()


def test_data_subscribe_example_calls_back_and_ctrl_c_exits_cleanly(tmp_path: Path) -> None:
    proc = Proc(SCRIPTS / "data_subscribe.py", tmp_path)
    proc.wait_for(r"rows x 11 columns")
    proc.wait_for(r"xtdata.run\(\): receiving", "err")
    rc, out, err = proc.finish(interrupt=True)
    assert rc == 0, err
    assert any(line.startswith("{'000001.SZ':") for line in out)


def test_trader_order_example_places_an_order(tmp_path: Path) -> None:
    rc, out, err = Proc(SCRIPTS / "trader_order.py", tmp_path).finish()
    assert rc == 0, err
    # The order callback prints from its own thread and may interleave with the main print.
    assert re.search(r"下单成功，订单号: [1-9]\d*", "\n".join(out)), out


def test_datacenter_example_listens_on_its_port(tmp_path: Path) -> None:
    rc, out, err = Proc(SCRIPTS / "datacenter_port.py", tmp_path).finish()
    assert rc == 0, err
    assert out == ["服务启动，开放端口：58601"]


def test_datacenter_vip_example_connects_xtdata_through_the_gateway(tmp_path: Path) -> None:
    proc = Proc(SCRIPTS / "datacenter_vip.py", tmp_path)
    proc.wait_for("连接成功")
    proc.wait_for(r"xtdata.run\(\): receiving", "err")
    rc, out, err = proc.finish(interrupt=True)
    assert rc == 0, err
    assert "service: remote" in "\n".join(out)


def test_two_paths_are_two_independent_terminals(tmp_path: Path) -> None:
    rc, out, err = Proc(SCRIPTS / "two_terminals.py", tmp_path).finish()
    assert rc == 0, err
    assert out == [
        "A orders: 1",
        "typo order: -1",
        "A accounts: ['1000000365']",
        "B orders: 0",
        "A again: 1",
    ]


def test_script_arguments_exit_codes_and_untouched_stdout(tmp_path: Path) -> None:
    rc, out, err = Proc(SCRIPTS / "argv_exit.py", tmp_path, "x", "--flag", "3").finish()
    assert (rc, out) == (3, ["argv_exit.py ['x', '--flag', '3']", "main"])
    rc, out, err = Proc(SCRIPTS / "argv_exit.py", tmp_path, "raise").finish()
    assert rc == 1 and "RuntimeError: asked to fail" in err
    rc, out, err = Proc(tmp_path / "missing.py", tmp_path).finish()
    assert rc == 2 and "no such script" in err
