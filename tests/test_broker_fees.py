"""Fees, exchange limit prices and remark cutting, with hand-computed expectations."""

from __future__ import annotations

import pytest

from qmtkit.backends.sim.broker import Broker, cut_remark, limit_prices
from qmtkit.backends.sim.fees import Fees, FeeSchedule, fees_for
from qmtkit.errors import InvalidArgument
from qmtkit.models import Trade
from support.broker import ACC, BUY, SELL, book, order, submit

# ---------------------------------------------------------------- fees


def test_small_buy_pays_minimum_commission_and_transfer_fee() -> None:
    # 1000 x 10.00 = 10000: 0.025 % is 2.50 < 5 -> 5.00; transfer 0.001 % = 0.10; no stamp duty
    assert fees_for(BUY, 10000.0) == Fees(5.0, 0.0, 0.10, 5.10)


def test_sell_adds_stamp_duty() -> None:
    # stamp 0.05 % of 10000 = 5.00
    assert fees_for(SELL, 10000.0) == Fees(5.0, 5.0, 0.10, 10.10)


def test_large_buy_pays_proportional_commission() -> None:
    # 100000: commission 25.00, transfer 1.00
    assert fees_for(BUY, 100000.0) == Fees(25.0, 0.0, 1.0, 26.0)


def test_fees_round_half_up_to_the_cent() -> None:
    # 20020 x 0.00025 = 5.005 -> 5.01 (half-up, not banker's 5.00); transfer 0.2002 -> 0.20;
    # stamp 20020 x 0.0005 = 10.01
    assert fees_for(SELL, 20020.0) == Fees(5.01, 10.01, 0.20, 15.22)


def test_zero_amount_costs_nothing() -> None:
    assert fees_for(BUY, 0.0) == Fees(0.0, 0.0, 0.0, 0.0)


def test_schedule_is_configurable() -> None:
    cheap = FeeSchedule(commission_rate=0.0001, min_commission=0.0, transfer_fee_rate=0.0)
    # 10000 x 0.0001 = 1.00, no minimum, no transfer fee; stamp 5.00 on the sell
    assert fees_for(SELL, 10000.0, cheap) == Fees(1.0, 5.0, 0.0, 6.0)


@pytest.mark.parametrize("side", [0, 22, 25, True, "23"])
def test_bad_side_is_refused(side: object) -> None:
    with pytest.raises(InvalidArgument, match="order side"):
        fees_for(side, 100.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [-1.0, float("nan"), float("inf"), "100"])
def test_bad_amount_is_refused(amount: object) -> None:
    with pytest.raises(InvalidArgument, match="amount"):
        fees_for(BUY, amount)  # type: ignore[arg-type]


def test_negative_rate_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="commission_rate"):
        FeeSchedule(commission_rate=-0.1)


def test_minimum_commission_is_charged_per_fill() -> None:
    b = Broker()
    reports = submit(
        b, order(BUY, 300, 10.03), book(asks=[(10.01, 100), (10.02, 100), (10.03, 100)])
    )
    commissions = [r.commission for r in reports if isinstance(r, Trade)]
    # each fill ~1000 CNY: 5.00 minimum + 0.01 transfer fee, three times
    assert commissions == [5.01, 5.01, 5.01]
    # cash: 1e6 - (1001 + 1002 + 1003) - 3 x 5.01
    assert b.asset(ACC).cash == pytest.approx(1_000_000 - 3006 - 15.03, abs=1e-9)


# ---------------------------------------------------------------- limit prices


@pytest.mark.parametrize(
    ("pre_close", "board", "is_st", "expected"),
    [
        (10.00, "main", False, (9.00, 11.00)),
        (10.05, "main", False, (9.05, 11.06)),  # 9.045 / 11.055 round half-up
        (10.05, "main", True, (9.55, 10.55)),  # ST ±5 %: 9.5475 / 10.5525
        (12.34, "chinext", False, (9.87, 14.81)),  # ±20 %: 9.872 / 14.808
        (12.34, "star", True, (9.87, 14.81)),  # STAR keeps ±20 % even when ST
        (7.77, "bj", False, (5.44, 10.10)),  # ±30 %: 5.439 / 10.101
        (1.005, "etf", False, (0.90, 1.11)),  # ±10 %: 0.9045 / 1.1055
    ],
)
def test_limit_prices_by_board(
    pre_close: float, board: str, is_st: bool, expected: tuple[float, float]
) -> None:
    assert limit_prices(pre_close, board, is_st) == expected


def test_index_has_no_limit() -> None:
    with pytest.raises(InvalidArgument, match="no daily price limit"):
        limit_prices(3000.0, "index", False)


def test_unknown_board_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown board 'moon'"):
        limit_prices(10.0, "moon", False)


@pytest.mark.parametrize("pre_close", [0.0, -1.0, float("nan"), "10"])
def test_bad_pre_close_is_refused(pre_close: object) -> None:
    with pytest.raises(InvalidArgument, match="pre_close"):
        limit_prices(pre_close, "main", False)  # type: ignore[arg-type]


# ---------------------------------------------------------------- remarks


def test_short_remark_is_kept() -> None:
    assert cut_remark("grid-7") == "grid-7"


def test_ascii_remark_is_cut_to_24_bytes() -> None:
    assert cut_remark("abcdefghijklmnopqrstuvwxyz") == "abcdefghijklmnopqrstuvwx"


def test_cut_never_splits_a_character() -> None:
    # one ASCII byte + eight 3-byte characters = 25 bytes: the last character must go whole
    assert cut_remark("a" + "测试订单备注策略") == "a测试订单备注策"
    assert cut_remark("测试订单备注策略一号") == "测试订单备注策略"  # exactly 24 bytes


def test_submitted_remark_is_cut_everywhere() -> None:
    b = Broker()
    resp, reports = b.submit(
        order(remark="x" * 30),
        book=book(),
        instrument=None,
        now_ms=0,
        day=20250107,
    )
    assert resp.order_remark == "x" * 24
    assert {getattr(r, "order_remark", "x" * 24) for r in reports} == {"x" * 24}


def test_fee_rates_total_equals_the_sum_of_the_schedules_rounded_fees() -> None:
    import random

    from qmtkit.backends.sim.fees import FeeRates, FeeSchedule

    rng = random.Random(20240101)
    schedules = [
        FeeSchedule(),
        FeeSchedule(commission_rate=0.0003, min_commission=0.0, stamp_duty_rate=0.001),
    ]
    for schedule in schedules:
        rates = FeeRates(schedule)
        for _ in range(5000):
            side = rng.choice((23, 24))
            amount_cents = rng.randrange(1, 10**10)
            assert rates.total_cents(side, amount_cents) == sum(
                schedule.fee_cents(side, amount_cents)
            )


def test_fee_rates_answer_the_same_when_an_amount_comes_again_and_after_the_memo_fills() -> None:
    from qmtkit.backends.sim.fees import FeeRates, FeeSchedule

    schedule = FeeSchedule()
    rates = FeeRates(schedule)
    amounts = [100_000 + 37 * i for i in range(10_000)]  # more than the memo keeps
    for _ in range(2):  # the second pass asks again: remembered or worked out anew
        for side in (23, 24):
            got = [rates.total_cents(side, a) for a in amounts]
            assert got == [sum(schedule.fee_cents(side, a)) for a in amounts]


def test_fill_cents_equals_total_cents_with_or_without_the_memo() -> None:
    from qmtkit.backends.sim.fees import FeeRates, FeeSchedule

    schedule = FeeSchedule(commission_rate=0.0003, min_commission=5.0, stamp_duty_rate=0.001)
    rates = FeeRates(schedule)
    for side in (23, 24):
        for amount in (-5, 0, 1, 99, 16_666, 16_667, 123_456_789, 10**12):
            assert rates.fill_cents(side, amount) == rates.total_cents(side, amount)
            assert rates.fill_cents(side, amount) == (
                sum(schedule.fee_cents(side, amount)) if amount > 0 else 0
            )
