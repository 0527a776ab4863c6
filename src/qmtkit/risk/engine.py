"""``RiskEngine``: one account's rule chain and trading state, on an injected clock.

Pure: no I/O, no wall clock. The caller feeds it the account's reports (through ``book``), asks
``check_order``/``check_cancel`` before a request leaves, and tells it what the venue named a
let-through order (``placed``). Refusals, trading-state changes and flags are handed to
``emit`` as ``RiskEntry`` records (the guard journals them).

Trading states: ACTIVE (every rule applies), REDUCING (only orders that shrink a holding: sells
no larger than what is held and not already being sold), HALTED (no order at all). Cancels are
never refused by the state. The daily-loss and drawdown limits only ever move the state
forward during a trading day; ``resume`` moves it back to ACTIVE by hand, and a new trading day
re-judges the loss limits from scratch (a manual halt stays until ``resume``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

import msgspec

from qmtkit.risk.book import AccountBook, OpenOrder
from qmtkit.risk.fastpath import OrderCheck, RequestCheck, accept_test, order_path
from qmtkit.risk.limits import RiskLimits
from qmtkit.risk.refusal import Refusal
from qmtkit.risk.rules import (
    AccountLimits,
    Budget,
    CancelRatio,
    CodeFilter,
    DayCap,
    DuplicateOrder,
    Flow,
    OrderSize,
    PositionLimits,
    PriceRule,
    Rate,
    SelfTrade,
)

__all__ = ["RiskEngine", "RiskEntry", "TradingState"]

_DAY_MS = 86_400_000
_BEIJING_MS = 8 * 3_600_000


def next_midnight(ms: int) -> int:
    """The first Beijing midnight after ``ms`` (Unix ms): when the next day's counts begin."""
    return ((ms + _BEIJING_MS) // _DAY_MS + 1) * _DAY_MS - _BEIJING_MS


def beijing_day(ms: int) -> int:
    """A day number (days since 1970-01-01 in Beijing time) for ``ms``."""
    return (ms + _BEIJING_MS) // _DAY_MS


class TradingState(str, Enum):
    """Where an account stands: every order, only reducing ones, or none."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


_ACTIVE = TradingState.ACTIVE
_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class RiskEntry(msgspec.Struct, kw_only=True):
    """One journal record: a refusal, a state change, a flag or an operator's command.

    ``kind`` is ``refused`` (``rule``, ``limit``, ``value``, ``code``, ``message``), ``state``
    (``old`` → ``new``, ``message`` says why), ``flag`` (a rule noticed something it does not
    refuse) or ``command`` (halt/resume/set by an operator).
    """

    at_ms: int
    account_id: str
    kind: str
    rule: str = ""
    code: str = ""
    limit: str = ""
    value: str = ""
    old: str = ""
    new: str = ""
    message: str = ""


class _OrderRule(Protocol):
    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None: ...


class _CancelRule(Protocol):
    def check_cancel(
        self, order: OpenOrder | None, book: AccountBook, now_ms: int
    ) -> Refusal | None: ...


class RiskEngine:
    """The rule chain and trading state of one account.

    ``clock`` returns Unix milliseconds (the backend's clock in a backtest, the wall clock
    live). ``emit`` receives every ``RiskEntry``.
    """

    def __init__(
        self,
        account_id: str,
        limits: RiskLimits,
        clock: Callable[[], int],
        *,
        emit: Callable[[RiskEntry], None] | None = None,
        book: AccountBook | None = None,
    ) -> None:
        self.account_id = account_id
        self._clock = clock
        self._emit = emit
        self.book = book if book is not None else AccountBook()
        self.flow = Flow()
        self.state = TradingState.ACTIVE
        self.reason = ""
        self.manual = False
        self.day_start_asset: float | None = None
        self.peak_asset: float | None = None
        self.refusals: dict[str, int] = {}
        #: The provisional key of the order ``check_order`` let through last (keys go down
        #: from -1; the venue's ids are positive).
        self.last_key = 0
        #: That order as it rests in the book (None if it had no volume to rest).
        self.last_sent: OpenOrder | None = None
        now = clock()
        self._day_end = next_midnight(now)
        self.limits = limits
        self._build(limits, now)

    # ------------------------------------------------------------------ configuration

    def _build(self, lim: RiskLimits, now: int) -> None:
        flow = self.flow
        order_rules: list[_OrderRule] = []
        cancel_rules: list[_CancelRule] = []
        if lim.blacklist or lim.block_st:
            order_rules.append(CodeFilter(lim.blacklist, lim.block_st))
        if lim.max_order_volume is not None or lim.max_order_notional is not None:
            order_rules.append(OrderSize(lim.max_order_volume, lim.max_order_notional))
        if lim.price_within_limits or lim.price_band is not None:
            order_rules.append(
                PriceRule(lim.price_band, lim.mark_max_age_ms, lim.price_within_limits)
            )
        if lim.self_trade:
            order_rules.append(SelfTrade())
        if (
            lim.max_position_volume is not None
            or lim.max_position_value is not None
            or lim.max_position_share is not None
        ):
            order_rules.append(
                PositionLimits(
                    lim.max_position_volume, lim.max_position_value, lim.max_position_share
                )
            )
        if lim.max_gross_exposure is not None or lim.max_active_orders is not None:
            order_rules.append(AccountLimits(lim.max_gross_exposure, lim.max_active_orders))
        self._dup = (
            DuplicateOrder(lim.duplicate_window_ms) if lim.duplicate_window_ms is not None else None
        )
        if self._dup is not None:
            order_rules.append(self._dup)
        if lim.max_cancel_ratio is not None:
            cancel_rules.append(
                CancelRatio(lim.max_cancel_ratio, lim.cancel_ratio_min_orders, flow)
            )
        # Counting rules come last, so a request refused for another reason spends no budget.
        order_caps: list[DayCap] = []
        cancel_caps: list[DayCap] = []
        order_rates: list[Rate] = []
        cancel_rates: list[Rate] = []
        if lim.max_orders_per_day is not None:
            order_caps.append(
                DayCap("max_orders_per_day", "orders", lim.max_orders_per_day, "orders")
            )
        if lim.max_cancels_per_day is not None:
            cancel_caps.append(
                DayCap("max_cancels_per_day", "cancels", lim.max_cancels_per_day, "cancels")
            )
        if lim.max_actions_per_day is not None:
            cap = DayCap(
                "max_actions_per_day", "orders+cancels", lim.max_actions_per_day, "actions"
            )
            order_caps.append(cap)
            cancel_caps.append(cap)
        if lim.max_orders_per_second is not None:
            order_rates.append(
                Rate("max_orders_per_second", "orders", lim.max_orders_per_second, now)
            )
        if lim.max_cancels_per_second is not None:
            cancel_rates.append(
                Rate("max_cancels_per_second", "cancels", lim.max_cancels_per_second, now)
            )
        if lim.max_actions_per_second is not None:
            both = Rate("max_actions_per_second", "orders+cancels", lim.max_actions_per_second, now)
            order_rates.append(both)
            cancel_rates.append(both)
        self._order_budget = (
            Budget(flow, order_caps, order_rates) if order_caps or order_rates else None
        )
        self._cancel_budget = (
            Budget(flow, cancel_caps, cancel_rates) if cancel_caps or cancel_rates else None
        )
        if self._order_budget is not None:
            order_rules.append(self._order_budget)
        self._order_buckets = tuple(r.bucket for r in order_rates)
        self._rates = tuple(dict.fromkeys(order_rates + cancel_rates))
        if self._cancel_budget is not None:
            cancel_rules.append(self._cancel_budget)
        self._order_rules = tuple(order_rules)
        self._cancel_rules = tuple(cancel_rules)
        # Bound once: the order path calls them without looking each one up.
        self._order_checks = tuple(r.check for r in order_rules)
        # One call that says whether every order rule passes; the chain runs only if not.
        self._accepts = accept_test(lim, self._dup, self._order_budget)
        # The order path itself: one function generated for these rules (fastpath.py), and
        # its form for a SubmitOrder (the guard's), which first says if a price is missing.
        for request in (False, True):
            path = order_path(
                lim,
                self._dup,
                self._order_budget,
                self._order_buckets,
                engine=self,
                book=self.book,
                flow=flow,
                clock=self._clock,
                slow=self._judge_order,
                active=_ACTIVE,
                request=request,
            )
            if request:
                self.check_request = path
            else:
                self.check_order = path
        self._named = [
            *(r.name for r in order_caps + cancel_caps),
            *(r.name for r in order_rates + cancel_rates),
        ]
        self._instant_ms = lim.instant_cancel_ms
        self._instant_max = lim.max_instant_cancels_per_day

    def reconfigure(self, limits: RiskLimits) -> None:
        """Apply new limits now, keeping what was spent: today's counts, the last second's
        requests in each per-second bucket that stays configured, the duplicate window's
        orders and the trading state (a loss limit may move it forward, never back)."""
        now = self._clock()
        spent = {r.name: r.bucket for r in self._rates}
        dup = self._dup
        self.limits = limits
        self._build(limits, now)
        for rate in self._rates:
            old = spent.get(rate.name)
            if old is not None:
                rate.bucket.carry(old, now)
        if dup is not None and self._dup is not None:
            self._dup.last = dup.last
        self._judge_losses(now)

    @property
    def rules(self) -> list[str]:
        """The names of the rules in force, in the order they judge."""
        seen: list[object] = list(self._order_rules)
        seen += [r for r in self._cancel_rules if all(r is not s for s in seen)]
        names = [type(r).__name__ for r in seen if not isinstance(r, Budget)]
        return names + list(dict.fromkeys(self._named))

    # ------------------------------------------------------------------ requests

    #: ``check_order(code, buy, volume, price, now=None)``: judge an order (``price`` 0 for a
    #: market order); None lets it through and counts it. A let-through order rests in the
    #: book (``last_sent``) under a provisional key (``last_key``) until the venue's first
    #: report or ``placed`` names it. ``now`` is the clock's time if the caller has just read
    #: it. Generated for the configured rules (``fastpath.order_path``); an order it does not
    #: let through goes to ``_judge_order``, which names the refusal.
    check_order: OrderCheck
    #: ``check_request(req, now)``: ``check_order`` of a ``SubmitOrder`` at ``now``, or
    #: ``fastpath.STALE`` (nothing judged, nothing changed) when a configured rule needs the
    #: code's facts of the day or a last price fresher than half of ``mark_max_age_ms``.
    check_request: RequestCheck

    def _judge_order(
        self, code: str, buy: bool, volume: int, price: float, now: int | None = None
    ) -> Refusal | None:
        """``check_order`` in full: the state, the accept test, then the chain to name the
        rule that refuses (the same verdicts; slower, for the orders the fast path leaves)."""
        if now is None:
            now = self._clock()
        if now >= self._day_end:
            self._new_day(now)
        book = self.book
        if self.state is not _ACTIVE:
            r = self._state_refusal(code, buy, volume)
            if r is not None:
                return self._refused("order", code, r, now)
        if not self._accepts(code, buy, volume, price, book, now):
            for check in self._order_checks:
                r = check(code, buy, volume, price, book, now)
                if r is not None:
                    return self._refused("order", code, r, now)
        for b in self._order_buckets:  # Budget.take, inline
            f = b.full_at
            b.full_at = (f if f > now else now) + b.interval
        dup = self._dup
        if dup is not None:
            last = dup.last
            if len(last) < 4096:  # DuplicateOrder.commit, inline (it prunes a full dict)
                last[(code, buy, price, volume)] = now
            else:
                dup.commit(code, buy, volume, price, now)
        self.flow.orders += 1
        key = self.last_key = self.last_key - 1
        self.last_sent = book.send(key, code, buy, price, volume, now) if volume > 0 else None
        return None

    def withdraw(self, code: str, buy: bool, volume: int, price: float) -> None:
        """The order ``check_order`` let through last did not leave after all: undo it.

        Only right after that ``check_order`` (the same arguments): its tokens go back to the
        buckets, it leaves the duplicate window and the book, and it is not counted as sent.
        """
        for b in self._order_buckets:
            # Back one interval: a bucket that was full stays full, which is all that counts.
            b.full_at -= b.interval
        if self._dup is not None:
            # Any earlier entry of the same order was outside the window: none is the same.
            self._dup.last.pop((code, buy, price, volume), None)
        self.flow.orders -= 1
        if self.last_sent is not None:
            self.book.name(self.last_sent, -1)
            self.last_sent = None

    def placed(self, key: int, order_id: int) -> None:
        """The venue answered a let-through order: ``order_id`` (<= 0: the venue refused it)."""
        self.book.rekey(key, order_id)

    def check_cancel(self, order_id: int) -> Refusal | None:
        """Judge a cancel of ``order_id``; None lets it through and counts it."""
        now = self._clock()
        if now >= self._day_end:
            self._new_day(now)
        book = self.book
        o = book.find(order_id)
        for rule in self._cancel_rules:
            r = rule.check_cancel(o, book, now)
            if r is not None:
                return self._refused("cancel", o.code if o is not None else "", r, now)
        if self._cancel_budget is not None:
            self._cancel_budget.take(now)
        self.count_cancel(o, now)
        return None

    def count_cancel(self, order: OpenOrder | None, now: int | None = None) -> None:
        """Count a cancel that was sent (also one the kill switch sends past the rules)."""
        if now is None:
            now = self._clock()
        flow = self.flow
        flow.cancels += 1
        if (
            self._instant_ms is not None
            and self._instant_max is not None
            and order is not None
            and now - order.submit_ms <= self._instant_ms
        ):
            flow.instant_cancels += 1
            if flow.instant_cancels == self._instant_max + 1:
                self._record(
                    kind="flag",
                    rule="instant_cancels",
                    limit=str(self._instant_max),
                    value=str(flow.instant_cancels),
                    message=f"risk:instant_cancels: {flow.instant_cancels} cancels within "
                    f"{self._instant_ms} ms of their order today, over {self._instant_max}: "
                    "frequent instant cancels are watched as abnormal trading",
                    at_ms=now,
                )

    def _state_refusal(self, code: str, buy: bool, volume: int) -> Refusal | None:
        if self.state is TradingState.HALTED:
            return Refusal(
                rule="halted",
                limit="no orders",
                value="halted",
                message=f"risk:halted: the account is halted ({self.reason}); no orders until "
                "it is resumed",
            )
        book = self.book
        free = book.positions.get(code, 0) - book.open_sell_volume.get(code, 0)
        if buy or volume > free:
            what = "a buy" if buy else f"a sell of {volume} with {max(free, 0)} free to sell"
            return Refusal(
                rule="reducing",
                limit="position-reducing orders only",
                value=what,
                message=f"risk:reducing: the account only reduces positions ({self.reason}); "
                f"{what} of {code} would not reduce one",
            )
        return None

    def _refused(self, kind: str, code: str, r: Refusal, now: int) -> Refusal:
        self.refusals[r.rule] = self.refusals.get(r.rule, 0) + 1
        if self._emit is not None:
            self._emit(
                RiskEntry(
                    at_ms=now,
                    account_id=self.account_id,
                    kind="refused",
                    rule=r.rule,
                    code=code,
                    limit=r.limit,
                    value=r.value,
                    message=r.message if kind == "order" else f"{r.message} (cancel)",
                )
            )
        return r

    def _record(self, **fields: Any) -> None:
        if self._emit is not None:
            self._emit(RiskEntry(account_id=self.account_id, **fields))

    # ------------------------------------------------------------------ state machine

    def _move(self, new: TradingState, reason: str, now: int) -> None:
        old = self.state
        if new is old and reason == self.reason:
            return
        self.state = new
        self.reason = reason
        self._record(kind="state", old=old.value, new=new.value, message=reason, at_ms=now)

    def halt(self, reason: str = "halted by hand") -> None:
        """Stop every order until ``resume`` (the guard also cancels what rests)."""
        self.manual = True
        self._move(TradingState.HALTED, reason, self._clock())

    def resume(self, reason: str = "resumed by hand") -> None:
        """Back to ACTIVE; the loss limits are judged again from the next asset report on."""
        now = self._clock()
        self.manual = False
        self.day_start_asset = self.book.total_asset
        self.peak_asset = self.book.total_asset
        self._move(TradingState.ACTIVE, reason, now)

    def observe_asset(self, total_asset: float) -> None:
        """The account's total assets now: judge the daily-loss and drawdown limits."""
        now = self._clock()
        if now >= self._day_end:
            self._new_day(now)
        if total_asset <= 0:
            return
        if self.day_start_asset is None:
            self.day_start_asset = total_asset
        if self.peak_asset is None or total_asset > self.peak_asset:
            self.peak_asset = total_asset
        self._judge_losses(now, total_asset)

    def _judge_losses(self, now: int, total: float | None = None) -> None:
        total = total if total is not None else self.book.total_asset
        if total is None or self.manual:
            return
        lim = self.limits
        want = TradingState.ACTIVE
        why = ""
        if self.day_start_asset is not None:
            loss = self.day_start_asset - total
            if lim.daily_loss_halted is not None and loss >= lim.daily_loss_halted:
                want, why = (
                    TradingState.HALTED,
                    (
                        f"daily loss {loss:,.2f} reached daily_loss_halted "
                        f"{lim.daily_loss_halted:,.2f}"
                    ),
                )
            elif lim.daily_loss_reducing is not None and loss >= lim.daily_loss_reducing:
                want, why = (
                    TradingState.REDUCING,
                    (
                        f"daily loss {loss:,.2f} reached daily_loss_reducing "
                        f"{lim.daily_loss_reducing:,.2f}"
                    ),
                )
        if self.peak_asset:
            dd = (self.peak_asset - total) / self.peak_asset
            if lim.drawdown_halted is not None and dd >= lim.drawdown_halted:
                if _RANK[TradingState.HALTED] > _RANK[want]:
                    want, why = (
                        TradingState.HALTED,
                        (f"drawdown {dd:.2%} reached drawdown_halted {lim.drawdown_halted:.2%}"),
                    )
            elif (
                lim.drawdown_reducing is not None
                and dd >= lim.drawdown_reducing
                and _RANK[TradingState.REDUCING] > _RANK[want]
            ):
                want, why = (
                    TradingState.REDUCING,
                    (f"drawdown {dd:.2%} reached drawdown_reducing {lim.drawdown_reducing:.2%}"),
                )
        if _RANK[want] > _RANK[self.state]:
            self._move(want, why, now)

    def _new_day(self, now: int) -> None:
        self._day_end = next_midnight(now)
        self.flow.reset()
        self.book.new_day()
        self.day_start_asset = self.book.total_asset
        if not self.manual and self.state is not TradingState.ACTIVE:
            self._move(TradingState.ACTIVE, "a new trading day", now)

    def restore_flow(self, orders: int, cancels: int) -> None:
        """Today's counts as the venue knows them (after a restart), if above ours."""
        self.flow.orders = max(self.flow.orders, orders)
        self.flow.cancels = max(self.flow.cancels, cancels)

    def restore_sent(self, sent: list[tuple[int, str, bool, float, int]]) -> None:
        """Orders the venue says were sent today, as ``(at_ms, code, buy, price, volume)``
        (after a restart or a terminal's takeover): the per-second order buckets and the
        duplicate window spend on them as if this engine had let them through at ``at_ms``.

        Only orders are known this way (a venue does not say when a cancel was sent).
        """
        times = sorted(at for at, *_ in sent)
        for b in self._order_buckets:
            full_at = -math.inf
            for at in times:
                full_at = (full_at if full_at > at else at) + b.interval
            if full_at > b.full_at:
                b.full_at = full_at
        dup = self._dup
        if dup is not None:
            for at, code, buy, price, volume in sent:
                key = (code, buy, price, volume)
                if at > dup.last.get(key, -math.inf):
                    dup.last[key] = at

    def restore_state(self, state: TradingState, reason: str, *, manual: bool) -> None:
        """Start in ``state`` (a halt recorded by an operator survives a restart)."""
        self.manual = manual
        self._move(state, reason, self._clock())
