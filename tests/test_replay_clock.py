"""The replay's clock: exact jumps, never backwards, and every kind of sleeper woken when due."""

from __future__ import annotations

import anyio
import pytest

from qmtkit.backends.replay.clock import ReplayClock
from qmtkit.clock import VirtualClock


def test_advance_to_sets_the_exact_time_and_refuses_to_go_back() -> None:
    clock = ReplayClock(1_000)
    clock.advance_to(1_000)
    clock.advance_to(86_400_000 + 1)
    assert clock.now_ms() == 86_400_000 + 1
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(5)
    assert clock.now_ms() == 86_400_000 + 1


async def test_sleepers_of_both_kinds_wake_when_due_and_not_before() -> None:
    clock = ReplayClock(0)
    woke: list[str] = []

    async def replay_sleeper() -> None:
        await clock.sleep(2.0)
        woke.append("replay")

    async def virtual_sleeper() -> None:
        # VirtualClock's own sleep, on the same clock: its waiters list, not the heap.
        await VirtualClock.sleep(clock, 3.0)
        woke.append("virtual")

    async with anyio.create_task_group() as tg:
        tg.start_soon(replay_sleeper)
        tg.start_soon(virtual_sleeper)
        await anyio.wait_all_tasks_blocked()
        clock.advance_to(1_999)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        clock.advance_to(2_000)
        await anyio.wait_all_tasks_blocked()
        assert woke == ["replay"] and clock.woken == 1
        clock.advance_to(3_000)
        await anyio.wait_all_tasks_blocked()
        assert woke == ["replay", "virtual"]
        assert clock.now_ms() == 3_000
