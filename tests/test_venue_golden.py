"""The paper venues' whole output over seeded scenarios, pinned byte for byte.

Written when the paper broker's account side (broker, journal, report numbering, account
requests) became one piece shared by ``sim://``, ``backtest://`` and ``paper+...``: the
recomposition had to leave every journal byte, pushed report, reply and result the same.

- ``sim://``: a seeded mix of orders (every price type, odd volumes, unknown and later-listed
  codes, bad accounts), cancels by id and by sysid, queries, ticks that fill resting orders and
  day rolls, on a ``VirtualClock``. The digest covers the journal file, every report and quote
  pushed to the sink and every reply (or refusal) in order.
- ``paper+``: the same mix against a ``PaperBackend`` whose quote source is a simulator on the
  same virtual clock. (Its pins changed once, on purpose, with the recomposition: the paper
  venue's journal now writes each state change as one group, as the simulator's always did;
  every report pushed, every reply and the journal's records in order stayed the same.)
- ``backtest://``: the result digests of small seeded backtests (per-bar strategy with orders,
  cancels and queries; cross-sectional form; every fill model; ticks).

A change of behaviour changes a digest: if it is meant, say so in CHANGELOG.md and update the
pins (run this file: ``python tests/test_venue_golden.py``).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import numpy as np
import pytest

from qmtkit.backends import paper as paper_module
from qmtkit.backends.base import (
    CancelOrder,
    CancelOrderSysid,
    ConnectionState,
    GetSnapshot,
    OpenAccount,
    QueryAccountInfos,
    QueryAccountStatus,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    QueryTrades,
    Request,
    Snapshots,
    SubmitOrder,
    SubscribeQuotes,
)
from qmtkit.backends.paper import PaperBackend
from qmtkit.backends.sim import SimBackend
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.clock import VirtualClock
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import trading_days, yyyymmdd_to_ms
from qmtkit.data.schema import TICK_DTYPES
from qmtkit.errors import QmtkitError
from qmtkit.models import AccountReport, Order, QuoteBatch

START = 1_717_380_000_000  # 2024-06-03 10:00 +08:00, a Monday morning session
CODES = ("600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "430047.BJ")
ODD = ("688713.SH", "999999.SH", "nonsense")  # listed later, unknown, not a code
ACCOUNTS = ("G1", "G2")

SIM_DIGESTS = {
    1: "42d2d1501115656f1bc8180261311311b3ff40e1e0ab18afc4714067be02de3f",
    2: "c528ecb7338630446acf16c624e05847663b87acf68c63fe4b3ad4a1ae61fc60",
    3: "78b88de0277e684b12224c6e576d36d0127777c3d7428d81e3684270ece5931e",
}
PAPER_DIGESTS = {
    1: "0bc247da1bafaaab3c8b982cf68bc6258d7679d4ef760f69210714c664f2f953",
    2: "4ff8857f67a6b57b6c78530094428eb49bb91cdc3ea5556c738dfb3e1af0503b",
}
BACKTEST_DIGESTS = {
    "per_bar_next_open": "8133e026c87d24e42632a1f993e23d0554dd6d15e50afcc1c8e2c58215173b71",
    "per_bar_close": "38f2e46fdcf55f7310107186150a38d425d37a45654073aa0dc9ee7e87cd096c",
    "per_bar_qmt": "7a5d7179b3de466a98b8221ebc9fb211a753c065df1c38f828d79eb8aca1b619",
    "on_bars_next_open": "dcbbe0f322fd2f912db0c48834fc1a4d110d15dffc9cf58211122a9e6f5f5533",
    "ticks": "b8709b7e3749e53c4d70f6fc31c609eb42c08777db1f6a1b1f4bf56f75a1943c",
}


class Sink:
    """An EventSink hashing everything pushed into it, in order."""

    def __init__(self, h: Any) -> None:
        self.h = h
        self.enc = msgspec.msgpack.Encoder()
        self.orders: list[tuple[str, int, str]] = []  # (account, order id, sysid)

    def on_quotes(self, batch: QuoteBatch) -> None:
        self.h.update(b"Q" + self.enc.encode(batch))

    def on_report(self, report: AccountReport) -> None:
        self.h.update(b"R" + self.enc.encode(report))
        item = report.item
        if isinstance(item, Order) and item.order_id > 0:
            self.orders.append((report.account_id, item.order_id, item.order_sysid))

    def on_connection(self, state: ConnectionState) -> None:
        self.h.update(b"C" + self.enc.encode(state))


async def scenario(
    rng: random.Random,
    request: Callable[[Request], Awaitable[object]],
    clock: VirtualClock,
    sink: Sink,
    steps: int,
) -> None:
    """A seeded mix of account requests, clock moves and day rolls; every answer hashed."""
    enc = msgspec.msgpack.Encoder()

    async def ask(req: Request) -> object:
        try:
            reply = await request(req)
        except QmtkitError as exc:
            sink.h.update(f"E{type(exc).__name__}:{exc}".encode())
            return None
        sink.h.update(b"A" + enc.encode(reply))
        return reply

    for account in ACCOUNTS:
        await ask(OpenAccount(account))
    await ask(SubscribeQuotes(1, list(CODES[:2]), "tick"))
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.45:
            code = rng.choice(CODES) if rng.random() < 0.92 else rng.choice(ODD)
            snap = await ask(GetSnapshot([code])) if code in CODES else None
            ticks = snap.items if isinstance(snap, Snapshots) else []
            mid = ticks[0].lastPrice if ticks else 10.0
            side = 23 if rng.random() < 0.65 else 24
            price_type = rng.choice((11, 11, 11, 5, 42, 43, 44, 45, 46, 47, 48))
            offset = rng.choice((-3, -1, 0, 0, 1, 2, 5)) * 0.01 * (1 if side == 23 else -1)
            volume = rng.choice((100, 200, 500, 1000, 150, 0, 3000))
            account = rng.choice(ACCOUNTS) if rng.random() < 0.97 else ""
            await ask(SubmitOrder(account, code, side, volume, price_type, round(mid + offset, 2)))
        elif roll < 0.55 and sink.orders:
            account, order_id, sysid = rng.choice(sink.orders)
            if rng.random() < 0.7:
                await ask(CancelOrder(account, order_id))
            else:
                market = 0 if sysid.endswith("SH") or rng.random() < 0.5 else 1
                await ask(CancelOrderSysid(account, market, sysid))
        elif roll < 0.70:
            account = rng.choice(ACCOUNTS)
            query = rng.choice(
                (
                    QueryAsset(account),
                    QueryPositions(account),
                    QueryOrders(account, cancelable_only=rng.random() < 0.5),
                    QueryTrades(account),
                    QueryAccountInfos(),
                    QueryAccountStatus(),
                )
            )
            await ask(query)
        elif roll < 0.97:
            clock.advance(rng.choice((3, 3, 6, 30, 90, 600)))
            await anyio.wait_all_tasks_blocked()
        else:  # the next morning: a day roll (T+1, expiry)
            clock.advance(rng.choice((18, 22, 24)) * 3600)
            await anyio.wait_all_tasks_blocked()


async def sim_digest(home: Path, seed: int) -> str:
    h = hashlib.sha256()
    clock = VirtualClock(START)
    backend = SimBackend(home=home, clock=clock)
    sink = Sink(h)
    async with backend.open(sink):
        await scenario(random.Random(seed), backend.request, clock, sink, 160)
    h.update(b"J" + (backend.state_dir / "journal.bin").read_bytes())
    return h.hexdigest()


async def paper_digest(home: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> str:
    h = hashlib.sha256()
    clock = VirtualClock(START)
    monkeypatch.setattr(paper_module, "wall_ms", clock.now_ms)
    source = SimBackend(home=home / "venue", clock=clock)
    backend = PaperBackend(source, home=home / "paper", book_unit="shares")
    sink = Sink(h)
    async with backend.open(sink):
        await scenario(random.Random(seed), backend.request, clock, sink, 120)
    h.update(b"J" + (backend.state_dir / "journal.bin").read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- backtests

N_CODES, N_DAYS = 6, 60


def bt_codes() -> list[str]:
    return ["000001.SZ", "000002.SZ", "300001.SZ", "600000.SH", "600001.SH", "688001.SH"]


def write_history(home: Path) -> str:
    """Seeded daily bars for a few boards (one code with a suspended day); returns the URL."""
    rng = np.random.default_rng(7)
    t = np.asarray(trading_days("SH", "20240102", None, count=-1)[:N_DAYS], dtype=np.int64)
    bars: dict[str, dict[str, Any]] = {}
    for code in bt_codes():
        p0 = rng.uniform(5, 50)
        ret = np.clip(rng.normal(0, 0.03, N_DAYS), -0.1, 0.1)
        close = np.round(p0 * np.cumprod(1 + ret), 2)
        pre = np.concatenate([[round(p0, 2)], close[:-1]])
        opn = np.round(pre * (1 + np.clip(rng.normal(0, 0.01, N_DAYS), -0.03, 0.03)), 2)
        high = np.round(np.maximum(opn, close) * 1.01, 2)
        low = np.round(np.minimum(opn, close) * 0.99, 2)
        vol = rng.integers(5, 400, N_DAYS)
        if code == "600001.SH":
            vol[10] = 0
        bars[code] = {
            "time": t,
            "open": opn,
            "high": high,
            "low": low,
            "close": close,
            "volume": vol,
            "amount": close * vol * 100,
            "preClose": pre,
        }
    Cache(home).write_bars("1d", bars)
    return (
        f"backtest://?start=20240102&end=20240401&codes={','.join(bt_codes())}"
        f"&cash=500000&home={home}"
    )


async def per_bar_strategy(qk: Any, account: Any) -> None:
    """Buys, sells, cancels and queries, chosen by a seeded generator per bar."""
    rng = random.Random(11)
    async with qk.subscribe(bt_codes(), "1d") as bars:
        async for batch in bars:
            for bar in batch:
                roll = rng.random()
                if roll < 0.3:
                    price = round(bar.close * rng.choice((0.97, 1.0, 1.02, 1.09)), 2)
                    await account.buy(bar.stock_code, rng.choice((100, 300, 4000)), price)
                elif roll < 0.5:
                    pos = await account.position(bar.stock_code)
                    if pos is not None and pos.can_use_volume:
                        price = round(bar.close * rng.choice((0.92, 0.99, 1.03)), 2)
                        await account.sell(bar.stock_code, pos.can_use_volume, price)
                elif roll < 0.6:
                    for order in await account.orders(cancelable_only=True):
                        await account.cancel(order.order_id)
                elif roll < 0.65:
                    await account.asset()


def on_bars_strategy(frame: Any, ctx: BarContext) -> None:
    for code, close in zip(frame["code"].to_list(), frame["close"].to_list(), strict=True):
        if int(close * 100) % 7 == 0 and ctx.position(code) == 0:
            ctx.buy(code, 200, round(close * 1.05, 2))
        elif int(close * 100) % 5 == 0 and ctx.sellable(code):
            ctx.sell(code, ctx.sellable(code), round(close * 0.95, 2))


def write_ticks(home: Path) -> str:
    rng = np.random.default_rng(3)
    n = 400
    day0 = int(yyyymmdd_to_ms([20240102])[0])
    t = day0 + 9 * 3_600_000 + 30 * 60_000 + np.arange(n, dtype=np.int64) * 3000
    data = {}
    for code in ("600000.SH", "000001.SZ", "300001.SZ"):
        price = np.round(10 * np.cumprod(1 + rng.normal(0, 0.001, n)), 2)
        cols = {k: np.zeros(n, dtype=d) for k, d in TICK_DTYPES.items()}
        cols.update(time=t, lastPrice=price, open=price, high=price, low=price)
        cols.update(lastClose=np.full(n, 10.0), volume=np.arange(n) * 10)
        cols.update(askPrice1=price + 0.01, bidPrice1=price, askVol1=rng.integers(1, 9, n))
        cols.update(bidVol1=rng.integers(1, 9, n))
        data[code] = cols
    Cache(home).write_bars("tick", data)
    return (
        "backtest://?start=20240102&end=20240102&period=tick"
        f"&codes=600000.SH,000001.SZ,300001.SZ&home={home}"
    )


def on_ticks(frame: Any, ctx: BarContext) -> None:
    for code, price in zip(frame["code"].to_list(), frame["lastPrice"].to_list(), strict=True):
        cents = round(price * 100)
        if cents % 13 == 0:
            ctx.buy(code, 300, round(price + 0.01, 2))
        elif cents % 11 == 0 and ctx.sellable(code):
            ctx.sell(code, 100, round(price, 2))


async def backtest_digest(home: Path, name: str) -> str:
    if name == "ticks":
        url = write_ticks(home)
        return (await run_backtest(url, on_bars=on_ticks)).digest()
    url = write_history(home)
    if name.startswith("per_bar_"):
        fill = name.removeprefix("per_bar_")
        with pytest.warns(UserWarning) if fill == "close" else _nothing():
            result = await run_backtest(f"{url}&fill={fill}", per_bar_strategy)
        return result.digest()
    return (await run_backtest(url, on_bars=on_bars_strategy)).digest()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", sorted(SIM_DIGESTS))
async def test_sim_journal_reports_and_replies_are_unchanged(tmp_path: Path, seed: int) -> None:
    assert await sim_digest(tmp_path, seed) == SIM_DIGESTS[seed]


@pytest.mark.parametrize("seed", sorted(PAPER_DIGESTS))
async def test_paper_journal_reports_and_replies_are_unchanged(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await paper_digest(tmp_path, seed, monkeypatch) == PAPER_DIGESTS[seed]


@pytest.mark.parametrize("name", sorted(BACKTEST_DIGESTS))
async def test_backtest_results_are_unchanged(tmp_path: Path, name: str) -> None:
    assert await backtest_digest(tmp_path, name) == BACKTEST_DIGESTS[name]


if __name__ == "__main__":  # print the digests of the code as it is
    import tempfile

    async def main() -> None:
        mp = pytest.MonkeyPatch()
        for seed in SIM_DIGESTS:
            with tempfile.TemporaryDirectory() as tmp:
                print("sim", seed, await sim_digest(Path(tmp), seed))
        for seed in PAPER_DIGESTS:
            with tempfile.TemporaryDirectory() as tmp:
                print("paper", seed, await paper_digest(Path(tmp), seed, mp))
        mp.undo()
        for name in BACKTEST_DIGESTS:
            with tempfile.TemporaryDirectory() as tmp:
                print("backtest", name, await backtest_digest(Path(tmp), name))

    anyio.run(main)
