"""Where the fake xtquant package lives (tests/fake_xtquant) and how to forget it between tests."""

from __future__ import annotations

import sys
from pathlib import Path

#: The folder put on ``sys.path`` so that ``import xtquant`` finds the fake.
FAKE = Path(__file__).resolve().parent.parent / "fake_xtquant"


def purge_xtquant() -> None:
    """Drop every loaded ``xtquant`` module, so the next import loads a fresh fake."""
    for name in [m for m in sys.modules if m == "xtquant" or m.startswith("xtquant.")]:
        del sys.modules[name]
