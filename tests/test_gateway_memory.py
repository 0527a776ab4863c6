"""What a client that floods the gateway and never reads leaves behind once it is cut off: nothing.

The session and everything queued for it are released, and after a client whose queue grew past
``TRIM_AFTER`` the gateway hands the freed heap pages back to the OS (``malloc_trim`` on glibc),
so the process's memory goes back down (measured from /proc in ``nox -s stress``).
"""

from __future__ import annotations

import gc
import platform
import socket
import sys
import threading
import weakref
from pathlib import Path

import anyio
import pytest

import qmtkit.backends.hub.gateway as hub
from qmtkit.backends.base import BackendInfo, Hello, ListSectors, Names, Request
from qmtkit.backends.hub.memory import give_back_freed_memory
from qmtkit.backends.hub.session import Session
from qmtkit.gateway.server import Gateway
from qmtkit.wire.protocol import Auth, Call, FrameEncoder
from support.gateway import TOKEN, FakeVenue, RecordingSink, remote_for, running_gateway

BUDGET = 1 << 20
BIG = Names(["x" * 100] * 2000)  # a reply of about 200 KB


def _answer(req: Request) -> Names | None:
    return BIG if isinstance(req, ListSectors) else None


def _flood(port: int, go: threading.Event) -> str:
    """Log in, wait for ``go``, then send calls with big replies and never read them, until
    the gateway cuts the line."""
    enc = FrameEncoder()
    batch = b"".join(enc.encode(Call(i, ListSectors())) for i in range(10))
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(enc.encode(Auth(TOKEN)))
        if not go.wait(10):
            return "never told to flood"
        try:
            while True:
                sock.sendall(batch)
        except OSError as exc:
            return f"cut off: {exc!r}"


async def _flood_until_cut(gw: Gateway) -> tuple[str, weakref.ref[Session]]:
    """Run a flooder to its end; a weak reference to its session, taken while it flooded."""
    result: list[str] = []
    others = set(gw.sessions)
    go = threading.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def flood() -> None:
                result.append(await anyio.to_thread.run_sync(_flood, gw.address[1], go))

            tg.start_soon(flood)
            while not gw.sessions - others:  # logged in, not flooding yet
                await anyio.sleep(0.005)
            (flooder,) = gw.sessions - others
            ref = weakref.ref(flooder)
            del flooder
            go.set()
    with anyio.fail_after(5):
        while gw.sessions - others:
            await anyio.sleep(0.005)
    return result[0], ref


async def test_a_client_cut_off_for_not_reading_leaves_no_object_behind(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(_answer), tmp_path, client_budget=BUDGET) as gw:
        outcome, session = await _flood_until_cut(gw)
        await anyio.sleep(0)  # the closed transport lets go of its buffer on the next turn
        gc.collect()
        assert outcome.startswith("cut off")
        assert session() is None  # nor its queue, its tasks or its stream


async def test_another_client_is_served_while_one_floods(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(_answer), tmp_path, client_budget=BUDGET) as gw:
        remote = remote_for(gw)
        served = 0
        async with remote.open(RecordingSink()), anyio.create_task_group() as tg:
            flooding = anyio.Event()

            async def flood() -> None:
                await _flood_until_cut(gw)
                flooding.set()

            tg.start_soon(flood)
            with anyio.fail_after(5):
                while not flooding.is_set():
                    assert isinstance(await remote.request(Hello()), BackendInfo)
                    served += 1
        assert served > 0


async def test_memory_is_handed_back_after_a_client_with_a_big_queue_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(hub, "give_back_freed_memory", lambda: calls.append(True) or True)
    async with running_gateway(FakeVenue(_answer), tmp_path, client_budget=BUDGET) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            await remote.request(ListSectors())  # a small queue: nothing to hand back
        with anyio.fail_after(5):
            while gw.sessions:
                await anyio.sleep(0.005)
        assert calls == []
        monkeypatch.setattr(hub, "TRIM_AFTER", BUDGET // 2)
        await _flood_until_cut(gw)
        with anyio.fail_after(5):
            while not calls:
                await anyio.sleep(0.005)
        assert calls == [True]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_freed_memory_can_be_handed_back_on_glibc() -> None:
    assert give_back_freed_memory() is True
