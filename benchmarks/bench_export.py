"""Export benchmark: the daily cache as hive-partitioned Parquet, beside DuckDB writing it.

Run ``python benchmarks/bench_export.py`` (``--quick`` for a small smoke run). Synthetic,
seeded daily bars of 5,000 codes x 10 years (2,500 trading days, 12.5M rows) are written to
a cache in a temporary directory; then, each timed as the median of a few runs:

* qmtkit: ``export_parquet(cache, DIR, periods=["1d"])`` (from the mapped cache to
  ``period=1d/year=YYYY/*.parquet``, zstd);
* baseline: DuckDB writing the same table, already in memory (an Arrow table registered with
  DuckDB), with ``COPY ... TO DIR (FORMAT parquet, PARTITION_BY (year), COMPRESSION zstd)``.

The target is qmtkit <= 3x DuckDB. Both outputs are read back with DuckDB to check the row
counts agree.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_data import daily_codes, synth, weekdays
from ratios import record


def sizes(quick: bool) -> dict[str, int]:
    """Full as the brief says (5,000 codes x 10 years); quick for smoke runs."""
    return {"codes": 400, "days": 500} if quick else {"codes": 5000, "days": 2500}


def timed(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> int:
    """Generate, time both writers, print a markdown table."""
    import duckdb
    import polars as pl

    from qmtkit.data.cache import Cache
    from qmtkit.data.export import export_parquet

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sz = sizes(args.quick)
    root = Path(tempfile.mkdtemp(prefix="qk-bench-export-"))
    try:
        cache = Cache(root / "home")
        codes = daily_codes(sz["codes"])
        times = weekdays(sz["days"])
        for lo in range(0, len(codes), 1000):
            chunk = codes[lo : lo + 1000]
            cache.write_bars("1d", dict(zip(chunk, synth(times, len(chunk), lo), strict=True)))
        rows = len(codes) * len(times)

        def ours() -> None:
            export_parquet(cache, root / "qk", periods=["1d"])

        table = cache.read("1d", cache.codes("1d")).with_columns(
            pl.col("code").cast(pl.String), pl.col("time").dt.convert_time_zone("UTC")
        )
        arrow = table.to_arrow()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        con.register("bars", arrow)

        def duck() -> None:
            out = root / "duck"
            shutil.rmtree(out, ignore_errors=True)
            con.execute(
                f"COPY (SELECT *, year(time) AS year FROM bars) TO '{out}' "
                "(FORMAT parquet, PARTITION_BY (year), COMPRESSION zstd)"
            )

        t_duck = timed(duck, args.repeat)
        t_ours = timed(ours, args.repeat)
        n_ours = con.execute(
            f"SELECT count(*) FROM read_parquet('{root / 'qk'}/**/*.parquet', "
            "hive_partitioning = true)"
        ).fetchone()
        n_duck = con.execute(
            f"SELECT count(*) FROM read_parquet('{root / 'duck'}/**/*.parquet', "
            "hive_partitioning = true)"
        ).fetchone()
        assert n_ours is not None and n_duck is not None and n_ours[0] == n_duck[0] == rows
        ratio = t_ours / t_duck
        record("export 1d parquet / duckdb", ratio)
        print(f"{len(codes):,} codes x {len(times):,} days = {rows:,} daily bars, zstd.\n")
        print("| writer | time | rows/s | vs DuckDB |")
        print("|---|---|---|---|")
        print(f"| qmtkit `export_parquet` (from the cache) | {t_ours:.2f} s | "
              f"{rows / t_ours / 1e6:.1f} M | {ratio:.2f}x |")  # fmt: skip
        print(f"| DuckDB `COPY ... PARTITION_BY (year)` (from memory) | {t_duck:.2f} s | "
              f"{rows / t_duck / 1e6:.1f} M | 1.00x |")  # fmt: skip
        print(f"\nTarget: qmtkit <= 3x DuckDB: **{'met' if ratio <= 3 else 'NOT met'}**.")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
