"""The async market-data API: download into the cache, read bars as Polars frames.

``MarketData(request, home)`` wraps a backend's ``request`` function. Downloads ask the
backend only for what the cache lacks (per-code coverage) and write through
``Cache.write_bars``; reads are slices of the memory-mapped cache. Periods not stored
(5m/15m/30m/1h, 1w/1mon) are resampled from 1m/1d; adjustment uses the cached ex-rights
records.

Time arguments (``start``/``end``) take xtquant's strings (``'20240102'``,
``'20240102093000'``), ISO strings, ``datetime``/``date`` (naive = Beijing time) or Unix
milliseconds. A date without a time means 00:00 Beijing as a start and the end of that day
as an end. Frame times are ``Datetime('ms', 'Asia/Shanghai')``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.checks import check_count
from qmtkit.clock import BEIJING, wall_ms
from qmtkit.codes import Period, normalize_code, normalize_codes, parse_period
from qmtkit.data import calendar_layers
from qmtkit.data import coverage as cov
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import holidays, on_closed_day, trading_calendar, trading_days
from qmtkit.data.calendar_sync import store_venue, sync_venue
from qmtkit.data.frames import TIME_DTYPE, code_column, columns_of, empty_frame
from qmtkit.data.horizon import visible_end
from qmtkit.data.reference import Reference
from qmtkit.data.schema import MINUTE_PERIODS, dtypes_for, window
from qmtkit.errors import CacheError, InvalidArgument, InvalidPeriod, Unsupported
from qmtkit.messages import (
    Dividend,
    Dividends,
    FetchDividends,
    FetchHistory,
    GetSectorMembers,
    GetSnapshot,
    HistoryColumns,
    Instruments,
    ListInstruments,
    ListSectors,
    Names,
    Reply,
    Request,
    Snapshots,
    expect,
)
from qmtkit.models import InstrumentDetail, Tick

if TYPE_CHECKING:
    from qmtkit.data.sources import Source

RequestFn = Callable[[Request], Awaitable[Reply]]
ProgressFn = Callable[[int, int, str], object]
TimeLike = "str | int | dt.date | dt.datetime | None"

ADJUST_MODES: Final = ("none", "front", "back", "front_ratio", "back_ratio")
_DAY_MS: Final = 86_400_000
#: Flush downloaded bars to the cache once this many bytes are pending (bounds memory).
_FLUSH_BYTES: Final = 64 << 20
#: A download from a source module commits every this many codes, so a killed run keeps
#: what it fetched and a rerun fetches only the rest.
_FLUSH_CODES: Final = 20
#: Any download commits what it fetched at least this often (ms, by ``now_ms``), so a
#: killed one keeps it and a rerun fetches only the rest.
_COMMIT_MS: Final = 1000
_DIGITS = re.compile(r"^\d+$")


# --------------------------------------------------------------------------- arguments


def to_ms(value: object, *, end: bool = False, name: str = "start") -> int:
    """Parse a start/end time into Unix ms; ``None``/``''`` give 0 (unbounded).

    A date without a time of day is 00:00 Beijing, or 23:59:59.999 when ``end``.
    """
    if value is None or value == "":
        return 0
    date_only = False
    when: dt.datetime
    if isinstance(value, bool):
        raise _bad_time(name, value)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        digits = len(str(v))
        if digits == 8 or digits == 14:
            return to_ms(str(v), end=end, name=name)
        if v <= 0 or digits < 11:
            raise _bad_time(name, value)
        return v
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=BEIJING)
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day, tzinfo=BEIJING)
        date_only = True
    elif isinstance(value, str):
        s = value.strip()
        try:
            if _DIGITS.match(s) and len(s) in (8, 12, 14):
                fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}[len(s)]
                when = dt.datetime.strptime(s, fmt).replace(tzinfo=BEIJING)
                date_only = len(s) == 8
            elif len(s) == 10 and s[4] == "-":
                when = dt.datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=BEIJING)
                date_only = True
            else:
                when = dt.datetime.fromisoformat(s)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=BEIJING)
        except ValueError:
            raise _bad_time(name, value) from None
    else:
        raise _bad_time(name, value)
    ms = int(when.timestamp() * 1000)
    if date_only and end:
        ms += _DAY_MS - 1
    return ms


def _bad_time(name: str, value: object) -> InvalidArgument:
    what = name if name.endswith("time") else f"{name} time"
    return InvalidArgument(
        f"bad {what} {value!r}: expected 'YYYYMMDD', 'YYYYMMDDhhmmss', an ISO date/time, "
        "a datetime/date (naive means Beijing time) or Unix milliseconds"
    )


def time_range(start: object, end: object) -> tuple[int, int]:
    """Parse both bounds and check ``start <= end``; 0 means unbounded."""
    lo, hi = to_ms(start, name="start"), to_ms(end, end=True, name="end")
    if lo and hi and lo > hi:
        raise InvalidArgument(f"start {start!r} is after end {end!r}: expected start <= end")
    return lo, hi


def check_adjust(adjust: object, name: str = "adjust") -> str:
    """An adjustment mode of ``ADJUST_MODES`` (None means "none")."""
    if adjust is None:
        return "none"
    if not isinstance(adjust, str) or adjust not in ADJUST_MODES:
        raise InvalidArgument(f"bad {name} {adjust!r}: expected one of {', '.join(ADJUST_MODES)}")
    return adjust


def _check_fields(fields: object, period: str) -> list[str]:
    stored = list(dtypes_for(period))
    if fields is None or (isinstance(fields, (list, tuple)) and len(fields) == 0):
        return [f for f in stored if f != "time"]
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, (list, tuple)):
        raise InvalidArgument(f"fields must be a list of column names, got {fields!r}")
    out: list[str] = []
    for f in fields:
        if f in ("code", "time"):
            continue
        if f not in stored:
            raise InvalidArgument(
                f"unknown field {f!r} for {period} data: expected any of {stored}"
            )
        if f not in out:
            out.append(f)
    return out


# --------------------------------------------------------------------------- the API


class MarketData:
    """Market data through one backend, cached under ``home`` (see ``Cache``).

    ``request`` is the backend's ``request`` coroutine function; ``now_ms`` tells the time
    (injectable for tests and the simulator's virtual clock).
    """

    def __init__(
        self,
        request: RequestFn,
        home: str | os.PathLike[str] | None = None,
        *,
        cache: Cache | None = None,
        now_ms: Callable[[], int] | None = None,
        horizon: Callable[[], int] | None = None,
    ) -> None:
        if not callable(request):
            raise InvalidArgument(
                f"request must be the backend's request function, got {request!r}"
            )
        self._request = request
        self.cache = cache if cache is not None else Cache(home)
        self._now_ms = now_ms or wall_ms
        self.reference = Reference(self.cache.root)
        self._sources: dict[str, Source] = {}
        #: Point in time (backtests): nothing complete after ``horizon()`` is readable.
        self._horizon = horizon
        self._calendar_synced = False

    # ------------------------------------------------------------------- download

    async def download(
        self,
        codes: str | Sequence[str],
        period: str = "1d",
        start: object = None,
        end: object = None,
        *,
        incrementally: bool = True,
        progress: ProgressFn | None = None,
        source: str | Source | None = None,
        source_options: Mapping[str, Any] | None = None,
    ) -> int:
        """Fetch the bars of ``codes`` into the cache and return how many new bars came.

        Periods not stored are downloaded as their base (1m or 1d), except that a source
        serving a minute period as such (baostock's 5m/15m/30m/1h) stores it as such. With
        ``incrementally`` only the ranges missing from each code's coverage are asked for;
        otherwise the whole range is fetched again (and replaces the cached bars with the
        same times). ``progress(done, total, code)`` is called after each code. What was
        fetched is committed, each code with its coverage, at least once a second (and every
        20 codes from a source module, every 64 MB): a download killed half-way keeps it, and
        a rerun fetches only the rest.

        ``source`` picks where bars come from: ``'backend'`` (the connected backend), a
        source module's name such as ``'baostock'`` (``qmtkit.data.sources``; opened for
        this call with ``source_options``) or a source already open; ``None`` reads
        ``$QMTKIT_DATA_SOURCE``, else the backend.
        """
        from qmtkit.data.sources import BACKEND, Source, make_source, open_source, source_name

        norm = normalize_codes(codes)
        p = parse_period(period)
        lo, hi = time_range(start, end)
        if progress is not None and not callable(progress):
            raise InvalidArgument(f"progress must be callable(done, total, code), got {progress!r}")
        if source_options is not None and not isinstance(source_options, Mapping):
            raise InvalidArgument(f"source_options must be a mapping, got {source_options!r}")
        if source is not None and not isinstance(source, str):
            if not isinstance(source, Source):
                raise InvalidArgument(
                    f"source must be a source name or an open source, got {source!r}"
                )
            base = source_base(source, p)
            return await self._download(norm, base, lo, hi, incrementally, progress, source)
        name = source_name(source)
        if name == BACKEND:
            return await self._download(norm, p.base, lo, hi, incrementally, progress, None)
        if source_options:
            async with open_source(name, **dict(source_options)) as src:
                base = source_base(src, p)
                return await self._download(norm, base, lo, hi, incrementally, progress, src)
        # Kept open for the next download: a script downloading code by code (as xtquant
        # scripts do) then logs in once, not once per code.
        kept = self._sources.get(name)
        if kept is None:
            kept = self._sources[name] = make_source(name)
        base = source_base(kept, p)
        return await self._download(norm, base, lo, hi, incrementally, progress, kept)

    def close(self) -> None:
        """End the sessions of the sources downloads kept open (the client calls this)."""
        for src in self._sources.values():
            drop = getattr(src, "drop", None)
            if callable(drop):
                drop()
        self._sources.clear()

    async def _download(
        self,
        norm: list[str],
        base: str,
        lo: int,
        hi: int,
        incrementally: bool,
        progress: ProgressFn | None,
        src: Source | None,
    ) -> int:
        fetch = self._request if src is None else src.request
        if not self._calendar_synced:
            await self.sync_calendar(src)
        # Real calendar data (a stored layer) outranks a source's bar on a day it closes.
        check_closed = any(calendar_layers.stamp(self.cache.home))
        now = committed = self._now_ms()
        flush_codes = _FLUSH_CODES if src is not None else len(norm) + 1
        pending: dict[str, dict[str, npt.NDArray[Any]]] = {}
        pending_cov: dict[str, tuple[int, int]] = {}
        pending_bytes = 0
        fetched = 0
        dtypes = dtypes_for(base)
        try:
            for i, code in enumerate(norm, 1):
                covered = self.cache.coverage(base, code)
                gaps = cov.missing(covered if incrementally else None, lo, hi)
                parts: list[dict[str, npt.NDArray[Any]]] = []
                new_cov = covered
                for gap in gaps:
                    w_lo, w_hi = cov.to_wire(gap)
                    reply = expect(
                        await fetch(FetchHistory(code, base, w_lo, w_hi)), HistoryColumns
                    )
                    cols = _decode(reply, base, dtypes)
                    if "isST" in reply.columns and src is not None:
                        self.reference.record_st(
                            src.name,
                            code,
                            cols["time"],
                            np.frombuffer(reply.columns["isST"], "<i1"),
                        )
                    if check_closed:
                        closed = on_closed_day(cols["time"], home=self.cache.home, stored_only=True)
                        if closed.any():  # a bar on a day real calendar data closes
                            cols = {k: v[~closed] for k, v in cols.items()}
                    t = cols["time"]
                    parts.append(cols)
                    fetched += self._new_bars(base, code, t) if incrementally else len(t)
                    newest = int(t.max()) if len(t) else None
                    # Only what the venue's clock had reached is proven complete: its clock
                    # may run behind ours (a simulator's virtual session), and a tick source
                    # serves its day only up to its newest tick.
                    seen_now = min(now, reply.as_of) if reply.as_of > 0 else now
                    if base == "tick" and newest is not None:
                        seen_now = min(seen_now, newest)
                    proven = cov.settled(gap, newest, seen_now)
                    new_cov = cov.combine(new_cov, proven)
                if gaps and base != "tick":
                    # Adjusted reads need the ex-rights records; fetch them with the bars,
                    # as xtquant's download does, so that a cache-only read can adjust.
                    with contextlib.suppress(Unsupported):
                        await self._fetch_dividends(fetch, code)
                if gaps:
                    pending[code] = _concat(parts, dtypes)
                    if new_cov is not None:
                        pending_cov[code] = new_cov
                    pending_bytes += sum(v.nbytes for v in pending[code].values())
                clock = self._now_ms()
                if pending and (
                    pending_bytes >= _FLUSH_BYTES
                    or len(pending) >= flush_codes
                    or clock - committed >= _COMMIT_MS
                ):
                    self.cache.write_bars(base, pending, coverage=pending_cov)
                    pending, pending_cov, pending_bytes = {}, {}, 0
                    committed = clock
                if progress is not None:
                    progress(i, len(norm), code)
        finally:
            # Bars already fetched are kept even if a later code fails or the task is
            # cancelled: they are valid, with their own coverage.
            if pending:
                self.cache.write_bars(base, pending, coverage=pending_cov)
        listed = getattr(src, "listed_instruments", None)
        if src is not None and listed:
            # The source read its whole instrument list to bound its queries: keep it.
            self.reference.write_instruments(src.name, listed)
        return fetched

    def _new_bars(self, base: str, code: str, times: npt.NDArray[Any]) -> int:
        """How many of ``times`` lie outside the cached span of ``code`` (an open end asks
        again for the bar in progress, which is not new)."""
        cached = self.cache.arrays(base, code)["time"]
        if not len(cached) or not len(times):
            return len(times)
        return int(np.count_nonzero((times < cached[0]) | (times > cached[-1])))

    # ------------------------------------------------------------------- reading

    def read_bars(
        self,
        codes: str | Sequence[str],
        period: str = "1d",
        start: object = None,
        end: object = None,
        count: int = -1,
        fields: Sequence[str] | None = None,
        adjust: str = "none",
        *,
        verify: bool = False,
    ) -> pl.DataFrame:
        """Bars from the cache alone (no backend call): long form ``code, time, fields...``.

        ``count >= 0`` keeps the last ``count`` bars of each code within ``[start, end]``
        (xtquant's rule; -1 keeps all). Rows are grouped by code in the order given, time
        ascending. Adjustment other than ``none`` needs the code's ex-rights records in the
        cache (``await dividends(code)`` or ``bars(...)`` fetch them). ``verify=True`` first
        checks every column CRC of the shards read (once per shard file; see docs/data.md
        for the cost), so a flipped byte raises ``CacheError`` instead of being returned.
        """
        norm = normalize_codes(codes)
        p = parse_period(period)
        base = p.base
        names = _check_fields(fields, base)
        lo, hi = time_range(start, end)
        n = check_count(count)
        mode = check_adjust(adjust)
        if verify:
            self.cache.verify_codes(base, norm)
        if self._horizon is not None:
            limit = visible_end(base, self._horizon())
            hi = min(hi, limit) if hi else limit
            if hi < lo or hi <= 0:
                return self.cache.read(base, norm, 1, 1, 0, names)
        if mode != "none" and p.name != "tick":
            return self._read_adjusted(norm, p.name, base, lo, hi, n, names, mode)
        if p.name == base:
            return self.cache.read(base, norm, lo, hi, n, names)
        return self._read_resampled(norm, p.name, base, lo, hi, n, names, None)

    async def bars(
        self,
        codes: str | Sequence[str],
        period: str = "1d",
        start: object = None,
        end: object = None,
        count: int = -1,
        fields: Sequence[str] | None = None,
        adjust: str = "none",
    ) -> pl.DataFrame:
        """Like ``read_bars``, fetching missing ex-rights records first when adjusting.

        Bars themselves come from the cache: call ``download`` first, as with xtquant.
        """
        mode = check_adjust(adjust)
        if mode != "none":
            for code in normalize_codes(codes):
                if self.cache.read_dividends(code) is None:
                    await self.dividends(code)
        return self.read_bars(codes, period, start, end, count, fields, mode)

    def bars_lazy(
        self,
        codes: str | Sequence[str],
        period: str = "1d",
        start: object = None,
        end: object = None,
        count: int = -1,
        fields: Sequence[str] | None = None,
        adjust: str = "none",
    ) -> pl.LazyFrame:
        """``read_bars`` as a LazyFrame over the mapped columns, for scans and aggregations."""
        return self.read_bars(codes, period, start, end, count, fields, adjust).lazy()

    def _code_columns(self, code: str, base: str, lo: int, hi: int) -> dict[str, npt.NDArray[Any]]:
        return window(self.cache.arrays(base, code), lo, hi)

    def _read_resampled(
        self,
        codes: list[str],
        period: str,
        base: str,
        lo: int,
        hi: int,
        count: int,
        names: list[str],
        mode: str | None,
    ) -> pl.DataFrame:
        from qmtkit.data.resample import resample

        per_code: list[tuple[str, Mapping[str, npt.NDArray[Any]]]] = []
        for code in codes:
            stored = self._stored_period(code, period, base)
            if mode is None:
                cols = self._code_columns(code, stored, lo, hi)
            else:
                # Ratio modes need the close before each ex-date, which may lie before
                # ``start``: adjust the whole history, then cut the range.
                arrays = self.cache.arrays(stored, code)
                if self._horizon is not None:
                    arrays = window(arrays, 0, visible_end(stored, self._horizon()))
                full = self._adjust_columns(code, arrays, mode)
                cols = window(full, lo, hi)
            if period != stored:
                cols = resample(cols, period)
            per_code.append((code, cols))
        return _build_frame(per_code, count, names, dtypes_for(base))

    def _stored_period(self, code: str, period: str, base: str) -> str:
        """Where ``code``'s ``period`` bars come from: the period itself when stored as such
        (a source serving it, e.g. baostock's 5m), else the finest stored minute period
        that divides it, else ``base``. Nothing finer than what is stored is invented."""
        if period not in MINUTE_PERIODS:
            return base
        if self.cache.coverage(period, code) is not None:
            return period
        secs = parse_period(period).seconds
        for candidate in ("1m", *MINUTE_PERIODS):
            c_secs = parse_period(candidate).seconds
            if c_secs < secs and secs % c_secs == 0 and self.cache.coverage(candidate, code):
                return candidate
        return base

    def _read_adjusted(
        self,
        codes: list[str],
        period: str,
        base: str,
        lo: int,
        hi: int,
        count: int,
        names: list[str],
        mode: str,
    ) -> pl.DataFrame:
        return self._read_resampled(codes, period, base, lo, hi, count, names, mode)

    def _adjust_columns(
        self, code: str, cols: Mapping[str, npt.NDArray[Any]], mode: str
    ) -> dict[str, npt.NDArray[Any]]:
        from qmtkit.data.adjust import adjust_bars

        divs = self.cache.read_dividends(code)
        if divs is None:
            raise CacheError(
                f"ex-rights records of {code} are not cached, so {mode!r} adjustment cannot be "
                f"computed: call `await data.dividends({code!r})` or `data.bars(..., "
                f"adjust={mode!r})` first"
            )
        items = [msgspec.convert(d, Dividend) for d in divs]
        if self._horizon is not None:
            # Adjusted as of the virtual now: later ex-rights are not known yet.
            now = self._horizon()
            items = [d for d in items if d.time <= now]
        return adjust_bars(cols, items, mode)

    # ------------------------------------------------------------------- reference data

    async def dividends(
        self, code: str, start: object = None, end: object = None
    ) -> list[Dividend]:
        """The ex-rights records of ``code`` (oldest first), fetched and cached.

        ``start``/``end`` (as for ``bars``; None: unbounded) keep the records whose ex-date
        falls between them.
        """
        lo, hi = time_range(start, end)
        items = await self._fetch_dividends(self._request, code)
        return [d for d in items if d.time >= lo and (not hi or d.time <= hi)]

    async def _fetch_dividends(self, fetch: RequestFn, code: str) -> list[Dividend]:
        norm = normalize_code(code)
        reply = expect(await fetch(FetchDividends(norm)), Dividends)
        items = sorted(reply.items, key=lambda d: d.time)
        self.cache.write_dividends(norm, items)
        return items

    async def snapshot(self, codes: str | Sequence[str]) -> dict[str, Tick]:
        """The latest tick of each code the backend knows (unknown codes are left out)."""
        norm = normalize_codes(codes)
        reply = expect(await self._request(GetSnapshot(norm)), Snapshots)
        return {t.stock_code: t for t in reply.items}

    async def instruments(
        self, codes: str | Sequence[str] | None = None
    ) -> dict[str, InstrumentDetail]:
        """Reference data per code (``InstrumentDetail``); ``None`` lists every instrument."""
        norm = None if codes is None else normalize_codes(codes)
        reply = expect(await self._request(ListInstruments(norm)), Instruments)
        return {_instrument_code(item): item for item in reply.items}

    async def sectors(self) -> list[str]:
        """The names of the sectors the backend knows."""
        return list(expect(await self._request(ListSectors()), Names).items)

    async def sector_members(self, name: str) -> list[str]:
        """The codes in sector ``name``."""
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"sector name must be a non-empty string, got {name!r}")
        return list(expect(await self._request(GetSectorMembers(name)), Names).items)

    def trading_dates(
        self, market: str, start: object = None, end: object = None, count: int = -1
    ) -> list[int]:
        """Trading days of ``market`` (SH/SZ/BJ) as ms at 00:00 Beijing, like xtquant.

        Past the known days the answer is provisional (see ``qmtkit.data.calendar``).
        """
        lo, hi = time_range(start, end)
        n = check_count(count)
        days = trading_days(market, lo or None, hi or None, count=n, home=self.cache.home)
        return [int(x) for x in days]

    def trading_calendar(self, market: str, start: str = "", end: str = "") -> list[str]:
        """Trading days as ``'YYYYMMDD'`` strings (xtquant's ``get_trading_calendar``)."""
        return trading_calendar(market, start or "", end or "", home=self.cache.home)

    def holidays(self, market: str = "SH") -> list[str]:
        """Known weekday closures as ``'YYYYMMDD'`` strings (xtquant's ``get_holidays``)."""
        return [str(d) for d in holidays(market, home=self.cache.home).tolist()]

    async def sync_calendar(self, source: Source | None = None) -> bool:
        """Fetch the venue's own trading calendar into the home (once per client by default).

        With a history ``source`` that lists trading days (baostock), its days are the venue
        layer instead (and are kept beside its other reference data). True when it changed
        what is stored. Bars cached on days it closes are dropped.
        """
        self._calendar_synced = True
        if source is None:
            return await sync_venue(self._request, self.cache.home)
        days_of = getattr(source, "trading_days", None)
        if not callable(days_of):
            return False
        days: list[int] = await days_of()
        if not days:
            return False
        self.reference.write_trading_days(source.name, days[0], days[-1], days)
        return store_venue(self.cache.home, f"{source.name}'s trading days", days, [])


# --------------------------------------------------------------------------- helpers


def source_base(src: Source, p: Period) -> str:
    """The stored period a source's download of ``p`` lands in, or InvalidPeriod."""
    base = p.name if p.name in src.periods else p.base
    if base not in src.periods:
        raise InvalidPeriod(
            f"the {src.name} source serves {', '.join(src.periods)} bars, so {p.name!r} "
            f"(stored as {base!r}) cannot come from it"
        )
    return base


def _instrument_code(item: InstrumentDetail) -> str:
    """``'600000.SH'`` from ``InstrumentID`` and ``ExchangeID``."""
    code = item.InstrumentID
    return code if "." in code else f"{code}.{item.ExchangeID}"


def _decode(
    reply: HistoryColumns, period: str, dtypes: Mapping[str, np.dtype[np.generic]]
) -> dict[str, npt.NDArray[Any]]:
    if reply.period != period:
        raise CacheError(f"backend sent {reply.period} bars for a {period} request")
    out: dict[str, npt.NDArray[Any]] = {}
    for name, dtype in dtypes.items():
        raw = reply.columns.get(name)
        if raw is None:
            if name == "time":
                raise CacheError(f"backend sent {reply.code} {period} bars without times")
            out[name] = np.zeros(reply.rows, dtype=dtype)
            continue
        arr = np.frombuffer(raw, dtype=dtype)
        if len(arr) != reply.rows:
            raise CacheError(
                f"backend sent {len(arr)} values of {name!r} for {reply.code}, "
                f"expected {reply.rows}"
            )
        out[name] = arr
    return out


def _concat(
    parts: list[dict[str, npt.NDArray[Any]]], dtypes: Mapping[str, np.dtype[np.generic]]
) -> dict[str, npt.NDArray[Any]]:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return {k: np.zeros(0, dtype=d) for k, d in dtypes.items()}
    return {k: np.concatenate([p[k] for p in parts]) for k in dtypes}


def _build_frame(
    per_code: list[tuple[str, Mapping[str, npt.NDArray[Any]]]],
    count: int,
    names: list[str],
    dtypes: Mapping[str, np.dtype[np.generic]],
) -> pl.DataFrame:
    codes: list[str] = []
    counts: list[int] = []
    cols: dict[str, list[npt.NDArray[Any]]] = {n: [] for n in ("time", *names)}
    for code, c in per_code:
        n = len(c["time"])
        a = max(0, n - count) if count >= 0 else 0
        if a >= n:
            continue
        codes.append(code)
        counts.append(n - a)
        for name in cols:
            cols[name].append(np.asarray(c[name][a:], dtype=dtypes[name]))
    if not codes:
        return empty_frame(dtypes, names)
    series = [code_column(codes, counts)]
    for name, chunks in cols.items():
        s = pl.Series(name, np.concatenate(chunks) if len(chunks) > 1 else chunks[0])
        series.append(s.cast(TIME_DTYPE) if name == "time" else s)
    return columns_of(pl.DataFrame(series), names)
