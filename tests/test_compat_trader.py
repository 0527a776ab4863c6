"""XtQuantTrader over the client, against a scripted venue (MockBackend).

The venue answers orders the way a counter does: an accepted order is pushed as status 50;
a volume that is not a multiple of 100 is refused (status 57 + an order error). Whether the
pushes arrive before or after the request's answer is a switch, since both happen.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qmtkit.backends.base import (
    AccountInfos,
    AccountStatuses,
    CancelOrder,
    Ok,
    OpenAccount,
    Orders,
    Positions,
    QueryAccountInfos,
    QueryAccountStatus,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    QueryTrades,
    Reply,
    Request,
    SubmitOrder,
    Trades,
)
from qmtkit.backends.mock import MockBackend
from qmtkit.compat import xtconstant
from qmtkit.compat._bridge import LoopThreadError, bridge
from qmtkit.compat.xttrader import XtQuantTrader, XtQuantTraderCallback, cut_remark, terminal_url
from qmtkit.compat.xttype import StockAccount
from qmtkit.errors import BackendUnavailable, InvalidArgument, Unsupported
from qmtkit.models import (
    AccountInfo,
    AccountStatus,
    Asset,
    CancelError,
    CancelResponse,
    Order,
    OrderError,
    OrderResponse,
    Position,
)

ACC = "1000000365"
WAIT = 5.0


class FakeVenue:
    """A tiny counter behind MockBackend (runs on the shim's loop thread)."""

    def __init__(self, push_first: bool = True) -> None:
        self.push_first = push_first
        self.backend = MockBackend(self.handle)
        self.next_id = 100
        self.orders: dict[int, Order] = {}

    def _push(self, items: list[Any]) -> None:
        for item in items:
            self.backend.push_item(ACC, item)

    def _later_or_now(self, items: list[Any]) -> None:
        if self.push_first:
            self._push(items)
        else:
            asyncio.get_running_loop().call_soon(self._push, items)

    def handle(self, req: Request) -> Reply:
        if isinstance(req, SubmitOrder):
            self.next_id += 1
            oid = self.next_id
            bad = req.order_volume % 100 != 0
            order = Order(
                account_id=req.account_id, stock_code=req.stock_code, order_id=oid,
                order_sysid=f"S{oid}", order_type=req.order_type,
                order_volume=req.order_volume, price_type=req.price_type, price=req.price,
                order_status=57 if bad else 50, strategy_name=req.strategy_name,
                order_remark=req.order_remark,
            )  # fmt: skip
            self.orders[oid] = order
            items: list[Any] = [order]
            if bad:
                items.append(
                    OrderError(
                        account_id=ACC,
                        order_id=oid,
                        error_id=-61,
                        error_msg=f"volume {req.order_volume} is not a multiple of 100",
                    )
                )
            self._later_or_now(items)
            return OrderResponse(account_id=ACC, order_id=oid, seq=req.seq)
        if isinstance(req, CancelOrder):
            order = self.orders.get(req.order_id)
            if order is None or order.order_status != 50:
                err = CancelError(
                    account_id=ACC, order_id=req.order_id, error_id=-1,
                    error_msg=f"order {req.order_id} cannot be canceled",
                )  # fmt: skip
                self._later_or_now([err])
                return CancelResponse(account_id=ACC, cancel_result=-1, order_id=req.order_id)
            order.order_status = 54
            self._later_or_now([order])
            return CancelResponse(account_id=ACC, cancel_result=0, order_id=req.order_id)
        if isinstance(req, QueryAsset):
            return Asset(
                account_id=ACC, cash=1e6, frozen_cash=0.0, market_value=0.0,
                total_asset=1e6, fetch_balance=1e6,
            )  # fmt: skip
        if isinstance(req, QueryOrders):
            items2 = list(self.orders.values())
            if req.cancelable_only:
                items2 = [o for o in items2 if o.order_status == 50]
            return Orders(items2)
        if isinstance(req, QueryTrades):
            return Trades([])
        if isinstance(req, QueryPositions):
            return Positions(
                [
                    Position(
                        account_id=ACC,
                        stock_code="600000.SH",
                        volume=300,
                        can_use_volume=300,
                        open_price=10.0,
                        market_value=3000.0,
                    )
                ]
            )
        if isinstance(req, QueryAccountInfos):
            return AccountInfos([AccountInfo(account_id=ACC)])
        if isinstance(req, QueryAccountStatus):
            return AccountStatuses([AccountStatus(account_id=ACC, status=0)])
        return Ok()


class Recorder(XtQuantTraderCallback):
    """Records (callback name, thread name, payload) and can wait for a count of calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.cond = threading.Condition()

    def _rec(self, name: str, obj: Any) -> None:
        with self.cond:
            self.calls.append((name, threading.current_thread().name, obj))
            self.cond.notify_all()

    def wait_for(self, name: str, n: int = 1) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(name)) >= n, WAIT)
        assert ok, f"expected {n} {name} call(s), got {self.names()}"
        return self.of(name)

    def of(self, name: str) -> list[Any]:
        return [o for n, _, o in self.calls if n == name]

    def names(self) -> list[str]:
        return [n for n, _, _ in self.calls]

    def on_stock_order(self, order: Any) -> None:
        self._rec("on_stock_order", order)

    def on_order_error(self, order_error: Any) -> None:
        self._rec("on_order_error", order_error)

    def on_cancel_error(self, cancel_error: Any) -> None:
        self._rec("on_cancel_error", cancel_error)

    def on_order_stock_async_response(self, response: Any) -> None:
        self._rec("on_order_stock_async_response", response)

    def on_cancel_order_stock_async_response(self, response: Any) -> None:
        self._rec("on_cancel_order_stock_async_response", response)


@pytest.fixture(params=[True, False], ids=["push-before-reply", "reply-before-push"])
def venue(request: pytest.FixtureRequest) -> Iterator[FakeVenue]:
    v = FakeVenue(push_first=request.param)
    bridge().backend_factory = lambda url: v.backend
    try:
        yield v
    finally:
        bridge().backend_factory = None
        bridge().shutdown()


@pytest.fixture
def trader(venue: FakeVenue) -> Iterator[tuple[XtQuantTrader, Recorder, StockAccount]]:
    t = XtQuantTrader("/tmp/userdata_mini", 123456)
    rec = Recorder()
    t.register_callback(rec)
    t.start()
    assert t.connect() == 0
    acc = StockAccount(ACC)
    assert t.subscribe(acc) == 0
    try:
        yield t, rec, acc
    finally:
        t.stop()


def _submits(venue: FakeVenue) -> list[SubmitOrder]:
    return [r for r in venue.backend.requests if isinstance(r, SubmitOrder)]


# --------------------------------------------------------------------------- orders


def test_order_stock_returns_the_venue_order_id_and_pushes_the_order(
    venue: FakeVenue, trader: Any
) -> None:
    t, rec, acc = trader
    oid = t.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 200, xtconstant.FIX_PRICE, 10.5)
    assert oid == 101
    (order,) = rec.wait_for("on_stock_order")
    assert (order.order_id, order.stock_code, order.order_status) == (101, "600000.SH", 50)


def test_callbacks_run_on_one_dispatcher_thread_in_venue_order(
    venue: FakeVenue, trader: Any
) -> None:
    t, rec, acc = trader
    ids = [
        t.order_stock(
            acc, "600000.SH", xtconstant.STOCK_BUY, 100 * (i + 1), xtconstant.FIX_PRICE, 10.0
        )
        for i in range(20)
    ]
    rec.wait_for("on_stock_order", 20)
    threads = {th for n, th, _ in rec.calls}
    assert len(threads) == 1
    (name,) = threads
    assert name != threading.current_thread().name and name != "qmtkit-loop"
    assert [o.order_id for o in rec.of("on_stock_order")] == ids


def test_sync_query_from_inside_a_callback_does_not_deadlock(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader
    answers: list[int] = []
    done = threading.Event()

    class Querying(XtQuantTraderCallback):
        def on_stock_order(self, order: Any) -> None:
            answers.append(len(t.query_stock_orders(acc)))
            done.set()

    t.register_callback(Querying())
    t.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, 10.0)
    assert done.wait(WAIT)
    assert answers == [1]


def test_venue_refusal_returns_the_id_and_calls_on_order_error(
    venue: FakeVenue, trader: Any
) -> None:
    t, rec, acc = trader
    oid = t.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 150, xtconstant.FIX_PRICE, 10.0)
    (err,) = rec.wait_for("on_order_error")
    assert oid > 0 and err.order_id == oid
    assert "150" in err.error_msg


def test_bad_code_returns_minus_one_logs_and_sends_nothing(
    venue: FakeVenue, trader: Any, caplog: pytest.LogCaptureFixture
) -> None:
    t, rec, acc = trader
    assert t.order_stock(acc, "abc", xtconstant.STOCK_BUY, 100, xtconstant.FIX_PRICE, 10.0) == -1
    (err,) = rec.wait_for("on_order_error")
    assert err.order_id == -1 and "'abc'" in err.error_msg
    assert "'abc'" in caplog.text
    assert _submits(venue) == []


@pytest.mark.parametrize(
    ("field", "args"),
    [
        ("order_type", ("600000.SH", 99, 100, 11, 10.0)),
        ("order_volume", ("600000.SH", 23, -100, 11, 10.0)),
        ("price_type", ("600000.SH", 23, 100, 12345, 10.0)),
        ("price", ("600000.SH", 23, 100, 11, float("nan"))),
    ],
)
def test_bad_arguments_are_refused_with_minus_one(
    venue: FakeVenue, trader: Any, field: str, args: tuple[Any, ...]
) -> None:
    t, rec, acc = trader
    assert t.order_stock(acc, *args) == -1
    (err,) = rec.wait_for("on_order_error")
    assert field in err.error_msg
    assert _submits(venue) == []


def test_not_an_account_is_refused(venue: FakeVenue, trader: Any) -> None:
    t, _rec, _acc = trader
    bad = StockAccount(123)  # type: ignore[arg-type]  # xtquant returns a message string
    assert t.order_stock(bad, "600000.SH", 23, 100, 11, 10.0) == -1
    assert t.subscribe(bad) == -1
    assert _submits(venue) == []


def test_an_account_the_terminal_does_not_hold_is_refused_naming_it(
    venue: FakeVenue, trader: Any
) -> None:
    t, rec, _acc = trader
    typo = StockAccount(ACC + "9")
    assert t.order_stock(typo, "600000.SH", 23, 100, 11, 10.0, "s", "r") == -1
    (err,) = rec.wait_for("on_order_error")
    assert err.account_id == typo.account_id and err.order_remark == "r"
    assert f"account {typo.account_id!r} is not held by this terminal" in err.error_msg
    assert t.query_stock_asset(typo) is None
    opened = [r for r in venue.backend.requests if isinstance(r, OpenAccount)]
    assert [r.account_id for r in opened] == [ACC]  # nothing opened, nothing sent
    assert _submits(venue) == []


def test_order_remark_is_cut_to_24_bytes_of_utf8(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader
    remark = "备注" * 10  # 60 bytes
    t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0, "s", remark)
    (sent,) = _submits(venue)
    assert sent.order_remark == "备注备注备注备注"  # 8 characters, 24 bytes
    assert len(sent.order_remark.encode()) == 24
    assert cut_remark("abcdefghijklmnopqrstuvwxyz") == "abcdefghijklmnopqrstuvwx"
    assert cut_remark("a" + "备" * 10) == "a" + "备" * 7  # 22 bytes: no half character


def test_async_order_answers_with_its_seq(venue: FakeVenue, trader: Any) -> None:
    t, rec, acc = trader
    seqs = [
        t.order_stock_async(acc, "600000.SH", 23, 100, 11, 10.0, "s", f"r{i}") for i in range(5)
    ]
    assert all(s > 0 for s in seqs) and len(set(seqs)) == 5
    resps = rec.wait_for("on_order_stock_async_response", 5)
    assert sorted(r.seq for r in resps) == sorted(seqs)
    assert {r.order_remark for r in resps} == {f"r{i}" for i in range(5)}
    assert all(r.order_id > 0 for r in resps)


def test_async_refusal_response_comes_before_its_order_error(venue: FakeVenue, trader: Any) -> None:
    t, rec, acc = trader
    seq = t.order_stock_async(acc, "600000.SH", 23, 150, 11, 10.0)
    (err,) = rec.wait_for("on_order_error")
    (resp,) = rec.of("on_order_stock_async_response")
    names = rec.names()
    assert names.index("on_order_stock_async_response") < names.index("on_order_error")
    assert resp.seq == seq and err.order_id == resp.order_id


def test_async_bad_input_answers_an_error_response_then_order_error(
    venue: FakeVenue, trader: Any
) -> None:
    t, rec, acc = trader
    seq = t.order_stock_async(acc, "600000.XX", 23, 100, 11, 10.0)
    (err,) = rec.wait_for("on_order_error")
    (resp,) = rec.of("on_order_stock_async_response")
    assert (resp.seq, resp.order_id) == (seq, -1)
    assert "'600000.XX'" in resp.error_msg and "'600000.XX'" in err.error_msg
    assert rec.names().index("on_order_stock_async_response") < rec.names().index("on_order_error")
    assert _submits(venue) == []


def test_async_with_a_non_str_remark_returns_minus_one(venue: FakeVenue, trader: Any) -> None:
    t, rec, acc = trader
    assert t.order_stock_async(acc, "600000.SH", 23, 100, 11, 10.0, "s", 42) == -1  # type: ignore[arg-type]
    (err,) = rec.wait_for("on_order_error")
    assert "42" in err.error_msg
    assert _submits(venue) == []


# --------------------------------------------------------------------------- cancels


def test_cancel_answers_zero_then_minus_one_with_cancel_error(
    venue: FakeVenue, trader: Any
) -> None:
    t, rec, acc = trader
    oid = t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)
    assert t.cancel_order_stock(acc, oid) == 0
    assert t.cancel_order_stock(acc, oid) == -1
    (err,) = rec.wait_for("on_cancel_error")
    assert err.order_id == oid and "cannot be canceled" in err.error_msg


def test_cancel_with_a_bad_order_id_is_refused_without_a_request(
    venue: FakeVenue, trader: Any
) -> None:
    t, _rec, acc = trader
    assert t.cancel_order_stock(acc, "101") == -1  # type: ignore[arg-type]
    assert [r for r in venue.backend.requests if isinstance(r, CancelOrder)] == []


def test_async_cancel_answers_on_its_callback(venue: FakeVenue, trader: Any) -> None:
    t, rec, acc = trader
    oid = t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)
    seq = t.cancel_order_stock_async(acc, oid)
    (resp,) = rec.wait_for("on_cancel_order_stock_async_response")
    assert (resp.seq, resp.order_id, resp.cancel_result) == (seq, oid, 0)


def test_cancel_by_sysid_checks_the_market(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader
    assert t.cancel_order_stock_sysid(acc, "NYSE", "S1") == -1


# --------------------------------------------------------------------------- queries


def test_queries_return_xttype_objects(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader
    oid = t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)
    asset = t.query_stock_asset(acc)
    assert type(asset).__name__ == "XtAsset" and asset.cash == 1e6
    assert t.query_stock_order(acc, oid).order_id == oid
    assert t.query_stock_order(acc, 99999) is None
    assert [o.order_id for o in t.query_stock_orders(acc)] == [oid]
    assert [o.order_id for o in t.query_stock_orders(acc, cancelable_only=True)] == [oid]
    assert t.query_stock_trades(acc) == []
    assert t.query_stock_position(acc, "600000.SH").volume == 300
    assert t.query_stock_position(acc, "000001.SZ") is None
    assert [p.stock_code for p in t.query_stock_positions(acc)] == ["600000.SH"]
    assert [i.account_id for i in t.query_account_infos()] == [ACC]
    assert [s.status for s in t.query_account_status()] == [0]


def test_async_queries_answer_their_callbacks_off_the_caller_thread(
    venue: FakeVenue, trader: Any
) -> None:
    t, _rec, acc = trader
    got: dict[str, Any] = {}
    done = threading.Event()

    def keep(name: str) -> Any:
        def cb(value: Any) -> None:
            got[name] = (value, threading.current_thread().name)
            if len(got) == 4:
                done.set()

        return cb

    assert t.query_stock_asset_async(acc, keep("asset")) is None
    assert t.query_stock_orders_async(acc, keep("orders")) > 0
    assert t.query_stock_positions_async(acc, keep("positions")) > 0
    assert t.query_account_infos_async(keep("infos")) > 0
    assert done.wait(WAIT)
    assert got["asset"][0].cash == 1e6
    assert got["positions"][0][0].volume == 300
    assert {th for _, th in got.values()} != {threading.current_thread().name}


def test_relaxed_mode_answers_on_a_separate_thread(venue: FakeVenue, trader: Any) -> None:
    t, rec, acc = trader
    t.set_relaxed_response_order_enabled(True)
    t.order_stock_async(acc, "600000.SH", 23, 100, 11, 10.0)
    rec.wait_for("on_order_stock_async_response")
    rec.wait_for("on_stock_order")
    by_name = {n: th for n, th, _ in rec.calls}
    assert by_name["on_order_stock_async_response"] != by_name["on_stock_order"]


# --------------------------------------------------------------------------- lifecycle


def test_unsupported_functions_raise_naming_function_and_backend(
    venue: FakeVenue, trader: Any
) -> None:
    t, _rec, acc = trader
    with pytest.raises(Unsupported, match=r"query_credit_detail\(\).*sim://"):
        t.query_credit_detail(acc)
    with pytest.raises(Unsupported, match="bank_transfer_in"):
        t.bank_transfer_in(acc, "b", "a", 1.0)


def test_run_forever_returns_when_stopped_from_a_callback(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader

    class Stopper(XtQuantTraderCallback):
        def on_stock_order(self, order: Any) -> None:
            threading.Thread(target=t.stop).start()

    t.register_callback(Stopper())
    t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)
    finished = threading.Event()
    runner = threading.Thread(target=lambda: (t.run_forever(), finished.set()))
    runner.start()
    assert finished.wait(WAIT)


def test_connect_failure_answers_minus_one(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(url: str) -> Any:
        raise BackendUnavailable(f"nothing listens at {url}")

    bridge().backend_factory = refuse
    try:
        t = XtQuantTrader("/tmp/x", 1)
        t.start()
        assert t.connect() == -1
        assert "nothing listens" in caplog.text
        assert t.subscribe(StockAccount(ACC)) == -1
        t.stop()
    finally:
        bridge().backend_factory = None


def test_calling_from_inside_an_event_loop_fails_fast(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader

    async def misuse() -> None:
        t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)

    with pytest.raises(LoopThreadError, match="order_stock"):
        asyncio.run(misuse())


def test_each_path_names_its_own_terminal() -> None:
    a = terminal_url("D:\\迅投极速交易终端\\userdata_mini", 1, "sim://")
    b = terminal_url("/home/me/userdata_mini", 1, "sim://")
    assert a.startswith("sim://?terminal=userdata_mini-") and b.startswith("sim://?terminal=")
    assert a != b
    assert terminal_url("x", 1, "sim://?home=/tmp/h") == "sim://?home=/tmp/h"
    assert (
        terminal_url("/p/userdata_mini", 7, "xtquant://") == "xtquant:///p/userdata_mini?session=7"
    )
    assert terminal_url("/p", 7, "qmtkit://h:1") == "qmtkit://h:1"


def test_bad_constructor_arguments_raise() -> None:
    with pytest.raises(InvalidArgument, match="path"):
        XtQuantTrader(123, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="session"):
        XtQuantTrader("/p", "1")  # type: ignore[arg-type]


def test_set_timeout_turns_a_silent_venue_into_the_failure_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import anyio

    async def slow(req: Request) -> Reply:
        if isinstance(req, (QueryAsset, SubmitOrder)):
            await anyio.sleep(30)
        return Ok()

    backend = MockBackend(slow)
    bridge().backend_factory = lambda url: backend
    try:
        t = XtQuantTrader("/tmp/slow", 1)
        t.start()
        assert t.connect() == 0
        t.set_timeout(50)
        acc = StockAccount(ACC)
        assert t.subscribe(acc) == 0
        started = time.monotonic()
        assert t.query_stock_asset(acc) is None
        assert t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0) == -1
        assert time.monotonic() - started < 5
        assert "no answer within 0.05 s" in caplog.text
        with pytest.raises(InvalidArgument):
            t.set_timeout(-1)
        t.stop()
    finally:
        bridge().backend_factory = None
        bridge().shutdown()


def test_a_lost_venue_connection_calls_on_disconnected(venue: FakeVenue, trader: Any) -> None:
    from qmtkit.backends.base import ConnectionState

    _t, _rec, _acc = trader
    lost = threading.Event()

    class Watcher(XtQuantTraderCallback):
        def on_disconnected(self) -> None:
            lost.set()

    _t.register_callback(Watcher())

    async def drop() -> None:
        venue.backend.push_connection(ConnectionState(connected=False, reason="link down"))

    bridge().call(drop)
    assert lost.wait(WAIT)


def test_numpy_and_whole_float_volumes_are_taken_as_ints(venue: FakeVenue, trader: Any) -> None:
    import numpy as np

    t, _rec, acc = trader
    oid = t.order_stock(acc, "600000.SH", np.int64(23), np.int64(200), 11, np.float64(10.5))
    assert oid > 0
    assert t.order_stock(acc, "600000.SH", 23, 300.0, 11, 10.5) > oid
    assert t.order_stock(acc, "600000.SH", 23, 150.5, 11, 10.5) == -1
    sent = _submits(venue)
    assert [(s.order_type, s.order_volume, s.price) for s in sent] == [
        (23, 200, 10.5),
        (23, 300, 10.5),
    ]
    assert all(type(s.order_volume) is int for s in sent)
    assert t.cancel_order_stock(acc, np.int64(oid)) == 0


def test_stop_from_inside_a_callback_does_not_deadlock(venue: FakeVenue, trader: Any) -> None:
    t, _rec, acc = trader
    stopped = threading.Event()

    class StopInside(XtQuantTraderCallback):
        def on_stock_order(self, order: Any) -> None:
            t.stop()
            stopped.set()

    t.register_callback(StopInside())
    t.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)
    assert stopped.wait(WAIT)
    assert not t.connected


def test_a_callback_that_raises_does_not_stop_the_ones_queued_after_it(
    venue: FakeVenue, trader: Any
) -> None:
    t, _rec, acc = trader

    class Flaky(Recorder):
        def on_stock_order(self, order: Any) -> None:
            super().on_stock_order(order)
            raise RuntimeError("callback bug")

        def on_order_stock_async_response(self, response: Any) -> None:
            super().on_order_stock_async_response(response)
            raise RuntimeError("callback bug")

    flaky = Flaky()
    t.register_callback(flaky)
    # An order's push and its async answer are queued in one loop step when the venue pushes
    # before it replies: one hand-over to the callback thread, whose first call raises.
    for _ in range(2):
        assert t.order_stock_async(acc, "600000.SH", 23, 100, 11, 10.0) > 0
    flaky.wait_for("on_stock_order", 2)
    flaky.wait_for("on_order_stock_async_response", 2)
