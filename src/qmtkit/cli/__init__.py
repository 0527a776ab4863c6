"""The ``qmtkit`` console command: demo, run, serve, the data, journal and terminal commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from qmtkit._version import __version__

# Each optional face registers its own sub-commands; a face that fails to import is reported,
# not hidden, when its command is used.
_FACES = (
    "qmtkit.cli.data",
    "qmtkit.cli.backtest",
    "qmtkit.cli.calendar",
    "qmtkit.cli.risk",
    "qmtkit.cli.instruments",
    "qmtkit.cli.journal",
    "qmtkit.cli.terminal",
)


def _demo(args: argparse.Namespace) -> int:
    from qmtkit.demo import run_demo

    return run_demo(url=args.backend or "sim://?speed=20", seconds=args.seconds, home=args.home)


def _run(args: argparse.Namespace) -> int:
    from qmtkit.compat.runner import run_script

    return run_script(args.script, list(args.args), backend=args.backend, debug=args.debug)


def _serve(args: argparse.Namespace) -> int:
    from qmtkit.gateway.server import serve_main

    return serve_main(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command mounted."""
    parser = argparse.ArgumentParser(
        prog="qmtkit",
        description="qmtkit: async A-share trading SDK with xtquant's meaning.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    parser.add_argument(
        "--version", action="version", version=f"qmtkit {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run an async strategy end-to-end on the simulator")
    demo.add_argument(
        "--backend", default=None, help="backend URL (default: $QMTKIT_BACKEND or sim://)"
    )
    demo.add_argument("--seconds", type=float, default=8.0, help="how long to stream quotes")
    demo.add_argument("--home", default=None, help="state directory (default: a fresh temp dir)")
    demo.set_defaults(handler=_demo)
    run = sub.add_parser("run", help="run an unchanged xtquant script on qmtkit")
    run.add_argument(
        "--backend", default=None, help="backend URL (default: $QMTKIT_BACKEND or sim://)"
    )
    run.add_argument(
        "--debug",
        action="store_true",
        help="print the full traceback of an error (also: QMTKIT_DEBUG=1)",
    )
    run.add_argument("script", help="path of the xtquant script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    run.set_defaults(handler=_run)
    serve = sub.add_parser("serve", help="expose a backend to remote qmtkit clients (the gateway)")
    from qmtkit.gateway.options import add_arguments as add_serve_arguments

    add_serve_arguments(serve)
    serve.set_defaults(handler=_serve)
    for name in _FACES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # pragma: no cover - only when a face is broken
            logging.getLogger("qmtkit").debug("sub-commands of %s unavailable: %s", name, exc)
            continue
        add: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            module.add_subcommands
        )
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="qmtkit %(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = handler(args)
    except KeyboardInterrupt:
        return 130
    return result
