"""A replay step's records shared out to its quote subscriptions (``backends.replay.quotes``).

Each subscription must get exactly the records of its codes, in the step's order: what
testing every record against its codes gives, whichever way the split finds them (places
in an aligned step, a code's record found once per step, or the test itself).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
import pytest

import qmtkit
from qmtkit.backends.replay.quotes import QuoteSub, split_step
from qmtkit.data.cache import Cache
from qmtkit.models import Bar
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars

NAMES = ["000001.SZ", "000002.SZ", "600000.SH", "600004.SH", "600006.SH"]
INDEX = {c: i for i, c in enumerate(NAMES)}


@dataclass(frozen=True)
class Rec:
    stock_code: str
    n: int = 0


def _plain(items: list[Rec], sub: QuoteSub) -> list[Rec]:
    return items if not sub.codes else [r for r in items if r.stock_code in sub.codes]


def _subs() -> list[QuoteSub]:
    every = [frozenset(c) for r in range(len(NAMES) + 1) for c in itertools.combinations(NAMES, r)]
    return [QuoteSub.of(i, codes, INDEX) for i, codes in enumerate(every)]


def _check(items: list[Rec], places: list[int] | None, aligned: bool = False) -> None:
    subs = _subs()
    arr = None if places is None else np.asarray(places, dtype=np.int64)
    got = list(split_step(items, subs, arr, aligned=aligned))
    assert [s for s, _ in got] == subs
    for sub, chosen in got:
        assert chosen == _plain(items, sub), sorted(sub.codes)


def test_an_aligned_step() -> None:
    _check([Rec(c) for c in NAMES], None, aligned=True)


@pytest.mark.parametrize("present", [[0, 2, 3], [1], [], [0, 1, 2, 3, 4], [4]])
def test_a_step_with_some_codes(present: list[int]) -> None:
    _check([Rec(NAMES[i]) for i in present], present)


def test_without_places_or_with_a_code_twice_every_record_is_tested() -> None:
    items = [Rec(NAMES[0]), Rec(NAMES[2], 1), Rec(NAMES[2], 2), Rec(NAMES[4])]
    _check(items, None)  # a step of ticks
    _check(items, [0, 2, 2, 4])  # a code twice
    _check(items[:2], [0, 2, 4])  # places that do not match the records one for one


def test_a_subscription_of_every_code_gets_the_step_itself() -> None:
    items = [Rec(c) for c in NAMES]
    ((_, chosen),) = split_step(items, [QuoteSub.of(1, frozenset(), INDEX)], None, aligned=True)
    assert chosen is items


# --------------------------------------------------------------------------- in a backtest

C = "600004.SH"


@pytest.mark.parametrize("aligned", [True, False])
async def test_several_subscriptions_over_a_backtest(tmp_path: Path, aligned: bool) -> None:
    data = {A: _bars(RISING), B: _bars(FLAT), C: _bars(RISING)}
    if not aligned:
        data[A] = _bars(RISING[2:], DAYS[2:])  # starts on the third day
        data[B] = _bars(FLAT[:2] + FLAT[3:], DAYS[:2] + DAYS[3:])  # no bar on the third day
    Cache(tmp_path).write_bars("1d", data)
    url = f"backtest://?start={DAYS[0]}&end={DAYS[-1]}&codes={A},{B},{C}"
    sets = [[A], [B], [C], [A, C], [B, C], [A, B]]
    got: dict[int, list[list[Bar]]] = {i: [] for i in range(-1, len(sets))}

    async def read(i: int, codes: list[str]) -> None:
        async with qk.subscribe(codes, "1d") as sub:
            async for batch in sub:
                got[i].append(batch)

    async with qmtkit.connect(url, home=tmp_path) as qk, anyio.create_task_group() as tg:
        tg.start_soon(read, -1, [A, B, C])
        for i, codes in enumerate(sets):
            tg.start_soon(read, i, codes)
    whole = got[-1]
    assert len(whole) == len(DAYS)
    assert sum(len(b) for b in whole) == (18 if aligned else 15)
    for i, codes in enumerate(sets):
        expected = [kept for b in whole if (kept := [x for x in b if x.stock_code in codes])]
        assert got[i] == expected, codes
