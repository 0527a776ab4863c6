"""Many codes of a MiniQMT datadir read as one long frame (qmtkit.data.datadir_frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.data import datadir
from qmtkit.data.datadir_frames import read_datadir
from qmtkit.data.frames import TIME_DTYPE
from qmtkit.errors import InvalidArgument, InvalidCode, Unsupported

FIXTURE = Path("/work/shared/fixtures/miniqmt-datadir")
INDEX = "000001.SH"
ABSENT = "600000.SH"  # no files of it in the fixture

pytestmark = pytest.mark.skipif(not FIXTURE.is_dir(), reason="the MiniQMT fixture is not here")


@pytest.mark.parametrize("period", ["1d", "1m", "tick"])
def test_each_code_gets_the_rows_its_files_hold_in_the_order_asked(period: str) -> None:
    frame = read_datadir(FIXTURE, [ABSENT, INDEX], period)
    own = datadir.read_range(FIXTURE, INDEX, period)
    assert frame.columns == ["code", *own]
    assert frame["code"].cast(pl.String).unique().to_list() == [INDEX]
    assert frame["time"].dtype == TIME_DTYPE
    assert np.array_equal(frame["time"].to_physical().to_numpy(), own["time"])
    assert np.array_equal(frame["close" if period != "tick" else "lastPrice"].to_numpy(),
                          own["close" if period != "tick" else "lastPrice"])  # fmt: skip


def test_count_keeps_each_codes_last_rows_within_the_range() -> None:
    frame = read_datadir(FIXTURE, INDEX, "1d", end="20250529", count=3)
    assert frame.height == 3
    assert frame["time"].dt.strftime("%Y%m%d").to_list()[-1] == "20250529"


def test_no_codes_gives_the_columns_and_no_rows() -> None:
    for period in ("1d", "tick"):
        frame = read_datadir(FIXTURE, [], period)
        assert frame.height == 0
        assert frame.columns == read_datadir(FIXTURE, INDEX, period).columns


def test_ticks_take_any_adjustment_and_leave_prices_as_they_are() -> None:
    raw = read_datadir(FIXTURE, INDEX, "tick", count=5)
    assert read_datadir(FIXTURE, INDEX, "tick", count=5, adjust="front").equals(raw)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"period": "5m"}, Unsupported, "not '5m'"),
        ({"period": "1d", "adjust": "front"}, Unsupported, "raw prices only"),
        ({"adjust": "sideways"}, InvalidArgument, "bad adjust 'sideways'"),
        ({"count": -2}, InvalidArgument, "bad count -2"),
        ({"start": "20250601", "end": "20250101"}, InvalidArgument, "after end"),
        ({"start": True}, InvalidArgument, "bad start time True"),
    ],
)
def test_a_bad_request_is_refused_by_the_data_layers_own_checks(
    kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        read_datadir(FIXTURE, INDEX, **kwargs)  # type: ignore[arg-type]


def test_a_bad_code_or_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidCode, match="'nonsense'"):
        read_datadir(FIXTURE, ["nonsense"])
    with pytest.raises(InvalidArgument, match=r"nowhere.*is not a directory"):
        read_datadir(tmp_path / "nowhere", INDEX)
    with pytest.raises(InvalidArgument, match="expected a directory path"):
        read_datadir(42, INDEX)  # type: ignore[arg-type]
