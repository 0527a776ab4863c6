"""The baostock source: free A-share history from baostock's own server, no registration.

Serves (``qmtkit[baostock]`` installs the package):

* ``1d`` bars since 1990-12-19, unadjusted, with ``preClose``, the suspension flag
  (``tradestatus``) and the ST flag per day (``isST``, kept beside the bars);
* ``5m``, ``15m``, ``30m``, ``1h`` bars (baostock's 5/15/30/60), stored as such; baostock has
  no 1-minute bars and no ticks, and qmtkit never invents them;
* ex-rights records from ``query_adjust_factor`` and ``query_dividend_data``;
* the instrument list (``query_stock_basic``: names, listing and delisting dates) and trading
  dates (``query_trade_dates``);
* one day of every stock (``query_daily_history_k_AStock``) and that day's factor changes
  (``query_daily_adjust_factor``), for the daily update, where the package has them (0.9.4+).

Bars are always fetched unadjusted (``adjustflag='3'``); qmtkit adjusts them itself from the
ex-rights records, in every mode. (baostock's own adjusted bars: ``'2'`` front, ``'1'`` back,
by its ratio method.) Each query spans few enough days to fit in one of baostock's 2,000-row
pages, so a page lost on the way cannot shorten an answer unnoticed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qmtkit.clock import BEIJING_OFFSET_MS, wall_ms
from qmtkit.codes import normalize_code
from qmtkit.data.sources import bsrows
from qmtkit.data.sources.bssession import BaostockSession, Result, below_one_page
from qmtkit.errors import InvalidArgument, InvalidCode, InvalidPeriod, Unsupported
from qmtkit.messages import (
    Dividend,
    Dividends,
    FetchDividends,
    FetchHistory,
    HistoryColumns,
    Instruments,
    ListInstruments,
    Reply,
    Request,
)
from qmtkit.models import InstrumentDetail

#: baostock's first trading day.
FIRST_DAY: Final = "1990-12-19"
#: Calendar days per query, per period: under 2,000 rows (one page): at most 1,827 weekdays
#: in 7 years for days, 48 five-minute bars a day, 16 fifteen-minute, 8 half-hour, 4 hourly.
CHUNK_DAYS: Final = {"1d": 7 * 365, "5m": 40, "15m": 120, "30m": 240, "1h": 480}
#: Every period this source fetches as such.
PERIODS: Final = tuple(CHUNK_DAYS)
#: Defaults of ``timeout`` (seconds per call, 30) and ``rate`` (calls per second, 5) when
#: the source is opened without them (e.g. by the shim's ``download_history_data``).
TIMEOUT_ENV: Final = "QMTKIT_BAOSTOCK_TIMEOUT"
RATE_ENV: Final = "QMTKIT_BAOSTOCK_RATE"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidArgument(f"${name} is {raw!r}: expected a number > 0")
    return value


class BaostockSource:
    """History from baostock (see the module docs); ``request`` answers the history requests.

    ``timeout`` (s, default 30 or ``$QMTKIT_BAOSTOCK_TIMEOUT``) bounds every call, ``rate``
    (calls/s, default 5 or ``$QMTKIT_BAOSTOCK_RATE``) keeps it polite,
    ``retries`` and ``seed`` shape the backoff; ``module`` and ``sleep``/``clock`` are for
    tests. ``now_ms`` tells the time (the default is qmtkit's wall clock).
    """

    name = "baostock"
    periods: tuple[str, ...] = PERIODS

    def __init__(
        self,
        *,
        timeout: float | None = None,
        rate: float | None = None,
        retries: int = 5,
        backoff: float = 1.0,
        seed: int | None = None,
        module: ModuleType | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.session = BaostockSession(
            module,
            timeout=_env_number(TIMEOUT_ENV, 30.0) if timeout is None else timeout,
            rate=_env_number(RATE_ENV, 5.0) if rate is None else rate,
            retries=retries,
            backoff=backoff,
            rng=random.Random(seed),
            sleep=sleep,
            clock=clock,
        )
        self._now_ms = now_ms or wall_ms
        self._listed: dict[str, tuple[int, int | None]] | None = None
        self.listed_instruments: list[InstrumentDetail] = []

    async def aclose(self) -> None:
        """Log out."""
        await self.session.close()

    def drop(self) -> None:
        """End the session at once, without a logout message (for synchronous closes)."""
        self.session.drop()

    async def request(self, req: Request) -> Reply:
        """Answer ``FetchHistory``, ``FetchDividends`` or ``ListInstruments``."""
        if isinstance(req, FetchHistory):
            return await self.history(req)
        if isinstance(req, FetchDividends):
            return Dividends(normalize_code(req.code), await self.dividends(req.code))
        if isinstance(req, ListInstruments):
            return Instruments(await self.instruments(req.codes))
        raise Unsupported(f"the baostock source answers history requests, not {req!r}")

    # ------------------------------------------------------------------ bars

    async def history(self, req: FetchHistory) -> HistoryColumns:
        """One code's bars of ``req.period`` within ``[start, end]`` (ms; 0 = unbounded)."""
        period = req.period
        if period not in CHUNK_DAYS:
            raise InvalidPeriod(
                f"baostock serves {', '.join(PERIODS)} bars, not {period!r} (it has no "
                "1-minute bars or ticks; 1w/1mon are derived from 1d when read)"
            )
        code = normalize_code(req.code)
        now = self._now_ms()
        first, last = await self._life(code)
        first = max(first, int(bsrows.date_ms([FIRST_DAY])[0]))
        lo = max(req.start, first) if req.start else first
        hi = min(req.end, now) if req.end else now
        if last is not None:
            hi = min(hi, last + bsrows.DAY_MS - 1)
        parts: list[dict[str, npt.NDArray[Any]]] = []
        day0 = (lo + BEIJING_OFFSET_MS) // bsrows.DAY_MS
        day_end = (hi + BEIJING_OFFSET_MS) // bsrows.DAY_MS
        step = CHUNK_DAYS[period]
        while day0 <= day_end:
            day1 = min(day_end, day0 + step - 1)
            parts.append(await self._bars(code, period, day0, day1))
            day0 = day1 + 1
        cols = _concat(parts, period)
        t = cols["time"]
        keep = (t >= lo) & (t <= hi)
        if not bool(keep.all()):
            cols = {k: v[keep] for k, v in cols.items()}
        raw = {k: np.ascontiguousarray(v).tobytes() for k, v in cols.items()}
        return HistoryColumns(code, period, len(cols["time"]), raw, as_of=now)

    async def _life(self, code: str) -> tuple[int, int | None]:
        """The code's listing day and delisting day (ms), from one call for every code;
        queries outside its life are skipped. Unknown codes: no limits."""
        if self._listed is None:
            self._listed = {}
            self.listed_instruments = await self.instruments(None)
            for item in self.listed_instruments:
                opened = _yyyymmdd_ms(item.OpenDate)
                expired = _yyyymmdd_ms(item.ExpireDate) if item.ExpireDate != "99999999" else None
                self._listed[item.stock_code] = (opened or 0, expired)
        return self._listed.get(code, (0, None))

    async def _bars(self, code: str, period: str, day0: int, day1: int) -> dict[str, Any]:
        daily = period == "1d"
        res = await self.session.call(
            "query_history_k_data_plus",
            check=below_one_page,
            code=bsrows.to_bs_code(code),
            fields=bsrows.DAILY_FIELDS if daily else bsrows.MINUTE_FIELDS,
            start_date=_day(day0),
            end_date=_day(day1),
            frequency=bsrows.FREQUENCY[period],
            adjustflag="3",
        )
        if daily:
            return bsrows.daily_columns(res.fields, res.rows)
        return bsrows.minute_columns(res.fields, res.rows)

    async def market_day(self, day: str) -> dict[str, dict[str, npt.NDArray[Any]]]:
        """Every stock's daily bar of ``day`` (``'YYYY-MM-DD'``), by code, in one call."""
        res = await self.session.call("query_daily_history_k_AStock", date=day)
        if not res.rows:
            return {}
        i = res.fields.index("code")
        groups: dict[str, list[list[str]]] = {}
        for r in res.rows:
            groups.setdefault(r[i], []).append(r)
        out: dict[str, dict[str, npt.NDArray[Any]]] = {}
        for code, rows in sorted(groups.items()):
            try:
                norm = bsrows.from_bs_code(code)
            except InvalidCode:
                continue  # a code form qmtkit does not trade (none known today)
            out[norm] = bsrows.daily_columns(res.fields, rows)
        return out

    async def factor_changes(self, day: str) -> list[str]:
        """The codes whose adjustment factor changes on ``day`` (an ex-date), in one call."""
        res = await self.session.call("query_daily_adjust_factor", date=day)
        if not res.rows or "code" not in res.fields:
            return []
        i = res.fields.index("code")
        return sorted({bsrows.from_bs_code(r[i]) for r in res.rows})

    def has_market_day(self) -> bool:
        """Whether the package has the whole-market daily queries (baostock 0.9.4+)."""
        m = self.session.module
        return callable(getattr(m, "query_daily_history_k_AStock", None)) and callable(
            getattr(m, "query_daily_adjust_factor", None)
        )

    # ------------------------------------------------------------------ reference data

    async def dividends(self, code: str) -> list[Dividend]:
        """The ex-rights records of ``code``, oldest first (factors + dividend details)."""
        bs = bsrows.to_bs_code(code)
        today = bsrows.ms_to_date(self._now_ms())
        factors = await self.session.call(
            "query_adjust_factor", code=bs, start_date=FIRST_DAY, end_date=today
        )
        years: set[str] = set()
        if factors.rows:
            i = factors.fields.index("dividOperateDate")
            years = {r[i][:4] for r in factors.rows if r[i]}
        div_fields: list[str] = []
        div_rows: list[list[str]] = []
        for year in sorted(years):
            res = await self.session.call(
                "query_dividend_data", code=bs, year=year, yearType="operate"
            )
            div_fields = res.fields or div_fields
            div_rows.extend(res.rows)
        items = bsrows.dividends(factors.fields, factors.rows, div_fields, div_rows)
        listed = set()
        if div_rows:
            i = div_fields.index("dividOperateDate")
            listed = {int(bsrows.date_ms([r[i]])[0]) for r in div_rows if r[i]}
        out: list[Dividend] = []
        for item in items:
            if item.time not in listed:
                # The factor table rounds to 6 digits; the bars around the ex-date give the
                # event's exact ratio (close before it over the reference price).
                item = await self._exact_ratio(bs, item)
            out.append(item)
        return out

    async def _exact_ratio(self, bs: str, item: Dividend) -> Dividend:
        day = (item.time + BEIJING_OFFSET_MS) // bsrows.DAY_MS
        res = await self.session.call(
            "query_history_k_data_plus",
            code=bs,
            fields="date,close,preclose",
            start_date=_day(day - 30),
            end_date=_day(day),
            frequency="d",
            adjustflag="3",
        )
        ex = bsrows.ms_to_date(item.time)
        di, ci, pi = (res.fields.index(f) for f in ("date", "close", "preclose"))
        before = [r for r in res.rows if r[di] < ex and r[ci]]
        on = [r for r in res.rows if r[di] == ex and r[pi]]
        if not before or not on:
            return item
        close, ref = float(before[-1][ci]), float(on[0][pi])
        if not (close > 0 and ref > 0):
            return item
        dr = close / ref
        return Dividend(time=item.time, stockGift=dr - 1.0, dr=dr)

    async def instruments(self, codes: Sequence[str] | None = None) -> list[InstrumentDetail]:
        """Names, listing and delisting dates: of ``codes``, or of everything baostock lists."""
        if codes is None:
            res = await self.session.call("query_stock_basic")
            return [bsrows.instrument(res.fields, r) for r in res.rows]
        out: list[InstrumentDetail] = []
        for code in codes:
            res = await self.session.call("query_stock_basic", code=bsrows.to_bs_code(code))
            out.extend(bsrows.instrument(res.fields, r) for r in res.rows)
        return out

    async def stock_codes(self) -> list[str]:
        """Every A-share stock baostock lists, listed or delisted (delisted ones keep a
        backtest free of survivorship bias); ``listed_instruments`` keeps the whole list."""
        res = await self.session.call("query_stock_basic")
        self.listed_instruments = [bsrows.instrument(res.fields, r) for r in res.rows]
        ci, ti = res.fields.index("code"), res.fields.index("type")
        return sorted(bsrows.from_bs_code(r[ci]) for r in res.rows if r[ti] == "1")

    async def trading_days(self, start: str = FIRST_DAY, end: str | None = None) -> list[int]:
        """The SH/SZ trading days from ``start`` to ``end`` (``'YYYY-MM-DD'``) as YYYYMMDD."""
        end = end or bsrows.ms_to_date(self._now_ms())

        def whole(res: Result) -> bool:
            # One row per calendar day: a whole answer reaches ``end`` (or is empty).
            if not res.rows or "calendar_date" not in res.fields:
                return True
            return res.rows[-1][res.fields.index("calendar_date")] >= end

        res = await self.session.call(
            "query_trade_dates", check=whole, start_date=start, end_date=end
        )
        return bsrows.trading_days(res.fields, res.rows)


def _yyyymmdd_ms(value: str) -> int | None:
    if len(value) != 8 or not value.isdigit():
        return None
    return int(bsrows.date_ms([f"{value[:4]}-{value[4:6]}-{value[6:]}"])[0])


def _day(day_number: int) -> str:
    return str(np.datetime64(day_number, "D"))


def _concat(parts: list[dict[str, npt.NDArray[Any]]], period: str) -> dict[str, Any]:
    parts = [p for p in parts if len(p["time"])]
    if not parts:
        empty = bsrows.daily_columns if period == "1d" else bsrows.minute_columns
        fields = (bsrows.DAILY_FIELDS if period == "1d" else bsrows.MINUTE_FIELDS).split(",")
        return empty(fields, [])
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
