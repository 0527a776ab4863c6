"""The xtquant adapter's pure parts: URL, reconciliation, inbox, conversions."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.xtquant import XtQuantBackend, connect_error_message, parse_url
from qmtkit.backends.xtquant.convert import (
    dividends_of,
    history_arrays,
    history_columns,
    ms_to_xt_time,
    order_of,
    quote_items,
    xt_date_to_ms,
)
from qmtkit.backends.xtquant.inbox import LoopInbox
from qmtkit.backends.xtquant.reports import OrderReconciler, cut_remark
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import BackendError, InvalidArgument
from qmtkit.models import Bar, Order, OrderError, OrderResponse, Tick

ACC = "1000000365"
D0 = 1704124800000  # 2024-01-02 00:00 Beijing


def order(order_id: int, status: int = 50, traded: int = 0, **kw: Any) -> Order:
    fields: dict[str, Any] = {
        "account_id": ACC,
        "stock_code": "600000.SH",
        "order_id": order_id,
        "order_type": 23,
        "order_volume": 100,
        "price_type": 11,
        "price": 10.0,
        "order_status": status,
        "traded_volume": traded,
    }
    fields.update(kw)
    return Order(**fields)


def submit(**kw: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "account_id": ACC,
        "stock_code": "600000.SH",
        "order_type": 23,
        "order_volume": 100,
        "price_type": 11,
        "price": 10.0,
    }
    fields.update(kw)
    return SubmitOrder(**fields)


def response(seq: int, order_id: int, error_msg: str = "") -> OrderResponse:
    return OrderResponse(account_id=ACC, order_id=order_id, seq=seq, error_msg=error_msg)


# --------------------------------------------------------------------------- URL


@pytest.mark.parametrize(
    ("url", "path", "session"),
    [
        ("xtquant://D:/qmt/userdata_mini?session=123", "D:\\qmt\\userdata_mini", 123),
        ("xtquant:///D:/qmt/userdata_mini?session=9", "D:\\qmt\\userdata_mini", 9),
        (
            "xtquant://D:%5C%E5%9B%BD%E9%87%91QMT%5Cuserdata_mini",
            "D:\\国金QMT\\userdata_mini",
            None,
        ),
        (
            "xtquant:///home/me/userdata_mini?session=2147483647",
            "/home/me/userdata_mini",
            2147483647,
        ),
    ],
)
def test_urls_name_the_folder_and_the_session(url: str, path: str, session: int | None) -> None:
    assert parse_url(url) == (path, session)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("xtquant://?session=1", "names no folder"),
        ("xtquant://D:/u?session=abc", "'abc'"),
        ("xtquant://D:/u?session=0", "'0'"),
        ("xtquant://D:/u?sesion=1", "'sesion'"),
        ("sim://", "'sim://'"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(url: str, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        parse_url(url)


def test_a_missing_session_gets_a_random_one_and_bad_options_are_refused() -> None:
    backend = XtQuantBackend.from_url("xtquant://D:/qmt/userdata_mini")
    assert 100_000 <= backend.session <= 999_999_999
    with pytest.raises(InvalidArgument, match="response_timeout"):
        XtQuantBackend("D:/qmt/userdata_mini", 1, response_timeout=0)
    with pytest.raises(InvalidArgument, match="path ''"):
        XtQuantBackend("", 1)


def test_connect_error_message_is_specific() -> None:
    text = connect_error_message("D:\\qmt\\userdata_mini", 77, -1)
    assert "returned -1" in text and "session id 77" in text
    assert "not 'userdata_mini'" not in text  # the folder name is right here


# --------------------------------------------------------------------------- OrderReconciler


def test_response_resolves_even_when_it_arrives_before_the_seq_is_known() -> None:
    rec = OrderReconciler()
    token = rec.begin(submit())
    assert rec.on_response(response(seq=7, order_id=1001)) == []  # seq not bound yet
    assert rec.bind_seq(token, 7) == [token]
    outcome = rec.outcome(token)
    assert outcome is not None and (outcome.order_id, outcome.error_msg) == (1001, "")
    rec.finish(token)
    assert rec.waiting == 0


def test_push_resolves_first_and_the_late_response_is_consumed() -> None:
    rec = OrderReconciler()
    token = rec.begin(submit(order_remark="一二三四五六七八九十"))  # 30 bytes: MiniQMT keeps 24
    rec.bind_seq(token, 1)
    assert rec.on_order_push(order(1001, order_remark="一二三四五六七八")) == [token]
    rec.finish(token)
    assert rec.waiting == 1  # still expecting the response
    assert rec.on_response(response(seq=1, order_id=1001)) == []
    assert rec.waiting == 0


def test_pushes_of_known_or_different_orders_do_not_resolve() -> None:
    rec = OrderReconciler()
    token = rec.begin(submit(price=10.0))
    rec.bind_seq(token, 1)
    rec.on_response(response(seq=99, order_id=5))  # some other session's order id
    assert rec.on_order_push(order(5)) == []  # known id
    assert rec.on_order_push(order(6, price=10.01)) == []  # another limit price
    assert rec.on_order_push(order(7, order_volume=200)) == []
    assert rec.on_order_push(order(8, account_id="x")) == []
    assert rec.outcome(token) is None


def test_lookalike_submissions_leave_the_push_to_the_responses() -> None:
    rec = OrderReconciler()
    t1, t2 = rec.begin(submit()), rec.begin(submit())
    rec.bind_seq(t1, 1)
    rec.bind_seq(t2, 2)
    assert rec.on_order_push(order(1001)) == []  # two candidates: ambiguous
    assert rec.on_response(response(seq=2, order_id=1001)) == [t2]
    assert rec.on_order_push(order(1002)) == [t1]  # one candidate left
    assert (rec.outcome(t1).order_id, rec.outcome(t2).order_id) == (1002, 1001)  # type: ignore[union-attr]


def test_a_junk_push_carries_its_reason_into_the_outcome() -> None:
    rec = OrderReconciler()
    token = rec.begin(submit())
    assert rec.on_order_push(order(1001, status=57, status_msg="limit breached")) == [token]
    outcome = rec.outcome(token)
    assert outcome is not None and outcome.error_msg == "limit breached"


def test_order_error_with_seq_resolves_also_before_bind() -> None:
    rec = OrderReconciler()
    token = rec.begin(submit())
    err = OrderError(account_id=ACC, order_id=1001, error_id=-5, error_msg="no cash")
    assert rec.on_order_error(err, 3) == []
    assert rec.bind_seq(token, 3) == [token]
    outcome = rec.outcome(token)
    assert outcome is not None and (outcome.order_id, outcome.error_msg) == (1001, "no cash")


def test_fail_all_wakes_waiters_and_forgets_session_seqs() -> None:
    rec = OrderReconciler()
    waiting, answered = rec.begin(submit()), rec.begin(submit(order_volume=200))
    rec.bind_seq(waiting, 1)
    rec.bind_seq(answered, 2)
    rec.on_order_push(order(1002, order_volume=200))
    rec.finish(answered)
    assert rec.fail_all("link lost") == [waiting]
    outcome = rec.outcome(waiting)
    assert outcome is not None and outcome.failure == "link lost"
    rec.finish(waiting)
    assert rec.waiting == 0
    # the next session numbers from 1 again: an old binding must not catch it
    fresh = rec.begin(submit(order_volume=300))
    assert rec.on_response(response(seq=1, order_id=2001)) == []
    assert rec.bind_seq(fresh, 1) == [fresh]


def test_cut_remark_keeps_whole_characters() -> None:
    assert cut_remark("abc") == "abc"
    assert cut_remark("x" * 30) == "x" * 24
    assert cut_remark("ab" + "中" * 10) == "ab" + "中" * 7  # 2 + 21 bytes; the 8th would cross


# --------------------------------------------------------------------------- LoopInbox


async def test_inbox_runs_posts_from_many_threads_on_the_loop_in_post_order() -> None:
    inbox = LoopInbox.for_current_loop()
    seen: list[tuple[int, int]] = []
    ran_on: set[int] = set()
    done = asyncio.Event()
    order_of_posts: list[tuple[int, int]] = []
    lock = threading.Lock()
    total = 4 * 500

    def record(item: tuple[int, int]) -> None:
        ran_on.add(threading.get_ident())
        seen.append(item)
        if len(seen) == total:
            done.set()

    def producer(k: int) -> None:
        for i in range(500):
            with lock:  # the lock fixes one global post order to compare against
                order_of_posts.append((k, i))
                inbox.post(record, (k, i))

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    await asyncio.wait_for(done.wait(), 5)
    for t in threads:
        t.join()
    assert seen == order_of_posts
    assert ran_on == {threading.get_ident()}


async def test_inbox_survives_a_failing_call_and_drops_posts_after_close() -> None:
    inbox = LoopInbox.for_current_loop()
    seen: list[int] = []
    done = asyncio.Event()

    def boom() -> None:
        raise RuntimeError("handler bug")

    inbox.post(boom)
    inbox.post(seen.append, 1)
    inbox.post(done.set)
    await asyncio.wait_for(done.wait(), 5)
    inbox.close()
    inbox.post(seen.append, 2)
    await asyncio.sleep(0)
    assert seen == [1] and inbox.pending == 0


def test_an_inbox_of_a_closed_loop_drops_quietly() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    inbox = LoopInbox(loop.call_soon_threadsafe)
    inbox.post(print, "never")
    inbox.post(print, "never")
    assert inbox.pending == 0


# --------------------------------------------------------------------------- conversions


def test_xt_objects_convert_with_none_and_float_fields() -> None:
    raw = SimpleNamespace(
        account_id=ACC,
        stock_code="600000.SH",
        order_id=5,
        order_sysid=None,
        order_time=1700000000,
        order_type=23,
        order_volume=100.0,
        price_type=11,
        price=10,
        traded_volume=0,
        traded_price=0.0,
        order_status=50,
        status_msg=None,
        strategy_name="s",
        order_remark="r",
        direction=48,
        offset_flag=48,
    )
    o = order_of(raw)
    assert (o.order_volume, o.price, o.order_sysid, o.status_msg, o.account_type) == (
        100,
        10.0,
        "",
        "",
        2,
    )
    with pytest.raises(BackendError, match="order_volume='lots'"):
        order_of(SimpleNamespace(**{**vars(raw), "order_volume": "lots"}))


def test_quote_items_accept_both_push_shapes() -> None:
    tick = {
        "time": D0,
        "lastPrice": 1.0,
        "open": 1.0,
        "high": 1.0,
        "low": 1.0,
        "lastClose": 1.0,
        "amount": 1.0,
        "volume": 3.0,
    }
    whole = quote_items({"600000.SH": tick, "000001.SZ": tick}, "tick")
    assert [(type(t), t.stock_code) for t in whole] == [(Tick, "600000.SH"), (Tick, "000001.SZ")]
    bars = quote_items(
        {"600000.SH": [{"time": D0, "close": 2.0}, {"time": D0 + 1, "close": 3.0}]}, "5m"
    )
    assert all(isinstance(b, Bar) and b.period == "5m" for b in bars)
    assert [b.close for b in bars] == [2.0, 3.0]  # type: ignore[union-attr]


def test_times_are_beijing_wall_clock() -> None:
    assert ms_to_xt_time(D0 + 9 * 3600_000 + 30 * 60_000) == "20240102093000"
    assert ms_to_xt_time(0) == ""
    assert xt_date_to_ms("20240102") == D0
    assert xt_date_to_ms("20240102093000") == D0 + 9 * 3600_000 + 30 * 60_000
    with pytest.raises(BackendError, match="'2024-01-02'"):
        xt_date_to_ms("2024-01-02")


def test_history_columns_sort_filter_and_fill() -> None:
    frame = pd.DataFrame(
        {
            "time": [D0 + 2000, D0, D0 + 1000, D0 + 3000],
            "open": [3.0, 1.0, 2.0, 4.0],
            "high": [3.0, 1.0, 2.0, 4.0],
            "low": [3.0, 1.0, 2.0, 4.0],
            "close": [3.0, 1.0, 2.0, 4.0],
            "volume": [30.0, 10.0, np.nan, 40.0],
            "amount": [3.0, 1.0, 2.0, 4.0],
        }
    )  # no preClose / suspendFlag columns
    reply = history_columns("600000.SH", "1m", frame, start=D0, end=D0 + 2000)
    arrays = history_arrays(reply)
    assert reply.rows == 3
    assert {k: a.dtype for k, a in arrays.items()} == BAR_DTYPES
    assert arrays["time"].tolist() == [D0, D0 + 1000, D0 + 2000]
    assert arrays["volume"].tolist() == [10, 0, 30]  # NaN volume read as 0
    assert arrays["preClose"].tolist() == [0.0] * 3 and arrays["suspendFlag"].tolist() == [0] * 3


def test_history_columns_of_nothing_and_of_a_frame_without_time() -> None:
    empty = history_columns("600000.SH", "1d", pd.DataFrame())
    assert empty.rows == 0 and set(empty.columns) == set(BAR_DTYPES)
    assert all(v == b"" for v in empty.columns.values())
    with pytest.raises(BackendError, match="no 'time' column"):
        history_columns("600000.SH", "1d", pd.DataFrame({"close": [1.0]}))


def test_dividends_take_the_date_from_the_row_label_without_a_time_column() -> None:
    frame = pd.DataFrame(
        {
            "interest": [0.3, 0.1],
            "stockBonus": [0, 0],
            "stockGift": [0.2, 0],
            "allotNum": [0, 0],
            "allotPrice": [0, 0],
            "gugai": [0, 0],
            "dr": [1.1, 1.01],
        },
        index=["20240601", "20230601"],
    )
    items = dividends_of(frame)
    assert [d.interest for d in items] == [0.1, 0.3]  # oldest first
    assert items[1].time == xt_date_to_ms("20240601") and items[1].stockGift == 0.2
    assert dividends_of(pd.DataFrame()) == []


def test_importing_the_backend_does_not_import_xtquant() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qmtkit.backends.xtquant\n"
        "leaked = [m for m in sys.modules if m.split('.')[0] == 'xtquant']\n"
        "print(leaked)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
