"""The shim over a backtest (``qmtkit run --backend backtest://...``): keep the replay in step.

The replay moves virtual time only when the event loop is idle, but an xtquant script works on
other threads: its main thread sets up (subscribes, connects a trader) and callbacks run on
dispatcher threads. So, for a ``backtest://`` URL, the bridge opens the backend with a *setup
hold* (``_bridge._held_backtest``) that keeps the replay still until the script calls
``xtdata.run()`` (or the trader's ``run_forever()``), and every callback queued for a
dispatcher holds the replay until it has returned. ``run()`` then blocks until the replay has
passed its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from qmtkit.backends.replay import ReplayBackend
from qmtkit.compat._bridge import Dispatcher, bridge

if TYPE_CHECKING:
    from qmtkit.client import Client


def replay_of(client: Client | None) -> ReplayBackend | None:
    """The backtest behind a shim client, or None for any other backend."""
    backend = client.backend if client is not None else None
    return backend if isinstance(backend, ReplayBackend) else None


def run_replay(client: Client | None) -> bool:
    """Let the replay go and block until it has ended; False if ``client`` is no backtest."""
    backend = replay_of(client)
    if backend is None:
        return False

    async def start() -> None:
        if backend.setup_held:
            backend.setup_held = False
            backend.idle.release()

    b = bridge()
    b.call(start, name="run")
    b.call(backend.finished.wait, name="run")
    return True


def submit_held(
    disp: Dispatcher, client: Client | None, fn: Callable[..., object], *args: object
) -> None:
    """``disp.submit(fn, *args)``, holding a backtest's replay until ``fn`` has returned.

    Called on the event loop's thread (where the replay's idle state lives).
    """
    backend = replay_of(client)
    if backend is None:
        disp.submit(fn, *args)
        return
    loop = asyncio.get_running_loop()
    idle = backend.idle
    idle.acquire()

    def run() -> None:
        try:
            fn(*args)
        finally:
            loop.call_soon_threadsafe(idle.release)

    disp.submit(run)
