"""paper+xtquant://: the local paper broker over xtquant's quotes, on Linux through the fake.

The fake xtquant (tests/fake_xtquant, its signatures pinned to the real package) plays MiniQMT:
its ``xtdata`` serves the snapshot and pushes ticks; its terminal records every account call a
trader makes, which proves that paper orders, cancels and queries never reach it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import anyio

import qmtkit
from qmtkit.constants import OrderStatus

CODE = "600000.SH"
D0 = 1704155400000  # 2024-01-02 08:30 Beijing time: only the book matters to the paper broker


def book(ask: float, bid: float, last: float) -> dict[str, object]:
    """A MiniQMT tick dict: five levels, volumes in lots of 100."""
    return {
        "time": D0,
        "lastPrice": last,
        "open": 10.0,
        "high": 10.3,
        "low": 9.9,
        "lastClose": 10.0,
        "amount": 1e6,
        "volume": 1000,
        "askPrice": [round(ask + i * 0.01, 2) for i in range(5)],
        "askVol": [2, 2, 2, 2, 2],
        "bidPrice": [round(bid - i * 0.01, 2) for i in range(5)],
        "bidVol": [2, 2, 2, 2, 2],
    }


def paper_url(tmp_path: Path) -> str:
    return (
        f"paper+xtquant://{tmp_path / 'userdata_mini'}?session=5151&paper_home={tmp_path / 'paper'}"
    )


async def test_paper_orders_fill_against_xtquants_quotes_and_never_reach_its_trader(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.xtdata.FULL_TICK[CODE] = book(ask=10.21, bid=10.20, last=10.20)
    async with qmtkit.connect(paper_url(tmp_path)) as qk:
        assert qk.info.kind == "paper"
        account = await qk.account("paper-xt")
        # At once against the snapshot: 2 lots at 10.21 (the fake's lots are 100 shares).
        now = await (await account.buy(CODE, 200, 10.21))
        # Below the ask: it rests until a pushed tick offers 10.15.
        resting = await account.buy(CODE, 200, 10.15)
        waiting = await account.buy(CODE, 100, 10.00)
        assert resting.order.order_status == OrderStatus.REPORTED
        xt.xtdata.push_quote(CODE, "tick", book(ask=10.15, bid=10.14, last=10.15)).result()
        with anyio.fail_after(5):
            filled = await resting
        cancelled = await account.cancel(waiting)
        positions = await account.positions()
        asset = await account.asset()
    assert (now.order_status, now.traded_price) == (OrderStatus.SUCCEEDED, 10.21)
    assert (filled.order_status, filled.traded_price) == (OrderStatus.SUCCEEDED, 10.15)
    assert cancelled.cancel_result == 0
    assert [(p.stock_code, p.volume, p.can_use_volume) for p in positions] == [(CODE, 400, 0)]
    assert asset.cash < 1_000_000 - 200 * 10.21 - 200 * 10.15
    # The fake's trader connected (the source is xtquant) but was asked nothing about accounts.
    assert xt.terminal.connect_log and xt.terminal.account_calls == []
    assert xt.terminal.placed == [] and xt.terminal.orders == {}
    calls = {name for name, _ in xt.xtdata.CALLS}
    assert {"get_full_tick", "subscribe_whole_quote"} <= calls  # quotes came from xtdata


async def test_a_paper_account_over_xtquant_is_journaled_locally(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.xtdata.FULL_TICK[CODE] = book(ask=10.21, bid=10.20, last=10.20)
    async with qmtkit.connect(paper_url(tmp_path)) as qk:
        await (await (await qk.account("paper-xt")).buy(CODE, 100, 10.21))
    async with qmtkit.connect(paper_url(tmp_path).replace("5151", "5152")) as qk:
        held = await (await qk.account("paper-xt")).position(CODE)
    assert held is not None and held.volume == 100
    assert (tmp_path / "paper" / "paper" / "default" / "journal.bin").stat().st_size > 0
    assert xt.terminal.account_calls == []
