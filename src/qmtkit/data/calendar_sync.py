"""Bringing real calendar data in: a venue's calendar or a user file, and the cache kept true.

When a stored layer changes, a day the calendar used to call a trading day (typically a
provisional one) may turn out closed; every cached bar on such a day is dropped, so a cached
bar never stands on a closed day.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from qmtkit.clock import BEIJING_OFFSET_MS, beijing, wall_ms
from qmtkit.data import calendar
from qmtkit.data import calendar_layers as layers
from qmtkit.data.cache import Cache, resolve_home
from qmtkit.data.schema import STORED_PERIODS
from qmtkit.errors import QmtkitError
from qmtkit.messages import GetCalendar, Reply, Request, VenueCalendar

log = logging.getLogger("qmtkit.calendar")

RequestFn = Callable[[Request], Awaitable[Reply]]


def _day_numbers(layer: layers.Layer) -> tuple[int, int]:
    return calendar.day_number(layer.first), calendar.day_number(layer.last)


def store_layer(home: Path, name: str, layer: layers.Layer) -> int:
    """Store ``layer`` as layer ``name`` and drop cached bars on days it newly closes.

    Returns how many cached bars were dropped.
    """
    lo, hi = _day_numbers(layer)
    before = calendar.closed_weekdays_between(lo, hi, home=home)
    layers.save(home, name, layer)
    after = calendar.closed_weekdays_between(lo, hi, home=home)
    return purge_closed(Cache(home), after - before)


def purge_closed(cache: Cache, days: set[int]) -> int:
    """Drop every cached bar whose Beijing day (days since 1970-01-01) is in ``days``."""
    if not days:
        return 0
    wanted = np.fromiter(days, dtype=np.int64)
    dropped = 0
    for period in STORED_PERIODS:
        for code in cache.codes(period):
            cols = cache.arrays(period, code)
            day = (cols["time"].astype(np.int64) + BEIJING_OFFSET_MS) // calendar.DAY_MS
            bad = np.isin(day, wanted)
            if not bad.any():
                continue
            coverage = cache.coverage(period, code)
            cache.write_bars(
                period,
                {code: {k: v[~bad] for k, v in cols.items()}},
                coverage={code: coverage} if coverage is not None else None,
                replace=True,
            )
            dropped += int(bad.sum())
    if dropped:
        log.warning("dropped %d cached bars on days the calendar now closes", dropped)
    return dropped


def import_file(path: str | os.PathLike[str], home: str | os.PathLike[str] | None = None) -> int:
    """Import a user calendar file as the ``user`` layer; returns the cached bars dropped."""
    layer = layers.read_user_file(path)
    return store_layer(resolve_home(home), "user", layer)


async def sync_venue(request: RequestFn, home: str | os.PathLike[str] | None = None) -> bool:
    """Ask the venue for its calendar and store it as the ``venue`` layer when it has one.

    True when the stored layer changed. A venue without a calendar (the simulator, an older
    gateway) leaves everything as it was.
    """
    root = resolve_home(home)
    try:
        reply = await request(GetCalendar())
    except QmtkitError as exc:
        log.debug("the venue gave no trading calendar: %s", exc)
        return False
    if not isinstance(reply, VenueCalendar):
        return False
    return store_venue(root, "the venue's calendar", reply.trading_days, reply.holidays)


def store_venue(home: Path, label: str, trading_days: list[int], holiday_days: list[int]) -> bool:
    """Store a venue's (or a history source's) trading days as the ``venue`` layer.

    True when the stored layer changed; bars cached on days it newly closes are dropped.
    """
    root = Path(home)
    fetched = beijing(wall_ms()).strftime("%Y-%m-%d")
    layer = layers.venue_layer(f"{label}, fetched {fetched}", trading_days, holiday_days)
    if layer is None:
        return False
    old = layers.load(root, "venue")
    if old is not None and (old.first, old.last, old.closed) == (
        layer.first,
        layer.last,
        layer.closed,
    ):
        return False
    store_layer(root, "venue", layer)
    return True
