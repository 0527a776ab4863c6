"""Many codes of a MiniQMT datadir read at once, in the long form of ``MarketData.read_bars``.

``datadir.read_range`` reads one code's files; ``read_datadir`` checks a whole request as the
data API checks its own (codes, period, time range, count, adjustment), reads each code and
returns one frame ``code, time, columns...`` grouped by code in the order given, time
ascending. MiniQMT keeps tick, 1m and 1d files, and prices in them are not adjusted: other
periods and adjustments are refused (import the folder into the cache to get them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from qmtkit.checks import check_count
from qmtkit.codes import normalize_codes, parse_period
from qmtkit.data import datadir
from qmtkit.data.api import check_adjust, time_range
from qmtkit.data.frames import TIME_DTYPE, code_column
from qmtkit.errors import InvalidArgument, Unsupported

#: The periods MiniQMT keeps files of.
DATADIR_PERIODS: Final = ("tick", "1m", "1d")


def check_datadir(root: object) -> Path:
    """``root`` as a path if it names an existing directory."""
    if not isinstance(root, (str, os.PathLike)):
        raise InvalidArgument(f"bad data_dir {root!r}: expected a directory path")
    path = Path(root)
    if not path.is_dir():
        raise InvalidArgument(
            f"data_dir {str(root)!r} is not a directory: expected MiniQMT's datadir "
            "(the folder holding SH/, SZ/...)"
        )
    return path


def read_datadir(
    root: str | os.PathLike[str],
    codes: str | Sequence[str],
    period: str = "1d",
    start: object = None,
    end: object = None,
    count: int = -1,
    adjust: str = "none",
) -> pl.DataFrame:
    """``codes``' ``period`` rows in ``[start, end]`` straight from MiniQMT's files.

    ``count >= 0`` keeps each code's last ``count`` rows. A code without files has no rows.
    Ticks are never adjusted (``adjust`` is checked and ignored, as xtquant does); bars are
    read only unadjusted.
    """
    path = check_datadir(root)
    norm = normalize_codes(codes)
    p = parse_period(period).name
    mode = check_adjust(adjust)
    if p not in DATADIR_PERIODS:
        raise Unsupported(
            f"a MiniQMT datadir holds tick, 1d and 1m files, not {p!r} "
            "(import the datadir with `qmtkit import-datadir` to resample)"
        )
    if p != "tick" and mode != "none":
        raise Unsupported(
            f"a MiniQMT datadir holds raw prices only: adjust {mode!r} needs the cache "
            "(`qmtkit import-datadir`), or use 'none'"
        )
    lo, hi = time_range(start, end)
    n = check_count(count)
    parts = [datadir.read_range(path, code, p, lo, hi, n) for code in norm]
    # With no codes, the columns a read would have, with no rows.
    empty = (
        datadir.decode_tick_bytes(b"")
        if p == "tick"
        else datadir.decode_bar_bytes(datadir.BAR_HEADER)
    )
    series = [code_column(norm, [len(part["time"]) for part in parts])]
    for name in parts[0] if parts else empty:
        column = pl.Series(name, np.concatenate([part[name] for part in parts or [empty]]))
        series.append(column.cast(TIME_DTYPE) if name == "time" else column)
    return pl.DataFrame(series)
