"""Only an explicit act opens a paper account; a request naming any other account is refused.

On MiniQMT an order on an account the terminal does not hold fails. The paper venues (the
simulator, a backtest, paper trading) behave the same at the seam: ``OpenAccount`` (what
``qk.account()`` and the shim's ``subscribe`` send) creates an account, and every other account
request on an unknown id raises ``UnknownAccount`` naming it, creates nothing and journals
nothing, however the request arrives (the async API's raw ``request``, or a hand-written
gateway client).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import qmtkit
from qmtkit import Client
from qmtkit.backends.base import (
    AccountInfos,
    CancelOrder,
    CancelOrderSysid,
    QueryAccountInfos,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    QueryTrades,
    Request,
    SubmitOrder,
)
from qmtkit.backends.paper import PaperBackend
from qmtkit.backends.sim import SimBackend
from qmtkit.constants import OrderType, PriceType
from qmtkit.data.cache import Cache
from qmtkit.errors import UnknownAccount
from qmtkit.wire.protocol import Call, Failure, Result
from support.gateway import RawClient, running_gateway
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars

TYPO = "88800012345"  # one digit more than the account that was meant
HELD = "8880001234"


def _order(account_id: str = TYPO) -> SubmitOrder:
    return SubmitOrder(account_id, A, int(OrderType.STOCK_BUY), 100, int(PriceType.FIX_PRICE), 10.0)


ACCOUNT_REQUESTS: list[Request] = [
    _order(),
    CancelOrder(TYPO, 1),
    CancelOrderSysid(TYPO, 0, "1"),
    QueryAsset(TYPO),
    QueryOrders(TYPO),
    QueryTrades(TYPO),
    QueryPositions(TYPO),
]


@asynccontextmanager
async def paper_venue(kind: str, tmp_path: Path) -> AsyncIterator[Client]:
    """A client on one of the three paper venues, holding the account ``HELD`` only."""
    if kind == "backtest":
        Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
        url = f"backtest://?start=20240102&end=20240109&codes={A},{B}"
        cm = qmtkit.connect(url, home=tmp_path)
    elif kind == "paper":
        source = SimBackend(home=tmp_path / "source")
        cm = qmtkit.connect(backend=PaperBackend(source, home=tmp_path / "paper"))
    else:
        cm = qmtkit.connect("sim://?terminal=private", home=tmp_path)
    async with cm as qk:
        await qk.account(HELD)
        yield qk


@pytest.mark.parametrize("kind", ["sim", "backtest", "paper"])
@pytest.mark.parametrize("req", ACCOUNT_REQUESTS, ids=lambda r: type(r).__name__)
async def test_an_account_request_on_an_unknown_account_is_refused_and_creates_nothing(
    kind: str, req: Request, tmp_path: Path
) -> None:
    async with paper_venue(kind, tmp_path) as qk:
        with pytest.raises(UnknownAccount, match=rf"'{TYPO}'.*holds '{HELD}'.*qk\.account"):
            await qk.request(req)
        assert [i.account_id for i in await qk.account_infos()] == [HELD]


@pytest.mark.parametrize("kind", ["sim", "backtest", "paper"])
async def test_opening_the_account_explicitly_is_what_creates_it(kind: str, tmp_path: Path) -> None:
    async with paper_venue(kind, tmp_path) as qk:
        account = await qk.account(TYPO)
        assert (await account.asset()).cash == 1_000_000.0
        assert sorted(i.account_id for i in await qk.account_infos()) == [HELD, TYPO]


async def test_a_refused_order_on_the_simulator_leaves_its_journal_untouched(
    tmp_path: Path,
) -> None:
    async with paper_venue("sim", tmp_path) as qk:
        journal = next(tmp_path.glob("sim/*/journal.bin"))
        size = journal.stat().st_size
        for _ in range(3):
            with pytest.raises(UnknownAccount):
                await qk.request(_order())
        assert journal.stat().st_size == size
    async with paper_venue("sim", tmp_path) as qk:
        assert [i.account_id for i in await qk.account_infos()] == [HELD]


async def test_a_hand_written_gateway_client_gets_the_refusal_by_name(tmp_path: Path) -> None:
    async with running_gateway(SimBackend(home=tmp_path / "venue"), tmp_path) as gw:
        raw = await RawClient.connect(gw)
        try:
            await raw.send(Call(1, _order()))
            refusal = await raw.recv_until(Failure)
            await raw.send(Call(2, QueryAccountInfos()))
            held = await raw.recv_until(Result)
        finally:
            await raw.aclose()
    assert refusal.id == 1 and refusal.error == "UnknownAccount"
    assert f"unknown account '{TYPO}'" in refusal.message
    assert isinstance(held.reply, AccountInfos) and held.reply.items == []
