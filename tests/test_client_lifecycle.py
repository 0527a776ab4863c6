"""The client's lifetime: nothing outlives ``connect``; a closed client refuses to work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest

import qmtkit
from qmtkit.backends.base import ConnectionState, Ok, Reply, Request, SubmitOrder
from qmtkit.backends.mock import MockBackend
from qmtkit.errors import BackendUnavailable, ClosedError, InvalidArgument
from qmtkit.models import OrderResponse


def handler(req: Request) -> Reply:
    if isinstance(req, SubmitOrder):
        return OrderResponse(account_id=req.account_id, order_id=7)
    return Ok()


async def test_no_task_outlives_the_connect_block() -> None:
    before = asyncio.all_tasks()
    backend = MockBackend(handler)
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account("a")
        sub = qk.subscribe(["600000.SH"])

        async def consume() -> None:
            async for _ in sub:
                pass

        async def follow() -> None:
            async for _ in acct.reports():
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            tg.start_soon(follow)
            await anyio.wait_all_tasks_blocked()
            assert backend.is_open
            tg.cancel_scope.cancel()
        assert acct.report_consumers == 0
    assert not backend.is_open
    assert (backend.opened, backend.closed) == (1, 1)
    assert asyncio.all_tasks() == before


async def test_closed_client_raises_closed_error() -> None:
    async with qmtkit.connect(backend=MockBackend(handler)) as qk:
        acct = await qk.account("a")
        handle = await acct.buy("600000.SH", 100, 10.0)
    assert qk.closed
    with pytest.raises(ClosedError):
        qk.subscribe(["600000.SH"])
    with pytest.raises(ClosedError):
        await qk.snapshot(["600000.SH"])
    with pytest.raises(ClosedError):
        await qk.account("b")
    with pytest.raises(ClosedError):
        await acct.buy("600000.SH", 100, 10.0)
    with pytest.raises(ClosedError):
        acct.reports()
    with pytest.raises(ClosedError):
        _ = qk.info
    with pytest.raises(ClosedError, match="order 7"):
        await handle  # never reached a final status before the client closed


async def test_consumers_waiting_at_close_finish_cleanly() -> None:
    ended: list[str] = []
    async with anyio.create_task_group() as tg, qmtkit.connect(backend=MockBackend(handler)) as qk:
        acct = await qk.account("a")
        handle = await acct.buy("600000.SH", 100, 10.0)
        sub = qk.subscribe(["600000.SH"])

        async def quotes() -> None:
            async for _ in sub:
                pass
            ended.append("quotes")

        async def reports() -> None:
            async for _ in acct.reports():
                pass
            ended.append("reports")

        async def events() -> None:
            async for _ in handle.events():
                pass
            ended.append("events")

        for fn in (quotes, reports, events):
            tg.start_soon(fn)
        await anyio.wait_all_tasks_blocked()
    assert sorted(ended) == ["events", "quotes", "reports"]


async def test_an_error_in_the_block_propagates_unwrapped() -> None:
    backend = MockBackend(handler)
    with pytest.raises(KeyError, match="boom"):
        async with qmtkit.connect(backend=backend):
            raise KeyError("boom")
    assert not backend.is_open


async def test_backend_open_failure_propagates_unwrapped() -> None:
    backend = MockBackend(handler)
    async with qmtkit.connect(backend=backend):
        with pytest.raises(BackendUnavailable, match="already open"):
            async with qmtkit.connect(backend=backend):
                pass


async def test_cancelling_the_block_closes_the_backend() -> None:
    backend = MockBackend(handler)
    with anyio.CancelScope() as scope:
        async with qmtkit.connect(backend=backend):
            scope.cancel()
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert not backend.is_open


async def test_connect_argument_checks() -> None:
    with pytest.raises(InvalidArgument, match="not both"):
        async with qmtkit.connect("sim://", backend=MockBackend(handler)):
            pass
    with pytest.raises(InvalidArgument, match="42"):
        async with qmtkit.connect(42):  # type: ignore[arg-type]
            pass
    with pytest.raises(InvalidArgument, match="object"):
        async with qmtkit.connect(backend=object()):  # type: ignore[arg-type]
            pass
    with pytest.raises(InvalidArgument, match="nope://"):
        async with qmtkit.connect("nope://x"):
            pass


async def test_client_used_only_inside_its_block_after_reopen() -> None:
    backend = MockBackend(handler)
    async with qmtkit.connect(backend=backend) as first:
        pass
    async with qmtkit.connect(backend=backend) as second:
        assert second.info.kind == "mock"
        with pytest.raises(ClosedError):
            _ = first.info
    assert (backend.opened, backend.closed) == (2, 2)


async def test_data_api_is_wired_to_the_client_home(tmp_path: Path) -> None:
    from qmtkit.data.api import MarketData

    async with qmtkit.connect(backend=MockBackend(handler), home=tmp_path) as qk:
        assert qk.home == tmp_path
        assert isinstance(qk.data, MarketData)
        assert qk.data is qk.data


def test_home_is_passed_to_the_simulator_url() -> None:
    from qmtkit.client import _url_with_home

    assert _url_with_home("sim://?seed=3", Path("/x/y")) == "sim://?seed=3&home=%2Fx%2Fy"
    assert _url_with_home("qmtkit://h:1", Path("/x")) == "qmtkit://h:1"
    assert _url_with_home("sim://", None) == "sim://"


async def test_connection_changes_are_visible() -> None:
    backend = MockBackend(handler)
    async with qmtkit.connect(backend=backend) as qk:
        assert qk.connection.connected
        backend.push_connection(ConnectionState(connected=False, reason="venue down"))
        assert not qk.connection.connected
        assert qk.connection.reason == "venue down"


async def test_connection_changes_streams_every_change_in_order() -> None:
    backend = MockBackend()
    seen: list[ConnectionState] = []
    async with qmtkit.connect(backend=backend) as qk, anyio.create_task_group() as tg:
        ready = anyio.Event()

        async def watch() -> None:
            async with qk.connection_changes() as changes:
                ready.set()
                async for state in changes:
                    seen.append(state)

        tg.start_soon(watch)
        await ready.wait()
        backend.push_connection(ConnectionState(connected=False, reason="venue down"))
        backend.push_connection(ConnectionState(connected=True))
        await anyio.wait_all_tasks_blocked()
        assert [s.connected for s in seen] == [False, True]
        assert seen[0].reason == "venue down"
        tg.cancel_scope.cancel()
