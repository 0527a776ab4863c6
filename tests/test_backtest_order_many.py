"""``BarContext.order_many``: a step's orders in one call, the same as the single calls.

The batch form checks the time, day and account once and publishes the orders' reports
together; each order is still judged and placed by the broker's one ``_place``. Every test
here runs the same scripted orders through single ``ctx.order`` calls and through batches
and asserts identical results: ids, responses, refusals and every frame of the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.replay.backend import ReplayBackend
from qmtkit.backends.sim import broker as broker_module
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.rules import Listing
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.data.cache import Cache
from qmtkit.errors import ClosedError, InvalidArgument, UnknownAccount
from qmtkit.models import OrderResponse, TradeReportItem
from qmtkit.risk.limits import RiskLimits
from support.broker import book, broker_state
from support.history import DAYS, FLAT, RISING, A, B, daily_bars

C, D = "600004.SH", "600006.SH"  # C: suspended on days 3-4; D: locked at its up limit on day 3
BUY, SELL, FIX, LATEST, SH_MARKET = 23, 24, 11, 5, 42
LOCKED = [
    (10.0, 10.2, 9.8, 10.0, 10_000),
    (10.0, 10.2, 9.8, 10.0, 10_000),
    (11.0, 11.0, 11.0, 11.0, 10_000),
    (11.0, 11.5, 10.8, 11.2, 10_000),
    (11.2, 11.5, 10.8, 11.2, 10_000),
    (11.2, 11.5, 10.8, 11.2, 10_000),
]
Order = tuple[Any, Any, Any, Any, Any]  # code, side, volume, price, price type

#: Each step's orders, in order: every rule the broker applies, and cash running out mid-batch
#: (30,000 CNY of cash: the third 1,000-share buy no longer fits, the small one after it does).
SCRIPT: dict[int, list[Order]] = {
    0: [
        (A, BUY, 1000, 11.44, FIX),
        (B, BUY, 1000, 11.0, FIX),
        (A, BUY, 1000, 11.44, FIX),  # no cash left for it
        (B, BUY, 100, 11.0, FIX),  # still fits
        (A, BUY, 150, 11.44, FIX),  # odd lot
        (A, BUY, 100, 11.445, FIX),  # off the tick
        (A, BUY, 100, 12.0, FIX),  # above the up limit
        (A, BUY, 100, float("nan"), FIX),
        (A, BUY, 100, float("inf"), FIX),
        (A, BUY, 100, -1.0, FIX),
        (A, BUY, 100, 0.0, FIX),
        ("999999.SH", BUY, 100, 10.0, FIX),  # not in the backtest
        ("600000.sh", BUY, 100, 11.0, FIX),  # another spelling of A
        (123, BUY, 100, 10.0, FIX),  # not a code
        (A, SELL, 100, 9.36, FIX),  # nothing held
        (B, SELL, 100, 9.0, FIX),  # with fill=close, bought at this close: T+1
        (A, 99, 100, 10.0, FIX),  # no such side
        (A, BUY, 0, 10.0, FIX),
        (A, BUY, 100.5, 10.0, FIX),
        (B, BUY, 100, 0.0, SH_MARKET),  # a Shanghai market type on a Shenzhen code
        (A, BUY, 100, 0.0, LATEST),  # priced from the last close
        (B, BUY, 100, 10.5, 999),  # no such price type
    ],
    1: [
        (A, SELL, 1000, 9.72, FIX),  # bought at the last close, filled at today's open
        (D, BUY, 100, 11.0, FIX),  # tomorrow D opens locked at its up limit
        (C, BUY, 100, 11.0, FIX),
    ],
    2: [
        (C, BUY, 100, 11.0, FIX),  # suspended today
        (A, SELL, 50, 10.08, FIX),  # an odd lot that is not the whole holding
        (A, SELL, 500, 10.08, FIX),
        (B, SELL, 1100, 9.0, FIX),
        (A, BUY, 100, 12.32, FIX),
    ],
    3: [(A, SELL, 500, 10.44, FIX), (A, BUY, 200, 12.76, FIX), (D, SELL, 100, 9.9, FIX)],
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    suspended = [d for d in DAYS if d not in (20240104, 20240105)]
    Cache(tmp_path).write_bars(
        "1d",
        {
            A: daily_bars(RISING),
            B: daily_bars(FLAT),
            C: daily_bars(FLAT[:4], suspended),
            D: daily_bars(LOCKED),
        },
    )
    return tmp_path


def url(home: Path, extra: str = "") -> str:
    return (
        f"backtest://?start={DAYS[0]}&end={DAYS[-1]}&codes={A},{B},{C},{D}&cash=30000"
        f"&home={home}{extra}"
    )


class Scripted:
    """Places ``SCRIPT``'s orders step by step, one call each (``batch`` 0) or in batches of
    ``batch`` (the tail of a step in a shorter one); keeps every response."""

    def __init__(self, batch: int, form: Callable[[list[Order]], dict[str, Any]] | None = None):
        self.batch = batch
        self.form = form or columns
        self.step = 0
        self.responses: list[OrderResponse] = []

    def __call__(self, frame: pl.DataFrame, ctx: BarContext) -> None:
        orders = SCRIPT.get(self.step, [])
        self.step += 1
        if not self.batch:
            for code, side, volume, price, pt in orders:
                self.responses.append(ctx.order(code, side, volume, price, pt))
            return
        for i in range(0, len(orders), self.batch):
            self.responses += ctx.order_many(**self.form(orders[i : i + self.batch]))


def columns(orders: list[Order]) -> dict[str, Any]:
    codes, sides, volumes, prices, types = (list(x) for x in zip(*orders, strict=True))
    return {
        "codes": codes,
        "sides": sides,
        "volumes": volumes,
        "prices": prices,
        "price_types": types,
    }


def frames(result: Any) -> dict[str, pl.DataFrame]:
    return {
        "orders": result.orders,
        "trades": result.trades,
        "positions": result.positions,
        "equity": result.equity,
    }


async def run(home: Path, strategy: Scripted, extra: str = "", **kw: Any) -> Any:
    return await run_backtest(url(home, extra), on_bars=strategy, **kw)


def assert_same(one: Any, other: Any) -> None:
    for name, frame in frames(one).items():
        assert frame.equals(frames(other)[name], null_equal=True), name
    assert one.digest() == other.digest()


@pytest.mark.filterwarnings("ignore:fill=close")
@pytest.mark.parametrize(
    "extra",
    [
        "",
        "&fill=close",  # buys fill at once: cash moves between the orders of one batch
        "&fill=qmt",
        "&participation=0.05",
        "&slippage=2",
        f"&st={A}",
        "&dividend_tax=1",  # a batch is placed one order at a time here (taxes come between)
    ],
)
@pytest.mark.parametrize("size", [1, 3, 100])
async def test_batches_give_what_single_calls_give(home: Path, extra: str, size: int) -> None:
    single, batched = Scripted(0), Scripted(size)
    one = await run(home, single, extra)
    other = await run(home, batched, extra)
    assert_same(one, other)
    assert batched.responses == single.responses
    assert len(single.responses) == sum(len(v) for v in SCRIPT.values())


@pytest.mark.parametrize("size", [3, 100])
async def test_unhashable_values_are_refused_alike(
    home: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # 100: one batch of ten, which the replay first tries to tell by set tests.
    odd = [(A, BUY, 100, 11.0, FIX), ([A], BUY, 100, 11.0, FIX), (B, BUY, 100, 11.0, [FIX])]
    monkeypatch.setitem(SCRIPT, 0, odd + [(B, BUY, 100, 11.0, FIX)] * 7)
    single, batched = Scripted(0), Scripted(size)
    assert_same(await run(home, single), await run(home, batched))
    assert batched.responses == single.responses
    assert [r.error_msg == "" for r in single.responses[:4]] == [True, False, False, True]


#: Steps of usual orders only (limit orders on the replay's own codes), codes repeated: the
#: batches the replay tells by set tests and whose listings it gathers.
USUAL: dict[int, list[Order]] = {
    0: [(c, BUY, 100, 10.5, FIX) for c in (A, B, C, D)] * 2 + [(A, BUY, 100, 11.445, FIX)],
    1: [(A, SELL, 200, 9.72, FIX), (B, SELL, 100, 9.5, FIX), (D, BUY, 100, 11.0, FIX)] * 3,
    2: [(C, BUY, 100, 11.0, FIX), (A, BUY, 1000, 12.32, FIX), (B, BUY, 150, 10.0, FIX)] * 3,
    3: [(c, SELL, 100, 9.9, FIX) for c in (A, B, C, D)] * 2,
}


@pytest.mark.parametrize("gather_from", [1, 8, 1000])
async def test_batches_of_usual_orders_give_what_single_calls_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gather_from: int
) -> None:
    import qmtkit.backends.replay.backend as backend_module

    # Every code has a bar every day (an aligned replay: its day facts are read in blocks);
    # C trades nothing on the third and fourth days (suspended).
    idle = [row if d not in (2, 3) else (*row[:4], 0) for d, row in enumerate(FLAT)]
    bars = {A: RISING, B: FLAT, C: idle, D: LOCKED}
    Cache(tmp_path).write_bars("1d", {code: daily_bars(rows) for code, rows in bars.items()})
    for step, orders in USUAL.items():
        monkeypatch.setitem(SCRIPT, step, orders)
    single = Scripted(0)
    one = await run(tmp_path, single)
    monkeypatch.setattr(backend_module, "_GATHER_FROM", gather_from)
    batched = Scripted(100)
    backends: list[ReplayBackend] = []
    assert_same(one, await run(tmp_path, batched, backend_hook=backends.append))
    assert batched.responses == single.responses
    errors = [r.error_msg for r in single.responses]
    assert any("suspended" in e for e in errors) and any("tick" in e for e in errors)
    assert sum(e == "" for e in errors) >= 10
    market = backends[0].market
    assert market is not None and (market._listing_parts is None) == (gather_from > 8)


async def test_the_script_meets_each_rule(home: Path) -> None:
    # The comparison above is only as good as the script: it refuses for every reason listed.
    single = Scripted(0)
    result = await run(home, single)
    errors = [r.error_msg for r in single.responses]
    for needle in (
        "insufficient cash",
        "not a multiple of 100 shares",
        "not on the 0.01 tick",
        "outside today's limits",
        "a limit order needs a price > 0",
        "not listed",
        "insufficient sellable shares",
        "bad order_type",
        "bad order_volume",
        "Shanghai market type",
        "bad price_type",
        "suspended",
        "odd lot may only be sold",
    ):
        assert any(needle in e for e in errors), needle
    accepted = result.orders.filter(pl.col("status") != 57)
    assert accepted.height >= 8 and result.trades.height >= 4
    # D's buy met a locked open and never traded.
    assert D not in result.trades["code"].to_list()


async def test_columns_may_be_numpy_arrays_polars_series_tuples_or_one_value(home: Path) -> None:
    def arrays(orders: list[Order]) -> dict[str, Any]:
        cols = columns([o for o in orders if isinstance(o[0], str)])
        return {
            "codes": np.array(cols["codes"]),
            "sides": pl.Series(cols["sides"]),
            "volumes": tuple(cols["volumes"]),
            "prices": np.array(cols["prices"], dtype=np.float64),
            "price_types": np.array(cols["price_types"], dtype=np.int64),
        }

    def lists(orders: list[Order]) -> dict[str, Any]:
        return columns([o for o in orders if isinstance(o[0], str)])

    one, other = Scripted(100, lists), Scripted(100, arrays)
    assert_same(await run(home, one), await run(home, other))
    assert one.responses == other.responses

    def scalars(orders: list[Order]) -> dict[str, Any]:
        return {"codes": [A, B], "sides": BUY, "volumes": 100, "prices": 11.0}

    def spelled(orders: list[Order]) -> dict[str, Any]:
        n = 2
        return {
            "codes": (A, B),
            "sides": [BUY] * n,
            "volumes": [100] * n,
            "prices": [11.0] * n,
            "price_types": [FIX] * n,
        }

    one, other = Scripted(100, scalars), Scripted(100, spelled)
    assert_same(await run(home, one), await run(home, other))
    assert one.responses == other.responses


async def test_buy_many_and_sell_many_are_order_many_with_the_side(home: Path) -> None:
    seen: list[list[OrderResponse]] = []

    def strategy(frame: pl.DataFrame, ctx: BarContext) -> None:
        if len(seen) == 0:
            seen.append(ctx.buy_many([A, B], [1000, 200], [11.44, 11.0]))
        elif len(seen) == 1:
            seen.append(ctx.sell_many(np.array([A]), 1000, 9.72))
        elif len(seen) == 2:
            seen.append(ctx.sell_many([A, B], 1000, [10.08, 9.0]))

    result = await run_backtest(url(home), on_bars=strategy)
    assert [len(s) for s in seen] == [2, 1, 2]
    assert [r.order_id for s in seen for r in s] == list(range(1, 6))
    assert seen[1][0].error_msg == ""
    assert "of 600000.SH: asked 1000, sellable 0" in seen[2][0].error_msg
    assert "of 000001.SZ: asked 1000, sellable 200" in seen[2][1].error_msg
    assert result.trades.height == 3


async def test_an_empty_batch_places_nothing(home: Path) -> None:
    got: list[list[OrderResponse]] = []

    def strategy(frame: pl.DataFrame, ctx: BarContext) -> None:
        got.append(ctx.order_many([], BUY, 100, 10.0))
        got.append(ctx.buy_many(np.array([], dtype=str), [], []))

    result = await run_backtest(url(home), on_bars=strategy)
    assert all(g == [] for g in got)
    assert result.orders.height == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codes": A}, "codes must be a list, tuple, numpy array or Polars Series, got '600000"),
        ({"codes": None}, "codes must be a list"),
        ({"volumes": [100]}, "volumes has 1 values for 2 codes"),
        ({"prices": [11.0, 11.0, 11.0]}, "prices has 3 values for 2 codes"),
        ({"sides": np.array([[BUY, BUY]])}, "sides must be one-dimensional, got shape (1, 2)"),
        ({"price_types": (FIX,)}, "price_types has 1 values for 2 codes"),
    ],
)
async def test_bad_columns_are_refused_before_any_order(
    home: Path, kwargs: dict[str, Any], message: str
) -> None:
    caught: list[Exception] = []

    def strategy(frame: pl.DataFrame, ctx: BarContext) -> None:
        args: dict[str, Any] = {"codes": [A, B], "sides": BUY, "volumes": 100, "prices": 11.0}
        try:
            ctx.order_many(**{**args, **kwargs})
        except InvalidArgument as e:
            caught.append(e)

    result = await run_backtest(url(home), on_bars=strategy)
    assert len(caught) == len(DAYS) and message in str(caught[0])
    assert result.orders.height == 0


async def test_with_a_risk_chain_each_order_is_judged_as_a_single_one(home: Path) -> None:
    limits = RiskLimits(max_order_volume=500)
    single, batched = Scripted(0), Scripted(4)
    one = await run(home, single, risk=limits)
    other = await run(home, batched, risk=limits)
    assert_same(one, other)
    assert batched.responses == single.responses
    assert (one.orders["order_id"] < 0).any()  # the risk chain refused some


@pytest.mark.filterwarnings("ignore:fill=close")
@pytest.mark.parametrize("extra", ["", "&fill=close", "&slippage=2", "&dividend_tax=1"])
@pytest.mark.parametrize("size", [0, 3, 100])
async def test_the_usual_orders_short_path_places_what_the_general_path_places(
    home: Path, monkeypatch: pytest.MonkeyPatch, extra: str, size: int
) -> None:
    # The broker books a limit order of plain values that meets no book on a path of its
    # own (Broker._rest); with _FIX_PRICE no price type, every order takes the general one.
    short = Scripted(size)
    one = await run(home, short, extra)
    monkeypatch.setattr(broker_module, "_FIX_PRICE", -1)
    general = Scripted(size)
    other = await run(home, general, extra)
    assert_same(one, other)
    assert short.responses == general.responses


# --------------------------------------------------------------------------- the broker


def listing(code: str, *, trading: bool = True) -> Listing:
    return Listing(code, code[-2:], code, 0.01, 11.0, 9.0, trading, False)


def broker_run(
    reqs: list[SubmitOrder], listings: list[Listing | None], batch: bool, **kw: Any
) -> tuple[list[OrderResponse], list[TradeReportItem], Broker]:
    broker = Broker(**kw)
    broker.open_account("acc")
    if batch:
        out: list[TradeReportItem] = []
        books: list[Any] = [None] * len(reqs)
        responses = broker.submit_many(
            reqs, books=books, listings=listings, now_ms=1_704_160_800_000, day=20240102, out=out
        )
        return responses, out, broker
    responses, items = [], []
    for req, li in zip(reqs, listings, strict=True):
        resp, got = broker.submit(
            req, book=None, instrument=None, now_ms=1_704_160_800_000, day=20240102, listing=li
        )
        responses.append(resp)
        items += got
    return responses, items, broker


def test_broker_submit_many_equals_submit_in_turn() -> None:
    reqs = [
        SubmitOrder("acc", A, BUY, 100, FIX, 10.5),
        SubmitOrder("acc", B, BUY, 100, FIX, 11.5),  # above the limit
        SubmitOrder("acc", C, BUY, 100, FIX, 10.0),  # suspended
        SubmitOrder("acc", D, SELL, 100, FIX, 10.0),  # nothing held
        SubmitOrder("acc", "nope", BUY, 100, FIX, 10.0),  # no listing
        SubmitOrder("acc", A, BUY, 100, FIX, 10.5, "s1", "remark", 7),
    ]
    lst: list[Listing | None] = [
        listing(A),
        listing(B),
        listing(C, trading=False),
        listing(D),
        None,
        listing(A),
    ]
    one = broker_run(reqs, lst, False)
    other = broker_run(reqs, lst, True)
    assert one[0] == other[0] and one[1] == other[1]
    assert one[2].orders("acc") == other[2].orders("acc")
    assert one[2].asset("acc") == other[2].asset("acc")


def test_broker_submit_many_checks_once_and_creates_a_new_account_once() -> None:
    broker = Broker()
    out: list[TradeReportItem] = []
    reqs = [SubmitOrder("new", A, BUY, 100, FIX, 10.5)] * 2
    got = broker.submit_many(
        reqs, books=[None, None], listings=[listing(A)] * 2, now_ms=0, day=20240102, out=out
    )
    assert [r.order_id for r in got] == [1, 2]
    assert type(out[0]).__name__ == "Asset"  # the new account's, first, once
    assert [type(x).__name__ for x in out].count("Asset") == 1 + 2  # and each buy's freeze
    # An empty batch changes nothing, not even the broker's day.
    fresh = Broker()
    assert fresh.submit_many([], books=[], listings=[], now_ms=0, day=20240102, out=out) == []
    assert fresh.day == 0
    closed = Broker(allow_new_accounts=False)
    with pytest.raises(UnknownAccount):
        closed.submit_many(reqs, books=[None] * 2, listings=[None] * 2, now_ms=0, day=1, out=[])


@pytest.mark.parametrize(
    ("reqs", "books", "listings", "message"),
    [
        ("x", [], [], "reqs, books and listings must be lists, got str"),
        ([SubmitOrder("a", A, BUY, 100, FIX, 10.5)], [], [None], "1 orders need 1 books"),
        (["x"], [None], [None], "req must be a SubmitOrder, got str"),
        (
            [SubmitOrder("a", A, BUY, 100, FIX, 10.5), SubmitOrder("b", A, BUY, 100, FIX, 10.5)],
            [None, None],
            [None, None],
            "one account per batch: 'b' after 'a'",
        ),
        ([SubmitOrder("a", A, BUY, 100, FIX, 10.5)], ["book"], [None], "book must be a Tick"),
        ([SubmitOrder("a", A, BUY, 100, FIX, 10.5)], [None], [3], "listing must be a Listing"),
    ],
)
def test_broker_submit_many_refuses_what_submit_would_not_take(
    reqs: Any, books: Any, listings: Any, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        Broker().submit_many(reqs, books=books, listings=listings, now_ms=0, day=20240102, out=[])


# --------------------------------------------------------------------------- the replay's entry


async def test_both_paths_refuse_a_bad_account_and_a_finished_backtest(home: Path) -> None:
    backends: list[ReplayBackend] = []
    caught: list[str] = []

    def strategy(frame: pl.DataFrame, ctx: BarContext) -> None:
        if caught:
            return
        backend = backends[0]
        for account in (" ", "", 5):
            req = SubmitOrder(account, A, BUY, 100, FIX, 10.0)  # type: ignore[arg-type]
            for place in (backend.submit_now, lambda r: backend.submit_many([r])):
                with pytest.raises(InvalidArgument) as e:
                    place(req)
                caught.append(str(e.value))

        ok = SubmitOrder("backtest", A, BUY, 100, FIX, 10.0)
        with pytest.raises(InvalidArgument, match="reqs must hold SubmitOrder, got str"):
            backend.submit_many([ok, "x"])  # type: ignore[list-item]

    result = await run_backtest(url(home), on_bars=strategy, backend_hook=backends.append)
    assert result.orders.height == 0
    assert caught == [
        f"account id must be a non-empty string, got {a!r}" for a in (" ", "", 5) for _ in range(2)
    ]
    req = SubmitOrder("backtest", A, BUY, 100, FIX, 10.0)
    for place in (backends[0].submit_now, lambda r: backends[0].submit_many([r])):
        with pytest.raises(ClosedError):
            place(req)


def _placed_with_state(reports: bool) -> tuple[list[Any], list[TradeReportItem], list[Any]]:
    """Orders of every kind the short path takes or leaves, single and batched, on an
    account with a holding to sell (``reports``: its Asset and Position reports on)."""
    broker = Broker(initial_cash=50_000.0)
    broker.open_account("acc")
    broker.state_reports("acc", reports)
    day, now = 20240102, 1_704_160_800_000
    seed = SubmitOrder("acc", B, BUY, 1000, FIX, 10.01)
    broker.submit(seed, book=book(B), instrument=None, now_ms=now, day=day, listing=listing(B))
    broker.roll_day(20240103)  # sellable from today (T+1)
    day += 1
    reqs = [
        SubmitOrder("acc", A, BUY, 100, FIX, 10.5, "strategy", "a remark longer than its cut", 9),
        SubmitOrder("acc", B, SELL, 300, FIX, 9.5, "", "", 3),
        SubmitOrder("acc", B, SELL, 50, FIX, 9.5),  # an odd lot of part of a holding
        SubmitOrder("acc", A, BUY, 100, FIX, 11.5),  # above the limit
        SubmitOrder("acc", A, BUY, 10_000, FIX, 10.0),  # no cash
        SubmitOrder("acc", A, BUY, 100, 5, 0.0),  # not a limit order: no quote to price it
        SubmitOrder("acc", A, BUY, True, FIX, 10.0),  # a bool volume: the general path
        SubmitOrder("acc", B, SELL, 700, FIX, 9.0, "s"),  # the rest of the holding
        SubmitOrder("acc", A, BUY, 200, FIX, 9.0),
    ]
    responses: list[Any] = []
    items: list[TradeReportItem] = []
    for i in range(0, len(reqs), 4):
        part = reqs[i : i + 4]
        if i == 4:  # one batch, the rest one at a time
            responses += broker.submit_many(
                part,
                books=[None] * len(part),
                listings=[listing(r.stock_code) for r in part],
                now_ms=now,
                day=day,
                out=items,
            )
            continue
        for req in part:
            resp, got = broker.submit(
                req,
                book=None,
                instrument=None,
                now_ms=now,
                day=day,
                listing=listing(A) if req.stock_code == A else listing(B),
            )
            responses.append(resp)
            items += got
    return responses, items, broker_state(broker, ["acc"])


@pytest.mark.parametrize("reports", [True, False])
def test_the_brokers_short_path_gives_the_general_paths_reports_and_state(
    monkeypatch: pytest.MonkeyPatch, reports: bool
) -> None:
    short = _placed_with_state(reports)
    monkeypatch.setattr(broker_module, "_FIX_PRICE", -1)
    general = _placed_with_state(reports)
    assert short == general
    responses, items, _ = short
    assert [r.error_msg == "" for r in responses] == [1, 1, 0, 0, 0, 0, 0, 1, 1]
    assert responses[0].order_remark == "a remark longer than its" and responses[0].seq == 9
    names = [type(x).__name__ for x in items]
    assert ("Asset" in names and "Position" in names) == reports
