"""Accounts and order handles against a scripted MockBackend."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest

import qmtkit
from qmtkit.backends.base import (
    CancelOrder,
    Ok,
    OpenAccount,
    Orders,
    Positions,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    Reply,
    Request,
    SubmitOrder,
)
from qmtkit.backends.mock import MockBackend
from qmtkit.constants import OrderStatus, OrderType, PriceType
from qmtkit.errors import BackendError, InvalidArgument, InvalidCode, Unsupported
from qmtkit.models import (
    AccountReport,
    Asset,
    CancelResponse,
    Order,
    OrderError,
    OrderResponse,
    Position,
    Trade,
)

ACCT = "demo"


def order_report(req: SubmitOrder, order_id: int, status: int, traded: int = 0) -> Order:
    return Order(
        account_id=req.account_id,
        stock_code=req.stock_code,
        order_id=order_id,
        order_type=req.order_type,
        order_volume=req.order_volume,
        price_type=req.price_type,
        price=req.price,
        traded_volume=traded,
        traded_price=req.price if traded else 0.0,
        order_status=status,
    )


def fill(req: SubmitOrder, order_id: int, volume: int, n: int = 1) -> Trade:
    return Trade(
        account_id=req.account_id,
        stock_code=req.stock_code,
        order_type=req.order_type,
        traded_id=f"T{order_id}-{n}",
        traded_time=1_700_000_000,
        traded_price=req.price,
        traded_volume=volume,
        traded_amount=req.price * volume,
        order_id=order_id,
    )


class Venue:
    """A tiny scripted venue: numbers orders and lets each test choose what is pushed when."""

    def __init__(self) -> None:
        self.next_id = 100
        self.backend = MockBackend(self.handle)
        self.before_reply: Callable[[SubmitOrder, int], None] | None = None

    async def handle(self, req: Request) -> Reply:
        if isinstance(req, SubmitOrder):
            self.next_id += 1
            if self.before_reply is not None:
                self.before_reply(req, self.next_id)
            await anyio.sleep(0)
            return OrderResponse(account_id=req.account_id, order_id=self.next_id)
        if isinstance(req, CancelOrder):
            return CancelResponse(account_id=req.account_id, cancel_result=0, order_id=req.order_id)
        if isinstance(req, QueryAsset):
            return Asset(
                account_id=req.account_id,
                cash=1e6,
                frozen_cash=0.0,
                market_value=0.0,
                total_asset=1e6,
                fetch_balance=1e6,
            )
        if isinstance(req, QueryOrders):
            return Orders(items=[])
        if isinstance(req, QueryPositions):
            return Positions(
                items=[
                    Position(
                        account_id=req.account_id,
                        stock_code="600000.SH",
                        volume=300,
                        can_use_volume=300,
                        open_price=10.0,
                        market_value=3000.0,
                    )
                ]
            )
        return Ok()

    def push(self, item: Order | Trade | OrderError) -> AccountReport:
        return self.backend.push_item(ACCT, item)


async def test_buy_resolves_to_the_final_order_after_fills() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.sh", 300, 10.5)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        assert (req.stock_code, req.order_type, req.price_type) == (
            "600000.SH",
            OrderType.STOCK_BUY,
            PriceType.FIX_PRICE,
        )
        assert handle.order.order_status == OrderStatus.UNREPORTED
        assert not handle.done
        venue.push(order_report(req, handle.order_id, OrderStatus.REPORTED))
        venue.push(fill(req, handle.order_id, 100, 1))
        venue.push(order_report(req, handle.order_id, OrderStatus.PART_SUCC, 100))
        venue.push(fill(req, handle.order_id, 200, 2))
        venue.push(order_report(req, handle.order_id, OrderStatus.SUCCEEDED, 300))
        with anyio.fail_after(5):
            final = await handle
        assert final.order_status == OrderStatus.SUCCEEDED
        assert final.traded_volume == 300
        assert final.error is None
        assert [t.traded_volume for t in handle.trades] == [100, 200]


async def test_waiter_blocked_before_the_fill_wakes_on_terminal_status() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.sell("000001.SZ", 100, 12.0)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        result: list[Order] = []
        async with anyio.create_task_group() as tg:

            async def waiter() -> None:
                result.append(await handle.wait())

            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert result == []
            venue.push(order_report(req, handle.order_id, OrderStatus.CANCELED))
        assert result[0].order_status == OrderStatus.CANCELED


async def test_awaiting_a_final_handle_completes_without_suspending() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        venue.push(order_report(req, handle.order_id, OrderStatus.SUCCEEDED, 100))
        steps = handle.__await__()
        with pytest.raises(StopIteration) as done:
            next(steps)  # nothing to wait for: the order is the result at the first step
        assert done.value.value is handle.order
        assert done.value.value.order_status == OrderStatus.SUCCEEDED


async def test_awaiting_a_pending_handle_waits_for_its_final_state() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        result: list[Order] = []
        async with anyio.create_task_group() as tg:

            async def waiter() -> None:
                result.append(await handle)

            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert result == []
            venue.push(order_report(req, handle.order_id, OrderStatus.REPORTED))
            await anyio.wait_all_tasks_blocked()
            assert result == []  # not final yet: still waiting
            venue.push(order_report(req, handle.order_id, OrderStatus.SUCCEEDED, 100))
        assert [o.order_status for o in result] == [OrderStatus.SUCCEEDED]


async def test_push_before_reply_is_reconciled_by_order_id() -> None:
    venue = Venue()
    pushed: list[AccountReport] = []

    def push_first(req: SubmitOrder, order_id: int) -> None:
        pushed.append(venue.push(order_report(req, order_id, OrderStatus.REPORTED)))
        pushed.append(venue.push(fill(req, order_id, 100)))
        pushed.append(venue.push(order_report(req, order_id, OrderStatus.SUCCEEDED, 100)))

    venue.before_reply = push_first
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        assert handle.done
        with anyio.fail_after(5):
            final = await handle
        assert final.order_status == OrderStatus.SUCCEEDED
        events = [ev async for ev in handle.events()]
        assert events == [r.item for r in pushed]


async def test_reply_before_push_is_reconciled_by_order_id() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        seen: list[object] = []

        async def follow() -> None:
            async for ev in handle.events():
                seen.append(ev)

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.wait_all_tasks_blocked()
            venue.push(order_report(req, handle.order_id, OrderStatus.REPORTED))
            await anyio.wait_all_tasks_blocked()
            venue.push(order_report(req, handle.order_id, OrderStatus.SUCCEEDED, 100))
            await anyio.wait_all_tasks_blocked()
            assert len(seen) == 2  # final status, but its fill has not been pushed yet
            venue.push(fill(req, handle.order_id, 100))
        assert [type(e).__name__ for e in seen] == ["Order", "Order", "Trade"]


async def test_reports_of_other_orders_do_not_leak_into_a_handle() -> None:
    venue = Venue()

    def push_foreign(req: SubmitOrder, order_id: int) -> None:
        venue.push(order_report(req, 9_999, OrderStatus.REPORTED))  # someone else's order

    venue.before_reply = push_foreign
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        assert handle.order.order_status == OrderStatus.UNREPORTED
        assert acct._early == {}  # nothing kept once no submit is in flight


async def test_refused_order_resolves_as_junk_with_the_error() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 150, 10.0)  # odd lot: the venue's rule to judge
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        venue.push(order_report(req, handle.order_id, OrderStatus.JUNK))
        venue.push(
            OrderError(account_id=ACCT, order_id=handle.order_id, error_id=-61, error_msg="lots")
        )
        final = await handle
        assert final.order_status == OrderStatus.JUNK
        assert final.error is not None and final.error.error_msg == "lots"
        assert handle.error is final.error


async def test_order_error_alone_makes_the_handle_final() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        venue.push(OrderError(account_id=ACCT, order_id=handle.order_id, error_msg="no cash"))
        final = await handle
        assert final.order_status == OrderStatus.JUNK
        assert final.status_msg == "no cash"


async def test_negative_order_id_reply_is_a_rejected_handle() -> None:
    def handler(req: Request) -> Reply:
        if isinstance(req, SubmitOrder):
            return OrderResponse(account_id=req.account_id, order_id=-1, error_msg="refused")
        return Ok()

    async with qmtkit.connect(backend=MockBackend(handler)) as qk:
        acct = await qk.account(ACCT)
        final = await (await acct.buy("600000.SH", 100, 10.0))
        assert final.order_status == OrderStatus.JUNK
        assert final.error is not None and final.error.error_msg == "refused"


async def test_buy_without_price_is_a_latest_price_order() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        await acct.buy("600000.SH", 100)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        assert req.price_type == PriceType.LATEST_PRICE


async def test_sell_with_a_price_is_a_limit_sell() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        await acct.sell("000001.sz", 200, 12.5, strategy_name="s", remark="r")
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        assert (req.stock_code, req.order_type, req.order_volume) == (
            "000001.SZ",
            OrderType.STOCK_SELL,
            200,
        )
        assert (req.price_type, req.price) == (PriceType.FIX_PRICE, 12.5)
        assert (req.strategy_name, req.order_remark) == ("s", "r")


async def test_order_passes_xtquant_parameters_through() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        await acct.order("000001.SZ", 24, 200, 11, 9.87, "strat", "remark")
        req = venue.backend.sent(SubmitOrder)[0]
        assert req == SubmitOrder(
            account_id=ACCT,
            stock_code="000001.SZ",
            order_type=24,
            order_volume=200,
            price_type=11,
            price=9.87,
            strategy_name="strat",
            order_remark="remark",
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"code": "600000"}, InvalidCode, "'600000'"),
        ({"code": "abc.SH"}, InvalidCode, "'abc.SH'"),
        ({"code": 600000}, InvalidCode, "600000"),
        ({"volume": 0}, InvalidArgument, "0"),
        ({"volume": -100}, InvalidArgument, "-100"),
        ({"volume": 100.0}, InvalidArgument, "100.0"),
        ({"volume": True}, InvalidArgument, "True"),
        ({"price": math.nan}, InvalidArgument, "nan"),
        ({"price": math.inf}, InvalidArgument, "inf"),
        ({"price": -1.0}, InvalidArgument, "-1.0"),
        ({"price": 0}, InvalidArgument, "0"),
        ({"price": "10"}, InvalidArgument, "'10'"),
        ({"price_type": 999}, InvalidArgument, "999"),
        ({"price_type": PriceType.FIX_PRICE, "price": None}, InvalidArgument, "FIX_PRICE"),
        ({"strategy_name": 5}, InvalidArgument, "5"),
    ],
)
async def test_bad_order_arguments_raise_naming_the_value_and_send_nothing(
    kwargs: dict[str, object], error: type[Exception], named: str
) -> None:
    venue = Venue()
    args: dict[str, object] = {"code": "600000.SH", "volume": 100, "price": 10.0}
    args.update(kwargs)
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        with pytest.raises(error) as info:
            await acct.buy(**args)  # type: ignore[arg-type]
        assert named in str(info.value)
        assert venue.backend.sent(SubmitOrder) == []


@pytest.mark.parametrize("order_type", [0, 22, 25, "23", None])
async def test_unknown_order_type_is_refused(order_type: object) -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        with pytest.raises(InvalidArgument, match="order_type"):
            await acct.order("600000.SH", order_type, 100, 11, 10.0)  # type: ignore[arg-type]
        assert venue.backend.sent(SubmitOrder) == []


async def test_cancel_by_handle_and_by_id() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        resp = await handle.cancel()
        assert resp.cancel_result == 0 and resp.order_id == handle.order_id
        await acct.cancel(handle.order_id)
        sent = venue.backend.sent(CancelOrder)
        assert [c.order_id for c in sent] == [handle.order_id, handle.order_id]  # type: ignore[attr-defined]
        with pytest.raises(InvalidArgument, match="-5"):
            await acct.cancel(-5)
        assert len(venue.backend.sent(CancelOrder)) == 2


async def test_queries_return_models() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        assert (await acct.asset()).cash == 1e6
        assert await acct.orders() == []
        pos = await acct.position("600000.sh")
        assert pos is not None and pos.volume == 300
        assert await acct.position("000001.SZ") is None


async def test_backend_failures_come_back_as_qmtkit_errors() -> None:
    def handler(req: Request) -> Reply:
        if isinstance(req, QueryAsset):
            raise RuntimeError("socket exploded")
        if isinstance(req, QueryOrders):
            raise Unsupported("no orders here")
        return Ok()

    async with qmtkit.connect(backend=MockBackend(handler)) as qk:
        acct = await qk.account(ACCT)
        with pytest.raises(BackendError, match="socket exploded"):
            await acct.asset()
        with pytest.raises(Unsupported, match="no orders here"):
            await acct.orders()
        with pytest.raises(BackendError, match="OrderResponse"):
            await acct.buy("600000.SH", 100, 10.0)  # Ok is not an order answer


async def test_every_report_consumer_sees_every_report_in_order() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        got: list[list[int]] = [[], [], []]

        async def consume(i: int) -> None:
            async with acct.reports() as reports:
                async for r in reports:
                    got[i].append(r.seq)
                    if r.seq == 10_000:
                        return

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(consume, i)
            await anyio.wait_all_tasks_blocked()
            req = SubmitOrder(ACCT, "600000.SH", 23, 100, 11, 10.0)
            for n in range(10_000):
                venue.push(order_report(req, n + 1, OrderStatus.REPORTED))
        assert got == [list(range(1, 10_001))] * 3
        assert acct.report_consumers == 0


async def test_replayed_reports_are_not_delivered_twice() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        async with acct.reports() as reports:
            req = SubmitOrder(ACCT, "600000.SH", 23, 100, 11, 10.0)
            first = venue.push(order_report(req, 1, OrderStatus.REPORTED))
            venue.backend.push_report(first)  # a resend after a reconnect
            second = venue.push(order_report(req, 1, OrderStatus.CANCELED))
            assert [await reports.__anext__(), await reports.__anext__()] == [first, second]
            assert reports.pending == 0


async def test_account_is_opened_once_and_reused() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        a = await qk.account(ACCT)
        b = await qk.account(ACCT)
        assert a is b
        assert len(venue.backend.sent(OpenAccount)) == 1
        with pytest.raises(InvalidArgument, match="''"):
            await qk.account("")
        with pytest.raises(InvalidArgument, match="99"):
            await qk.account("x", 99)
        assert len(venue.backend.sent(OpenAccount)) == 1


async def test_seq_is_sent_and_checked() -> None:
    def handler(req: Request) -> Reply:
        if isinstance(req, SubmitOrder):
            return OrderResponse(account_id=req.account_id, order_id=5, seq=req.seq)
        return Ok()

    backend = MockBackend(handler)
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.order("600000.SH", 23, 100, 11, 10.0, seq=42)
        assert handle.response.seq == 42
        with pytest.raises(InvalidArgument, match="-1"):
            await acct.order("600000.SH", 23, 100, 11, 10.0, seq=-1)
        assert len(backend.sent(SubmitOrder)) == 1


async def test_junk_order_without_order_error_carries_its_status_message() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        handle = await acct.buy("600000.SH", 100, 10.0)
        req = venue.backend.sent(SubmitOrder)[0]
        assert isinstance(req, SubmitOrder)
        junk = msgspec.structs.replace(
            order_report(req, handle.order_id, OrderStatus.JUNK), status_msg="price off tick"
        )
        venue.push(junk)
        final = await handle
        assert final.error is not None and final.error.error_msg == "price off tick"
        venue.push(OrderError(account_id=ACCT, order_id=handle.order_id, error_msg="real reason"))
        assert handle.order.error is not None
        assert handle.order.error.error_msg == "real reason"


async def test_a_handle_no_one_holds_any_more_is_forgotten() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        kept = await acct.buy("600000.SH", 100, 10.5)
        dropped = await acct.buy("600000.SH", 100, 10.5)
        dropped_id = dropped.order_id
        assert acct.handle(dropped_id) is dropped
        del dropped
        gc.collect()
        assert acct.handle(dropped_id) is None
        assert acct.handle(kept.order_id) is kept
        # A report of the forgotten order reaches no handle and harms nothing.
        req = venue.backend.sent(SubmitOrder)[1]
        assert isinstance(req, SubmitOrder)
        venue.push(order_report(req, dropped_id, OrderStatus.SUCCEEDED, 100))
        assert not kept.done


async def test_order_at_once_places_an_order_the_simulator_answers_at_once(
    tmp_path: Path,
) -> None:
    async with qmtkit.connect("sim://?share=0", home=tmp_path) as qk:
        acct = await qk.account(ACCT)
        detail = await qk.instrument("600000.SH")
        assert detail is not None
        handle = acct.order_at_once("600000.SH", 23, 100, 11, detail.UpStopPrice)
        assert handle is not None and handle.done  # placed, filled and reported, no await
        assert handle.order.order_status == OrderStatus.SUCCEEDED
        assert handle.traded_volume == 100
        assert acct.handle(handle.order_id) is handle


async def test_order_at_once_sends_nothing_to_a_venue_that_answers_later() -> None:
    venue = Venue()
    async with qmtkit.connect(backend=venue.backend) as qk:
        acct = await qk.account(ACCT)
        assert acct.order_at_once("600000.SH", 23, 100, 11, 10.0) is None
        assert venue.next_id == 100  # nothing was placed
        with pytest.raises(InvalidArgument, match="order_volume"):
            acct.order_at_once("600000.SH", 23, 0, 11, 10.0)  # checked as order() checks


async def test_buy_asks_a_venue_that_answers_at_once_without_its_async_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qmtkit.backends.sim import SimBackend

    asked: list[str] = []
    real = SimBackend.request

    async def request(self: SimBackend, req: Request) -> Reply:
        asked.append(type(req).__name__)
        return await real(self, req)

    monkeypatch.setattr(SimBackend, "request", request)
    async with qmtkit.connect("sim://?share=0", home=tmp_path) as qk:
        acct = await qk.account(ACCT)
        detail = await qk.instrument("600000.SH")
        assert detail is not None
        handle = await acct.buy("600000.SH", 100, detail.UpStopPrice)
        assert handle.done and handle.order.order_status == OrderStatus.SUCCEEDED
        assert "SubmitOrder" not in asked  # answered by request_now, with the same reports
        assert [type(e).__name__ async for e in handle.events()] == ["Order", "Trade", "Order"]
        assert handle.traded_volume == 100
