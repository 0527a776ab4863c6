"""The trading-state machine: ACTIVE -> REDUCING -> HALTED by loss limits, by hand, by day."""

from __future__ import annotations

import pytest

from qmtkit.models import Position
from qmtkit.risk.engine import RiskEngine, RiskEntry, TradingState
from qmtkit.risk.limits import RiskLimits

T0 = 1_796_000_000_000
CODE = "600000.SH"


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


def engine(**limits: object) -> tuple[RiskEngine, Clock, list[RiskEntry]]:
    clock = Clock()
    log: list[RiskEntry] = []
    e = RiskEngine("acct", RiskLimits(**limits), clock, emit=log.append)  # type: ignore[arg-type]
    e.book.on_position(
        Position(
            account_id="acct",
            stock_code=CODE,
            volume=1000,
            can_use_volume=1000,
            open_price=10.0,
            market_value=10_000.0,
        )
    )
    return e, clock, log


@pytest.mark.parametrize(
    ("total", "state"),
    [(95_001.0, "active"), (95_000.0, "reducing"), (90_001.0, "reducing"), (90_000.0, "halted")],
)
def test_daily_loss_limits_move_the_state(total: float, state: str) -> None:
    e, _, _ = engine(daily_loss_reducing=5_000.0, daily_loss_halted=10_000.0)
    e.observe_asset(100_000.0)
    e.observe_asset(total)
    assert e.state.value == state


@pytest.mark.parametrize(
    ("total", "state"),
    [(90_001.0, "active"), (90_000.0, "reducing"), (80_000.0, "halted")],
)
def test_drawdown_from_the_peak_moves_the_state(total: float, state: str) -> None:
    e, _, _ = engine(drawdown_reducing=0.1, drawdown_halted=0.2)
    e.observe_asset(80_000.0)
    e.observe_asset(100_000.0)  # the peak
    e.observe_asset(total)
    assert e.state.value == state


def test_reducing_lets_only_position_reducing_orders_through() -> None:
    e, _, log = engine(daily_loss_reducing=1.0)
    e.observe_asset(100.0)
    e.observe_asset(99.0)
    assert e.state is TradingState.REDUCING
    r = e.check_order(CODE, True, 100, 10.0)
    assert r is not None and r.rule == "reducing"
    assert e.check_order(CODE, False, 600, 10.0) is None  # 600 of 1000 held: reduces
    r = e.check_order(CODE, False, 500, 10.0)  # only 400 left unsold
    assert r is not None and r.rule == "reducing" and "400 free" in r.message
    assert e.check_order(CODE, False, 400, 10.0) is None
    assert [(x.old, x.new) for x in log if x.kind == "state"] == [("active", "reducing")]


def test_halted_refuses_every_order_but_lets_cancels_through() -> None:
    e, _, _ = engine(daily_loss_halted=1.0)
    e.observe_asset(100.0)
    e.observe_asset(99.0)
    r = e.check_order(CODE, False, 100, 10.0)
    assert r is not None and r.rule == "halted" and "daily loss" in r.message
    assert e.check_cancel(1) is None


def test_loss_state_does_not_relax_within_the_day_when_the_loss_recovers() -> None:
    e, _, _ = engine(daily_loss_reducing=1.0)
    e.observe_asset(100.0)
    e.observe_asset(98.0)
    e.observe_asset(150.0)
    assert e.state is TradingState.REDUCING


def test_a_new_trading_day_judges_the_loss_afresh() -> None:
    e, clock, log = engine(daily_loss_reducing=1.0)
    e.observe_asset(100.0)
    e.observe_asset(98.0)
    clock.ms += 86_400_000
    e.observe_asset(98.0)
    assert e.state is TradingState.ACTIVE
    assert log[-1].message == "a new trading day"


def test_manual_halt_is_sticky_until_resume() -> None:
    e, clock, log = engine()
    e.halt("operator: strategy misbehaves")
    clock.ms += 86_400_000
    r = e.check_order(CODE, True, 100, 10.0)
    assert r is not None and "operator: strategy misbehaves" in r.message
    e.resume()
    assert e.state is TradingState.ACTIVE
    assert e.check_order(CODE, True, 100, 10.0) is None
    assert [(x.old, x.new) for x in log if x.kind == "state"] == [
        ("active", "halted"),
        ("halted", "active"),
    ]


def test_resume_rebases_the_loss_limits() -> None:
    e, _, _ = engine(daily_loss_reducing=10.0)
    e.book.total_asset = 100.0
    e.observe_asset(100.0)
    e.observe_asset(80.0)
    assert e.state is TradingState.REDUCING
    e.book.total_asset = 80.0
    e.resume()
    e.observe_asset(75.0)
    assert e.state is TradingState.ACTIVE


def test_manual_halt_is_not_undone_by_the_loss_limits() -> None:
    e, _, _ = engine(daily_loss_reducing=1.0)
    e.halt()
    e.observe_asset(100.0)
    e.observe_asset(99.0)
    assert e.state is TradingState.HALTED


def test_refused_requests_change_no_budget() -> None:
    e, _, _ = engine(max_order_volume=100, max_orders_per_second=1, max_orders_per_day=5)
    for _ in range(3):
        assert e.check_order(CODE, True, 200, 10.0) is not None
    assert e.flow.orders == 0
    assert e.check_order(CODE, True, 100, 10.0) is None
    assert e.refusals == {"max_order_volume": 3}


@pytest.mark.parametrize(("after_ms", "refused"), [(499, True), (500, False)])
def test_orders_restored_from_the_venue_spend_the_per_second_bucket(
    after_ms: int, refused: bool
) -> None:
    # 2 per second: one token back every 500 ms. Two orders sent at T0 and T0 + 100 leave
    # the bucket empty until T0 + 500, when the first one's token is back.
    e, clock, _ = engine(max_orders_per_second=2)
    e.restore_sent([(T0, CODE, True, 10.0, 100), (T0 + 100, CODE, True, 10.1, 100)])
    clock.ms = T0 + after_ms
    r = e.check_order(CODE, True, 100, 10.2)
    assert (r is not None and r.rule == "max_orders_per_second") is refused


@pytest.mark.parametrize(("after_ms", "refused"), [(999, True), (1000, False)])
def test_orders_restored_from_the_venue_fill_the_duplicate_window(
    after_ms: int, refused: bool
) -> None:
    e, clock, _ = engine(duplicate_window_ms=1000)
    e.restore_sent([(T0, CODE, True, 10.0, 100)])
    clock.ms = T0 + after_ms
    r = e.check_order(CODE, True, 100, 10.0)
    assert (r is not None and r.rule == "duplicate_order") is refused


@pytest.mark.parametrize(("now_offset", "refused"), [(1499, True), (1500, False)])
def test_a_changed_rate_keeps_the_tokens_spent_at_the_new_rate(
    now_offset: int, refused: bool
) -> None:
    # 4 of 10 per second spent, then the limit drops to 2: the 4 tokens refill at 500 ms
    # each, so the bucket (capacity 2) has a token again once 3 of them are back, at 1500 ms.
    e, clock, _ = engine(max_orders_per_second=10)
    for i in range(4):
        assert e.check_order(CODE, True, 100, 10.0 + i / 100) is None
    e.reconfigure(RiskLimits(max_orders_per_second=2))
    clock.ms = T0 + now_offset
    r = e.check_order(CODE, True, 100, 11.0)
    assert (r is not None and r.rule == "max_orders_per_second") is refused
