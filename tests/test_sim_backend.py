"""``SimBackend`` at the Backend seam: URLs, lifetime, report sequencing and replay, quotes.

These tests talk to the backend directly with a recording ``EventSink`` (no client), on a
``VirtualClock`` that starts inside Monday 2024-06-03's morning session.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import numpy as np
import pytest

import qmtkit
from qmtkit.backends import open_backend
from qmtkit.backends.base import (
    AccountStatus,
    BackendInfo,
    CloseAccount,
    ConnectionState,
    FetchHistory,
    GetSnapshot,
    Hello,
    HistoryColumns,
    Instruments,
    ListInstruments,
    OpenAccount,
    Positions,
    QueryPositions,
    Snapshots,
    SubmitOrder,
    SubscribeQuotes,
)
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.sim.backend import HOT_STEPS, terminal_name
from qmtkit.backends.sim.broker import Reject
from qmtkit.clock import BEIJING, StrictClock, VirtualClock
from qmtkit.constants import OrderStatus, OrderType, PriceType
from qmtkit.errors import CacheError, ClosedError, InvalidArgument, InvalidCode, JournalLocked
from qmtkit.models import (
    AccountReport,
    Bar,
    Order,
    OrderError,
    OrderResponse,
    QuoteBatch,
    Tick,
)

CODE = "600000.SH"
ACCT = "seam"
LATER = "688713.SH"  # listed on 2024-06-18, after the test day


def beijing_ms(h: int, mi: int, s: int = 0, day: int = 3) -> int:
    return int(dt.datetime(2024, 6, day, h, mi, s, tzinfo=BEIJING).timestamp() * 1000)


START = beijing_ms(10, 0)


class Recorder:
    """An EventSink that keeps everything pushed into it."""

    def __init__(self) -> None:
        self.quotes: list[QuoteBatch] = []
        self.reports: list[AccountReport] = []
        self.states: list[ConnectionState] = []

    def on_quotes(self, batch: QuoteBatch) -> None:
        self.quotes.append(batch)

    def on_report(self, report: AccountReport) -> None:
        self.reports.append(report)

    def on_connection(self, state: ConnectionState) -> None:
        self.states.append(state)


@asynccontextmanager
async def opened(
    home: Path, start: int = START, **kw: object
) -> AsyncIterator[tuple[SimBackend, Recorder, VirtualClock]]:
    clock = VirtualClock(start)
    backend = SimBackend(home=home, clock=clock, **kw)  # type: ignore[arg-type]
    sink = Recorder()
    async with backend.open(sink):
        yield backend, sink, clock


def buy(backend: SimBackend, volume: int = 100, code: str = CODE) -> SubmitOrder:
    ask = backend.market.tick(code, backend.session_now()).askPrice[0]
    return SubmitOrder(ACCT, code, int(OrderType.STOCK_BUY), volume, int(PriceType.FIX_PRICE), ask)


# --------------------------------------------------------------------------- URLs


def test_a_sim_url_sets_every_option() -> None:
    b = SimBackend.from_url(
        "sim://?home=/tmp/h&terminal=x y&seed=7&clock=strict&cash=5e5&step=6000"
    )
    assert b.home == Path("/tmp/h") and b.terminal == terminal_name("x y")
    assert b.market.seed == 7 and b.step_ms == 6000 and b.initial_cash == 500_000.0
    assert isinstance(b.clock, StrictClock)
    assert b.state_dir == Path("/tmp/h/sim") / terminal_name("x y")
    assert isinstance(open_backend("sim://?seed=3&share=0"), SimBackend)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sim://?colour=red", "colour"),
        ("sim://?seed=abc", "seed='abc'"),
        ("sim://?cash=lots", "cash='lots'"),
        ("sim://?clock=sundial", "sundial"),
        ("sim://?step=7000", "7000"),
        ("sim://?speed=-1", "speed"),
        ("http://x", "sim://"),
    ],
)
def test_a_bad_sim_url_is_refused_naming_the_bad_part(url: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words.replace("?", r"\?")):
        SimBackend.from_url(url)


def test_a_safe_terminal_name_is_kept() -> None:
    assert terminal_name("desk-2.a_b") == "desk-2.a_b"


def test_a_path_becomes_its_readable_tail_and_a_hash() -> None:
    name = terminal_name("D:\\迅投\\userdata_mini")
    assert re.fullmatch(r"userdata_mini-[0-9a-f]{8}", name)


def test_distinct_paths_get_distinct_terminals() -> None:
    names = {terminal_name(p) for p in ("D:\\a\\userdata_mini", "E:/a/userdata_mini", "x y")}
    assert len(names) == 3 and all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names)


def test_a_name_of_nothing_safe_still_names_a_terminal() -> None:
    assert re.fullmatch(r"terminal-[0-9a-f]{8}", terminal_name("..."))
    assert terminal_name("") == "default"


# --------------------------------------------------------------------------- lifetime


async def test_requests_outside_the_open_block_raise_closed_error(tmp_path: Path) -> None:
    backend = SimBackend(home=tmp_path, clock=VirtualClock(START))
    with pytest.raises(ClosedError):
        await backend.request(Hello())
    async with backend.open(Recorder()) as info:
        assert info.kind == "sim"
        assert isinstance(await backend.request(Hello()), type(info))
    with pytest.raises(ClosedError):
        await backend.request(Hello())


async def test_an_error_in_the_open_block_reaches_the_caller_unwrapped(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with opened(tmp_path):
            raise KeyError("mine")
    async with opened(tmp_path):  # and the journal was released
        pass


async def test_one_backend_object_opens_once_at_a_time(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, _, _):
        with pytest.raises(Exception, match="already open"):
            async with backend.open(Recorder()):
                pass


async def test_a_second_backend_reads_data_while_the_first_holds_the_accounts(
    tmp_path: Path,
) -> None:
    import os

    async with opened(tmp_path) as (first, _, _):
        await first.request(OpenAccount(ACCT))
        async with opened(tmp_path) as (second, _, _):
            bars = await second.request(FetchHistory(CODE, "1d", 0, second.session_now()))
            assert isinstance(bars, HistoryColumns) and bars.rows > 0
            with pytest.raises(JournalLocked, match=f"in use by pid {os.getpid()}") as info:
                await second.request(OpenAccount(ACCT))
            assert "market data works here" in str(info.value)
            assert "\n" not in str(info.value)


async def test_data_alone_never_takes_the_journal(tmp_path: Path) -> None:
    async with opened(tmp_path) as (data_only, _, _):
        await data_only.request(FetchHistory(CODE, "1d", 0, data_only.session_now()))
        async with opened(tmp_path) as (trader, _, _):
            assert isinstance(await trader.request(OpenAccount(ACCT)), AccountStatus)


async def test_the_venue_id_announced_at_open_survives_the_first_account(tmp_path: Path) -> None:
    sink = Recorder()
    backend = SimBackend(home=tmp_path, clock=VirtualClock(START))
    async with backend.open(sink) as info:
        await backend.request(OpenAccount(ACCT))
        hello = await backend.request(Hello())
    assert info.venue_id and isinstance(hello, BackendInfo) and hello.venue_id == info.venue_id
    async with backend.open(Recorder()) as again:
        assert again.venue_id == info.venue_id  # the history goes on: same venue


# --------------------------------------------------------------------------- reports


async def test_each_accounts_reports_are_numbered_one_by_one(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, sink, _):
        await backend.request(OpenAccount(ACCT))
        await backend.request(OpenAccount("other"))
        await backend.request(buy(backend))
        await backend.request(buy(backend, 150))  # refused: still reported
        for account in (ACCT, "other"):
            seqs = [r.seq for r in sink.reports if r.account_id == account]
            assert seqs == list(range(1, len(seqs) + 1))
        kinds = [type(r.item) for r in sink.reports if r.account_id == ACCT]
        assert OrderError in kinds and Order in kinds


class BatchRecorder(Recorder):
    """A sink that also takes one state change's reports of an account at once."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[AccountReport]] = []

    def on_reports(self, reports: list[AccountReport]) -> None:
        self.batches.append(list(reports))
        self.reports.extend(reports)


async def test_a_sink_with_on_reports_gets_an_orders_reports_in_one_call(tmp_path: Path) -> None:
    streams = []
    for sink in (Recorder(), BatchRecorder()):
        backend = SimBackend(home=tmp_path / type(sink).__name__, clock=VirtualClock(START))
        async with backend.open(sink):
            await backend.request(OpenAccount(ACCT))
            sink.reports.clear()
            await backend.request(buy(backend))
        streams.append(sink.reports)
        if isinstance(sink, BatchRecorder):
            assert sink.batches == [sink.reports]  # one call for the filled buy's six
    assert len(streams[0]) == 6
    assert streams[0] == streams[1]  # the same reports, the same numbers


async def test_reports_of_a_closed_stream_wait_for_the_next_open(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, sink, _):
        await backend.request(OpenAccount(ACCT))
        await backend.request(CloseAccount(ACCT))
        seen = len(sink.reports)
        await backend.request(buy(backend))
        assert len(sink.reports) == seen  # nothing pushed while closed
        await backend.request(OpenAccount(ACCT, after_seq=seen))
        assert [r.seq for r in sink.reports[seen:]] == list(range(seen + 1, len(sink.reports) + 1))


async def test_after_seq_replays_only_newer_reports_after_a_restart(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, sink, _):
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend))
        first = list(sink.reports)
    async with opened(tmp_path) as (backend, sink, _):
        await backend.request(OpenAccount(ACCT, after_seq=2))
        assert sink.reports == first[2:]  # the same reports, the same numbers
        await backend.request(buy(backend))
        assert sink.reports[len(first) - 2].seq == len(first) + 1


async def test_reopening_the_same_backend_object_does_not_repeat_reports(tmp_path: Path) -> None:
    backend = SimBackend(home=tmp_path, clock=VirtualClock(START))
    async with backend.open(Recorder()):
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend))
    sink = Recorder()
    async with backend.open(sink):
        await backend.request(OpenAccount(ACCT))
        seqs = [r.seq for r in sink.reports]
        assert seqs == list(range(1, len(seqs) + 1))
        reply = await backend.request(buy(backend))
        assert isinstance(reply, OrderResponse)
        assert sink.reports[len(seqs)].seq == len(seqs) + 1


async def test_order_ids_continue_after_a_restart(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, _, _):
        await backend.request(OpenAccount(ACCT))
        ids = [(await backend.request(buy(backend))).order_id for _ in range(3)]  # type: ignore[union-attr]
    async with opened(tmp_path) as (backend, _, _):
        nxt = await backend.request(buy(backend))
        assert isinstance(nxt, OrderResponse) and nxt.order_id == max(ids) + 1


async def test_the_day_rolls_on_the_next_request_even_before_the_tick_loop_runs(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path) as (backend, _, clock):
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend))
        clock.advance(24 * 3600)  # no checkpoint: the tick loop has not seen it
        reply = await backend.request(QueryPositions(ACCT))
        assert isinstance(reply, Positions)
        [pos] = reply.items
        assert pos.can_use_volume == pos.volume == 100


async def test_an_order_answered_at_once_rolls_the_day_first_when_the_clock_moved_on(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path) as (backend, _, clock):
        await backend.request(OpenAccount(ACCT))
        first = backend.request_now(buy(backend))
        assert isinstance(first, OrderResponse) and first.order_id > 0
        again = backend.request_now(buy(backend))  # the same minute: the same day
        assert isinstance(again, OrderResponse) and again.order_id == first.order_id + 1
        day = backend._today()
        clock.advance(24 * 3600)  # no checkpoint: the tick loop has not seen it
        nxt = backend.request_now(buy(backend))
        assert isinstance(nxt, OrderResponse) and nxt.order_id > again.order_id
        accounts = backend._accounts
        assert accounts is not None and accounts.broker.day == backend._today() > day
        [pos] = accounts.broker.positions(ACCT)
        assert pos.yesterday_volume == 200  # the first two buys, settled by the roll


# --------------------------------------------------------------------------- listings


async def test_a_code_listed_later_is_not_trading_yet(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, sink, _):
        assert LATER in backend.market.universe
        with pytest.raises(InvalidCode, match="20240618"):
            await backend.request(SubscribeQuotes(1, [LATER]))
        snap = await backend.request(GetSnapshot([CODE, LATER]))
        assert isinstance(snap, Snapshots) and [t.stock_code for t in snap.items] == [CODE]
        listed = await backend.request(ListInstruments([CODE, LATER]))
        assert isinstance(listed, Instruments) and [i.stock_code for i in listed.items] == [CODE]
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend, code=CODE))
        refused = await backend.request(
            SubmitOrder(ACCT, LATER, int(OrderType.STOCK_BUY), 100, int(PriceType.FIX_PRICE), 50.0)
        )
        assert isinstance(refused, OrderResponse) and refused.error_msg
        errors = [r.item for r in sink.reports if isinstance(r.item, OrderError)]
        assert [e.error_id for e in errors] == [Reject.BAD_CODE]


async def test_a_refused_subscription_leaves_the_tick_loop_alone(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, sink, clock):
        with pytest.raises(InvalidCode):
            await backend.request(SubscribeQuotes(1, [CODE, LATER]))
        clock.advance(3)
        await anyio.wait_all_tasks_blocked()
        assert sink.quotes == []
        await backend.request(SubscribeQuotes(1, [CODE]))  # the id is free again
        assert [b.sub_id for b in sink.quotes] == [1]


# --------------------------------------------------------------------------- bars


@pytest.mark.parametrize(
    "now",
    [
        beijing_ms(9, 30),
        beijing_ms(9, 30, 3),
        beijing_ms(10, 0, 7),
        beijing_ms(11, 30),
        beijing_ms(12, 15),
        beijing_ms(13, 0, 3),
        beijing_ms(13, 1),
        beijing_ms(15, 30),
    ],
)
@pytest.mark.parametrize("period", ["1m", "1d"])
async def test_a_bar_subscription_starts_with_the_bar_history_shows(
    tmp_path: Path, now: int, period: str
) -> None:
    codes = [CODE, "000001.SZ", "835185.BJ"]
    async with opened(tmp_path, now) as (backend, sink, _):
        await backend.request(SubscribeQuotes(1, codes, period))
        [batch] = sink.quotes
        assert batch.period == period
        for bar in batch.items:
            assert isinstance(bar, Bar)
            minute, daily = backend.market.intraday_bars(bar.stock_code, 20240603, now)
            cols = minute if period == "1m" else daily
            want = {k: cols[k][-1].item() for k in ("time", "open", "high", "low", "close")}
            want |= {k: cols[k][-1].item() for k in ("volume", "amount", "preClose")}
            assert {k: getattr(bar, k) for k in want} == want
        assert sorted(b.stock_code for b in batch.items) == sorted(codes)


async def test_no_bar_is_pushed_before_the_open(tmp_path: Path) -> None:
    async with opened(tmp_path, beijing_ms(9, 0)) as (backend, sink, clock):
        await backend.request(SubscribeQuotes(1, [CODE], "1m"))
        assert sink.quotes == []
        clock.advance(30 * 60)  # 09:30, the auction tick
        await anyio.wait_all_tasks_blocked()
        [batch] = sink.quotes
        assert [b.time for b in batch.items] == [beijing_ms(9, 30)]


async def test_a_resting_order_trades_only_when_the_clock_moves(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, sink, clock):
        await backend.request(OpenAccount(ACCT))
        ahead = [backend.market.tick(CODE, START + 3000 * k) for k in range(1, 101)]
        target = min(t.askPrice[0] for t in ahead)
        await backend.request(msgspec.structs.replace(buy(backend), price=target))
        statuses = [r.item.order_status for r in sink.reports if isinstance(r.item, Order)]
        assert statuses == [OrderStatus.REPORTED]
        for _ in range(100):
            clock.advance(3)
            await anyio.wait_all_tasks_blocked()
        statuses = [r.item.order_status for r in sink.reports if isinstance(r.item, Order)]
        assert statuses == [OrderStatus.REPORTED, OrderStatus.SUCCEEDED]


def count_books(backend: SimBackend, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the codes of every tick computation the market is asked for."""
    asked: list[list[str]] = []
    real = backend.market.ticks

    def ticks(codes: list[str], now_ms: int) -> list[Tick]:
        asked.append(list(codes))
        return real(codes, now_ms)

    monkeypatch.setattr(backend.market, "ticks", ticks)
    return asked


async def test_the_tick_loop_computes_a_lately_traded_codes_book_ahead_of_its_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(tmp_path) as (backend, _sink, clock):
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend))
        again = buy(backend)
        asked = count_books(backend, monkeypatch)
        clock.advance(3)  # a new step: the loop computes the book before the next order
        await anyio.wait_all_tasks_blocked()
        assert asked == [[CODE]]
        reply = await backend.request(again)
        assert isinstance(reply, OrderResponse) and reply.order_id > 0
        assert asked == [[CODE]]  # the order found its book ready


async def test_a_code_not_traded_for_a_while_is_no_longer_computed_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(tmp_path) as (backend, _sink, clock):
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend))
        asked = count_books(backend, monkeypatch)
        for _ in range(HOT_STEPS + 2):
            clock.advance(3)
            await anyio.wait_all_tasks_blocked()
        assert len(asked) == HOT_STEPS
        assert all(codes == [CODE] for codes in asked)


async def test_nothing_is_pushed_while_the_market_stands_still(tmp_path: Path) -> None:
    async with opened(tmp_path, beijing_ms(11, 29, 57)) as (backend, sink, clock):
        await backend.request(SubscribeQuotes(1, [CODE]))
        clock.advance(3)  # 11:30:00, the last morning tick
        await anyio.wait_all_tasks_blocked()
        assert [b.items[0].time for b in sink.quotes] == [
            beijing_ms(11, 29, 57),
            beijing_ms(11, 30),
        ]
        for _ in range(20):  # the lunch break
            clock.advance(90)
            await anyio.wait_all_tasks_blocked()
        assert len(sink.quotes) == 2
        clock.advance(3600 + 3)  # 13:00:03, the first afternoon tick
        await anyio.wait_all_tasks_blocked()
        assert [b.items[0].time for b in sink.quotes[2:]] == [beijing_ms(13, 0, 3)]


async def test_a_journal_from_a_later_day_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    async with opened(tmp_path, beijing_ms(10, 0, day=4)) as (backend, _, _):
        await backend.request(OpenAccount(ACCT))
        await backend.request(buy(backend))
    async with opened(tmp_path) as (backend, _, _):
        with pytest.raises(InvalidArgument, match=r"last used on trading day 20240604"):
            await backend.request(OpenAccount(ACCT))


async def test_history_says_how_far_the_simulators_own_clock_has_come(tmp_path: Path) -> None:
    async with opened(tmp_path) as (backend, _, clock):
        clock.advance(90)
        reply = await backend.request(FetchHistory(CODE, "1m", START - 3_600_000, 0))
        assert isinstance(reply, HistoryColumns)
        assert reply.as_of == backend.session_now()
        times = np.frombuffer(reply.columns["time"], dtype=np.int64)
        # Minute bars are labelled by their end: the one in progress may carry a later time.
        assert reply.rows > 0 and int(times.max()) <= reply.as_of + 60_000


async def test_an_unreadable_journal_stops_accounts_but_not_data(tmp_path: Path) -> None:
    state = SimBackend(home=tmp_path).state_dir
    state.mkdir(parents=True)
    (state / "journal.bin").write_bytes(b"NOTAJRNL")
    async with opened(tmp_path) as (backend, _, _):
        bars = await backend.request(FetchHistory(CODE, "1d", 0, backend.session_now()))
        assert isinstance(bars, HistoryColumns) and bars.rows > 0
        with pytest.raises(CacheError, match="not a qmtkit journal"):
            await backend.request(OpenAccount(ACCT))


# --------------------------------------------------------------------------- pace


@pytest.mark.parametrize(
    ("url", "step_ms", "wall_s"),
    [
        ("sim://", 500, 3.0),  # the default virtual session: a new snapshot every 3 s
        ("sim://?speed=2", 1000, 3.0),
        ("sim://?speed=20", 3000, 0.9),  # fast enough for MiniQMT's own 3 s step
        ("sim://?clock=strict", 3000, 3.0),  # real hours run at wall speed
        ("sim://?step=6000", 6000, 36.0),  # an explicit step is kept
    ],
)
def test_the_default_step_brings_a_snapshot_at_least_every_3_wall_seconds(
    url: str, step_ms: int, wall_s: float
) -> None:
    b = SimBackend.from_url(url)
    assert b.step_ms == step_ms
    assert b._step_wall_seconds() == pytest.approx(wall_s)


async def test_a_default_subscriber_gets_a_newer_snapshot_within_seconds(tmp_path: Path) -> None:
    async with (
        qmtkit.connect("sim://?share=0", home=tmp_path) as qk,
        qk.subscribe(["600000.SH"]) as quotes,
    ):
        with anyio.fail_after(15):  # one 3 s step, with room for a loaded machine
            first = (await quotes.__anext__())[-1]
            second = (await quotes.__anext__())[-1]
    assert second.time - first.time == 500  # the next session step, half a second on
    assert second.volume >= first.volume
