"""Which time ranges of a code the cache already holds, and which it still has to fetch.

Pure functions over Unix-millisecond intervals, free of I/O. A code's coverage is one closed
interval ``(first, last)``: every bar the source has with ``first <= time <= last`` is in the
cache (there may be none, e.g. before listing). Keeping a single interval means a request that
lies apart from the coverage also fetches the gap between them, so coverage never has holes.

Request bounds follow ``FetchHistory``: ``0`` means unbounded on that side.
"""

from __future__ import annotations

from typing import Final

#: The smallest and largest representable times; stand-ins for "unbounded".
MIN_TIME: Final = -(2**63)
MAX_TIME: Final = 2**63 - 1

Interval = tuple[int, int]


def bounds(start: int, end: int) -> Interval:
    """Turn wire-style bounds (``0`` = unbounded) into a closed interval."""
    return (MIN_TIME if start == 0 else start, MAX_TIME if end == 0 else end)


def to_wire(interval: Interval) -> Interval:
    """Turn a closed interval back into wire-style bounds (``0`` = unbounded)."""
    first, last = interval
    return (0 if first == MIN_TIME else first, 0 if last == MAX_TIME else last)


def missing(covered: Interval | None, start: int, end: int) -> list[Interval]:
    """The closed intervals to fetch so that ``[start, end]`` (wire bounds) becomes covered.

    At most two intervals: one before the coverage and one after it; each reaches the
    coverage, so that the union stays one interval.
    """
    lo, hi = bounds(start, end)
    if lo > hi:
        return []
    if covered is None:
        return [(lo, hi)]
    first, last = covered
    gaps: list[Interval] = []
    if lo < first:
        gaps.append((lo, first - 1))
    if hi > last:
        gaps.append((last + 1, hi))
    return gaps


def merge(covered: Interval | None, fetched: Interval) -> Interval:
    """The coverage after ``fetched`` (touching or overlapping ``covered``) was stored."""
    if covered is None:
        return fetched
    return (min(covered[0], fetched[0]), max(covered[1], fetched[1]))


def combine(covered: Interval | None, fetched: Interval) -> Interval | None:
    """The coverage after storing ``fetched``: the union if the two touch, else ``fetched``.

    An empty ``fetched`` (first > last) leaves the coverage as it was; a ``fetched`` apart
    from the coverage replaces it, since the hole between them is not known complete.
    """
    if fetched[0] > fetched[1]:
        return covered
    if covered is None or fetched[0] > covered[1] + 1 or fetched[1] < covered[0] - 1:
        return fetched
    return merge(covered, fetched)


def settled(fetched: Interval, last_bar: int | None, now: int) -> Interval:
    """What a fetch of ``fetched`` proves is complete, given the newest bar it returned.

    A range reaching ``now`` or beyond cannot be complete yet: bars still to come (and the
    still-forming latest bar) must be asked for again, so its end is cut back to just
    before the newest bar received (or to just before ``now`` when nothing came).
    """
    first, last = fetched
    if last < now:
        return fetched
    cut = (last_bar - 1) if last_bar is not None else now - 1
    return (first, max(first - 1, min(last, cut)))
