"""Clocks: session hours, trading days and a virtual clock that moves only when told."""

from __future__ import annotations

from datetime import datetime

import anyio
import pytest

from qmtkit.clock import BEIJING, StrictClock, VirtualClock, in_session, trading_day_of


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp() * 1000)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2024-06-03 09:29:59", False),
        ("2024-06-03 09:30:00", True),
        ("2024-06-03 11:29:59", True),
        ("2024-06-03 11:30:00", False),
        ("2024-06-03 12:59:59", False),
        ("2024-06-03 13:00:00", True),
        ("2024-06-03 14:59:59", True),
        ("2024-06-03 15:00:00", False),
        ("2024-06-01 10:00:00", False),  # a Saturday
    ],
)
def test_session_hours_are_beijing_0930_1130_and_1300_1500(when: str, open_: bool) -> None:
    assert in_session(ms(when)) is open_


def test_the_trading_day_is_the_beijing_date() -> None:
    assert trading_day_of(ms("2024-06-03 00:30:00")) == 20240603  # still June 2 in UTC


def test_a_strict_clock_reads_wall_time() -> None:
    clock = StrictClock()
    assert abs(clock.now_ms() - VirtualClock(clock.now_ms()).now_ms()) < 1000


async def test_a_virtual_clock_wakes_sleepers_only_when_advanced_past_their_deadline() -> None:
    clock = VirtualClock(ms("2024-06-03 10:00:00"))
    woke: list[int] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now_ms())

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, 5)
        tg.start_soon(sleeper, 10)
        await anyio.wait_all_tasks_blocked()
        clock.advance(4)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        assert woke == [ms("2024-06-03 10:00:05")]
        clock.advance(60)
    assert len(woke) == 2


def test_a_virtual_clock_cannot_go_back() -> None:
    with pytest.raises(ValueError, match="-1"):
        VirtualClock(0).advance(-1)


def test_a_strict_virtual_clock_follows_session_hours() -> None:
    clock = VirtualClock(ms("2024-06-03 11:29:00"), strict=True)
    assert clock.is_open()
    clock.advance(60)
    assert not clock.is_open()
    assert VirtualClock(ms("2024-06-03 12:00:00")).is_open()  # not strict: always open
