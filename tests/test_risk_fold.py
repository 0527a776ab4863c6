"""The book's one-function report folding does what its general methods do, report by report."""

from __future__ import annotations

import random

import pytest

from qmtkit.models import AccountReport, Asset, Order, Position, Trade
from qmtkit.risk.book import AccountBook

T0 = 1_796_000_000_000  # a fixed instant; nothing here reads the wall clock
CODES = ("600000.SH", "000001.SZ")
STATUSES = (48, 50, 50, 55, 55, 53, 54, 56, 56, 57)


def _state(book: AccountBook) -> tuple[object, ...]:
    def row(o: object) -> tuple[object, ...]:
        return tuple(getattr(o, f) for f in ("key", "code", "buy", "price", "volume", "submit_ms"))

    return (
        [row(o) for o in book.sent],
        {k: row(o) for k, o in book.open.items()},
        {c: sorted(d) for c, d in book.by_code.items()},
        dict(book.open_buy_volume),
        dict(book.open_sell_volume),
        round(book.open_buy_notional, 6),
        set(book.done),
        dict(book.marks),
        dict(book.mark_ms),
        dict(book.positions),
        book.total_asset,
        book.market_value,
    )


def _general(book: AccountBook, report: AccountReport, clock: list[int], seen: list[float]) -> None:
    """The reference: each report through the book's general method for its kind."""
    if report.account_id != "acct":
        return
    item = report.item
    if isinstance(item, Order):
        book.on_order(item, lambda: clock[0])
    elif isinstance(item, Trade):
        book.on_trade(item, clock[0])
    elif isinstance(item, Position):
        book.on_position(item)
    elif isinstance(item, Asset):
        book.on_asset(item)
        seen.append(item.total_asset)


def _report(
    rng: random.Random, sent: list[tuple[str, bool, float, int]], ids: int
) -> AccountReport:
    """A report of some kind: mostly an order's first or later report naming a sent order (or
    near-misses of one), fills, holdings, totals, and now and then another account's."""
    account = "acct" if rng.random() < 0.9 else "other"
    kind = rng.random()
    if kind < 0.6:
        if sent and rng.random() < 0.7:
            code, buy, price, volume = rng.choice(sent)
            if rng.random() < 0.2:  # the same order but for one field
                price = price + 0.01 if rng.random() < 0.5 else price
                volume = volume + 100 if rng.random() < 0.5 else volume
        else:
            code, buy = rng.choice(CODES), rng.random() < 0.5
            price, volume = rng.choice([0.0, 9.9, 10.0]), rng.choice([100, 300])
        traded = rng.choice([0, 0, 100, volume, volume + 100])
        item: Order | Trade | Position | Asset = Order(
            account_id=account,
            stock_code=code,
            order_id=rng.randint(1, ids),
            order_type=23 if buy else 24,
            order_volume=volume,
            price_type=11 if price > 0 else 5,
            price=price,
            traded_volume=traded,
            order_status=rng.choice(STATUSES),
        )
    elif kind < 0.8:
        price = rng.choice([0.0, 9.95, 10.05])
        item = Trade(account_id=account, stock_code=rng.choice(CODES), order_type=23,
                     traded_id="t", traded_time=0, traded_price=price, traded_volume=100,
                     traded_amount=price * 100, order_id=rng.randint(1, ids))  # fmt: skip
    elif kind < 0.9:
        item = Position(account_id=account, stock_code=rng.choice(CODES),
                        volume=rng.choice([0, 100, 500]), can_use_volume=0, open_price=10.0,
                        market_value=0.0, last_price=rng.choice([0.0, 10.2]))  # fmt: skip
    else:
        item = Asset(account_id=account, cash=1e5, frozen_cash=0.0, market_value=5e4,
                     total_asset=rng.choice([1e5, 1.5e5]), fetch_balance=1e5)  # fmt: skip
    return AccountReport(account_id=account, seq=0, item=item)


@pytest.mark.parametrize("seed", range(10))
def test_the_folding_function_leaves_the_book_as_the_general_methods_do(seed: int) -> None:
    rng = random.Random(seed)
    clock = [T0]
    fast, slow = AccountBook(), AccountBook()
    seen_fast: list[float] = []
    seen_slow: list[float] = []
    passed: list[AccountReport] = []
    fold = fast.report_folder("acct", lambda: clock[0], seen_fast.append, passed.append)
    sent: list[tuple[str, bool, float, int]] = []
    key = 0
    reports: list[AccountReport] = []
    for _ in range(400):
        clock[0] += rng.choice([0, 1, 700])
        if rng.random() < 0.35:  # an order let through: it rests in both books as sent
            code, buy = rng.choice(CODES), rng.random() < 0.6
            price, volume = rng.choice([0.0, 9.9, 10.0, 10.1]), rng.choice([100, 200, 300])
            key -= 1
            for book in (fast, slow):
                book.send(key, code, buy, price, volume, clock[0])
            sent.append((code, buy, price, volume))
            continue
        report = _report(rng, sent, ids=40)
        reports.append(report)
        fold(report)
        _general(slow, report, clock, seen_slow)
        assert _state(fast) == _state(slow), report
    assert seen_fast == seen_slow
    assert passed == reports  # every report goes on, in order, whoever's it is
    # The stream reached the inline paths and the general one.
    assert fast.done and fast.marks and not all(o.key < 0 for o in fast.open.values())


def test_a_folding_function_without_a_sink_only_folds() -> None:
    book = AccountBook()
    fold = book.report_folder("acct", lambda: T0, lambda total: None, None)
    book.send(-1, CODES[0], True, 10.0, 300, T0)
    fold(AccountReport(account_id="acct", seq=1, item=Order(account_id="acct",
         stock_code=CODES[0], order_id=7, order_type=23, order_volume=300, price_type=11,
         price=10.0, traded_volume=100, order_status=55)))  # fmt: skip
    assert not book.sent and book.open[7].volume == 200 and book.open_buy_volume[CODES[0]] == 200
