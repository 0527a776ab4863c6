"""The shim's callback thread is woken on the CPU of the thread that hands it work (Linux)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from qmtkit.compat import _affinity
from qmtkit.compat._bridge import Dispatcher

WAIT = 20.0
needs_follow = pytest.mark.skipif(not _affinity.can_follow(), reason="no sched_getcpu here")


def on_cpu(cpu: int, fn: Callable[[], None]) -> None:
    """Run ``fn`` on a fresh thread pinned to ``cpu`` (the test's own threads stay as they are)."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            os.sched_setaffinity(0, (cpu,))
            fn()
        except BaseException as exc:
            failed.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(WAIT)
    assert not failed, failed


def affinity_seen_by_callback(d: Dispatcher) -> set[int]:
    """The callback thread's CPU set, as the thread itself reads it while running a callback."""
    seen: list[set[int]] = []
    d.submit(lambda: seen.append(os.sched_getaffinity(0)))
    assert d.flush(WAIT)
    return seen[0]


@needs_follow
def test_the_callback_thread_is_pinned_to_the_cpu_of_the_thread_that_hands_it_work() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    d = Dispatcher("affinity-test")
    try:
        for cpu in (cpus[-1], cpus[0]):
            seen: list[set[int]] = []

            def hand_over(seen: list[set[int]] = seen) -> None:
                # Submitted and waited for from the pinned thread alone: a submit from any
                # other thread would move the pin.
                d.submit(lambda: seen.append(os.sched_getaffinity(0)))
                assert d.flush(WAIT)

            on_cpu(cpu, hand_over)
            assert seen == [{cpu}]
    finally:
        d.close()


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_with_QMTKIT_CALLBACK_PIN_0_the_callback_thread_keeps_every_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QMTKIT_CALLBACK_PIN", "0")
    everywhere = os.sched_getaffinity(0)
    d = Dispatcher("affinity-off")
    try:
        on_cpu(min(everywhere), lambda: d.submit(lambda: None))
        assert affinity_seen_by_callback(d) == everywhere
    finally:
        d.close()


@needs_follow
def test_a_refused_pin_turns_following_off_and_the_callback_still_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(pid: int, mask: object) -> None:
        raise OSError(22, "Invalid argument")

    d = Dispatcher("affinity-refused")
    try:
        monkeypatch.setattr(_affinity.os, "sched_setaffinity", refuse)
        ran = threading.Event()
        d.submit(ran.set)
        assert ran.wait(WAIT)
        assert not d._follower.on
        monkeypatch.undo()
        assert affinity_seen_by_callback(d) == os.sched_getaffinity(0)
    finally:
        d.close()
