"""The one resume helper: reconnect pace, report cursors, numbering, what a reconnect restores."""

from __future__ import annotations

import random

import pytest

from qmtkit._resume import Backoff, ReportCursor, Resume
from qmtkit.errors import BackendUnavailable
from qmtkit.messages import OpenAccount
from qmtkit.models import AccountReport, Asset, Order, OrderError, Trade


def test_backoff_doubles_up_to_its_maximum() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_jittered_backoff_stays_in_the_upper_half_of_its_window() -> None:
    b = Backoff(1.0, 8.0, random.Random(7))
    for n in range(8):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= b.delay(n) <= ceiling


def test_a_huge_attempt_number_costs_nothing_and_stays_capped() -> None:
    assert Backoff(0.1, 5.0).delay(10**9) == 5.0


def test_the_cursor_drops_replays_and_moves_on_new_reports() -> None:
    c = ReportCursor(2)
    assert [c.take(s) for s in (1, 2, 3, 3, 5)] == [False, False, True, False, True]
    assert c.last == 5


def test_an_unnumbered_report_is_always_new_and_leaves_the_cursor() -> None:
    c = ReportCursor(4)
    assert c.take(0) and c.last == 4


# --------------------------------------------------------------------------- Resume

ACC = "1000000365"


def order(order_id: int, status: int = 50, traded: int = 0, account: str = ACC) -> Order:
    return Order(
        account_id=account,
        stock_code="600000.SH",
        order_id=order_id,
        order_type=23,
        order_volume=100,
        price_type=11,
        price=10.0,
        order_status=status,
        traded_volume=traded,
    )


def trade(order_id: int, traded_id: str) -> Trade:
    return Trade(
        account_id=ACC,
        stock_code="600000.SH",
        order_type=23,
        traded_id=traded_id,
        traded_time=0,
        traded_price=10.0,
        traded_volume=100,
        traded_amount=1000.0,
        order_id=order_id,
    )


def asset(account: str) -> Asset:
    return Asset(
        account_id=account,
        cash=1.0,
        frozen_cash=0.0,
        market_value=0.0,
        total_asset=1.0,
        fetch_balance=1.0,
    )


def report(seq: int, account: str = ACC) -> AccountReport:
    return AccountReport(account_id=account, seq=seq, item=order(seq, account=account))


def resume(keep: int = 100_000) -> Resume[str]:
    return Resume(Backoff(1.0, 4.0), keep=keep)


def test_take_drops_reports_at_or_below_the_last_delivered_seq_per_account() -> None:
    r = resume()
    r.resume_after(ACC, 2)
    assert [r.take(report(s)) for s in (2, 3, 3, 1, 4)] == [False, True, False, False, True]
    assert [r.take(report(s, "other")) for s in (1, 1, 2)] == [True, False, True]
    assert (r.last_seq(ACC), r.last_seq("other"), r.last_seq("nobody")) == (4, 2, 0)


def test_reports_delivered_another_way_move_the_cursor_forward_only() -> None:
    r = resume()
    r.delivered_up_to(ACC, 5)
    r.delivered_up_to(ACC, 3)
    assert r.last_seq(ACC) == 5 and not r.take(report(5)) and r.take(report(6))


def test_reopen_requests_resume_each_open_account_after_its_last_delivered_seq() -> None:
    r = resume()
    r.opened(ACC, 2)
    r.opened("credit", 3)
    r.opened("gone", 2)
    r.closed("gone")
    for seq in (1, 2, 3):
        r.take(report(seq))
    assert r.reopen_requests() == [
        OpenAccount(ACC, 2, after_seq=3),
        OpenAccount("credit", 3, after_seq=0),
    ]
    assert (r.account_type("credit"), r.account_type("gone"), r.is_open(ACC)) == (3, None, True)


def test_subscriptions_are_kept_in_order_until_unsubscribed() -> None:
    r = resume()
    r.subscribed(2, "b")
    r.subscribed(1, "a")
    assert r.unsubscribed(2) == "b" and r.unsubscribed(2) is None
    r.subscribed(3, "c")
    assert r.subscriptions() == ["a", "c"] and r.subscription(3) == "c"
    assert r.drop_subscriptions() == ["a", "c"] and r.subscriptions() == []


async def test_restore_reopens_accounts_then_resubscribes_and_forgets_what_is_refused() -> None:
    r = resume()
    r.opened(ACC, 2)
    r.opened("refused", 2)
    r.subscribed(1, "kept")
    r.subscribed(2, "refused")
    calls: list[object] = []

    async def reopen(req: OpenAccount) -> bool:
        calls.append(req.account_id)
        return req.account_id != "refused"

    async def resubscribe(sub: str) -> bool:
        calls.append(sub)
        return sub != "refused"

    await r.restore(reopen, resubscribe)
    assert calls == [ACC, "refused", "kept", "refused"]
    assert [q.account_id for q in r.reopen_requests()] == [ACC]
    assert r.subscriptions() == ["kept"]


async def test_an_error_during_restore_ends_it_and_forgets_nothing() -> None:
    r = resume()
    r.opened(ACC, 2)
    r.subscribed(1, "sub")

    async def reopen(req: OpenAccount) -> bool:
        raise BackendUnavailable("the link dropped again")

    async def resubscribe(sub: str) -> bool:
        raise AssertionError("not reached")

    with pytest.raises(BackendUnavailable):
        await r.restore(reopen, resubscribe)
    assert r.is_open(ACC) and r.subscriptions() == ["sub"]


def test_next_delay_counts_attempts_until_the_link_is_restored() -> None:
    r = resume()
    assert [r.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    r.link_restored()
    assert r.next_delay() == 1.0


def test_number_gives_each_account_seqs_from_one() -> None:
    r = resume()
    a = r.number(order(1))
    b = r.number(asset(ACC + "x"))
    c = r.number(order(1, status=56, traded=100))
    assert [(x.account_id, x.seq) for x in (a, b, c)] == [(ACC, 1), (ACC + "x", 1), (ACC, 2)]
    assert (r.numbered(ACC), r.numbered("nobody")) == (2, 0)


def test_a_push_sent_again_gets_its_first_seq_and_take_drops_it() -> None:
    r = resume()
    r.resume_after(ACC, 0)
    err = OrderError(account_id=ACC, order_id=2, error_id=-1, error_msg="x")
    pushes = [
        order(1),
        order(1),  # same id, status and traded volume: sent again
        order(1, status=55, traded=50),  # a new state
        trade(1, "T1"),
        trade(1, "T1"),
        trade(9, "T1"),  # the same trade id on another order is another fill
        err,
        err,
    ]
    numbered = [r.number(p) for p in pushes]
    assert [x.seq for x in numbered] == [1, 1, 2, 3, 3, 4, 5, 5]
    assert [r.take(x) for x in numbered] == [True, False, True, True, False, True, True, False]


def test_an_asset_push_is_never_taken_for_a_repeat() -> None:
    r = resume()
    assert [r.number(asset(ACC)).seq for _ in range(2)] == [1, 2]


def test_replay_hands_over_kept_reports_after_a_seq_and_moves_the_cursor_past_them() -> None:
    r = resume(keep=3)
    for i in range(1, 6):
        r.number(order(i))
    assert [x.seq for x in r.replay(ACC, 0)] == [3, 4, 5]  # 1 and 2 were let go
    assert [x.seq for x in r.replay(ACC, 3)] == [4, 5]
    assert r.replay(ACC, 5) == [] and r.replay("nobody", 0) == []
    assert not r.take(r.number(order(5)))  # sent again after the replay
    assert r.take(r.number(order(6)))


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep must be >= 1"):
        Resume(Backoff(1.0, 1.0), keep=0)
