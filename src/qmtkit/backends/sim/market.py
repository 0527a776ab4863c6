"""The simulator's live market: deterministic ticks with a 5-level book, refining the history.

A trading day of a code is its synthetic daily bar (from :mod:`history`), refined into the
day's 241 minute bars, each refined into ``60 / step`` ticks. So the quote stream, the bars the
client builds from it, and the history served for past days all agree: the ticks of a minute
open at the minute bar's open, reach its high and low, close at its close and add up to its
volume and amount, exactly.

Ticks are a pure function of ``(seed, code, day, step)``: asking twice, or in another process,
gives the same tick. The day's open comes from the previous close (the ex-rights reference
price on an ex-date) and every price stays inside the day's limits.

Units (as MiniQMT reports them): ``volume`` is cumulative lots of 100 shares, ``pvolume`` the
same in shares, ``amount`` cumulative yuan. The book's ``askVol``/``bidVol`` are in **shares**
(multiples of 100) in the simulator, which is what the paper broker matches against. A missing
book level (beyond a limit price, or any level of an index) has price 0 and volume 0.

Time. ``tick``/``ticks``/``intraday_bars`` take *session* time (Unix ms). With real hours
(``StrictClock``) session time is wall time: before 09:30 the tick is the pre-open snapshot,
during the lunch break and after 15:00 the last snapshot stands. For the virtual session
(``SessionClock``: open whenever the program runs) :func:`virtual_session_time` maps wall time
to session time like this: the session's trading day is the latest trading day on or before
the Beijing calendar date (a weekend replays Friday), and the whole Beijing day 00:00-24:00 is
stretched linearly over that day's four trading hours (09:30-11:30 then 13:00-15:00), six wall
seconds per session second. Session time never runs backwards within a day and reaches the
close at midnight, when the broker's trading day also rolls.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

import numpy as np

from qmtkit.backends.sim.history import (
    I64,
    U64,
    Columns,
    DailyPath,
    MinuteTable,
    SyntheticHistory,
    anchored_path,
    bar_columns,
    calendar_days,
    code_key,
    cumulative_split,
    day_ms,
    daynum_of_ms,
    market_of,
    minute_rows,
    mix64,
    normals,
    stream_key,
    uniforms,
    ymd_of_daynum,
)
from qmtkit.backends.sim.universe import DEFAULT_SEED, Universe
from qmtkit.checks import is_int, is_whole
from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import Board, normalize_code, normalize_codes
from qmtkit.data.calendar import day_number
from qmtkit.data.schema import TICK_DTYPES
from qmtkit.errors import InvalidArgument
from qmtkit.models import Bar, InstrumentDetail, Tick

MINUTE_MS: Final = 60_000
OPEN_MS: Final = (9 * 60 + 30) * MINUTE_MS
MORNING_END_MS: Final = (11 * 60 + 30) * MINUTE_MS
AFTERNOON_MS: Final = 13 * 60 * MINUTE_MS
CLOSE_MS: Final = 15 * 60 * MINUTE_MS
SESSION_HALF_MS: Final = 2 * 60 * MINUTE_MS
#: Tick steps that divide a minute into at least four ticks.
ALLOWED_STEPS_MS: Final = (500, 1000, 2000, 3000, 4000, 5000, 6000, 10000, 12000, 15000)
LEVELS: Final = 5

_TPATH, _TPOS, _TVOL, _BOOK, _BOOKV = range(40, 45)
_PREOPEN_MS: Final = (9 * 60 + 15) * MINUTE_MS
_DAY_MS: Final = 86_400_000


def _derive(key: U64, salt: int) -> U64:
    """A separate stream per row for another purpose (keys are scrambled, not just offset)."""
    return mix64(key ^ np.uint64((salt * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)))


def latest_trading_day(market: str, daynum: int) -> int:
    """The latest trading day (day number) on or before ``daynum``."""
    cal = calendar_days(market)
    i = int(np.searchsorted(cal, daynum, "right"))
    if i == 0:
        raise InvalidArgument(f"no trading day on or before {ymd_of_daynum(daynum)}")
    return int(cal[i - 1])


#: (Beijing day number, its 00:00 in Unix ms, 00:00 of the trading day it shows) of the last
#: wall date asked about: the calendar search is done once a day, not on every request.
_virtual_day: tuple[int, int, int] = (-1, 0, 0)


def virtual_session_time(wall_ms: int) -> int:
    """Session time (Unix ms) of a wall time in the virtual session; see the module docstring."""
    global _virtual_day
    if (type(wall_ms) is not int and not is_whole(wall_ms)) or wall_ms < 0:
        raise InvalidArgument(f"wall_ms must be Unix milliseconds (int >= 0), got {wall_ms!r}")
    wall_ms = int(wall_ms)
    date = (wall_ms + BEIJING_OFFSET_MS) // _DAY_MS  # daynum_of_ms
    known, date_ms, day_start = _virtual_day
    if date != known:
        date_ms = int(day_ms(date))
        day_start = int(day_ms(latest_trading_day("SH", date)))
        _virtual_day = (date, date_ms, day_start)
    e = (wall_ms - date_ms) // 6
    tod = OPEN_MS + e if e < SESSION_HALF_MS else AFTERNOON_MS + (e - SESSION_HALF_MS)
    return day_start + tod


class _DayTable:
    """Per-day state of the codes asked about so far: minute bars and their running totals."""

    def __init__(self, daynum: int) -> None:
        self.daynum = daynum
        self.rows: dict[str, int] = {}
        self._parts: list[dict[str, np.ndarray]] = []
        self._stack: dict[str, np.ndarray] | None = None

    def add(self, code: str, part: dict[str, np.ndarray]) -> None:
        self.rows[code] = len(self._parts)
        self._parts.append(part)
        self._stack = None

    @property
    def stack(self) -> dict[str, np.ndarray]:
        if self._stack is None:
            keys = self._parts[0].keys()
            self._stack = {k: np.stack([p[k] for p in self._parts]) for k in keys}
        return self._stack


class SyntheticMarket:
    """The live side of the simulator: instruments, ticks and today's bars for one seed.

    ``seed`` drives the prices (history and ticks); ``universe`` (default ``Universe(seed)``)
    decides which codes exist. ``step_ms`` is the tick step (default 3 s, like MiniQMT's
    snapshots); it must divide a minute into at least four ticks.
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        universe: Universe | None = None,
        *,
        step_ms: int = 3000,
        history: SyntheticHistory | None = None,
    ) -> None:
        if not is_int(seed) or seed < 0:
            raise InvalidArgument(f"seed must be a non-negative int, got {seed!r}")
        if step_ms not in ALLOWED_STEPS_MS:
            raise InvalidArgument(
                f"step_ms must divide a minute into 4 or more ticks: one of "
                f"{', '.join(map(str, ALLOWED_STEPS_MS))}; got {step_ms!r}"
            )
        if universe is not None and not isinstance(universe, Universe):
            raise InvalidArgument(f"universe must be a Universe, got {universe!r}")
        self.seed = seed
        self.universe = universe if universe is not None else Universe(seed)
        self.history = history if history is not None else SyntheticHistory(self.universe, seed)
        self.step_ms = step_ms
        self.ticks_per_minute = MINUTE_MS // step_ms
        #: Steps in a day: the 09:30 auction tick, then 2 x 120 minutes of ticks.
        self.steps_per_day = 1 + 240 * self.ticks_per_minute
        self._days: OrderedDict[int, _DayTable] = OrderedDict()

    # ------------------------------------------------------------------ days and time

    def session_time(self, wall_ms: int, *, strict: bool = False) -> int:
        """Session time of a wall time: itself with real hours, else the virtual mapping."""
        if strict:
            if not is_whole(wall_ms):
                raise InvalidArgument(f"wall_ms must be Unix milliseconds, got {wall_ms!r}")
            return int(wall_ms)
        return virtual_session_time(wall_ms)

    def session_day(self, code: str, now_ms: int) -> int:
        """The trading day (``YYYYMMDD``) whose prices ``code`` shows at session time ``now_ms``."""
        return ymd_of_daynum(
            latest_trading_day(market_of(normalize_code(code)), daynum_of_ms(_ms(now_ms)))
        )

    def _table(self, daynum: int, codes: list[str]) -> tuple[_DayTable, I64]:
        table = self._days.get(daynum)
        if table is None:
            table = _DayTable(daynum)
            self._days[daynum] = table
            while len(self._days) > 3:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(daynum)
        missing = [c for c in dict.fromkeys(codes) if c not in table.rows]
        if missing:
            for code, part in zip(missing, self._prepare(missing, daynum), strict=True):
                table.add(code, part)
        return table, np.fromiter((table.rows[c] for c in codes), np.int64, len(codes))

    def prepare(self, codes: list[str] | None, day: int) -> None:
        """Compute the day's minute tables of ``codes`` (None: the universe) ahead of ticks.

        The first tick of a code on a day costs about 2-3 ms (its history and minute bars);
        calling this once at start-up moves that cost out of the first quote batch.
        """
        if not is_int(day):
            raise InvalidArgument(f"day must be a YYYYMMDD int such as 20240102, got {day!r}")
        wanted = self.universe.codes() if codes is None else normalize_codes(codes)
        listed = [c for c in wanted if self.universe.listing(c).list_date <= day]
        by_market: dict[str, list[str]] = {}
        for c in listed:
            by_market.setdefault(market_of(c), []).append(c)
        for mk, group in by_market.items():
            daynum = latest_trading_day(mk, day_number(day))
            self._table(daynum, group)

    def _prepare(self, codes: list[str], daynum: int) -> list[dict[str, np.ndarray]]:
        paths = []
        rows = []
        for code in codes:
            lst = self.universe.listing(code)
            path = self.history.path(code, int(day_ms(daynum)))
            row = int(np.searchsorted(path.days, daynum))
            if row == len(path.days) or int(path.days[row]) != daynum:
                raise InvalidArgument(
                    f"{code} does not trade on {ymd_of_daynum(daynum)}: it is listed from "
                    f"{lst.list_date} on the {market_of(code)} calendar"
                )
            paths.append(path)
            rows.append(row)
        t = minute_rows(self.seed, paths, np.array(rows, dtype=np.int64))
        return [
            self._part(code, path, row, t, i)
            for i, (code, path, row) in enumerate(zip(codes, paths, rows, strict=True))
        ]

    def _part(
        self, code: str, path: DailyPath, row: int, t: MinuteTable, i: int
    ) -> dict[str, np.ndarray]:
        is_index = self.universe.listing(code).board is Board.INDEX
        h = t.high[i]
        low = t.low[i]
        v = t.volume[i]
        a = t.amount[i]
        gap = max(1, round(int(path.close[row]) / 5000))
        return {
            "open": t.open[i],
            "high": h,
            "low": low,
            "close": t.close[i],
            "volume": v,
            "amount": a,
            # running totals *before* each minute, and the running extremes up to it
            "cum_v": np.concatenate([[0], np.cumsum(v)[:-1]]),
            "cum_a": np.concatenate([[0], np.cumsum(a)[:-1]]),
            "run_h": np.maximum.accumulate(h),
            "run_l": np.minimum.accumulate(low),
            "scalars": np.array(
                [
                    int(path.pre_close[row]),
                    int(path.up[row]) if not is_index else 0,
                    int(path.down[row]) if not is_index else 0,
                    int(path.open[row]),
                    int(is_index),
                    gap,
                    max(1, int(path.volume[row]) * 4 // self.steps_per_day),
                ],
                dtype=np.int64,
            ),
            "key": np.array([stream_key(self.seed, code_key(code), _TPATH)], dtype=np.uint64),
        }

    def _step_of(self, tod: int) -> int:
        """Step index (-1 before the open) of a time of day, ms after 00:00 Beijing."""
        per_half = 120 * self.ticks_per_minute
        if tod < OPEN_MS:
            return -1
        if tod < MORNING_END_MS:
            return (tod - OPEN_MS) // self.step_ms
        if tod < AFTERNOON_MS + self.step_ms:
            return per_half
        if tod < CLOSE_MS:
            return per_half + (tod - AFTERNOON_MS) // self.step_ms
        return 2 * per_half

    def step_time(self, daynum: int, step: int) -> int:
        """Unix ms of a step of a day (step 0 is the 09:30 auction tick)."""
        per_half = 120 * self.ticks_per_minute
        if step < 0:
            return int(day_ms(daynum)) + _PREOPEN_MS
        if step <= per_half:
            return int(day_ms(daynum)) + OPEN_MS + step * self.step_ms
        return int(day_ms(daynum)) + AFTERNOON_MS + (step - per_half) * self.step_ms

    def _minute_of(self, steps: I64) -> tuple[I64, I64]:
        """(minute index 0..240, tick index inside the minute) of steps >= 0."""
        n = self.ticks_per_minute
        per_half = 120 * n
        k = np.where(steps > per_half, steps - per_half, steps)
        base = np.where(steps > per_half, 120, 0)
        m = np.where(steps == 0, 0, base + (k + n - 1) // n)
        j = np.where(steps == 0, 0, k - ((k + n - 1) // n - 1) * n - 1)
        return m.astype(np.int64), j.astype(np.int64)

    # ------------------------------------------------------------------ the tick engine

    def _inside(
        self, st: dict[str, np.ndarray], rows: I64, minutes: I64, daynum: int
    ) -> tuple[I64, I64, I64]:
        """Tick prices, volumes and amounts inside minutes ``minutes`` (>= 1) of ``rows``."""
        n = self.ticks_per_minute
        o = st["open"][rows, minutes]
        c = st["close"][rows, minutes]
        h = st["high"][rows, minutes]
        low = st["low"][rows, minutes]
        key = st["key"][rows, 0][:, None]
        counter = ((daynum * 256 + minutes) * 64)[:, None] + np.arange(n, dtype=np.int64)
        noise = normals(key, counter)
        ua = uniforms(_derive(key, _TPOS)[:, 0], counter[:, 0])
        ub = uniforms(_derive(key, _TPOS)[:, 0], counter[:, 1])
        q = anchored_path(o, c, h, low, noise, ua, ub)
        w = 0.2 + uniforms(_derive(key, _TVOL), counter)
        v = cumulative_split(st["volume"][rows, minutes], w)
        a = cumulative_split(st["amount"][rows, minutes], (v * q).astype(np.float64) + 1e-9)
        return q, v, a

    def _states(self, table: _DayTable, rows: I64, steps: I64) -> dict[str, np.ndarray]:
        """Tick fields (prices in cents, volumes in lots, amounts in cents) at (row, step)."""
        st = table.stack
        sc = st["scalars"][rows]
        pre, up, down, day_open = sc[:, 0], sc[:, 1], sc[:, 2], sc[:, 3]
        size = len(rows)
        last = pre.copy()
        opn = np.zeros(size, dtype=np.int64)
        high = np.zeros(size, dtype=np.int64)
        low = np.zeros(size, dtype=np.int64)
        vol = np.zeros(size, dtype=np.int64)
        amt = np.zeros(size, dtype=np.int64)
        started = steps >= 0
        m, j = self._minute_of(np.maximum(steps, 0))
        auction = started & (m == 0)
        rr = rows[auction]
        last[auction] = day_open[auction]
        opn[auction] = day_open[auction]
        high[auction] = day_open[auction]
        low[auction] = day_open[auction]
        vol[auction] = st["volume"][rr, 0]
        amt[auction] = st["amount"][rr, 0]
        live = started & (m > 0)
        if live.any():
            rl, ml, jl = rows[live], m[live], j[live]
            q, v, a = self._inside(st, rl, ml, table.daynum)
            upto = np.arange(self.ticks_per_minute)[None, :] <= jl[:, None]
            qi = np.where(upto, q, q[:, :1])
            last[live] = q[np.arange(len(rl)), jl]
            opn[live] = day_open[live]
            high[live] = np.maximum(st["run_h"][rl, ml - 1], qi.max(axis=1))
            low[live] = np.minimum(st["run_l"][rl, ml - 1], qi.min(axis=1))
            vol[live] = st["cum_v"][rl, ml] + np.where(upto, v, 0).sum(axis=1)
            amt[live] = st["cum_a"][rl, ml] + np.where(upto, a, 0).sum(axis=1)
        return {
            "last": last,
            "open": opn,
            "high": high,
            "low": low,
            "volume": vol,
            "amount": amt,
            "pre": pre,
            "up": up,
            "down": down,
            "index": sc[:, 4],
            "gap": sc[:, 5],
            "depth": sc[:, 6],
        }

    def _book(
        self, table: _DayTable, rows: I64, steps: I64, s: dict[str, np.ndarray]
    ) -> tuple[I64, I64, I64, I64]:
        """Ask/bid prices (cents) and volumes (shares), each rows x 5; absent levels are 0."""
        key = _derive(table.stack["key"][rows, 0][:, None], _BOOK)
        counter = ((table.daynum * 65536 + steps + 1) * 16)[:, None] + np.arange(16)
        u = uniforms(key, counter)
        last, up, down, gap = s["last"], s["up"], s["down"], s["gap"]
        steps_up = gap[:, None] * (1 + (u[:, :LEVELS] * 2).astype(np.int64))
        steps_dn = gap[:, None] * (1 + (u[:, LEVELS : 2 * LEVELS] * 2).astype(np.int64))
        ask_side = u[:, 15] < 0.5  # last trade at the ask (else at the bid)
        at_up = last >= up
        at_down = last <= down
        ask1 = np.where(ask_side, last, np.minimum(last + steps_up[:, 0], up))
        bid1 = np.where(ask_side, np.maximum(last - steps_dn[:, 0], down), last)
        ask1 = np.where(at_down, down, ask1)
        bid1 = np.where(at_up, up, bid1)
        ask = ask1[:, None] + np.concatenate(
            [np.zeros((len(rows), 1), np.int64), np.cumsum(steps_up[:, 1:], axis=1)], axis=1
        )
        bid = bid1[:, None] - np.concatenate(
            [np.zeros((len(rows), 1), np.int64), np.cumsum(steps_dn[:, 1:], axis=1)], axis=1
        )
        ask_ok = (ask <= up[:, None]) & ~at_up[:, None]
        bid_ok = (bid >= down[:, None]) & ~at_down[:, None]
        vu = uniforms(_derive(key, _BOOKV), counter[:, :10])
        lots = np.maximum(np.rint(s["depth"][:, None] * (0.3 + 2.7 * vu)), 1).astype(np.int64)
        no_book = (s["index"] == 1)[:, None]
        ask_ok &= ~no_book
        bid_ok &= ~no_book
        return (
            np.where(ask_ok, ask, 0),
            np.where(bid_ok, bid, 0),
            np.where(ask_ok, lots[:, :LEVELS] * 100, 0),
            np.where(bid_ok, lots[:, LEVELS:] * 100, 0),
        )

    def _resolve(self, codes: list[str], now_ms: int) -> tuple[int, int]:
        """Session day number and step for ``now_ms`` (shared by all codes of one calendar)."""
        date = daynum_of_ms(now_ms)
        markets = {market_of(c) for c in codes} or {"SH"}
        days = {latest_trading_day(mk, date) for mk in markets}
        if len(days) > 1:
            # BJ and SH/SZ share holidays; they only differ before BJ opened in 2021.
            raise InvalidArgument(f"codes {codes!r} trade on different calendars on {now_ms}")
        daynum = days.pop()
        if daynum < date:
            return daynum, self.steps_per_day - 1
        return daynum, self._step_of(now_ms - int(day_ms(date)))

    def tick_columns(self, codes: list[str], now_ms: int) -> dict[str, np.ndarray]:
        """Ticks of ``codes`` at session time ``now_ms`` as columns (prices in yuan).

        Columns: ``time`` and the ``TICK_DTYPES`` fields, with the book as ``askPrice1..5``,
        ``bidPrice1..5``, ``askVol1..5``, ``bidVol1..5`` (volumes in shares).
        """
        now_ms = _ms(now_ms)
        codes = normalize_codes(codes)
        if not codes:
            return {k: np.zeros(0, dtype=v) for k, v in TICK_DTYPES.items()}
        daynum, step = self._resolve(codes, now_ms)
        table, rows = self._table(daynum, codes)
        steps = np.full(len(rows), step, dtype=np.int64)
        return self._assemble(table, rows, steps)

    def _assemble(self, table: _DayTable, rows: I64, steps: I64) -> dict[str, np.ndarray]:
        s = self._states(table, rows, steps)
        ask, bid, askv, bidv = self._book(table, rows, steps, s)
        times = np.array([self.step_time(table.daynum, int(k)) for k in np.unique(steps)])
        time_of = dict(zip(np.unique(steps).tolist(), times.tolist(), strict=True))
        out: dict[str, np.ndarray] = {
            "time": np.array([time_of[int(k)] for k in steps], dtype=np.int64),
            "lastPrice": s["last"] / 100.0,
            "open": s["open"] / 100.0,
            "high": s["high"] / 100.0,
            "low": s["low"] / 100.0,
            "lastClose": s["pre"] / 100.0,
            "amount": s["amount"] / 100.0,
            "volume": s["volume"],
            "pvolume": s["volume"] * 100,
            "stockStatus": np.zeros(len(rows), dtype=np.int32),
            "openInt": np.zeros(len(rows), dtype=np.int64),
            "transactionNum": s["volume"] // 3,
        }
        for i in range(LEVELS):
            out[f"askPrice{i + 1}"] = ask[:, i] / 100.0
            out[f"bidPrice{i + 1}"] = bid[:, i] / 100.0
        for i in range(LEVELS):
            out[f"askVol{i + 1}"] = askv[:, i]
            out[f"bidVol{i + 1}"] = bidv[:, i]
        return out

    def ticks(self, codes: list[str], now_ms: int) -> list[Tick]:
        """The ticks of ``codes`` (universe codes) at session time ``now_ms``, vectorised."""
        codes = normalize_codes(codes)
        cols = self.tick_columns(codes, now_ms)
        return _to_ticks(codes, cols)

    def tick(self, code: str, now_ms: int) -> Tick:
        """The tick of one code at session time ``now_ms``."""
        return self.ticks([code], now_ms)[0]

    # ------------------------------------------------------------------ reference data and bars

    def instrument(self, code: str, day: int) -> InstrumentDetail:
        """Reference data of ``code`` for the session day of ``day`` (``YYYYMMDD``)."""
        code = normalize_code(code)
        if not is_int(day):
            raise InvalidArgument(f"day must be a YYYYMMDD int such as 20240102, got {day!r}")
        d = latest_trading_day(market_of(code), day_number(day))
        return self.history.instrument(code, ymd_of_daynum(d))

    def instruments(self, codes: list[str] | None, day: int) -> list[InstrumentDetail]:
        """Reference data of ``codes`` (None: all) on ``day``; codes not listed then are skipped."""
        wanted = self.universe.codes() if codes is None else normalize_codes(codes)
        out = []
        for c in wanted:
            if c not in self.universe:
                continue
            try:
                out.append(self.instrument(c, day))
            except InvalidArgument:
                continue  # not yet listed on that day
        return out

    def day_ticks(self, code: str, day: int, until_ms: int | None = None) -> dict[str, np.ndarray]:
        """Every tick of ``code`` on ``day`` from 09:30 up to ``until_ms`` (None: the close).

        Row ``k`` is exactly ``tick(code, t_k)`` for the k-th step time ``t_k`` of the day.
        """
        code = normalize_code(code)
        if not is_int(day):
            raise InvalidArgument(f"day must be a YYYYMMDD int such as 20240102, got {day!r}")
        daynum = day_number(day)
        if latest_trading_day(market_of(code), daynum) != daynum:
            raise InvalidArgument(f"{day} is not a trading day of {code}")
        last = self.steps_per_day - 1
        if until_ms is not None:
            until = _ms(until_ms)
            if daynum_of_ms(until) < daynum:
                last = -1
            elif daynum_of_ms(until) == daynum:
                last = self._step_of(until - int(day_ms(daynum)))
        table, rows = self._table(daynum, [code])
        steps = np.arange(0, last + 1, dtype=np.int64)
        return self._assemble(table, np.repeat(rows, len(steps)), steps)

    def intraday_bars(
        self, code: str, day: int, until_ms: int | None = None
    ) -> tuple[Columns, Columns]:
        """Today's 1m bars and the daily bar so far, built from the ticks up to ``until_ms``.

        Each minute bar (labelled by its end; the one in progress included) aggregates the ticks
        whose time falls in it; both results use ``BAR_DTYPES`` columns.
        """
        ticks = self.day_ticks(code, day, until_ms)
        return bars_from_ticks(ticks, self.instrument(code, day).PreClose)

    def bars_in_progress(self, codes: list[str], period: str, now: int) -> list[Bar]:
        """The bar in progress of each code: today's daily bar, or the current minute's.

        Built from the ticks of the current minute only (not the whole day), so a
        whole-market bar subscription stays cheap; the result equals the last row of
        ``intraday_bars``.
        """
        cols = self.tick_columns(codes, now)
        if not len(cols["time"]):
            return []
        last = int(cols["time"][0])  # one calendar: every code shows the same step
        day0 = last - (last + BEIJING_OFFSET_MS) % _DAY_MS
        if last < day0 + OPEN_MS:
            return []  # before the open there is no bar yet
        cents = np.rint(cols["lastPrice"] * 100).astype(np.int64)
        cum_a = np.rint(cols["amount"] * 100).astype(np.int64)
        cum_v = cols["volume"].astype(np.int64)
        if period == "1d":
            first = np.rint(cols["open"] * 100).astype(np.int64)
            high = np.rint(cols["high"] * 100).astype(np.int64)
            low = np.rint(cols["low"] * 100).astype(np.int64)
            vol, amt = cum_v, cum_a
            label = day0
        else:
            label = -(-last // MINUTE_MS) * MINUTE_MS
            first, high, low = cents.copy(), cents.copy(), cents.copy()
            t = self._prev_tick_time(last, day0)
            while t is not None and t > label - MINUTE_MS:
                p = np.rint(self.tick_columns(codes, t)["lastPrice"] * 100)
                first = p.astype(np.int64)
                high = np.maximum(high, first)
                low = np.minimum(low, first)
                t = self._prev_tick_time(t, day0)
            if t is None:
                vol, amt = cum_v, cum_a
                pre = np.rint(cols["lastClose"] * 100).astype(np.int64)
            else:
                base = self.tick_columns(codes, t)
                vol = cum_v - base["volume"].astype(np.int64)
                amt = cum_a - np.rint(base["amount"] * 100).astype(np.int64)
                pre = np.rint(base["lastPrice"] * 100).astype(np.int64)
        if period == "1d":
            pre = np.rint(cols["lastClose"] * 100).astype(np.int64)
        return [
            Bar(
                stock_code=code,
                period=period,
                time=label,
                open=int(first[i]) / 100,
                high=int(high[i]) / 100,
                low=int(low[i]) / 100,
                close=int(cents[i]) / 100,
                volume=int(vol[i]),
                amount=int(amt[i]) / 100,
                preClose=int(pre[i]) / 100,
            )
            for i, code in enumerate(codes)
        ]

    def _prev_tick_time(self, t: int, day0: int) -> int | None:
        """The time of the tick before the one at ``t`` (None for the 09:30 auction tick)."""
        if t <= day0 + OPEN_MS:
            return None
        if t == day0 + AFTERNOON_MS + self.step_ms:
            return day0 + MORNING_END_MS
        return t - self.step_ms

    def history_until(
        self, code: str, period: str, start_ms: int, end_ms: int, now_ms: int
    ) -> Columns:
        """Bars of ``period`` (``1d`` or ``1m``) in range as known at session time ``now_ms``.

        Days before the session day come from the history; the session day from its ticks up
        to ``now_ms``; nothing after it.
        """
        if period not in ("1d", "1m"):
            raise InvalidArgument(f"period must be '1d' or '1m' here, got {period!r}")
        code = normalize_code(code)
        now_ms = _ms(now_ms)
        day = self.session_day(code, now_ms)
        today = day_number(day)
        past_end = int(day_ms(today)) - 1
        end = past_end if not end_ms else min(_ms(end_ms), past_end)
        fetch = self.history.daily_bars if period == "1d" else self.history.minute_bars
        if end >= start_ms:
            old = fetch(code, start_ms, end)
        else:
            old = bar_columns(*(np.zeros(0, np.int64) for _ in range(8)))
        minute, daily = self.intraday_bars(code, day, now_ms)
        new = daily if period == "1d" else minute
        t = new["time"].astype(np.int64)
        keep = (t >= start_ms) & ((t <= end_ms) if end_ms else True)
        return {k: np.concatenate([old[k], new[k][keep]]) for k in old}


def bars_from_ticks(ticks: dict[str, np.ndarray], pre_close: float) -> tuple[Columns, Columns]:
    """1m bars and the daily bar aggregated from a day's tick columns (cumulative fields)."""
    t = ticks["time"]
    n = len(t)
    if n == 0:
        empty = bar_columns(*(np.zeros(0, np.int64) for _ in range(8)))
        return empty, empty
    day0 = int(day_ms(daynum_of_ms(int(t[0]))))
    label = day0 + ((t - day0 + MINUTE_MS - 1) // MINUTE_MS) * MINUTE_MS
    starts = np.flatnonzero(np.diff(label, prepend=label[0] - 1))
    ends = np.append(starts[1:], n) - 1
    price = np.rint(ticks["lastPrice"] * 100).astype(np.int64)
    cumv = ticks["volume"]
    cuma = np.rint(ticks["amount"] * 100).astype(np.int64)
    prev_v = np.concatenate([[0], cumv[ends[:-1]]])
    prev_a = np.concatenate([[0], cuma[ends[:-1]]])
    high = np.maximum.reduceat(price, starts)
    low = np.minimum.reduceat(price, starts)
    pre_c = round(pre_close * 100)
    close = price[ends]
    pre = np.concatenate([[pre_c], close[:-1]])
    minute = bar_columns(
        label[starts],
        price[starts],
        high,
        low,
        close,
        cumv[ends] - prev_v,
        cuma[ends] - prev_a,
        pre,
    )
    daily = bar_columns(
        np.array([day0]),
        price[:1],
        np.array([price.max()]),
        np.array([price.min()]),
        price[-1:],
        cumv[-1:],
        cuma[-1:],
        np.array([pre_c]),
    )
    return minute, daily


def _to_ticks(codes: list[str], cols: dict[str, np.ndarray]) -> list[Tick]:
    lists = {k: v.tolist() for k, v in cols.items()}
    ask = list(zip(*(lists[f"askPrice{i}"] for i in range(1, LEVELS + 1)), strict=True))
    bid = list(zip(*(lists[f"bidPrice{i}"] for i in range(1, LEVELS + 1)), strict=True))
    askv = list(zip(*(lists[f"askVol{i}"] for i in range(1, LEVELS + 1)), strict=True))
    bidv = list(zip(*(lists[f"bidVol{i}"] for i in range(1, LEVELS + 1)), strict=True))
    return [
        Tick(
            stock_code=code,
            time=lists["time"][i],
            lastPrice=lists["lastPrice"][i],
            open=lists["open"][i],
            high=lists["high"][i],
            low=lists["low"][i],
            lastClose=lists["lastClose"][i],
            amount=lists["amount"][i],
            volume=lists["volume"][i],
            pvolume=lists["pvolume"][i],
            stockStatus=lists["stockStatus"][i],
            askPrice=list(ask[i]),
            bidPrice=list(bid[i]),
            askVol=list(askv[i]),
            bidVol=list(bidv[i]),
            transactionNum=lists["transactionNum"][i],
        )
        for i, code in enumerate(codes)
    ]


def _ms(value: object) -> int:
    if not is_whole(value) or int(value) < 0:
        raise InvalidArgument(f"time must be Unix milliseconds (an int >= 0), got {value!r}")
    return int(value)


__all__ = [
    "ALLOWED_STEPS_MS",
    "SyntheticMarket",
    "bars_from_ticks",
    "latest_trading_day",
    "virtual_session_time",
]
