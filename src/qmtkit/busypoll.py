"""Adaptive busy polling for asyncio: poll for a short while before going to sleep.

Why: when an event loop blocks in ``epoll_wait``/``select`` and a packet arrives, the kernel
has to wake the sleeping thread and the scheduler has to run it again. On virtual machines
and on CPUs that drop into deep idle states this wake-up alone can cost tens of microseconds
(about 55 µs per hop was measured on the machines qmtkit is benchmarked on), and the code that
runs right after it finds cold caches and runs slower still. A loop that is still polling when
the packet lands skips both costs.

What: :class:`BusyPollSelector` is the platform's default selector with one change: before it
blocks, it polls without blocking for at most ``spin`` seconds (never past the loop's own
timeout) and only then sleeps for what is left of the timeout. The spin restarts after each
burst of activity, so a loop that is busy keeps spinning between events and a loop that has
been idle for longer than ``spin`` sleeps as before. :func:`busy_poll_loop_factory` builds
asyncio event loops with that selector for ``anyio.run`` / ``asyncio.Runner``, and :func:`run`
is ``anyio.run`` with an optional busy-poll budget.

Cost: while it spins the process uses a whole CPU core. After every burst of activity it burns
up to ``spin`` of CPU time, so a process that handles an event every few hundred microseconds
keeps one core fully busy; an idle process sleeps and costs nothing. Other threads of the
process still make progress (every poll releases the GIL) but compete with the spinning one.

When to use it: the gateway beside MiniQMT (``qmtkit serve --busy-poll 200``) and
latency-critical strategy processes on a machine with a core to spare. When not to: laptops
and battery-powered machines, and hosts where many processes share few cores (spinning
processes then steal each other's CPU time and latency gets worse, not better).

Only asyncio can use it (trio has its own I/O loop); on Windows the loop is the selector loop
rather than the default proactor loop.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from qmtkit.checks import is_real
from qmtkit.errors import InvalidArgument

T = TypeVar("T")

#: The longest spin a selector accepts, in seconds (0.1 s); longer spins only waste CPU.
MAX_SPIN = 0.1
#: The same limit in microseconds, as ``busy_poll_us`` / ``--busy-poll`` take it.
MAX_SPIN_US = 100_000

_Events = list[tuple[selectors.SelectorKey, int]]


def _checked(name: str, value: object, limit: float, unit: str) -> float:
    """``value`` as a float if it is a finite number in ``0..limit``, else InvalidArgument."""
    if not is_real(value):
        raise InvalidArgument(
            f"{name} must be a number of {unit} in 0..{limit:g}, got {value!r} "
            f"({type(value).__name__})"
        )
    if not math.isfinite(value) or not 0 <= value <= limit:
        raise InvalidArgument(f"{name} must be a number of {unit} in 0..{limit:g}, got {value!r}")
    return float(value)


def parse_spin_us(value: object, *, name: str = "busy_poll_us") -> float:
    """A busy-poll budget in microseconds from a number or a numeric string (as on a CLI).

    Raises InvalidArgument naming ``name``, the value and the allowed range 0..100000 µs.
    """
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidArgument(
                f"{name} must be a number of microseconds in 0..{MAX_SPIN_US}, got {value!r}"
            ) from None
        if not math.isfinite(number) or not 0 <= number <= MAX_SPIN_US:
            raise InvalidArgument(
                f"{name} must be a number of microseconds in 0..{MAX_SPIN_US}, got {value!r}"
            )
        return number
    return _checked(name, value, MAX_SPIN_US, "microseconds")


class BusyPollSelector(selectors.DefaultSelector):
    """The default selector, polling without blocking for up to ``spin`` seconds before it sleeps.

    ``spin`` is in seconds, ``0 <= spin <= 0.1``; ``spin == 0`` behaves exactly like the plain
    selector. A call never returns later than its ``timeout`` would let the plain one.
    """

    def __init__(self, spin: float) -> None:
        self.spin = _checked("spin", spin, MAX_SPIN, "seconds")
        super().__init__()

    def select(self, timeout: float | None = None) -> _Events:
        """Ready ``(key, events)`` pairs; spin first, then block for the rest of ``timeout``."""
        if self.spin <= 0 or (timeout is not None and timeout <= 0):
            return super().select(timeout)
        start = time.perf_counter()
        budget = self.spin if timeout is None else min(self.spin, timeout)
        while True:
            ready = super().select(0)
            if ready:
                return ready
            spent = time.perf_counter() - start
            if spent >= budget:
                break
        if timeout is None:
            return super().select(None)
        return super().select(max(timeout - spent, 0.0))


class BusyPollEventLoop(asyncio.SelectorEventLoop):
    """An asyncio selector event loop whose selector is a :class:`BusyPollSelector`."""

    def __init__(self, spin: float) -> None:
        self.busy_poll_selector = BusyPollSelector(spin)
        super().__init__(self.busy_poll_selector)


def busy_poll_loop_factory(spin_us: float) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of event loops that busy-poll for up to ``spin_us`` µs (0..100000) before sleeping.

    Use it as ``anyio.run(main, backend_options={"loop_factory": busy_poll_loop_factory(300)})``
    or ``asyncio.Runner(loop_factory=busy_poll_loop_factory(300))`` (Python 3.11+).
    """
    spin = _checked("spin_us", spin_us, MAX_SPIN_US, "microseconds") / 1e6

    def factory() -> asyncio.AbstractEventLoop:
        return BusyPollEventLoop(spin)

    return factory


def running_spin_us() -> float:
    """The busy-poll budget (µs) of the running event loop: 0 if it does not busy-poll."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no asyncio loop here (e.g. trio)
        return 0.0
    if isinstance(loop, BusyPollEventLoop):
        return loop.busy_poll_selector.spin * 1e6
    return 0.0


def run(func: Callable[..., Awaitable[T]], *args: object, busy_poll_us: float = 0) -> T:
    """``anyio.run(func, *args)`` on asyncio, busy-polling ``busy_poll_us`` µs when above 0.

    ``busy_poll_us`` must be in 0..100000; 0 (the default) runs a plain event loop.
    """
    if not callable(func):
        raise InvalidArgument(f"func must be an async function, got {func!r}")
    spin_us = _checked("busy_poll_us", busy_poll_us, MAX_SPIN_US, "microseconds")
    if spin_us > 0:
        return anyio.run(
            func, *args, backend_options={"loop_factory": busy_poll_loop_factory(spin_us)}
        )
    return anyio.run(func, *args)


__all__ = [
    "MAX_SPIN",
    "MAX_SPIN_US",
    "BusyPollEventLoop",
    "BusyPollSelector",
    "busy_poll_loop_factory",
    "parse_spin_us",
    "run",
    "running_spin_us",
]
