"""The shim's plumbing: the dispatcher thread and the loop-thread portal."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from qmtkit.compat import _bridge
from qmtkit.compat._bridge import Bridge, Dispatcher, LoopThreadError, ensure_not_in_loop
from qmtkit.compat._lending import NOT_LENT, LendingLoop

WAIT = 5.0


def test_dispatcher_runs_callbacks_in_order_on_its_own_thread() -> None:
    d = Dispatcher("t")
    seen: list[tuple[int, str]] = []
    for i in range(200):
        d.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    assert d.flush(5)
    d.close()
    assert [i for i, _ in seen] == list(range(200))
    assert {name for _, name in seen} == {"t"}


def test_dispatcher_runs_one_callback_at_a_time() -> None:
    d = Dispatcher()
    active = [0]
    overlap = [False]
    lock = threading.Lock()

    def cb() -> None:
        with lock:
            active[0] += 1
            overlap[0] |= active[0] > 1
        threading.Event().wait(0.001)
        with lock:
            active[0] -= 1

    for _ in range(50):
        d.submit(cb)
    d.flush(5)
    d.close()
    assert overlap == [False]


def test_a_failing_callback_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = Dispatcher()
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("user bug")

    d.submit(boom)
    d.submit(lambda: ran.append("after"))
    d.flush(5)
    d.close()
    assert ran == ["after"]
    assert "user bug" in caplog.text


def test_closed_dispatcher_ignores_late_submissions() -> None:
    d = Dispatcher()
    d.close()
    ran: list[int] = []
    d.submit(lambda: ran.append(1))
    assert d.flush(1)
    assert ran == []
    assert not d.thread.is_alive()


def test_bridge_runs_coroutines_on_its_loop_thread_and_returns_results() -> None:
    b = Bridge()
    try:

        async def where(x: int) -> tuple[int, str]:
            await asyncio.sleep(0)
            return x * 2, threading.current_thread().name

        value, thread = b.call(where, 21)
        assert value == 42
        assert thread == "qmtkit-loop" != threading.current_thread().name
    finally:
        b.shutdown()
    assert b.loop_thread is None


def test_bridge_propagates_exceptions() -> None:
    b = Bridge()
    try:

        async def fail() -> None:
            raise ValueError("bad thing 17")

        with pytest.raises(ValueError, match="bad thing 17"):
            b.call(fail)
    finally:
        b.shutdown()


def test_blocking_call_from_a_running_event_loop_fails_fast() -> None:
    async def inside() -> None:
        ensure_not_in_loop("order_stock")

    with pytest.raises(LoopThreadError, match=r"order_stock\(\).*async"):
        asyncio.run(inside())


def test_blocking_call_from_the_bridge_loop_thread_fails_fast() -> None:
    b = _bridge.bridge()

    async def nested() -> None:
        b.call(asyncio.sleep, 0)

    with pytest.raises(LoopThreadError):
        b.call(nested)


def test_shutdown_is_idempotent_and_the_bridge_restarts_on_use() -> None:
    b = Bridge()

    async def one() -> int:
        return 1

    assert b.call(one) == 1
    b.shutdown()
    b.shutdown()
    assert b.call(one) == 1
    b.shutdown()


def test_call_at_once_runs_now_on_the_callers_thread_when_the_loop_is_idle() -> None:
    b = Bridge()
    later_ran: list[int] = []

    async def later(x: int) -> str:
        later_ran.append(x)
        return "later"

    def now(x: int) -> str:
        return f"now {x} on {threading.current_thread().name}"

    try:
        b.portal()
        got = b.call_at_once(now, later, 7)
        assert got == f"now 7 on {threading.current_thread().name}"
        assert later_ran == []
    finally:
        b.shutdown()


def test_a_lent_call_sees_the_bridge_loop_as_running_and_only_while_it_runs() -> None:
    b = Bridge()

    async def later() -> None:
        raise AssertionError("now answered")

    try:
        b.portal()
        seen = b.call_at_once(asyncio.get_running_loop, later)
        assert seen is b.loop
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
    finally:
        b.shutdown()


def test_a_blocking_call_inside_a_lent_call_is_refused_not_deadlocked() -> None:
    b = Bridge()

    async def one() -> int:
        return 1

    async def later() -> int:
        raise AssertionError("now answered")

    try:
        b.portal()
        with pytest.raises(LoopThreadError):
            b.call_at_once(lambda: b.call(one), later)
        assert b.call(one) == 1
    finally:
        b.shutdown()


def test_call_at_once_never_overtakes_work_already_queued_on_the_loop() -> None:
    b = Bridge()
    seen: list[str] = []

    async def later() -> str:
        raise AssertionError("now answered")

    def now() -> str:
        seen.append("at once")
        return "ok"

    try:
        b.portal()
        loop = b.loop
        assert loop is not None
        for i in range(200):
            seen.clear()
            loop.call_soon_threadsafe(seen.append, "queued")
            assert b.call_at_once(now, later) == "ok"
            assert seen == ["queued", "at once"], i
    finally:
        b.shutdown()


def test_call_at_once_runs_on_the_loop_thread_when_the_loop_is_busy() -> None:
    b = Bridge()
    entered, go = threading.Event(), threading.Event()
    order: list[str] = []
    got: list[str] = []

    def busy() -> None:
        entered.set()
        go.wait()
        order.append("busy")

    def now() -> str:
        order.append("now")
        return threading.current_thread().name

    async def later() -> str:
        raise AssertionError("now answered")

    try:
        b.portal()
        loop = b.loop
        assert isinstance(loop, LendingLoop)
        loop.call_soon_threadsafe(busy)
        assert entered.wait(WAIT)
        caller = threading.Thread(target=lambda: got.append(b.call_at_once(now, later)))
        caller.start()
        while not loop._ready:  # the caller found the loop busy and queued its call
            caller.join(0.001)
        go.set()
        caller.join(WAIT)
        assert got == ["qmtkit-loop"]
        assert order == ["busy", "now"]
    finally:
        go.set()
        b.shutdown()


def test_what_a_lent_call_queues_runs_later_on_the_loop_thread() -> None:
    b = Bridge()
    ran: list[str] = []
    done = threading.Event()

    def later_on_loop() -> None:
        ran.append(threading.current_thread().name)
        done.set()

    async def later() -> None:
        raise AssertionError("now answered")

    try:
        b.portal()
        b.call_at_once(lambda: asyncio.get_running_loop().call_soon(later_on_loop) and 1, later)
        assert done.wait(WAIT)
        assert ran == ["qmtkit-loop"]
        done.clear()
        b.call_at_once(lambda: asyncio.get_running_loop().call_later(0, later_on_loop) and 1, later)
        assert done.wait(WAIT)
    finally:
        b.shutdown()


def test_ctrl_c_during_a_lent_call_arrives_after_it_completes() -> None:
    b = Bridge()
    steps: list[str] = []

    def now() -> str:
        signal.raise_signal(signal.SIGINT)
        steps.append("finished")
        return "ok"

    async def later() -> str:
        raise AssertionError("now answered")

    try:
        b.portal()
        handler = signal.getsignal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            b.call_at_once(now, later)
        assert steps == ["finished"]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        b.shutdown()


def test_a_stopped_loop_lends_nothing() -> None:
    loop = LendingLoop()
    try:
        assert loop.run_lent(lambda: 1) is NOT_LENT
    finally:
        loop.close()


def test_call_at_once_awaits_the_general_way_when_now_gives_none() -> None:
    b = Bridge()

    async def later(x: int) -> str:
        await asyncio.sleep(0)
        return f"later {x}"

    try:
        assert b.call_at_once(lambda x: None, later, 7) == "later 7"
    finally:
        b.shutdown()


def test_call_at_once_raises_what_now_or_later_raised() -> None:
    b = Bridge()

    def now(x: int) -> str | None:
        if x == 1:
            raise ValueError("now failed on 1")
        return None

    async def later(x: int) -> str:
        raise KeyError(f"later failed on {x}")

    try:
        with pytest.raises(ValueError, match="now failed on 1"):
            b.call_at_once(now, later, 1)
        with pytest.raises(KeyError, match="later failed on 2"):
            b.call_at_once(now, later, 2)
    finally:
        b.shutdown()


@pytest.mark.parametrize("wake", ["eventfd", "pipe", "queue"])
def test_a_callback_may_queue_more_than_a_pipe_holds_on_its_own_dispatcher(
    wake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if wake == "eventfd" and not hasattr(os, "eventfd"):
        pytest.skip("no eventfd on this platform")
    if wake == "pipe" and os.name != "posix":
        pytest.skip("the pipe wake-up is for POSIX systems")
    if wake != "eventfd":
        monkeypatch.delattr(os, "eventfd", raising=False)
    if wake == "queue":
        monkeypatch.setattr(os, "name", "nt")  # Windows' wake-up, on any platform
    d = Dispatcher("many")
    seen: list[int] = []

    def fan_out() -> None:
        for i in range(70_000):  # more one-byte wake-ups than a 64 KiB pipe holds
            d.submit(seen.append, i)

    d.submit(fan_out)
    assert d.flush(30)
    d.close()
    assert seen == list(range(70_000))
    assert not d.thread.is_alive()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_closed_dispatchers_leave_no_descriptor_open() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        d = Dispatcher()
        d.submit(lambda: None)
        d.close()
        assert not d.thread.is_alive()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_without_epoll_the_loop_lends_nothing_and_now_runs_on_the_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import selectors

    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    b = Bridge()

    async def later() -> str:
        raise AssertionError("now answered")

    try:
        b.portal()
        assert not isinstance(b.loop, LendingLoop)
        assert b.call_at_once(lambda: threading.current_thread().name, later) == "qmtkit-loop"
    finally:
        b.shutdown()
