"""The rules: small objects that judge one order or cancel against an ``AccountBook``.

An order rule's ``check(code, buy, volume, price, book, now_ms)`` returns a ``Refusal`` or
None (``price`` is 0 for a market order); a cancel rule's ``check_cancel(order, book, now_ms)``
does the same for a cancel of a resting order (None if the order is not known). Rules that
count (rates, duplicates) change only in ``commit``/``commit_cancel``, which the engine calls
once every rule let the request through, so a refused request changes nothing.
"""

from __future__ import annotations

import math

from qmtkit.risk.book import AccountBook, OpenOrder
from qmtkit.risk.refusal import Refusal, refuse

__all__ = [
    "AccountLimits",
    "Budget",
    "CancelRatio",
    "CodeFilter",
    "DayCap",
    "DuplicateOrder",
    "Flow",
    "OrderSize",
    "PositionLimits",
    "PriceRule",
    "Rate",
    "SelfTrade",
    "TokenBucket",
]


def _money(v: float) -> str:
    return f"{v:,.2f}"


class Flow:
    """Today's order flow counters, shared by the rules that need them."""

    __slots__ = ("cancels", "instant_cancels", "orders")

    def __init__(self) -> None:
        self.orders = 0
        self.cancels = 0
        self.instant_cancels = 0

    def reset(self) -> None:
        """A new trading day."""
        self.orders = self.cancels = self.instant_cancels = 0


class TokenBucket:
    """``per_second`` tokens refilled continuously, holding at most one second's worth.

    Kept as one number, the time the bucket will be full again (``full_at``, the generic cell
    rate algorithm's form of a token bucket): a request at ``now`` finds a token when that
    time is at most ``capacity - 1`` refill intervals ahead, and spending one moves it one
    interval later. Judging it reads two numbers and writes none, where counting tokens
    refills them first; the answers are the same.
    """

    __slots__ = ("capacity", "full_at", "interval", "slack")

    def __init__(self, per_second: float, now_ms: int) -> None:
        self.capacity = max(float(per_second), 1.0)
        self.interval = 1000.0 / float(per_second)  # ms per token
        self.slack = (self.capacity - 1.0) * self.interval
        self.full_at = float(now_ms)

    def ready(self, now_ms: int) -> bool:
        """True if a token is there to take at ``now_ms``."""
        return self.full_at - now_ms <= self.slack

    def take(self, now_ms: int) -> None:
        """Spend one token at ``now_ms``."""
        f = self.full_at
        self.full_at = (f if f > now_ms else now_ms) + self.interval

    def carry(self, old: TokenBucket, now_ms: int) -> None:
        """Start from what ``old`` (the same budget before a change of limit) has spent at
        ``now_ms``: the same tokens in use, refilled at this bucket's rate."""
        ahead = old.full_at - now_ms
        if ahead > 0:
            self.full_at = now_ms + ahead / old.interval * self.interval

    def used(self, now_ms: int) -> int:
        """Tokens spent and not refilled yet at ``now_ms`` (the requests 'in the last second')."""
        ahead = self.full_at - now_ms
        return math.ceil(ahead / self.interval - 1e-9) if ahead > 0 else 0


# --------------------------------------------------------------------------- orders


class CodeFilter:
    """No order of a blacklisted code; no buy of an ST/*ST name if ``block_st``."""

    __slots__ = ("blacklist", "block_st")

    def __init__(self, blacklist: frozenset[str], block_st: bool) -> None:
        self.blacklist = blacklist
        self.block_st = block_st

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        if code in self.blacklist:
            return Refusal(
                rule="blacklist",
                limit="not blacklisted",
                value=code,
                message=f"risk:blacklist: {code} is on the account's blacklist",
            )
        if self.block_st and buy and code in book.st:
            return Refusal(
                rule="st",
                limit="no ST buys",
                value=code,
                message=f"risk:st: {code} is an ST name and the account buys no ST names",
            )
        return None


class OrderSize:
    """At most ``volume`` shares and ``notional`` yuan per order (a market order valued at the
    last price); either may be None."""

    __slots__ = ("notional", "volume")

    def __init__(self, volume: int | None, notional: float | None) -> None:
        self.volume = volume
        self.notional = notional

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        if self.volume is not None and volume > self.volume:
            return refuse("max_order_volume", f"order volume ({code})", volume, self.volume)
        if self.notional is None:
            return None
        ref = price if price > 0 else book.marks.get(code, 0.0)
        if ref <= 0:
            return no_price(code, "max_order_notional")
        notional = ref * volume
        if notional > self.notional:
            return refuse(
                "max_order_notional", f"order notional ({code})", _money(notional),
                _money(self.notional),
            )  # fmt: skip
        return None


def no_price(code: str, rule: str) -> Refusal:
    """A price-dependent rule could not judge: no price is known for ``code``."""
    return Refusal(
        rule="no_price",
        limit=rule,
        value=code,
        message=f"risk:no_price: no last price is known for {code}, so {rule} cannot judge "
        "the order (give a limit price, or subscribe to the code)",
    )


class PriceRule:
    """A limit price inside the day's limits (``within_limits``, when the venue publishes
    them) and at most ``band`` (a fraction) away from a fresh last price (``band`` not None).

    Market orders take the market's price and are left alone.
    """

    __slots__ = ("band", "max_age", "within_limits")

    def __init__(self, band: float | None, max_age_ms: int, within_limits: bool) -> None:
        self.band = band
        self.max_age = max_age_ms
        self.within_limits = within_limits

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        if price <= 0:
            return None
        if self.within_limits:
            lim = book.day_limits.get(code)
            if lim is not None:
                low, high = lim
                if price > high + 1e-9:
                    return refuse("price_limits", f"price ({code})", price, f"the limit-up {high}")
                if price < low - 1e-9:
                    return Refusal(
                        rule="price_limits",
                        limit=f"{low}",
                        value=f"{price}",
                        message=f"risk:price_limits: price ({code}) {price} is under the "
                        f"limit-down {low}",
                    )
        band = self.band
        if band is None:
            return None
        mark = book.marks.get(code)
        if mark is None or now_ms - book.mark_ms.get(code, now_ms) > self.max_age:
            return no_price(code, "price_band")
        away = abs(price - mark) / mark
        if away > band + 1e-12:
            return refuse(
                "price_band", f"distance of {price} from the last price {mark} ({code})",
                f"{away:.2%}", f"{band:.2%}",
            )  # fmt: skip
        return None


class SelfTrade:
    """No order that would trade against the account's own resting order on the other side."""

    __slots__ = ()

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        resting = book.by_code.get(code)
        others = [o for o in resting.values() if o.buy != buy] if resting else []
        others += [o for o in book.sent if o.code == code and o.buy != buy]
        for o in others:
            if buy:
                crosses = price <= 0 or o.price <= 0 or price >= o.price
            else:
                crosses = price <= 0 or o.price <= 0 or price <= o.price
            if crosses:
                side, other = ("buy", "sell") if buy else ("sell", "buy")
                theirs = o.price if o.price > 0 else "market"
                return Refusal(
                    rule="self_trade",
                    limit="no crossing of own orders",
                    value=f"order {o.key}",
                    message=f"risk:self_trade: this {side} of {code} at "
                    f"{price if price > 0 else 'market'} would cross the account's own resting "
                    f"{other} {o.key} at {theirs}",
                )
        return None


class PositionLimits:
    """A buy may not take one code's holding, with resting buys, over ``volume`` shares,
    ``value`` yuan (at the order's price, else the last price) or ``share`` of total assets.

    One object for the three limits: they share the holding they judge.
    """

    __slots__ = ("share", "value", "volume")

    def __init__(self, volume: int | None, value: float | None, share: float | None) -> None:
        self.volume = volume
        self.value = value
        self.share = share

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        if not buy:
            return None
        held = book.positions.get(code, 0) + book.open_buy_volume.get(code, 0) + volume
        if self.volume is not None and held > self.volume:
            return refuse(
                "max_position_volume", f"position ({code}) after the buy", held, self.volume
            )
        if self.value is None and self.share is None:
            return None
        ref = price if price > 0 else book.marks.get(code, 0.0)
        if ref <= 0:
            rule = "max_position_value" if self.value is not None else "max_position_share"
            return no_price(code, rule)
        value = held * ref
        if self.value is not None and value > self.value:
            return refuse(
                "max_position_value", f"position value ({code}) after the buy", _money(value),
                _money(self.value),
            )  # fmt: skip
        total = book.total_asset
        if self.share is not None and total:
            share = value / total
            if share > self.share + 1e-12:
                return refuse(
                    "max_position_share", f"share of total assets ({code}) after the buy",
                    f"{share:.2%}", f"{self.share:.2%}",
                )  # fmt: skip
        return None


class AccountLimits:
    """A buy may not take holdings plus resting buys over ``gross`` yuan; no order may make
    more than ``active`` resting orders (either may be None)."""

    __slots__ = ("active", "gross")

    def __init__(self, gross: float | None, active: int | None) -> None:
        self.gross = gross
        self.active = active

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        if self.active is not None:
            n = len(book.open) + len(book.sent) + 1
            if n > self.active:
                return refuse("max_active_orders", "resting orders with this one", n, self.active)
        if self.gross is None or not buy:
            return None
        ref = price if price > 0 else book.marks.get(code, 0.0)
        if ref <= 0:
            return no_price(code, "max_gross_exposure")
        gross = book.market_value + book.open_buy_notional + ref * volume
        if gross > self.gross:
            return refuse(
                "max_gross_exposure", "gross exposure after the buy", _money(gross),
                _money(self.gross),
            )  # fmt: skip
        return None


class DuplicateOrder:
    """No second order of the same code, side, price and volume within ``window_ms``."""

    __slots__ = ("last", "window")

    def __init__(self, window_ms: int) -> None:
        self.window = window_ms
        self.last: dict[tuple[str, bool, float, int], int] = {}

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        at = self.last.get((code, buy, price, volume))
        if at is not None and now_ms - at < self.window:
            side = "buy" if buy else "sell"
            return Refusal(
                rule="duplicate_order",
                limit=f"{self.window} ms",
                value=f"{now_ms - at} ms",
                message=f"risk:duplicate_order: the same {side} of {volume} {code} at "
                f"{price if price > 0 else 'market'} was sent {now_ms - at} ms ago, within "
                f"the limit {self.window} ms",
            )
        return None

    def commit(self, code: str, buy: bool, volume: int, price: float, now_ms: int) -> None:
        last = self.last
        if len(last) >= 4096:
            # Only entries inside the window can refuse anything: drop the rest.
            keep = now_ms - self.window
            self.last = last = {k: t for k, t in last.items() if t > keep}
        last[(code, buy, price, volume)] = now_ms


# --------------------------------------------------------------------------- order flow


class Rate:
    """At most ``per_second`` requests per second (a token bucket), of orders, cancels or both.

    Judged by the ``Budget`` it belongs to.
    """

    __slots__ = ("bucket", "limit", "name", "what")

    def __init__(self, name: str, what: str, per_second: float, now_ms: int) -> None:
        self.name = name
        self.what = what
        self.limit = per_second
        self.bucket = TokenBucket(per_second, now_ms)

    def judge(self, now_ms: int) -> Refusal | None:
        """None if a token is there at ``now_ms``, else the refusal."""
        if self.bucket.ready(now_ms):
            return None
        limit = int(self.limit) if float(self.limit).is_integer() else self.limit
        used = self.bucket.used(now_ms)
        return refuse(self.name, f"{self.what} in one second", used + 1, limit)


class DayCap:
    """At most ``limit`` requests (orders, cancels or both, per ``counts``) per trading day.

    Judged by the ``Budget`` it belongs to, on the day's counts in ``flow``.
    """

    __slots__ = ("cancels", "limit", "name", "orders", "what")

    def __init__(self, name: str, what: str, limit: int, counts: str) -> None:
        self.name = name
        self.what = what
        self.limit = limit
        # "orders", "cancels" or "actions" (both)
        self.orders = counts in ("orders", "actions")
        self.cancels = counts in ("cancels", "actions")


class Budget:
    """The per-day caps and per-second buckets one kind of request (orders or cancels) spends.

    One object per kind, so a request pays one call for all of its budgets.
    """

    __slots__ = ("caps", "flow", "rates")

    def __init__(self, flow: Flow, caps: list[DayCap], rates: list[Rate]) -> None:
        self.flow = flow
        self.caps = tuple(caps)
        self.rates = tuple(rates)

    def judge(self, now_ms: int) -> Refusal | None:
        """The first budget this request would overrun, or None."""
        f = self.flow
        for cap in self.caps:
            n = (f.orders if cap.orders else 0) + (f.cancels if cap.cancels else 0) + 1
            if n > cap.limit:
                return refuse(cap.name, f"{cap.what} today", n, cap.limit)
        for rate in self.rates:
            b = rate.bucket
            if b.full_at - now_ms > b.slack:  # TokenBucket.ready, inline: every request
                return rate.judge(now_ms)
        return None

    def check(
        self, code: str, buy: bool, volume: int, price: float, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        return self.judge(now_ms)

    def check_cancel(
        self, order: OpenOrder | None, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        return self.judge(now_ms)

    def take(self, now_ms: int) -> None:
        """Spend one token of every bucket (after ``judge`` let the request through)."""
        for rate in self.rates:
            rate.bucket.take(now_ms)


class CancelRatio:
    """Cancels may not exceed ``ratio`` of today's orders (judged from ``min_orders`` orders on)."""

    __slots__ = ("flow", "min_orders", "ratio")

    def __init__(self, ratio: float, min_orders: int, flow: Flow) -> None:
        self.ratio = ratio
        self.min_orders = min_orders
        self.flow = flow

    def check_cancel(
        self, order: OpenOrder | None, book: AccountBook, now_ms: int
    ) -> Refusal | None:
        orders = self.flow.orders
        if orders < self.min_orders:
            return None
        ratio = (self.flow.cancels + 1) / orders
        if ratio > self.ratio + 1e-12:
            return refuse("max_cancel_ratio", "cancels / orders today", f"{ratio:.2%}",
                          f"{self.ratio:.2%}")  # fmt: skip
        return None
