"""``Broker.mark_and_snapshot`` is ``mark_held`` followed by each account's held rows."""

from __future__ import annotations

import random

from qmtkit.backends.sim.broker import Broker
from support.broker import BUY, DAY, SELL, T0, book, instrument, order

CODES = tuple(f"60{i:04d}.SH" for i in range(8))


def _traded(accounts: tuple[str, ...]) -> Broker:
    rng = random.Random(5)
    broker = Broker(initial_cash=10_000_000.0)
    for acc in accounts:
        broker.open_account(acc)
    for step in range(200):
        acc, code = rng.choice(accounts), rng.choice(CODES)
        mid = round(rng.uniform(5, 15), 2)
        inst = instrument(code, pre_close=mid, up=round(mid * 1.1, 2), down=round(mid * 0.9, 2))
        tick = book(code, last=mid, asks=[(mid, 10_000)], bids=[(mid, 10_000)], time=T0 + step)
        side = rng.choice((BUY, BUY, SELL))
        volume = 300 if side == BUY else broker.holding(acc, code)[1]
        if volume:
            req = order(side, volume, mid, code=code, account=acc)
            broker.submit(req, book=tick, instrument=inst, now_ms=T0 + step, day=DAY)
    return broker


def _rows(broker: Broker, acc: str) -> list[tuple[str, int, int, float]]:
    return [h for h in broker.holdings(acc) if h[1] > 0]


def test_mark_and_snapshot_equals_mark_held_then_the_holdings() -> None:
    for accounts in (("A1",), ("A1", "A2")):
        prices = {c: round(10 + i / 7, 3) for i, c in enumerate(CODES[:5])}

        def fallback(code: str) -> float | None:
            return None if code == CODES[5] else 9.5

        marked, snapped = _traded(accounts), _traded(accounts)
        marked.mark_held(prices, fallback)
        held = snapped.mark_and_snapshot(prices, fallback)
        assert sorted(held) == sorted(accounts)
        for acc in accounts:
            codes, volumes, usable, closes = held[acc]
            assert list(zip(codes, volumes, usable, closes, strict=True)) == _rows(marked, acc)
            assert snapped.asset(acc) == marked.asset(acc)
            assert snapped.positions(acc) == marked.positions(acc)
        assert any(held[acc][0] for acc in accounts)
