"""paper+qmtkit://: a local paper broker matching against a gateway's live quotes.

The gateway serves the simulator as the quote source; a recorder between them proves that no
account request (order, cancel, query) ever reaches the remote venue.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import qmtkit
from qmtkit.backends.base import (
    BackendInfo,
    CancelOrder,
    EventSink,
    OpenAccount,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    Reply,
    Request,
    SubmitOrder,
)
from qmtkit.backends.paper import PaperBackend, split_url
from qmtkit.backends.sim import SimBackend
from qmtkit.constants import OrderStatus
from qmtkit.errors import InvalidArgument
from support.gateway import TOKEN, running_gateway

CODE = "600000.SH"
ACCOUNT_REQUESTS = (SubmitOrder, CancelOrder, OpenAccount, QueryAsset, QueryOrders, QueryPositions)


class Recording:
    """The simulator, noting the type of every request it is asked."""

    def __init__(self, inner: SimBackend) -> None:
        self.inner = inner
        self.seen: list[type] = []

    def open(self, sink: EventSink) -> AbstractAsyncContextManager[BackendInfo]:
        return self.inner.open(sink)

    async def request(self, req: Request) -> Reply:
        self.seen.append(type(req))
        return await self.inner.request(req)


async def test_orders_fill_locally_against_live_quotes_and_never_reach_the_venue(
    tmp_path: Path,
) -> None:
    venue = Recording(SimBackend(home=tmp_path / "venue"))
    async with running_gateway(venue, tmp_path) as gw:
        port = gw.address[1]
        url = (
            f"paper+qmtkit://127.0.0.1:{port}?token={TOKEN}"
            f"&paper_home={tmp_path / 'paper'}&paper_book=shares"
        )
        async with qmtkit.connect(url) as qk:
            assert qk.info.kind == "paper"
            account = await qk.account("paper-1")
            ask = (await qk.snapshot([CODE]))[CODE].askPrice[0]
            final = await (await account.buy(CODE, 200, ask))
            positions = await account.positions()
            cash = (await account.asset()).cash
    assert final.order_status == OrderStatus.SUCCEEDED
    assert [(p.stock_code, p.volume) for p in positions] == [(CODE, 200)]
    assert cash < 1_000_000 - 200 * ask + 1
    assert not [t for t in venue.seen if issubclass(t, ACCOUNT_REQUESTS)]
    assert (tmp_path / "paper" / "paper" / "default" / "journal.bin").stat().st_size > 0


async def test_paper_accounts_survive_a_restart_from_their_local_journal(
    tmp_path: Path,
) -> None:
    venue = SimBackend(home=tmp_path / "venue")
    async with running_gateway(venue, tmp_path) as gw:
        url = (
            f"paper+qmtkit://127.0.0.1:{gw.address[1]}?token={TOKEN}"
            f"&paper_home={tmp_path / 'paper'}&paper_book=shares"
        )
        async with qmtkit.connect(url) as qk:
            account = await qk.account("paper-1")
            ask = (await qk.snapshot([CODE]))[CODE].askPrice[0]
            await (await account.buy(CODE, 100, ask))
        async with qmtkit.connect(url) as qk:
            held = await (await qk.account("paper-1")).position(CODE)
    assert held is not None and held.volume == 100


def test_paper_urls_keep_their_options_away_from_the_source() -> None:
    source, options = split_url("paper+qmtkit://h:1?token=T&paper_cash=5&paper_book=shares")
    assert source == "qmtkit://h:1?token=T"
    assert options == {"paper_cash": "5", "paper_book": "shares"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("qmtkit://h:1", "not a paper URL"),
        ("paper+backtest://?start=20240102", "live backend"),
        ("paper+sim://?paper_cash=-1", "paper_cash"),
        ("paper+sim://?paper_book=bags", "paper_book"),
    ],
)
def test_bad_paper_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        PaperBackend.from_url(url)
