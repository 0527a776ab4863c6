"""A quiet account's day roll settles only the holdings that changed since the last roll; its
state after every roll must be what the full roll of a followed account gives."""

from __future__ import annotations

import random

from qmtkit.backends.sim.broker import Broker
from support.broker import ACC, BUY, DAY, SELL, T0, book, instrument, order

CODES = tuple(f"60{i:04d}.SH" for i in range(12))


def _state(broker: Broker) -> list[tuple[object, ...]]:
    return [
        (p.stock_code, p.volume, p.can_use_volume, p.frozen_volume, p.yesterday_volume)
        for p in broker.positions(ACC)
    ]


def test_a_quiet_accounts_roll_leaves_the_same_holdings_as_the_full_roll() -> None:
    rng = random.Random(11)
    followed, quiet = Broker(initial_cash=50_000_000.0), Broker(initial_cash=50_000_000.0)
    for b in (followed, quiet):
        b.open_account(ACC)
    quiet.state_reports(ACC, False)
    day, now = DAY, T0
    for step in range(600):
        code = rng.choice(CODES)
        mid = round(rng.uniform(5, 15), 2)
        inst = instrument(code, pre_close=mid, up=round(mid * 1.1, 2), down=round(mid * 0.9, 2))
        # A thin book: some orders rest partly filled and are still frozen at the roll.
        tick = book(code, last=mid, asks=[(mid, 200)], bids=[(mid, 200)], time=now)
        side = rng.choice((BUY, BUY, SELL))
        for b in (followed, quiet):
            sellable = b.holding(ACC, code)[1]
            volume = random.Random(step).choice((100, 300, 500)) if side == BUY else sellable
            if volume > 0:
                b.submit(
                    order(side, volume, mid, code=code),
                    book=tick,
                    instrument=inst,
                    now_ms=now,
                    day=day,
                )
            if step % 97 == 50:
                b.ex_rights(code, 0.1, 0.3)
        now += 1000
        if step % 25 == 24:
            day += 1
            now += 86_400_000
            for b in (followed, quiet):
                b.roll_day(day)
            assert _state(quiet) == _state(followed)
    assert any(v for *_, v in _state(quiet))  # holdings carried over days were compared
