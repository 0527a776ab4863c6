"""lifetime_tasks: the caller's error comes back as it was; the lifetime's tasks end with it."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from qmtkit._tasks import lifetime_tasks


async def test_the_callers_error_comes_back_unwrapped() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with lifetime_tasks() as tg:
            tg.start_soon(anyio.sleep_forever)
            raise KeyError("mine")


async def test_the_lifetimes_tasks_are_cancelled_when_the_caller_leaves() -> None:
    ended = anyio.Event()

    async def task() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.set()

    async with lifetime_tasks() as tg:
        tg.start_soon(task)
        await anyio.sleep(0)
    assert ended.is_set()


async def test_on_exit_ends_the_lifetime_its_own_way() -> None:
    seen: list[str] = []

    def on_exit(tg: anyio.abc.TaskGroup) -> None:
        seen.append("closing")
        tg.cancel_scope.cancel()

    with pytest.raises(ValueError):
        async with lifetime_tasks(on_exit) as tg:
            tg.start_soon(anyio.sleep_forever)
            raise ValueError
    assert seen == ["closing"]
