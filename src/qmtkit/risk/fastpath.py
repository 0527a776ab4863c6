"""The order rules of one account as one generated function: the path nearly every order takes.

The rule chain (``rules.py``) calls one object per rule and builds a ``Refusal`` when one
refuses. Almost every order passes, so the engine judges an order with one function generated
for exactly the rules that are configured (``order_path``): each configured rule is a few
inline comparisons against constants, and an order that passes them all is counted and rested
in the book in the same function. A rule that is off is not in it at all, so the function does
no more than the configured rules need. Anything else — a new day, a state other than ACTIVE,
any rule saying no — hands the order to the engine's full judging (``slow``), which runs the
chain to name the rule that refuses and why; the generated function has changed nothing then.

Generated as source text and compiled once per configuration (at the engine's build and at
each change of limits): one flat function, where composing closures per rule would cost a call
per rule on every order. ``accept_test`` compiles the same rule lines into a function that only
says whether they pass; tests/test_risk_fastpath.py holds both to the chain's verdicts.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from types import CodeType
from typing import Any, Protocol

from qmtkit.constants import OrderType, PriceType
from qmtkit.errors import InvalidArgument
from qmtkit.risk.book import AccountBook, OpenOrder
from qmtkit.risk.limits import RiskLimits
from qmtkit.risk.refusal import Refusal
from qmtkit.risk.rules import Budget, DuplicateOrder, Flow

__all__ = ["STALE", "AcceptTest", "OrderCheck", "RequestCheck", "accept_test", "order_path"]

#: ``(code, buy, volume, price, book, now_ms) -> True`` if every order rule lets it through.
AcceptTest = Callable[[str, bool, int, float, AccountBook, int], bool]


class OrderCheck(Protocol):
    """``RiskEngine.check_order``'s shape: None lets the order through (and counts it)."""

    def __call__(
        self, code: str, buy: bool, volume: int, price: float, now: int | None = None
    ) -> Refusal | None: ...


class RequestCheck(Protocol):
    """``RiskEngine.check_request``'s shape: ``check_order`` of a ``SubmitOrder``, or ``STALE``."""

    def __call__(self, req: Any, now: int) -> Refusal | None: ...


#: What ``check_request`` answers, changing nothing, when the order's code needs its facts of
#: the day or a fresher last price before it can be judged (the guard fetches them first).
STALE = Refusal(
    rule="stale",
    limit="facts of the day and a fresh last price",
    value="stale",
    message="risk:stale: the code's facts or last price must be fetched before judging",
)

_DAY_MS = 86_400_000
_BEIJING_MS = 8 * 3_600_000


def _num(value: object) -> str:
    """A limit as source text: the repr of a plain int or a finite float (so a numeric type of
    another library never puts its own repr in the generated code)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return repr(int(value))
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return repr(float(value))
    raise InvalidArgument(f"risk limits are ints or finite numbers, got {value!r}")


def _rule_lines(
    lim: RiskLimits,
    dup: DuplicateOrder | None,
    budget: Budget | None,
    env: dict[str, Any],
    bound: set[str] | None = None,
    *,
    request: bool = False,
) -> list[str]:
    """The configured rules as source lines ``FAIL`` ends (inside a function of ``code``,
    ``buy``, ``volume``, ``price`` and ``now``, with ``book`` and its containers under the
    names of ``_CONTAINERS``); ``env`` gets the other values they use.

    ``bound`` gets the names of values the lines read that an order let through writes back
    (``ref``; ``ob`` and ``obn``, a buy's open buy volume and notional; ``n``, the orders of
    the day; ``last``, the duplicate window; ``f0``.. , the buckets' ``full_at``), so the
    commit reuses them.
    ``request``: for ``check_request``, whose head has made sure a price rule's last price is
    younger than half of ``mark_max_age_ms`` (so the band's own age test always passes).
    """
    if bound is None:
        bound = set()
    out: list[str] = []
    add = out.append
    if lim.blacklist:
        env["blacklist"] = lim.blacklist
        add("if code in blacklist: FAIL")
    if lim.block_st:
        add("if buy and code in st: FAIL")
    if lim.max_order_volume is not None:
        add(f"if volume > {_num(lim.max_order_volume)}: FAIL")
    pos_priced = lim.max_position_value is not None or lim.max_position_share is not None
    if lim.max_order_notional is not None or pos_priced or lim.max_gross_exposure is not None:
        # The last price, looked up once for every rule that values a market order by it.
        add("ref = price if price > 0 else marks.get(code, 0.0)")
        bound.add("ref")
    if lim.max_order_notional is not None:
        add(f"if ref <= 0 or ref * volume > {_num(lim.max_order_notional)}: FAIL")
    # After that line a valued order has a positive reference price: later rules need not ask.
    ref_ok = lim.max_order_notional is not None
    if lim.price_within_limits or lim.price_band is not None:
        add("if price > 0:")
        if lim.price_within_limits:
            add("    day = day_limits.get(code)")
            add("    if day is not None:")
            add("        down, up = day")
            add("        if price > up + 1e-9 or price < down - 1e-9: FAIL")
        if lim.price_band is not None:
            add("    mark = marks.get(code)")
            if request:
                # The head returned STALE unless the mark is at most half this age.
                add("    if mark is None: FAIL")
            else:
                age = _num(lim.mark_max_age_ms)
                add(f"    if mark is None or now - mark_ms.get(code, now) > {age}:")
                add("        FAIL")
            # abs(price - mark) / mark > band without the call to abs: a book keeps only marks
            # above 0, and IEEE division rounds -x / m to exactly -(x / m).
            band = f"{_num(lim.price_band)} + 1e-12"
            add("    off = (price - mark) / mark")
            add(f"    if off > {band} or -off > {band}: FAIL")
    if lim.self_trade:
        add("resting = by_code.get(code)")
        add("if resting:")
        add("    for o in resting.values():")
        add("        if o.buy != buy and (price <= 0 or o.price <= 0 or")
        add("                (price >= o.price if buy else price <= o.price)):")
        add("            FAIL")
        add("if sent:")
        add("    for o in sent:")
        add("        if o.buy != buy and o.code == code and (price <= 0 or o.price <= 0 or")
        add("                (price >= o.price if buy else price <= o.price)):")
        add("            FAIL")
    if lim.max_position_volume is not None or pos_priced:
        add("if buy:")
        add("    ob = obv.get(code, 0)")
        add("    held = positions.get(code, 0) + ob + volume")
        bound.add("ob")
        if lim.max_position_volume is not None:
            add(f"    if held > {_num(lim.max_position_volume)}: FAIL")
        if pos_priced:
            if not ref_ok:
                add("    if ref <= 0: FAIL")
            add("    value = held * ref")
            if lim.max_position_value is not None:
                add(f"    if value > {_num(lim.max_position_value)}: FAIL")
            if lim.max_position_share is not None:
                add("    total = book.total_asset")
                add(
                    f"    if total and value / total > {_num(lim.max_position_share)} + 1e-12: FAIL"
                )
    if lim.max_active_orders is not None:
        add(f"if len(open_) + len(sent) >= {_num(lim.max_active_orders)}: FAIL")
    if lim.max_gross_exposure is not None:
        # The open buy notional is read once: a buy let through adds to it (``obn``).
        positive = "" if ref_ok else "ref <= 0 or "
        add(f"if buy and ({positive}book.market_value + (obn := book.open_buy_notional)")
        add(f"        + ref * volume > {_num(lim.max_gross_exposure)}):")
        add("    FAIL")
        bound.add("obn")
    if dup is not None:
        env["dup"] = dup
        # dup.last, not a copy of it: the rule replaces the dict when it prunes it.
        add("dkey = (code, buy, price, volume)")
        add("last = dup.last")
        add("at = last.get(dkey)")
        bound.add("last")
        add(f"if at is not None and now - at < {_num(dup.window)}: FAIL")
    if budget is not None:
        env["flow"] = budget.flow
        caps = budget.caps
        # Each day cap counts orders, cancels or both: the smallest of each kind decides.
        orders_cap = min([c.limit for c in caps if c.orders and not c.cancels], default=None)
        cancels_cap = min([c.limit for c in caps if c.cancels and not c.orders], default=None)
        actions_cap = min([c.limit for c in caps if c.orders and c.cancels], default=None)
        if orders_cap is not None or actions_cap is not None:
            add("n = flow.orders")
            bound.add("n")
        if orders_cap is not None:
            add(f"if n >= {_num(orders_cap)}: FAIL")
        if actions_cap is not None:
            add(f"if n + flow.cancels >= {_num(actions_cap)}: FAIL")
        if cancels_cap is not None:
            add(f"if flow.cancels >= {_num(cancels_cap)}: FAIL")
        for i, rate in enumerate(budget.rates):
            env[f"b{i}"] = rate.bucket
            # TokenBucket.ready, inline; the slack is fixed for the bucket's life.
            add(f"f{i} = b{i}.full_at")
            add(f"if f{i} - now > {_num(rate.bucket.slack)}: FAIL")
            bound.add(f"f{i}")
    return out


#: The book's containers the rule lines read by bare name (never replaced in a book's life).
_CONTAINERS = {
    "st": "st",
    "marks": "marks",
    "mark_ms": "mark_ms",
    "day_limits": "day_limits",
    "by_code": "by_code",
    "sent": "sent",
    "open_": "open",
    "positions": "positions",
    "obv": "open_buy_volume",
    "osv": "open_sell_volume",
    "facts_day": "facts_day",
}


@functools.lru_cache(maxsize=256)
def _code(src: str, name: str) -> CodeType:
    # Kept by text: engines of the same limits (every run of a sweep) compile once.
    return compile(src, f"<qmtkit.risk.fastpath {name}>", "exec")


def _compile(src: str, env: dict[str, Any], name: str) -> Any:
    code = _code(src, name)
    # Only our own text goes in: the limits enter as the repr of checked ints and floats,
    # everything else (the blacklist, the book, the buckets) as names bound in env.
    exec(code, env)
    return env[name]


def _body(lines: list[str], fail: str, indent: str = "    ") -> str:
    return "\n".join(indent + line.replace("FAIL", fail) for line in lines)


def accept_test(lim: RiskLimits, dup: DuplicateOrder | None, budget: Budget | None) -> AcceptTest:
    """True exactly when every order rule ``RiskEngine`` builds from ``lim`` lets the order
    through (``dup``, ``budget``: the engine's own duplicate rule and order budget)."""
    env: dict[str, Any] = {}
    lines = _rule_lines(lim, dup, budget, env)
    src = (
        "def accepts(code, buy, volume, price, book, now):\n"
        + "".join(f"    {name} = book.{attr}\n" for name, attr in _CONTAINERS.items())
        + _body(lines, "return False")
        + "\n    return True\n"
    )
    accepts: AcceptTest = _compile(src, env, "accepts")
    return accepts


def order_path(
    lim: RiskLimits,
    dup: DuplicateOrder | None,
    budget: Budget | None,
    order_buckets: tuple[Any, ...],
    *,
    engine: Any,
    book: AccountBook,
    flow: Flow,
    clock: Callable[[], int],
    slow: OrderCheck,
    active: object,
    request: bool = False,
) -> Any:
    """``engine.check_order`` for ``lim``: judge, count and rest a passing order in one call.

    ``order_buckets`` are the per-second buckets an order spends (``engine._order_buckets``),
    ``slow`` the engine's full judging, which gets every order this function does not let
    through, with nothing changed. ``active`` is ``TradingState.ACTIVE``.

    ``request``: ``engine.check_request`` instead (a ``RequestCheck``): the same for a
    ``SubmitOrder`` at ``now``, answering ``STALE`` first if a rule of ``lim`` needs the
    code's facts of the day (price limits, ST) or a last price younger than half of
    ``mark_max_age_ms`` and the book has none.
    """
    env: dict[str, Any] = {
        "E": engine,
        "book": book,
        "flow": flow,
        "clock": clock,
        "slow": slow,
        "ACTIVE": active,
        "OpenOrder": OpenOrder,
        **{name: getattr(book, attr) for name, attr in _CONTAINERS.items()},
    }
    bound: set[str] = set()
    lines = _rule_lines(lim, dup, budget, env, bound, request=request)
    commit = []
    # The budget's buckets are the order buckets, in order (the engine builds both from one
    # list): then the rule lines have read each one's full_at already.
    rates = budget.rates if budget is not None else ()
    same = len(rates) == len(order_buckets) and all(
        r.bucket is b for r, b in zip(rates, order_buckets, strict=True)
    )
    for i, b in enumerate(order_buckets):
        env[f"t{i}"] = b
        f = f"f{i}" if same and f"f{i}" in bound else "f"
        if f == "f":
            commit.append(f"f = t{i}.full_at")
        commit.append(f"t{i}.full_at = ({f} if {f} > now else now) + {_num(b.interval)}")
    if dup is not None:
        env["dup"] = dup
        if "last" not in bound:
            commit.append("last = dup.last")
        commit += [
            "if len(last) < 4096:  # DuplicateOrder.commit, inline (it prunes a full dict)",
            "    last[dkey] = now",
            "else:",
            "    dup.commit(code, buy, volume, price, now)",
        ]
    unit = "ref" if "ref" in bound else "price if price > 0 else marks.get(code, 0.0)"
    open_buys = "ob" if "ob" in bound else "obv.get(code, 0)"
    commit += [
        "flow.orders = n + 1" if "n" in bound else "flow.orders += 1",
        "key = E.last_key - 1",
        "E.last_key = key",
        "if volume > 0:",  # AccountBook.send, inline
        f"    unit = {unit}",
        "    o = OpenOrder(key, code, buy, price, volume, now, unit)",
        "    sent.append(o)",
        "    if buy:",
        f"        obv[code] = {open_buys} + volume",
        "        book.open_buy_notional = obn + volume * unit"
        if "obn" in bound
        else "        book.open_buy_notional += volume * unit",
        "    else:",
        "        osv[code] = osv.get(code, 0) + volume",
        "    E.last_sent = o",
        "else:",
        "    E.last_sent = None",
        "return None",
    ]
    if not request:
        name = "check_order"
        head = "def check_order(code, buy, volume, price, now=None):\n"
        head += "    if now is None:\n        now = clock()\n"
    else:
        name = "check_request"
        env["STALE"] = STALE
        head = "def check_request(req, now):\n    code = req.stock_code\n"
        if lim.price_within_limits or lim.block_st:
            day = f"(now + {_BEIJING_MS}) // {_DAY_MS}"
            head += f"    if facts_day.get(code) != {day}:\n        return STALE\n"
        priced = (
            lim.price_band,
            lim.max_order_notional,
            lim.max_position_value,
            lim.max_position_share,
            lim.max_gross_exposure,
        )
        if any(v is not None for v in priced):
            fresh = _num(lim.mark_max_age_ms // 2)
            head += f"    if now - mark_ms.get(code, {-_DAY_MS}) > {fresh}:\n        return STALE\n"
        head += f"    buy = req.order_type == {_num(int(OrderType.STOCK_BUY))}\n"
        head += "    volume = req.order_volume\n"
        fix = _num(int(PriceType.FIX_PRICE))
        head += f"    price = req.price if req.price_type == {fix} else 0.0\n"
    src = (
        head + "    if now >= E._day_end or E.state is not ACTIVE:\n"
        "        return slow(code, buy, volume, price, now)\n"
        + _body(lines, "return slow(code, buy, volume, price, now)")
        + "\n"
        + _body(commit, "")
        + "\n"
    )
    return _compile(src, env, name)
