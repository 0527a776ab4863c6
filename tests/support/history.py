"""Small hand-written daily histories for backtest tests: every number follows from these rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qmtkit.data.calendar import yyyymmdd_to_ms

DAYS = [20240102, 20240103, 20240104, 20240105, 20240108, 20240109]
A, B = "600000.SH", "000001.SZ"

FLAT = [(10.0, 10.2, 9.8, 10.0, 10_000)] * 6
RISING = [
    (10.0, 10.5, 9.9, 10.4, 10_000),
    (10.5, 10.9, 10.4, 10.8, 10_000),
    (10.9, 11.3, 10.8, 11.2, 10_000),
    (11.3, 11.7, 11.2, 11.6, 10_000),
    (11.7, 12.1, 11.6, 12.0, 10_000),
    (12.1, 12.5, 12.0, 12.4, 10_000),
]


def daily_bars(
    rows: Sequence[tuple[float, float, float, float, int]], days: Sequence[int] = DAYS
) -> dict[str, Any]:
    """Daily columns from (open, high, low, close, volume in lots) rows on ``days``."""
    t = yyyymmdd_to_ms(list(days[: len(rows)]))
    o, h, lo, c, v = (np.array(x) for x in zip(*rows, strict=True))
    pre = np.concatenate([[c[0]], c[:-1]])
    return {
        "time": t,
        "open": o.astype(float),
        "high": h.astype(float),
        "low": lo.astype(float),
        "close": c.astype(float),
        "volume": v.astype(np.int64),
        "amount": (c * v * 100).astype(float),
        "preClose": pre.astype(float),
    }
