"""The xtquant:// backend against a fake xtquant package (tests/fake_xtquant).

The fake delivers trader callbacks from its own worker threads and quote pushes from its own
quote thread, as xtquant does; see tests/fake_xtquant/README.md.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import numpy as np
import pytest

from qmtkit.backends import open_backend
from qmtkit.backends.base import (
    AccountInfos,
    AccountStatuses,
    BackendInfo,
    CancelOrder,
    CancelOrderSysid,
    ConnectionState,
    Dividends,
    FetchDividends,
    FetchHistory,
    GetCalendar,
    GetSectorMembers,
    GetSnapshot,
    Hello,
    HistoryColumns,
    Instruments,
    ListInstruments,
    ListSectors,
    Names,
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
    Snapshots,
    SubmitOrder,
    SubscribeQuotes,
    Trades,
    UnsubscribeQuotes,
    VenueCalendar,
    expect,
)
from qmtkit.backends.xtquant import XtQuantBackend
from qmtkit.constants import OrderStatus
from qmtkit.data.schema import BAR_DTYPES, TICK_DTYPES
from qmtkit.errors import (
    BackendUnavailable,
    ClosedError,
    InvalidArgument,
    InvalidCode,
    InvalidPeriod,
)
from qmtkit.models import (
    AccountReport,
    Asset,
    Bar,
    CancelError,
    CancelResponse,
    Order,
    OrderError,
    OrderResponse,
    QuoteBatch,
    Tick,
    Trade,
)
from support.xtquant_fake import purge_xtquant

ACC = "1000000365"
DAY_MS = 86_400_000
# 2024-01-02 00:00 Beijing time
D0 = 1704124800000


class Sink:
    """Records events; ``until`` awaits a condition without sleeping."""

    def __init__(self) -> None:
        self.quotes: list[QuoteBatch] = []
        self.reports: list[AccountReport] = []
        self.states: list[ConnectionState] = []
        self.threads: set[int] = set()
        self._changed = anyio.Event()

    def _bump(self) -> None:
        self.threads.add(threading.get_ident())
        self._changed.set()
        self._changed = anyio.Event()

    def on_quotes(self, batch: QuoteBatch) -> None:
        self.quotes.append(batch)
        self._bump()

    def on_report(self, report: AccountReport) -> None:
        self.reports.append(report)
        self._bump()

    def on_connection(self, state: ConnectionState) -> None:
        self.states.append(state)
        self._bump()

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        with anyio.fail_after(timeout):
            while not pred():
                await self._changed.wait()

    def items(self, kind: type[Any]) -> list[Any]:
        return [r.item for r in self.reports if isinstance(r.item, kind)]


def make_backend(tmp_path: Path, session: int = 4242, **kw: Any) -> XtQuantBackend:
    opts: dict[str, Any] = {
        "reconnect_delay": 0.01,
        "reconnect_max_delay": 0.05,
        "response_timeout": 3.0,
    }
    opts.update(kw)
    return XtQuantBackend(str(tmp_path / "userdata_mini"), session, **opts)


@asynccontextmanager
async def running(tmp_path: Path, **kw: Any) -> AsyncIterator[tuple[XtQuantBackend, Sink]]:
    backend = make_backend(tmp_path, **kw)
    sink = Sink()
    async with backend.open(sink):
        yield backend, sink


def buy(code: str = "600000.SH", volume: int = 100, price: float = 10.0, **kw: Any) -> SubmitOrder:
    return SubmitOrder(
        account_id=ACC,
        stock_code=code,
        order_type=23,
        order_volume=volume,
        price_type=11,
        price=price,
        **kw,
    )


# --------------------------------------------------------------------------- opening


async def test_open_backend_builds_the_adapter_from_an_xtquant_url() -> None:
    backend = open_backend("xtquant://D:/qmt/userdata_mini?session=777")
    assert isinstance(backend, XtQuantBackend)
    assert (backend.path, backend.session) == ("D:\\qmt\\userdata_mini", 777)


async def test_open_without_xtquant_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    purge_xtquant()
    monkeypatch.setitem(sys.modules, "xtquant", None)  # makes `import xtquant` fail
    backend = make_backend(tmp_path)
    with pytest.raises(BackendUnavailable) as err:
        async with backend.open(Sink()):
            pass
    assert "install xtquant on the Windows machine running MiniQMT" in str(err.value)
    assert "qmtkit://" in str(err.value)


async def test_hello_names_the_backend(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, _):
        info = expect(await backend.request(Hello()), BackendInfo)
    assert info.kind == "xtquant"
    assert info.version == "fake-250807"
    assert "session=4242" in info.url


async def test_connect_minus_one_lists_the_documented_causes(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.refuse_connects = 1
    backend = make_backend(tmp_path, session=31337)
    with pytest.raises(BackendUnavailable) as err:
        async with backend.open(Sink()):
            pass
    text = str(err.value)
    assert "returned -1" in text
    assert "极简模式" in text  # minimal trading mode at login
    assert "userdata_mini" in text
    assert "administrator" in text and "PermissionError" in text
    assert "31337" in text and "3 s" in text and "another" in text
    assert xt.terminal.traders == []  # the refused trader was stopped


async def test_the_path_hint_appears_when_the_folder_is_not_userdata_mini(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.refuse_connects = 1
    backend = XtQuantBackend(str(tmp_path / "QMT"), 5)
    with pytest.raises(BackendUnavailable, match="ends in 'QMT', not 'userdata_mini'"):
        async with backend.open(Sink()):
            pass


async def test_requests_outside_the_lifetime_are_refused(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    backend = make_backend(tmp_path)
    with pytest.raises(ClosedError):
        await backend.request(Hello())
    async with backend.open(Sink()):
        pass
    with pytest.raises(ClosedError):
        await backend.request(Hello())


async def test_an_error_in_the_body_propagates_unwrapped(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with running(tmp_path):
            raise KeyError("mine")
    assert xt.terminal.traders == []  # trader stopped on the way out


# --------------------------------------------------------------------------- trade reports


async def test_callbacks_from_foreign_threads_reach_the_sink_in_order(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy(volume=5000)), OrderResponse)
        for _ in range(50):
            xt.terminal.fill(reply.order_id, 100, 10.0)
        # 1 REPORTED push + 50 x (trade, order)
        await sink.until(lambda: len(sink.reports) == 101)
    loop_thread = threading.get_ident()
    assert loop_thread not in xt.terminal.callback_threads  # pushes came from foreign threads
    assert sink.threads == {loop_thread}  # and were handed to the loop
    assert [r.seq for r in sink.reports] == list(range(1, 102))
    volumes = [r.item.traded_volume for r in sink.reports if isinstance(r.item, Order)]
    assert volumes == list(range(0, 5001, 100))  # arrival order kept
    kinds = [type(r.item) for r in sink.reports[1:]]
    assert kinds == [Trade, Order] * 50
    assert sink.reports[-1].item.order_status == OrderStatus.SUCCEEDED


@pytest.mark.parametrize("response_first", [True, False])
async def test_submission_reconciles_response_and_push_in_either_order(
    xt: SimpleNamespace, tmp_path: Path, response_first: bool
) -> None:
    xt.terminal.response_first = response_first
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        replies = [
            expect(await backend.request(buy(price=10.0 + i / 100, seq=i)), OrderResponse)
            for i in range(1, 4)
        ]
        await sink.until(lambda: len(sink.reports) == 3)
    pushed = [r.item.order_id for r in sink.reports]
    assert [r.order_id for r in replies] == pushed
    assert [r.seq for r in replies] == [1, 2, 3]  # the caller's seq is echoed
    assert all(r.error_msg == "" for r in replies)


async def test_the_order_push_alone_resolves_a_submission(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.hold_responses = True
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy(order_remark="r1")), OrderResponse)
        assert sink.items(Order)[0].order_id == reply.order_id
        xt.terminal.release()  # the late response is consumed, not mistaken for anything
        reply2 = expect(await backend.request(buy(volume=200)), OrderResponse)
        assert reply2.order_id == reply.order_id + 1
        assert backend._recon.waiting == 0


async def test_the_response_alone_resolves_a_submission(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.hold_pushes = True
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy()), OrderResponse)
        assert sink.reports == []
        xt.terminal.release()
        await sink.until(lambda: len(sink.reports) == 1)
    assert sink.reports[0].item.order_id == reply.order_id


async def test_lookalike_orders_wait_for_their_responses(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.response_first = False
    async with running(tmp_path) as (backend, _):
        await backend.request(OpenAccount(account_id=ACC))
        async with anyio.create_task_group() as tg:
            results: list[OrderResponse] = []

            async def submit(i: int) -> None:
                results.append(expect(await backend.request(buy(seq=i)), OrderResponse))

            for i in (1, 2):
                tg.start_soon(submit, i)
    assert {r.seq: r.order_id for r in results} == {1: 1001, 2: 1002}
    assert backend._recon.waiting == 0


async def test_a_refused_order_answers_with_the_error_and_reports_it(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.reject["000001.SZ"] = (-10, "资金不足 insufficient cash")
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy("000001.SZ")), OrderResponse)
        await sink.until(lambda: len(sink.items(OrderError)) == 1)
    assert reply.order_id > 0
    assert "insufficient cash" in reply.error_msg
    err = sink.items(OrderError)[0]
    assert (err.order_id, err.error_id) == (reply.order_id, -10)
    assert sink.items(Order)[0].order_status == OrderStatus.JUNK


async def test_a_refused_order_resolves_from_the_junk_push_alone(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.reject["000001.SZ"] = (-20, "price out of limits")
    xt.terminal.hold_responses = True
    async with running(tmp_path) as (backend, _):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy("000001.SZ")), OrderResponse)
    assert (reply.order_id, reply.error_msg) == (1001, "price out of limits")


async def test_an_order_error_alone_resolves_by_its_seq(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.reject["000001.SZ"] = (-30, "not in trading hours")
    xt.terminal.hold_responses = xt.terminal.hold_pushes = True
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy("000001.SZ")), OrderResponse)
        assert [type(r.item) for r in sink.reports] == [OrderError]
    assert (reply.order_id, reply.error_msg) == (1001, "not in trading hours")


async def test_bad_orders_are_refused_before_reaching_miniqmt(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    async with running(tmp_path) as (backend, _):
        bad = [
            (buy(code="60000.SH"), InvalidCode, "60000.SH"),
            (buy(volume=0), InvalidArgument, "0"),
            (buy(price=float("nan")), InvalidArgument, "nan"),
            (
                SubmitOrder(
                    account_id=ACC,
                    stock_code="600000.SH",
                    order_type=99,
                    order_volume=100,
                    price_type=11,
                    price=10.0,
                ),
                InvalidArgument,
                "99",
            ),
            (
                SubmitOrder(
                    account_id=ACC,
                    stock_code="600000.SH",
                    order_type=23,
                    order_volume=100,
                    price_type=7,
                    price=10.0,
                ),
                InvalidArgument,
                "7",
            ),
            (
                SubmitOrder(
                    account_id="",
                    stock_code="600000.SH",
                    order_type=23,
                    order_volume=100,
                    price_type=11,
                    price=10.0,
                ),
                InvalidArgument,
                "''",
            ),
        ]
        for req, exc, named in bad:
            with pytest.raises(exc, match=named.replace(".", r"\.")):
                await backend.request(req)
    assert xt.terminal.placed == []


async def test_cancel_by_order_id_and_by_sysid(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        a = expect(await backend.request(buy()), OrderResponse)
        b = expect(await backend.request(buy(volume=300)), OrderResponse)
        ok = expect(
            await backend.request(CancelOrder(account_id=ACC, order_id=a.order_id, seq=9)),
            CancelResponse,
        )
        by_sysid = expect(
            await backend.request(
                CancelOrderSysid(account_id=ACC, market=0, order_sysid=f"S{b.order_id}")
            ),
            CancelResponse,
        )
        again = expect(
            await backend.request(CancelOrder(account_id=ACC, order_id=a.order_id)), CancelResponse
        )
        await sink.until(lambda: len(sink.items(CancelError)) == 1)
    assert (ok.cancel_result, ok.order_id, ok.seq) == (0, a.order_id, 9)
    assert (by_sysid.cancel_result, by_sysid.order_id) == (0, b.order_id)
    assert again.cancel_result == -1
    statuses = [(o.order_id, o.order_status) for o in sink.items(Order)]
    assert (a.order_id, OrderStatus.CANCELED) in statuses
    assert (b.order_id, OrderStatus.CANCELED) in statuses
    assert sink.items(CancelError)[0].order_id == a.order_id


async def test_bad_cancels_are_refused(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, _):
        with pytest.raises(InvalidArgument, match="-5"):
            await backend.request(CancelOrder(account_id=ACC, order_id=-5))
        with pytest.raises(InvalidArgument, match="market 9"):
            await backend.request(CancelOrderSysid(account_id=ACC, market=9, order_sysid="1"))


async def test_reports_are_numbered_per_account_and_replayed_after_seq(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.accounts["2000000001"] = 5_000.0
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        await backend.request(OpenAccount(account_id="2000000001"))
        await backend.request(buy())
        await backend.request(
            SubmitOrder(
                account_id="2000000001",
                stock_code="600000.SH",
                order_type=23,
                order_volume=100,
                price_type=11,
                price=10.0,
            )
        )
        await backend.request(buy(volume=200))
        await sink.until(lambda: len(sink.reports) == 3)
        assert [(r.account_id, r.seq) for r in sink.reports] == [
            (ACC, 1),
            ("2000000001", 1),
            (ACC, 2),
        ]
        # a consumer that saw seq 1 resumes from 2
        before = len(sink.reports)
        await backend.request(OpenAccount(account_id=ACC, after_seq=1))
        replayed = sink.reports[before:]
    assert [(r.account_id, r.seq) for r in replayed] == [(ACC, 2)]


async def test_open_account_refused_by_miniqmt(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, _):
        with pytest.raises(Exception, match="refused to subscribe account '999'"):
            await backend.request(OpenAccount(account_id="999"))
        with pytest.raises(InvalidArgument, match="account_type 4"):
            await backend.request(OpenAccount(account_id=ACC, account_type=4))


# --------------------------------------------------------------------------- reconnection


async def test_disconnect_reconnects_with_a_new_session_and_resubscribes(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    async with running(tmp_path, session=500) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        await backend.request(SubscribeQuotes(sub_id=1, codes=["600000.SH"], period="1m"))
        first_seqs = set(xt.xtdata.SUBSCRIPTIONS)
        xt.terminal.disconnect(refuse=2)
        await sink.until(lambda: len(sink.states) == 2)
        assert [s.connected for s in sink.states] == [False, True]
        assert backend.connected and backend.session != 500
        sessions = [s for s, _ in xt.terminal.connect_log]
        assert sessions[0] == 500
        assert len(set(sessions[1:])) == len(sessions) - 1  # every attempt a fresh id
        assert 500 not in sessions[1:]
        assert [r for _, r in xt.terminal.connect_log] == [0, -1, -1, 0]
        # the account and the quote subscription live again on the new link
        (trader,) = xt.terminal.traders
        assert trader.session == backend.session and ACC in trader.accounts
        assert set(xt.xtdata.SUBSCRIPTIONS).isdisjoint(first_seqs)
        xt.xtdata.push_quote(
            "600000.SH",
            "1m",
            {
                "time": D0 + 60_000,
                "open": 10,
                "high": 10,
                "low": 10,
                "close": 10,
                "volume": 5,
                "amount": 5000.0,
            },
        )
        await sink.until(lambda: len(sink.quotes) == 1)
        reply = expect(await backend.request(buy()), OrderResponse)
        await sink.until(lambda: len(sink.items(Order)) == 1)
    assert sink.items(Order)[0].order_id == reply.order_id
    # closing stopped every trader made on the way, with their threads
    assert xt.terminal.traders == []
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-xttrader")]


async def test_trading_while_disconnected_fails_fast(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path, reconnect_delay=30.0, reconnect_max_delay=30.0) as (b, sink):
        xt.terminal.refuse_connects = 10**6
        xt.terminal.disconnect(refuse=10**6)
        await sink.until(lambda: len(sink.states) == 1)
        with pytest.raises(BackendUnavailable, match="reconnecting"):
            await b.request(buy())
        with pytest.raises(BackendUnavailable):
            await b.request(QueryAsset(account_id=ACC))
    assert sink.states[0].connected is False
    assert xt.terminal.traders == []
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-xttrader")]


async def test_duplicate_pushes_after_reconnect_are_dropped(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        reply = expect(await backend.request(buy(volume=300)), OrderResponse)
        xt.terminal.fill(reply.order_id, 100, 10.0)
        await sink.until(lambda: len(sink.reports) == 3)
        xt.terminal.disconnect()
        await sink.until(lambda: len(sink.states) == 2)
        xt.terminal.replay_pushes(ACC)  # MiniQMT re-sends today's pushes
        xt.terminal.fill(reply.order_id, 200, 10.1)  # then something new happens
        await sink.until(lambda: len(sink.reports) == 5)
        await backend.request(QueryOrders(account_id=ACC))  # a round trip: nothing else queued
    assert [r.seq for r in sink.reports] == [1, 2, 3, 4, 5]
    trades = sink.items(Trade)
    assert [t.traded_volume for t in trades] == [100, 200]
    orders = sink.items(Order)
    assert [(o.order_status, o.traded_volume) for o in orders] == [
        (OrderStatus.REPORTED, 0),
        (OrderStatus.PART_SUCC, 100),
        (OrderStatus.SUCCEEDED, 300),
    ]


# --------------------------------------------------------------------------- queries


async def test_queries_convert_xt_objects(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, _):
        reply = expect(await backend.request(buy()), OrderResponse)
        xt.terminal.fill(reply.order_id, 100, 10.0)
        asset = expect(await backend.request(QueryAsset(account_id=ACC)), Asset)
        orders = expect(await backend.request(QueryOrders(account_id=ACC)), Orders)
        open_orders = expect(
            await backend.request(QueryOrders(account_id=ACC, cancelable_only=True)), Orders
        )
        trades = expect(await backend.request(QueryTrades(account_id=ACC)), Trades)
        positions = expect(await backend.request(QueryPositions(account_id=ACC)), Positions)
        infos = expect(await backend.request(QueryAccountInfos()), AccountInfos)
        statuses = expect(await backend.request(QueryAccountStatus()), AccountStatuses)
        with pytest.raises(Exception, match="no asset for account '42'"):
            await backend.request(QueryAsset(account_id="42"))
    assert (asset.account_id, asset.cash, asset.total_asset) == (ACC, 1_000_000.0, 1_000_000.0)
    assert [(o.order_id, o.order_status, o.traded_volume) for o in orders.items] == [
        (reply.order_id, OrderStatus.SUCCEEDED, 100)
    ]
    assert open_orders.items == []
    assert [(t.order_id, t.traded_volume, t.traded_amount) for t in trades.items] == [
        (reply.order_id, 100, 1000.0)
    ]
    pos = positions.items[0]
    assert (pos.stock_code, pos.volume, pos.can_use_volume, pos.instrument_name) == (
        "600000.SH",
        1000,
        600,
        "浦发银行",
    )
    assert [(i.account_id, i.account_type) for i in infos.items] == [(ACC, 2)]
    assert [(s.account_id, s.status) for s in statuses.items] == [(ACC, 0)]


# --------------------------------------------------------------------------- market data


def _bars(n: int, step: int = DAY_MS) -> list[dict[str, Any]]:
    return [
        {
            "time": D0 + i * step,
            "open": 10.0 + i,
            "high": 11.0 + i,
            "low": 9.0 + i,
            "close": 10.5 + i,
            "volume": 1000.0 * (i + 1),
            "amount": 1e6 * (i + 1),
            "settelementPrice": 0.0,
            "openInterest": 0,
            "preClose": 10.0 + i - 0.5,
            "suspendFlag": 0,
        }
        for i in range(n)
    ]


async def test_history_bars_become_schema_columns(xt: SimpleNamespace, tmp_path: Path) -> None:
    xt.xtdata.BARS[("600000.SH", "1d")] = _bars(5)
    async with running(tmp_path) as (backend, _):
        reply = expect(
            await backend.request(
                FetchHistory(code="600000.sh", period="1d", start=D0 + DAY_MS, end=D0 + 3 * DAY_MS)
            ),
            HistoryColumns,
        )
    assert (reply.code, reply.period, reply.rows) == ("600000.SH", "1d", 3)
    assert set(reply.columns) == set(BAR_DTYPES)
    cols = {k: np.frombuffer(v, BAR_DTYPES[k]) for k, v in reply.columns.items()}
    assert cols["time"].tolist() == [D0 + DAY_MS, D0 + 2 * DAY_MS, D0 + 3 * DAY_MS]
    assert cols["volume"].dtype == np.dtype("<i8") and cols["volume"].tolist() == [2000, 3000, 4000]
    assert cols["close"].tolist() == [11.5, 12.5, 13.5]
    assert cols["suspendFlag"].dtype == np.dtype("<i1")
    # download first, then read unadjusted, with Beijing-time bounds
    names = [c[0] for c in xt.xtdata.CALLS]
    assert names[:2] == ["download_history_data", "get_market_data_ex"]
    assert xt.xtdata.CALLS[0][1] == ("600000.SH", "1d", "20240103000000", "20240105000000")
    assert xt.xtdata.CALLS[1][1][-1] == "none"


async def test_history_ticks_spread_the_book_over_level_columns(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    t0 = D0 + 9 * 3600_000 + 30 * 60_000
    xt.xtdata.TICKS["600000.SH"] = [
        {
            "time": t0 + 3000 * i,
            "lastPrice": 10.0 + i / 100,
            "open": 10.0,
            "high": 10.1,
            "low": 9.9,
            "lastClose": 9.95,
            "amount": 1e5 * (i + 1),
            "volume": 100 * (i + 1),
            "pvolume": 10000 * (i + 1),
            "stockStatus": 3,
            "openInt": 13,
            "transactionNum": i,
            "lastSettlementPrice": 0.0,
            "askPrice": [10.01 + i / 100 + k / 100 for k in range(5)],
            "bidPrice": [10.0 + i / 100 - k / 100 for k in range(5)],
            "askVol": [10 * (k + 1) for k in range(5)],
            "bidVol": [20 * (k + 1) for k in range(3)],
        }
        for i in range(4)
    ]
    async with running(tmp_path) as (backend, _):
        reply = expect(
            await backend.request(FetchHistory(code="600000.SH", period="tick")), HistoryColumns
        )
    assert reply.rows == 4 and set(reply.columns) == set(TICK_DTYPES)
    cols = {k: np.frombuffer(v, TICK_DTYPES[k]) for k, v in reply.columns.items()}
    assert cols["time"].tolist() == [t0, t0 + 3000, t0 + 6000, t0 + 9000]
    assert cols["askPrice1"].tolist() == pytest.approx([10.01, 10.02, 10.03, 10.04])
    assert cols["askVol5"].tolist() == [50] * 4 and cols["askVol5"].dtype == np.dtype("<i8")
    assert cols["bidVol3"].tolist() == [60] * 4
    assert cols["bidVol4"].tolist() == [0] * 4  # missing levels are zero
    assert cols["stockStatus"].dtype == np.dtype("<i4")
    assert xt.xtdata.CALLS[0][1] == ("600000.SH", "tick", "", "")  # 0 means unbounded


async def test_history_requests_are_checked_first(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, _):
        with pytest.raises(InvalidPeriod, match="'5m'"):
            await backend.request(FetchHistory(code="600000.SH", period="5m"))
        with pytest.raises(InvalidCode, match="'ABC'"):
            await backend.request(FetchHistory(code="ABC", period="1d"))
        with pytest.raises(InvalidArgument, match="before start"):
            await backend.request(FetchHistory(code="600000.SH", period="1d", start=5, end=4))
    assert xt.xtdata.CALLS == []


async def test_reference_data(xt: SimpleNamespace, tmp_path: Path) -> None:
    xt.xtdata.SECTORS.update(
        {
            "沪深A股": ["600000.SH", "000001.SZ", "110011.SH", "600666.SH"],
            "沪深ETF": [],
            "上证50": ["600000.SH"],
        }
    )
    xt.xtdata.FULL_TICK["600000.SH"] = {
        "time": D0,
        "lastPrice": 10.2,
        "open": 10.0,
        "high": 10.3,
        "low": 9.9,
        "lastClose": 10.0,
        "amount": 1e6,
        "volume": 1000.0,
        "askPrice": [10.21] * 5,
        "askVol": [1, 2, 3, 4, 5],
    }
    xt.xtdata.DIVIDENDS["600000.SH"] = [
        {
            "time": D0 + 10 * DAY_MS,
            "interest": 0.4,
            "stockBonus": 0.0,
            "stockGift": 0.3,
            "allotNum": 0.0,
            "allotPrice": 0.0,
            "gugai": 0,
            "dr": 1.05,
        },
        {
            "time": D0,
            "interest": 0.2,
            "stockBonus": 0.0,
            "stockGift": 0.0,
            "allotNum": 0.0,
            "allotPrice": 0.0,
            "gugai": 0,
            "dr": 1.02,
        },
    ]
    async with running(tmp_path) as (backend, _):
        everything = expect(await backend.request(ListInstruments()), Instruments)
        some = expect(await backend.request(ListInstruments(codes=["600666.SH"])), Instruments)
        snaps = expect(
            await backend.request(GetSnapshot(codes=["600000.SH", "000001.SZ"])), Snapshots
        )
        sectors = expect(await backend.request(ListSectors()), Names)
        members = expect(await backend.request(GetSectorMembers(sector="上证50")), Names)
        divs = expect(await backend.request(FetchDividends(code="600000.SH")), Dividends)
    assert [i.stock_code for i in everything.items] == ["600000.SH", "000001.SZ", "600666.SH"]
    pf = everything.items[0]
    assert (pf.InstrumentName, pf.UpStopPrice, pf.ExpireDate, pf.board, pf.is_st) == (
        "浦发银行",
        11.0,
        "99999999",
        "main",
        False,
    )
    # the bond in the sector is not a qmtkit instrument and is left out; ST names are flagged
    assert [(i.stock_code, i.is_st) for i in some.items] == [("600666.SH", True)]
    (tick,) = snaps.items
    assert isinstance(tick, Tick) and (tick.stock_code, tick.lastPrice, tick.volume) == (
        "600000.SH",
        10.2,
        1000,
    )
    assert tick.askVol == [1, 2, 3, 4, 5]
    assert sectors.items == ["沪深A股", "沪深ETF", "上证50"]
    assert members.items == ["600000.SH"]
    assert [(d.time, d.interest, d.dr) for d in divs.items] == [
        (D0, 0.2, 1.02),
        (D0 + 10 * DAY_MS, 0.4, 1.05),
    ]


async def test_quote_pushes_become_batches_until_unsubscribed(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    tick = {
        "time": D0,
        "lastPrice": 10.2,
        "open": 10.0,
        "high": 10.3,
        "low": 9.9,
        "lastClose": 10.0,
        "amount": 1e6,
        "volume": 1000,
    }
    bar = {
        "time": D0 + 60_000,
        "open": 10.0,
        "high": 10.1,
        "low": 9.9,
        "close": 10.05,
        "volume": 12,
        "amount": 12000.0,
    }
    async with running(tmp_path) as (backend, sink):
        await backend.request(SubscribeQuotes(sub_id=7, codes=["600000.SH"], period="tick"))
        await backend.request(SubscribeQuotes(sub_id=8, codes=["600000.SH"], period="1m"))
        await backend.request(SubscribeQuotes(sub_id=9, codes=[]))  # whole market
        xt.xtdata.push_quote("600000.SH", "tick", tick).result()
        xt.xtdata.push_quote("600000.SH", "1m", bar).result()
        await sink.until(lambda: len(sink.quotes) == 3)
        await backend.request(UnsubscribeQuotes(sub_id=7))
        await backend.request(UnsubscribeQuotes(sub_id=9))
        xt.xtdata.push_quote("600000.SH", "tick", tick).result()
        xt.xtdata.push_quote("600000.SH", "1m", bar).result()
        await sink.until(lambda: len(sink.quotes) == 4)
    assert threading.get_ident() not in xt.xtdata.CALLBACK_THREADS
    by_sub = [(b.sub_id, b.period, type(b.items[0])) for b in sink.quotes]
    assert sorted(by_sub[:2], key=lambda x: x[0]) == [(7, "tick", Tick), (9, "tick", Tick)]
    assert by_sub[2:] == [(8, "1m", Bar), (8, "1m", Bar)]
    b = sink.quotes[2].items[0]
    assert isinstance(b, Bar) and (b.stock_code, b.time, b.close, b.volume) == (
        "600000.SH",
        D0 + 60_000,
        10.05,
        12,
    )
    calls = [c for c in xt.xtdata.CALLS if c[0].startswith("subscribe")]
    assert calls == [
        ("subscribe_whole_quote", (["600000.SH"],)),
        ("subscribe_quote", ("600000.SH", "1m")),
        ("subscribe_whole_quote", (["SH", "SZ", "BJ"],)),
    ]
    assert xt.xtdata.SUBSCRIPTIONS == {}  # closing unsubscribed the rest


async def test_bad_subscriptions_are_refused(xt: SimpleNamespace, tmp_path: Path) -> None:
    async with running(tmp_path) as (backend, _):
        await backend.request(SubscribeQuotes(sub_id=1, codes=["600000.SH"]))
        with pytest.raises(InvalidArgument, match="sub_id 1"):
            await backend.request(SubscribeQuotes(sub_id=1, codes=["000001.SZ"]))
        with pytest.raises(InvalidArgument, match="'1m'"):
            await backend.request(SubscribeQuotes(sub_id=2, codes=[], period="1m"))
        with pytest.raises(InvalidPeriod, match="'2m'"):
            await backend.request(SubscribeQuotes(sub_id=3, codes=["600000.SH"], period="2m"))
        with pytest.raises(Exception, match="subscribe_quote"):  # xtdata refuses: -1
            await backend.request(SubscribeQuotes(sub_id=4, codes=["600001.SH"], period="1d"))
        with pytest.raises(InvalidArgument, match="sub_id 99"):
            await backend.request(UnsubscribeQuotes(sub_id=99))
        assert [s.sub_id for s in backend._resume.subscriptions()] == [1]
        result = await backend.request(UnsubscribeQuotes(sub_id=1))
    assert isinstance(result, Ok)


async def test_asset_position_and_status_pushes_are_reported_in_order(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    import xtquant.xttype as xtt

    async with running(tmp_path) as (backend, sink):
        await backend.request(OpenAccount(account_id=ACC))
        xt.terminal.push(ACC, "on_account_status", xtt.XtAccountStatus(ACC, 2, 0))
        xt.terminal.push(ACC, "on_stock_asset", xtt.XtAsset(ACC, 900.0, 100.0, 0.0, 1000.0, 900.0))
        bad = xtt.XtAsset(ACC, "lots of", 0.0, 0.0, 0.0, 0.0)  # cannot be read: skipped, logged
        xt.terminal.push(ACC, "on_stock_asset", bad)
        xt.terminal.push(
            ACC,
            "on_stock_position",
            xtt.XtPosition(
                ACC,
                "600000.SH",
                200,
                0,
                10.0,
                2000.0,
                0,
                200,
                0,
                10.0,
                48,
                10.0,
                0.0,
                "A1",
                "浦发银行",
            ),
        )
        await sink.until(lambda: len(sink.reports) == 3)
        await backend.request(QueryOrders(account_id=ACC))  # a round trip: nothing else queued
    assert [type(r.item).__name__ for r in sink.reports] == ["AccountStatus", "Asset", "Position"]
    assert [r.seq for r in sink.reports] == [1, 2, 3]
    assert sink.reports[1].item.frozen_cash == 100.0
    assert sink.reports[2].item.on_road_volume == 200


async def test_an_unanswered_order_times_out_saying_what_to_do(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.hold_responses = xt.terminal.hold_pushes = True
    async with running(tmp_path, response_timeout=0.2) as (backend, _):
        with pytest.raises(
            Exception, match=r"did not answer order request seq 1.*query the orders"
        ):
            await backend.request(buy())


async def test_a_disconnect_fails_the_orders_waiting_for_an_answer(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.terminal.hold_responses = xt.terminal.hold_pushes = True
    async with running(tmp_path) as (backend, sink):
        failures: list[BaseException] = []

        async def place() -> None:
            try:
                await backend.request(buy())
            except BackendUnavailable as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(place)
            # wait until the order is in the fake terminal's hands
            assert await anyio.to_thread.run_sync(xt.terminal.placed_signal.wait, 5)
            xt.terminal.disconnect()
        await sink.until(lambda: len(sink.states) == 2)
    assert len(failures) == 1 and "may or may not have been placed" in str(failures[0])


async def test_the_venue_calendar_comes_from_xtdata(xt: SimpleNamespace, tmp_path: Path) -> None:
    xt.xtdata.TRADING_DAYS[:] = ["20270104", "20270105"]
    xt.xtdata.HOLIDAYS[:] = ["20270101"]
    async with running(tmp_path) as (backend, _):
        reply = await backend.request(GetCalendar())
    assert reply == VenueCalendar([20270104, 20270105], [20270101])
    assert ("get_trading_calendar", ("SH", "", "")) in xt.xtdata.CALLS


async def test_a_terminal_without_holiday_data_has_no_calendar(
    xt: SimpleNamespace, tmp_path: Path
) -> None:
    xt.xtdata.TRADING_DAYS[:] = ["20270104"]
    async with running(tmp_path) as (backend, _):
        assert await backend.request(GetCalendar()) == VenueCalendar()
