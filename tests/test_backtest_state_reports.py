"""A backtest makes an account's Asset and Position reports only while the client reads them.

Nobody reading the account's stream (no consumer, no listener), the replay's broker makes
none (``ReplayBackend.follow_state``): the results must be those of a run where every report
is made, and a reader that comes later must get every cash and holding change from then on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from qmtkit.backends.replay.backend import ReplayBackend
from qmtkit.backtest.results import BacktestResult
from qmtkit.backtest.runner import run_backtest
from qmtkit.client import Account, Client
from qmtkit.data.cache import Cache
from qmtkit.models import AccountReport, Asset, Position, Trade
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars

URL = f"backtest://?start=20240102&end=20240109&codes={A},{B}"
_STATE = (Asset, Position)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
    return tmp_path


async def _trade_day(i: int, account: Account) -> None:
    """Orders of day ``i`` (0-based): buy A, sell it back after T+1, buy B, sell half of it."""
    if i == 0:
        await account.buy(A, 300, 11.4)
    elif i == 2:
        await account.sell(A, 300, 10.1)
    elif i == 3:
        await account.buy(B, 400, 10.5)
    elif i == 4:
        await account.sell(B, 200, 9.5)


Strategy = Callable[[Client, Account], Awaitable[None]]


def _plain(watch: Callable[[Account], object] | None = None) -> Strategy:
    async def strategy(qk: Client, account: Account) -> None:
        if watch is not None:
            watch(account)
        async with qk.subscribe([A, B], "1d") as bars:
            i = 0
            async for _ in bars:
                await _trade_day(i, account)
                i += 1

    return strategy


async def _run(
    home: Path, strategy: Strategy, *, hook: bool = True
) -> tuple[BacktestResult, list[AccountReport]]:
    backends: list[ReplayBackend] = []

    def keep(backend: ReplayBackend) -> None:
        backends.append(backend)
        if not hook:
            backend.follow_state = None  # type: ignore[assignment,method-assign]

    result = await run_backtest(URL, strategy, home=home, backend_hook=keep)
    return result, list(backends[0].accounts.reports["backtest"])


def _same(a: BacktestResult, b: BacktestResult) -> None:
    assert a.digest() == b.digest()
    for name in ("orders", "trades", "positions", "equity"):
        assert getattr(a, name).equals(getattr(b, name)), name


async def test_nobody_reading_makes_no_state_reports_and_the_same_result(home: Path) -> None:
    quiet, quiet_log = await _run(home, _plain())
    full, full_log = await _run(home, _plain(), hook=False)
    _same(quiet, full)
    assert quiet.trades.height == 4
    # Only the opening Asset report; the orders and fills are all there.
    assert [type(r.item) for r in quiet_log if isinstance(r.item, _STATE)] == [Asset]
    assert sum(isinstance(r.item, Trade) for r in quiet_log) == 4
    assert sum(isinstance(r.item, _STATE) for r in full_log) > 8
    # The same orders and fills, in the same order, with or without the state reports.
    assert [r.item for r in quiet_log if not isinstance(r.item, _STATE)] == [
        r.item for r in full_log if not isinstance(r.item, _STATE)
    ]


async def test_a_reader_for_the_whole_run_gets_every_state_report(home: Path) -> None:
    seen: list[AccountReport] = []

    async def strategy(qk: Client, account: Account) -> None:
        stream = account.reports()
        async with qk.subscribe([A, B], "1d") as bars:
            i = 0
            async for _ in bars:
                await _trade_day(i, account)
                i += 1
                while (report := stream.get_nowait()) is not None:
                    seen.append(report)

    read, read_log = await _run(home, strategy)
    full, full_log = await _run(home, _plain(), hook=False)
    _same(read, full)
    # Everything the venue made once the stream was there, with the state reports in place.
    assert [r.item for r in read_log] == [r.item for r in full_log]
    assert [r.item for r in seen] == [r.item for r in read_log[-len(seen) :]]
    assert any(isinstance(r.item, Position) for r in seen)


async def test_a_reader_that_comes_and_goes_gets_the_changes_while_it_is_there(
    home: Path,
) -> None:
    seen: list[AccountReport] = []
    held: list[int] = []

    async def strategy(qk: Client, account: Account) -> None:
        async with qk.subscribe([A, B], "1d") as bars:
            i = 0
            async for _ in bars:
                if i == 3:
                    # From day 3's close to day 4's: B is bought and fills at day 4's open.
                    async with account.reports() as stream:
                        await _trade_day(i, account)
                        async for report in stream:
                            seen.append(report)
                            if isinstance(report.item, Trade):
                                break
                        while (rest := stream.get_nowait()) is not None:
                            seen.append(rest)
                    position = await account.position(B)
                    held.append(position.volume if position else 0)
                else:
                    await _trade_day(i, account)
                i += 1

    result, log = await _run(home, strategy)
    full, _ = await _run(home, _plain(), hook=False)
    _same(result, full)
    kinds = [type(r.item).__name__ for r in seen]
    assert kinds[0] == "Order" and "Asset" in kinds and "Position" in kinds
    last_position = [r.item for r in seen if isinstance(r.item, Position)][-1]
    assert last_position.stock_code == B and last_position.volume == held[0] == 400
    # Before the reader came and after it left: orders and fills only.
    first, last = seen[0].seq, seen[-1].seq
    outside = [r for r in log[1:] if not first <= r.seq <= last]
    assert outside and not [r for r in outside if isinstance(r.item, _STATE)]


async def test_a_listener_gets_the_state_reports_until_it_is_removed(home: Path) -> None:
    heard: list[AccountReport] = []

    async def strategy(qk: Client, account: Account) -> None:
        async with qk.subscribe([A, B], "1d") as bars:
            i = 0
            async for _ in bars:
                if i == 0:
                    account.add_listener(heard.append)
                if i == 3:
                    account.remove_listener(heard.append)
                await _trade_day(i, account)
                i += 1

    result, log = await _run(home, strategy)
    full, _ = await _run(home, _plain(), hook=False)
    _same(result, full)
    assert any(isinstance(r.item, Position) and r.item.stock_code == A for r in heard)
    assert [r.item for r in heard] == [r.item for r in log if r.seq >= heard[0].seq][: len(heard)]
    after = [r for r in log if r.seq > heard[-1].seq]
    assert any(isinstance(r.item, Trade) for r in after)
    assert not [r for r in after if isinstance(r.item, _STATE)]


async def test_behind_a_risk_chain_every_report_is_made(home: Path) -> None:
    result, log = await _run_risk(home)
    assert result.trades.height == 4
    assert sum(isinstance(r.item, Position) for r in log) > 2


async def _run_risk(home: Path) -> tuple[BacktestResult, list[AccountReport]]:
    backends: list[ReplayBackend] = []
    result = await run_backtest(URL, _plain(), home=home, backend_hook=backends.append, risk=True)
    return result, list(backends[0].accounts.reports["backtest"])


async def test_follow_state_checks_its_flag_and_ignores_unknown_accounts(home: Path) -> None:
    backend = ReplayBackend.from_url(URL + f"&home={home}")
    with pytest.raises(Exception, match="True or False"):
        backend.follow_state("backtest", 1)  # type: ignore[arg-type]
    backend.follow_state("nobody", False)  # not held: nothing to do
