"""``qmtkit calendar info`` and ``qmtkit calendar import FILE``: see and feed the layers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qmtkit.data import calendar
from qmtkit.data.cache import resolve_home
from qmtkit.data.calendar_layers import load
from qmtkit.data.calendar_sync import import_file
from qmtkit.errors import QmtkitError


def add_subcommands(subparsers: Any) -> None:
    """Add ``calendar info`` and ``calendar import`` to an argparse sub-parser set."""
    cal = subparsers.add_parser("calendar", help="show or extend the trading calendar")
    sub = cal.add_subparsers(dest="calendar_command", metavar="ACTION", required=True)
    p = sub.add_parser("info", help="the known and provisional ranges and where each comes from")
    p.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME or ~/.qmtkit)")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser(
        "import", help="import the exchanges' closures from a text file (format: docs/data.md)"
    )
    p.add_argument("file", help="calendar file: a 'covers FIRST LAST' line and closure lines")
    p.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME or ~/.qmtkit)")
    p.set_defaults(func=cmd_import)


def cmd_info(args: argparse.Namespace) -> int:
    """Print the calendar's layers, one line per stretch of days."""
    home = resolve_home(args.home)
    first, last = calendar.known_range(home=home)
    print(f"known: {first} to {last}")
    spans = calendar.info(home=home)
    provisional = [s for s in spans if s.source == "provisional"]
    if provisional:
        print(f"provisional: {provisional[0].first} to {provisional[-1].last}")
    for span in spans:
        print(f"  {span.first}-{span.last}  {span.source:<11}  {span.detail}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Store a user calendar file as the ``user`` layer."""
    home = resolve_home(args.home)
    try:
        dropped = import_file(args.file, home)
    except QmtkitError as exc:
        print(f"qmtkit calendar import: {exc}", file=sys.stderr)
        return 1
    layer = load(home, "user")
    assert layer is not None
    print(
        f"imported {len(layer.closed)} closed weekdays covering {layer.first} to {layer.last}"
        + (f"; dropped {dropped} cached bars on days now closed" if dropped else "")
    )
    return 0
