"""The broker keeps each account's market value as it changes: an ``Asset`` report's market
value must equal the holdings summed afresh, exactly, whatever happened in between."""

from __future__ import annotations

import random
from fractions import Fraction

from qmtkit.backends.sim.broker import Broker
from qmtkit.models import Asset, TradeReportItem
from support.broker import ACC, BUY, DAY, SELL, T0, book, instrument, order

CODES = ("600000.SH", "600001.SH", "000001.SZ", "000002.SZ")


def _fresh_value(broker: Broker) -> float:
    """Shares x last price of every holding, summed exactly, rounded to the fen."""
    total = sum(
        (Fraction(volume) * Fraction(price) for _, volume, _, price in broker.holdings(ACC)),
        Fraction(0),
    )
    return round(float(total), 2)


def _last_asset(items: list[TradeReportItem]) -> Asset | None:
    assets = [i for i in items if isinstance(i, Asset)]
    return assets[-1] if assets else None


def test_asset_market_value_equals_a_fresh_exact_sum_after_fills_marks_and_ex_rights() -> None:
    rng = random.Random(7)
    broker = Broker(initial_cash=10_000_000.0)
    broker.open_account(ACC)
    day, now = DAY, T0
    checked = 0
    for step in range(400):
        code = rng.choice(CODES)
        mid = round(rng.uniform(5, 15), 2)
        inst = instrument(code, pre_close=mid, up=round(mid * 1.1, 2), down=round(mid * 0.9, 2))
        tick = book(code, last=mid, asks=[(mid, 100_000)], bids=[(mid, 100_000)], time=now)
        side = rng.choice((BUY, BUY, SELL))
        sellable = broker.holding(ACC, code)[1]
        volume = rng.choice((100, 300, 1000)) if side == BUY else min(sellable, 300)
        items: list[TradeReportItem] = []
        if volume > 0:
            _, items = broker.submit(
                order(side, volume, mid, code=code), book=tick, instrument=inst, now_ms=now, day=day
            )
        reported = _last_asset(items)
        if reported is not None:
            assert reported.market_value == _fresh_value(broker)
        if rng.random() < 0.2:
            broker.mark_to_market({c: round(rng.uniform(5, 15), 3) for c in CODES})
        if rng.random() < 0.05:
            # A bonus share issue: odd share counts and a price off the tick grid.
            broker.ex_rights(code, 0.1, 0.3)
        if step % 40 == 39:
            day += 1
            now += 86_400_000
            broker.roll_day(day)
        now += 1000
        assert broker.asset(ACC).market_value == _fresh_value(broker)
        checked += 1
    assert checked == 400
    assert broker.asset(ACC).market_value > 0


def test_a_restored_broker_values_its_holdings_like_the_one_that_wrote_the_reports() -> None:
    broker = Broker(initial_cash=1_000_000.0)
    reports = [*broker.open_account(ACC)]
    for i, code in enumerate(CODES):
        price = 10.0 + i
        inst = instrument(code, pre_close=price, up=price * 1.1, down=price * 0.9)
        tick = book(code, last=price, asks=[(price, 10_000)], bids=[(price, 10_000)])
        _, items = broker.submit(
            order(BUY, 1000, price, code=code), book=tick, instrument=inst, now_ms=T0, day=DAY
        )
        reports += items
    from qmtkit.models import AccountReport

    restored = Broker.restore(
        [AccountReport(ACC, n + 1, item) for n, item in enumerate(reports)],
        initial_cash=1_000_000.0,
    )
    assert restored.asset(ACC).market_value == broker.asset(ACC).market_value == 46_000.0


def test_value_q_is_exact_across_the_prices_a_float_holds() -> None:
    from qmtkit.backends.sim.accounts import EXACT_BELOW, EXACT_FROM, VALUE_SCALE, value_q

    rng = random.Random(3)
    prices = [(1 + rng.random()) * 2.0 ** rng.uniform(-27, 40) for _ in range(2000)]
    prices += [round(rng.uniform(0.01, 3000), 2) for _ in range(2000)]
    prices += [EXACT_FROM, EXACT_FROM * 2, EXACT_BELOW, EXACT_BELOW / 2, 1e308, 2.0**-28]
    for price in prices:
        volume = rng.randint(0, 10**9)
        assert Fraction(value_q(volume, price), VALUE_SCALE) == volume * Fraction(price)
