"""Each risk rule at its boundary: one under the limit, at it, and one over."""

from __future__ import annotations

import pytest

from qmtkit.constants import OrderStatus
from qmtkit.errors import InvalidArgument
from qmtkit.models import Asset, InstrumentDetail, Order, Position
from qmtkit.risk.engine import RiskEngine, RiskEntry
from qmtkit.risk.limits import PRESETS, RiskLimits, limits_from_mapping
from qmtkit.risk.refusal import RISK_ERROR_BASE, RULES, error_id_of, rule_of

T0 = 1_796_000_000_000  # a fixed instant; nothing here reads the wall clock
CODE = "600000.SH"


class Clock:
    """A virtual millisecond clock the test moves by hand."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


def engine(**limits: object) -> tuple[RiskEngine, Clock, list[RiskEntry]]:
    clock = Clock()
    log: list[RiskEntry] = []
    e = RiskEngine("acct", RiskLimits(**limits), clock, emit=log.append)  # type: ignore[arg-type]
    e.book.set_mark(CODE, 10.0, clock.ms)
    return e, clock, log


def rule(e: RiskEngine, code: str = CODE, buy: bool = True, volume: int = 100,
         price: float = 10.0) -> str | None:  # fmt: skip
    r = e.check_order(code, buy, volume, price)
    return None if r is None else r.rule


# --------------------------------------------------------------------------- per order


@pytest.mark.parametrize(("volume", "refused"), [(999, False), (1000, False), (1001, True)])
def test_max_order_volume_boundary(volume: int, refused: bool) -> None:
    e, _, _ = engine(max_order_volume=1000)
    assert rule(e, volume=volume) == ("max_order_volume" if refused else None)


@pytest.mark.parametrize(("volume", "refused"), [(4900, False), (5000, False), (5100, True)])
def test_max_order_notional_boundary(volume: int, refused: bool) -> None:
    e, _, _ = engine(max_order_notional=50_000.0)
    assert rule(e, volume=volume, price=10.0) == ("max_order_notional" if refused else None)


def test_max_order_notional_values_a_market_order_at_the_last_price() -> None:
    e, _, _ = engine(max_order_notional=50_000.0)
    e.book.set_mark(CODE, 20.0, T0)
    assert rule(e, volume=2600, price=0.0) == "max_order_notional"
    assert rule(e, volume=2500, price=0.0) is None


def test_a_market_order_of_a_code_without_price_is_refused_by_price_dependent_rules() -> None:
    e, _, _ = engine(max_order_notional=50_000.0)
    assert rule(e, code="000001.SZ", price=0.0) == "no_price"


def test_refusal_names_rule_limit_and_value() -> None:
    e, _, log = engine(max_order_volume=1000)
    r = e.check_order(CODE, True, 1200, 10.0)
    assert r is not None
    assert r.message.startswith("risk:max_order_volume:")
    assert "1200" in r.message and "1000" in r.message
    assert (r.limit, r.value) == ("1000", "1200")
    assert r.error_id == RISK_ERROR_BASE + RULES.index("max_order_volume")
    assert rule_of(r.message) == "max_order_volume"
    assert error_id_of(r.message) == r.error_id
    assert error_id_of("price out of range") == -1
    assert [(x.kind, x.rule, x.code) for x in log] == [("refused", "max_order_volume", CODE)]


# --------------------------------------------------------------------------- positions


def hold(e: RiskEngine, volume: int, total: float = 1_000_000.0) -> None:
    e.book.on_position(
        Position(
            account_id="acct",
            stock_code=CODE,
            volume=volume,
            can_use_volume=volume,
            open_price=10.0,
            market_value=volume * 10.0,
        )
    )
    e.book.on_asset(
        Asset(
            account_id="acct",
            cash=total - volume * 10.0,
            frozen_cash=0.0,
            market_value=volume * 10.0,
            total_asset=total,
            fetch_balance=0.0,
        )
    )


@pytest.mark.parametrize(("volume", "refused"), [(900, False), (1000, False), (1100, True)])
def test_max_position_volume_counts_holding_and_resting_buys(volume: int, refused: bool) -> None:
    e, _, _ = engine(max_position_volume=3000)
    hold(e, 1000)
    e.book.add_open(7, CODE, True, 10.0, 1000, T0)
    assert rule(e, volume=volume) == ("max_position_volume" if refused else None)


def test_max_position_volume_never_refuses_a_sell() -> None:
    e, _, _ = engine(max_position_volume=100)
    hold(e, 1000)
    assert rule(e, buy=False, volume=1000) is None


@pytest.mark.parametrize(("volume", "refused"), [(900, False), (1000, False), (1100, True)])
def test_max_position_value_boundary(volume: int, refused: bool) -> None:
    e, _, _ = engine(max_position_value=20_000.0)
    hold(e, 1000)
    assert rule(e, volume=volume) == ("max_position_value" if refused else None)


@pytest.mark.parametrize(("volume", "refused"), [(19_900, False), (20_000, False), (20_100, True)])
def test_max_position_share_of_total_assets_boundary(volume: int, refused: bool) -> None:
    e, _, _ = engine(max_position_share=0.2)
    hold(e, 0, total=1_000_000.0)
    assert rule(e, volume=volume) == ("max_position_share" if refused else None)


@pytest.mark.parametrize(("volume", "refused"), [(3900, False), (4000, False), (4100, True)])
def test_max_gross_exposure_counts_holdings_and_resting_buys(volume: int, refused: bool) -> None:
    e, _, _ = engine(max_gross_exposure=100_000.0)
    hold(e, 5000)  # 50,000 held
    e.book.add_open(7, "000001.SZ", True, 10.0, 1000, T0)  # 10,000 resting
    assert rule(e, volume=volume) == ("max_gross_exposure" if refused else None)


# --------------------------------------------------------------------------- order flow


@pytest.mark.parametrize(("resting", "refused"), [(3, False), (4, False), (5, True)])
def test_active_order_cap_boundary(resting: int, refused: bool) -> None:
    e, _, _ = engine(max_active_orders=5)
    for i in range(resting):
        e.book.add_open(100 + i, CODE, True, 9.0, 100, T0)
    assert rule(e) == ("max_active_orders" if refused else None)


def test_finished_orders_free_the_active_order_cap() -> None:
    e, _, _ = engine(max_active_orders=1)
    assert rule(e) is None
    e.placed(e.last_key, 42)
    assert rule(e, price=9.9) == "max_active_orders"
    e.book.on_order(
        Order(account_id="acct", stock_code=CODE, order_id=42, order_type=23,
              order_volume=100, price_type=11, price=10.0,
              order_status=int(OrderStatus.CANCELED)),
        T0,
    )  # fmt: skip
    assert rule(e, price=9.9) is None


@pytest.mark.parametrize(("n", "refused"), [(4, False), (5, False), (6, True)])
def test_orders_per_second_boundary(n: int, refused: bool) -> None:
    e, _, _ = engine(max_orders_per_second=5)
    results = [rule(e, price=10.0 + i / 100) for i in range(n)]
    assert results[:-1] == [None] * (n - 1)
    assert results[-1] == ("max_orders_per_second" if refused else None)


def test_order_bucket_refills_on_the_virtual_clock() -> None:
    e, clock, _ = engine(max_orders_per_second=5)
    for i in range(5):
        assert rule(e, price=10.0 + i / 100) is None
    assert rule(e, price=10.5) == "max_orders_per_second"
    clock.ms += 199
    assert rule(e, price=10.5) == "max_orders_per_second"
    clock.ms += 1  # 200 ms at 5/s refill exactly one token
    assert rule(e, price=10.5) is None
    assert rule(e, price=10.6) == "max_orders_per_second"
    clock.ms += 10_000  # refills to one second's worth, not more
    assert [rule(e, price=11 + i / 100) for i in range(6)] == [None] * 5 + ["max_orders_per_second"]


@pytest.mark.parametrize(("n", "refused"), [(2, False), (3, False), (4, True)])
def test_cancels_per_second_boundary(n: int, refused: bool) -> None:
    e, _, _ = engine(max_cancels_per_second=3)
    results = [e.check_cancel(1000 + i) for i in range(n)]
    assert all(r is None for r in results[:-1])
    last = results[-1]
    assert (last.rule if last else None) == ("max_cancels_per_second" if refused else None)


def test_actions_per_second_share_one_bucket_between_orders_and_cancels() -> None:
    e, _, _ = engine(max_actions_per_second=3)
    assert rule(e, price=10.0) is None
    assert e.check_cancel(1) is None
    assert rule(e, price=10.1) is None
    r = e.check_cancel(2)
    assert r is not None and r.rule == "max_actions_per_second"
    assert rule(e, price=10.2) == "max_actions_per_second"


@pytest.mark.parametrize(("n", "refused"), [(9, False), (10, False), (11, True)])
def test_orders_per_day_boundary(n: int, refused: bool) -> None:
    e, clock, _ = engine(max_orders_per_day=10)
    out = []
    for i in range(n):
        clock.ms += 1000
        out.append(rule(e, price=10.0 + i / 100))
    assert out[-1] == ("max_orders_per_day" if refused else None)


def test_day_budget_starts_again_on_the_next_beijing_day() -> None:
    e, clock, _ = engine(max_orders_per_day=1)
    assert rule(e) is None
    assert rule(e, price=9.9) == "max_orders_per_day"
    clock.ms += 86_400_000
    e.book.set_mark(CODE, 10.0, clock.ms)
    assert rule(e, price=9.9) is None


@pytest.mark.parametrize(("n", "refused"), [(1, False), (2, False), (3, True)])
def test_cancels_per_day_boundary(n: int, refused: bool) -> None:
    e, clock, _ = engine(max_cancels_per_day=2)
    results = []
    for i in range(n):
        clock.ms += 1000
        results.append(e.check_cancel(i + 1))
    last = results[-1]
    assert (last.rule if last else None) == ("max_cancels_per_day" if refused else None)


def test_actions_per_day_count_orders_and_cancels_together() -> None:
    e, clock, _ = engine(max_actions_per_day=2)
    assert rule(e) is None
    clock.ms += 1000
    assert e.check_cancel(1) is None
    clock.ms += 1000
    assert rule(e, price=9.8) == "max_actions_per_day"
    assert e.check_cancel(2) is not None


@pytest.mark.parametrize(("gap_ms", "refused"), [(501, False), (500, False), (499, True)])
def test_duplicate_window_boundary(gap_ms: int, refused: bool) -> None:
    e, clock, _ = engine(duplicate_window_ms=500)
    assert rule(e) is None
    clock.ms += gap_ms
    assert rule(e) == ("duplicate_order" if refused else None)


def test_duplicate_window_tells_different_orders_apart() -> None:
    e, _, _ = engine(duplicate_window_ms=500)
    assert rule(e) is None
    assert rule(e, volume=200) is None
    assert rule(e, price=10.01) is None
    assert rule(e, buy=False) is None
    assert rule(e) == "duplicate_order"


@pytest.mark.parametrize(("cancels", "refused"), [(3, False), (4, False), (5, True)])
def test_cancel_ratio_boundary(cancels: int, refused: bool) -> None:
    e, _, _ = engine(max_cancel_ratio=0.5, cancel_ratio_min_orders=8)
    e.restore_flow(orders=8, cancels=cancels - 1)
    r = e.check_cancel(1)
    assert (r.rule if r else None) == ("max_cancel_ratio" if refused else None)


def test_cancel_ratio_waits_for_enough_orders() -> None:
    e, _, _ = engine(max_cancel_ratio=0.5, cancel_ratio_min_orders=8)
    e.restore_flow(orders=7, cancels=7)
    assert e.check_cancel(1) is None


@pytest.mark.parametrize(("instant", "flagged"), [(2, False), (3, False), (4, True)])
def test_frequent_instant_cancels_are_flagged_not_refused(instant: int, flagged: bool) -> None:
    e, clock, log = engine(instant_cancel_ms=1000, max_instant_cancels_per_day=3)
    for i in range(instant):
        assert rule(e, price=10.0 + i / 100) is None
        key = e.last_key
        clock.ms += 1000  # at the limit still counts as instant
        assert e.check_cancel(key) is None
    assert [x.rule for x in log if x.kind == "flag"] == (["instant_cancels"] if flagged else [])
    assert e.flow.instant_cancels == instant


def test_a_slow_cancel_is_not_instant() -> None:
    e, clock, _ = engine(instant_cancel_ms=1000, max_instant_cancels_per_day=3)
    assert rule(e) is None
    key = e.last_key
    clock.ms += 1001
    assert e.check_cancel(key) is None
    assert e.flow.instant_cancels == 0


# --------------------------------------------------------------------------- prices


@pytest.mark.parametrize(("price", "refused"), [(10.49, False), (10.5, False), (10.51, True),
                                                (9.5, False), (9.49, True)])  # fmt: skip
def test_price_band_around_the_last_price(price: float, refused: bool) -> None:
    e, _, _ = engine(price_band=0.05)
    assert rule(e, price=price) == ("price_band" if refused else None)


def test_price_band_wants_a_fresh_last_price() -> None:
    e, clock, _ = engine(price_band=0.05, mark_max_age_ms=3000)
    clock.ms += 3000
    assert rule(e) is None
    clock.ms += 1
    assert rule(e, price=10.01) == "no_price"


def test_price_band_leaves_market_orders_alone() -> None:
    e, _, _ = engine(price_band=0.05)
    assert rule(e, price=0.0) is None


def facts(e: RiskEngine, *, name: str = "浦发银行", st: bool = False) -> None:
    e.book.set_facts(
        InstrumentDetail(ExchangeID="SH", InstrumentID="600000", InstrumentName=name,
                         UpStopPrice=11.0, DownStopPrice=9.0, is_st=st),
        1,
    )  # fmt: skip


@pytest.mark.parametrize(("price", "refused"), [(10.99, False), (11.0, False), (11.01, True),
                                                (9.0, False), (8.99, True)])  # fmt: skip
def test_price_within_the_days_limits(price: float, refused: bool) -> None:
    e, _, _ = engine(price_within_limits=True)
    facts(e)
    assert rule(e, price=price) == ("price_limits" if refused else None)


@pytest.mark.parametrize(("buy", "price", "refused"), [(True, 10.19, False), (True, 10.2, True),
                         (True, 0.0, True), (False, 10.2, False)])  # fmt: skip
def test_self_trade_buy_against_own_resting_sell(buy: bool, price: float, refused: bool) -> None:
    e, _, _ = engine(self_trade=True)
    e.book.add_open(5, CODE, False, 10.2, 100, T0)
    assert rule(e, buy=buy, price=price) == ("self_trade" if refused else None)


@pytest.mark.parametrize(("price", "refused"), [(9.81, False), (9.8, True), (9.0, True)])
def test_self_trade_sell_against_own_resting_buy(price: float, refused: bool) -> None:
    e, _, _ = engine(self_trade=True)
    e.book.add_open(5, CODE, True, 9.8, 100, T0)
    assert rule(e, buy=False, price=price) == ("self_trade" if refused else None)


def test_self_trade_ignores_other_codes() -> None:
    e, _, _ = engine(self_trade=True)
    e.book.add_open(5, "000001.SZ", False, 1.0, 100, T0)
    assert rule(e, price=10.0) is None


# --------------------------------------------------------------------------- what may trade


def test_blacklist_refuses_both_sides() -> None:
    e, _, _ = engine(blacklist=frozenset({CODE}))
    assert rule(e) == "blacklist"
    assert rule(e, buy=False) == "blacklist"
    assert rule(e, code="000001.SZ", price=0.0) is None


@pytest.mark.parametrize(
    ("name", "st", "refused"),
    [
        ("浦发银行", False, False),
        ("ST浦发", False, True),
        ("*ST浦发", False, True),
        ("X", True, True),
    ],
)
def test_st_filter_refuses_st_buys(name: str, st: bool, refused: bool) -> None:
    e, _, _ = engine(block_st=True)
    facts(e, name=name, st=st)
    assert rule(e) == ("st" if refused else None)
    assert rule(e, buy=False) is None


def test_unconfigured_rules_are_off() -> None:
    e, _, log = engine()
    for i in range(50):
        assert rule(e, volume=10_000_000, price=0.0 if i % 2 else 99.0) is None
    assert e.rules == [] and log == []


# --------------------------------------------------------------------------- configuration


def test_limits_reject_nonsense_and_name_it() -> None:
    with pytest.raises(InvalidArgument, match="max_order_volume"):
        RiskLimits(max_order_volume=0)
    with pytest.raises(InvalidArgument, match="price_band"):
        RiskLimits(price_band=1.5)
    with pytest.raises(InvalidArgument, match="reducing comes before halting"):
        RiskLimits(drawdown_reducing=0.2, drawdown_halted=0.1)
    with pytest.raises(InvalidArgument, match="unknown risk preset 'yolo'"):
        limits_from_mapping({"preset": "yolo"})
    with pytest.raises(InvalidArgument, match="max_order_volum"):
        limits_from_mapping({"max_order_volum": 5})


def test_explicit_settings_override_the_preset() -> None:
    lim = limits_from_mapping({"preset": "regulatory", "max_actions_per_second": 50})
    assert lim.max_actions_per_second == 50
    assert lim.max_actions_per_day == PRESETS["regulatory"].max_actions_per_day
    assert lim.set(max_order_volume=100).max_order_volume == 100


def test_regulatory_preset_stays_under_the_high_frequency_thresholds() -> None:
    reg = PRESETS["regulatory"]
    assert reg.max_actions_per_second is not None and reg.max_actions_per_second < 300
    assert reg.max_actions_per_day is not None and reg.max_actions_per_day < 20_000
    e = RiskEngine("acct", reg, Clock())
    sent = sum(e.check_order(CODE, True, 100, 10.0 + i / 1000) is None for i in range(400))
    assert sent == 200


def test_a_venue_report_before_the_reply_names_the_provisional_order() -> None:
    e, _, _ = engine(max_active_orders=2)
    assert rule(e) is None
    key = e.last_key
    report = Order(account_id="acct", stock_code=CODE, order_id=42, order_type=23,
                   order_volume=100, price_type=11, price=10.0, order_status=50)  # fmt: skip
    e.book.on_order(report, T0)
    assert list(e.book.open) == [42]
    e.placed(key, 42)
    assert list(e.book.open) == [42] and e.book.open_buy_volume[CODE] == 100
    assert rule(e, price=9.9) is None
    assert rule(e, price=9.8) == "max_active_orders"


def test_orders_sent_and_not_yet_named_count_as_resting_and_a_refused_one_frees_its_place() -> None:
    e, _, _ = engine(max_active_orders=2, self_trade=True)
    assert rule(e, price=9.9) is None
    first = e.last_key
    assert rule(e, price=9.8) is None
    assert e.book.open == {} and e.book.resting == 2 and e.book.open_buy_volume[CODE] == 200
    assert rule(e, price=9.7) == "max_active_orders"
    r = e.check_order(CODE, False, 100, 9.8)  # a sell crossing a buy still in flight
    assert r is not None and r.rule == "self_trade" and str(first) in r.message
    e.placed(first, -1)  # the venue refused it
    assert e.book.resting == 1 and e.book.open_buy_volume[CODE] == 100
    assert rule(e, price=9.7) is None


def test_a_rate_refusal_counts_the_requests_of_the_last_second() -> None:
    e, clock, _ = engine(max_orders_per_second=4)
    assert [rule(e, price=10 + i / 100) for i in range(4)] == [None] * 4
    clock.ms += 250  # one token back
    assert rule(e, price=10.1) is None
    r = e.check_order(CODE, True, 100, 10.2)
    assert r is not None and r.rule == "max_orders_per_second"
    assert r.value == "5" and r.limit == "4"
