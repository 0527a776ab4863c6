"""The embedded simulator, end to end through the public async client.

Every test drives a ``SimBackend`` on a ``VirtualClock`` that starts inside a trading session
(Monday 2024-06-03, 10:00 Beijing), so prices, fills and day rolls are deterministic: time moves
only when a test advances it, and the tick loop's reaction is awaited with
``anyio.wait_all_tasks_blocked()``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import anyio
import numpy as np
import pytest

import qmtkit
from qmtkit.backends.base import FetchHistory, HistoryColumns
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.sim.broker import Reject
from qmtkit.clock import BEIJING, VirtualClock
from qmtkit.constants import OrderStatus, OrderType, PriceType
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import InvalidCode, JournalLocked
from qmtkit.models import Bar, Tick

STEP_S = 3  # the simulator's default tick step
CODE = "600000.SH"
ACCT = "e2e"


def beijing_ms(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=BEIJING).timestamp() * 1000)


START = beijing_ms(2024, 6, 3, 10, 0)  # a Monday, inside the morning session
TODAY = 20240603


class Sim:
    """A connected client plus the backend and clock behind it."""

    def __init__(self, qk: qmtkit.Client, backend: SimBackend, clock: VirtualClock) -> None:
        self.qk = qk
        self.backend = backend
        self.clock = clock

    def tick(self, code: str = CODE) -> Tick:
        """The book the simulator shows right now (what an order meets)."""
        return self.backend.market.tick(code, self.clock.now_ms())

    async def step(self, n: int = 1) -> None:
        """Advance ``n`` tick steps, letting the tick loop react to each."""
        for _ in range(n):
            self.clock.advance(STEP_S)
            await anyio.wait_all_tasks_blocked()


@asynccontextmanager
async def sim(
    home: Path, start: int = START, *, strict: bool = False, cash: float = 1_000_000.0
) -> AsyncIterator[Sim]:
    clock = VirtualClock(start, strict=strict)
    backend = SimBackend(home=home, clock=clock, initial_cash=cash)
    async with qmtkit.connect(backend=backend) as qk:
        yield Sim(qk, backend, clock)


def cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def buy_fees(amount: Decimal) -> Decimal:
    """A-share buy fees by hand: 0.025 % commission (min 5), 0.001 % transfer fee."""
    return max(cents(amount * Decimal("0.00025")), Decimal(5)) + cents(amount * Decimal("0.00001"))


def sell_fees(amount: Decimal) -> Decimal:
    """Sell fees: the buy fees plus 0.05 % stamp duty."""
    return buy_fees(amount) + cents(amount * Decimal("0.0005"))


def dec(x: float) -> Decimal:
    return Decimal(repr(x))


# --------------------------------------------------------------------------- accounts


async def test_a_new_account_starts_with_one_million_cny(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        asset = await acct.asset()
        assert (asset.cash, asset.frozen_cash, asset.market_value) == (1_000_000.0, 0.0, 0.0)
        assert asset.total_asset == 1_000_000.0
        assert await acct.positions() == []
        assert await acct.orders() == []
        assert ACCT in [a.account_id for a in await s.qk.account_infos()]


async def test_the_cash_url_parameter_funds_new_accounts(tmp_path: Path) -> None:
    async with qmtkit.connect("sim://?cash=500000", home=tmp_path) as qk:
        asset = await (await qk.account(ACCT)).asset()
        assert asset.cash == 500_000.0 and asset.total_asset == 500_000.0


# --------------------------------------------------------------------------- fills


async def test_a_buy_crossing_the_ask_fills_with_hand_checked_fees(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        book = s.tick()
        assert book.askVol[0] >= 10_000  # the first level alone can fill it
        order = await (await acct.buy(CODE, 10_000, book.askPrice[0]))
        assert order.order_status == OrderStatus.SUCCEEDED
        assert (order.traded_volume, order.traded_price) == (10_000, book.askPrice[0])
        [trade] = await acct.trades()
        amount = dec(book.askPrice[0]) * 10_000
        assert dec(trade.traded_amount) == amount
        assert dec(trade.commission) == buy_fees(amount)
        asset = await acct.asset()
        assert dec(asset.cash) == Decimal(1_000_000) - amount - buy_fees(amount)
        assert asset.frozen_cash == 0.0
        [pos] = await acct.positions()
        assert (pos.stock_code, pos.volume, pos.can_use_volume) == (CODE, 10_000, 0)


async def test_a_limit_buy_below_the_market_rests_then_fills_when_the_book_reaches_it(
    tmp_path: Path,
) -> None:
    async with sim(tmp_path) as s:
        market = s.backend.market
        now = s.tick()
        # Scan the coming ticks: the lowest ask of the next 10 minutes, below today's ask.
        ahead = [market.tick(CODE, START + k * STEP_S * 1000) for k in range(1, 201)]
        target = min(t.askPrice[0] for t in ahead)
        assert target < now.askPrice[0]
        reach = next(k for k, t in enumerate(ahead, 1) if t.askPrice[0] <= target)

        acct = await s.qk.account(ACCT)
        handle = await acct.buy(CODE, 100, target)
        assert handle.order.order_status == OrderStatus.REPORTED
        await s.step(reach - 1)
        assert handle.order.order_status == OrderStatus.REPORTED  # not a step too early
        await s.step()
        with anyio.fail_after(5):
            order = await handle
        assert order.order_status == OrderStatus.SUCCEEDED
        assert order.traded_price == target
        assert handle.trades[0].traded_time * 1000 == ahead[reach - 1].time


async def test_cancelling_a_resting_buy_reports_54_and_unfreezes_the_cash(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        price = round(s.tick().bidPrice[4] - 0.05, 2)
        handle = await acct.buy(CODE, 1_000, price)
        assert handle.order.order_status == OrderStatus.REPORTED
        amount = dec(price) * 1_000
        frozen = await acct.asset()
        assert dec(frozen.frozen_cash) == amount + buy_fees(amount)
        assert dec(frozen.cash) == Decimal(1_000_000) - amount - buy_fees(amount)

        reply = await handle.cancel()
        assert reply.cancel_result == 0
        order = await handle
        assert order.order_status == OrderStatus.CANCELED and order.traded_volume == 0
        asset = await acct.asset()
        assert (asset.cash, asset.frozen_cash) == (1_000_000.0, 0.0)
        assert await acct.orders(cancelable_only=True) == []


async def test_a_partial_fill_then_cancel_ends_at_53_with_the_traded_volume(
    tmp_path: Path,
) -> None:
    async with sim(tmp_path, cash=1e9) as s:
        acct = await s.qk.account(ACCT)
        book = s.tick()
        first = book.askVol[0]
        handle = await acct.buy(CODE, first + 500, book.askPrice[0])
        assert handle.order.order_status == OrderStatus.PART_SUCC
        assert handle.order.traded_volume == first
        await handle.cancel()
        order = await handle
        assert order.order_status == OrderStatus.PART_CANCEL
        assert order.traded_volume == first
        amount = dec(book.askPrice[0]) * first
        asset = await acct.asset()
        assert asset.frozen_cash == 0.0
        assert dec(asset.cash) == Decimal(1_000_000_000) - amount - buy_fees(amount)
        [pos] = await acct.positions()
        assert pos.volume == first


async def test_latest_price_orders_work_at_the_last_price(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        handle = await acct.buy(CODE, 100)  # no price: LATEST_PRICE
        assert handle.request.price_type == PriceType.LATEST_PRICE
        assert handle.order.price == s.tick().lastPrice
        assert handle.order.order_status != OrderStatus.JUNK


# --------------------------------------------------------------------------- trading days


async def test_shares_bought_today_become_sellable_on_the_next_trading_day(
    tmp_path: Path,
) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        await (await acct.buy(CODE, 1_000, s.tick().askPrice[0]))
        early = await (await acct.sell(CODE, 1_000, s.tick().bidPrice[0]))
        assert early.order_status == OrderStatus.JUNK
        assert early.error is not None and early.error.error_id == Reject.NO_SHARES
        assert "T+1" in early.error.error_msg

        s.clock.advance(24 * 3600)  # Tuesday 10:00
        await anyio.wait_all_tasks_blocked()
        [pos] = await acct.positions()
        assert (pos.volume, pos.can_use_volume, pos.yesterday_volume) == (1_000, 1_000, 1_000)
        assert await acct.trades() == []  # today's lists start empty

        book = s.tick()
        cash_before = (await acct.asset()).cash
        sold = await (await acct.sell(CODE, 1_000, book.bidPrice[0]))
        assert sold.order_status == OrderStatus.SUCCEEDED
        amount = dec(book.bidPrice[0]) * 1_000
        [trade] = await acct.trades()
        assert dec(trade.commission) == sell_fees(amount)
        assert dec((await acct.asset()).cash) == dec(cash_before) + amount - sell_fees(amount)


async def test_unfilled_orders_expire_when_the_day_rolls(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        floor = (await s.qk.instrument(CODE)).DownStopPrice  # type: ignore[union-attr]
        handle = await acct.buy(CODE, 1_000, floor)
        assert handle.order.order_status == OrderStatus.REPORTED
        assert (await acct.asset()).frozen_cash > 0

        s.clock.advance(24 * 3600)
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(5):
            order = await handle
        assert order.order_status == OrderStatus.CANCELED
        assert "expired" in order.status_msg
        asset = await acct.asset()
        assert (asset.cash, asset.frozen_cash) == (1_000_000.0, 0.0)
        assert await acct.orders() == []


async def test_a_strict_clock_refuses_orders_outside_session_hours(tmp_path: Path) -> None:
    lunch = beijing_ms(2024, 6, 3, 12, 0)
    async with sim(tmp_path, lunch, strict=True) as s:
        acct = await s.qk.account(ACCT)
        before = (await acct.asset(), await acct.positions())
        order = await (await acct.buy(CODE, 100, s.tick().askPrice[0]))
        assert order.order_status == OrderStatus.JUNK
        assert order.error is not None and order.error.error_id == Reject.MARKET_CLOSED
        assert "market is closed" in order.error.error_msg
        assert (await acct.asset(), await acct.positions()) == before

        s.clock.advance(3600 + STEP_S)  # 13:00:03, the afternoon session
        await anyio.wait_all_tasks_blocked()
        filled = await (await acct.buy(CODE, 100, s.tick().askPrice[0]))
        assert filled.order_status == OrderStatus.SUCCEEDED


# --------------------------------------------------------------------------- refusals


def _invalid_cases() -> list[tuple[str, str, int, int, int, object, Reject, str]]:
    # (id, code, side, volume, price_type, price or a rule for it, reason, words in the message)
    buy, sell = int(OrderType.STOCK_BUY), int(OrderType.STOCK_SELL)
    fix = int(PriceType.FIX_PRICE)
    return [
        ("unlisted", "600999.SH", buy, 100, fix, 10.0, Reject.BAD_CODE, "600999.SH"),
        ("later-listing", "688713.SH", buy, 100, fix, 10.0, Reject.BAD_CODE, "688713.SH"),
        ("index", "000300.SH", buy, 100, fix, 3500.0, Reject.NOT_TRADABLE, "index"),
        ("odd-lot", CODE, buy, 150, fix, "ask", Reject.BAD_LOT, "150"),
        ("off-tick", CODE, buy, 100, fix, "off-tick", Reject.BAD_PRICE, "tick"),
        ("above-limit", CODE, buy, 100, fix, "over-up", Reject.PRICE_LIMIT, "limits"),
        ("no-cash", "600519.SH", buy, 1_000, fix, "ask", Reject.NO_CASH, "insufficient cash"),
        (
            "latest-no-cash",
            CODE,
            buy,
            200_000,
            int(PriceType.LATEST_PRICE),
            0.0,
            Reject.NO_CASH,
            "insufficient cash",
        ),
        ("no-shares", CODE, sell, 100, fix, "ask", Reject.NO_SHARES, "sellable 0"),
        (
            "sz-type-on-sh",
            CODE,
            buy,
            100,
            int(PriceType.MARKET_SZ_FULL_OR_CANCEL),
            0.0,
            Reject.BAD_PRICE_TYPE,
            "Shenzhen",
        ),
        (
            "sh-type-on-sz",
            "000001.SZ",
            buy,
            100,
            int(PriceType.MARKET_SH_CONVERT_5_CANCEL),
            0.0,
            Reject.BAD_PRICE_TYPE,
            "Shanghai",
        ),
    ]


@pytest.mark.parametrize(
    ("code", "side", "volume", "price_type", "price", "reason", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in _invalid_cases()],
)
async def test_an_invalid_order_is_refused_through_order_error_and_changes_nothing(
    tmp_path: Path,
    code: str,
    side: int,
    volume: int,
    price_type: int,
    price: object,
    reason: Reject,
    words: str,
) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        if isinstance(price, str):
            info = await s.qk.instrument(code)
            assert info is not None
            ask = s.tick(code).askPrice[0]
            price = {
                "ask": ask,
                "off-tick": round(ask + 0.005, 3),
                "over-up": round(info.UpStopPrice + 0.01, 2),
            }[price]
        assert isinstance(price, float)
        before = (await acct.asset(), await acct.positions())
        order = await (await acct.order(code, side, volume, price_type, price))
        assert order.order_status == OrderStatus.JUNK
        assert order.error is not None
        assert order.error.error_id == reason
        assert words in order.error.error_msg
        assert (await acct.asset(), await acct.positions()) == before
        assert await acct.trades() == []


# --------------------------------------------------------------------------- restart


async def test_a_restart_restores_the_accounts_exactly(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        await (await acct.buy(CODE, 1_000, s.tick().askPrice[0]))
        resting = await acct.buy(CODE, 500, round(s.tick().bidPrice[4] - 0.1, 2))
        assert resting.order.order_status == OrderStatus.REPORTED
        before = (await acct.asset(), await acct.positions(), await acct.orders())
        trades = await acct.trades()
        last_id = max(o.order_id for o in before[2])

    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        assert (await acct.asset(), await acct.positions(), await acct.orders()) == before
        assert await acct.trades() == trades
        [still] = await acct.orders(cancelable_only=True)
        assert still.order_id == resting.order_id
        handle = await acct.buy(CODE, 100, s.tick().askPrice[0])
        assert handle.order_id > last_id  # ids are never reused
        assert (await acct.cancel(still.order_id)).cancel_result == 0
        asset = await acct.asset()
        assert asset.frozen_cash == 0.0


async def test_a_reconnected_client_sees_the_account_reports_in_order(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        await (await acct.buy(CODE, 100, s.tick().askPrice[0]))
        first_run = acct.last_seq
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        assert acct.last_seq == first_run  # the journal's reports were replayed
        async with acct.reports() as reports:
            await acct.buy(CODE, 100, s.tick().askPrice[0])
            with anyio.fail_after(5):
                nxt = await reports.__anext__()
        assert nxt.seq == first_run + 1


# --------------------------------------------------------------------------- ownership


async def test_a_second_opener_in_this_process_reads_data_but_gets_no_account(
    tmp_path: Path,
) -> None:
    async with sim(tmp_path) as first:
        await first.qk.account("A")
        async with sim(tmp_path) as second:
            assert (await second.qk.data.snapshot(CODE))[CODE].lastPrice > 0
            with pytest.raises(JournalLocked, match=f"pid {os.getpid()}"):
                await second.qk.account("A")


async def test_another_process_gets_journal_locked_naming_the_holder(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from qmtkit.backends.sim.journal import Journal\n"
        "from qmtkit.errors import JournalLocked\n"
        "try:\n"
        "    Journal(sys.argv[1]).open()\n"
        "except JournalLocked as e:\n"
        "    print('LOCKED', e)\n"
        "else:\n"
        "    print('OPENED')\n"
    )
    async with sim(tmp_path) as s:
        await s.qk.account("A")  # the journal is taken by the first account use
        path = s.backend.state_dir / "journal.bin"
        done = await anyio.run_process([sys.executable, "-c", script, str(path)], check=False)
    out = done.stdout.decode()
    assert out.startswith("LOCKED"), out + done.stderr.decode()
    assert f"pid {os.getpid()}" in out


async def test_connecting_while_another_process_holds_the_journal_names_it(
    tmp_path: Path,
) -> None:
    path = SimBackend(home=tmp_path).state_dir / "journal.bin"
    script = (
        "import sys\n"
        "from qmtkit.backends.sim.journal import Journal\n"
        "with Journal(sys.argv[1]):\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    async with await anyio.open_process([sys.executable, "-c", script, str(path)]) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        with anyio.fail_after(30):
            assert (await proc.stdout.receive()).startswith(b"ready")
        async with sim(tmp_path) as s:  # market data needs no journal
            assert (await s.qk.data.snapshot(CODE))[CODE].lastPrice > 0
            with pytest.raises(JournalLocked, match=rf"pid {proc.pid}\b"):
                await s.qk.account("A")
        await proc.stdin.aclose()
        assert await proc.wait() == 0
    async with sim(tmp_path) as s:  # free again once the holder is gone
        await s.qk.account("A")


async def test_two_terminals_in_one_home_are_independent(tmp_path: Path) -> None:
    async with (
        qmtkit.connect("sim://?terminal=a", home=tmp_path) as qa,
        qmtkit.connect("sim://?terminal=b", home=tmp_path) as qb,
    ):
        a = await qa.account(ACCT)
        b = await qb.account(ACCT)
        floor = (await qa.instrument(CODE)).DownStopPrice  # type: ignore[union-attr]
        await a.buy(CODE, 100, floor)
        assert (await a.asset()).cash < 1_000_000.0
        assert (await b.asset()).cash == 1_000_000.0
        assert await b.orders() == []
    assert (tmp_path / "sim" / "a").is_dir() and (tmp_path / "sim" / "b").is_dir()


# --------------------------------------------------------------------------- quotes


async def test_a_quote_subscription_yields_ticks_with_a_five_level_book(tmp_path: Path) -> None:
    codes = [CODE, "000001.SZ", "300750.SZ"]
    async with sim(tmp_path) as s:
        limits = await s.qk.instruments(codes)
        async with s.qk.subscribe(codes) as sub:
            first = await sub.__anext__()  # the current state comes at once
            await s.step()
            second = await sub.__anext__()
        for batch in (first, second):
            assert sorted(t.stock_code for t in batch) == sorted(codes)
        assert {t.time for t in second} == {START + STEP_S * 1000}
        for t in first + second:
            assert isinstance(t, Tick)
            info = limits[t.stock_code]
            assert len(t.askPrice) == len(t.bidPrice) == 5
            assert t.askPrice == sorted(t.askPrice) and t.bidPrice == sorted(t.bidPrice)[::-1]
            assert t.bidPrice[0] < t.askPrice[0]
            for p in t.askPrice + t.bidPrice + [t.lastPrice]:
                assert info.DownStopPrice <= p <= info.UpStopPrice


async def test_a_whole_market_subscription_yields_every_listed_code(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        listed = {
            lst.code for lst in s.backend.market.universe if lst.list_date <= TODAY
        }  # 688713.SH lists on 2024-06-18: not yet
        assert "688713.SH" not in listed
        async with s.qk.subscribe_whole() as sub:
            batch = await sub.__anext__()
        assert {t.stock_code for t in batch} == listed == set(await s.qk.instruments())


async def test_a_minute_bar_subscription_yields_the_bar_history_agrees_with(
    tmp_path: Path,
) -> None:
    async with sim(tmp_path) as s:
        async with s.qk.subscribe(CODE, "1m") as sub:
            await s.step(25)
            latest = None
            while sub.pending:
                latest = (await sub.__anext__())[-1]
        assert isinstance(latest, Bar) and latest.period == "1m"
        assert latest.time == START + 2 * 60_000  # the minute 10:01:00-10:02:00, in progress
        reply = await s.qk.request(FetchHistory(CODE, "1m", START, 0))
        assert isinstance(reply, HistoryColumns)
        cols = {k: np.frombuffer(v, BAR_DTYPES[k]) for k, v in reply.columns.items()}
        assert int(cols["time"][-1]) == latest.time
        assert float(cols["close"][-1]) == latest.close
        assert int(cols["volume"][-1]) == latest.volume


async def test_subscribing_an_unknown_code_raises_invalid_code(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        with pytest.raises(InvalidCode, match=r"600999\.SH"):
            async with s.qk.subscribe("600999.SH"):
                pass
        assert s.qk.quote_subscriptions == 0


# --------------------------------------------------------------------------- history


async def test_todays_daily_bar_agrees_with_the_streamed_ticks(tmp_path: Path) -> None:
    async with sim(tmp_path) as s:
        async with s.qk.subscribe(CODE) as sub:
            await s.step(10)
            last = None
            while sub.pending:
                last = (await sub.__anext__())[-1]
        assert isinstance(last, Tick) and last.time == START + 10 * STEP_S * 1000
        reply = await s.qk.request(FetchHistory(CODE, "1d", beijing_ms(2024, 5, 1, 0, 0), 0))
        assert isinstance(reply, HistoryColumns) and reply.period == "1d"
        assert set(reply.columns) == set(BAR_DTYPES)
        cols = {k: np.frombuffer(v, BAR_DTYPES[k]) for k, v in reply.columns.items()}
        assert all(len(c) == reply.rows for c in cols.values())
        assert int(cols["time"][-1]) == beijing_ms(2024, 6, 3, 0, 0)
        assert float(cols["close"][-1]) == last.lastPrice
        assert (float(cols["high"][-1]), float(cols["low"][-1])) == (last.high, last.low)
        assert int(cols["volume"][-1]) == last.volume
        assert float(cols["preClose"][-1]) == last.lastClose == float(cols["close"][-2])


# --------------------------------------------------------------------------- lifetime


async def test_nothing_outlives_the_connect_block(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    async with sim(tmp_path) as s:
        acct = await s.qk.account(ACCT)
        async with s.qk.subscribe(CODE):
            await s.step()
        await acct.buy(CODE, 100, s.tick().askPrice[0])
    await anyio.wait_all_tasks_blocked()
    assert asyncio.all_tasks() - before == set()
    async with sim(tmp_path) as s:  # the journal lock was released
        assert len(await (await s.qk.account(ACCT)).orders()) == 1
