"""The HTML report: self-contained, escaped, and rendered by a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from qmtkit.backtest import report
from qmtkit.backtest.metrics import drawdown_series, monthly_returns
from qmtkit.errors import InvalidArgument
from support.backtest import equity, result, sample_run

CHROMIUM = shutil.which("chromium")
#: The flags that work here as root on a closed network (docs: .library machines/python.md).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def test_monthly_returns_chain_month_ends_from_the_initial_cash() -> None:
    dates = [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2024, 3, 29)]
    res = result(equity_frame=equity([99.0, 110.0, 121.0, 108.9], dates=dates), initial_cash=100.0)
    got = monthly_returns(res).to_dicts()
    assert [(r["year"], r["month"]) for r in got] == [(2024, 1), (2024, 2), (2024, 3)]
    assert [r["ret"] for r in got] == pytest.approx([110 / 100 - 1, 121 / 110 - 1, 108.9 / 121 - 1])


def test_the_drawdown_series_measures_each_day_from_the_peak_so_far() -> None:
    res = result(equity_frame=equity([90.0, 120.0, 90.0, 130.0]), initial_cash=100.0)
    assert drawdown_series(res) == pytest.approx([0.1, 0.0, 0.25, 0.0])


def test_the_report_references_nothing_outside_itself() -> None:
    page = report.render_report(sample_run())
    lowered = page.lower()
    assert "http" not in lowered and "<script" not in lowered and "<link" not in lowered
    assert "url(" not in lowered and "@import" not in lowered
    assert page.count("<svg") == 2  # equity and drawdown
    for heading in ("Metrics", "Equity and benchmark", "Drawdown", "Monthly returns", "Trades"):
        assert f"<h2>{heading}</h2>" in page


def test_the_report_escapes_every_text_it_shows() -> None:
    res = sample_run()
    page = report.render_report(res, title="<b>run</b>")
    assert "&lt;b&gt;run&lt;/b&gt;" in page and "<b>run</b>" not in page
    assert "risk:blacklist: &lt;ST&gt; name" in page
    assert res.digest() in page


def test_the_trades_table_is_cut_at_max_trades_and_says_so() -> None:
    page = report.render_report(sample_run(), max_trades=5)
    assert "Showing 5 of 12 trades" in page


def test_a_null_metric_shows_its_reason() -> None:
    page = report.render_report(result(equity_frame=equity([100.0, 101.0])))
    assert "no benchmark: the equity frame" in page


def test_writing_a_report_refuses_a_missing_folder_and_a_folder(tmp_path: Path) -> None:
    res = result()
    with pytest.raises(InvalidArgument, match="does not exist"):
        res.report(tmp_path / "nope" / "r.html")
    with pytest.raises(InvalidArgument, match="is a folder"):
        res.report(tmp_path)
    with pytest.raises(InvalidArgument, match="max_trades"):
        res.report(tmp_path / "r.html", max_trades=-1)
    assert list(tmp_path.iterdir()) == []


def _colour_pixels(rgb: np.ndarray, hex_colour: str, tolerance: int = 24) -> np.ndarray:
    """(x, y) rows of every pixel within ``tolerance`` (sum of channel differences) of a colour."""
    want = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int32)
    close = np.abs(rgb.astype(np.int32) - want).sum(axis=2) <= tolerance
    ys, xs = np.nonzero(close)
    return np.column_stack([xs, ys])


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
def test_a_headless_chromium_renders_the_charts(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image", reason="Pillow (the test extra) reads the PNG")
    page = sample_run().report(tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,1500",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = np.asarray(image_module.open(shot).convert("RGB"))
    equity_px = _colour_pixels(image, report.EQUITY_COLOUR)
    bench_px = _colour_pixels(image, report.BENCHMARK_COLOUR)
    drawdown_px = _colour_pixels(image, report.DRAWDOWN_COLOUR)
    plot_width = report._W - report._LEFT - report._RIGHT
    for name, px in (("equity", equity_px), ("benchmark", bench_px)):
        # A drawn line crosses the plot from side to side and moves up and down; a legend
        # swatch alone would cover 14 columns.
        assert len(np.unique(px[:, 0])) > 0.9 * plot_width, f"the {name} line did not render"
        assert np.ptp(px[:, 1]) > 40, f"the {name} line is flat on screen"
    # The drawdown is a filled area below the equity chart.
    assert len(drawdown_px) > 20_000, "the drawdown area did not render"
    assert drawdown_px[:, 1].min() > equity_px[:, 1].max()
    # The monthly heat map's strongest cell takes the full shade.
    strongest = {report._heat(1.0), report._heat(-1.0)}
    assert any(len(_colour_pixels(image, c, tolerance=6)) > 500 for c in strongest)
