"""One task-group shape shared by every lifetime that yields to its caller (backends, the client).

A lifetime such as ``Backend.open`` runs its own tasks while the caller's code runs inside
``async with``. Should the caller's code raise, the caller must get its own exception back as it
was, not wrapped in an ``ExceptionGroup`` by the task group it cannot see. ``lifetime_tasks``
holds that rule once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc


def cancel_tasks(tg: anyio.abc.TaskGroup) -> None:
    """The default end of a lifetime: cancel every task of its group."""
    tg.cancel_scope.cancel()


@asynccontextmanager
async def lifetime_tasks(
    on_exit: Callable[[anyio.abc.TaskGroup], None] = cancel_tasks,
) -> AsyncIterator[anyio.abc.TaskGroup]:
    """A task group around the caller's code; ``on_exit(tg)`` ends its tasks when the code ends.

    An ``Exception`` the caller's code raises is re-raised after the group has closed, unwrapped.
    """
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        try:
            yield tg
        except Exception as exc:
            failure = exc
        finally:
            on_exit(tg)
    if failure is not None:
        raise failure
