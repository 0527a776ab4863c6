"""A broker rebuilt from its own reports is the broker that wrote them."""

from __future__ import annotations

import random

import msgspec
import pytest

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.sim.broker import Broker
from qmtkit.errors import InvalidArgument
from qmtkit.models import AccountReport, InstrumentDetail, Tick, TradeReportItem
from support.broker import ACC, BUY, DAY, SELL, T0, book, instrument, order

CODES = ("600000.SH", "000001.SZ")
INSTRUMENTS = {c: instrument(c) for c in CODES}


class Recorder:
    """Drives a broker and keeps every report as the journal would, msgpack round-tripped."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.seq: dict[str, int] = {}
        self.log: list[AccountReport] = []

    def emit(self, account_id: str, items: list[TradeReportItem]) -> list[TradeReportItem]:
        for item in items:
            self.seq[account_id] = self.seq.get(account_id, 0) + 1
            raw = msgspec.msgpack.encode(AccountReport(account_id, self.seq[account_id], item))
            self.log.append(msgspec.msgpack.decode(raw, type=AccountReport))
        return items

    def submit(
        self, req: SubmitOrder, tick: Tick | None, now_ms: int, day: int
    ) -> list[TradeReportItem]:
        inst: InstrumentDetail | None = INSTRUMENTS.get(req.stock_code)
        _, items = self.broker.submit(req, book=tick, instrument=inst, now_ms=now_ms, day=day)
        return self.emit(req.account_id, items)

    def cancel(self, account_id: str, order_id: int, now_ms: int) -> list[TradeReportItem]:
        _, items = self.broker.cancel(account_id, order_id, now_ms)
        return self.emit(account_id, items)

    def pairs(self, pairs: list[tuple[str, TradeReportItem]]) -> list[TradeReportItem]:
        for acc, item in pairs:
            self.emit(acc, [item])
        return [item for _, item in pairs]


def state(b: Broker) -> dict[str, object]:
    """Everything a client can observe of the broker."""
    out: dict[str, object] = {
        "accounts": b.known_accounts,
        "next_order_id": b.next_order_id,
        "day": b.day,
    }
    for acc in sorted(b.known_accounts):
        out[acc] = (
            b.asset(acc),
            sorted(b.positions(acc), key=lambda p: p.stock_code),
            b.orders(acc),
            b.orders(acc, cancelable_only=True),
            b.trades(acc),
        )
    return out


def _items(log: list[AccountReport]) -> list[tuple[str, TradeReportItem]]:
    """The reports without their per-stream ``seq``."""
    return [(r.account_id, r.item) for r in log]


def restored(rec: Recorder) -> Broker:
    return Broker.restore(rec.log)


def test_restore_keeps_frozen_cash_t1_volumes_and_resting_orders() -> None:
    rec = Recorder(Broker())
    # yesterday: 1000 bought and settled
    rec.submit(order(BUY, 1000, 10.0), book(asks=[(10.0, 1000)]), T0, DAY)
    rec.pairs(rec.broker.roll_day(DAY + 1))
    # today: 300 more bought (not sellable), a resting buy, a resting partly-filled sell,
    # a refused order and a canceled one
    day = DAY + 1
    rec.submit(order(BUY, 300, 10.0), book(asks=[(10.0, 300)], time=T0 + 1), T0 + 1, day)
    rec.submit(order(BUY, 500, 9.8), book(time=T0 + 2), T0 + 2, day)
    rec.submit(order(SELL, 600, 10.1), book(bids=[(10.1, 200)], time=T0 + 3), T0 + 3, day)
    rec.submit(order(BUY, 150, 9.9), None, T0 + 4, day)
    rec.submit(order(BUY, 100, 9.7), None, T0 + 5, day)
    rec.cancel(ACC, 6, T0 + 6)

    before = state(rec.broker)
    again = restored(rec)
    assert state(again) == before
    asset = again.asset(ACC)
    assert asset.frozen_cash == 4905.05  # 500 x 9.80 = 4900 + 5.00 + 0.05
    (pos,) = again.positions(ACC)
    assert (pos.volume, pos.can_use_volume, pos.frozen_volume) == (1100, 400, 400)
    assert [o.order_id for o in again.orders(ACC, cancelable_only=True)] == [3, 4]


def test_restored_broker_carries_on_exactly_like_the_original() -> None:
    rec = Recorder(Broker())
    rec.submit(order(BUY, 500, 9.9), book(), T0, DAY)
    rec.submit(order(BUY, 500, 10.0), book(asks=[(10.0, 100)]), T0, DAY)
    again = Recorder(restored(rec))
    for r in (rec, again):
        r.pairs(r.broker.on_tick(book(time=T0 + 9, asks=[(9.9, 2000)]), T0 + 9))
        r.submit(order(BUY, 200, 10.02), book(time=T0 + 10), T0 + 10, DAY)
    assert _items(again.log) == _items(rec.log)[-len(again.log) :]
    assert state(again.broker) == state(rec.broker)


def test_order_ids_are_not_reused_after_restore() -> None:
    rec = Recorder(Broker())
    for _ in range(3):
        rec.submit(order(BUY, 100, 9.5), None, T0, DAY)
    rec.submit(order(BUY, 150, 9.5), None, T0, DAY)  # refused, still consumes id 4
    again = restored(rec)
    resp, _ = again.submit(
        order(BUY, 100, 9.5), book=None, instrument=INSTRUMENTS["600000.SH"], now_ms=T0, day=DAY
    )
    assert resp.order_id == 5


def test_restore_after_a_quiet_roll_only_needs_the_roll_repeated() -> None:
    rec = Recorder(Broker())
    rec.submit(order(BUY, 1000, 10.0), book(asks=[(10.0, 1000)]), T0, DAY)
    rec.pairs(rec.broker.roll_day(DAY + 1))
    rec.submit(order(SELL, 1000, 10.0), book(time=T0 + 1), T0 + 1, DAY + 1)
    rec.pairs(rec.broker.roll_day(DAY + 2))  # drops the sold-out position without a report
    again = restored(rec)
    # the journal knows nothing dated DAY + 2 yet: repeating the roll emits nothing new
    assert again.day == DAY + 1
    assert again.roll_day(DAY + 2) == []
    assert state(again) == state(rec.broker)


def test_restore_refuses_foreign_records() -> None:
    with pytest.raises(InvalidArgument, match="AccountReport"):
        Broker.restore([{"seq": 1}])  # type: ignore[list-item]


def test_account_without_activity_is_restored_from_its_first_asset() -> None:
    rec = Recorder(Broker(initial_cash=42_000.0))
    rec.emit("B", rec.broker.open_account("B"))
    again = Broker.restore(rec.log)  # default initial cash differs: the report wins
    assert again.known_accounts == {"B"}
    assert again.asset("B").cash == 42_000.0


def _random_session(rng: random.Random, rec: Recorder, steps: int, day: int, t: int) -> int:
    for _ in range(steps):
        t += 1000
        code = rng.choice(CODES)
        acc = rng.choice(("A1", "A2"))
        mid = rng.choice((9.9, 10.0, 10.1))
        tick = book(
            code,
            last=mid,
            asks=[(round(mid + 0.01 * i, 2), rng.choice((100, 250, 500))) for i in range(1, 4)],
            bids=[(round(mid - 0.01 * i, 2), rng.choice((100, 250, 500))) for i in range(3)],
            time=t,
        )
        op = rng.random()
        if op < 0.5:
            side = rng.choice((BUY, SELL))
            pt = rng.choice((11, 11, 11, 5, 44, 45, 43 if code.endswith("SH") else 47, 48))
            if side == SELL:
                held = {p.stock_code: p.can_use_volume for p in rec.broker.positions(acc)}
                vol = held.get(code, 0) or 100
            else:
                vol = rng.choice((100, 300, 800, 150))
            price = round(mid + rng.choice((-0.03, 0.0, 0.02)), 2)
            req = order(side, vol, price, code=code, price_type=pt, account=acc)
            rec.submit(req, tick if rng.random() < 0.8 else None, t, day)
        elif op < 0.8:
            rec.pairs(rec.broker.on_tick(tick, t))
        else:
            open_orders = rec.broker.orders(acc, cancelable_only=True)
            target = rng.choice(open_orders).order_id if open_orders else 10**6
            rec.cancel(acc, target, t)
    return t


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sessions_restore_exactly(seed: int) -> None:
    rng = random.Random(seed)
    rec = Recorder(Broker(initial_cash=200_000.0))
    t = T0
    for d in range(3):
        t = _random_session(rng, rec, 60, DAY + d, t)
        if d < 2:
            rec.pairs(rec.broker.roll_day(DAY + d + 1))
    assert any(type(r.item).__name__ == "Trade" for r in rec.log)
    again = Broker.restore(rec.log, initial_cash=200_000.0)
    assert state(again) == state(rec.broker)
    # and both keep going identically
    twin = Recorder(again)
    for r in (rec, twin):
        _random_session(random.Random(seed + 100), r, 40, DAY + 2, t)
    assert _items(twin.log) == _items(rec.log)[-len(twin.log) :]
