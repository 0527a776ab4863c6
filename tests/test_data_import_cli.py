"""`qmtkit import FILE... --period 1d|1m`: user CSV/Parquet bars into the cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.cli import main
from qmtkit.data.cache import Cache

_DAY_MS = 86_400_000
_BJ_MS = 8 * 3_600_000


def _day_ms(y: int, m: int, d: int) -> int:
    """00:00 Beijing of a day, as Unix ms."""
    days = int(np.datetime64(f"{y:04d}-{m:02d}-{d:02d}", "D").astype(np.int64))
    return days * _DAY_MS - _BJ_MS


def _ms(frame: pl.DataFrame) -> list[int]:
    """The stored int64 times behind a frame's Datetime column."""
    return frame["time"].dt.epoch("ms").to_list()


def _daily(days: list[str], base: float) -> pl.DataFrame:
    n = len(days)
    close = [base + 0.1 * i for i in range(n)]
    return pl.DataFrame(
        {
            "date": days,
            "open": [c - 0.05 for c in close],
            "high": [c + 0.2 for c in close],
            "low": [c - 0.2 for c in close],
            "close": close,
            "volume": [1000 + 10 * i for i in range(n)],
            "amount": [1e6 + i for i in range(n)],
        }
    )


DAYS = ["2024-01-02", "2024-01-03", "2024-01-04"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_csv_file_named_by_code_is_imported_and_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _daily(DAYS, 10.0)
    df.write_csv(tmp_path / "600000.SH.csv")
    rc, out, err = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), "--period", "1d", "--home", str(tmp_path)
    )
    assert (rc, err) == (0, "")
    assert "600000.SH: imported 3 1d rows" in out
    got = Cache(tmp_path).read("1d", ["600000.SH"])
    assert _ms(got) == [_day_ms(2024, 1, d) for d in (2, 3, 4)]
    assert got["close"].to_list() == df["close"].to_list()
    assert got["volume"].to_list() == df["volume"].to_list()
    # no preClose column: the previous close, 0 on the first row
    assert got["preClose"].to_list() == [0.0, *df["close"].to_list()[:2]]


def test_qmtkit_bars_shows_the_imported_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 12.5).write_csv(tmp_path / "000001.SZ.csv")
    argv = ["import", str(tmp_path / "000001.SZ.csv"), "--period", "1d", "--home", str(tmp_path)]
    assert main(argv) == 0
    capsys.readouterr()
    rc, out, _ = _run(capsys, "bars", "000001.SZ", "--home", str(tmp_path), "--count", "-1")
    assert rc == 0
    assert out.count("000001.SZ") == 3
    assert "2024-01-04" in out and "12.7" in out


def test_parquet_long_file_with_code_column_splits_by_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _daily(DAYS, 10.0).with_columns(pl.lit("600000.SH").alias("code"))
    b = _daily(DAYS[:2], 20.0).with_columns(pl.lit("000001.SZ").alias("code"))
    pl.concat([a, b]).write_parquet(tmp_path / "all.parquet")
    rc, out, _ = _run(
        capsys, "import", str(tmp_path / "all.parquet"), "--period", "1d", "--home", str(tmp_path)
    )
    assert rc == 0
    assert "600000.SH: imported 3 1d rows" in out
    assert "000001.SZ: imported 2 1d rows" in out
    got = Cache(tmp_path).read("1d", ["000001.SZ", "600000.SH"])
    assert got.group_by("code", maintain_order=True).len()["len"].to_list() == [2, 3]
    assert got.filter(pl.col("code") == "000001.SZ")["close"].to_list() == b["close"].to_list()


def test_a_file_per_code_and_a_long_file_store_the_same_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _daily(DAYS, 10.0), _daily(DAYS, 30.0)
    per_code = tmp_path / "per"
    per_code.mkdir()
    a.write_csv(per_code / "600000.SH.csv")
    b.write_parquet(per_code / "000001.SZ.parquet")
    long = pl.concat(
        [
            a.with_columns(pl.lit("SH600000").alias("symbol")),
            b.with_columns(pl.lit("000001.SZ").alias("symbol")),
        ]
    )
    long.write_csv(tmp_path / "long.csv")

    home1, home2 = tmp_path / "h1", tmp_path / "h2"
    files = [str(per_code / "600000.SH.csv"), str(per_code / "000001.SZ.parquet")]
    assert main(["import", *files, "--period", "1d", "--home", str(home1)]) == 0
    assert main(["import", str(tmp_path / "long.csv"), "--period", "1d", "--home", str(home2)]) == 0
    capsys.readouterr()
    codes = ["000001.SZ", "600000.SH"]
    first, second = Cache(home1).read("1d", codes), Cache(home2).read("1d", codes)
    assert first.height == 6
    assert first.equals(second)


def test_bad_column_mapping_names_the_missing_source_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "600000.SH.csv")
    rc, out, err = _run(
        capsys,
        "import",
        str(tmp_path / "600000.SH.csv"),
        "--period",
        "1d",
        "--map",
        "close=adj_close",
        "--home",
        str(tmp_path),
    )
    assert rc != 0
    assert out == ""
    assert "'adj_close'" in err
    assert Cache(tmp_path).codes("1d") == []


def test_mapping_to_an_unknown_target_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "600000.SH.csv")
    rc, _, err = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), "--period", "1d",
        "--map", "shut=close", "--home", str(tmp_path),
    )  # fmt: skip
    assert rc != 0
    assert "'shut'" in err


@pytest.mark.parametrize("item", ["close", "=close", "close="])
def test_map_without_target_and_source_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], item: str
) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "600000.SH.csv")
    rc, _, err = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), "--period", "1d",
        "--map", item, "--home", str(tmp_path),
    )  # fmt: skip
    assert rc != 0
    assert f"bad --map {item!r}" in err


def test_mapping_renames_a_source_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _daily(DAYS, 10.0).rename({"close": "adj_close", "date": "d"})
    df.write_csv(tmp_path / "600000.SH.csv")
    rc, _, err = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), "--period", "1d",
        "--map", "close=adj_close", "--map", "time=d", "--home", str(tmp_path),
    )  # fmt: skip
    assert (rc, err) == (0, "")
    assert Cache(tmp_path).read("1d", ["600000.SH"])["close"].to_list() == df["adj_close"].to_list()


def test_missing_required_column_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 10.0).drop("volume").write_csv(tmp_path / "600000.SH.csv")
    rc, _, err = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), "--period", "1d", "--home", str(tmp_path)
    )
    assert rc != 0
    assert "missing column(s) volume" in err


def test_unknown_file_type_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "600000.SH.xlsx"
    path.write_bytes(b"not a table")
    rc, _, err = _run(capsys, "import", str(path), "--period", "1d", "--home", str(tmp_path))
    assert rc != 0
    assert "'.xlsx'" in err


def test_one_bad_file_writes_nothing_of_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "600000.SH.csv")
    _daily(DAYS, 10.0).drop("open").write_csv(tmp_path / "000001.SZ.csv")
    rc, _, err = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), str(tmp_path / "000001.SZ.csv"),
        "--period", "1d", "--home", str(tmp_path),
    )  # fmt: skip
    assert rc != 0 and "open" in err
    assert Cache(tmp_path).codes("1d") == []


@pytest.mark.parametrize(("unit", "stored"), [("lots", [1000, 1010]), ("shares", [10, 10])])
def test_volume_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unit: str, stored: list[int]
) -> None:
    _daily(DAYS[:2], 10.0).write_csv(tmp_path / "600000.SH.csv")
    rc, _, _ = _run(
        capsys, "import", str(tmp_path / "600000.SH.csv"), "--period", "1d",
        "--volume-unit", unit, "--home", str(tmp_path),
    )  # fmt: skip
    assert rc == 0
    assert Cache(tmp_path).read("1d", ["600000.SH"])["volume"].to_list() == stored


def test_bad_volume_unit_and_period_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "600000.SH.csv")
    f = str(tmp_path / "600000.SH.csv")
    rc, _, err = _run(
        capsys, "import", f, "--period", "1d", "--volume-unit", "hands", "--home", str(tmp_path)
    )
    assert rc != 0 and "'hands'" in err
    rc, _, err = _run(capsys, "import", f, "--period", "5m", "--home", str(tmp_path))
    assert rc != 0 and "'5m'" in err


def test_code_option_names_a_file_without_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "bars.csv")
    rc, _, err = _run(capsys, "import", str(tmp_path / "bars.csv"), "--period", "1d",
                      "--home", str(tmp_path))  # fmt: skip
    assert rc != 0 and "no code column" in err
    rc, out, _ = _run(capsys, "import", str(tmp_path / "bars.csv"), "--period", "1d",
                      "--code", "600519.SH", "--home", str(tmp_path))  # fmt: skip
    assert rc == 0 and "600519.SH: imported 3" in out


def test_minute_bars_import_with_their_end_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    times = ["2024-01-02 09:31:00", "2024-01-02 09:32:00", "2024-01-02 13:01:00"]
    df = _daily(times, 10.0).rename({"date": "datetime"})
    df.write_parquet(tmp_path / "600000.SH.parquet")
    rc, out, _ = _run(capsys, "import", str(tmp_path / "600000.SH.parquet"), "--period", "1m",
                      "--home", str(tmp_path))  # fmt: skip
    assert rc == 0 and "imported 3 1m rows" in out
    t0 = _day_ms(2024, 1, 2)
    minutes = [9 * 60 + 31, 9 * 60 + 32, 13 * 60 + 1]
    assert _ms(Cache(tmp_path).read("1m", ["600000.SH"])) == [t0 + m * 60_000 for m in minutes]


def test_coverage_is_the_imported_span_joined_when_touching(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "600000.SH.csv"
    _daily(DAYS, 10.0).write_csv(f)
    assert main(["import", str(f), "--period", "1d", "--home", str(tmp_path)]) == 0
    cache = Cache(tmp_path)
    assert cache.coverage("1d", "600000.SH") == (_day_ms(2024, 1, 2), _day_ms(2024, 1, 4))
    # overlapping: joined
    _daily(["2024-01-04", "2024-01-05"], 11.0).write_csv(f)
    assert main(["import", str(f), "--period", "1d", "--home", str(tmp_path)]) == 0
    assert Cache(tmp_path).coverage("1d", "600000.SH") == (_day_ms(2024, 1, 2), _day_ms(2024, 1, 5))
    # apart: the gap is not known complete, so the new span replaces the coverage
    _daily(["2024-03-01"], 12.0).write_csv(f)
    assert main(["import", str(f), "--period", "1d", "--home", str(tmp_path)]) == 0
    capsys.readouterr()
    c = Cache(tmp_path)
    assert c.coverage("1d", "600000.SH") == (_day_ms(2024, 3, 1), _day_ms(2024, 3, 1))
    assert c.read("1d", ["600000.SH"]).height == 5


def test_console_command_exits_non_zero_with_the_message_on_stderr(tmp_path: Path) -> None:
    _daily(DAYS, 10.0).write_csv(tmp_path / "600000.SH.csv")
    bad = subprocess.run(
        [sys.executable, "-m", "qmtkit.cli", "import", str(tmp_path / "600000.SH.csv"),
         "--period", "1d", "--map", "open=opening", "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "'opening'" in bad.stderr and bad.stdout == ""
    good = subprocess.run(
        [sys.executable, "-m", "qmtkit.cli", "import", str(tmp_path / "600000.SH.csv"),
         "--period", "1d", "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "600000.SH: imported 3 1d rows" in good.stdout
