"""backtest://: the paper broker over cached history, on a virtual clock moved by the replay.

Every case writes its own small daily history into a temporary cache, so each number below
follows from the bars written here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qmtkit
from qmtkit.backends.base import Dividend, FetchDividends, FetchHistory, HistoryColumns
from qmtkit.backends.replay import BacktestSpec, ReplayBackend
from qmtkit.clock import beijing
from qmtkit.constants import OrderStatus
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import yyyymmdd_to_ms
from qmtkit.errors import InvalidArgument
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars


@pytest.fixture
def home(tmp_path: Path) -> Path:
    cache = Cache(tmp_path)
    cache.write_bars("1d", {A: _bars(RISING), B: _bars(FLAT), "000300.SH": _bars(FLAT)})
    return tmp_path


def url(**kw: object) -> str:
    q = {"start": "20240102", "end": "20240109", "codes": f"{A},{B}"} | {
        k: str(v) for k, v in kw.items()
    }
    return "backtest://?" + "&".join(f"{k}={v}" for k, v in q.items())


async def test_bars_arrive_one_day_at_a_time_at_the_close_in_virtual_time(home: Path) -> None:
    seen = []
    async with qmtkit.connect(url(), home=home) as qk, qk.subscribe([A, B], "1d") as sub:
        async for batch in sub:
            seen.append((beijing(qk.now()).strftime("%Y%m%d %H:%M"), [b.stock_code for b in batch]))
    assert seen == [(f"{d} 15:00", [A, B]) for d in DAYS]


async def test_next_open_fills_an_order_made_at_the_close_at_the_next_bars_open(home: Path) -> None:
    async with qmtkit.connect(url(), home=home) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            async for batch in sub:
                order = await acct.buy(A, 1000, 11.0)  # day 1 close 10.4; day 2 opens 10.5
                final = await order
                filled_at = beijing(qk.now()).strftime("%Y%m%d %H:%M")
                # At 09:30 of day 2 its bar is not complete: reads end with day 1.
                latest = (await qk.data.bars([A], "1d"))["time"].dt.epoch("ms").max()
                close = batch[0].close
                break
    assert final.order_status == OrderStatus.SUCCEEDED
    assert final.traded_price == 10.5
    assert filled_at == "20240103 09:30"
    assert close == 10.4
    assert latest == int(yyyymmdd_to_ms([20240102])[0])


async def test_shares_bought_at_the_open_can_be_sold_on_the_next_session_only(home: Path) -> None:
    async with qmtkit.connect(url(), home=home) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            day = 0
            async for _ in sub:
                day += 1
                if day == 1:
                    await (await acct.buy(A, 1000, 11.0))  # filled day 2 at the open
                    pos = await acct.position(A)
                    assert pos is not None and pos.volume == 1000 and pos.can_use_volume == 0
                elif day == 2:
                    # Placed after day 2's close: an order for day 3, when T+1 has settled.
                    sold = await (await acct.sell(A, 1000, 10.0))
                    break
    assert sold.order_status == OrderStatus.SUCCEEDED
    assert sold.traded_price == 10.9  # day 3's open


async def test_close_fill_model_fills_at_the_close_it_has_seen_and_warns(home: Path) -> None:
    with pytest.warns(UserWarning, match="optimistic"):
        backend = ReplayBackend(BacktestSpec.from_url(url(fill="close")), cache=Cache(home))
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                final = await (await acct.buy(A, 1000, 11.0))
                break
    assert final.traded_price == 10.4


async def test_qmt_fill_model_fills_a_limit_inside_the_bar_at_the_limit(home: Path) -> None:
    async with qmtkit.connect(url(fill="qmt"), home=home) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                inside = await (await acct.buy(A, 1000, 10.1))  # day 1 range 9.9..10.5
                above = await (await acct.buy(A, 1000, 10.9))  # above the high: the close
                break
    assert inside.traded_price == 10.1
    assert above.traded_price == 10.4


async def test_volume_participation_caps_a_fill_and_the_rest_expires(tmp_path: Path) -> None:
    Cache(tmp_path).write_bars("1d", {A: _bars([(10.0, 10.2, 9.8, 10.0, 40)] * 3)})
    u = f"backtest://?start=20240102&end=20240104&codes={A}"
    async with qmtkit.connect(u, home=tmp_path) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                final = await (await acct.buy(A, 5000, 10.5))
                break
    # 25 % of 40 lots is 1,000 shares; the remainder expires at the end of the day.
    assert final.traded_volume == 1000
    assert final.order_status == OrderStatus.PART_CANCEL


async def test_no_buy_while_locked_at_the_upper_limit(tmp_path: Path) -> None:
    rows = [
        (10.0, 10.0, 10.0, 10.0, 1000),
        (11.0, 11.0, 11.0, 11.0, 1000),
        (11.5, 12.1, 11.5, 12.0, 1000),
    ]
    Cache(tmp_path).write_bars("1d", {A: _bars(rows)})
    u = f"backtest://?start=20240102&end=20240104&codes={A}"
    async with qmtkit.connect(u, home=tmp_path) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                final = await (await acct.buy(A, 100, 11.0))  # day 2 opens locked at 11.00
                break
    assert final.traded_volume == 0
    assert final.order_status == OrderStatus.CANCELED


async def test_no_fill_on_a_suspended_day(tmp_path: Path) -> None:
    days = [20240102, 20240104]  # no bar on the 3rd: suspended
    cache = Cache(tmp_path)
    cache.write_bars("1d", {A: _bars(FLAT[:2], days), B: _bars(FLAT[:3])})
    u = f"backtest://?start=20240102&end=20240104&codes={A},{B}"
    async with qmtkit.connect(u, home=tmp_path) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([B], "1d") as sub:
            async for _ in sub:
                detail = await qk.instrument(A)  # the venue is on the 3rd already
                final = await (await acct.buy(A, 100, 10.5))
                break
    assert detail is not None and not detail.IsTrading
    assert final.order_status == OrderStatus.JUNK
    assert "suspended" in (final.status_msg or "")


async def test_cash_dividend_and_bonus_shares_are_applied_on_the_ex_date(home: Path) -> None:
    ex = int(yyyymmdd_to_ms([20240105])[0])
    Cache(home).write_dividends(A, [Dividend(time=ex, interest=0.5, stockBonus=0.2)])
    async with qmtkit.connect(url(), home=home) as qk:
        acct = await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            day = 0
            async for _ in sub:
                day += 1
                if day == 1:
                    await (await acct.buy(A, 1000, 11.0))
                    cash_before = (await acct.asset()).cash
                if day == 4:
                    pos = await acct.position(A)
                    cash_after = (await acct.asset()).cash
                    break
    assert pos is not None and pos.volume == 1200
    assert cash_after - cash_before == pytest.approx(500.0)


async def test_the_same_inputs_give_the_same_frames(home: Path) -> None:
    async def run() -> Any:
        async with qmtkit.connect(url(), home=home) as qk:
            acct = await qk.account("bt")
            async with qk.subscribe([A, B], "1d") as sub:
                async for batch in sub:
                    for bar in batch:
                        pos = await acct.position(bar.stock_code)
                        if pos is None or pos.volume == 0:
                            await acct.buy(bar.stock_code, 100, round(bar.close * 1.05, 2))
                        elif pos.can_use_volume:
                            await acct.sell(bar.stock_code, 100, round(bar.close * 0.95, 2))
            return qk.backend.result()  # type: ignore[attr-defined]

    first, second = await run(), await run()
    for name in ("orders", "trades", "cancels", "positions", "equity"):
        assert getattr(first, name).equals(getattr(second, name)), name
    assert first.trades.height > 0
    assert first.equity["benchmark"].is_null().all()  # no benchmark asked for


async def test_daily_equity_carries_the_benchmark_close(home: Path) -> None:
    async with qmtkit.connect(url(benchmark="000300.SH"), home=home) as qk:
        await qk.account("bt")
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                pass
        result = qk.backend.result()  # type: ignore[attr-defined]
    assert result.equity["benchmark"].to_list() == [10.0] * len(DAYS)
    assert result.equity["total"].to_list() == [1_000_000.0] * len(DAYS)


async def test_qk_sleep_waits_in_virtual_time_between_bars(home: Path) -> None:
    async with qmtkit.connect(url(), home=home) as qk:
        await qk.account("bt")
        start = qk.now()
        await qk.sleep(3600 * 30)  # 30 h from 00:00 on the 2nd: 06:00 on the 3rd
        woke = qk.now()
    assert woke - start == 30 * 3_600_000
    assert beijing(woke).strftime("%Y%m%d %H:%M") == "20240103 06:00"


# --------------------------------------------------------------------------- no look-ahead


async def test_no_data_call_reads_past_the_virtual_now(home: Path) -> None:
    ex = int(yyyymmdd_to_ms([20240108])[0])
    Cache(home).write_dividends(A, [Dividend(time=ex, interest=1.0)])
    checked = 0
    async with qmtkit.connect(url(), home=home) as qk, qk.subscribe([A], "1d") as sub:
        async for batch in sub:
            now = qk.now()
            today = batch[0].time
            frame = await qk.data.bars([A, B], "1d")  # no end: as of now
            assert frame["time"].dt.epoch("ms").max() == today
            week = await qk.data.bars([A], "1w")
            assert week["close"][-1] == batch[0].close
            adjusted = await qk.data.bars([A], "1d", adjust="front")
            # Front adjustment as of now: before the ex-date nothing is adjusted yet.
            if now < ex:
                assert adjusted["close"].to_list() == frame.filter(code=A)["close"].to_list()
            raw = await qk.request(FetchHistory(A, "1d", 0, 0))
            assert isinstance(raw, HistoryColumns)
            times = np.frombuffer(raw.columns["time"], dtype="<i8")
            assert times.max() == today
            divs = await qk.request(FetchDividends(A))
            assert all(d.time <= now for d in divs.items)  # type: ignore[union-attr]
            snap = await qk.snapshot([A])
            assert snap[A].time <= now and snap[A].lastPrice == batch[0].close
            checked += 1
    assert checked == len(DAYS)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("backtest://?end=20240105", "start"),
        ("backtest://?start=2024", "YYYYMMDD"),
        ("backtest://?start=20240105&end=20240102", "after end"),
        ("backtest://?start=20240102&fill=vwap", "fill model"),
        ("backtest://?start=20240102&period=5m", "period"),
        ("backtest://?start=20240102&participation=2", "participation"),
        ("backtest://?start=20240102&slippage=-1", "slippage"),
        ("backtest://?start=20240102&colour=red", "unknown"),
        ("backtest://?start=20240102&codes=600000.SH&sector=all", "not both"),
    ],
)
def test_bad_urls_are_refused_with_what_is_right(bad: str, message: str) -> None:
    with warnings.catch_warnings(), pytest.raises(InvalidArgument, match=message):
        BacktestSpec.from_url(bad)


async def test_subscribing_another_period_than_the_replays_is_refused(home: Path) -> None:
    async with qmtkit.connect(url(), home=home) as qk:
        with pytest.raises(InvalidArgument, match="replays '1d'"):
            async with qk.subscribe([A], "1m"):
                pass


async def test_a_subscription_to_some_codes_gets_only_those_beside_one_to_every_code(
    home: Path,
) -> None:
    async with (
        qmtkit.connect(url(), home=home) as qk,
        qk.subscribe([B], "1d") as some,
        qk.subscribe([A, B], "1d") as every,
    ):
        got_some = [[b.stock_code for b in batch] async for batch in some]
        got_every = [[b.stock_code for b in batch] async for batch in every]
    assert got_some == [[B]] * len(DAYS)
    assert got_every == [[A, B]] * len(DAYS)
