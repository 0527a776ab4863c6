"""``ReplayMarket``: real history from the K-line cache, replayed one timestamp at a time.

The market holds the cached columns of the codes it replays (memory-mapped views, never
copies of the whole history) and one timeline: every distinct bar (or tick) time of those
codes inside ``[start, end]``. Step ``k`` is the moment bar ``k`` closed. Everything the market
answers is as of a moment: a bar is visible once it has closed (a daily bar, labelled 00:00 of
its day, closes at 15:00; a minute bar is labelled by its end; a tick by its own time).

Prices are raw (unadjusted): orders match against what was traded that day. Instruments are
derived from the bars: the pre-close is the day's ``preClose`` field (the exchange's, which
already accounts for an ex-rights day) or else the previous close; limits follow the board
(ST names, given by the caller, 5 %) and the era, and a new listing's first days follow their
own rules where the cache's instrument lists give the listing date (``backends.daylimits``,
``replay.listings``); a code without a bar that day, or whose bar is marked suspended or has
no volume, is suspended (``IsTrading`` False).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.backends.base import Dividend
from qmtkit.backends.daylimits import day_limits, ordinary_limits
from qmtkit.backends.market import Market
from qmtkit.backends.replay import fresh
from qmtkit.backends.replay.listings import Listings, listing_dates
from qmtkit.backends.sim import marks
from qmtkit.backends.sim.market import SyntheticMarket
from qmtkit.backends.sim.rules import Listing
from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import Board, normalize_code, parse_code
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import DAY_MS, ms_to_yyyymmdd, yyyymmdd_to_ms
from qmtkit.data.horizon import close_time, visible_end
from qmtkit.data.schema import BAR_DTYPES, dtypes_for, window
from qmtkit.errors import InvalidArgument
from qmtkit.models import Bar, InstrumentDetail, Tick

#: The open of a daily bar's session, 09:30 Beijing.
DAILY_OPEN_MS: Final = 9 * 3_600_000 + 30 * 60_000
MINUTE_MS: Final = 60_000
PERIODS: Final = ("1d", "1m", "tick")

#: About how many (day, code) facts of an aligned daily replay are worked out in one vector
#: step (a block of days of every code).
_BLOCK_RECORDS: Final = 1 << 16
#: From how many new listings at once ``listings_for`` gathers their facts as arrays (below
#: it, numpy's per-call cost is more than reading them one by one).
_GATHER_FROM: Final = 8

F64 = npt.NDArray[np.float64]
_INDEX, _ETF = Board.INDEX, Board.ETF  # plain names: ``Board.X`` reads go through a descriptor
I64 = npt.NDArray[np.int64]


class FactsBlock(NamedTuple):
    """``ReplayMarket.facts_block``: the day facts of steps ``k0`` to ``k1`` (exclusive) of
    every code, by row ``(step - k0) * len(codes) + number[code]``: trading flags, down and
    up limits (an up limit of NaN: ask ``listing``, the code has rules of its own that day),
    and each code's price tick by ``number[code]``."""

    k0: int
    k1: int
    number: dict[str, int]
    trading: npt.NDArray[np.bool_]
    down: F64
    up: F64
    ticks: F64


class _Fixed(NamedTuple):
    """The parts of a code's instrument that do not change from day to day."""

    board: Board
    is_st: bool
    symbol: str
    exchange: str
    list_date: int  # YYYYMMDD, 0: unknown
    open_date: str
    price_tick: float
    board_name: str


def _day_of(ms: int) -> int:
    return int(ms_to_yyyymmdd(np.asarray([ms]))[0])


@functools.lru_cache(maxsize=1 << 14)
def day_ms(day: int) -> int:
    """00:00 Beijing of ``day`` (``YYYYMMDD``) as Unix ms."""
    return int(yyyymmdd_to_ms(np.asarray([day]))[0])


class _PricesInRange:
    """``in_range`` for a step's prices held as one float64 array (``_array``)."""

    __slots__ = ("_array", "_in_range")
    _array: F64
    _in_range: bool | None  # None: not known yet (looked at on first use)

    @property
    def in_range(self) -> bool:
        """Whether every price given is in the exact market value's vector range
        (``marks.in_range``)."""
        known = self._in_range
        if known is None:
            known = self._in_range = marks.in_range(self._array)
        return known


class StepPrices(_PricesInRange, Mapping[str, float]):
    """Code -> price of one step of an aligned replay (every code, in code order): the step's
    values, looked up by the code's index; it never changes.

    Also the step's prices by code number (``sim.marks.KeyedPrices``), which the broker marks a
    quiet account with: the timeline's own column, no Python float per code.
    """

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], array: F64, in_range: bool | None = None) -> None:
        self._index, self._array = index, array
        self._values: list[float] | None = None  # made on the first lookup by code
        self._in_range = in_range  # None: not known yet (looked at on first use)

    @property
    def index(self) -> dict[str, int]:
        """Code -> its number (the replay's code order)."""
        return self._index

    def by_key(self) -> tuple[F64, None]:
        """Every code's price by number; every code has one."""
        return self._array, None

    def _list(self) -> list[float]:
        values = self._values
        if values is None:
            values = self._values = self._array.tolist()
        return values

    def get(self, code: str, default: Any = None) -> Any:
        """The price of ``code`` at this step, or ``default`` if it is not replayed."""
        i = self._index.get(code)
        return default if i is None else self._list()[i]

    def __getitem__(self, code: str) -> float:
        return self._list()[self._index[code]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class SparsePrices(_PricesInRange, Mapping[str, float]):
    """Code -> price of the codes with a record at one step of a replay whose codes are not
    all at every step; by code number as ``StepPrices`` (with which codes have one)."""

    __slots__ = ("_codes", "_index", "_keys", "_map")

    def __init__(
        self,
        index: dict[str, int],
        codes: list[str],
        keys: I64,
        array: F64,
        in_range: bool | None = None,
    ) -> None:
        self._index, self._codes, self._keys, self._array = index, codes, keys, array
        self._map: dict[str, float] | None = None
        self._in_range = in_range  # None: not known yet (looked at on first use)

    @property
    def index(self) -> dict[str, int]:
        """Code -> its number (the replay's code order)."""
        return self._index

    def by_key(self) -> tuple[F64, npt.NDArray[np.bool_]]:
        """Every code's price by number (0 where it has none) and which have one."""
        width = len(self._index)
        values = np.zeros(width, dtype=np.float64)
        present = np.zeros(width, dtype=np.bool_)
        values[self._keys] = self._array
        present[self._keys] = True
        return values, present

    def _mapping(self) -> dict[str, float]:
        found = self._map
        if found is None:
            names = self._codes
            keys = [names[i] for i in self._keys.tolist()]
            found = self._map = dict(zip(keys, self._array.tolist(), strict=True))
        return found

    def get(self, code: str, default: Any = None) -> Any:
        """The price of ``code`` at this step, or ``default`` if it has no record then."""
        return self._mapping().get(code, default)

    def __getitem__(self, code: str) -> float:
        return self._mapping()[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._keys)


#: The fields of a replayed ``Bar`` read from the long columns (besides code, period, time
#: and ``suspendFlag``), in ``Bar``'s order.
_BAR_FIELDS: Final = ("open", "high", "low", "close", "volume", "amount", "preClose")
#: ``_BAR_FIELDS`` but the pre-close, which ``bars`` may take from the step before.
_PRICED_FIELDS: Final = _BAR_FIELDS[:-1]


class ReplayMarket:
    """Cached history of ``codes`` for ``period`` between ``start_ms`` and ``end_ms``.

    ``cache`` is the K-line cache to read; ``st_codes`` names the codes to treat as ST (5 %
    limits on the main boards). Codes with no record in the range are dropped from the
    timeline (``missing`` lists them) but stay readable as history.
    """

    def __init__(
        self,
        cache: Cache,
        codes: Iterable[str],
        period: str,
        start_ms: int,
        end_ms: int,
        *,
        st_codes: Iterable[str] = (),
    ) -> None:
        if period not in PERIODS:
            raise InvalidArgument(f"a replay runs on '1d', '1m' or 'tick' data, not {period!r}")
        if not 0 < start_ms <= end_ms:
            raise InvalidArgument(
                f"bad replay range {start_ms}..{end_ms}: expected 0 < start <= end (Unix ms)"
            )
        self.cache = cache
        self.period = period
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.st_codes = frozenset(normalize_code(c) for c in st_codes)
        wanted = list(dict.fromkeys(normalize_code(c) for c in codes))
        if not wanted:
            raise InvalidArgument("a replay needs at least one code")
        self._cols: dict[str, dict[str, npt.NDArray[Any]]] = {}
        self._daily: dict[str, dict[str, npt.NDArray[Any]]] = {}
        self._boards: dict[str, Board] = {}
        parts_t: list[I64] = []
        self.codes: list[str] = []
        self.missing: list[str] = []
        self._slices: list[tuple[str, int, int]] = []
        for code in wanted:
            self._boards[code] = parse_code(code).board
            cols = cache.arrays(period, code)
            t = cols["time"]
            a = int(np.searchsorted(t, start_ms, "left"))
            b = int(np.searchsorted(t, self._last_label(end_ms), "right"))
            if a >= b:
                self.missing.append(code)
                continue
            self.codes.append(code)
            self._cols[code] = cols
            self._slices.append((code, a, b))
            parts_t.append(np.asarray(t[a:b], dtype=np.int64))
        if not self.codes:
            raise InvalidArgument(
                f"no cached {period} data for {', '.join(wanted[:10])} between the replay's "
                "start and end: download or import it first (qmtkit download / import-datadir)"
            )
        # Codes with the very same times (whole-market daily bars, aligned ticks) interleave
        # without a sort: stacking them is the stable sort by time, done in one pass.
        first = parts_t[0]
        aligned = bool(np.all(first[1:] > first[:-1])) and all(
            len(p) == len(first) and np.array_equal(p, first) for p in parts_t[1:]
        )
        self._order: I64 | None = None
        #: (time, code number, row) of every record the replay will publish, in timeline order
        #: (``rec_time``, ``rec_code``, ``rec_row``): an aligned replay's are made on first use
        #: (its own paths find a record by arithmetic; over a whole market they were three
        #: arrays of 12.5 M values made before the first step).
        self._rec: tuple[I64, I64, I64] | None = None
        if aligned:  # a code's times are sorted and distinct: they are the steps
            width = len(parts_t)
            self.steps: I64 = np.asarray(first, dtype=np.int64)
            self.bounds: I64 = np.arange(0, (len(first) + 1) * width, width, dtype=np.int64)
        else:
            times = np.concatenate(parts_t)
            order = np.argsort(times, kind="stable")
            self._order = order
            codes = np.repeat(np.arange(len(parts_t), dtype=np.int64), [len(p) for p in parts_t])
            rows = np.concatenate([np.arange(a, b, dtype=np.int64) for _, a, b in self._slices])
            self._rec = (times[order], codes[order], rows[order])
            rec_time = self._rec[0]
            self.steps = np.unique(rec_time)
            self.bounds = np.searchsorted(rec_time, self.steps, "left").astype(np.int64)
            self.bounds = np.append(self.bounds, len(rec_time))
        self.step_days: I64 = ms_to_yyyymmdd(self.steps)
        self._aligned = aligned
        self._bounds: list[int] = self.bounds.tolist()
        self._step_of_day: dict[int, int] | None = None  # daily bars: YYYYMMDD -> step
        self._code_index = {c: i for i, c in enumerate(self.codes)}
        self._long: dict[str, npt.NDArray[Any]] | None = None
        #: Whether any replayed record has a non-zero ``suspendFlag`` (None: not looked yet).
        self._suspended: bool | None = None
        #: Per step of an aligned replay: every code's pre-close has the bits of its close one
        #: step before (None: not looked yet; see ``bars``).
        self._pre_is_last_close: list[bool] | None = None
        #: The last step ``bars`` made and its closes (their float objects).
        self._bars_closes: tuple[int, list[float]] = (-2, [])
        self._long_frame: pl.DataFrame | None = None
        self._prices_step = -1
        #: Whether every replayed close (last price) is in ``marks.in_range`` (None: not seen).
        self._prices_in_range: bool | None = None
        self._prices: Mapping[str, float] = {}
        self._dividends: dict[str, list[Dividend]] = {}
        self._ex_days: dict[str, dict[int, list[Dividend]]] = {}
        self._ex_index: dict[int, list[str]] | None = None
        self._instr_day = 0
        self._instr: dict[str, InstrumentDetail] = {}
        self._listing_day = 0
        self._listings: dict[str, Listing] = {}
        self._fixed_of: dict[str, _Fixed] = {}
        #: Per code number: what its listings keep from day to day (exchange, tick, index).
        self._listing_parts: list[tuple[str, float, bool]] | None = None
        # The day facts of steps [_blk_k0, _blk_k1) of every code (aligned daily replays).
        self._blk_k0 = self._blk_k1 = 0
        self._blk_pre: F64 = np.zeros(0)
        self._blk_trading: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._blk_down: F64 = np.zeros(0)
        self._blk_up: F64 = np.zeros(0)
        self._row_day, self._row_at = 0, -1  # the day whose row _day_row gave last, and the row
        self._ticks: F64 | None = None  # each code's price tick (``facts_block``)
        self._facts: FactsBlock | None = None  # ``facts_block``'s answer for the block in force
        self.listings = Listings(listing_dates(cache.root, self.codes), cache.home)

    def _last_label(self, end_ms: int) -> int:
        return end_ms

    def _records(self) -> tuple[I64, I64, I64]:
        found = self._rec
        if found is None:  # aligned: every code at every step, in code order
            steps, width = len(self.steps), len(self.codes)
            starts = np.asarray([a for _, a, _ in self._slices], dtype=np.int64)
            found = self._rec = (
                np.repeat(self.steps, width),
                np.tile(np.arange(width, dtype=np.int64), steps),
                (np.arange(steps, dtype=np.int64)[:, None] + starts[None, :]).ravel(),
            )
        return found

    def _row(self, j: int) -> int:
        """``rec_row[j]``; an aligned replay's by arithmetic (no record columns made)."""
        if self._rec is None:
            width = len(self.codes)
            return self._slices[j % width][1] + j // width
        return int(self._rec[2][j])

    @property
    def rec_time(self) -> I64:
        """Each record's time, in timeline order."""
        return self._records()[0]

    @property
    def rec_code(self) -> I64:
        """Each record's code number (index into ``codes``), in timeline order."""
        return self._records()[1]

    @property
    def rec_row(self) -> I64:
        """Each record's row in its code's cached columns, in timeline order."""
        return self._records()[2]

    # ------------------------------------------------------------------ timeline

    def __len__(self) -> int:
        return len(self.steps)

    def step_close(self, k: int) -> int:
        """When step ``k``'s records are complete (Unix ms)."""
        return close_time(self.period, int(self.steps[k]))

    def step_open(self, k: int) -> int:
        """When step ``k``'s records began: the open its ``next_open`` fills happen at."""
        t = int(self.steps[k])
        if self.period == "1d":
            return t + DAILY_OPEN_MS
        if self.period == "1m":
            return t - MINUTE_MS
        return t

    def step_day(self, k: int) -> int:
        """The trading day (``YYYYMMDD``) of step ``k``."""
        return int(self.step_days[k])

    def last_of_day(self, k: int) -> bool:
        """Whether step ``k`` is the last of its trading day in the replay."""
        return k + 1 >= len(self.steps) or self.step_days[k + 1] != self.step_days[k]

    def long_columns(self) -> dict[str, npt.NDArray[Any]]:
        """Every replayed record as columns in timeline order (built once, for fast forms)."""
        if self._long is None:
            order = self._order
            long = {}
            total = int(self.bounds[-1])
            for name, dt in dtypes_for(self.period).items():
                parts = [np.asarray(self._cols[c][name][a:b], dtype=dt) for c, a, b in self._slices]
                out = fresh.empty(total, dt)
                if order is None:
                    np.stack(parts, axis=1, out=out.reshape(len(self.steps), len(parts)))
                else:
                    np.take(np.concatenate(parts), order, out=out)
                long[name] = out
            self._long = long
        return self._long

    def frame_range(self, first: int, last: int) -> pl.DataFrame:
        """The records of steps ``first`` to ``last`` (inclusive) as one frame (see ``frame``)."""
        self.frame(first)
        assert self._long_frame is not None
        a, b = int(self.bounds[first]), int(self.bounds[last + 1])
        return self._long_frame.slice(a, b - a)

    def _code_column(self) -> I64 | npt.NDArray[np.uint32]:
        """Each record's code number for the long frame (aligned: without the other records'
        columns, which the fast forms never read)."""
        if self._rec is None:
            width = len(self.codes)
            return np.tile(np.arange(width, dtype=np.uint32), len(self.steps))
        return self.rec_code

    def frame(self, k: int) -> pl.DataFrame:
        """Step ``k``'s records of every code as one frame: ``code``, ``time`` and the fields.

        A zero-copy slice of one frame of the whole replay, built on first use.
        """
        if self._long_frame is None:
            cols = self.long_columns()
            codes = pl.Series("code", self.codes, dtype=pl.Categorical)
            data: dict[str, Any] = {"code": codes.gather(self._code_column())}
            data.update(cols)
            self._long_frame = pl.DataFrame(data).with_columns(
                pl.col("time").cast(pl.Datetime("ms"))
            )
        a, b = int(self.bounds[k]), int(self.bounds[k + 1])
        return self._long_frame.slice(a, b - a)

    def bars(self, k: int) -> list[Bar]:
        """Step ``k``'s bars as ``Bar`` records, in code order (bar periods only)."""
        cols = self.long_columns()
        a, b = self._bounds[k], self._bounds[k + 1]
        names = self.codes
        codes = names if self._aligned else [names[i] for i in self.rec_code[a:b].tolist()]
        period = self.period
        # A step's records share its time: one int for all of them.
        t = int(self.steps[k])
        # zip over the columns' lists: no index per field per bar (a replay makes one Bar per
        # code per step, the per-bar form's largest cost before the strategy's own).
        # The closes as the step's price map made them already (the day's mark runs before
        # the bars are handed out): the same float objects, not 100 new ones.
        prices = self._prices
        made = prices._values if self._prices_step == k and type(prices) is StepPrices else None
        values = [
            made if f == "close" and made is not None else cols[f][a:b].tolist()
            for f in _PRICED_FIELDS
        ]
        last, closes = self._bars_closes
        if last == k - 1 and self._pre_closes_repeat(k):
            # Each code's pre-close is its close of the step before, bit for bit (a day's bars
            # in an aligned daily replay): the same float objects, not 100 new ones.
            values.append(closes)
        else:
            values.append(cols["preClose"][a:b].tolist())
        self._bars_closes = (k, values[3])
        if self._suspended is None:
            self._suspended = bool(cols["suspendFlag"].any())
        if self._suspended:
            return [
                Bar(
                    stock_code=code,
                    period=period,
                    time=t,
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=v,
                    amount=am,
                    preClose=pc,
                    suspendFlag=sf,
                )
                for code, o, h, lo, c, v, am, pc, sf in zip(
                    codes, *values, cols["suspendFlag"][a:b].tolist(), strict=True
                )
            ]
        # No record of the replay is flagged suspended (the usual case): the field keeps its
        # default (0), one keyword less per bar.
        return [
            Bar(
                stock_code=code,
                period=period,
                time=t,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                amount=am,
                preClose=pc,
            )
            for code, o, h, lo, c, v, am, pc in zip(codes, *values, strict=True)
        ]

    def _pre_closes_repeat(self, k: int) -> bool:
        """Whether step ``k`` of an aligned replay has, for every code, a pre-close with the
        bits of the code's close at step ``k - 1`` (looked up for every step at once)."""
        if not self._aligned or k < 1:
            return False
        same = self._pre_is_last_close
        if same is None:
            cols = self.long_columns()
            n = len(self.codes)
            pre = np.ascontiguousarray(cols["preClose"], dtype=np.float64).view(np.int64)
            close = np.ascontiguousarray(cols["close"], dtype=np.float64).view(np.int64)
            # Aligned: step k holds records k*n .. k*n+n-1, every code in code order.
            equal = (pre[n:] == close[:-n]).reshape(-1, n).all(axis=1)
            same = self._pre_is_last_close = [False, *equal.tolist()]
        return same[k]

    def step_prices(self, k: int) -> Mapping[str, float]:
        """Code -> close (last price for ticks) of every record of step ``k``."""
        if k != self._prices_step:
            cols = self.long_columns()
            a, b = self._bounds[k], self._bounds[k + 1]
            name = "lastPrice" if self.period == "tick" else "close"
            if self._prices_in_range is None:  # one look at the whole replay's prices
                self._prices_in_range = marks.in_range(cols[name])
            # All in range or not: then each step's own look says.
            sure = True if self._prices_in_range else None
            if self._aligned:
                # Every code, in code order: the codes' own index finds a price (a map of
                # every code built each step cost more than the day's mark of the held ones).
                self._prices = StepPrices(self._code_index, cols[name][a:b], sure)
            else:
                self._prices = SparsePrices(
                    self._code_index, self.codes, self.rec_code[a:b], cols[name][a:b], sure
                )
            self._prices_step = k
        return self._prices

    def records(self, k: int) -> list[tuple[str, int]]:
        """Step ``k``'s (code, row) pairs."""
        a, b = int(self.bounds[k]), int(self.bounds[k + 1])
        codes = self.codes
        return [
            (codes[i], r)
            for i, r in zip(self.rec_code[a:b].tolist(), self.rec_row[a:b].tolist(), strict=True)
        ]

    # ------------------------------------------------------------------ per code

    def position(self, code: str, k: int) -> int | None:
        """Where ``code``'s record at step ``k`` is in the timeline (the long columns), if it
        has one (no search when every code has a record at every step)."""
        i = self._code_index.get(code)
        if i is None:
            return None
        a = self._bounds[k]
        if self._aligned:
            return a + i
        b = self._bounds[k + 1]
        # Within a step the records are in code order (a stable sort of codes in order).
        codes = (self._rec or self._records())[1]  # made: not aligned
        j = a + int(codes[a:b].searchsorted(i))
        return j if j < b and int(codes[j]) == i else None

    def row_of(self, code: str, k: int) -> int | None:
        """The row of ``code``'s record at step ``k``, if it has one."""
        j = self.position(code, k)
        return None if j is None else self._row(j)

    def bar_at(self, code: str, k: int) -> tuple[float, float, float, float, int] | None:
        """(open, high, low, close, volume) of ``code``'s record at step ``k``, if it has one.

        Read from the timeline's own columns once a fast form has laid them out: a step's
        records sit side by side there, while each code's cached columns are a file of their
        own (over a whole market, reading those for each order was the most of a book's cost).
        """
        j = self.position(code, k)
        if j is None:
            return None
        long = self._long
        if long is None:
            return self.ohlcv(code, self._row(j))
        return (
            float(long["open"][j]),
            float(long["high"][j]),
            float(long["low"][j]),
            float(long["close"][j]),
            int(long["volume"][j]),
        )

    def bars_at(self, codes: list[str], k: int) -> tuple[I64, dict[str, npt.NDArray[Any]]] | None:
        """``bar_at`` of many codes in one gather: the indexes into ``codes`` of those with a
        record at step ``k``, and those records' open, high, low, close and volume as arrays
        (in that order). None until a fast form has laid out the timeline's columns."""
        long = self._long
        if long is None:
            return None
        index = self._code_index
        i = np.fromiter((index.get(c, -1) for c in codes), np.int64, len(codes))
        a = self._bounds[k]
        if self._aligned:
            j = a + i
            have = i >= 0
        else:
            seg = self.rec_code[a : self._bounds[k + 1]]
            p = np.searchsorted(seg, i)
            if len(seg):
                have = (i >= 0) & (p < len(seg)) & (seg[np.minimum(p, len(seg) - 1)] == i)
            else:
                have = np.zeros(len(i), dtype=np.bool_)
            j = a + p
        picked = np.flatnonzero(have)
        j = j[picked]
        return picked, {n: long[n][j] for n in ("open", "high", "low", "close", "volume")}

    def row_at(self, code: str, label: int) -> int | None:
        """The row of ``code``'s record labelled exactly ``label``, if there is one."""
        cols = self._cols.get(code)
        if cols is None:
            return None
        t = cols["time"]
        i = int(t.searchsorted(label))
        return i if i < len(t) and int(t[i]) == label else None

    def ohlcv(self, code: str, row: int) -> tuple[float, float, float, float, int]:
        """(open, high, low, close, volume) of one bar record."""
        c = self._cols[code]
        return (
            float(c["open"][row]),
            float(c["high"][row]),
            float(c["low"][row]),
            float(c["close"][row]),
            int(c["volume"][row]),
        )

    def value(self, code: str, row: int, name: str) -> float:
        """One field of one record."""
        return float(self._cols[code][name][row])

    def _visible_row(self, code: str, now_ms: int) -> int | None:
        cols = self._cols.get(code)
        if cols is None:
            return None
        i = int(cols["time"].searchsorted(visible_end(self.period, now_ms), "right")) - 1
        return i if i >= 0 else None

    def _day_bar(self, code: str, day: int) -> tuple[float, float, int, int] | None:
        """(preClose, previous close, volume, suspendFlag) of ``code`` on ``day`` if any."""
        if self.period == "1d":
            if self._step_of_day is None:
                self._step_of_day = {d: k for k, d in enumerate(self.step_days.tolist())}
            k = self._step_of_day.get(day)
            j = self.position(code, k) if k is not None else None
            long = self._long
            if j is not None and long is not None and k and self._aligned:
                # Every code has a bar at every step: the one before is a step back.
                return (
                    float(long["preClose"][j]),
                    float(long["close"][j - len(self.codes)]),
                    int(long["volume"][j]),
                    int(long["suspendFlag"][j]),
                )
            row = None if j is None else self._row(j)
            if row is not None:  # the replay has the code's bar of that day: no search
                c = self._cols[code]
                return (
                    float(c["preClose"][row]),
                    float(c["close"][row - 1]) if row > 0 else 0.0,
                    int(c["volume"][row]),
                    int(c["suspendFlag"][row]),
                )
        label = day_ms(day)
        if self.period == "1d":
            cols = self._cols.get(code)
        else:
            cols = self._daily.get(code)
            if cols is None:
                cols = self._daily[code] = self.cache.arrays("1d", code)
        if cols is not None and len(cols["time"]):
            t = cols["time"]
            i = int(t.searchsorted(label))
            prev = float(cols["close"][i - 1]) if i > 0 else 0.0
            if i < len(t) and int(t[i]) == label:
                return (
                    float(cols["preClose"][i]),
                    prev,
                    int(cols["volume"][i]),
                    int(cols["suspendFlag"][i]),
                )
            if self.period == "1d":
                return (0.0, prev, 0, 1) if prev > 0 else None
        if self.period == "1d":
            return None
        # Intraday data without daily bars: the day's records and the close before them.
        intraday = self._cols.get(code)
        if intraday is None:
            return None
        t = intraday["time"]
        a = int(np.searchsorted(t, label, "left"))
        b = int(np.searchsorted(t, label + DAY_MS, "left"))
        close_name = "close" if self.period == "1m" else "lastPrice"
        prev = float(intraday[close_name][a - 1]) if a > 0 else 0.0
        if a >= b:
            return (0.0, prev, 0, 1) if prev > 0 else None
        vol = int(np.asarray(intraday["volume"][a:b]).max()) if b > a else 0
        return (0.0, prev, vol, 0)

    # ------------------------------------------------------------------ the Market seam

    def session_day(self, code: str, now_ms: int) -> int:
        """The Beijing calendar day of ``now_ms`` (the replay only steps on trading days)."""
        return _day_of(now_ms)

    def instrument(self, code: str, day: int) -> InstrumentDetail:
        """Reference data of ``code`` on ``day`` derived from its bars (see the module doc)."""
        if day != self._instr_day:
            self._instr_day, self._instr = day, {}
        found = self._instr.get(code)
        if found is None:
            norm = code if code in self._code_index else normalize_code(code)
            found = self._instr[code] = self._instrument(norm, day)
        return found

    def listing(self, code: str, day: int) -> Listing:
        """``code``'s instrument on ``day`` as the order rules read it (``rules.Listing``),
        with the very facts of ``instrument(code, day)`` and no ``InstrumentDetail`` made.

        ``code`` must be normal (``600000.SH``): the order path has normalised it.
        """
        if day != self._listing_day:
            self._listing_day, self._listings = day, {}
        found = self._listings.get(code)
        if found is not None:
            return found
        f = self._fixed_of.get(code) or self._fixed(code)
        _, trading, down, up = self._day_facts(code, day)
        found = self._listings[code] = Listing(
            code, f.exchange, code, f.price_tick, up, down, trading, f.board is _INDEX
        )
        return found

    def listings_for(self, codes: list[str], day: int, numbers: list[int]) -> list[Listing]:
        """``[listing(code, day) for code in codes]``, the listings not made yet read from the
        block's facts in one gather. ``codes`` are the replay's own (normal), ``numbers``
        their places in ``codes`` of the market."""
        if day != self._listing_day:
            self._listing_day, self._listings = day, {}
        made = self._listings
        if len(codes) < _GATHER_FROM:
            listing = self.listing
            return [made.get(c) or listing(c, day) for c in codes]
        if made:
            new = [(c, i) for c, i in zip(codes, numbers, strict=True) if c not in made]
        else:
            new = list(zip(codes, numbers, strict=True))
        row = self._day_row(day) if len(new) >= _GATHER_FROM else -1
        if row < 0:
            listing = self.listing
            for code, _ in new:
                listing(code, day)
        else:
            parts = self._listing_parts
            if parts is None:
                parts = self._listing_parts = [
                    (f.exchange, f.price_tick, f.board is _INDEX)
                    for f in map(self._fixed, self.codes)
                ]
            at = np.fromiter((i for _, i in new), np.int64, len(new)) + row
            facts = zip(
                new,
                self._blk_trading[at].tolist(),
                self._blk_down[at].tolist(),
                self._blk_up[at].tolist(),
                strict=True,
            )
            for (code, i), trading, down, up in facts:
                if up != up:  # NaN: the scalar rules, as _day_facts
                    down, up = self._limits(code, self._blk_pre.item(row + i), day)
                exchange, tick, index = parts[i]
                # A code twice in ``new`` is made twice, the same both times.
                made[code] = Listing(code, exchange, code, tick, up, down, trading, index)
        return list(map(made.__getitem__, codes))

    def listings_made(self, day: int) -> dict[str, Listing]:
        """The listings ``listing`` has made for ``day`` so far, by code (read only: a code
        not in it is made by ``listing``)."""
        if day != self._listing_day:
            self._listing_day, self._listings = day, {}
        return self._listings

    def pre_close(self, code: str, day: int) -> float:
        """``code``'s pre-close on ``day``: ``instrument(code, day).PreClose`` without the
        ``InstrumentDetail`` (``code`` normal, as for ``listing``)."""
        return self._day_facts(code, day)[0]

    def _fixed(self, code: str) -> _Fixed:
        """What a code's instrument keeps from day to day (worked out once per code)."""
        fixed = self._fixed_of.get(code)
        if fixed is None:
            board = self._boards.get(code) or parse_code(code).board
            symbol, exchange = code.split(".")
            list_date = self.listings.dates.get(code, 0)
            fixed = self._fixed_of[code] = _Fixed(
                board,
                code in self.st_codes,
                symbol,
                exchange,
                list_date,
                str(list_date) if list_date else "",
                0.001 if board is _ETF else 0.01,
                board.value,
            )
        return fixed

    def _instrument(self, code: str, day: int) -> InstrumentDetail:
        f = self._fixed(code)
        pre, trading, down, up = self._day_facts(code, day)
        return InstrumentDetail(
            ExchangeID=f.exchange,
            InstrumentID=f.symbol,
            InstrumentName=code,
            OpenDate=f.open_date,
            PreClose=pre,
            UpStopPrice=up,
            DownStopPrice=down,
            PriceTick=f.price_tick,
            IsTrading=trading,
            InstrumentStatus=0 if trading else 1,
            board=f.board_name,
            is_st=f.is_st,
        )

    def _day_facts(self, code: str, day: int) -> tuple[float, bool, float, float]:
        """(pre-close, trading, down limit, up limit) of ``code`` on ``day``.

        An aligned daily replay reads them from the facts of a block of days of every code,
        worked out in one vector step (``_block``); its first day and other replays work
        them out one code at a time (``_day_facts_of``), with the same answers.
        """
        j = self._day_row(day)
        i = self._code_index.get(code)
        if j < 0 or i is None:
            return self._day_facts_of(code, day)
        j += i
        pre = self._blk_pre.item(j)
        up = self._blk_up.item(j)
        if up == up:
            down = self._blk_down.item(j)
        else:  # NaN: left to the scalar rules
            down, up = self._limits(code, pre, day)
        return pre, self._blk_trading.item(j), down, up

    def _day_row(self, day: int) -> int:
        """Where the block's facts of ``day`` begin (its first code's), or -1 if the block
        does not hold that day (then each code works out its own)."""
        if day == self._row_day:
            return self._row_at
        row = -1
        if self.period == "1d" and self._aligned and self._long is not None:
            if self._step_of_day is None:
                self._step_of_day = {d: k for k, d in enumerate(self.step_days.tolist())}
            k = self._step_of_day.get(day)
            if k:  # the first step's close a step back is outside the timeline
                if not self._blk_k0 <= k < self._blk_k1:
                    self._block(k)
                row = (k - self._blk_k0) * len(self.codes)
        self._row_day, self._row_at = day, row
        return row

    def facts_block(self, day: int) -> FactsBlock | None:
        """The day facts ``listing`` reads, of every code for the block of steps holding
        ``day``, as columns (an aligned daily replay from its second step; None: ``listing``
        works them out code by code). A hook for the bar books' vectors (``barbook``)."""
        if self._day_row(day) < 0:
            return None
        made = self._facts
        if made is None or made.up is not self._blk_up:  # made once per block
            if self._ticks is None:
                self._ticks = np.asarray([self._fixed(c).price_tick for c in self.codes])
            made = self._facts = FactsBlock(
                self._blk_k0,
                self._blk_k1,
                self._code_index,
                self._blk_trading,
                self._blk_down,
                self._blk_up,
                self._ticks,
            )
        return made

    def _day_facts_of(self, code: str, day: int) -> tuple[float, bool, float, float]:
        """``_day_facts`` of one code from its own bar of the day."""
        found = self._day_bar(code, day)
        pre = 0.0
        trading = False
        if found is not None:
            pre_field, prev, volume, suspended = found
            pre = pre_field if pre_field > 0 else prev
            trading = volume > 0 and suspended == 0
        down, up = self._limits(code, pre, day)
        return pre, trading, down, up

    def _limits(self, code: str, pre: float, day: int) -> tuple[float, float]:
        """(down, up) of ``code`` on ``day`` from its pre-close (0, 0: none or no price)."""
        f = self._fixed(code)
        if pre > 0 and f.board is not _INDEX:
            nth = self.listings.nth_day(code, day) if f.list_date else 0
            return day_limits(pre, f.board, f.is_st, day, list_date=f.list_date, nth_day=nth)
        return 0.0, 0.0

    def _block(self, k: int) -> None:
        """Work out the day facts of every code from step ``k`` (>= 1) on, for a block of steps.

        What ``_day_facts_of`` does per code, over the timeline's columns: the pre-close is
        the bar's ``preClose`` (else the close a step back), a bar trades with volume and no
        suspension flag, and the limits come from ``ordinary_limits``.
        """
        long = self._long
        assert long is not None and k >= 1
        n = len(self.codes)
        k1 = min(len(self.steps), k + max(1, _BLOCK_RECORDS // n))
        a, b = k * n, k1 * n
        field = np.asarray(long["preClose"][a:b], dtype=np.float64)
        pre = np.where(field > 0, field, long["close"][a - n : b - n])
        trading = (long["volume"][a:b] > 0) & (long["suspendFlag"][a:b] == 0)
        fixed = [self._fixed(c) for c in self.codes]
        down, up = ordinary_limits(
            pre.reshape(k1 - k, n),
            [f.board for f in fixed],
            [f.is_st for f in fixed],
            self.step_days[k:k1].tolist(),
        )
        # A code with a listing date has rules of its own on its first days: NaN leaves its
        # limits to the scalar rules (its pre-close and trading flag are read from here).
        listed = [i for i, f in enumerate(fixed) if f.list_date]
        if listed:
            up[:, listed] = np.nan
        self._blk_pre, self._blk_trading = pre, trading
        self._blk_down, self._blk_up = down.ravel(), up.ravel()
        self._blk_k0, self._blk_k1 = k, k1
        self._row_day = 0  # rows are the new block's

    def ticks(self, codes: list[str], now_ms: int) -> list[Tick]:
        """The latest record of each code visible at ``now_ms`` as a snapshot (no book for bars)."""
        out = []
        for code in codes:
            row = self._visible_row(code, now_ms)
            if row is None:
                continue
            c = self._cols[code]
            if self.period == "tick":
                out.append(_tick_of(code, c, row))
                continue
            out.append(
                Tick(
                    stock_code=code,
                    time=close_time(self.period, int(c["time"][row])),
                    lastPrice=float(c["close"][row]),
                    open=float(c["open"][row]),
                    high=float(c["high"][row]),
                    low=float(c["low"][row]),
                    lastClose=float(c["preClose"][row]),
                    amount=float(c["amount"][row]),
                    volume=int(c["volume"][row]),
                )
            )
        return out

    def bars_in_progress(self, codes: list[str], period: str, now: int) -> list[Bar]:
        """The newest complete bar of each code at ``now`` (the replay's own period only)."""
        out = []
        for code in codes:
            row = self._visible_row(code, now)
            if row is None or period != self.period:
                continue
            c = self._cols[code]
            out.append(
                Bar(
                    stock_code=code,
                    period=period,
                    time=int(c["time"][row]),
                    open=float(c["open"][row]),
                    high=float(c["high"][row]),
                    low=float(c["low"][row]),
                    close=float(c["close"][row]),
                    volume=int(c["volume"][row]),
                    amount=float(c["amount"][row]),
                    preClose=float(c["preClose"][row]),
                    suspendFlag=int(c["suspendFlag"][row]),
                )
            )
        return out

    def history_until(
        self, code: str, period: str, start_ms: int, end_ms: int, now_ms: int
    ) -> dict[str, npt.NDArray[Any]]:
        """Cached records of ``code`` in ``[start_ms, end_ms]`` complete at ``now_ms``."""
        if period not in PERIODS:
            raise InvalidArgument(f"history is stored as 'tick', '1m' or '1d', not {period!r}")
        cols = self._cols.get(code) if period == self.period else None
        if cols is None:
            cols = self.cache.arrays(period, normalize_code(code))
        limit = visible_end(period, now_ms)
        end = limit if not end_ms else min(end_ms, limit)
        if start_ms and end < start_ms:
            return {k: v[:0] for k, v in cols.items()}
        return window(cols, start_ms, end)

    def dividends(self, code: str, now_ms: int) -> list[Dividend]:
        """The cached ex-rights records of ``code`` with an ex-date on or before ``now_ms``."""
        code = normalize_code(code)
        items = self._dividends.get(code)
        if items is None:
            raw = self.cache.read_dividends(code) or []
            items = sorted((msgspec.convert(d, Dividend) for d in raw), key=lambda d: d.time)
            self._dividends[code] = items
        return [d for d in items if d.time <= now_ms]

    def ex_codes_on(self, day: int) -> list[str]:
        """The replayed codes with an ex-rights record whose ex-date is ``day``, sorted.

        Every code's records are read once, on the first call: a day's ex-rights then cost
        one lookup, not one per held code.
        """
        if self._ex_index is None:
            index: dict[int, list[str]] = {}
            for code in sorted(self.codes):
                self.ex_rights_on(code, 0)  # reads the code's records into _ex_days
                for d in self._ex_days[code]:
                    index.setdefault(d, []).append(code)
            self._ex_index = index
        return self._ex_index.get(day, [])

    def ex_rights_on(self, code: str, day: int) -> list[Dividend]:
        """The ex-rights records of ``code`` whose ex-date is ``day``."""
        by_day = self._ex_days.get(code)
        if by_day is None:
            by_day = {}
            for d in self.dividends(code, 1 << 62):
                by_day.setdefault(_day_of(d.time), []).append(d)
            self._ex_days[code] = by_day
        return by_day.get(day, [])

    def last_close(self, code: str, now_ms: int) -> float | None:
        """The close (or last price) of ``code``'s newest record complete at ``now_ms``."""
        row = self._visible_row(code, now_ms)
        if row is None:
            return None
        name = "lastPrice" if self.period == "tick" else "close"
        return float(self._cols[code][name][row])


def day_start(ms: int) -> int:
    """00:00 Beijing of the day of ``ms``."""
    return ms - (ms + BEIJING_OFFSET_MS) % DAY_MS


def _tick_of(code: str, c: Mapping[str, npt.NDArray[Any]], row: int) -> Tick:
    return Tick(
        stock_code=code,
        time=int(c["time"][row]),
        lastPrice=float(c["lastPrice"][row]),
        open=float(c["open"][row]),
        high=float(c["high"][row]),
        low=float(c["low"][row]),
        lastClose=float(c["lastClose"][row]),
        amount=float(c["amount"][row]),
        volume=int(c["volume"][row]),
        askPrice=[float(c[f"askPrice{i}"][row]) for i in range(1, 6)],
        bidPrice=[float(c[f"bidPrice{i}"][row]) for i in range(1, 6)],
        askVol=[int(c[f"askVol{i}"][row]) for i in range(1, 6)],
        bidVol=[int(c[f"bidVol{i}"][row]) for i in range(1, 6)],
    )


def _conforms(replay: ReplayMarket, synthetic: SyntheticMarket) -> tuple[Market, Market]:
    """Both markets satisfy the seam (checked by mypy, never called)."""
    return replay, synthetic


__all__ = ["BAR_DTYPES", "ReplayMarket", "close_time", "day_start", "visible_end"]
