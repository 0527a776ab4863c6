"""xtquant's ``xtdatacenter`` module for the compat shim.

In xtquant this module runs a standalone quote service that ``xtdata.connect(port=...)`` joins.
Here ``listen`` serves the configured qmtkit backend through a qmtkit gateway (``qmtkit.gateway``)
and ``xtdata.connect`` with that port goes through it; ``set_data_home_dir`` sets qmtkit's home
(``QMTKIT_HOME``). Settings that only concern xtquant's VIP quote servers are accepted and
ignored. ``set_token`` doubles as the gateway's access token; without one, a random token
known only to this process protects the port.
"""

# ruff: noqa: B006
from __future__ import annotations

import logging
import os
import secrets
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import quote

from qmtkit.backends import backend_url
from qmtkit.checks import is_int
from qmtkit.compat._bridge import bridge, ensure_not_in_loop
from qmtkit.errors import InvalidArgument, QmtkitError, Unsupported

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskStatus

    from qmtkit.gateway.server import Gateway

log = logging.getLogger("qmtkit.compat")

__all__ = [
    "get_local_server_port",
    "init",
    "listen",
    "listened_url",
    "set_data_home_dir",
    "set_token",
    "shutdown",
]

init_complete = False
_token = ""
_local_token = secrets.token_urlsafe(24)
_lock = threading.Lock()
#: port → (URL to reach it from this process, the task serving it)
_servers: dict[int, tuple[str, Future[None]]] = {}
_last_port = [0]


def set_token(token: str = "") -> None:
    """Remember the token; it also protects the ports opened by ``listen``."""
    global _token
    if not isinstance(token, str):
        raise InvalidArgument(f"token must be a str, got {token!r}")
    _token = token


def set_data_home_dir(data_home_dir: str) -> None:
    """Use ``data_home_dir`` as qmtkit's home (data cache and simulator state)."""
    if not isinstance(data_home_dir, (str, os.PathLike)) or not str(data_home_dir):
        raise InvalidArgument(f"data_home_dir must be a directory path, got {data_home_dir!r}")
    os.environ["QMTKIT_HOME"] = str(Path(data_home_dir).expanduser().resolve())


def _ignored(name: str) -> None:
    log.info("xtdatacenter.%s: a setting of xtquant's quote servers, ignored by qmtkit", name)


def set_config_dir(config_dir: str) -> None:
    """Accepted and ignored (xtquant's quote-server configuration)."""
    _ignored("set_config_dir")


def set_kline_mirror_enabled(enable: bool) -> None:
    """Accepted and ignored (xtquant VIP K-line mirroring)."""
    _ignored("set_kline_mirror_enabled")


def set_kline_mirror_markets(markets: list[str]) -> None:
    """Accepted and ignored (xtquant VIP K-line mirroring)."""
    _ignored("set_kline_mirror_markets")


def set_allow_optmize_address(allow_list: list[str] = []) -> None:
    """Accepted and ignored (xtquant quote-server address pool)."""
    _ignored("set_allow_optmize_address")


def set_wholequote_market_list(market_list: list[str] = []) -> None:
    """Accepted and ignored (xtquant whole-market quote selection)."""
    _ignored("set_wholequote_market_list")


def set_future_realtime_mode(enable: bool) -> None:
    """Accepted and ignored (futures are not served)."""
    _ignored("set_future_realtime_mode")


def set_init_markets(markets: list[str] = []) -> None:
    """Accepted and ignored (qmtkit serves SH, SZ and BJ)."""
    _ignored("set_init_markets")


def set_index_mirror_enabled(enable: bool) -> None:
    """Accepted and ignored (xtquant VIP index mirroring)."""
    _ignored("set_index_mirror_enabled")


def set_index_mirror_markets(markets: list[str]) -> None:
    """Accepted and ignored (xtquant VIP index mirroring)."""
    _ignored("set_index_mirror_markets")


def set_kline_cutting_mode(mode: str) -> None:
    """Accepted and ignored (xtquant K-line cutting)."""
    _ignored("set_kline_cutting_mode")


def set_quote_time_mode_v2(enable: bool) -> None:
    """Accepted and ignored (xtquant quote time mode)."""
    _ignored("set_quote_time_mode_v2")


def set_thousand_source_mode(mode: str) -> None:
    """Accepted and ignored (Level-2 thousand-level quotes are not served)."""
    _ignored("set_thousand_source_mode")


def try_create_client() -> NoReturn:
    """Not available: there is no xtquant RPC client in qmtkit."""
    raise Unsupported("xtdatacenter.try_create_client() is not supported by qmtkit's shim")


def init(start_local_service: bool = True) -> None:
    """Mark the data center ready.

    ``start_local_service`` is accepted: in-process ``xtdata`` needs no local port with
    qmtkit, so none is opened (``listen`` opens one when asked).
    """
    global init_complete
    init_complete = True


def _gateway_token() -> str:
    """The xtquant token when the gateway accepts it as its own, else a private random one."""
    from qmtkit.wire.security import check_token_value

    try:
        check_token_value(_token)
    except InvalidArgument:
        return _local_token
    return _token


def _first_error(exc: BaseException) -> Exception:
    """The first real error inside (possibly nested) exception groups."""
    # Duck-typed: BaseExceptionGroup is not a builtin on Python 3.10.
    while getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc if isinstance(exc, Exception) else OSError(str(exc))


def listen(ip: str = "0.0.0.0", port: int | tuple[int, int] = 58610) -> tuple[str, int]:
    """Serve the qmtkit backend on ``ip:port`` (or the first free port of a range).

    Returns ``(ip, port)`` as xtquant does; ``xtdata.connect(port=port)`` then goes through
    it. Needs ``init()`` first. Raises ``OSError`` when no port can be bound.
    """
    ensure_not_in_loop("listen")
    if not init_complete:
        raise QmtkitError("xtdatacenter.listen(): call xtdatacenter.init() first")
    if not isinstance(ip, str) or not ip:
        raise InvalidArgument(f"ip must be an address such as '127.0.0.1', got {ip!r}")
    if isinstance(port, tuple):
        if len(port) != 2 or not all(isinstance(p, int) for p in port):
            raise InvalidArgument(f"port range must be (first, last), got {port!r}")
        candidates = list(range(min(port), max(port) + 1))
    elif is_int(port) and 0 <= port <= 65535:
        candidates = [port]
    else:
        raise InvalidArgument(
            f"port must be an int in 0..65535 or a (first, last) range, got {port!r}"
        )
    errors: list[str] = []
    for p in candidates:
        try:
            bound = _serve(ip, p)
        except OSError as exc:
            errors.append(f"{p}: {exc}")
            continue
        return ip, bound
    raise OSError(
        f"xtdatacenter.listen(): cannot listen on {ip} port {port!r} ({'; '.join(errors)})"
    )


def _serve(ip: str, port: int) -> int:
    try:
        from qmtkit.gateway.server import serve
    except ImportError as exc:
        raise Unsupported(
            f"xtdatacenter.listen() needs qmtkit's gateway, which is not available: {exc}"
        ) from exc
    import anyio

    ready: Future[int] = Future()
    url = backend_url(None)
    token = _gateway_token()

    async def run() -> None:
        try:
            async with anyio.create_task_group() as tg:
                gw = await tg.start(_start_gateway, serve, url, ip, port, token)
                ready.set_result(int(gw.address[1]))
        except BaseException as exc:
            if ready.done():
                raise
            ready.set_exception(_first_error(exc))

    fut = bridge().spawn(run)
    bound = ready.result()
    host = "127.0.0.1" if ip in ("0.0.0.0", "::", "") else ip
    with _lock:
        _servers[bound] = (f"qmtkit://{host}:{bound}?token={quote(token)}", fut)
        _last_port[0] = bound
    return bound


async def _start_gateway(
    serve: Callable[..., Awaitable[None]],
    url: str,
    ip: str,
    port: int,
    token: str,
    *,
    task_status: TaskStatus[Gateway],
) -> None:
    # xtquant's listen() is plain TCP on every interface; the token still guards it.
    await serve(url, ip, port, token=token, insecure=True, task_status=task_status)


def listened_url(port: int) -> str | None:
    """The URL reaching a port this process serves with ``listen``, else None."""
    with _lock:
        entry = _servers.get(port)
    return entry[0] if entry else None


def get_local_server_port() -> int:
    """The last port opened by ``listen`` (0 if none)."""
    return _last_port[0]


def register_create_nparray(func: Callable[..., object]) -> None:
    """Accepted and ignored (xtquant's native array hook)."""
    _ignored("register_create_nparray")


def shutdown() -> None:
    """Stop every port opened by ``listen``."""
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
        _last_port[0] = 0
    for _url, fut in servers:
        fut.cancel()
