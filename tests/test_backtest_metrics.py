"""Backtest metrics against values worked out by hand with plain arithmetic."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from qmtkit.backtest.metrics import DEFAULT_BENCHMARK, round_trips
from qmtkit.errors import InvalidArgument
from support.backtest import equity, frame, result, trade

T = datetime(2024, 1, 2, 10, 0)


def at(minute: int) -> datetime:
    return T.replace(minute=minute)


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def sample_std(xs: list[float]) -> float:
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def test_returns_volatility_sharpe_and_sortino_match_a_hand_computation() -> None:
    m = result(equity_frame=equity([110.0, 99.0, 121.0]), initial_cash=100.0).metrics()
    r = [110 / 100 - 1, 99 / 110 - 1, 121 / 99 - 1]  # the first day is measured from the cash
    assert m.days == 3
    assert m.total_return == pytest.approx(0.21)
    assert m.annual_return == pytest.approx(1.21 ** (252 / 3) - 1)
    assert m.volatility == pytest.approx(sample_std(r) * math.sqrt(252))
    assert m.sharpe == pytest.approx(mean(r) / sample_std(r) * math.sqrt(252))
    downside = math.sqrt((0.0 + (99 / 110 - 1) ** 2 + 0.0) / 3)  # only day 1 fell; n = 3
    assert m.sortino == pytest.approx(mean(r) / downside * math.sqrt(252))


def test_the_risk_free_rate_is_an_annual_simple_rate_taken_daily() -> None:
    m = result(equity_frame=equity([110.0, 99.0, 121.0]), initial_cash=100.0).metrics(
        risk_free_rate=0.0252
    )
    rf = 0.0252 / 252
    r = [0.1, 99 / 110 - 1, 121 / 99 - 1]
    assert m.risk_free_rate == 0.0252
    assert m.sharpe == pytest.approx((mean(r) - rf) / sample_std(r) * math.sqrt(252))
    down = math.sqrt(((99 / 110 - 1 - rf) ** 2) / 3)
    assert m.sortino == pytest.approx((mean(r) - rf) / down * math.sqrt(252))


def test_max_drawdown_recovered_is_timed_from_peak_to_recovery() -> None:
    m = result(equity_frame=equity([110.0, 99.0, 121.0]), initial_cash=100.0).metrics()
    # Peak 110 on day 0, trough 99 on day 1 (-10 %), back above 110 on day 2.
    assert m.max_drawdown == pytest.approx(0.1)
    assert m.max_drawdown_days == 2
    assert m.calmar == pytest.approx((1.21 ** (252 / 3) - 1) / 0.1)


def test_an_unrecovered_drawdown_lasts_until_the_last_day() -> None:
    m = result(equity_frame=equity([100.0, 120.0, 90.0, 96.0, 108.0]), initial_cash=100.0)
    got = m.metrics()
    # Peak 120 on day 1, trough 90 on day 2: 30 / 120 = 25 %; still under water on day 4.
    assert got.max_drawdown == pytest.approx(0.25)
    assert got.max_drawdown_days == 4 - 1


def test_a_drawdown_from_the_initial_cash_counts_from_before_the_first_day() -> None:
    m = result(equity_frame=equity([90.0, 95.0, 101.0]), initial_cash=100.0).metrics()
    assert m.max_drawdown == pytest.approx(0.1)
    assert m.max_drawdown_days == 3  # the cash, then days 0, 1 and the recovery on day 2


def test_turnover_is_half_the_traded_amount_over_mean_equity() -> None:
    trades = [
        trade(at(0), 1, "600000.SH", "buy", 10.0, 100),
        trade(at(1), 2, "600000.SH", "sell", 12.0, 100),
    ]
    m = result(
        trades=trades, equity_frame=equity([100000.0, 102000.0, 101000.0]), initial_cash=1e5
    ).metrics()
    turnover = (1000.0 + 1200.0) / 2 / ((100000 + 102000 + 101000) / 3)
    assert m.turnover == pytest.approx(turnover)
    assert m.annual_turnover == pytest.approx(turnover * 252 / 3)


def test_round_trips_are_matched_fifo_per_code_with_fees_shared_by_volume() -> None:
    trades = [
        trade(at(0), 1, "A.SH", "buy", 10.0, 100, fee=1.0),
        trade(at(1), 2, "A.SH", "buy", 11.0, 200, fee=2.0),
        trade(at(2), 3, "B.SZ", "sell", 5.0, 100),  # no buy of B before it: unmatched
        trade(at(3), 4, "A.SH", "sell", 12.0, 150, fee=1.5),
        trade(at(4), 5, "B.SZ", "buy", 5.0, 100),
        trade(at(5), 6, "A.SH", "sell", 10.0, 150, fee=1.5),
        trade(at(6), 7, "B.SZ", "sell", 6.0, 100),
    ]
    first = 100 * (12 - 10) + 50 * (12 - 11) - 1.5 - 1.0 - 2.0 * 50 / 200  # 247
    second = 150 * (10 - 11) - 1.5 - 2.0 * 150 / 200  # -153
    third = 100 * (6 - 5)  # 100
    res = result(trades=trades, initial_cash=1e5)
    trips = round_trips(res)
    assert (trips.count, trips.wins, trips.losses) == (3, 2, 1)
    assert trips.gross_profit == pytest.approx(first + third)
    assert trips.gross_loss == pytest.approx(-second)
    assert trips.unmatched_sell_volume == 100
    m = res.metrics()
    assert m.round_trips == 3
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.profit_factor == pytest.approx((247 + 100) / 153)


def test_alpha_and_beta_match_a_hand_regression_on_the_benchmark() -> None:
    totals = [101.0, 103.0, 102.0, 106.0, 105.0]
    bench = [1000.0, 1010.0, 1005.0, 1030.0, 1020.0]
    m = result(equity_frame=equity(totals, bench), initial_cash=100.0).metrics(
        risk_free_rate=0.0252
    )
    rf = 0.0252 / 252
    # Day 0 has no benchmark return (no close before it), so days 1..4 are paired.
    r = [totals[i] / totals[i - 1] - 1 for i in range(1, 5)]
    b = [bench[i] / bench[i - 1] - 1 for i in range(1, 5)]
    mr, mb = mean(r), mean(b)
    cov = sum((x - mr) * (y - mb) for x, y in zip(r, b, strict=True)) / 3
    var = sum((y - mb) ** 2 for y in b) / 3
    beta = cov / var
    assert m.beta == pytest.approx(beta)
    assert m.alpha == pytest.approx((mr - rf - beta * (mb - rf)) * 252)
    assert m.benchmark == DEFAULT_BENCHMARK == "000300.SH"
    assert m.benchmark_return == pytest.approx(1020 / 1000 - 1)


def test_days_without_a_benchmark_close_are_left_out_of_the_regression() -> None:
    totals = [101.0, 103.0, 102.0, 106.0, 105.0, 107.0]
    bench = [1000.0, 1010.0, None, 1030.0, 1020.0, 1040.0]
    m = result(
        equity_frame=equity(totals, bench), initial_cash=100.0, meta={"benchmark": "000905.SH"}
    ).metrics()
    # Benchmark returns exist on days 1, 4 and 5 only (each needs the close before it).
    pairs = [(1, 1010 / 1000 - 1), (4, 1020 / 1030 - 1), (5, 1040 / 1020 - 1)]
    r = [totals[i] / totals[i - 1] - 1 for i, _ in pairs]
    b = [x for _, x in pairs]
    mr, mb = mean(r), mean(b)
    beta = sum((x - mr) * (y - mb) for x, y in zip(r, b, strict=True)) / sum(
        (y - mb) ** 2 for y in b
    )
    assert m.beta == pytest.approx(beta)
    assert m.benchmark == "000905.SH"


def test_no_benchmark_gives_null_alpha_and_beta_with_a_reason() -> None:
    m = result(equity_frame=equity([101.0, 102.0, 100.0]), initial_cash=100.0).metrics()
    assert m.alpha is None and m.beta is None and m.benchmark_return is None
    assert "no benchmark" in m.reasons["alpha"]
    assert "no benchmark" in m.reasons["beta"]


def test_a_flat_benchmark_gives_null_beta_with_a_reason() -> None:
    m = result(
        equity_frame=equity([101.0, 102.0, 100.0], [5.0, 5.0, 5.0]), initial_cash=100.0
    ).metrics()
    assert m.beta is None and "zero variance" in m.reasons["beta"]
    assert m.benchmark_return == 0.0


def test_zero_volatility_gives_null_sharpe_and_sortino_with_reasons() -> None:
    flat = result(equity_frame=equity([100.0, 100.0, 100.0]), initial_cash=100.0).metrics()
    assert flat.volatility == 0.0
    assert flat.sharpe is None and "zero volatility" in flat.reasons["sharpe"]
    assert flat.sortino is None and flat.reasons["sortino"]
    assert flat.max_drawdown == 0.0 and flat.max_drawdown_days == 0
    assert flat.calmar is None and "no drawdown" in flat.reasons["calmar"]
    # Steady 1 % growth: equal returns up to rounding count as zero volatility too.
    steady = [100.0 * 1.01**k for k in range(1, 6)]
    grown = result(equity_frame=equity(steady), initial_cash=100.0).metrics()
    assert grown.volatility == 0.0 and grown.sharpe is None


def test_empty_trades_give_zero_turnover_and_no_round_trips() -> None:
    m = result(equity_frame=equity([100.0, 100.0]), initial_cash=100.0).metrics()
    assert m.turnover == 0.0 and m.round_trips == 0
    assert m.win_rate is None and m.profit_factor is None
    assert "no round trips" in m.reasons["win_rate"]


def test_only_winning_round_trips_leave_the_profit_factor_null() -> None:
    trades = [
        trade(at(0), 1, "A.SH", "buy", 10.0, 100),
        trade(at(1), 2, "A.SH", "sell", 11.0, 100),
    ]
    m = result(trades=trades, initial_cash=1e5, equity_frame=equity([1e5, 1e5 + 100])).metrics()
    assert m.win_rate == 1.0
    assert m.profit_factor is None and m.reasons["profit_factor"] == "no losing round trip"


def test_an_empty_equity_frame_gives_nulls_with_reasons() -> None:
    m = result(equity_frame=frame("equity", []), initial_cash=100.0).metrics()
    assert m.days == 0 and m.total_return is None and m.annual_return is None
    assert m.reasons["total_return"] == "no trading days in the equity frame"
    assert m.max_drawdown is None and m.turnover is None


def test_one_day_is_too_few_for_volatility() -> None:
    m = result(equity_frame=equity([105.0]), initial_cash=100.0).metrics()
    assert m.total_return == pytest.approx(0.05)
    assert m.volatility is None and "at least 2" in m.reasons["volatility"]


@pytest.mark.parametrize("rate", [float("nan"), 2.0, "0.02", True])
def test_a_bad_risk_free_rate_is_refused(rate: object) -> None:
    with pytest.raises(InvalidArgument, match="risk_free_rate"):
        result().metrics(risk_free_rate=rate)  # type: ignore[arg-type]


def test_as_dict_is_flat_and_leaves_the_reasons_out() -> None:
    d = result(equity_frame=equity([101.0, 102.0]), initial_cash=100.0).metrics().as_dict()
    assert "reasons" not in d
    assert d["total_return"] == pytest.approx(0.02)
    assert d["benchmark"] == "000300.SH"
