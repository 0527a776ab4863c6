"""Resampling 1m to 5m..1h and 1d to 1w/1mon with A-share session boundaries."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from qmtkit.data.calendar import ms_to_yyyymmdd, trading_days, yyyymmdd_to_ms
from qmtkit.data.resample import resample, resample_frame
from qmtkit.errors import InvalidArgument, InvalidPeriod

SESSION = np.array([570, *range(571, 691), *range(781, 901)], dtype=np.int64)


def hhmm(t: np.ndarray) -> list[str]:
    m = ((np.asarray(t) + 8 * 3_600_000) % 86_400_000) // 60_000
    return [f"{x // 60:02d}:{x % 60:02d}" for x in m.tolist()]


def minute_bars(days: list[int], seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.concatenate([yyyymmdd_to_ms(d) + SESSION * 60_000 for d in days])
    close = 10 + np.cumsum(rng.normal(0, 0.01, t.size))
    open_ = np.r_[10.0, close[:-1]]
    return {
        "time": t,
        "open": open_,
        "high": np.maximum(open_, close) + rng.uniform(0, 0.02, t.size),
        "low": np.minimum(open_, close) - rng.uniform(0, 0.02, t.size),
        "close": close,
        "volume": rng.integers(1, 1000, t.size),
        "amount": rng.uniform(1e3, 1e5, t.size),
        "preClose": np.r_[9.9, close[:-1]],
        "suspendFlag": np.zeros(t.size, dtype=np.int8),
    }


def daily_bars(start: int, end: int, seed: int = 3) -> dict[str, np.ndarray]:
    t = trading_days("SH", start, end)
    rng = np.random.default_rng(seed)
    close = 10 + np.cumsum(rng.normal(0, 0.1, t.size))
    return {
        "time": t,
        "open": close - 0.05,
        "high": close + 0.1,
        "low": close - 0.1,
        "close": close,
        "volume": rng.integers(1, 1000, t.size),
        "amount": rng.uniform(1e3, 1e5, t.size),
        "preClose": np.r_[9.9, close[:-1]],
    }


def test_5m_labels_run_from_0935_to_1130_and_1305_to_1500() -> None:
    out = resample(minute_bars([20240611]), "5m")
    expected = [f"{m // 60:02d}:{m % 60:02d}" for m in [*range(575, 691, 5), *range(785, 901, 5)]]
    assert hhmm(out["time"]) == expected
    assert len(expected) == 48


def test_auction_bar_is_folded_into_the_first_bucket() -> None:
    bars = minute_bars([20240611])
    out = resample(bars, "5m")
    assert out["open"][0] == bars["open"][0]  # the 09:30 auction bar's open
    assert out["preClose"][0] == bars["preClose"][0]
    assert out["volume"][0] == bars["volume"][:6].sum()  # 09:30 + 09:31..09:35
    assert out["high"][0] == bars["high"][:6].max()
    assert out["low"][0] == bars["low"][:6].min()
    assert out["close"][0] == bars["close"][5]


def test_no_bucket_spans_the_lunch_break() -> None:
    bars = minute_bars([20240611])
    out = resample(bars, "5m")
    i1130 = hhmm(out["time"]).index("11:30")
    assert out["volume"][i1130] == bars["volume"][116:121].sum()  # 11:26..11:30
    assert out["volume"][i1130 + 1] == bars["volume"][121:126].sum()  # 13:01..13:05
    assert out["open"][i1130 + 1] == bars["open"][121]


def test_hourly_bars_end_1030_1130_1400_1500() -> None:
    bars = minute_bars([20240611, 20240612])
    out = resample(bars, "1h")
    assert hhmm(out["time"]) == ["10:30", "11:30", "14:00", "15:00"] * 2
    assert out["volume"][0] == bars["volume"][:61].sum()  # auction + 60 minutes
    assert out["volume"][1] == bars["volume"][61:121].sum()
    assert out["volume"].sum() == bars["volume"].sum()
    assert ms_to_yyyymmdd(out["time"]).tolist() == [20240611] * 4 + [20240612] * 4


@pytest.mark.parametrize(("period", "per_day"), [("5m", 48), ("15m", 16), ("30m", 8), ("1h", 4)])
def test_bar_counts_and_totals_are_preserved(period: str, per_day: int) -> None:
    bars = minute_bars([20240611, 20240612, 20240613])
    out = resample(bars, period)
    assert len(out["time"]) == 3 * per_day
    assert out["volume"].sum() == bars["volume"].sum()
    assert out["amount"].sum() == pytest.approx(bars["amount"].sum())
    assert out["high"].max() == bars["high"].max()
    assert out["close"][-1] == bars["close"][-1]
    assert list(out) == list(bars)


def test_partial_last_bucket_keeps_its_end_label() -> None:
    bars = minute_bars([20240611])
    cut = {k: v[:63] for k, v in bars.items()}  # up to 10:32
    out = resample(cut, "5m")
    assert hhmm(out["time"])[-1] == "10:35"
    assert out["volume"][-1] == bars["volume"][61:63].sum()
    assert out["close"][-1] == bars["close"][62]


@pytest.mark.parametrize("minute", [12 * 60, 15 * 60 + 5, 9 * 60 + 25])
def test_minutes_outside_the_sessions_are_refused(minute: int) -> None:
    bars = minute_bars([20240611])
    bars["time"] = np.sort(np.r_[bars["time"][1:], yyyymmdd_to_ms(20240611) + minute * 60_000])
    with pytest.raises(InvalidArgument, match="not a session minute"):
        resample(bars, "5m")


def test_unsorted_bars_are_refused() -> None:
    bars = minute_bars([20240611])
    bars["time"] = bars["time"][::-1].copy()
    with pytest.raises(InvalidArgument, match="strictly increasing"):
        resample(bars, "5m")


def test_weeks_with_holidays_are_labelled_by_their_sunday_or_last_day() -> None:
    bars = daily_bars(20240923, 20241018)  # National Day closes 10-01..10-07
    out = resample(bars, "1w")
    assert ms_to_yyyymmdd(out["time"]).tolist() == [20240929, 20241006, 20241013, 20241020]
    last = resample(bars, "1w", label="last_bar")
    assert ms_to_yyyymmdd(last["time"]).tolist() == [20240927, 20240930, 20241011, 20241018]
    # the week of 09-30 traded one day only; the next week starts on Tuesday 10-08
    i930 = int(np.flatnonzero(ms_to_yyyymmdd(bars["time"]) == 20240930)[0])
    assert out["open"][1] == bars["open"][i930]
    assert out["close"][1] == bars["close"][i930]
    assert out["volume"][2] == bars["volume"][i930 + 1 : i930 + 5].sum()
    assert out["preClose"][2] == bars["preClose"][i930 + 1]


def test_month_boundary() -> None:
    bars = daily_bars(20240125, 20240206)
    out = resample(bars, "1mon")
    assert ms_to_yyyymmdd(out["time"]).tolist() == [20240131, 20240229]
    days = ms_to_yyyymmdd(bars["time"])
    feb = days >= 20240201
    assert out["open"][1] == bars["open"][feb][0]
    assert out["high"][0] == bars["high"][~feb].max()
    assert out["volume"][1] == bars["volume"][feb].sum()
    last = resample(bars, "1mon", label="last_bar")
    assert ms_to_yyyymmdd(last["time"]).tolist() == [20240131, 20240206]


def test_long_frame_is_grouped_by_code() -> None:
    a = minute_bars([20240611], seed=1)
    b = minute_bars([20240611, 20240612], seed=2)
    frame = pl.concat(
        [
            pl.DataFrame({"code": "600000.SH", **a}),
            pl.DataFrame({"code": "000001.SZ", **b}),
        ]
    ).sample(fraction=1.0, shuffle=True, seed=5)
    out = resample_frame(frame, "30m")
    assert out.columns == ["code", "time", *[c for c in a if c != "time"]]
    for code, bars in (("000001.SZ", b), ("600000.SH", a)):
        expected = resample(bars, "30m")
        got = out.filter(pl.col("code") == code)
        for col, values in expected.items():
            assert np.allclose(got[col].to_numpy(), values), col


def test_long_frame_weekly_last_bar_labels() -> None:
    bars = daily_bars(20240923, 20241018)
    frame = pl.DataFrame({"code": "600000.SH", **bars})
    out = resample_frame(frame, "1w", label="last_bar")
    assert ms_to_yyyymmdd(out["time"].to_numpy()).tolist() == [
        20240927,
        20240930,
        20241011,
        20241018,
    ]


@pytest.mark.parametrize("period", ["1d", "1m", "7m", "tick"])
def test_unsupported_target_periods_are_refused(period: str) -> None:
    with pytest.raises(InvalidPeriod, match=repr(period)):
        resample(minute_bars([20240611]), period)


def test_bad_label_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="'middle'"):
        resample(daily_bars(20240101, 20240131), "1w", label="middle")  # type: ignore[arg-type]


def test_long_frame_already_grouped_keeps_its_code_order() -> None:
    a = minute_bars([20240611], seed=1)
    b = minute_bars([20240611], seed=2)
    frame = pl.concat(
        [pl.DataFrame({"code": "600000.SH", **a}), pl.DataFrame({"code": "000001.SZ", **b})]
    )
    out = resample_frame(frame, "1h")
    assert out["code"].to_list() == ["600000.SH"] * 4 + ["000001.SZ"] * 4
    assert out["volume"].to_list()[:4] == resample(a, "1h")["volume"].tolist()


def test_long_frame_with_repeated_rows_is_refused() -> None:
    a = minute_bars([20240611])
    one = pl.DataFrame({"code": "600000.SH", **a})
    with pytest.raises(InvalidArgument, match="not strictly increasing"):
        resample_frame(pl.concat([one, one.head(3)]), "5m")


def test_long_frame_lacking_a_code_column_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"lacks column.*code"):
        resample_frame(pl.DataFrame(minute_bars([20240611])), "5m")
