"""Importing user CSV/Parquet bar files into cache columns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.data.importers import import_bars, import_files, parse_times, resolve_columns
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import InvalidArgument, InvalidCode

BJ = dt.timezone(dt.timedelta(hours=8))


def bj_ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=BJ).timestamp() * 1000)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_csv_with_common_names_becomes_schema_columns(tmp_path: Path) -> None:
    p = write_csv(
        tmp_path / "600000.SH.csv",
        """
date,open,high,low,close,vol,turnover
2024-01-03,10.1,10.5,10.0,10.4,1200,1250000
2024-01-02,10.0,10.2,9.9,10.1,1000,1010000
""",
    )
    out = import_bars(p)
    assert list(out) == ["600000.SH"]
    bars = out["600000.SH"]
    assert {k: v.dtype for k, v in bars.items()} == BAR_DTYPES
    assert bars["time"].tolist() == [bj_ms(2024, 1, 2), bj_ms(2024, 1, 3)]  # sorted
    assert bars["close"].tolist() == [10.1, 10.4]
    assert bars["volume"].tolist() == [1000, 1200]
    assert bars["amount"].tolist() == [1010000.0, 1250000.0]
    assert bars["preClose"].tolist() == [0.0, 10.1]
    assert bars["suspendFlag"].tolist() == [0, 0]


def test_long_file_is_split_by_code_column(tmp_path: Path) -> None:
    p = write_csv(
        tmp_path / "all.csv",
        """
ts_code,trade_date,open,high,low,close,pre_close,vol,amount
000001.SZ,20240102,9.0,9.2,8.9,9.1,9.0,500,4550
600000.SH,20240102,10.0,10.2,9.9,10.1,9.95,1000,10100
000001.SZ,20240103,9.1,9.3,9.0,9.2,9.1,600,5520
""",
    )
    out = import_bars(p)
    assert sorted(out) == ["000001.SZ", "600000.SH"]
    assert out["000001.SZ"]["close"].tolist() == [9.1, 9.2]
    assert out["600000.SH"]["preClose"].tolist() == [9.95]  # taken from pre_close
    only = import_bars(p, code="000001.SZ")
    assert list(only) == ["000001.SZ"]


def test_parquet_with_datetime_minute_bars_in_beijing_time(tmp_path: Path) -> None:
    df = pl.DataFrame(
        {
            "datetime": [dt.datetime(2024, 1, 2, 9, 30), dt.datetime(2024, 1, 2, 13, 1)],
            "open": [1.0, 2.0],
            "high": [1.0, 2.0],
            "low": [1.0, 2.0],
            "close": [1.0, 2.0],
            "volume": [100, 200],
            "symbol": ["sh600000", "sh600000"],
        }
    )
    p = tmp_path / "m.parquet"
    df.write_parquet(p)
    bars = import_bars(p, period="1m")["600000.SH"]
    assert bars["time"].tolist() == [bj_ms(2024, 1, 2, 9, 30), bj_ms(2024, 1, 2, 13, 1)]


def test_minute_bars_must_be_labelled_by_session_ends() -> None:
    df = pl.DataFrame(
        {"time": ["2024-01-02 13:00:00"], "open": [1.0], "high": [1.0], "low": [1.0]}
    ).with_columns(close=pl.lit(1.0), volume=pl.lit(5))
    with pytest.raises(InvalidArgument, match="not a session minute"):
        import_bars(df, period="1m", code="600000.SH")


def test_explicit_mapping_overrides_names() -> None:
    df = pl.DataFrame(
        {
            "d": [20240102],
            "o": [1.0],
            "h": [2.0],
            "l": [0.5],
            "c": [1.5],
            "close": [99.0],
            "shares": [12345],
        }
    )
    mapping = {"time": "d", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "shares"}
    bars = import_bars(df, code="000001.SZ", mapping=mapping, volume_unit="shares")["000001.SZ"]
    assert bars["close"].tolist() == [1.5]
    assert bars["volume"].tolist() == [123]  # 12345 shares = 123.45 lots, rounded


def test_chinese_column_names() -> None:
    df = pl.DataFrame(
        {
            "日期": ["2024-01-02"],
            "开盘": [1.0],
            "收盘": [1.2],
            "最高": [1.3],
            "最低": [0.9],
            "成交量": [10],
            "成交额": [1200.0],
        }
    )
    bars = import_bars(df, code="300750.SZ")["300750.SZ"]
    assert bars["close"].tolist() == [1.2]
    assert bars["amount"].tolist() == [1200.0]


def test_missing_columns_are_named() -> None:
    df = pl.DataFrame({"date": ["2024-01-02"], "open": [1.0], "close": [1.0]})
    with pytest.raises(InvalidArgument, match=r"missing column.*high, low, volume"):
        import_bars(df, code="600000.SH")


def test_unknown_mapping_source_is_named() -> None:
    df = pl.DataFrame({"date": ["2024-01-02"]})
    with pytest.raises(InvalidArgument, match="no column 'px'"):
        resolve_columns(df.columns, {"close": "px"})


def test_duplicate_times_are_detected_or_resolved() -> None:
    df = pl.DataFrame(
        {
            "date": ["2024-01-02", "2024-01-02", "2024-01-03"],
            "open": [1.0, 2.0, 3.0],
            "high": [1.0, 2.0, 3.0],
            "low": [1.0, 2.0, 3.0],
            "close": [1.0, 2.0, 3.0],
            "volume": [1, 2, 3],
        }
    )
    with pytest.raises(InvalidArgument, match="1 repeated bar time"):
        import_bars(df, code="600000.SH")
    first = import_bars(df, code="600000.SH", duplicates="first")["600000.SH"]
    last = import_bars(df, code="600000.SH", duplicates="last")["600000.SH"]
    assert first["close"].tolist() == [1.0, 3.0]
    assert last["close"].tolist() == [2.0, 3.0]


def test_daily_datetimes_are_floored_to_the_beijing_day() -> None:
    df = pl.DataFrame(
        {
            "date": [dt.datetime(2024, 1, 2, 15, 0)],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1],
        }
    )
    assert import_bars(df, code="600000.SH")["600000.SH"]["time"].tolist() == [bj_ms(2024, 1, 2)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([20240102], bj_ms(2024, 1, 2)),
        (["2024/01/02"], bj_ms(2024, 1, 2)),
        ([202401020931], bj_ms(2024, 1, 2, 9, 31)),
        (["20240102093100"], bj_ms(2024, 1, 2, 9, 31)),
        ([20240102093100000], bj_ms(2024, 1, 2, 9, 31)),
        ([bj_ms(2024, 1, 2, 9, 31)], bj_ms(2024, 1, 2, 9, 31)),
        ([dt.date(2024, 1, 2)], bj_ms(2024, 1, 2)),
    ],
)
def test_time_forms(values: list[object], expected: int) -> None:
    assert parse_times(pl.Series("t", values)).tolist() == [expected]


def test_zoned_datetimes_are_converted() -> None:
    s = pl.Series("t", [dt.datetime(2024, 1, 2, 1, 31)]).dt.replace_time_zone("UTC")
    assert parse_times(s).tolist() == [bj_ms(2024, 1, 2, 9, 31)]


@pytest.mark.parametrize("values", [["yesterday"], [20241301], [123456]])
def test_unparseable_times_are_refused(values: list[object]) -> None:
    with pytest.raises(InvalidArgument, match="time column 't'"):
        parse_times(pl.Series("t", values))


def test_high_below_low_is_refused() -> None:
    df = pl.DataFrame(
        {
            "date": ["2024-01-02"],
            "open": [1.0],
            "high": [0.5],
            "low": [1.5],
            "close": [1.0],
            "volume": [1],
        }
    )
    with pytest.raises(InvalidArgument, match=r"high 0\.5 < low 1\.5"):
        import_bars(df, code="600000.SH")


def test_a_code_is_required_for_a_single_code_file(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "bars.csv", "date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1")
    with pytest.raises(InvalidArgument, match="no code column"):
        import_bars(p)
    with pytest.raises(InvalidCode):
        import_bars(p, code="AAPL")


def test_import_files_refuses_the_same_code_twice(tmp_path: Path) -> None:
    body = "date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1"
    a = write_csv(tmp_path / "600000.SH.csv", body)
    b = write_csv(tmp_path / "000001.SZ.csv", body)
    assert sorted(import_files([a, b])) == ["000001.SZ", "600000.SH"]
    with pytest.raises(InvalidArgument, match="already imported"):
        import_files([a, a])


def test_bad_options_are_refused() -> None:
    df = pl.DataFrame({"date": ["2024-01-02"]})
    with pytest.raises(InvalidArgument, match="volume_unit 'hands'"):
        import_bars(df, code="600000.SH", volume_unit="hands")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="period '5m'"):
        import_bars(df, code="600000.SH", period="5m")


def test_exchange_prefixed_codes_are_normalised(tmp_path: Path) -> None:
    p = write_csv(
        tmp_path / "long.csv",
        "code,date,open,high,low,close,volume\n"
        "sz.000001,2024-01-02,1,1,1,1,1\nSH600000,2024-01-02,2,2,2,2,2",
    )
    out = import_bars(p)
    assert sorted(out) == ["000001.SZ", "600000.SH"]
    np.testing.assert_array_equal(out["600000.SH"]["open"], [2.0])
