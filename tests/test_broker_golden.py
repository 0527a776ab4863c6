"""The paper broker's whole report stream over a seeded scenario set, pinned byte for byte.

Written when broker.py was split into rules, matching and account state: the split had to leave
every report the same. Each scenario is a seeded random mix of orders (every price type, odd and
bad volumes, off-tick and out-of-limit prices, unknown codes), books, cancels, day rolls and
ex-rights across five boards and three accounts. The digest covers every report, msgpack-encoded,
and the state a broker restored from those reports answers with. A change of behaviour changes
the digest: if the change is meant, say so in CHANGELOG.md and update DIGESTS (run this file:
``python tests/test_broker_golden.py``).
"""

from __future__ import annotations

import hashlib
import random

import msgspec
import pytest

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.sim.broker import Broker
from qmtkit.errors import QmtkitError
from qmtkit.models import AccountReport
from support.broker import FIX, LATEST, book, instrument

CODES = {  # code: (board, pre close, tick)
    "600000.SH": ("main", 10.0, 0.01),
    "000001.SZ": ("main", 12.5, 0.01),
    "688981.SH": ("star", 50.0, 0.01),
    "300750.SZ": ("chinext", 200.0, 0.01),
    "430047.BJ": ("bj", 8.0, 0.01),
}
ACCOUNTS = ("A1", "A2", "A3")
PRICE_TYPES = (FIX, FIX, FIX, LATEST, 42, 43, 44, 45, 46, 47, 48, 99)
DAYS = (20250106, 20250107, 20250108, 20250109)
DAY_MS = 86_400_000
T0 = 1_736_127_000_000  # 2025-01-06 09:30 +08:00
SEEDS = (1, 2, 3, 4, 5, 6)

DIGESTS = {
    1: "738b18180327bf904facad5b92743c1ce9cfb4597ceb853828c4376e868dc118",
    2: "75122e4ed91971457437e8022e3855e800efc4b023ba180406a66c3112df6e7a",
    3: "2f7fb5ca2f5f05a15eef21b0e759200dab5008cccd091e5a77969695539a0f93",
    4: "b9f160063d4e95c1fc584e51e72287e33fc55794d9e97542ba2f77fa9f6879b4",
    5: "81f79e4c943a121a17b6ad2e9d49550ddb02371afa0acd5858877b346adaf4f9",
    6: "198efaad9a1e10c0aac6baf5d6b0f676ab3c1b43e8b87f59f04992897fca95bc",
}


def _book(rng: random.Random, code: str, mid: float, time: int) -> object:
    levels = rng.randint(0, 5)
    asks = [
        (round(mid + 0.01 * (i + 1), 2), rng.choice((100, 300, 1000, 5000))) for i in range(levels)
    ]
    bids = [(round(mid - 0.01 * i, 2), rng.choice((100, 300, 1000, 5000))) for i in range(levels)]
    return book(code, last=round(mid, 2), asks=asks, bids=bids, time=time)


def run(seed: int) -> str:
    """The digest of one scenario's reports and of the restored broker's answers."""
    rng = random.Random(seed)
    broker = Broker(initial_cash=2_000_000.0)
    enc = msgspec.msgpack.Encoder()
    seqs: dict[str, int] = {}
    journal: list[AccountReport] = []
    h = hashlib.sha256()

    def record(account: str, items: object) -> None:
        for item in items:  # type: ignore[attr-defined]
            seqs[account] = seqs.get(account, 0) + 1
            journal.append(AccountReport(account, seqs[account], item))
            h.update(enc.encode(journal[-1]))

    for account in ACCOUNTS:
        record(account, broker.open_account(account))
    mids = {code: pre for code, (_, pre, _) in CODES.items()}
    order_ids: list[tuple[str, int]] = []
    for d, day in enumerate(DAYS):
        for account, item in broker.roll_day(day):
            record(account, [item])
        if d == 2:
            for account, item in broker.ex_rights("600000.SH", 0.25, 0.3):
                record(account, [item])
        for step in range(120):
            now = T0 + d * DAY_MS + step * 3000
            code = rng.choice((*CODES, "600001.SH"))
            board, pre, tick = CODES.get(code, ("main", 10.0, 0.01))
            mids[code] = max(0.5, mids.get(code, pre) + rng.choice((-2, -1, 0, 0, 1, 2)) * tick)
            tk = _book(rng, code, mids[code], now)
            inst = (
                None
                if code not in CODES
                else instrument(
                    code,
                    pre_close=pre,
                    up=round(pre * 1.1, 2),
                    down=round(pre * 0.9, 2),
                    board=board,
                )
            )
            roll = rng.random()
            if roll < 0.55:
                account = rng.choice(ACCOUNTS)
                price = round(mids[code] + rng.choice((-3, -1, 0, 1, 3)) * tick, 2)
                if rng.random() < 0.05:
                    price += 0.005  # off the tick
                req = SubmitOrder(
                    account_id=account,
                    stock_code=code,
                    order_type=rng.choice((23, 23, 24, 24, 25)),
                    order_volume=rng.choice((100, 200, 500, 1000, 150, 0, 3000)),
                    price_type=rng.choice(PRICE_TYPES),
                    price=price,
                    strategy_name="golden",
                    order_remark=f"r{step}",
                )
                try:
                    resp, items = broker.submit(
                        req,
                        book=tk,  # type: ignore[arg-type]
                        instrument=inst,
                        now_ms=now,
                        day=day,
                        market_open=rng.random() > 0.03,
                    )
                except QmtkitError as exc:
                    h.update(repr(exc).encode())
                    continue
                h.update(enc.encode(resp))
                record(account, items)
                if resp.order_id > 0:
                    order_ids.append((account, resp.order_id))
            elif roll < 0.85:
                for account, item in broker.on_tick(tk, now):  # type: ignore[arg-type]
                    record(account, [item])
            elif order_ids:
                account, oid = rng.choice(order_ids)
                if rng.random() < 0.2:
                    account = rng.choice(ACCOUNTS)
                try:
                    result, items = broker.cancel(account, oid, now_ms=now)
                except QmtkitError as exc:
                    h.update(repr(exc).encode())
                    continue
                h.update(enc.encode(result))
                record(account, items)
    restored = Broker.restore(journal, initial_cash=2_000_000.0)
    for account in ACCOUNTS:
        for answer in (
            restored.asset(account),
            restored.orders(account),
            restored.trades(account),
            restored.positions(account),
        ):
            h.update(enc.encode(answer))
    return h.hexdigest()


@pytest.mark.parametrize("seed", SEEDS)
def test_the_report_stream_of_a_seeded_scenario_is_unchanged(seed: int) -> None:
    assert run(seed) == DIGESTS[seed]


if __name__ == "__main__":
    for s in SEEDS:
        print(f"    {s}: {run(s)!r},")
