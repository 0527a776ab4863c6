"""The fused accept test lets an order through exactly when every rule of the chain would."""

from __future__ import annotations

import random

import pytest

from qmtkit.messages import SubmitOrder
from qmtkit.models import InstrumentDetail
from qmtkit.risk.engine import RiskEngine, beijing_day
from qmtkit.risk.fastpath import STALE
from qmtkit.risk.limits import RiskLimits

T0 = 1_796_000_000_000  # a fixed instant; nothing here reads the wall clock
CODES = ("600000.SH", "000001.SZ", "600519.SH")


def random_limits(rng: random.Random) -> RiskLimits:
    """Each rule on or off at random, its limit near the values the scenarios produce."""

    def maybe(value: object) -> object:
        return value if rng.random() < 0.6 else None

    return RiskLimits(  # type: ignore[arg-type]
        max_order_volume=maybe(rng.choice([200, 500, 1000])),
        max_order_notional=maybe(rng.choice([2_000.0, 5_000.0, 20_000.0])),
        max_position_volume=maybe(rng.choice([300, 1000, 3000])),
        max_position_value=maybe(rng.choice([5_000.0, 30_000.0])),
        max_position_share=maybe(rng.choice([0.01, 0.2, 0.9])),
        max_gross_exposure=maybe(rng.choice([10_000.0, 100_000.0])),
        max_active_orders=maybe(rng.choice([1, 3, 10])),
        max_orders_per_second=maybe(rng.choice([1.0, 3.0, 50.0])),
        max_actions_per_second=maybe(rng.choice([2.0, 100.0])),
        max_cancels_per_second=maybe(rng.choice([1.0, 5.0])),
        max_orders_per_day=maybe(rng.choice([3, 10, 1000])),
        max_actions_per_day=maybe(rng.choice([4, 12, 1000])),
        max_cancels_per_day=maybe(rng.choice([2, 100])),
        duplicate_window_ms=maybe(rng.choice([1, 50, 1000])),
        price_band=maybe(rng.choice([0.01, 0.05, 0.2])),
        price_within_limits=rng.random() < 0.5,
        self_trade=rng.random() < 0.5,
        blacklist=frozenset(rng.sample(CODES, rng.randint(0, 1))),
        block_st=rng.random() < 0.5,
        mark_max_age_ms=rng.choice([100, 3000]),
    )


def random_engine(rng: random.Random) -> tuple[RiskEngine, list[int]]:
    """An engine with a random book: holdings, marks of any age, limits, ST names, totals."""
    clock = [T0]
    e = RiskEngine("acct", random_limits(rng), lambda: clock[0])
    book = e.book
    for code in CODES:
        if rng.random() < 0.8:
            book.set_mark(code, rng.choice([9.5, 10.0, 10.4]), T0 - rng.choice([0, 50, 5000]))
        if rng.random() < 0.5:
            book.positions[code] = rng.choice([100, 500, 2000])
        if rng.random() < 0.5:
            up, down = rng.choice([(11.0, 9.0), (10.2, 9.8)])
            book.set_facts(
                InstrumentDetail(
                    ExchangeID=code[-2:],
                    InstrumentID=code[:6],
                    InstrumentName=rng.choice(["NAME", "*ST NAME"]),
                    UpStopPrice=up,
                    DownStopPrice=down,
                ),
                0,
            )
    for _ in range(rng.randint(0, 3)):  # resting orders of either side, market ones too
        code, buy, volume, price = random_order(rng)
        book.add_open(rng.randint(1, 10_000), code, buy, price, volume, T0)
    book.total_asset = rng.choice([None, 0.0, 50_000.0, 1e6])
    book.market_value = rng.choice([0.0, 5_000.0, 90_000.0])
    return e, clock


def random_order(rng: random.Random) -> tuple[str, bool, int, float]:
    price = rng.choice([0.0, 8.9, 9.7, 9.9, 10.0, 10.1, 10.3, 11.5])
    return rng.choice(CODES), rng.random() < 0.6, rng.choice([100, 200, 500, 1500]), price


@pytest.mark.parametrize("seed", range(8))
def test_accept_test_agrees_with_the_rule_chain_over_a_seeded_stream(seed: int) -> None:
    rng = random.Random(seed)
    agreed = {True: 0, False: 0}
    for _ in range(60):
        e, clock = random_engine(rng)
        code, buy, volume, price = random_order(rng)
        for _ in range(25):
            clock[0] += rng.choice([0, 1, 3, 49, 50, 400, 1500])
            now = clock[0]
            if rng.random() < 0.7:  # else the same order again (the duplicate window)
                code, buy, volume, price = random_order(rng)
            chain = all(
                check(code, buy, volume, price, e.book, now) is None for check in e._order_checks
            )
            fused = e._accepts(code, buy, volume, price, e.book, now)
            assert fused == chain, (e.limits, code, buy, volume, price)
            agreed[chain] += 1
            # Let the engine act on it too, so the book, budgets and duplicates move on.
            e.check_order(code, buy, volume, price, now)
            if e.book.open and rng.random() < 0.3:
                key = rng.choice(list(e.book.open))
                e.check_cancel(key)
                e.book.remove(key)
    # The stream exercises both answers, not only one of them.
    assert agreed[True] > 50 and agreed[False] > 50


def test_engine_with_the_fast_path_refuses_with_the_chain_s_first_reason() -> None:
    e = RiskEngine("acct", RiskLimits(max_order_volume=100, blacklist=frozenset({CODES[1]})),
                   lambda: T0)  # fmt: skip
    r = e.check_order(CODES[1], True, 200, 10.0)
    assert r is not None and r.rule == "blacklist"
    r = e.check_order(CODES[0], True, 200, 10.0)
    assert r is not None and r.rule == "max_order_volume"
    assert e.check_order(CODES[0], True, 100, 10.0) is None


def _state(e: RiskEngine) -> tuple[object, ...]:
    book = e.book
    return (
        [(o.key, o.code, o.buy, o.price, o.volume, o.submit_ms, o.unit) for o in book.sent],
        dict(book.open_buy_volume),
        dict(book.open_sell_volume),
        round(book.open_buy_notional, 6),
        e.flow.orders,
        e.last_key,
        [b.full_at for b in e._order_buckets],
        dict(e._dup.last) if e._dup is not None else None,
        dict(e.refusals),
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_generated_order_path_does_what_the_full_judging_does(seed: int) -> None:
    # Twin engines from the same seed; one judges with the generated path, the other with
    # the engine's full judging; the same stream of orders must leave them alike.
    for case in range(40):
        fast, fast_clock = random_engine(random.Random(seed * 1000 + case))
        slow, slow_clock = random_engine(random.Random(seed * 1000 + case))
        stream = random.Random(seed * 7 + case)
        code, buy, volume, price = random_order(stream)
        for _ in range(25):
            step = stream.choice([0, 1, 3, 49, 50, 400, 1500])
            fast_clock[0] += step
            slow_clock[0] += step
            if stream.random() < 0.7:
                code, buy, volume, price = random_order(stream)
            a = fast.check_order(code, buy, volume, price)
            b = slow._judge_order(code, buy, volume, price)
            assert (a is None) == (b is None), (fast.limits, code, buy, volume, price)
            if a is not None and b is not None:
                assert a.message == b.message
            assert _state(fast) == _state(slow)


def _stale(e: RiskEngine, code: str, now: int) -> bool:
    """What the guard fetches before judging: the day's facts, a last price half as old."""
    lim, book = e.limits, e.book
    facts = lim.price_within_limits or lim.block_st
    priced = any(
        v is not None
        for v in (
            lim.price_band,
            lim.max_order_notional,
            lim.max_position_value,
            lim.max_position_share,
            lim.max_gross_exposure,
        )
    )
    return (facts and book.facts_day.get(code) != beijing_day(now)) or (
        priced and now - book.mark_ms.get(code, -86_400_000) > lim.mark_max_age_ms // 2
    )


@pytest.mark.parametrize("seed", range(6))
def test_the_request_form_says_stale_exactly_when_a_price_is_missing_else_judges_alike(
    seed: int,
) -> None:
    stale_seen = judged = 0
    for case in range(40):
        fast, fast_clock = random_engine(random.Random(seed * 1000 + case))
        slow, slow_clock = random_engine(random.Random(seed * 1000 + case))
        for e in (fast, slow):  # facts of this (fixed) day for some codes only
            for code in list(e.book.facts_day):
                e.book.facts_day[code] = beijing_day(T0)
        stream = random.Random(seed * 11 + case)
        for _ in range(25):
            step = stream.choice([0, 1, 3, 49, 50, 400, 1500])
            fast_clock[0] += step
            slow_clock[0] += step
            code, buy, volume, price = random_order(stream)
            req = SubmitOrder(
                "acct", code, 23 if buy else 24, volume, 11 if price > 0 else 5, price
            )
            before = _state(fast)
            a = fast.check_request(req, fast_clock[0])
            if a is STALE:
                assert _stale(fast, code, fast_clock[0])
                assert _state(fast) == before
                stale_seen += 1
                continue
            assert not _stale(fast, code, fast_clock[0])
            b = slow._judge_order(code, buy, volume, price)
            assert (a is None) == (b is None)
            assert _state(fast) == _state(slow)
            judged += 1
    assert stale_seen > 20 and judged > 20
