"""The compliance profile: order-flow peaks and cancels against the 2025 high-frequency rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from qmtkit.backtest.compliance import PER_DAY_THRESHOLD, PER_SECOND_THRESHOLD, rule_of
from qmtkit.backtest.results import BacktestResult, empty_frame
from qmtkit.errors import InvalidArgument
from support.backtest import cancel, order, result

T0 = datetime(2024, 3, 1, 9, 30)


def ms(offset: int) -> datetime:
    return T0 + timedelta(milliseconds=offset)


def many_orders(offsets_ms: list[int]) -> BacktestResult:
    """A result with one accepted order at each offset, built column-wise (fast for 20,000)."""
    n = len(offsets_ms)
    orders = pl.DataFrame(
        {
            "time": [ms(o) for o in offsets_ms],
            "order_id": list(range(1, n + 1)),
            "code": ["600000.SH"] * n,
            "side": ["buy"] * n,
            "price": [10.0] * n,
            "volume": [100] * n,
            "price_type": [11] * n,
            "status": [50] * n,
            "traded_volume": [0] * n,
            "traded_price": [0.0] * n,
            "error": [None] * n,
            "strategy": ["s"] * n,
        },
        schema=empty_frame("orders").schema,
    )
    return BacktestResult(
        orders=orders,
        trades=empty_frame("trades"),
        cancels=empty_frame("cancels"),
        positions=empty_frame("positions"),
        equity=empty_frame("equity"),
        initial_cash=1e6,
    )


def test_the_thresholds_are_the_2025_rules() -> None:
    assert (PER_SECOND_THRESHOLD, PER_DAY_THRESHOLD) == (300, 20_000)


def test_the_peak_second_is_any_1000_ms_window_not_a_clock_second() -> None:
    # Two per clock second (0.5, 0.9 | 1.1, 1.4) but four within 500..1499 ms.
    res = result(
        orders=[order(ms(500), 1), order(ms(900), 2), order(ms(1400), 4)],
        cancels=[cancel(ms(1100), 1)],
    )
    profile = res.compliance()
    assert profile.peak_per_second == 4
    assert profile.peak_second_at == ms(500)


def test_a_window_is_half_open_so_an_action_1000_ms_later_is_the_next_second() -> None:
    profile = result(orders=[order(ms(0), 1), order(ms(1000), 2)]).compliance()
    assert profile.peak_per_second == 1


def test_300_actions_in_one_second_flag_the_run_and_299_do_not() -> None:
    at_limit = many_orders([3 * i for i in range(300)]).compliance()  # 0..897 ms
    assert at_limit.peak_per_second == 300
    assert at_limit.high_frequency
    assert "300 per second" in at_limit.flags[0]
    under = many_orders([3 * i for i in range(299)]).compliance()
    assert under.peak_per_second == 299
    assert not under.high_frequency and under.flags == []


def test_20000_actions_in_one_day_flag_the_run() -> None:
    # Four per second at most: far under the per-second threshold, at the daily one.
    profile = many_orders([250 * i for i in range(20_000)]).compliance()
    assert profile.peak_per_second == 4
    assert profile.peak_per_day == 20_000 and profile.peak_day == date(2024, 3, 1)
    assert profile.high_frequency
    assert profile.flags == [
        "20000 orders+cancels on 2024-03-01: at or over the high-frequency threshold "
        "of 20000 per day"
    ]


def test_thresholds_can_be_set_lower_for_a_margin() -> None:
    profile = many_orders([0, 10, 20]).compliance(per_second=3, per_day=100)
    assert profile.high_frequency and profile.per_second_threshold == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "300"])
def test_a_bad_threshold_is_refused(bad: object) -> None:
    with pytest.raises(
        InvalidArgument, match=r"bad per_second .*: expected a positive int threshold"
    ):
        result().compliance(per_second=bad)  # type: ignore[arg-type]


def test_cancel_ratio_and_instant_cancels() -> None:
    res = result(
        orders=[order(ms(0), i) for i in (1, 2, 3, 4)],
        cancels=[
            cancel(ms(500), 1),  # instant
            cancel(ms(1000), 2),  # exactly one second later: not instant
            cancel(ms(999), 3),  # instant
            cancel(ms(1500), 3),  # a second cancel of the same order: counted once
            cancel(ms(10), 4, ok=False),  # a failed cancel was still sent
        ],
    )
    profile = res.compliance()
    assert profile.orders == 4 and profile.cancels == 5
    assert profile.cancel_ratio == pytest.approx(5 / 4)
    assert profile.instant_cancels == 3


def test_risk_refusals_are_counted_by_rule_and_left_out_of_the_order_flow() -> None:
    res = result(
        orders=[
            order(ms(0), 1, status=57, error="risk:max_orders_per_second: 201 is over 200"),
            order(ms(1), 2, status=57, error="risk:max_orders_per_second: 202 is over 200"),
            order(ms(2), 3, status=57, error="risk:blacklist: 600000.SH is blacklisted"),
            order(ms(3), 4, status=57, error="price 99.0 is above the limit-up 11.0"),
            order(ms(4), 5),
        ]
    )
    profile = res.compliance()
    assert profile.risk_refusals == 3
    assert profile.refusals_by_rule == {"blacklist": 1, "max_orders_per_second": 2}
    # The venue's own refusal (order 4) reached the exchange; the risk chain's did not.
    assert profile.orders == 2 and profile.peak_per_second == 2


@pytest.mark.parametrize(
    ("error", "rule"),
    [
        ("risk:halted: the account is halted", "halted"),
        ("risk: st : an ST name", "st"),
        ("risk:no rule separator", None),
        ("risk::empty rule", None),
        ("riskless: not ours", None),
        ("insufficient cash", None),
        (None, None),
    ],
)
def test_rule_of_reads_the_risk_tag(error: str | None, rule: str | None) -> None:
    assert rule_of(error) == rule


def test_per_day_counts_each_day() -> None:
    d2 = T0 + timedelta(days=1)
    res = result(
        orders=[
            order(ms(0), 1),
            order(ms(10), 2),
            order(d2, 3),
            order(d2, 4, status=57, error="risk:duplicate_order: same order twice"),
        ],
        cancels=[cancel(ms(100), 1), cancel(d2 + timedelta(seconds=5), 3)],
    )
    daily = res.compliance().per_day
    assert daily.to_dicts() == [
        {
            "date": date(2024, 3, 1),
            "orders": 2,
            "cancels": 1,
            "actions": 3,
            "instant_cancels": 1,
            "risk_refusals": 0,
        },
        {
            "date": date(2024, 3, 2),
            "orders": 1,
            "cancels": 1,
            "actions": 2,
            "instant_cancels": 0,
            "risk_refusals": 1,
        },
    ]
    profile = res.compliance()
    assert profile.peak_per_day == 3 and profile.peak_day == date(2024, 3, 1)


def test_a_run_without_orders_has_an_empty_profile() -> None:
    profile = result().compliance()
    assert profile.orders == profile.cancels == profile.peak_per_second == 0
    assert profile.peak_second_at is None and profile.peak_day is None
    assert profile.cancel_ratio is None and not profile.high_frequency
    assert profile.per_day.height == 0
