"""``qmtkit instruments [--sector NAME] [--board BOARD ...]``: what the venue lists."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
import polars as pl

from qmtkit.codes import Board, parse_code
from qmtkit.errors import InvalidArgument, QmtkitError
from qmtkit.models import InstrumentDetail

BOARDS = tuple(b.value for b in Board)


def add_subcommands(subparsers: Any) -> None:
    """Add ``instruments`` to an argparse sub-parser set."""
    p = subparsers.add_parser(
        "instruments", help="list the venue's instruments: code, name, board, price limits"
    )
    p.add_argument("--sector", default=None, help="only the members of this sector, e.g. 沪深A股")
    p.add_argument(
        "--board",
        action="append",
        default=[],
        choices=BOARDS,
        help="only this board (repeatable): " + ", ".join(BOARDS),
    )
    p.add_argument(
        "--backend", default=None, help="backend URL (default $QMTKIT_BACKEND or sim://)"
    )
    p.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME or ~/.qmtkit)")
    p.set_defaults(func=cmd_instruments)


def table(items: list[InstrumentDetail], boards: list[str]) -> pl.DataFrame:
    """One row per instrument (code, name, board, limits), optionally of some boards only."""
    rows = []
    for item in items:
        code = (
            item.InstrumentID
            if "." in item.InstrumentID
            else (f"{item.InstrumentID}.{item.ExchangeID}")
        )
        try:
            board = parse_code(code).board.value
        except QmtkitError:
            board = ""
        if boards and board not in boards:
            continue
        rows.append(
            {
                "code": code,
                "name": item.InstrumentName,
                "board": board,
                "up_limit": item.UpStopPrice,
                "down_limit": item.DownStopPrice,
            }
        )
    schema = {
        "code": pl.String,
        "name": pl.String,
        "board": pl.String,
        "up_limit": pl.Float64,
        "down_limit": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("code")


def cmd_instruments(args: argparse.Namespace) -> int:
    """Print the instruments; exit 1 with a hint when none match."""
    import qmtkit

    async def run() -> list[InstrumentDetail]:
        async with qmtkit.connect(args.backend, home=args.home) as qk:
            codes = None
            if args.sector is not None:
                sectors = await qk.data.sectors()
                if args.sector not in sectors:
                    raise InvalidArgument(
                        f"unknown sector {args.sector!r}; known: {', '.join(sectors)}"
                    )
                codes = await qk.data.sector_members(args.sector)
            return list((await qk.data.instruments(codes)).values())

    try:
        frame = table(anyio.run(run), args.board)
    except QmtkitError as exc:
        print(f"qmtkit instruments: {exc}", file=sys.stderr)
        return 2
    if frame.is_empty():
        print(
            "qmtkit instruments: no instrument matches; drop --board/--sector to see them all",
            file=sys.stderr,
        )
        return 1
    with pl.Config(tbl_rows=len(frame), tbl_cols=-1, tbl_width_chars=120):
        print(frame)
    return 0
