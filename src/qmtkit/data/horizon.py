"""Point in time: which stored records are complete at a moment (for backtests, no look-ahead).

A daily bar is labelled 00:00 Beijing of its day and complete at 15:00; a minute bar is
labelled by its end and a tick by its time, so both are complete at their label.
"""

from __future__ import annotations

from typing import Final

#: A daily bar (labelled 00:00 Beijing) is complete at 15:00 of its day.
DAILY_CLOSE_MS: Final = 15 * 3_600_000


def close_time(period: str, label: int) -> int:
    """The moment (Unix ms) a stored record of ``period`` labelled ``label`` is complete."""
    return label + DAILY_CLOSE_MS if period == "1d" else label


def visible_end(period: str, now_ms: int) -> int:
    """The latest label of a stored ``period`` whose record is complete at ``now_ms``."""
    return now_ms - DAILY_CLOSE_MS if period == "1d" else now_ms
