"""A step's bar fills in one pass: ``Broker.on_bars`` asks the ledger for every order of the
step first and fills each account's run of orders together (``_fill_run``). Its reports and
state equal those of meeting each code's one-level book on its own with ``on_tick`` (the
general path), in the same order: several codes and accounts, accounts that change from one
code to the next, partial fills under a cap, locked sides, a code met twice at one time (its
second meeting must see the first one's fills) and codes with nothing resting."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from qmtkit.backends.sim.broker import Broker
from qmtkit.constants import OrderStatus
from qmtkit.models import Tick, Trade, TradeReportItem
from support.broker import (
    BUY,
    DAY,
    SELL,
    T0,
    book,
    broker_state,
    instrument,
    one_level_tick,
    order,
)

CODES = ("600000.SH", "600001.SH", "000002.SZ", "300003.SZ")
ACCOUNTS = ("A1", "A2", "A3")


def _broker(seed: int, quiet: set[str]) -> Broker:
    """Accounts holding every code (sellable), then buys and sells resting at many limits."""
    broker = Broker(initial_cash=50_000_000.0, allow_new_accounts=False)
    for acc in ACCOUNTS:
        broker.open_account(acc)
    for code in CODES:
        seed_book = book(code, asks=[(10.0, 1_000_000)], bids=[], time=T0 - 60_000)
        for acc in ACCOUNTS:
            broker.submit(
                order(BUY, 20_000, 10.0, code=code, account=acc),
                book=seed_book,
                instrument=instrument(code),
                now_ms=T0 - 60_000,
                day=DAY,
            )
    broker.roll_day(DAY + 1)
    for acc in quiet:
        broker.state_reports(acc, False)
    rng = random.Random(seed)
    for _ in range(40):
        code = rng.choice(CODES)
        side = rng.choice((BUY, SELL))
        broker.submit(
            order(
                side,
                rng.choice((100, 300, 500, 1200, 3000)),
                rng.choice((9.80, 9.95, 10.0, 10.05, 10.20)),
                code=code,
                account=rng.choice(ACCOUNTS),
            ),
            book=None,
            instrument=instrument(code),
            now_ms=T0,
            day=DAY + 1,
        )
    return broker


def _tick(code: str, time: int, ask: float | None, bid: float | None, volume: int) -> Tick:
    return one_level_tick(code, time, ask, bid, volume)


def _state(broker: Broker) -> list[Any]:
    return broker_state(broker, ACCOUNTS)


def _quotes(rng: random.Random) -> list[tuple[str, float | None, float | None, int]]:
    prices = (None, 9.80, 9.95, 10.0, 10.05, 10.20)
    out = []
    for _ in range(rng.randint(1, 7)):  # codes may repeat (met twice at one time)
        code = rng.choice((*CODES, "601999.SH"))  # the last one has nothing resting
        out.append((code, rng.choice(prices), rng.choice(prices), rng.choice((0, 200, 700, 5000))))
    return out


@pytest.mark.parametrize("quiet", [set(), {"A2"}, set(ACCOUNTS)])
@pytest.mark.parametrize("seed", range(12))
def test_a_steps_fills_in_runs_equal_each_codes_book_met_alone(quiet: set[str], seed: int) -> None:
    general, batch = _broker(seed, quiet), _broker(seed, quiet)
    rng = random.Random(1000 + seed)
    for step in range(4):
        time = T0 + 1000 * (1 + step // 2)  # two steps share a time: the book's volume too
        quotes = _quotes(rng)
        want: list[tuple[str, TradeReportItem]] = []
        for code, ask, bid, volume in quotes:
            want += general.on_tick(_tick(code, time, ask, bid, volume), T0 + 5000)
        runs = batch.on_bars(quotes, time, T0 + 5000)
        got = [(account_id, item) for account_id, items in runs for item in items]
        assert got == want, (seed, step, quotes)
        # runs are maximal: no two in a row of one account, none empty
        assert all(items for _, items in runs)
        assert all(a != b for (a, _), (b, _) in itertools.pairwise(runs))
        assert _state(batch) == _state(general)
        open_codes = {
            o.stock_code
            for a in ACCOUNTS
            for o in batch.orders(a)
            if not OrderStatus(o.order_status).is_terminal
        }
        assert batch.resting_codes == sorted(open_codes)  # a code goes with its last order


@pytest.mark.parametrize("as_bar", [False, True])
def test_a_new_day_brings_a_books_volume_back_even_at_the_same_book_time(as_bar: bool) -> None:
    # The ledger keeps each code's entry from day to day (renewed when next used); a new day
    # is a new tick for it even where a book comes back with the time of the day before.
    broker = Broker(initial_cash=10_000_000.0)
    code = CODES[0]
    took = []
    for day in (DAY, DAY + 1):
        broker.roll_day(day)
        for _ in range(2):
            broker.submit(
                order(BUY, 600, 10.0, code=code, account="A1"),
                book=None,
                instrument=instrument(code),
                now_ms=T0,
                day=day,
            )
        if as_bar:
            pairs = broker.on_bar(code, T0 + 1000, 10.0, None, 1000, T0 + 1000)
        else:
            pairs = broker.on_tick(_tick(code, T0 + 1000, 10.0, None, 1000), T0 + 1000)
        took.append(sum(t.traded_volume for _, t in pairs if isinstance(t, Trade)))
    assert took == [1000, 1000]


@pytest.mark.parametrize("seed", range(20))
def test_bar_and_tick_books_mixed_in_one_tick_share_its_volume_as_ticks_alone_do(
    seed: int,
) -> None:
    # A tick's first level taken by a bar is counted in the ledger's entry itself, the others
    # in its dict; a Tick met at the same time must see both, and a bar after a Tick the dict.
    rng = random.Random(500 + seed)
    general, mixed = _broker(seed, set()), _broker(seed, set())
    prices = (None, 9.95, 10.0, 10.05)
    for step in range(12):
        time = T0 + 1000 * (1 + step // 3)  # three books a time
        code = rng.choice(CODES[:2])
        ask, bid, volume = rng.choice(prices), rng.choice(prices), rng.choice((100, 400, 900))
        want = general.on_tick(_tick(code, time, ask, bid, volume), T0 + 5000)
        if rng.random() < 0.5:
            got = mixed.on_bar(code, time, ask, bid, volume, T0 + 5000)
        else:
            got = mixed.on_tick(_tick(code, time, ask, bid, volume), T0 + 5000)
        assert got == want, (seed, step)
        if step % 5 == 4:
            for broker in (general, mixed):
                broker.roll_day(DAY + 2 + step)
    assert _state(mixed) == _state(general)
