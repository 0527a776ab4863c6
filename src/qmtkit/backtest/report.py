"""A self-contained HTML report of a backtest: inline SVG charts and tables, no scripts, no CDN.

Sections: the run's settings and digest, the metric table, equity against the benchmark (both
rebased to 1.0), the drawdown, monthly returns as a heat map, the compliance profile, refused
orders and the trades. The page references nothing outside itself, so it opens offline.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Final

import polars as pl

from qmtkit.atomicfile import write_atomically
from qmtkit.backtest.compliance import ComplianceProfile
from qmtkit.backtest.metrics import Metrics, drawdown_series, monthly_returns
from qmtkit.checks import non_negative_int
from qmtkit.errors import InvalidArgument

if TYPE_CHECKING:
    from qmtkit.backtest.results import BacktestResult

#: Line and area colours; the browser test looks for them in the screenshot.
EQUITY_COLOUR: Final = "#1565c0"
BENCHMARK_COLOUR: Final = "#ef6c00"
DRAWDOWN_COLOUR: Final = "#7b1fa2"
#: Monthly cells shade towards red for gains and green for losses (the A-share convention).
UP_COLOUR: Final = (211, 47, 47)
DOWN_COLOUR: Final = (46, 125, 50)
#: Trades shown in the table by default; the rest are counted, not listed.
MAX_TRADES: Final = 1000

_W, _H = 960, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 36
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;
color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border:1px solid #e3e3e3;
text-align:right}th{background:#f5f5f5}td.l,th.l{text-align:left}.muted{color:#777;font-size:12px}
.flag{color:#b71c1c;font-weight:600}.ok{color:#2e7d32;font-weight:600}
svg text{font-size:11px;fill:#555}code{font-size:12px}
"""


def render_report(
    result: BacktestResult,
    *,
    title: str = "Backtest report",
    metrics: Metrics | None = None,
    compliance: ComplianceProfile | None = None,
    max_trades: int = MAX_TRADES,
) -> str:
    """The report of ``result`` as one HTML document."""
    if not isinstance(title, str):
        raise InvalidArgument(f"title must be a str, got {title!r}")
    non_negative_int("max_trades", max_trades)
    m = metrics if metrics is not None else result.metrics()
    c = compliance if compliance is not None else result.compliance()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _settings(result),
        "<h2>Metrics</h2>",
        _metric_table(m),
        "<h2>Equity and benchmark</h2>",
        _equity_chart(result, m.benchmark),
        "<h2>Drawdown</h2>",
        _drawdown_chart(result),
        "<h2>Monthly returns</h2>",
        _monthly_table(result),
        "<h2>Compliance</h2>",
        _compliance_section(c),
        "<h2>Refused orders</h2>",
        _refused_table(result, max_trades),
        "<h2>Trades</h2>",
        _trades_table(result, max_trades),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(
    result: BacktestResult,
    path: str | os.PathLike[str],
    *,
    title: str = "Backtest report",
    metrics: Metrics | None = None,
    compliance: ComplianceProfile | None = None,
    max_trades: int = MAX_TRADES,
) -> Path:
    """Write the report of ``result`` to ``path`` (atomically) and return the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"report path must be a str or path, got {path!r}")
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidArgument(
            f"report path {str(target)!r}: its folder {str(target.parent)!r} does not exist"
        )
    if target.is_dir():
        raise InvalidArgument(f"report path {str(target)!r} is a folder; give a file name")
    text = render_report(
        result, title=title, metrics=metrics, compliance=compliance, max_trades=max_trades
    )
    write_atomically(target, text.encode("utf-8"))
    return target


# --------------------------------------------------------------------------- sections


def _settings(result: BacktestResult) -> str:
    rows = [("initial cash", f"{result.initial_cash:,.2f}")]
    rows += sorted(result.meta.items())
    rows.append(("digest", result.digest()))
    body = "".join(
        f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in rows
    )
    return f"<table>{body}</table>"


_METRIC_ROWS: Final[Sequence[tuple[str, str, str]]] = (
    ("days", "trading days", "int"),
    ("final_total", "final equity", "money"),
    ("total_return", "total return", "pct"),
    ("annual_return", "annual return", "pct"),
    ("volatility", "annual volatility", "pct"),
    ("sharpe", "Sharpe ratio", "num"),
    ("sortino", "Sortino ratio", "num"),
    ("max_drawdown", "maximum drawdown", "pct"),
    ("max_drawdown_days", "its duration (trading days)", "int"),
    ("calmar", "Calmar ratio", "num"),
    ("turnover", "turnover (whole run)", "num"),
    ("annual_turnover", "annual turnover", "num"),
    ("round_trips", "round trips", "int"),
    ("win_rate", "win rate", "pct"),
    ("profit_factor", "profit factor", "num"),
    ("benchmark_return", "benchmark return", "pct"),
    ("alpha", "alpha (annual)", "pct"),
    ("beta", "beta", "num"),
    ("risk_free_rate", "risk-free rate", "pct"),
)


def _metric_table(m: Metrics) -> str:
    values = m.as_dict()
    rows = []
    for key, label, kind in _METRIC_ROWS:
        value = values[key]
        shown = _fmt(value, kind) if value is not None else "—"
        why = m.reasons.get(key, "")
        note = f'<td class="l muted">{_e(why)}</td>' if why else '<td class="l"></td>'
        rows.append(f'<tr><th class="l">{_e(label)}</th><td>{shown}</td>{note}</tr>')
    rows.append(
        f'<tr><th class="l">benchmark</th><td>{_e(m.benchmark or "none")}</td><td></td></tr>'
    )
    return f"<table>{''.join(rows)}</table>"


def _equity_chart(result: BacktestResult, benchmark: str) -> str:
    eq = result.equity
    if eq.height == 0:
        return '<p class="muted">No trading days.</p>'
    dates = eq["date"].to_list()
    strategy = [v / result.initial_cash for v in eq["total"].to_list()]
    series = [(strategy, EQUITY_COLOUR, "strategy")]
    bench = eq["benchmark"].to_list()
    first = next((b for b in bench if b is not None and b > 0), None)
    if first is not None:
        rebased = [None if b is None else b / first for b in bench]
        series.append((rebased, BENCHMARK_COLOUR, benchmark))
    return _line_chart(dates, series, _fmt_ratio, area=False)


def _drawdown_chart(result: BacktestResult) -> str:
    eq = result.equity
    if eq.height == 0:
        return '<p class="muted">No trading days.</p>'
    depths = drawdown_series(result)
    return _line_chart(
        eq["date"].to_list(),
        [([-d for d in depths], DRAWDOWN_COLOUR, "drawdown")],
        _pct1,
        area=True,
    )


def _monthly_table(result: BacktestResult) -> str:
    months = monthly_returns(result)
    if months.height == 0:
        return '<p class="muted">No trading days.</p>'
    cells: dict[tuple[int, int], float] = {(y, mo): r for y, mo, r in months.iter_rows()}
    years = sorted({y for y, _ in cells})
    scale = max((abs(r) for r in cells.values()), default=0.0) or 1.0
    head = "".join(f"<th>{m}</th>" for m in _MONTHS)
    rows = [f'<tr><th class="l">year</th>{head}<th>year</th></tr>']
    for year in years:
        tds = []
        growth = 1.0
        for month in range(1, 13):
            r = cells.get((year, month))
            if r is None:
                tds.append("<td></td>")
                continue
            growth *= 1.0 + r
            tds.append(f'<td style="background:{_heat(r / scale)}">{_pct1(r)}</td>')
        tds.append(f"<td><b>{_pct1(growth - 1.0)}</b></td>")
        rows.append(f'<tr><th class="l">{year}</th>{"".join(tds)}</tr>')
    return f'<table class="months">{"".join(rows)}</table>'


def _compliance_section(c: ComplianceProfile) -> str:
    verdict = (
        '<p class="flag">High-frequency under the 2025 programmatic-trading rules:</p><ul>'
        + "".join(f"<li>{_e(f)}</li>" for f in c.flags)
        + "</ul>"
        if c.high_frequency
        else '<p class="ok">Under the high-frequency thresholds '
        f"({c.per_second_threshold} per second, {c.per_day_threshold:,} per day).</p>"
    )
    ratio = "—" if c.cancel_ratio is None else f"{c.cancel_ratio:.3f}"
    rows = [
        ("orders sent", f"{c.orders:,}"),
        ("cancels sent", f"{c.cancels:,}"),
        ("peak orders+cancels in one second", f"{c.peak_per_second:,}"),
        ("  starting at", str(c.peak_second_at or "—")),
        ("peak orders+cancels in one day", f"{c.peak_per_day:,}"),
        ("  on", str(c.peak_day or "—")),
        ("cancel ratio (cancels / orders)", ratio),
        ("cancels within one second of the order", f"{c.instant_cancels:,}"),
        ("refused by the risk chain", f"{c.risk_refusals:,}"),
    ]
    rows += [(f"  rule {rule}", f"{n:,}") for rule, n in c.refusals_by_rule.items()]
    body = "".join(f'<tr><th class="l">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    return f"{verdict}<table>{body}</table>"


def _refused_table(result: BacktestResult, limit: int) -> str:
    refused = result.orders.filter(pl.col("error").is_not_null())
    columns = ["time", "order_id", "code", "side", "price", "volume", "error"]
    return _frame_table(refused.select(columns), limit, "refused orders")


def _trades_table(result: BacktestResult, limit: int) -> str:
    columns = ["time", "order_id", "code", "side", "price", "volume", "amount", "fee"]
    return _frame_table(result.trades.select(columns), limit, "trades")


def _frame_table(frame: pl.DataFrame, limit: int, what: str) -> str:
    if frame.height == 0:
        return f'<p class="muted">No {what}.</p>'
    head = "".join(f'<th class="l">{_e(c)}</th>' for c in frame.columns)
    rows = []
    for row in frame.head(limit).iter_rows():
        tds = "".join(
            f'<td class="l">{_e(v)}</td>' if isinstance(v, str) else f"<td>{_cell(v)}</td>"
            for v in row
        )
        rows.append(f"<tr>{tds}</tr>")
    more = (
        f'<p class="muted">Showing {limit:,} of {frame.height:,} {what}; the result\'s frame '
        "holds them all.</p>"
        if frame.height > limit
        else ""
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


# --------------------------------------------------------------------------- charts


def _line_chart(
    dates: list[date],
    series: list[tuple[list[float | None], str, str]],
    fmt: Callable[[float], str],
    *,
    area: bool,
) -> str:
    values = [v for s, _, _ in series for v in s if v is not None and math.isfinite(v)]
    lo, hi = min(values), max(values)
    if area:
        hi = max(hi, 0.0)
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    span = hi - lo or 1.0
    n = len(dates)
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return _TOP + ph * (hi - v) / span

    out = [f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">']
    out.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}" fill="#fafafa"/>')
    for t in ticks:
        out.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            'stroke="#e0e0e0"/>'
            f'<text x="{_LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{_e(fmt(t))}</text>'
        )
    for i in sorted({round(k * (n - 1) / 5) for k in range(6)}):
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
        out.append(
            f'<text x="{x(i):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="{anchor}">'
            f"{dates[i].isoformat()}</text>"
        )
    for k, (points, colour, name) in enumerate(series):
        for run in _runs(points):
            coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            if area:
                base = y(0.0)
                first, last = run[0][0], run[-1][0]
                out.append(
                    f'<polygon points="{x(first):.1f},{base:.1f} {coords} {x(last):.1f},'
                    f'{base:.1f}" fill="{colour}" stroke="none"/>'
                )
            else:
                out.append(
                    f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                    'stroke-width="2" stroke-linejoin="round"/>'
                )
        lx = _LEFT + 8 + 150 * k
        out.append(
            f'<rect x="{lx}" y="8" width="14" height="4" fill="{colour}"/>'
            f'<text x="{lx + 20}" y="14">{_e(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _runs(points: list[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive stretches of known values (a gap in the benchmark breaks the line)."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, v in enumerate(points):
        if v is None or not math.isfinite(v):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((i, v))
    if current:
        runs.append(current)
    return runs


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]``."""
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * (abs(lo) or 1.0) * 0.02, hi + 0.5 * (abs(hi) or 1.0) * 0.02
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


# --------------------------------------------------------------------------- formatting


def _heat(x: float) -> str:
    """A background from white to red (gain) or green (loss) by ``|x|`` in [0, 1]."""
    r, g, b = UP_COLOUR if x >= 0 else DOWN_COLOUR
    k = min(abs(x), 1.0) * 0.75
    return "#{:02x}{:02x}{:02x}".format(*(round(255 + (c - 255) * k) for c in (r, g, b)))


def _fmt(value: object, kind: str) -> str:
    assert isinstance(value, (int, float))
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:.3f}"


def _pct1(v: float) -> str:
    """A percentage with one decimal, never "-0.0%"."""
    text = f"{v * 100:.1f}"
    return ("0.0" if text == "-0.0" else text) + "%"


def _fmt_ratio(v: float) -> str:
    return f"{v:.3f}"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return _e(value)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
