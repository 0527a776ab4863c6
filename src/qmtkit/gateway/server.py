"""``qmtkit serve``: serve one Backend to remote clients over TCP (optionally TLS).

This is the listening face of the gateway: the address, TLS, the token policy, the risk chain
at the venue, the report journal's file and the command line. What happens on each connection
(multiplexed subscriptions and accounts, journaled reports, resume by seq, bounded buffers,
paced logins) is the hub's, ``qmtkit.backends.hub``; its names are re-exported here.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from qmtkit.backends.base import Backend
from qmtkit.backends.hub.gateway import (
    AUTH_MAX_FRAME,
    AUTH_TIMEOUT,
    DEFAULT_REPORT_CAP,
    REFUSAL_LOG_INTERVAL,
    Gateway,
)
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.backends.hub.session import DEFAULT_CLIENT_BUDGET
from qmtkit.busypoll import parse_spin_us, running_spin_us
from qmtkit.busypoll import run as run_busy_polling
from qmtkit.checks import is_int, positive_int, positive_number
from qmtkit.errors import InvalidArgument, QmtkitError
from qmtkit.gateway.options import add_arguments
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.guard import guard_backend
from qmtkit.risk.limits import RiskLimits
from qmtkit.streams import DEFAULT_MAX_RECORDS
from qmtkit.wire.fastio import FastStream, asyncio_running
from qmtkit.wire.protocol import DEFAULT_PORT, MAX_FRAME
from qmtkit.wire.security import (
    check_token_value,
    generate_token,
    server_tls_context,
)

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve_fast(listener: anyio.abc.Listener[Any], gw: Gateway) -> None:
    """Accept plain-TCP clients on asyncio as ``FastStream`` links (see ``wire.fastio``)."""
    listeners = getattr(listener, "listeners", [listener])
    async with anyio.create_task_group() as tg:
        for each in listeners:
            tg.start_soon(_accept_fast, each.extra(anyio.abc.SocketAttribute.raw_socket), gw, tg)


async def _accept_fast(sock: socket.socket, gw: Gateway, tg: anyio.abc.TaskGroup) -> None:
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while True:
        try:
            client, _ = await loop.sock_accept(sock)
        except OSError as exc:  # e.g. out of file descriptors: keep serving the others
            log.warning("gateway: accept failed: %r", exc)
            await anyio.sleep(0.1)
            continue
        try:
            stream = await FastStream.accept(client)
        except OSError as exc:
            client.close()
            log.warning("gateway: could not set up an accepted connection: %r", exc)
            continue
        tg.start_soon(gw.handle_connection, stream)


def gateway_home(home: str | Path | None = None) -> Path:
    """The gateway's directory: under ``home``, else ``$QMTKIT_HOME``, else ``~/.qmtkit``."""
    base = home if home is not None else os.environ.get("QMTKIT_HOME") or Path.home() / ".qmtkit"
    return Path(base) / "gateway"


async def serve(
    backend: str | Backend,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    token: str | None = None,
    tls: Any = None,
    insecure_no_token: bool = False,
    home: str | Path | None = None,
    journal: str | Path | None = None,
    heartbeat: float = 5.0,
    timeout: float | None = None,
    max_records: int = DEFAULT_MAX_RECORDS,
    report_cap: int = DEFAULT_REPORT_CAP,
    max_frame: int = MAX_FRAME,
    risk: RiskConfig | RiskLimits | bool | None = None,
    client_budget: int = DEFAULT_CLIENT_BUDGET,
    insecure: bool = False,
    task_status: TaskStatus[Gateway] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``backend`` (a Backend or a backend URL) to remote clients until cancelled.

    Binds ``host:port`` (loopback by default; port 0 picks a free one). Clients must present
    ``token`` (32 characters or more) in their first frame; serving without a token needs
    ``insecure_no_token=True`` and a loopback ``host``; plain TCP (no ``tls``) on any other
    host needs ``insecure=True``. ``client_budget`` bounds the bytes of replies queued for one
    client (see ``backends.hub.session``).
    ``tls`` is an ``ssl.SSLContext`` or a ``(cert_file, key_file)`` pair. Reports are journaled
    in ``journal`` (default ``<home>/gateway/reports.journal``), which is tied to the backend's
    ``venue_id``: one holding another venue's reports raises ``JournalMismatch``. Heartbeats go
    out every ``heartbeat`` seconds and a client silent for ``timeout`` (default 3 x heartbeat)
    is dropped. Started with ``await task_group.start(serve, ...)`` it hands back the
    ``Gateway`` once listening (``gateway.address`` is the bound address). ``risk`` puts the
    pre-trade risk chain at the venue's side, shared by every client (as ``connect``'s
    ``risk``: ``None`` follows ``<home>/risk.toml``; docs/risk.md).
    """
    if token is None and not insecure_no_token:
        raise InvalidArgument(
            "refusing to serve without a token: pass token=... (or set QMTKIT_TOKEN for "
            "`qmtkit serve`); serving without one needs insecure_no_token=True explicitly"
        )
    if token is not None:
        check_token_value(token)
    if not isinstance(host, str) or not host:
        raise InvalidArgument(f"host must be a non-empty string, got {host!r}")
    if insecure_no_token and not is_loopback(host):
        raise InvalidArgument(
            f"serving without a token is allowed on loopback only (127.0.0.1, ::1), not on "
            f"{host!r}: anyone who can reach it could trade; use a token"
        )
    if not is_loopback(host) and tls is None and not insecure:
        raise InvalidArgument(
            f"refusing plain TCP on {host!r}: tokens and orders would travel in clear; give a "
            "TLS certificate and key, or pass insecure=True (--insecure) on a network you trust"
        )
    if not is_int(port) or not 0 <= port <= 65535:
        raise InvalidArgument(f"port must be an int in 0..65535, got {port!r}")
    positive_number("heartbeat", heartbeat, " of seconds")
    timeout = 3 * heartbeat if timeout is None else timeout
    positive_number("timeout", timeout, " of seconds")
    if timeout <= heartbeat:
        raise InvalidArgument(
            f"timeout ({timeout!r}s) must exceed the heartbeat interval ({heartbeat!r}s)"
        )
    for name, value in (
        ("max_records", max_records),
        ("report_cap", report_cap),
        ("max_frame", max_frame),
        ("client_budget", client_budget),
    ):
        positive_int(name, value)
    if isinstance(tls, tuple):
        tls = server_tls_context(*tls)
    if tls is not None and not hasattr(tls, "wrap_socket"):
        raise InvalidArgument(
            f"tls must be an ssl.SSLContext or a (cert_file, key_file) pair, got {tls!r}"
        )
    if isinstance(backend, str):
        # sim:// is the shared terminal: the gateway hosts it, or attaches to the program that
        # does, so local programs and remote clients trade on one simulator.
        from qmtkit.backends import open_backend

        backend = open_backend(backend)
    elif not isinstance(backend, Backend):
        raise InvalidArgument(f"backend must be a Backend or a backend URL, got {backend!r}")
    # One risk chain at the venue's side: every client of an account shares its budgets.
    backend = guard_backend(backend, risk, home)
    if not is_loopback(host) and tls is None:
        log.warning("gateway: listening on %s without TLS: tokens and orders travel in clear", host)

    path = Path(journal) if journal is not None else gateway_home(home) / "reports.journal"
    with ReportJournal(path) as report_journal:
        gw = Gateway(
            backend,
            report_journal,
            token=token,
            heartbeat=float(heartbeat),
            timeout=float(timeout),
            max_records=max_records,
            report_cap=report_cap,
            max_frame=max_frame,
            client_budget=client_budget,
        )
        async with backend.open(gw) as info:
            # Before anyone listens: another venue's look-alike reports must not pass as replays.
            report_journal.bind_venue(info.venue_id)
            gw.info = info
            raw = await anyio.create_tcp_listener(local_host=host, local_port=port)
            addr = raw.extra(anyio.abc.SocketAttribute.local_address)
            gw.address = (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else (host, port)
            async with raw, anyio.create_task_group() as tg:
                tg.start_soon(gw.log_refusals)
                tg.start_soon(gw.sync_journal)
                task_status.started(gw)
                try:
                    if tls is None and asyncio_running():
                        await _serve_fast(raw, gw)
                    else:
                        await raw.serve(partial(gw.handle_connection, tls=tls))
                finally:
                    gw._log_refusals(force=True)


# --------------------------------------------------------------------------- CLI


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    if not isinstance(listen, str) or ":" not in listen:
        raise InvalidArgument(
            f"--listen must be HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT}), got {listen!r}"
        )
    host, _, port_s = listen.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise InvalidArgument(
            f"bad port {port_s!r} in --listen {listen!r}: expected 0..65535"
        ) from None
    if not host or not 0 <= port <= 65535:
        raise InvalidArgument(f"--listen must be HOST:PORT with a port in 0..65535, got {listen!r}")
    return host, port


def serve_main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``qmtkit serve`` until Ctrl-C; returns the process exit code."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="qmtkit serve")
        add_arguments(parser)
        args = parser.parse_args(list(args) if args is not None else None)
    if getattr(args, "gen_token", False):
        print(generate_token())
        return 0
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        host, port = parse_listen(getattr(args, "listen", f"127.0.0.1:{DEFAULT_PORT}"))
        token = getattr(args, "token", None) or os.environ.get("QMTKIT_TOKEN") or None
        cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
        if (cert is None) != (key is None):
            raise InvalidArgument("TLS needs both --tls-cert and --tls-key")
        tls = server_tls_context(cert, key) if cert is not None and key is not None else None
        backend_url = getattr(args, "backend", None)
        insecure = bool(getattr(args, "insecure_no_token", False))
        plain_tcp_ok = bool(getattr(args, "insecure", False))
        client_mb = getattr(args, "client_buffer_mb", DEFAULT_CLIENT_BUDGET >> 20)
        positive_int("--client-buffer-mb", client_mb, " of MiB")
        home = getattr(args, "home", None)
        busy_poll_us = parse_spin_us(getattr(args, "busy_poll", 0), name="--busy-poll")
    except QmtkitError as exc:
        print(f"qmtkit serve: {exc}", file=sys.stderr)
        return 2

    if token is None and not insecure:
        print(
            "qmtkit serve: refusing to serve without a token: pass --token or set QMTKIT_TOKEN "
            "(`qmtkit serve --gen-token` prints a fresh one; --insecure-no-token serves "
            "without one, on loopback only)",
            file=sys.stderr,
        )
        return 2
    announce = _Announce("TLS" if tls is not None else "plain TCP")

    async def main() -> None:
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            if sys.platform != "win32":
                tg.start_soon(_stop_on_signal, tg.cancel_scope)
            try:
                await serve(
                    _with_home(backend_url, home),
                    host,
                    port,
                    token=token,
                    tls=tls,
                    insecure_no_token=insecure,
                    insecure=plain_tcp_ok,
                    client_budget=client_mb << 20,
                    home=home,
                    task_status=announce,
                )
            except Exception as exc:
                # Re-raised outside the task group, so the handlers below see it unwrapped.
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    try:
        run_busy_polling(main, busy_poll_us=busy_poll_us)
    except KeyboardInterrupt:
        print("qmtkit serve: stopped", file=sys.stderr)
    except QmtkitError as exc:
        print(f"qmtkit serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"qmtkit serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    """End the gateway cleanly on Ctrl-C or SIGTERM.

    Handled as a signal inside the loop because Python 3.10's asyncio turns a
    KeyboardInterrupt during ``anyio.run`` into a CancelledError traceback.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            print("qmtkit serve: stopped", file=sys.stderr)
            scope.cancel()
            return


def _with_home(url: str | None, home: str | None) -> str:
    """The backend URL to serve; a simulator shares ``--home`` unless its URL names one."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    from qmtkit.backends.urls import backend_url

    full = backend_url(url)
    parts = urlsplit(full)
    if home is None or parts.scheme != "sim":
        return full
    query = parse_qsl(parts.query)
    if any(k == "home" for k, _ in query):
        return full
    query.append(("home", str(home)))
    return f"sim://{parts.netloc}{parts.path}?{urlencode(query)}"


class _Announce:
    """A task status that prints where the gateway listens once it does."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def started(self, value: Gateway | None = None) -> None:
        if value is not None:
            host, port = value.address
            # Read from the running loop, so the line tells what is in effect.
            spin_us = running_spin_us()
            busy = f", busy-polling {spin_us:g} us" if spin_us > 0 else ""
            print(
                f"qmtkit gateway serving {value.info.kind} ({value.info.url}) on {host}:{port} "
                f"({self.scheme}{busy}); Ctrl-C stops it",
                file=sys.stderr,
            )


__all__ = [
    "AUTH_MAX_FRAME",
    "AUTH_TIMEOUT",
    "DEFAULT_REPORT_CAP",
    "REFUSAL_LOG_INTERVAL",
    "Gateway",
    "add_arguments",
    "gateway_home",
    "parse_listen",
    "serve",
    "serve_main",
]
