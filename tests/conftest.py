"""Suite-wide settings: the clock every test starts from.

No test may depend on the wall date. Unless ``QMTKIT_CLOCK`` is already set (CI sets it to
several dates in turn to prove exactly that), the whole suite, and every subprocess it
starts, runs with the clock pinned to one fixed day.
"""

from __future__ import annotations

import os

#: The day the suite runs on unless CI chooses another (YYYYMMDD, 00:00 Beijing).
DEFAULT_TEST_CLOCK = "20261204"

os.environ.setdefault("QMTKIT_CLOCK", DEFAULT_TEST_CLOCK)
