"""``qmtkit terminal status|stop``: look at, or stop, the shared terminal of a home."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlencode

import anyio

from qmtkit.backends.terminal.control import StopTerminal, TerminalState, TerminalStatus, control
from qmtkit.backends.terminal.paths import TerminalPaths, paths_of
from qmtkit.clock import beijing
from qmtkit.errors import QmtkitError


def _paths(args: argparse.Namespace) -> TerminalPaths:
    query = {k: v for k, v in (("home", args.home), ("terminal", args.terminal)) if v}
    return paths_of("sim://?" + urlencode(query))


def _when(ms: int) -> str:
    return beijing(ms).strftime("%Y-%m-%d %H:%M:%S")


def format_state(state: TerminalState) -> str:
    """The status report as printed: the terminal, then one line per attached program."""
    lines = [
        f"terminal {state.url} (venue {state.venue_id})",
        f"hosted by pid {state.host_pid} since {_when(state.since)} (Beijing time)",
        f"{len(state.programs)} program(s) attached:",
    ]
    for p in state.programs:
        accounts = ", ".join(p.accounts) if p.accounts else "no accounts"
        host = " [host]" if p.host else ""
        sessions = f"; xtquant sessions {', '.join(map(str, p.sessions))}" if p.sessions else ""
        lines.append(
            f"  pid {p.pid}{host} since {_when(p.since)}: {accounts}{sessions}  ({p.command})"
        )
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """Print who is attached to the terminal; exit 1 if none is running."""
    paths = _paths(args)
    try:
        state = anyio.run(control, paths, TerminalStatus())
    except QmtkitError as exc:
        print(f"qmtkit terminal status: {exc}", file=sys.stderr)
        return 1
    assert isinstance(state, TerminalState)
    print(format_state(state))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the terminal: every attached program is disconnected and none takes over."""
    paths = _paths(args)
    try:
        anyio.run(control, paths, StopTerminal())
    except QmtkitError as exc:
        print(f"qmtkit terminal stop: {exc}", file=sys.stderr)
        return 1
    print(f"stopped the terminal in {paths.directory}")
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add ``terminal status`` and ``terminal stop`` to an ``add_subparsers()`` object."""
    terminal = subparsers.add_parser("terminal", help="the shared sim:// terminal of a home")
    sub = terminal.add_subparsers(dest="terminal_command", required=True)
    for name, func, text in (
        ("status", cmd_status, "which programs are attached, since when, with which accounts"),
        ("stop", cmd_stop, "disconnect every program and stop the terminal"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME)")
        p.add_argument("--terminal", default=None, help="terminal name (default: default)")
        p.set_defaults(func=func)


__all__ = ["add_subcommands", "cmd_status", "cmd_stop", "format_state"]
