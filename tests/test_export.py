"""``qmtkit export --format parquet``: the cache as hive-partitioned Parquet, read back by
DuckDB and by Polars lazy scans and compared with the cache."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from qmtkit.cli.data import add_subcommands
from qmtkit.data.cache import Cache
from qmtkit.data.export import export_parquet
from qmtkit.errors import InvalidArgument
from qmtkit.messages import Dividend

DAY = 86_400_000
BJ = 8 * 3_600_000
CODES = ["600000.SH", "000001.SZ", "688001.SH"]


def days(first: str, n: int) -> np.ndarray:
    start = int(np.datetime64(first, "D").astype(np.int64)) * DAY - BJ
    all_days = np.arange(start, start + n * 2 * DAY, DAY, dtype=np.int64)
    dow = ((all_days + BJ) // DAY + 3) % 7
    return all_days[dow < 5][:n]


def bars(times: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(times)
    close = np.round(10 + np.cumsum(rng.normal(0, 0.1, n)), 2)
    return {
        "time": times,
        "open": close - 0.01,
        "high": close + 0.05,
        "low": close - 0.05,
        "close": close,
        "volume": rng.integers(1, 10_000, n),
        "amount": close * 100,
        "preClose": np.r_[close[0], close[:-1]],
        "suspendFlag": (rng.random(n) < 0.02).astype(np.int8),
    }


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    c = Cache(tmp_path / "home")
    t = days("2023-12-01", 60)  # spans two years
    c.write_bars("1d", {code: bars(t, i) for i, code in enumerate(CODES)})
    five = np.array([d + (9 * 60 + 35 + 5 * k) * 60_000 for d in t[-2:] for k in range(3)])
    c.write_bars("5m", {"600000.SH": bars(five, 9)})
    c.write_dividends("600000.SH", [Dividend(time=int(t[30]), interest=0.2, dr=1.02)])
    return c


def cache_frame(cache: Cache, period: str) -> pl.DataFrame:
    df = cache.read(period, sorted(cache.codes(period)))
    return df.with_columns(pl.col("code").cast(pl.String)).sort(["code", "time"])


def test_export_is_hive_partitioned_by_period_and_year(cache: Cache, tmp_path: Path) -> None:
    summary = export_parquet(cache, tmp_path / "out")
    assert summary.periods == {"5m": 6, "1d": 180}
    parts = sorted(
        str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.parquet")
    )
    assert parts == [
        "dividends/part-0000.parquet",
        "period=1d/year=2023/part-0000.parquet",
        "period=1d/year=2024/part-0000.parquet",
        "period=5m/year=2024/part-0000.parquet",
    ]


def test_duckdb_reads_the_export_as_the_cache(cache: Cache, tmp_path: Path) -> None:
    export_parquet(cache, tmp_path / "out")
    con = duckdb.connect()
    got = con.sql(
        f"SELECT * FROM read_parquet('{tmp_path / 'out'}/period=*/*/*.parquet', "
        "hive_partitioning = true) WHERE period = '1d' ORDER BY code, time"
    ).pl()
    want = cache_frame(cache, "1d")
    assert got["code"].to_list() == want["code"].to_list()
    assert got["time"].dt.epoch("ms").to_list() == want["time"].dt.epoch("ms").to_list()
    for name in ("open", "high", "low", "close", "volume", "amount", "preClose", "suspendFlag"):
        assert got[name].to_list() == want[name].to_list(), name
    years = got["year"].unique().sort().to_list()
    assert years == [2023, 2024]


def test_polars_lazy_scan_reads_the_export_as_the_cache(cache: Cache, tmp_path: Path) -> None:
    export_parquet(cache, tmp_path / "out")
    lazy = pl.scan_parquet(tmp_path / "out" / "period=*/**/*.parquet", hive_partitioning=True)
    for period in ("1d", "5m"):
        got = (
            lazy.filter(pl.col("period") == period)
            .drop("period", "year")
            .sort("code", "time")
            .collect()
        )
        want = cache_frame(cache, period)
        assert got.with_columns(pl.col("time").dt.convert_time_zone("Asia/Shanghai")).equals(
            want
        ), period


def test_dividends_are_exported_beside_the_bars(cache: Cache, tmp_path: Path) -> None:
    export_parquet(cache, tmp_path / "out")
    df = pl.read_parquet(tmp_path / "out" / "dividends" / "part-0000.parquet")
    assert df["code"].to_list() == ["600000.SH"]
    assert df["interest"].to_list() == [0.2] and df["dr"].to_list() == [1.02]


def test_a_second_export_replaces_the_first(cache: Cache, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_parquet(cache, out)
    cache.write_bars("1d", {"600000.SH": bars(days("2025-03-03", 5), 1)}, replace=True)
    export_parquet(cache, out, periods=["1d"])
    years = sorted(p.name for p in (out / "period=1d").iterdir())
    assert years == ["year=2023", "year=2024", "year=2025"]
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/period=1d/*/*.parquet')").fetchall()
    assert n == [(125,)]
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_bad_arguments_are_refused_before_writing(cache: Cache, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="'2h'"):
        export_parquet(cache, tmp_path / "out", periods=["2h"])
    with pytest.raises(InvalidArgument, match="ticks are not exported"):
        export_parquet(cache, tmp_path / "out", periods=["tick"])
    with pytest.raises(InvalidArgument, match="bad compression 'zip'"):
        export_parquet(cache, tmp_path / "out", compression="zip")
    assert not (tmp_path / "out").exists()


def test_cli_export(cache: Cache, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["export", "--format", "parquet", str(tmp_path / "x"), "--home", str(cache.home)]
    )
    assert args.func(args) == 0
    assert "1d: 180 rows in 2 files" in capsys.readouterr().out


def test_pyarrow_datasets_read_the_partitions(cache: Cache, tmp_path: Path) -> None:
    # Ray Data reads Parquet through pyarrow datasets; the hive keys must come back as columns.
    import pyarrow.dataset as ds

    export_parquet(cache, tmp_path / "out")
    table = ds.dataset(tmp_path / "out" / "period=1d", format="parquet", partitioning="hive")
    got = pl.from_arrow(table.to_table(filter=ds.field("year") == 2024))
    assert isinstance(got, pl.DataFrame)
    want = cache_frame(cache, "1d").filter(pl.col("time").dt.year() == 2024)
    assert got.height == want.height and got["year"].unique().to_list() == [2024]
    assert got.sort("code", "time")["close"].to_list() == want["close"].to_list()


def test_codes_are_written_in_groups_of_bounded_rows(
    cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qmtkit.data.export as export

    monkeypatch.setattr(export, "FILE_ROWS", 60)  # one code (60 daily bars) per group
    summary = export_parquet(cache, tmp_path / "out", periods=["1d"])
    assert summary.files == {"1d": 6}  # three groups, each with rows in 2023 and 2024
    lazy = pl.scan_parquet(tmp_path / "out" / "period=1d/**/*.parquet", hive_partitioning=True)
    got = lazy.drop("year").sort("code", "time").collect()
    assert (
        got.height == 180 and got["close"].to_list() == cache_frame(cache, "1d")["close"].to_list()
    )
