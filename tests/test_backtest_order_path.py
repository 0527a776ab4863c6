"""A per-bar strategy's orders in a backtest: answered at once from its task, same results."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmtkit.backends.replay.backend import ReplayBackend
from qmtkit.backtest.runner import run_backtest
from qmtkit.client import Account, Client, OrderHandle
from qmtkit.data.cache import Cache
from qmtkit.models import Order
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars

URL = f"backtest://?start=20240102&end=20240109&codes={A},{B}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
    return tmp_path


async def test_an_order_from_a_task_is_answered_without_the_request_path(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[object] = []
    original = ReplayBackend.request

    async def request(self: ReplayBackend, req: object) -> object:
        asked.append(req)
        return await original(self, req)  # type: ignore[arg-type]

    monkeypatch.setattr(ReplayBackend, "request", request)
    seen: list[Order] = []

    async def strategy(qk: Client, account: Account) -> None:
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                handle = await account.buy(A, 100, 11.0)
                seen.append(await handle)
                return

    result = await run_backtest(URL, strategy, home=home)
    assert not [r for r in asked if type(r).__name__ == "SubmitOrder"]
    assert seen and seen[0].traded_volume == 100  # filled at the next open, in virtual time
    assert result.trades.height == 1


async def test_an_order_from_outside_a_task_still_goes_the_ordinary_way(home: Path) -> None:
    placed: list[object] = []

    async def strategy(qk: Client, account: Account) -> None:
        async with qk.subscribe([A], "1d") as sub:
            async for _ in sub:
                # The shim's at-once path (a thread lent the loop): a backtest answers None.
                placed.append(account.order_at_once(A, 23, 100, 11, 11.0))
                return

    await run_backtest(URL, strategy, home=home)
    assert placed == [None]


async def test_reports_of_dropped_handles_move_the_cursor_and_kept_handles_hear_them(
    home: Path,
) -> None:
    backends: list[ReplayBackend] = []
    kept: list[object] = []
    seqs: list[tuple[int, int]] = []

    async def strategy(qk: Client, account: Account) -> None:
        async with qk.subscribe([A, B], "1d") as sub:
            i = 0
            async for _ in sub:
                if i == 0:
                    await account.buy(B, 100, 10.5)  # its handle dropped at once
                    kept.append(await account.buy(A, 100, 11.0))  # this one kept
                elif i == 1:
                    await account.buy(B, 100, 10.5)
                elif i == 2:
                    venue = backends[0].accounts.last_seq["backtest"]
                    seqs.append((account.last_seq, venue))
                    # A replay of reports already delivered moves nothing back.
                    log = backends[0].accounts.reports["backtest"]
                    account._on_reports(log[:2])
                    seqs.append((account.last_seq, venue))
                i += 1

    result = await run_backtest(URL, strategy, home=home, backend_hook=backends.append)
    assert result.trades.height == 3
    (handle,) = kept
    assert isinstance(handle, OrderHandle)
    # Filled at the next open with nobody awaiting it: routed to the handle all the same.
    assert handle.done and handle.order.traded_volume == 100 and len(handle.trades) == 1
    assert seqs[0][0] == seqs[0][1] > 0 and seqs[1] == seqs[0]
