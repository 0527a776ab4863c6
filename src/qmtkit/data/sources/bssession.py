"""One baostock session, hardened: timeouts, re-login, serial paced calls, backoff with jitter.

The baostock package keeps one module-level socket with no timeout, blocks in ``recv`` and,
when the server closes the connection, can loop on empty reads forever. So every call runs
in a worker thread under a deadline; when the deadline passes, the session's socket is
closed (which ends the stuck read with an error), the session is marked logged out and the
call is retried after a backoff. Calls are serial (one at a time, the package is not
thread-safe) and spaced to a polite rate.

Errors: a blacklisted address or a refused login raise ``BackendUnavailable`` at once (no
retry can help); a request the server calls malformed raises ``BackendError``; network
errors, lost logins and timeouts are retried ``retries`` times, then ``BackendUnavailable``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, Final, NamedTuple

import anyio
import anyio.to_thread

from qmtkit.checks import non_negative_int, positive_number
from qmtkit.data.sources.pacing import Pacer
from qmtkit.errors import BackendError, BackendUnavailable, Unsupported

log = logging.getLogger(__name__)

OK: Final = "0"
NO_LOGIN: Final = "10001001"
BLACKLISTED: Final = "10001011"
#: Login refusals no retry can fix (bad user, expired client, too many logins, no rights).
LOGIN_FATAL: Final = frozenset(
    {"10001002", "10001004", "10001005", "10001006", "10001007", BLACKLISTED}
)
#: Network errors (1000 2xxx), undecodable answers and unknown client errors: retried.
_RETRY_PREFIXES: Final = ("10002", "10004001", "10004002", "10004003")
#: baostock pages query results by this many rows (``BAOSTOCK_PER_PAGE_COUNT``).
PAGE_ROWS: Final = 2000
INSTALL_HINT: Final = (
    "the baostock source needs the optional package baostock: pip install 'qmtkit[baostock]'"
)


class Result(NamedTuple):
    """A query's answer: field names and rows of strings."""

    fields: list[str]
    rows: list[list[str]]


class _Retryable(Exception):
    """A failure worth another attempt (network, lost login, timeout, short page)."""


def load_module(name: str = "baostock") -> ModuleType:
    """Import the baostock package, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise Unsupported(INSTALL_HINT) from None


class BaostockSession:
    """Serial, paced, timed calls into the baostock package over one reused login.

    ``module`` is the imported package (tests pass their fake); ``timeout`` bounds every
    call in seconds; ``rate`` is calls per second; ``rng`` seeds the backoff jitter;
    ``sleep``/``clock`` are injectable so tests never wait.
    """

    def __init__(
        self,
        module: ModuleType | None = None,
        *,
        timeout: float = 30.0,
        rate: float = 5.0,
        retries: int = 5,
        backoff: float = 1.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        user_id: str = "anonymous",
        password: str = "123456",
    ) -> None:
        positive_number("timeout", timeout, " of seconds")
        non_negative_int("retries", retries)
        self._module = module
        self.timeout = float(timeout)
        self.retries = retries
        self.pacer = Pacer(rate, base_delay=backoff, rng=rng)
        self._sleep = sleep or anyio.sleep
        self._clock = clock or time.monotonic
        self._user = (user_id, password)
        self._lock = anyio.Lock()
        self._logged_in = False
        self.logins = 0
        self.calls = 0

    @property
    def module(self) -> ModuleType:
        """The baostock package (imported on first use)."""
        if self._module is None:
            self._module = load_module()
        return self._module

    async def call(
        self, fn: str, check: Callable[[Result], bool] | None = None, **kwargs: Any
    ) -> Result:
        """Run ``baostock.<fn>(**kwargs)`` and read every row of its answer.

        baostock pages answers and ends the iteration without an error when a later page is
        lost, so a caller that can tell a whole answer passes ``check``: an answer it
        rejects is retried like a network error.
        """
        func = getattr(self.module, fn, None)
        if not callable(func):
            raise Unsupported(f"this baostock package has no {fn}(): upgrade baostock")
        async with self._lock:
            attempt = 0
            while True:
                try:
                    if not self._logged_in:
                        await self._timed(self._login)
                    result: Result = await self._timed(self._query, func, kwargs)
                    if check is not None and not check(result):
                        raise _Retryable(f"{len(result.rows)} rows: the answer was cut short")
                    return result
                except _Retryable as exc:
                    attempt += 1
                    if attempt > self.retries:
                        raise BackendUnavailable(
                            f"baostock {fn} failed {attempt} times, last: {exc}; the server "
                            "may be down or slow: rerun later (what was fetched is kept)"
                        ) from None
                    delay = self.pacer.backoff(attempt)
                    log.warning("baostock %s: %s; retry %d in %.1fs", fn, exc, attempt, delay)
                    await self._sleep(delay)

    async def close(self) -> None:
        """Log out (best effort, under the timeout) and drop the socket."""
        async with self._lock:
            if self._logged_in:
                with contextlib.suppress(_Retryable, BackendError):
                    await self._timed(self._logout)
            self.drop()

    async def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        wait = self.pacer.wait_before_call(self._clock())
        if wait > 0:
            await self._sleep(wait)
        self.calls += 1
        with anyio.move_on_after(self.timeout) as scope:
            return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
        if scope.cancelled_caught:
            # The abandoned thread is blocked on the old socket: closing it ends that read.
            self.drop()
            raise _Retryable(f"no answer within {self.timeout:g}s")
        raise AssertionError("unreachable")  # pragma: no cover

    def _socket_holder(self) -> Any:
        try:
            return importlib.import_module(self.module.__name__ + ".common.context")
        except ImportError:
            return None

    def drop(self) -> None:
        """Close the socket and forget the login (no logout message: usable from sync code)."""
        self._logged_in = False
        if self._module is None:
            return
        holder = self._socket_holder()
        sock = getattr(holder, "default_socket", None) if holder is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _login(self) -> None:
        user, password = self._user
        rs = self.module.login(user_id=user, password=password)
        code, msg = str(getattr(rs, "error_code", "")), str(getattr(rs, "error_msg", ""))
        if code == OK:
            self._logged_in = True
            self.logins += 1
            holder = self._socket_holder()
            sock = getattr(holder, "default_socket", None) if holder is not None else None
            if sock is not None and hasattr(sock, "settimeout"):
                # The package sets none; with one, a stalled read fails instead of hanging.
                sock.settimeout(self.timeout)
            return
        if code == BLACKLISTED:
            raise BackendUnavailable(
                f"baostock refused this address as blacklisted ({code}: {msg}); shared or "
                "cloud IPs are often listed: use another network or ask baostock to lift it"
            )
        if code in LOGIN_FATAL:
            raise BackendUnavailable(f"baostock refused the login ({code}: {msg})")
        raise _Retryable(f"login failed ({code or 'no answer'}: {msg})")

    def _logout(self) -> None:
        self.module.logout(user_id=self._user[0])

    def _query(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> Result:
        rs = func(**kwargs)
        if rs is None:
            # The package returns None for some malformed arguments after printing them.
            raise BackendError(f"baostock refused the arguments {kwargs!r}")
        rows: list[list[str]] = []
        while str(rs.error_code) == OK and rs.next():
            rows.append(list(rs.get_row_data()))
        code, msg = str(rs.error_code), str(rs.error_msg)
        if code != OK:
            if code == NO_LOGIN:
                self._logged_in = False
                raise _Retryable(f"session lost ({code}: {msg})")
            if code == BLACKLISTED:
                self._logged_in = False
                raise BackendUnavailable(
                    f"baostock blacklisted this address ({code}: {msg}); use another network "
                    "or ask baostock to lift it"
                )
            if code.startswith(_RETRY_PREFIXES):
                self._logged_in = False
                raise _Retryable(f"{code}: {msg}")
            raise BackendError(f"baostock refused {kwargs!r}: {code} {msg}")
        return Result(list(rs.fields), rows)


def below_one_page(result: Result) -> bool:
    """``check`` for a query sized to fit one page: a full page means later ones may be lost."""
    return len(result.rows) < PAGE_ROWS
