"""XtQuantTrader sessions on the shared simulator: many traders, one terminal, one holder per id."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from qmtkit.backends.terminal.control import TerminalState, TerminalStatus, control
from qmtkit.backends.terminal.paths import paths_of
from qmtkit.compat import xtconstant
from qmtkit.compat.xttrader import XtQuantTrader, XtQuantTraderCallback
from qmtkit.compat.xttype import StockAccount

PATH = "/qmt/userdata_mini"
WAIT = 20.0


class Orders(XtQuantTraderCallback):
    """Collects the order pushes a trader receives."""

    def __init__(self) -> None:
        self.order_ids: list[int] = []
        self.seen = threading.Event()

    def on_stock_order(self, order: object) -> None:
        self.order_ids.append(order.order_id)  # type: ignore[attr-defined]
        self.seen.set()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path))
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    return tmp_path


def _trader(session: int, callback: XtQuantTraderCallback | None = None) -> XtQuantTrader:
    trader = XtQuantTrader(PATH, session, callback)
    trader.start()
    return trader


def test_traders_with_their_own_sessions_each_connect_and_get_their_accounts_pushes(
    home: Path,
) -> None:
    seen_a, seen_b = Orders(), Orders()
    a, b = _trader(101, seen_a), _trader(102, seen_b)
    try:
        assert a.connect() == 0 and b.connect() == 0
        acc = StockAccount("s-acct")
        assert a.subscribe(acc) == 0 and b.subscribe(acc) == 0
        detail = a.query_stock_asset(acc)
        assert detail is not None
        oid = b.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.LATEST_PRICE, 0)
        assert oid > 0
        assert seen_a.seen.wait(WAIT) and seen_b.seen.wait(WAIT)
        assert oid in seen_a.order_ids and oid in seen_b.order_ids
    finally:
        a.stop()
        b.stop()


def test_a_session_id_in_use_is_refused_and_free_again_once_stopped(home: Path) -> None:
    first = _trader(7)
    try:
        assert first.connect() == 0
        assert _trader(7).connect() == -1  # the same id while it is live
    finally:
        first.stop()
    again = _trader(7)
    try:
        assert again.connect() == 0
    finally:
        again.stop()


def test_another_process_is_refused_a_live_session_id_but_not_a_new_one(home: Path) -> None:
    script = (
        "import sys\n"
        "from qmtkit.compat.xttrader import XtQuantTrader\n"
        "for session in map(int, sys.argv[1:]):\n"
        f"    t = XtQuantTrader({PATH!r}, session)\n"
        "    t.start()\n"
        "    print(session, t.connect(), flush=True)\n"
        "    t.stop()\n"
    )
    held = _trader(55)
    try:
        assert held.connect() == 0
        done = subprocess.run(
            [sys.executable, "-c", script, "55", "56"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        held.stop()
    assert done.stdout.split("\n")[:2] == ["55 -1", "56 0"], done.stderr


def test_terminal_status_names_the_session_ids_each_program_holds(home: Path) -> None:
    a, b = _trader(201), _trader(202)
    try:
        assert a.connect() == 0 and b.connect() == 0
        state = anyio.run(control, paths_of(a._url), TerminalStatus())
        assert isinstance(state, TerminalState)
        ours = [p for p in state.programs if p.pid == os.getpid()]
        assert ours and ours[0].sessions == [201, 202]
        assert all(p.sessions == [] for p in ours[1:])
        b.stop()
        state = anyio.run(control, paths_of(a._url), TerminalStatus())
        assert isinstance(state, TerminalState)
        assert [p.sessions for p in state.programs if p.sessions] == [[201]]
    finally:
        a.stop()
        b.stop()
