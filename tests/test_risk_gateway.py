"""A gateway enforces an account's risk limits across all of its clients, at the venue's side."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import qmtkit
from qmtkit.backends.base import OpenAccount, Reply, Request, SubmitOrder
from qmtkit.constants import OrderStatus
from qmtkit.models import OrderResponse
from qmtkit.risk import RISK_ERROR_BASE, RULES, RiskLimits
from qmtkit.risk.config import RiskConfig, save_config
from qmtkit.risk.guard import RiskGuard
from qmtkit.wire.protocol import Call, Result
from support.gateway import FakeVenue, RawClient, order_item, remote_for, running_gateway

ACCT = "shared"


class Clock:
    def __init__(self) -> None:
        self.ms = 1_796_000_000_000

    def __call__(self) -> int:
        return self.ms


async def test_two_gateway_clients_share_one_per_second_budget(tmp_path: Path) -> None:
    venue = FakeVenue()
    clock = Clock()
    config = RiskConfig(accounts={ACCT: RiskLimits(max_orders_per_second=3)})
    guard = RiskGuard(venue, config, home=tmp_path, clock=clock)
    async with (
        running_gateway(guard, tmp_path) as gw,
        qmtkit.connect(backend=remote_for(gw), home=tmp_path, risk=False) as a,
        qmtkit.connect(backend=remote_for(gw), home=tmp_path, risk=False) as b,
    ):
        acct_a, acct_b = await a.account(ACCT), await b.account(ACCT)
        assert (await acct_a.buy("600000.SH", 100, 10.0)).order_id > 0
        assert (await acct_a.buy("600000.SH", 100, 10.01)).order_id > 0
        assert (await acct_b.buy("600000.SH", 100, 10.02)).order_id > 0
        refused = await acct_b.buy("600000.SH", 100, 10.03)
        assert refused.order.order_status == OrderStatus.JUNK
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_orders_per_second:")
        assert refused.error.error_id == RISK_ERROR_BASE + RULES.index("max_orders_per_second")
        also_refused = await acct_a.buy("600000.SH", 100, 10.04)
        assert also_refused.error is not None
        clock.ms += 1000
        assert (await acct_b.buy("600000.SH", 100, 10.05)).order_id > 0
    assert len([r for r in venue.requests if isinstance(r, SubmitOrder)]) == 4


async def test_a_gateway_follows_risk_toml_in_its_home(tmp_path: Path) -> None:
    save_config(RiskConfig(default=RiskLimits(max_order_volume=500)), tmp_path)
    venue = FakeVenue()
    async with (
        running_gateway(venue, tmp_path, home=tmp_path) as gw,
        qmtkit.connect(backend=remote_for(gw), risk=False) as qk,
    ):
        acct = await qk.account(ACCT)
        refused = await acct.buy("600000.SH", 600, 10.0)
        assert refused.error is not None
        assert refused.error.error_msg.startswith("risk:max_order_volume:")
        assert (await acct.buy("600000.SH", 500, 10.0)).order_id > 0
    assert [r.order_volume for r in venue.requests if isinstance(r, SubmitOrder)] == [500]


class InstantVenue(FakeVenue):
    """Places orders without waiting (``request_now``), noting the task each was placed from;
    with ``at_once`` False it leaves every order to ``request``."""

    def __init__(self, *, at_once: bool = True) -> None:
        super().__init__()
        self.at_once = at_once
        self.placed_in: list[asyncio.Task[Any] | None] = []

    def request_now(self, req: Request) -> Reply | None:
        if type(req) is not SubmitOrder or not self.at_once:
            return None
        self.placed_in.append(asyncio.current_task())
        order_id = self.next_order
        self.next_order += 1
        self.emit(req.account_id, order_item(req.account_id, order_id))
        return OrderResponse(account_id=req.account_id, order_id=order_id, seq=req.seq)


async def _raw_client(gw: Any) -> RawClient:
    client = await RawClient.connect(gw)
    await client.recv()  # Welcome
    await client.send(Call(1, OpenAccount(ACCT)))
    await client.recv_until(Result)
    return client


def _buy(call_id: int, price: float) -> Call:
    return Call(call_id, SubmitOrder(ACCT, "600000.SH", 23, 100, 11, price))


async def test_the_guard_judges_and_answers_an_order_in_the_gateways_read_callback(
    tmp_path: Path,
) -> None:
    venue = InstantVenue()
    config = RiskConfig(accounts={ACCT: RiskLimits(max_orders_per_day=1)})
    guard = RiskGuard(venue, config, home=tmp_path, clock=Clock())
    async with running_gateway(guard, tmp_path) as gw:
        client = await _raw_client(gw)
        await client.send(_buy(2, 10.0))
        placed = await client.recv_until(Result)
        await client.send(_buy(3, 10.01))
        refused = await client.recv_until(Result)
        await client.aclose()
    assert venue.placed_in == [None]  # outside any task: in the loop's read callback
    assert isinstance(placed.reply, OrderResponse) and placed.reply.order_id == 1
    assert isinstance(refused.reply, OrderResponse) and refused.reply.order_id == -1
    assert refused.reply.error_msg.startswith("risk:max_orders_per_day:")
    assert not any(isinstance(r, SubmitOrder) for r in venue.requests)


async def test_an_order_the_venue_does_not_answer_at_once_is_counted_once(
    tmp_path: Path,
) -> None:
    venue = InstantVenue(at_once=False)
    config = RiskConfig(accounts={ACCT: RiskLimits(max_orders_per_day=2, max_orders_per_second=2)})
    guard = RiskGuard(venue, config, home=tmp_path, clock=Clock())
    async with running_gateway(guard, tmp_path) as gw:
        client = await _raw_client(gw)
        replies = []
        for call_id, price in ((2, 10.0), (3, 10.01), (4, 10.02)):
            await client.send(_buy(call_id, price))
            replies.append((await client.recv_until(Result)).reply)
        await client.aclose()
    assert [r.order_id for r in replies] == [1, 2, -1]  # type: ignore[union-attr]
    assert replies[2].error_msg.startswith("risk:max_orders_per_day:")  # type: ignore[union-attr]
    assert venue.placed_in == []
    engine = guard.engine(ACCT)
    assert engine is not None and engine.flow.orders == 2
