"""``accept_test``: the order rules of one account folded into one function that says "passes".

The rule chain (``rules.py``) calls one object per rule and builds a ``Refusal`` when one
refuses. Almost every order passes, so the engine first asks this single function whether every
configured order rule would let the order through; only when it says no does the engine run the
chain to find out which rule refuses and why. It must say yes exactly when every rule's
``check`` returns None (tests/test_risk_fastpath.py holds it to that), and it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from qmtkit.risk.book import AccountBook
from qmtkit.risk.limits import RiskLimits
from qmtkit.risk.rules import Budget, DuplicateOrder

__all__ = ["AcceptTest", "accept_test"]

#: ``(code, buy, volume, price, book, now_ms) -> True`` if every order rule lets it through.
AcceptTest = Callable[[str, bool, int, float, AccountBook, int], bool]

_INF = float("inf")


def accept_test(lim: RiskLimits, dup: DuplicateOrder | None, budget: Budget | None) -> AcceptTest:
    """The fused form of the order rules ``RiskEngine`` builds from ``lim``.

    ``dup`` and ``budget`` are the engine's own duplicate-order rule and order budget (they
    keep state the test reads).
    """
    blacklist = lim.blacklist
    block_st = lim.block_st
    max_volume = lim.max_order_volume if lim.max_order_volume is not None else _INF
    max_notional = lim.max_order_notional
    within_limits = lim.price_within_limits
    band = lim.price_band
    max_age = lim.mark_max_age_ms
    self_trade = lim.self_trade
    pos_volume = lim.max_position_volume if lim.max_position_volume is not None else _INF
    pos_value = lim.max_position_value
    pos_share = lim.max_position_share
    positions_on = (
        lim.max_position_volume is not None or pos_value is not None or pos_share is not None
    )
    pos_priced = pos_value is not None or pos_share is not None
    max_active = lim.max_active_orders if lim.max_active_orders is not None else _INF
    gross_limit = lim.max_gross_exposure
    window = dup.window if dup is not None else 0
    flow = budget.flow if budget is not None else None
    # Each day cap counts orders, cancels or both: the smallest of each kind decides.
    caps = budget.caps if budget is not None else ()
    orders_cap = min([c.limit for c in caps if c.orders and not c.cancels], default=_INF)
    cancels_cap = min([c.limit for c in caps if c.cancels and not c.orders], default=_INF)
    actions_cap = min([c.limit for c in caps if c.orders and c.cancels], default=_INF)
    buckets = tuple(r.bucket for r in budget.rates) if budget is not None else ()

    def accepts(
        code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> bool:
        if code in blacklist or (block_st and buy and code in book.st):
            return False
        if volume > max_volume:
            return False
        # The last price, looked up once for every rule that values a market order by it.
        ref = price if price > 0 else book.marks.get(code, 0.0)
        if max_notional is not None and (ref <= 0 or ref * volume > max_notional):
            return False
        if price > 0:
            if within_limits:
                day = book.day_limits.get(code)
                if day is not None and (price > day[1] + 1e-9 or price < day[0] - 1e-9):
                    return False
            if band is not None:
                mark = book.marks.get(code)
                if mark is None or now_ms - book.mark_ms.get(code, now_ms) > max_age:
                    return False
                if abs(price - mark) / mark > band + 1e-12:
                    return False
        if self_trade:
            resting = book.by_code.get(code)
            if resting:
                for o in resting.values():
                    if o.buy == buy:
                        continue
                    if price <= 0 or o.price <= 0:
                        return False
                    if (price >= o.price) if buy else (price <= o.price):
                        return False
            for o in book.sent:
                if o.buy == buy or o.code != code:
                    continue
                if price <= 0 or o.price <= 0:
                    return False
                if (price >= o.price) if buy else (price <= o.price):
                    return False
        if buy and positions_on:
            held = book.positions.get(code, 0) + book.open_buy_volume.get(code, 0) + volume
            if held > pos_volume:
                return False
            if pos_priced:
                if ref <= 0:
                    return False
                value = held * ref
                if pos_value is not None and value > pos_value:
                    return False
                total = book.total_asset
                if pos_share is not None and total and value / total > pos_share + 1e-12:
                    return False
        if len(book.open) + len(book.sent) + 1 > max_active:
            return False
        if gross_limit is not None and buy:
            if ref <= 0:
                return False
            if book.market_value + book.open_buy_notional + ref * volume > gross_limit:
                return False
        if dup is not None:
            # dup.last, not a copy of it: the rule replaces the dict when it prunes it.
            at = dup.last.get((code, buy, price, volume))
            if at is not None and now_ms - at < window:
                return False
        if flow is not None:
            # Budget.judge, inline: this runs for every order.
            n = flow.orders + 1
            if n > orders_cap or n + flow.cancels > actions_cap or flow.cancels + 1 > cancels_cap:
                return False
            for b in buckets:
                if b.full_at - now_ms > b.slack:  # TokenBucket.ready, inline
                    return False
        return True

    return accepts
