"""Busy polling: the selector spins, then sleeps; loops built on it run real programs."""

from __future__ import annotations

import asyncio
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from qmtkit.busypoll import (
    BusyPollEventLoop,
    BusyPollSelector,
    busy_poll_loop_factory,
    parse_spin_us,
    run,
    running_spin_us,
)
from qmtkit.errors import InvalidArgument
from qmtkit.gateway.server import serve_main


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


class Recording(selectors.DefaultSelector):
    """Records the timeout of every call made to the plain selector."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[float | None] = []

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.calls.append(timeout)
        return super().select(timeout)


class RecordingBusyPoll(BusyPollSelector, Recording):
    """A busy-poll selector whose calls to the plain selector are recorded."""


# --------------------------------------------------------------------------- the selector


def test_ready_events_are_returned_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    with BusyPollSelector(0.05) as sel:
        sel.register(b, selectors.EVENT_READ, "b")
        a.send(b"x")
        t0 = time.perf_counter()
        ready = sel.select(10.0)
        elapsed = time.perf_counter() - t0
    assert [(key.data, ev) for key, ev in ready] == [("b", selectors.EVENT_READ)]
    assert elapsed < 0.05  # no spin, let alone the 10 s timeout, was needed


def test_idle_selector_spins_then_sleeps_out_the_timeout(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    _, b = pair
    with BusyPollSelector(0.002) as sel:
        sel.register(b, selectors.EVENT_READ)
        t0 = time.perf_counter()
        ready = sel.select(0.05)
        elapsed = time.perf_counter() - t0
    assert ready == []
    assert 0.05 <= elapsed < 5.0


def test_idle_wait_sleeps_rather_than_spinning(pair: tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    with BusyPollSelector(0.002) as sel:
        sel.register(b, selectors.EVENT_READ)
        cpu0, t0 = time.process_time(), time.perf_counter()
        sel.select(0.3)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    assert wall >= 0.3
    assert cpu < 0.15  # a 2 ms spin, then asleep: nowhere near the 0.3 s a full spin would burn


def test_a_timeout_shorter_than_the_spin_is_kept(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    _, b = pair
    with BusyPollSelector(0.1) as sel:
        sel.register(b, selectors.EVENT_READ)
        t0 = time.perf_counter()
        ready = sel.select(0.01)
        elapsed = time.perf_counter() - t0
    assert ready == []
    assert 0.01 <= elapsed < 0.08  # the 0.1 s spin was cut short by the 0.01 s timeout


def test_data_arriving_while_spinning_ends_the_spin(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    with BusyPollSelector(0.1) as sel:
        sel.register(b, selectors.EVENT_READ)
        timer = threading.Timer(0.01, a.send, (b"x",))
        timer.start()
        try:
            ready = sel.select(None)
        finally:
            timer.join()
    assert [ev for _, ev in ready] == [selectors.EVENT_READ]


def test_zero_timeout_polls_once_without_spinning(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    _, b = pair
    with BusyPollSelector(0.1) as sel:
        sel.register(b, selectors.EVENT_READ)
        t0 = time.perf_counter()
        for _ in range(20):
            assert sel.select(0) == []
            assert sel.select(-1.0) == []
        elapsed = time.perf_counter() - t0
    assert elapsed < 0.5  # 40 spins of 0.1 s would take 4 s


def test_zero_spin_is_one_plain_select(pair: tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    with RecordingBusyPoll(0) as sel:
        sel.register(b, selectors.EVENT_READ)
        assert sel.select(0.01) == []
        assert sel.select(0.0) == []
    assert sel.calls == [0.01, 0.0]


def test_zero_timeout_is_one_plain_poll(pair: tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    with RecordingBusyPoll(0.1) as sel:
        sel.register(b, selectors.EVENT_READ)
        assert sel.select(0) == []
    assert sel.calls == [0]


def test_idle_spin_polls_then_blocks_for_the_rest(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    _, b = pair
    with RecordingBusyPoll(0.002) as sel:
        sel.register(b, selectors.EVENT_READ)
        assert sel.select(0.05) == []
    *polls, last = sel.calls
    assert polls and all(t == 0 for t in polls)
    assert last is not None and 0 < last < 0.05  # the timeout less the time spent spinning


def test_idle_spin_without_timeout_then_blocks_forever(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    with RecordingBusyPoll(0.002) as sel:
        sel.register(b, selectors.EVENT_READ)
        timer = threading.Timer(0.2, a.send, (b"x",))
        timer.start()
        try:
            assert len(sel.select(None)) == 1
        finally:
            timer.join()
    *polls, last = sel.calls
    assert polls and all(t == 0 for t in polls)
    assert last is None


def test_spin_is_kept_as_given() -> None:
    with BusyPollSelector(0.0003) as sel:
        assert sel.spin == 0.0003
    with BusyPollSelector(0) as sel:
        assert sel.spin == 0.0


@pytest.mark.parametrize("bad", [-0.001, 0.2, float("nan"), float("inf"), True, "0.001", None])
def test_bad_spins_are_refused_naming_the_value(bad: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        BusyPollSelector(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)
    assert "0..0.1" in str(info.value)


# --------------------------------------------------------------------------- the loop


async def _echo_round_trips(n: int) -> list[bytes]:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            async for chunk in stream:
                await stream.send(chunk)

    got = []
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                for i in range(n):
                    msg = f"ping {i}".encode()
                    await client.send(msg)
                    reply = b""
                    while len(reply) < len(msg):
                        reply += await client.receive()
                    got.append(reply)
            tg.cancel_scope.cancel()
    return got


def test_loop_factory_runs_a_tcp_echo_over_loopback() -> None:
    async def main() -> tuple[list[bytes], float, str]:
        loop = asyncio.get_running_loop()
        return await _echo_round_trips(50), running_spin_us(), type(loop).__name__

    replies, spin_us, loop_kind = anyio.run(
        main, backend_options={"loop_factory": busy_poll_loop_factory(300)}
    )
    assert replies == [f"ping {i}".encode() for i in range(50)]
    assert spin_us == pytest.approx(300)
    assert loop_kind == BusyPollEventLoop.__name__


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
def test_loop_factory_works_with_asyncio_runner() -> None:
    async def main() -> float:
        await asyncio.sleep(0.001)
        return running_spin_us()

    with asyncio.Runner(loop_factory=busy_poll_loop_factory(50)) as runner:
        assert runner.run(main()) == pytest.approx(50)


@pytest.mark.parametrize("spin_us", [100_000, 500])
def test_another_thread_wakes_the_loop(spin_us: float) -> None:
    """call_soon_threadsafe reaches the loop both mid-spin (100 ms) and asleep (after 0.5 ms)."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        woken = 0
        for delay in (0.0, 0.01, 0.05):
            fut: asyncio.Future[str] = loop.create_future()

            def poke(fut: asyncio.Future[str] = fut) -> None:
                fut.set_result("poked")

            timer = threading.Timer(delay, loop.call_soon_threadsafe, (poke,))
            timer.start()
            try:
                with anyio.fail_after(5):
                    assert await fut == "poked"
            finally:
                timer.join()
            woken += 1
        return woken

    assert run(main, busy_poll_us=spin_us) == 3


def test_run_without_busy_polling_uses_a_plain_loop() -> None:
    async def main(x: int) -> tuple[int, float]:
        return x * 2, running_spin_us()

    assert run(main, 21) == (42, 0.0)
    doubled, spin_us = run(main, 21, busy_poll_us=10)
    assert doubled == 42
    assert spin_us == pytest.approx(10)


@pytest.mark.parametrize("bad", [-1, 100_001, float("nan"), float("-inf"), False, "300"])
def test_factory_and_run_refuse_bad_budgets(bad: object) -> None:
    async def main() -> None:
        raise AssertionError("must not run")

    with pytest.raises(InvalidArgument, match=r"0\.\.100000") as info:
        busy_poll_loop_factory(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)
    with pytest.raises(InvalidArgument, match="busy_poll_us") as info:
        run(main, busy_poll_us=bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


def test_run_refuses_a_non_callable() -> None:
    with pytest.raises(InvalidArgument, match="async function"):
        run(42)  # type: ignore[arg-type]


def test_parse_spin_us_reads_cli_text() -> None:
    assert parse_spin_us("200") == 200.0
    assert parse_spin_us(" 0 ") == 0.0
    assert parse_spin_us(12.5) == 12.5
    for bad in ("-5", "abc", "nan", "1e9", ""):
        with pytest.raises(InvalidArgument, match=r"--busy-poll .*0\.\.100000") as info:
            parse_spin_us(bad, name="--busy-poll")
        assert repr(bad) in str(info.value)


def test_running_spin_is_zero_outside_a_busy_poll_loop() -> None:
    assert running_spin_us() == 0.0


# --------------------------------------------------------------------------- qmtkit serve


@pytest.mark.parametrize("bad", ["-5", "abc", "200000"])
def test_serve_refuses_a_bad_busy_poll(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = serve_main(["--busy-poll", bad, "--listen", "127.0.0.1:0", "--insecure-no-token"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("qmtkit serve: ")
    assert repr(bad) in err
    assert "0..100000" in err


def _serve_announcement(tmp_path: Path, *extra: str) -> str:
    # serve_main itself, as `qmtkit serve` runs it, in a process of its own (it serves till killed).
    code = "import sys; from qmtkit.gateway.server import serve_main; sys.exit(serve_main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--listen", "127.0.0.1:0",
         "--insecure-no-token", "--home", str(tmp_path), "--backend",
         f"sim://?home={tmp_path}", *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "QMTKIT_TOKEN": ""},
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "qmtkit gateway serving" in line:
                return line
        raise AssertionError(f"no announcement; exit {proc.poll()}, stderr: {''.join(lines)}")
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_serve_with_busy_poll_runs_on_a_busy_poll_loop(tmp_path: Path) -> None:
    line = _serve_announcement(tmp_path, "--busy-poll", "200")
    assert "busy-polling 200 us" in line  # read from the running loop's selector


def test_serve_without_busy_poll_runs_on_a_plain_loop(tmp_path: Path) -> None:
    line = _serve_announcement(tmp_path)
    assert "busy-polling" not in line
