"""The data commands of the ``qmtkit`` CLI (a face over the data layer and a backend).

``add_subcommands(subparsers)`` adds ``download``, ``bars``, ``cache info``,
``cache verify [--repair]``, ``import-datadir PATH`` and ``import FILE...``; each sets
``func`` to its handler, which takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
import polars as pl

from qmtkit.data.api import MarketData
from qmtkit.data.cache import Cache
from qmtkit.data.sources import BACKEND, source_name
from qmtkit.errors import InvalidArgument, InvalidPeriod, QmtkitError

Handler = Callable[[argparse.Namespace], int]
#: Codes per batch written by ``import-datadir`` (bounds memory, keeps writes few).
_IMPORT_BATCH = 200


class ProgressBar:
    """A one-line progress bar on a text stream (stderr by default).

    With ``rate=True`` it also shows items per second and the time left, measured on
    ``clock`` (monotonic seconds) from the bar's creation.
    """

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        width: int = 30,
        *,
        rate: bool = False,
        unit: str = "codes",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.rate = rate
        self.unit = unit
        self._clock = clock or time.monotonic
        self._t0 = self._clock()

    def __call__(self, done: int, total: int, item: str) -> None:
        """Redraw for ``done`` of ``total`` items, ``item`` the last one finished."""
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if done >= total else ""
        stats = f" {self.stats(done, total)}" if self.rate else ""
        self.stream.write(f"\r{self.label}{stats} [{bar}] {done}/{total} {item:<12}{end}")
        self.stream.flush()

    def stats(self, done: int, total: int) -> str:
        """``'12.5 codes/s ETA 0:06:40'`` for ``done`` of ``total`` so far."""
        elapsed = max(self._clock() - self._t0, 1e-9)
        per_s = done / elapsed
        if done <= 0:
            return f"{0.0:6.1f} {self.unit}/s ETA --:--:--"
        left = round((total - done) / per_s)
        h, rem = divmod(left, 3600)
        return f"{per_s:6.1f} {self.unit}/s ETA {h}:{rem // 60:02d}:{rem % 60:02d}"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME or ~/.qmtkit)")


def add_subcommands(subparsers: Any) -> None:
    """Add the data commands to an argparse ``add_subparsers()`` object."""
    p = subparsers.add_parser("download", help="download bars into the local cache")
    _common(p)
    p.add_argument("codes", nargs="*", help="security codes, e.g. 600000.SH 000001.SZ")
    p.add_argument(
        "--period",
        default="1d",
        help="1d, 1m, tick (others download their base); baostock: 1d, 5m, 15m, 30m, 1h",
    )
    p.add_argument("--start", default=None, help="YYYYMMDD[hhmmss] (default: earliest)")
    p.add_argument("--end", default=None, help="YYYYMMDD[hhmmss] (default: latest)")
    p.add_argument("--full", action="store_true", help="re-fetch even what is cached")
    p.add_argument(
        "--backend", default=None, help="backend URL (default $QMTKIT_BACKEND or sim://)"
    )
    p.add_argument(
        "--source",
        default=None,
        help="where bars come from: backend or baostock (default $QMTKIT_DATA_SOURCE or backend)",
    )
    p.add_argument(
        "--all", action="store_true", help="every stock the source lists (with --source)"
    )
    p.add_argument("--rate", type=float, default=None, help="source calls per second")
    p.add_argument("--timeout", type=float, default=None, help="seconds per source call")
    p.set_defaults(func=cmd_download)

    p = subparsers.add_parser("export", help="write the cache as hive-partitioned Parquet")
    _common(p)
    p.add_argument("dir", help="the export directory (period=*/year=*/*.parquet)")
    p.add_argument("--format", default="parquet", choices=["parquet"], help="parquet")
    p.add_argument("--periods", default=None, help="comma-separated (default: every cached)")
    p.add_argument("--compression", default="zstd", help="zstd, snappy, lz4, gzip, uncompressed")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("bars", help="print cached bars as a table")
    _common(p)
    p.add_argument("codes", nargs="+", help="security codes, e.g. 600000.SH 000001.SZ")
    p.add_argument(
        "--period", default="1d", help="1m, 5m, 15m, 30m, 1h, 1d, 1w, 1mon or tick (default 1d)"
    )
    p.add_argument("--start", default=None, help="YYYYMMDD[hhmmss] (default: earliest cached)")
    p.add_argument("--end", default=None, help="YYYYMMDD[hhmmss] (default: latest cached)")
    p.add_argument("--count", type=int, default=20, help="last N bars per code (-1: all)")
    p.add_argument("--fields", default=None, help="comma-separated columns (default: all)")
    p.add_argument("--adjust", default="none", help="none, front, back, front_ratio, back_ratio")
    p.set_defaults(func=cmd_bars)

    cache = subparsers.add_parser("cache", help="inspect or check the local cache")
    sub = cache.add_subparsers(dest="cache_command", required=True)
    p = sub.add_parser("info", help="periods, codes, rows and bytes in the cache")
    _common(p)
    p.set_defaults(func=cmd_cache_info)
    p = sub.add_parser("verify", help="check every checksum of the cache")
    _common(p)
    p.add_argument("--repair", action="store_true", help="drop damaged shards, sweep leftovers")
    p.set_defaults(func=cmd_cache_verify)

    p = subparsers.add_parser("import-datadir", help="import a MiniQMT datadir into the cache")
    _common(p)
    p.add_argument("path", help="MiniQMT's userdata_mini/datadir")
    p.add_argument(
        "--periods", default="1d,1m,tick", help="comma-separated periods to import (1d,1m,tick)"
    )
    p.set_defaults(func=cmd_import_datadir)

    p = subparsers.add_parser("import", help="import CSV/Parquet bar files into the cache")
    _common(p)
    p.add_argument("files", nargs="+", metavar="FILE", help=".csv or .parquet files of bars")
    p.add_argument("--period", required=True, help="1d or 1m: the period of the files' bars")
    p.add_argument(
        "--code", default=None, help="code of files without a code column (default: file name)"
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="TARGET=SOURCE",
        help="read column TARGET (time, open, ..., code) from SOURCE; repeatable",
    )
    p.add_argument(
        "--volume-unit",
        default="lots",
        help="unit of the files' volume: lots (100 shares, stored as is) or shares",
    )
    p.set_defaults(func=cmd_import)


def _fail(exc: QmtkitError) -> int:
    sys.stderr.write(f"error: {exc}\n")
    return 2


def cmd_download(args: argparse.Namespace) -> int:
    """``qmtkit download CODES...``: fetch the missing bars through a backend."""
    from qmtkit.backends import open_backend
    from qmtkit.backends.base import ConnectionState
    from qmtkit.models import AccountReport, QuoteBatch
    from qmtkit.risk.guard import arm_host

    class _Quiet:
        def on_quotes(self, batch: QuoteBatch) -> None:
            pass

        def on_report(self, report: AccountReport) -> None:
            pass

        def on_connection(self, state: ConnectionState) -> None:
            pass

    async def run() -> int:
        backend = open_backend(_backend_with_home(args.backend, args.home))
        arm_host(backend)  # a download may come to host the shared terminal for others
        async with backend.open(_Quiet()):
            data = MarketData(backend.request, args.home)
            return await data.download(
                args.codes,
                args.period,
                args.start,
                args.end,
                incrementally=not args.full,
                progress=ProgressBar("download", rate=True),
            )

    try:
        name = source_name(args.source)
        if name != BACKEND:
            options = {k: v for k in ("rate", "timeout") if (v := getattr(args, k)) is not None}
            n = anyio.run(download_from_source, args, name, options)
        elif args.all:
            raise InvalidArgument("--all lists the codes of a source: add --source baostock")
        elif not args.codes:
            raise InvalidArgument("no codes: name the codes to download (or --all --source ...)")
        else:
            n = anyio.run(run)
    except QmtkitError as exc:
        return _fail(exc)
    print(f"fetched {n} bars" if n else "fetched 0 bars: the cache already had them")
    return 0


def _backend_with_home(url: str | None, home: str | None) -> str:
    """The backend URL to use; a simulator keeps its state in ``--home`` unless it names one."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    from qmtkit.backends import backend_url

    full = backend_url(url)
    parts = urlsplit(full)
    query = parse_qsl(parts.query)
    if home is None or parts.scheme != "sim" or any(k == "home" for k, _ in query):
        return full
    return f"sim://{parts.netloc}{parts.path}?{urlencode([*query, ('home', str(home))])}"


async def download_from_source(args: argparse.Namespace, name: str, options: Any) -> int:
    """``qmtkit download --source NAME``: one session for the list and every code's bars."""
    from qmtkit.data.sources import open_source
    from qmtkit.data.update import download_with_source

    data = MarketData(_no_backend, args.home)
    async with open_source(name, **options) as src:
        return await download_with_source(
            data,
            src,
            None if args.all else args.codes,
            args.period,
            args.start,
            args.end,
            incrementally=not args.full,
            progress=ProgressBar("download", rate=True),
        )


async def _no_backend(req: Any) -> Any:
    from qmtkit.errors import Unsupported

    raise Unsupported(f"this command reads the cache or a source only; cannot send {req!r}")


def cmd_bars(args: argparse.Namespace) -> int:
    """``qmtkit bars CODES...``: print cached bars."""

    async def no_backend(req: Any) -> Any:
        from qmtkit.errors import Unsupported

        raise Unsupported(f"`qmtkit bars` reads the cache only; cannot send {type(req).__name__}")

    try:
        data = MarketData(no_backend, args.home)
        fields = args.fields.split(",") if args.fields else None
        df = data.read_bars(
            args.codes, args.period, args.start, args.end, args.count, fields, args.adjust
        )
    except QmtkitError as exc:
        return _fail(exc)
    if df.is_empty():
        codes = " ".join(args.codes)
        sys.stderr.write(
            f"no cached {args.period} bars of {codes} in that range; download them first: "
            f"qmtkit download {codes} --period {args.period}\n"
        )
        return 1
    with pl.Config(tbl_rows=max(len(df), 1), tbl_cols=-1, tbl_width_chars=200):
        print(df)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``qmtkit export --format parquet DIR``: the cache for DuckDB, Polars, Spark, Ray."""
    from qmtkit.data.export import export_parquet

    try:
        periods = [p.strip() for p in args.periods.split(",")] if args.periods else None
        summary = export_parquet(
            Cache(args.home), args.dir, periods=periods, compression=args.compression
        )
    except QmtkitError as exc:
        return _fail(exc)
    for period, rows in summary.periods.items():
        print(f"{period}: {rows} rows in {summary.files[period]} files")
    print(f"dividends: {summary.dividends} records; written to {args.dir}")
    return 0


def cmd_cache_info(args: argparse.Namespace) -> int:
    """``qmtkit cache info``: one line per cached period."""
    try:
        cache = Cache(args.home)
        infos = cache.info()
    except QmtkitError as exc:
        return _fail(exc)
    print(f"cache at {cache.root}")
    if not infos:
        print("(empty)")
    for i in infos:
        print(
            f"{i.period:>5}: {i.codes} codes, {i.rows} rows, {i.bytes / 1e6:.1f} MB "
            f"in {i.shards} shards (version {i.version})"
        )
    return 0


def cmd_cache_verify(args: argparse.Namespace) -> int:
    """``qmtkit cache verify [--repair]``: full checksum pass; exit 1 if problems remain."""
    try:
        problems = Cache(args.home).verify(repair=args.repair)
    except QmtkitError as exc:
        return _fail(exc)
    for line in problems:
        print(line)
    if not problems:
        print("cache OK")
        return 0
    return 0 if args.repair else 1


def import_datadir(
    cache: Cache,
    datadir: str | Path,
    periods: Sequence[str] = ("1d", "1m", "tick"),
    progress: Callable[[int, int, str], object] | None = None,
) -> dict[str, int]:
    """Copy a MiniQMT datadir's bars and ticks into ``cache``; rows imported per period."""
    from qmtkit.data import datadir as dd

    out: dict[str, int] = {}
    for period in periods:
        if period not in ("1d", "1m", "tick"):
            from qmtkit.errors import InvalidPeriod

            raise InvalidPeriod(f"cannot import period {period!r}: expected 1d, 1m or tick")
        rows = 0
        batch: dict[str, Any] = {}
        if period == "tick":
            entries = [e for e in dd.scan(datadir) if e.period == "tick" and not e.problem]
            codes = sorted({e.code for e in entries})
            days: dict[str, list[int]] = {}
            for e in entries:
                days.setdefault(e.code, []).append(e.day)
        else:
            codes = dd.list_codes(datadir, period)
        for i, code in enumerate(codes, 1):
            if period == "tick":
                parts = [dd.read_ticks(datadir, code, d) for d in sorted(days[code])]
                cols = {k: _cat([p[k] for p in parts]) for k in parts[0]} if parts else {}
            else:
                cols = dd.read_bars(datadir, code, period)
            if cols and len(cols["time"]):
                batch[code] = cols
                rows += len(cols["time"])
            if len(batch) >= _IMPORT_BATCH:
                cache.write_bars(period, batch)
                batch = {}
            if progress is not None:
                progress(i, len(codes), code)
        if batch:
            cache.write_bars(period, batch)
        out[period] = rows
    return out


def _cat(parts: list[Any]) -> Any:
    import numpy as np

    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def cmd_import_datadir(args: argparse.Namespace) -> int:
    """``qmtkit import-datadir PATH``: import MiniQMT's local files."""
    try:
        periods = [p.strip() for p in args.periods.split(",") if p.strip()]
        counts = import_datadir(Cache(args.home), args.path, periods, ProgressBar("import"))
    except QmtkitError as exc:
        return _fail(exc)
    for period, n in counts.items():
        print(f"{period}: imported {n} rows")
    if not any(counts.values()):
        sys.stderr.write(
            f"nothing imported: {args.path} holds no MiniQMT bar or tick files of "
            f"{', '.join(periods)} (point at userdata_mini/datadir, the folder with SH/ and SZ/)\n"
        )
        return 1
    return 0


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``['time=dt', 'volume=vol']`` as ``{'time': 'dt', 'volume': 'vol'}`` (``--map`` values)."""
    out: dict[str, str] = {}
    for item in items:
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise InvalidArgument(
                f"bad --map {item!r}: expected TARGET=SOURCE, e.g. --map time=trade_date"
            )
        if target in out:
            raise InvalidArgument(
                f"bad --map {item!r}: {target!r} is already mapped to {out[target]!r}"
            )
        out[target] = source
    return out


def import_files_to_cache(
    cache: Cache,
    files: Sequence[str | Path],
    period: str,
    *,
    code: str | None = None,
    mapping: Mapping[str, str] | None = None,
    volume_unit: str = "lots",
) -> dict[str, int]:
    """Import CSV/Parquet bar files into ``cache`` in one atomic write; rows stored per code.

    Every file is read and checked before anything is written, so a bad file changes nothing.
    Each code's coverage becomes the span of its imported bars, joined to what was cached
    when the two touch or overlap (a span apart from the old coverage replaces it, since the
    gap between them is not known complete).
    """
    from qmtkit.data import coverage as cov
    from qmtkit.data import importers

    if period not in ("1d", "1m"):
        raise InvalidPeriod(f"cannot import period {period!r}: expected 1d or 1m")
    if volume_unit not in ("lots", "shares"):
        raise InvalidArgument(f"bad volume unit {volume_unit!r}: expected 'lots' or 'shares'")
    if not files:
        raise InvalidArgument("no files to import: expected one or more .csv/.parquet paths")
    unit: importers.VolumeUnit = "shares" if volume_unit == "shares" else "lots"
    data = importers.import_files(
        files, period=period, code=code, mapping=dict(mapping or {}), volume_unit=unit
    )
    coverage: dict[str, tuple[int, int]] = {}
    for c, cols in data.items():
        t = cols["time"]
        if len(t):
            span = (int(t[0]), int(t[-1]))
            joined = cov.combine(cache.coverage(period, c), span)
            coverage[c] = joined if joined is not None else span
    cache.write_bars(period, data, coverage=coverage)
    return {c: len(cols["time"]) for c, cols in data.items()}


def cmd_import(args: argparse.Namespace) -> int:
    """``qmtkit import FILE... --period 1d|1m``: import CSV/Parquet bars; rows per code."""
    try:
        counts = import_files_to_cache(
            Cache(args.home),
            args.files,
            args.period,
            code=args.code,
            mapping=parse_mapping(args.map),
            volume_unit=args.volume_unit,
        )
    except QmtkitError as exc:
        return _fail(exc)
    for c, n in counts.items():
        print(f"{c}: imported {n} {args.period} rows")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the data commands alone (``python -m qmtkit.cli.data``)."""
    parser = argparse.ArgumentParser(prog="qmtkit-data")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
