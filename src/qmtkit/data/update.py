"""Downloads through a source module: the code list, reference data, and the daily update.

``download_with_source`` is what ``qmtkit download --source NAME`` runs. It stores the
source's instrument list and trading days beside the cache, then fetches bars:

* codes whose daily bars are cached up to a few trading days ago are brought up to date with
  one whole-market query per missing day (``market_day``; for baostock 0.9.4+
  ``query_daily_history_k_AStock`` and ``query_daily_adjust_factor``), instead of one query
  per code — 5,000 codes one day behind cost two calls, not 5,000;
* every other code goes through ``MarketData.download`` code by code, committed to the cache
  every few codes, so a killed or failed run keeps what it fetched and a rerun asks only for
  the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import normalize_codes, parse_period
from qmtkit.data import coverage as cov
from qmtkit.data.api import MarketData, ProgressFn, source_base, time_range
from qmtkit.data.sources import Source
from qmtkit.errors import InvalidArgument, Unsupported

#: A code at most this many trading days behind is updated by whole-market day queries.
MARKET_DAY_LIMIT: Final = 30
_DAY_MS: Final = 86_400_000


async def download_with_source(
    data: MarketData,
    src: Source,
    codes: Sequence[str] | None,
    period: str = "1d",
    start: object = None,
    end: object = None,
    *,
    incrementally: bool = True,
    progress: ProgressFn | None = None,
) -> int:
    """Download ``codes`` (``None``: every stock the source lists) from the open ``src``."""
    if codes is not None and len(codes) == 0:
        raise InvalidArgument("no codes: name the codes to download, or pass None for all")
    source_base(src, parse_period(period))  # a period the source lacks: refused before any call
    if codes is None:
        lister = getattr(src, "stock_codes", None)
        if lister is None:
            raise Unsupported(f"the {src.name} source cannot list every stock")
        codes = await lister()
        items = getattr(src, "listed_instruments", None)
        if items:
            data.reference.write_instruments(src.name, items)
    norm = normalize_codes(codes)
    lo, hi = time_range(start, end)
    if not data._calendar_synced:
        await data.sync_calendar(src)
    fetched = 0
    rest = norm
    if incrementally and parse_period(period).base == "1d" and _has_market_day(src) and not hi:
        near = [c for c in norm if _near(data, c, lo)]
        if len(near) > 1:
            fetched += await _update_by_day(data, src, near, progress)
            done = set(near)
            rest = [c for c in norm if c not in done]
    if rest:
        fetched += await data.download(
            rest, period, start, end, incrementally=incrementally, progress=progress, source=src
        )
    return fetched


def _has_market_day(src: Source) -> bool:
    check = getattr(src, "has_market_day", None)
    return bool(check()) if callable(check) else False


def _near(data: MarketData, code: str, lo: int) -> bool:
    """Whether ``code``'s cached daily bars start by ``lo`` and end recently."""
    covered = data.cache.coverage("1d", code)
    if covered is None or (lo and covered[0] > lo):
        return False
    behind_days = (data._now_ms() - covered[1]) / _DAY_MS
    # Calendar days; a trading-day limit of 30 is about 45 calendar days with holidays.
    return behind_days <= MARKET_DAY_LIMIT * 1.5


def _day_text(ms: int) -> str:
    days = (ms + BEIJING_OFFSET_MS) // _DAY_MS
    return (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()


async def _update_by_day(
    data: MarketData, src: Any, codes: list[str], progress: ProgressFn | None
) -> int:
    """Bring ``codes`` up to date with one whole-market query per missing trading day."""
    covers = {c: data.cache.coverage("1d", c) for c in codes}
    ends = {c: iv[1] for c, iv in covers.items() if iv is not None}
    oldest_end = min(ends.values())
    now = data._now_ms()
    days = await src.trading_days(_day_text(oldest_end + 1), _day_text(now))
    wanted = set(codes)
    parts: dict[str, list[dict[str, npt.NDArray[Any]]]] = {c: [] for c in codes}
    changed: set[str] = set()
    last_done: int | None = None
    for i, day in enumerate(days, 1):
        text = f"{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}"
        day_ms = int(np.datetime64(text, "D").astype(np.int64)) * _DAY_MS - BEIJING_OFFSET_MS
        if day_ms <= oldest_end:
            continue
        if day_ms + _DAY_MS - 1 >= now:
            break  # today's bars may still change: leave them to a later run
        bars = await src.market_day(text)
        if not bars:
            break  # not published yet; a later run asks again
        changed.update(c for c in await src.factor_changes(text) if c in wanted)
        for code, cols in bars.items():
            if code in wanted and day_ms > ends.get(code, now):
                parts[code].append(cols)
        last_done = day_ms + _DAY_MS - 1
        if progress is not None:
            progress(i, len(days), text)
    if last_done is None:
        return 0
    write: dict[str, dict[str, npt.NDArray[Any]]] = {}
    coverage: dict[str, tuple[int, int]] = {}
    fetched = 0
    for code in codes:
        chunks = parts[code]
        if chunks:
            cols = {k: np.concatenate([p[k] for p in chunks]) for k in chunks[0]}
            st = cols.pop("isST", None)
            if st is not None:
                data.reference.record_st(src.name, code, cols["time"], st)
            write[code] = cols
            fetched += len(cols["time"])
        joined = cov.combine(covers[code], (ends[code] + 1, last_done))
        if joined is not None:
            coverage[code] = joined
    data.cache.write_bars("1d", write, coverage=coverage)
    for code in sorted(changed | {c for c in codes if data.cache.read_dividends(c) is None}):
        await data._fetch_dividends(src.request, code)
    return fetched
