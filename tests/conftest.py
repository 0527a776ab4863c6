"""Suite-wide settings and shared fixtures.

No test may depend on the wall date. Unless ``QMTKIT_CLOCK`` is already set (CI sets it to
several dates in turn to prove exactly that), the whole suite, and every subprocess it
starts, runs with the clock pinned to one fixed day.

Fixtures used by more than one test module live here; shared builders and fakes that are
plain functions or classes live in ``tests/support/``.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from qmtkit.backends.sim.universe import Universe
from support.xtquant_fake import FAKE, purge_xtquant

#: The day the suite runs on unless CI chooses another (YYYYMMDD, 00:00 Beijing).
DEFAULT_TEST_CLOCK = "20261204"

os.environ.setdefault("QMTKIT_CLOCK", DEFAULT_TEST_CLOCK)

# Nor on the machine's state: a test that opens the default home (``$QMTKIT_HOME`` or
# ~/.qmtkit) gets one made for this run, never a user's journals and cache. Tests that need
# their own home still set it themselves.
_HOME = tempfile.TemporaryDirectory(prefix="qmtkit-test-home-")
os.environ["QMTKIT_HOME"] = _HOME.name

# Nor on how the suite was started: a shell without job control starts a background job with
# SIGINT ignored, Python then installs no KeyboardInterrupt handler, and the Ctrl-C tests
# (here and in the scripts they start, which inherit an ignored signal) cannot see one.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The long probes of tests/stress/ run only in `nox -s stress` (QMTKIT_STRESS=1).
collect_ignore = [] if os.environ.get("QMTKIT_STRESS") else ["stress"]


@pytest.fixture(scope="module")
def universe() -> Universe:
    """The simulator's default universe (built once per module; treat it as read-only)."""
    return Universe()


@pytest.fixture
def xt(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """A fresh fake xtquant on sys.path: its terminal and its xtdata module."""
    purge_xtquant()
    monkeypatch.syspath_prepend(str(FAKE))
    import xtquant._terminal
    import xtquant.xtdata

    xtdata: Any = xtquant.xtdata
    xtdata.INSTRUMENTS.update(
        {
            "600000.SH": {
                "ExchangeID": "SH",
                "InstrumentID": "600000",
                "InstrumentName": "浦发银行",
                "PreClose": 10.0,
                "UpStopPrice": 11.0,
                "DownStopPrice": 9.0,
                "OpenDate": "19991110",
                "ExpireDate": 99999999,
                "PriceTick": 0.01,
            },
            "000001.SZ": {
                "ExchangeID": "SZ",
                "InstrumentID": "000001",
                "InstrumentName": "平安银行",
                "PreClose": 12.0,
            },
            "600666.SH": {
                "ExchangeID": "SH",
                "InstrumentID": "600666",
                "InstrumentName": "*ST奥瑞",
            },
            "110011.SH": {"ExchangeID": "SH", "InstrumentID": "110011", "InstrumentName": "a bond"},
        }
    )
    yield SimpleNamespace(terminal=xtquant._terminal.TERMINAL, xtdata=xtdata)
    xtdata._pusher.shutdown(wait=True)
    purge_xtquant()
    # whatever a test did, the backend stopped every trader it made (and their threads)
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-xttrader")]
