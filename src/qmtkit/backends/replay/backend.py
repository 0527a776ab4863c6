"""``ReplayBackend``: a backtest behind the Backend seam (``backtest://``).

The paper broker of ``sim://`` trades against real history from the K-line cache, replayed on
a virtual clock. The strategy is ordinary qmtkit code: it subscribes, orders, queries and
waits; the replay moves time on only when the strategy is idle (every task waiting), so a run
is deterministic. One step per bar time, in two phases:

1. **open** (a daily bar at 09:30 of its day, a minute bar at its start, a tick at its time):
   the trading day rolls if it is new (T+1, expiry), ex-rights records of the day are applied,
   and resting orders meet the bar's opening price (``next_open``);
2. **close** (15:00 for a daily bar, the label for a minute bar): the bar becomes visible,
   is pushed to subscriptions and fast-form callbacks, and orders made now are matched by the
   fill model. With ``next_open`` an order placed on the last bar of a day is an order for the
   next session: the venue rolls to the next trading day before the bar is pushed.

URL (every part but ``start`` optional)::

    backtest://?start=YYYYMMDD&end=YYYYMMDD&period=1d|1m|tick&codes=A,B|sector=NAME
               &cash=1000000&fill=next_open|close|qmt|tick&benchmark=000300.SH
               &participation=0.25&slippage=0&st=CODE,...&dividend_tax=0|1&home=DIR

``codes`` defaults to every cached code of the period (``sector`` names a sector of the
simulator's listing or ``all``). ``participation`` caps each fill at that share of the bar's
volume (partial fills rest); ``slippage`` moves fill prices that many ticks against the order;
``dividend_tax=1`` collects the individual dividend tax when shares are sold (``divtax``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec
import numpy as np
import polars as pl

import qmtkit.messages as msg
from qmtkit._tasks import lifetime_tasks
from qmtkit._version import __version__
from qmtkit.backends.base import EventSink
from qmtkit.backends.replay.barbook import BlockQuotes, Quote, quote, quotes
from qmtkit.backends.replay.clock import ReplayClock
from qmtkit.backends.replay.divtax import DividendTax
from qmtkit.backends.replay.idle import Idle
from qmtkit.backends.replay.market import ReplayMarket, day_ms
from qmtkit.backends.replay.qmtfill import price_groups
from qmtkit.backends.replay.quotes import QuoteSub, split_step
from qmtkit.backends.replay.record import Recorder
from qmtkit.backends.sim.broker import Broker, HeldColumns
from qmtkit.backends.sim.marks import HeldArrays
from qmtkit.backends.sim.paper_accounts import PaperAccounts, check_account_id
from qmtkit.backends.sim.rules import Listing
from qmtkit.backends.urlquery import query_number, venue_query
from qmtkit.codes import normalize_code, normalize_codes, parse_period
from qmtkit.constants import OrderType, PriceType
from qmtkit.data.cache import Cache
from qmtkit.data.schema import dtypes_for
from qmtkit.errors import BackendError, ClosedError, InvalidArgument, InvalidCode
from qmtkit.models import (
    Bar,
    OrderResponse,
    QuoteBatch,
    Tick,
    Trade,
    TradeReportItem,
)

FILL_MODELS: Final = ("next_open", "close", "qmt", "tick")
#: The default share of a bar's volume one order may take (the rest of it rests).
DEFAULT_PARTICIPATION: Final = 0.25
_LOT: Final = 100
_EPS: Final = 1e-9
_BUY: Final = int(OrderType.STOCK_BUY)
_SELL: Final = int(OrderType.STOCK_SELL)
_FIX_PRICE: Final = int(PriceType.FIX_PRICE)
#: From this many resting codes a step's books are worked out in vectors (``barbook.quotes``):
#: below it numpy's cost per call is more than the Python per code it saves.
_VECTOR_FROM: Final = 24

FrameCallback = Callable[[pl.DataFrame], "Awaitable[None] | None"]


@dataclass
class BacktestSpec:
    """What a backtest replays and how it fills (the parsed ``backtest://`` URL)."""

    start: int  # YYYYMMDD
    end: int  # YYYYMMDD
    period: str = "1d"
    codes: list[str] = field(default_factory=list)
    sector: str = ""
    cash: float = 1_000_000.0
    fill: str = "next_open"
    benchmark: str = ""
    participation: float = DEFAULT_PARTICIPATION
    slippage: int = 0
    st: list[str] = field(default_factory=list)
    home: str | None = None
    dividend_tax: bool = False

    def check(self) -> BacktestSpec:
        """Validate every field; returns self."""
        for name in ("start", "end"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 19_900_101 <= v <= 29_991_231:
                raise InvalidArgument(f"bad {name} {v!r}: expected a day as YYYYMMDD")
        if self.start > self.end:
            raise InvalidArgument(f"start {self.start} is after end {self.end}")
        if self.period not in ("1d", "1m", "tick"):
            raise InvalidArgument(
                f"bad period {self.period!r}: a backtest replays '1d', '1m' or 'tick' data"
            )
        if self.fill not in FILL_MODELS:
            raise InvalidArgument(
                f"bad fill model {self.fill!r}: expected one of {', '.join(FILL_MODELS)}"
            )
        if (self.fill == "tick") != (self.period == "tick"):
            raise InvalidArgument(
                "fill=tick goes with period=tick and a tick replay fills only by ticks: "
                f"got fill={self.fill!r} with period={self.period!r}"
            )
        if not (isinstance(self.cash, (int, float)) and self.cash > 0 and np.isfinite(self.cash)):
            raise InvalidArgument(f"bad cash {self.cash!r}: expected an amount > 0")
        if not (0 < self.participation <= 1):
            raise InvalidArgument(
                f"bad participation {self.participation!r}: expected a share of volume in (0, 1]"
            )
        if isinstance(self.slippage, bool) or not isinstance(self.slippage, int):
            raise InvalidArgument(f"bad slippage {self.slippage!r}: expected whole ticks >= 0")
        if not 0 <= self.slippage <= 100:
            raise InvalidArgument(f"bad slippage {self.slippage!r}: expected 0..100 ticks")
        if not isinstance(self.dividend_tax, bool):
            raise InvalidArgument(f"bad dividend_tax {self.dividend_tax!r}: expected True or False")
        if self.codes and self.sector:
            raise InvalidArgument("give codes or a sector, not both")
        self.codes = normalize_codes(self.codes) if self.codes else []
        self.st = normalize_codes(self.st) if self.st else []
        if self.benchmark:
            self.benchmark = normalize_code(self.benchmark)
        return self

    @classmethod
    def from_url(cls, url: str) -> BacktestSpec:
        """Parse a ``backtest://`` URL (see the module docstring)."""
        q = venue_query(
            url,
            "backtest",
            (
                *("start", "end", "period", "codes", "sector", "cash", "fill"),
                *("benchmark", "participation", "slippage", "st", "home", "dividend_tax"),
            ),
            wrong_scheme=f"not a backtest URL: {url!r} (expected backtest://?start=...)",
        )
        if "start" not in q:
            raise InvalidArgument(f"a backtest URL needs start=YYYYMMDD: {url!r}")

        def num(name: str, kind: type[int] | type[float], default: Any) -> Any:
            return query_number(q, name, kind, default, url)

        def day(name: str, default: int | None) -> int:
            text = q.get(name)
            if text is None:
                if default is None:
                    raise InvalidArgument(f"a backtest URL needs {name}=YYYYMMDD: {url!r}")
                return default
            if not (text.isdigit() and len(text) == 8):
                raise InvalidArgument(f"bad {name}={text!r} in {url!r}: expected YYYYMMDD")
            return int(text)

        def names(name: str) -> list[str]:
            return [c for c in q.get(name, "").split(",") if c.strip()]

        start = day("start", None)
        tax = q.get("dividend_tax", "0")
        if tax not in ("0", "1"):
            raise InvalidArgument(f"bad dividend_tax={tax!r} in {url!r}: expected 0 or 1")
        return cls(
            start=start,
            end=day("end", 29_991_231),
            period=q.get("period", "1d"),
            codes=names("codes"),
            sector=q.get("sector", ""),
            cash=num("cash", float, 1_000_000.0),
            fill=q.get("fill", "tick" if q.get("period") == "tick" else "next_open"),
            benchmark=q.get("benchmark", ""),
            participation=num("participation", float, DEFAULT_PARTICIPATION),
            slippage=num("slippage", int, 0),
            st=names("st"),
            home=q.get("home"),
            dividend_tax=tax == "1",
        ).check()


class ReplayBackend:
    """A backtest: the paper broker over a ``ReplayMarket``, moved by a ``ReplayClock``."""

    #: Tells the client to read data as of the virtual now (see ``MarketData``'s horizon).
    point_in_time = True

    def __init__(self, spec: BacktestSpec, *, url: str = "", cache: Cache | None = None) -> None:
        if not isinstance(spec, BacktestSpec):
            raise InvalidArgument(f"spec must be a BacktestSpec, got {spec!r}")
        self.spec = spec.check()
        self.url = url or "backtest://"
        if spec.fill == "close":
            warnings.warn(
                "fill=close fills an order at the close of the bar whose close it has just "
                "seen: the result is optimistic; next_open is the realistic default",
                stacklevel=2,
            )
        self.cache = cache if cache is not None else Cache(spec.home)
        start_ms = _day_ms(spec.start)
        end_ms = _day_ms(spec.end) + 86_400_000 - 1
        self.clock = ReplayClock(start_ms)
        self.idle = Idle()
        #: The shim's setup hold is active (see ``qmtkit.compat._replay``).
        self.setup_held = False
        self._start_ms, self._end_ms = start_ms, end_ms
        self.market: ReplayMarket | None = None
        self.broker = Broker(initial_cash=spec.cash, allow_new_accounts=False)
        self.recorder = Recorder()
        # A backtest's reports live in memory: durability is a live venue's duty.
        self.accounts = PaperAccounts(
            self.broker, observe=self._observe, on_cancel=self.recorder.on_cancel
        )
        self._sink: EventSink | None = None
        self._bench_cols: dict[str, Any] | None = None
        self._block_quotes: BlockQuotes | None = None  # the bar books by blocks (``_quotes``)
        self._subs: dict[int, QuoteSub] = {}
        self._frame_callbacks: list[tuple[FrameCallback, int]] = []
        self._frame_from: dict[int, int] = {}  # batch size -> first step not yet delivered
        self._step = -1  # the last step whose close was published
        self._phase = "before"  # before | open | close | done
        self.finished = anyio.Event()
        self.bars_published = 0
        self._progress: Callable[[int, int, int], None] | None = None
        #: The dividend tax's lots (``dividend_tax=1``), and taxes owed by fills just seen.
        self.dividend_tax = DividendTax() if spec.dividend_tax else None
        self._owed: list[tuple[str, float]] = []

    @classmethod
    def from_url(cls, url: str) -> ReplayBackend:
        """Build a backtest from a ``backtest://`` URL (see the module docstring)."""
        return cls(BacktestSpec.from_url(url), url=url)

    # ------------------------------------------------------------------ set-up

    def _codes(self) -> list[str]:
        spec = self.spec
        if spec.codes:
            return list(spec.codes)
        cached = self.cache.codes(spec.period)
        if spec.sector in ("", "all"):
            found = cached
        else:
            from qmtkit.backends.sim.universe import Universe

            sectors = Universe().sectors()
            if spec.sector not in sectors:
                raise InvalidArgument(
                    f"unknown sector {spec.sector!r}: expected 'all' or one of "
                    f"{', '.join(sorted(sectors))}"
                )
            members = set(sectors[spec.sector])
            found = [c for c in cached if c in members]
        if spec.benchmark:
            found = [c for c in found if c != spec.benchmark]
        if not found:
            raise InvalidArgument(
                f"no cached {spec.period} data to replay (sector {spec.sector or 'all'!r}) under "
                f"{self.cache.root}: download or import some first"
            )
        return found

    def on_frame(self, callback: FrameCallback, *, batch: int = 1) -> None:
        """Call ``callback(frame)`` at each step's close with every code's record as one frame.

        The frame has ``code``, ``time`` and the period's fields; the callback may be a
        coroutine function (it may place orders through the client) and runs before the
        step's bars go to subscriptions. ``batch=N`` calls it every N steps (and at the last
        step of each day) with the records of those steps in one frame, in time order: one
        call per batch of ticks instead of one per tick time. Resting orders still meet
        every step.
        """
        if not callable(callback):
            raise InvalidArgument(f"callback must be callable(frame), got {callback!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1_000_000:
            raise InvalidArgument(
                f"batch must be a whole number of steps in 1..1000000, got {batch!r}"
            )
        self._frame_callbacks.append((callback, batch))

    def on_progress(self, callback: Callable[[int, int, int], None]) -> None:
        """Call ``callback(step, steps, day)`` after each step (for a progress line)."""
        self._progress = callback

    @asynccontextmanager
    async def open(self, sink: EventSink) -> AsyncIterator[msg.BackendInfo]:
        """Load the replay and run it in the background while the strategy runs."""
        if self._sink is not None:
            raise BackendError("this backtest is already open; build another one")
        self.market = ReplayMarket(
            self.cache,
            self._codes(),
            self.spec.period,
            self._start_ms,
            self._end_ms,
            st_codes=self.spec.st,
        )
        if self.spec.codes and self.market.missing:
            warnings.warn(
                f"no {self.spec.period} data in the replay range for "
                f"{', '.join(self.market.missing[:10])}: left out",
                stacklevel=2,
            )
        self._sink = self.accounts.sink = sink
        self.accounts.publish_many(self.broker.roll_day(self.market.step_day(0)))
        try:
            async with lifetime_tasks() as tg:
                tg.start_soon(self._run)
                yield msg.BackendInfo(kind="backtest", url=self.url, version=__version__)
        finally:
            self._sink = None
            self._subs.clear()
            self.accounts.close()

    # ------------------------------------------------------------------ the replay

    async def _advance_to(self, when: int) -> None:
        clock = self.clock
        deadline = clock.next_deadline()
        while deadline is not None and deadline < when:
            clock.advance_to(max(deadline, clock.now_ms()))
            await self.idle.settle()
            deadline = clock.next_deadline()
        if when > clock.now_ms():
            clock.advance_to(when)

    async def _run(self) -> None:
        market = self.market
        assert market is not None
        await self.idle.settle()  # the strategy subscribes and sets up before the first bar
        fill = self.spec.fill
        n = len(market)
        woken = self.clock.woken
        for k in range(n):
            day = market.step_day(k)
            reports = self.accounts.report_count
            # ---- open
            self._phase = "open"
            await self._advance_to(max(market.step_open(k), self.clock.now_ms()))
            if self.broker.day < day:
                self.accounts.publish_many(self.broker.roll_day(day))
            if k == 0 or market.step_day(k - 1) != day:
                self._ex_rights(day)
            before = self.accounts.report_count
            if self.spec.period != "tick":  # a tick's open is its close: matched once, below
                self._match_resting(k, "open")
            if self.accounts.report_count != before and self.accounts.streaming:
                # Reports pushed to a client may have woken someone: let them act at the open.
                # (Reports no account streams reach the result frames only: nobody wakes.)
                await self.idle.settle()
            # ---- close
            self._phase = "close"
            await self._advance_to(market.step_close(k))
            self._step = k
            last = market.last_of_day(k)
            if fill != "next_open":
                self._match_resting(k, "close")
            if last:
                if fill == "next_open":
                    self._close_day(k, day)
                    following = market.step_day(k + 1) if k + 1 < n else _next_day(day)
                    self.accounts.publish_many(self.broker.roll_day(following))
                else:
                    self._mark(k)
            woke = await self._publish_step(k)
            # Settle when anything could have woken a task: pushed records, reports, sleepers.
            if woke or self.accounts.report_count != reports or self.clock.woken != woken:
                await self.idle.settle()
            woken = self.clock.woken
            if last and fill != "next_open":
                self._close_day(k, day)
            if self._progress is not None:
                self._progress(k + 1, n, day)
        self._phase = "done"
        self.clock.finish()
        sink = self._sink
        if sink is not None:
            for sub in list(self._subs.values()):
                sink.on_quotes(QuoteBatch(sub.sub_id, self.spec.period, [], final=True))
        self.finished.set()
        await self.idle.settle()

    async def _publish_step(self, k: int) -> bool:
        """Hand step ``k`` to callbacks and subscriptions; whether anyone may have woken.

        Nobody woken (a step inside a callback's batch, no subscription): the strategy is
        still idle and the replay goes on without another round of the event loop.
        """
        market = self.market
        assert market is not None
        woke = False
        ends_batch = market.last_of_day(k)
        for callback, batch in self._frame_callbacks:
            first = self._frame_from.get(batch, 0)
            if batch > 1 and k + 1 - first < batch and not ends_batch:
                continue
            self._frame_from[batch] = k + 1
            woke = True
            frame = market.frame(k) if first == k else market.frame_range(first, k)
            result = callback(frame)
            if inspect.isawaitable(result):
                await result
        sink = self._sink
        if not self._subs or sink is None:
            self.bars_published += int(market.bounds[k + 1] - market.bounds[k])
            return woke
        items: list[Tick | Bar]
        places = None
        if self.spec.period == "tick":
            items = list(market.ticks([c for c, _ in market.records(k)], market.step_close(k)))
        else:
            items = list(market.bars(k))
            if not market._aligned:  # a bar per record: each one's code
                places = market.rec_code[market.bounds[k] : market.bounds[k + 1]]
        self.bars_published += len(items)
        aligned = market._aligned and self.spec.period != "tick"
        for sub, chosen in split_step(items, self._subs.values(), places, aligned=aligned):
            if chosen:
                sink.on_quotes(QuoteBatch(sub.sub_id, self.spec.period, chosen))
                woke = True
        return woke

    # ------------------------------------------------------------------ fills

    def _book(self, code: str, k: int, phase: str, limit: float | None = None) -> Tick | None:
        """The book an order on ``code`` meets at step ``k`` in ``phase`` (None: no trading)."""
        market = self.market
        assert market is not None
        if self.spec.period != "tick":
            bar = market.bar_at(code, k)
            if bar is None:
                return None
            day = self.broker.day
            offered = self._quote(bar, market.listing(code, day), phase, limit)
            if offered is None:
                return None
            ask, bid, cap = offered
            opn, high, low, close, volume = bar
            asks = [] if ask is None else [ask]
            bids = [] if bid is None else [bid]
            return Tick(
                stock_code=code,
                time=market.step_open(k) if phase == "open" else market.step_close(k),
                lastPrice=opn if phase == "open" else close,
                open=opn,
                high=high,
                low=low,
                lastClose=market.pre_close(code, day),
                amount=0.0,
                volume=volume,
                askPrice=asks,
                bidPrice=bids,
                askVol=[cap] * len(asks),
                bidVol=[cap] * len(bids),
            )
        if market.position(code, k) is None:
            return None
        if not market.listing(code, self.broker.day).trading:
            return None
        tick = market.ticks([code], market.step_close(k))
        if not tick:
            return None
        t = tick[0]
        # Cached books count lots of 100; the broker reads shares.
        return Tick(
            stock_code=code,
            time=t.time,
            lastPrice=t.lastPrice,
            open=t.open,
            high=t.high,
            low=t.low,
            lastClose=t.lastClose,
            amount=t.amount,
            volume=t.volume,
            askPrice=t.askPrice,
            bidPrice=t.bidPrice,
            askVol=[v * _LOT for v in t.askVol],
            bidVol=[v * _LOT for v in t.bidVol],
        )

    def _quote(
        self,
        bar: tuple[float, float, float, float, int],
        listing: Listing,
        phase: str,
        limit: float | None = None,
    ) -> Quote | None:
        """What a bar's book offers in ``phase`` under this backtest's fill model
        (``barbook.quote``): ``_book`` makes a ``Tick`` of it for orders placed at the close
        and the ``qmt`` path; resting orders' fills hand it to the broker as it is."""
        spec = self.spec
        return quote(bar, listing, phase, spec.fill, spec.participation, spec.slippage, limit)

    def _quotes(
        self, codes: list[str], k: int, phase: str
    ) -> list[tuple[str, float | None, float | None, int]]:
        """``(code, ask, bid, shares)`` of the codes that trade at step ``k`` in ``phase``
        (the open, or the close outside ``qmt``), in the order given."""
        market = self.market
        assert market is not None
        day = self.broker.day
        spec = self.spec
        block = self._block_quotes
        if block is None or block.market is not market:
            block = self._block_quotes = BlockQuotes(market, spec.participation, spec.slippage)
        found_all = block.at(codes, k, day, phase)
        if found_all is not None:  # an aligned daily replay: its books by blocks of steps
            return found_all
        out: list[tuple[str, float | None, float | None, int]] = []
        found = market.bars_at(codes, k) if len(codes) >= _VECTOR_FROM else None
        if found is None:
            bar_at, listing = market.bar_at, market.listing
            fill, share, slippage = spec.fill, spec.participation, spec.slippage
            for code in codes:
                bar = bar_at(code, k)
                if bar is None:
                    continue
                q = quote(bar, listing(code, day), phase, fill, share, slippage)
                if q is not None:
                    out.append((code, *q))
            return out
        # Many codes (a whole market's resting orders): their bars in one gather, their
        # books in vector steps (``barbook.quotes``: the same floats as ``quote``).
        have, bars = found
        named = [codes[i] for i in have.tolist()]
        listings = [market.listing(code, day) for code in named]
        price = bars["open"] if phase == "open" else bars["close"]
        made = quotes(price, bars["volume"], listings, spec.participation, spec.slippage)
        for code, q in zip(named, made, strict=True):
            if q is not None:
                out.append((code, *q))
        return out

    def _cap(self, volume: int) -> int:
        """Shares one step's book offers on a side: ``participation`` of the bar, whole lots."""
        return int(volume * _LOT * self.spec.participation) // _LOT * _LOT

    def _match_resting(self, k: int, phase: str) -> None:
        broker = self.broker
        now = self.clock.now_ms()
        by_limit = phase == "close" and self.spec.fill == "qmt" and self.spec.period != "tick"
        if by_limit:
            for code in broker.resting_codes:
                self._match_resting_qmt(code, k, now)
            self._collect_taxes()
            return
        # One publish for the step's fills, in code order: a backtest journals nothing, so
        # the per-code units a live venue writes would only cost a call per code.
        if self.spec.period == "tick":
            pairs: list[tuple[str, TradeReportItem]] = []
            for code in broker.resting_codes:
                book = self._book(code, k, phase)
                if book is not None:
                    pairs += broker.on_tick(book, now)
            self.accounts.publish_many(pairs)
        else:
            # A bar's book is one level a side: the broker meets its numbers (``on_bars``),
            # no ``Tick`` is made for it, and hands the reports back as runs of one account.
            market = self.market
            assert market is not None
            books = self._quotes(broker.resting_codes, k, phase)
            if books:
                time = market.step_open(k) if phase == "open" else market.step_close(k)
                self.accounts.publish_runs(broker.on_bars(books, time, now))
        self._collect_taxes()

    def _match_resting_qmt(self, code: str, k: int, now: int) -> None:
        """Resting orders meet the bar by their own limits (``replay.qmtfill``), best first."""
        bar = self._book(code, k, "close")
        if bar is None:
            return
        broker = self.broker
        orders = broker.resting_on(code)
        limits = {oid: limit for oid, _, limit in orders}
        left = {_BUY: self._cap(bar.volume), _SELL: self._cap(bar.volume)}
        for side, _price, ids in price_groups(orders, bar.low, bar.high, bar.lastPrice):
            worst = (min if side == _BUY else max)(limits[i] for i in ids)
            book = self._book(code, k, "close", worst)
            if book is None or left[side] <= 0:
                continue
            if side == _BUY:
                book = msgspec.structs.replace(
                    book, askVol=[left[side]] * len(book.askPrice), bidPrice=[], bidVol=[]
                )
            else:
                book = msgspec.structs.replace(
                    book, bidVol=[left[side]] * len(book.bidPrice), askPrice=[], askVol=[]
                )
            items = broker.on_tick_for(book, now, ids)
            left[side] -= sum(t.traded_volume for _, t in items if isinstance(t, Trade))
            self.accounts.publish_many(items)

    def _ex_rights(self, day: int) -> None:
        market = self.market
        assert market is not None
        codes = market.ex_codes_on(day)
        if not codes:
            return
        held = self.broker.held_codes()
        for code in codes:
            if code not in held:
                continue
            for d in market.ex_rights_on(code, day):
                shares = d.stockBonus + d.stockGift
                if self.dividend_tax is not None:
                    self.dividend_tax.ex_rights(code, d.interest, d.stockBonus, d.stockGift)
                self.accounts.publish_many(self.broker.ex_rights(code, d.interest, shares))

    def _mark(self, k: int) -> None:
        market = self.market
        assert market is not None
        now = self.clock.now_ms()

        def last_close(code: str) -> float | None:
            return market.last_close(code, now)  # no bar today (suspended): it stands

        self.broker.mark_held(market.step_prices(k), last_close)

    def _close_day(self, k: int, day: int) -> None:
        """Mark every holding at step ``k`` (the day's last) and snapshot every account."""
        market = self.market
        assert market is not None
        prices = market.step_prices(k)
        # A quiet account's close is only logged (``Broker.close_quietly``). With fill=close
        # or qmt, ``_mark`` marked this step already, eagerly: the close stays eager too.
        log = self.broker.close_quietly(prices) if self.spec.fill == "next_open" else None
        held: dict[str, HeldColumns | HeldArrays] = {}
        if log is None:
            now = self.clock.now_ms()

            def last_close(code: str) -> float | None:
                return market.last_close(code, now)  # no bar today (suspended): it stands

            held = self.broker.mark_and_snapshot(prices, last_close)
        bench: float | None = None
        if self.spec.benchmark:
            if self._bench_cols is None:
                self._bench_cols = self.cache.arrays("1d", self.spec.benchmark)
            cols = self._bench_cols
            label = _day_ms(day)
            i = int(np.searchsorted(cols["time"], label, "left"))
            if i < len(cols["time"]) and int(cols["time"][i]) == label:
                bench = float(cols["close"][i])
        if log is not None:
            self.recorder.record_day_logged(log, day, market.codes, bench)
        for account_id in sorted(held):
            rows = held[account_id]
            asset = self.broker.asset(account_id)
            if isinstance(rows, HeldArrays):
                self.recorder.record_day_keyed(account_id, day, asset, market.codes, rows, bench)
            else:
                self.recorder.record_day_columns(account_id, day, asset, rows, bench)

    # ------------------------------------------------------------------ reports

    def _observe(self, account_id: str, items: list[TradeReportItem]) -> None:
        """Record reports in the result frames (and a sale's dividend tax lots)."""
        self.recorder.on_items(account_id, items, self.clock.now_ms())
        if self.dividend_tax is not None:
            for item in items:
                if type(item) is Trade:
                    self._lot_of(account_id, item)

    def _lot_of(self, account_id: str, trade: Trade) -> None:
        """Follow the dividend tax's lots; a sale's tax is collected after its reports."""
        tax = self.dividend_tax
        assert tax is not None
        day = self.broker.day
        if trade.order_type == _BUY:
            tax.bought(account_id, trade.stock_code, day, trade.traded_volume)
        else:
            owed = tax.sold(account_id, trade.stock_code, day, trade.traded_volume)
            if owed > 0:
                self._owed.append((account_id, owed))

    def _collect_taxes(self) -> None:
        """Take the dividend tax of the sales just filled from their accounts' cash."""
        while self._owed:
            account_id, owed = self._owed.pop(0)
            self.accounts.publish(account_id, self.broker.charge(account_id, owed))

    # ------------------------------------------------------------------ requests

    def _need_market(self) -> ReplayMarket:
        if self.market is None or self._sink is None:
            raise ClosedError("the backtest is not open: use it inside `async with connect()`")
        return self.market

    def _known(self, codes: list[str]) -> list[str]:
        market = self._need_market()
        unknown = [c for c in codes if c not in market._code_index]
        if unknown:
            raise InvalidCode(
                f"not in this backtest: {', '.join(unknown[:10])}; it replays "
                f"{', '.join(market.codes[:10])}{' ...' if len(market.codes) > 10 else ''}"
            )
        return codes

    async def request(self, req: msg.Request) -> msg.Reply:
        """Answer one request as of the virtual now (see ``backends.base``)."""
        market = self._need_market()
        broker = self.broker
        now = self.clock.now_ms()
        if type(req) is msg.SubmitOrder:
            return self._submit(req, now)
        match req:
            case msg.Hello():
                return msg.BackendInfo(kind="backtest", url=self.url, version=__version__)
            case msg.ListInstruments(codes=codes):
                wanted = market.codes if codes is None else normalize_codes(codes)
                return msg.Instruments(
                    [market.instrument(c, broker.day) for c in wanted if c in market._code_index]
                )
            case msg.GetSnapshot(codes=codes):
                known = [c for c in normalize_codes(codes) if c in market._code_index]
                return msg.Snapshots(market.ticks(known, now))
            case msg.SubscribeQuotes(sub_id=sub_id, codes=codes, period=period):
                if period != self.spec.period:
                    parse_period(period)
                    raise InvalidArgument(
                        f"this backtest replays {self.spec.period!r} data: subscribe to "
                        f"{self.spec.period!r}, not {period!r}"
                    )
                if sub_id in self._subs:
                    raise InvalidArgument(f"subscription id {sub_id} is already in use")
                listed = frozenset(self._known(normalize_codes(codes)) if codes else [])
                if listed.issuperset(market.codes):  # every code: nothing to pick per step
                    listed = frozenset()
                self._subs[sub_id] = QuoteSub.of(sub_id, listed, market._code_index)
                if self._phase == "done" and self._sink is not None:
                    self._sink.on_quotes(QuoteBatch(sub_id, period, [], final=True))
                return msg.Ok()
            case msg.UnsubscribeQuotes(sub_id=sub_id):
                self._subs.pop(sub_id, None)
                return msg.Ok()
            case msg.FetchHistory(code=code, period=period, start=start, end=end):
                if period not in ("1d", "1m", "tick"):
                    parse_period(period)
                    raise InvalidArgument(
                        f"history is stored as 'tick', '1m' or '1d', not {period!r}; "
                        "the client derives other periods by resampling"
                    )
                code = normalize_code(code)
                cols = market.history_until(code, period, start, end, now)
                dtypes = dtypes_for(period)
                return msg.HistoryColumns(
                    code=code,
                    period=period,
                    rows=len(cols["time"]),
                    columns={
                        n: np.ascontiguousarray(cols[n], dtype=dt).tobytes()
                        for n, dt in dtypes.items()
                        if n in cols
                    },
                    as_of=now,
                )
            case msg.FetchDividends(code=code):
                code = normalize_code(code)
                return msg.Dividends(code, market.dividends(code, now))
            case msg.ListSectors():
                return msg.Names(["backtest"])
            case msg.GetSectorMembers(sector=sector):
                if sector != "backtest":
                    raise InvalidArgument(
                        f"unknown sector {sector!r}: a backtest knows 'backtest' (its codes)"
                    )
                return msg.Names(list(market.codes))
        reply = self.accounts.handle(req, now)
        if reply is not None:
            return reply
        raise InvalidArgument(f"a backtest does not understand request {req!r}")

    def answer_in_task(self, req: msg.Request) -> msg.Reply | None:
        """An order from a task of the client's loop, answered at once (None: ``request``).

        Placing an order never waits here; the reports reach the sink before this returns,
        as with ``request``. Not ``request_now``: an order placed from outside a task (the
        xtquant shim's callback thread) keeps the ordinary path, which the replay's holds
        follow.
        """
        if type(req) is not msg.SubmitOrder:
            return None
        self._need_market()
        return self._submit(req, self.clock.now_ms())

    def record_refusal(self, req: msg.SubmitOrder, message: str) -> None:
        """List an order the risk chain refused (it never reaches the broker) in the result."""
        self.recorder.on_refusal(req, message, self.clock.now_ms())

    def open_account_quietly(self, account_id: str) -> None:
        """Create an account without streaming its reports to the client (the fast form).

        From then on the venue keeps no report log (``PaperAccounts.keep_log``): no client
        follows the fast form, and over a whole market the log was most of the memory. The
        result frames are recorded as before; opening an account with reports to replay
        afterwards is refused. The broker makes no ``Asset`` or ``Position`` report of the
        account's changes while no client follows it (``Broker.state_reports``); an account a
        client opens gets them all.
        """
        check_account_id(account_id)
        self._need_market()
        self.accounts.keep_log = False
        self.accounts.publish(account_id, self.broker.open_account(account_id))
        # Nobody follows it and the result frames take orders and trades only: its cash and
        # holdings change as before, without an Asset or Position report of each change.
        self.broker.state_reports(account_id, False)

    def follow_state(self, account_id: str, on: bool) -> None:
        """Whether the client reads ``account_id``'s ``Asset`` and ``Position`` reports.

        Off (nobody reads the account's stream: no consumer, no listener; order handles take
        only orders and fills), the broker makes none of them (``Broker.state_reports``): the
        result frames take orders and trades only, and the account's cash and holdings change
        exactly as before. On again, every change from then on comes with them. The client
        says so before a new reader can see a report. An account the broker does not hold
        is ignored.
        """
        if type(on) is not bool:
            raise InvalidArgument(f"on must be True or False, got {on!r}")
        if account_id in self.broker.known_accounts:
            self.broker.state_reports(account_id, on)

    def submit_now(self, req: msg.SubmitOrder) -> OrderResponse:
        """Place an order at the virtual now without a round trip (the fast form's path)."""
        return self._submit(req, self.clock.now_ms())

    def submit_many(self, reqs: list[msg.SubmitOrder]) -> list[OrderResponse]:
        """Place orders of one account at the virtual now as ``submit_now`` on each in turn
        would (the same ids, refusals, reports and records), with the lookups of the step
        done once and their reports published together."""
        if type(reqs) is not list:
            raise InvalidArgument(f"reqs must be a list of SubmitOrder, got {type(reqs).__name__}")
        now = self.clock.now_ms()
        if not reqs:
            return []
        if self.dividend_tax is not None:
            # A sale filled at once owes its tax before the next order is judged.
            return [self._submit(req, now) for req in reqs]
        first = reqs[0]
        if set(map(type, reqs)) != _SUBMIT_ONLY:
            for req in reqs:
                if not isinstance(req, msg.SubmitOrder):
                    raise InvalidArgument(f"reqs must hold SubmitOrder, got {type(req).__name__}")
        check_account_id(first.account_id)
        market = self._need_market()
        if self._phase == "done":
            raise ClosedError("the backtest has ended: no more orders")
        day = self.broker.day
        index = market._code_index
        # The usual order, as _facts would see it: a limit order on a normal code of the
        # replay, which meets no book under next_open.
        limits_rest = self.spec.fill == "next_open"
        if (
            limits_rest and len(reqs) >= _GATHER_FROM and _all_limits(reqs)
        ):  # a batch of usual orders, told without a Python step per order
            codes = list(map(_code_of, reqs))
            numbers = _numbers(codes, index)
            if numbers is not None:
                return self.accounts.submit_many(
                    reqs,
                    books=[None] * len(reqs),
                    listings=market.listings_for(codes, day, numbers),
                    now=now,
                    day=day,
                )
        listings: list[Listing | None] = []
        books: list[Tick | None] = []
        listing_of = market.listing
        made = market.listings_made(day)
        for req in reqs:
            code = req.stock_code
            if limits_rest and req.price_type == _FIX_PRICE and type(code) is str and code in index:
                listings.append(made.get(code) or listing_of(code, day))
                books.append(None)
            else:
                listing, book = self._facts(market, req, day)
                listings.append(listing)
                books.append(book)
        return self.accounts.submit_many(reqs, books=books, listings=listings, now=now, day=day)

    def _submit(self, req: msg.SubmitOrder, now: int) -> OrderResponse:
        account_id = req.account_id
        if type(account_id) is not str or not account_id or account_id.isspace():
            check_account_id(account_id)  # the full check, with its error
        market = self.market
        if market is None or self._sink is None:
            market = self._need_market()  # raises
        day = self.broker.day
        if self._phase == "done":
            raise ClosedError("the backtest has ended: no more orders")
        code = req.stock_code
        if (
            req.price_type == _FIX_PRICE
            and self.spec.fill == "next_open"
            and type(code) is str
            and code in market._code_index
        ):  # the usual order (see submit_many)
            listing: Listing | None = market.listing(code, day)
            book = None
        else:
            listing, book = self._facts(market, req, day)
        response = self.accounts.submit(
            req, book=book, instrument=None, now=now, day=day, listing=listing
        )
        if self._owed:
            self._collect_taxes()
        return response

    def _facts(
        self, market: ReplayMarket, req: msg.SubmitOrder, day: int
    ) -> tuple[Listing | None, Tick | None]:
        """What the rules read of an order's instrument today, and the book it meets now."""
        code = req.stock_code
        if not isinstance(code, str):
            return None, None
        if code in market._code_index:  # already normal: most orders
            norm = code
        else:
            try:
                norm = normalize_code(code)
            except InvalidCode:
                return None, None
            if norm not in market._code_index:
                return None, None
        # The rules' view of the day's instrument, without an InstrumentDetail.
        listing = market.listing(norm, day)
        # A limit order under next_open meets no book now (see _submit_book).
        if req.price_type != _FIX_PRICE or self.spec.fill != "next_open":
            return listing, self._submit_book(norm, req)
        return listing, None

    def _submit_book(self, code: str, req: msg.SubmitOrder) -> Tick | None:
        """What an order placed now meets at once (see the fill models)."""
        market = self.market
        assert market is not None
        k = self._step
        fill = self.spec.fill
        if (
            self._phase == "close"
            and fill in ("close", "qmt", "tick")
            and k >= 0
            and market.step_day(k) == self.broker.day
        ):
            limit = float(req.price) if isinstance(req.price, (int, float)) else None
            return self._book(code, k, "close", limit)
        # Otherwise the order rests. A limit order reads nothing from a book without depth
        # (it neither prices nor fills one): the quote is made only for the price types that
        # are priced from it.
        if req.price_type == _FIX_PRICE:
            return None
        now = self.clock.now_ms()
        last = market.step_prices(k).get(code) if k >= 0 else None
        if last is None:
            last = market.last_close(code, now)
        if last is None:
            return None
        return Tick(
            stock_code=code,
            time=now,
            lastPrice=last,
            open=last,
            high=last,
            low=last,
            lastClose=last,
            amount=0.0,
            volume=0,
        )

    # ------------------------------------------------------------------ results

    def result(self, account_id: str | None = None) -> Any:
        """The run's ``BacktestResult`` for one account (the only one, if not named)."""
        return self.recorder.result(
            account_id,
            initial_cash=self.spec.cash,
            meta={
                "url": self.url,
                "start": str(self.spec.start),
                "end": str(self.spec.end),
                "period": self.spec.period,
                "fill": self.spec.fill,
                "benchmark": self.spec.benchmark,
                "codes": ",".join(self.market.codes if self.market else self.spec.codes),
                **self._tax_meta(account_id),
            },
        )

    def _tax_meta(self, account_id: str | None) -> dict[str, str]:
        """With ``dividend_tax=1``: the setting and the tax the account paid (CNY)."""
        tax = self.dividend_tax
        if tax is None:
            return {}
        # No account named: result() picks the only one, so the sum is its tax.
        paid = sum(tax.paid.values()) if account_id is None else tax.paid.get(account_id, 0.0)
        return {"dividend_tax": "1", "dividend_tax_paid": f"{paid:.2f}"}


_code_of = attrgetter("stock_code")
_price_type_of = attrgetter("price_type")
_FIX_ONLY = frozenset([_FIX_PRICE])
_SUBMIT_ONLY = frozenset([msg.SubmitOrder])
#: From how many orders a batch of usual ones is told by set tests and its listings gathered
#: (below it, order by order costs less: ~0.2 us an order at six).
_GATHER_FROM = 8


def _all_limits(reqs: list[msg.SubmitOrder]) -> bool:
    """Whether every order is a limit order (``FIX_PRICE``)."""
    try:
        return set(map(_price_type_of, reqs)) == _FIX_ONLY
    except TypeError:  # an unhashable price type: not a limit order
        return False


def _numbers(codes: list[Any], index: dict[str, int]) -> list[int] | None:
    """Each code's number in the replay, if all are its codes as given (normal); else None."""
    try:
        numbers = list(map(index.get, codes))
    except TypeError:  # an unhashable code: not one of them
        return None
    return None if None in numbers else numbers  # type: ignore[return-value]


def _day_ms(day: int) -> int:
    return day_ms(day)


def _next_day(day: int) -> int:
    from qmtkit.data.calendar import ms_to_yyyymmdd, next_trading_day

    try:
        return int(ms_to_yyyymmdd(np.asarray([next_trading_day("SH", day)]))[0])
    except InvalidArgument:
        return int(ms_to_yyyymmdd(np.asarray([_day_ms(day) + 86_400_000]))[0])


def default_home(home: str | None) -> Path | None:
    """The cache home a spec names (None: ``$QMTKIT_HOME`` or ``~/.qmtkit``)."""
    return Path(home).expanduser() if home else None


__all__ = ["FILL_MODELS", "BacktestSpec", "ReplayBackend"]
