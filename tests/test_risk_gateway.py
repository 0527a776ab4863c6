"""A gateway enforces an account's risk limits across all of its clients, at the venue's side."""

from __future__ import annotations

from pathlib import Path

import qmtkit
from qmtkit.backends.base import SubmitOrder
from qmtkit.constants import OrderStatus
from qmtkit.risk import RISK_ERROR_BASE, RULES, RiskLimits
from qmtkit.risk.config import RiskConfig, save_config
from qmtkit.risk.guard import RiskGuard
from support.gateway import FakeVenue, remote_for, running_gateway

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
