"""Queue a sleeping thread's wake-up on the waker's CPU: the shim's callback thread follows
the thread that hands it work.

Why: on a virtual machine an idle vCPU halts, and waking a thread that sleeps on it costs an
exit through the hypervisor (24-43 µs measured on the 2-vCPU hosts qmtkit is benchmarked on,
where the whole order takes ~25 µs). Left to itself the scheduler wakes the callback thread on
the idle vCPU whenever there is one, so on a quiet machine the shim's order -> callback time
was bimodal per process (~50 or ~80-110 µs). Pinned to the waker's CPU, the woken thread is
queued where the waker runs and takes over as soon as the waker releases the GIL (the hand-over
is an eventfd write made with it released): ~50 µs in every run. The callback thread and the
waker share the GIL, so they never run Python at the same time and sharing a core costs them
little; the pin moves with the waker (a system call only when the waker's CPU changed).

Linux only (``sched_getcpu`` and ``sched_setaffinity``); elsewhere, or with
``QMTKIT_CALLBACK_PIN=0`` in the environment, nothing is pinned. A pin the kernel refuses
(a CPU set changed under the process) turns following off for that thread; nothing else changes.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

__all__ = ["Follower", "can_follow"]


def _load_getcpu() -> Callable[[], int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=False).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    getcpu: Callable[[], int] = fn
    return getcpu


_GETCPU = _load_getcpu()


def can_follow() -> bool:
    """Whether threads can be pinned to the waker's CPU here (Linux, not turned off)."""
    return _GETCPU is not None and os.environ.get("QMTKIT_CALLBACK_PIN", "1") != "0"


class Follower:
    """Pins one thread (by its native id) to the CPU of the thread that calls ``follow``.

    Call ``follow`` from the waker just before it wakes the thread, under whatever lock
    orders the wakers (one caller at a time).
    """

    __slots__ = ("_cpu", "_on", "_tid")

    def __init__(self, native_id: int | None) -> None:
        self._tid = native_id
        self._cpu = -1
        self._on = native_id is not None and can_follow()

    @property
    def on(self) -> bool:
        """True while the thread follows its wakers."""
        return self._on

    def follow(self) -> None:
        """Pin the thread to this thread's CPU if it is not pinned there already."""
        if not self._on:
            return
        assert _GETCPU is not None and self._tid is not None
        cpu = _GETCPU()
        if cpu == self._cpu or cpu < 0:
            return
        try:
            os.sched_setaffinity(self._tid, (cpu,))
        except OSError:
            self._on = False  # e.g. the CPU left the process's set: wake anywhere, as before
            return
        self._cpu = cpu
