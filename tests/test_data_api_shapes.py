"""xtquant-shaped pandas output and the data CLI handlers."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from qmtkit.cli.data import ProgressBar, add_subcommands, import_datadir
from qmtkit.data.cache import Cache
from qmtkit.data.frames import time_strings, to_pandas_by_code

DAY = 86_400_000
T0 = 1_704_038_400_000  # 2024-01-01 00:00 Beijing


def bars(n: int, first: int = T0, step: int = DAY, base: float = 10.0) -> dict[str, np.ndarray]:
    c = base + np.arange(n, dtype=np.float64)
    return {
        "time": first + np.arange(n, dtype=np.int64) * step,
        "open": c,
        "high": c + 1,
        "low": c - 1,
        "close": c,
        "volume": np.arange(n, dtype=np.int64),
    }


def test_time_strings_use_beijing_days_and_seconds() -> None:
    ms = np.array([T0, T0 + (9 * 3600 + 30 * 60) * 1000 + 5000], dtype=np.int64)
    assert time_strings(ms, False).tolist() == ["20240101", "20240101"]
    assert time_strings(ms, True).tolist() == ["20240101000000", "20240101093005"]


def test_pandas_by_code_matches_xtquant_shape(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(5), "000001.SZ": bars(3, first=T0 + DAY, base=50)})
    out = to_pandas_by_code(c.read("1d", ["600000.SH", "000001.SZ"]))
    assert list(out) == ["600000.SH", "000001.SZ"]
    sz = out["000001.SZ"]
    assert list(sz.index) == ["20240102", "20240103", "20240104"]
    assert sz["close"].tolist() == [50.0, 51.0, 52.0]
    assert sz["time"].tolist() == [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    assert out["600000.SH"].index[0] == "20240101"


def test_pandas_by_code_handles_gaps_in_a_code(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    gappy = bars(5)
    keep = np.array([0, 1, 3, 4])
    c.write_bars("1d", {"600000.SH": bars(5), "600001.SH": {k: v[keep] for k, v in gappy.items()}})
    out = to_pandas_by_code(c.read("1d", ["600000.SH", "600001.SH"]))
    assert list(out["600001.SH"].index) == ["20240101", "20240102", "20240104", "20240105"]


def test_pandas_frames_are_views_not_copies(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(50)})
    frame = to_pandas_by_code(c.read("1d", ["600000.SH"]))["600000.SH"]
    assert np.shares_memory(frame["close"].to_numpy(), c.arrays("1d", "600000.SH")["close"])


def test_empty_read_gives_empty_dict(tmp_path: Path) -> None:
    assert to_pandas_by_code(Cache(tmp_path).read("1d", ["600000.SH"])) == {}


# ---------------------------------------------------------------------- CLI


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_progress_bar_draws_one_line() -> None:
    buf = io.StringIO()
    bar = ProgressBar("dl", buf, width=10)
    bar(1, 2, "600000.SH")
    bar(2, 2, "000001.SZ")
    text = buf.getvalue()
    assert "[#####.....] 1/2 600000.SH" in text
    assert text.endswith("[##########] 2/2 000001.SZ   \n")


def test_cache_info_and_verify_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Cache(tmp_path).write_bars("1d", {"600000.SH": bars(10)})
    args = parse(["cache", "info", "--home", str(tmp_path)])
    assert args.func(args) == 0
    assert "1d: 1 codes, 10 rows" in capsys.readouterr().out
    args = parse(["cache", "verify", "--home", str(tmp_path)])
    assert args.func(args) == 0
    assert "cache OK" in capsys.readouterr().out


def test_verify_command_fails_on_damage_and_repairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(10)})
    (shard,) = (c.root / "1d").glob("*/*.qkc")
    with open(shard, "r+b") as f:
        f.truncate(200)
    args = parse(["cache", "verify", "--home", str(tmp_path)])
    assert args.func(args) == 1
    assert str(shard) in capsys.readouterr().out
    args = parse(["cache", "verify", "--repair", "--home", str(tmp_path)])
    assert args.func(args) == 0
    assert Cache(tmp_path).codes("1d") == []


def test_bars_command_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Cache(tmp_path).write_bars("1d", {"600000.SH": bars(30)})
    args = parse(
        ["bars", "600000.SH", "--count", "2", "--fields", "close", "--home", str(tmp_path)]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "shape: (2, 3)" in out and "38.0" in out and "39.0" in out


def test_bars_command_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["bars", "600000.XX", "--home", str(tmp_path)])
    assert args.func(args) == 2
    assert "600000.XX" in capsys.readouterr().err


def write_dat(path: Path, times_s: np.ndarray, closes: np.ndarray) -> None:
    rec = np.zeros(len(times_s), dtype=[("time", "<u4"), ("p", "<u4", 4), ("pad", "V44")])
    rec["time"] = times_s
    rec["p"] = (closes * 1000).astype(np.uint32)[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes.fromhex("feffffffffffff7f") + rec.tobytes())


def test_import_datadir_copies_bars_into_the_cache(tmp_path: Path) -> None:
    src = tmp_path / "datadir"
    t = (T0 + np.arange(4, dtype=np.int64) * DAY) // 1000
    write_dat(src / "SH" / "86400" / "600000.DAT", t, np.array([10.0, 10.5, 11.0, 10.25]))
    write_dat(src / "SZ" / "86400" / "000001.DAT", t[:2], np.array([5.0, 5.5]))
    cache = Cache(tmp_path / "home")
    seen: list[str] = []
    counts = import_datadir(cache, src, ["1d"], progress=lambda d, n, c: seen.append(c))
    assert counts == {"1d": 6}
    assert seen == ["000001.SZ", "600000.SH"]
    df = cache.read("1d", ["600000.SH"])
    assert df["close"].to_list() == [10.0, 10.5, 11.0, 10.25]
    assert df["time"].dt.epoch("ms").to_list()[0] == T0
    assert cache.read("1d", ["000001.SZ"]).schema["time"] == pl.Datetime("ms", "Asia/Shanghai")


def test_import_datadir_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "datadir"
    write_dat(src / "SH" / "86400" / "600000.DAT", np.array([T0 // 1000]), np.array([9.0]))
    args = parse(["import-datadir", str(src), "--periods", "1d", "--home", str(tmp_path / "h")])
    assert args.func(args) == 0
    assert "1d: imported 1 rows" in capsys.readouterr().out


def test_import_datadir_refuses_an_unknown_period(tmp_path: Path) -> None:
    from qmtkit.errors import InvalidPeriod

    with pytest.raises(InvalidPeriod, match="'5m'"):
        import_datadir(Cache(tmp_path), tmp_path, ["5m"])


def test_pandas_index_dtype_is_string(tmp_path: Path) -> None:
    c = Cache(tmp_path)
    c.write_bars("1d", {"600000.SH": bars(2)})
    frame = to_pandas_by_code(c.read("1d", ["600000.SH"]))["600000.SH"]
    assert isinstance(frame, pd.DataFrame) and isinstance(frame.index[0], str)


def test_download_command_fills_the_cache_from_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("qmtkit.backends.sim")
    argv = ["download", "600000.SH", "--start", "20240102", "--end", "20240105"]
    args = parse([*argv, "--backend", f"sim://?home={tmp_path}", "--home", str(tmp_path)])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "fetched 4 bars" in captured.out
    assert "1/1 600000.SH" in captured.err
    assert Cache(tmp_path).read("1d", ["600000.SH"]).height == 4
