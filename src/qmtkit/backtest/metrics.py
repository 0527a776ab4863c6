"""Performance metrics of a backtest, from its daily equity and its trades.

Conventions (docs/backtest.md gives every formula):

- daily returns are ``r_t = total_t / total_(t-1) - 1``, the first day measured from the initial
  cash, so ``n`` equity rows give ``n`` returns;
- a year is 252 trading days; volatilities use the sample standard deviation (``ddof = 1``);
- the risk-free rate is an annual simple rate, ``rf / 252`` per day (default 0);
- a metric that cannot be computed is ``None`` and `Metrics.reasons` says why.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.checks import finite_number
from qmtkit.errors import InvalidArgument

if TYPE_CHECKING:
    from qmtkit.backtest.results import BacktestResult

#: Trading days in a year, for annualising.
TRADING_DAYS: Final = 252
#: The benchmark assumed when the result's meta does not name one (meta key ``benchmark``).
DEFAULT_BENCHMARK: Final = "000300.SH"
#: A daily-return standard deviation below this is rounding noise, treated as zero.
ZERO_STD: Final = 1e-12

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Drawdown:
    """The largest peak-to-trough fall of total equity.

    ``depth`` is a positive fraction of the peak; indices count equity rows, with -1 for the
    initial cash before the first day; ``recovery`` is None while equity has not regained the peak.
    ``duration`` is trading days from the peak to the recovery, or to the last day if none.
    """

    depth: float
    peak: int
    trough: int
    recovery: int | None
    duration: int


@dataclass(frozen=True)
class RoundTrips:
    """Closing trades matched FIFO per code against earlier buys (see `round_trips`)."""

    count: int
    wins: int
    losses: int
    gross_profit: float
    gross_loss: float
    unmatched_sell_volume: int


@dataclass(frozen=True)
class Metrics:
    """The headline figures of a backtest. Ratios are fractions (0.05 is 5 %)."""

    days: int
    initial_cash: float
    final_total: float | None
    total_return: float | None
    annual_return: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    max_drawdown_days: int | None
    calmar: float | None
    turnover: float | None
    annual_turnover: float | None
    round_trips: int
    win_rate: float | None
    profit_factor: float | None
    benchmark: str
    benchmark_return: float | None
    alpha: float | None
    beta: float | None
    risk_free_rate: float
    #: Why each metric that is None could not be computed.
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | int | str | None]:
        """The figures as one flat dict (without `reasons`), e.g. for a row of a sweep frame."""
        out = asdict(self)
        out.pop("reasons")
        return out


def compute_metrics(result: BacktestResult, *, risk_free_rate: float = 0.0) -> Metrics:
    """Every metric of ``result``; ``risk_free_rate`` is annual and simple (0.02 is 2 %)."""
    rf = check_risk_free_rate(risk_free_rate)
    rf_day = rf / TRADING_DAYS
    reasons: dict[str, str] = {}
    totals = result.equity["total"].to_numpy().astype(np.float64)
    cash = result.initial_cash
    days = len(totals)
    path = np.concatenate(([cash], totals))
    returns = path[1:] / path[:-1] - 1.0 if days else np.empty(0)
    if days and not np.all(np.isfinite(returns)):
        raise InvalidArgument("equity.total must stay positive and finite to compute returns")

    final = float(totals[-1]) if days else None
    total_ret = final / cash - 1.0 if final is not None else None
    annual = _annualise(total_ret, days)
    if not days:
        for name in ("final_total", "total_return", "annual_return"):
            reasons[name] = "no trading days in the equity frame"

    vol = sharpe = sortino = None
    if days < 2:
        why = f"needs at least 2 daily returns, have {days}"
        reasons.update(volatility=why, sharpe=why, sortino=why)
    else:
        std = float(np.std(returns, ddof=1))
        std = 0.0 if std < ZERO_STD else std
        vol = std * math.sqrt(TRADING_DAYS)
        excess = float(np.mean(returns)) - rf_day
        if std == 0.0:
            reasons["sharpe"] = "zero volatility: every daily return is the same"
        else:
            sharpe = excess / std * math.sqrt(TRADING_DAYS)
        downside = math.sqrt(float(np.mean(np.minimum(returns - rf_day, 0.0) ** 2)))
        if downside < ZERO_STD:
            reasons["sortino"] = "no daily return fell below the risk-free rate"
        else:
            sortino = excess / downside * math.sqrt(TRADING_DAYS)

    dd = drawdown(path) if days else None
    if dd is None:
        reasons["max_drawdown"] = reasons["max_drawdown_days"] = "no trading days"
    calmar = None
    if dd is None or annual is None:
        reasons["calmar"] = "needs an annual return and a drawdown"
    elif dd.depth == 0.0:
        reasons["calmar"] = "no drawdown: equity never fell below a previous peak"
    else:
        calmar = annual / dd.depth

    traded = float(result.trades["amount"].sum()) if result.trades.height else 0.0
    turnover = annual_turnover = None
    if days:
        turnover = traded / 2.0 / float(np.mean(totals))
        annual_turnover = turnover * TRADING_DAYS / days
    else:
        reasons["turnover"] = reasons["annual_turnover"] = "no trading days"

    trips = round_trips(result)
    win_rate = profit_factor = None
    if trips.count == 0:
        reasons["win_rate"] = reasons["profit_factor"] = "no round trips (no sell closed a buy)"
    else:
        win_rate = trips.wins / trips.count
        if trips.gross_loss == 0.0:
            reasons["profit_factor"] = "no losing round trip"
        else:
            profit_factor = trips.gross_profit / trips.gross_loss

    bench_name = result.meta.get("benchmark", DEFAULT_BENCHMARK)
    bench = result.equity["benchmark"].to_numpy().astype(np.float64)  # nulls become NaN
    bench_ret, alpha, beta = _against_benchmark(returns, bench, rf_day, reasons)

    return Metrics(
        days=days,
        initial_cash=cash,
        final_total=final,
        total_return=total_ret,
        annual_return=annual,
        volatility=vol,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=dd.depth if dd else None,
        max_drawdown_days=dd.duration if dd else None,
        calmar=calmar,
        turnover=turnover,
        annual_turnover=annual_turnover,
        round_trips=trips.count,
        win_rate=win_rate,
        profit_factor=profit_factor,
        benchmark=bench_name,
        benchmark_return=bench_ret,
        alpha=alpha,
        beta=beta,
        risk_free_rate=rf,
        reasons=reasons,
    )


def monthly_returns(result: BacktestResult) -> pl.DataFrame:
    """One row per month with equity: ``year``, ``month`` and ``ret``.

    ``ret`` is the month's last total over the previous month's last total, minus 1; the first
    month is measured from the initial cash.
    """
    ends = (
        result.equity.group_by(
            year=pl.col("date").dt.year().cast(pl.Int32),
            month=pl.col("date").dt.month().cast(pl.Int8),
        )
        .agg(pl.col("total").last())
        .sort("year", "month")
    )
    before = pl.col("total").shift(1).fill_null(result.initial_cash)
    return ends.select("year", "month", ret=pl.col("total") / before - 1.0)


def drawdown_series(result: BacktestResult) -> list[float]:
    """Each day's fall below the highest equity so far (the initial cash included), >= 0."""
    totals = result.equity["total"].to_numpy().astype(np.float64)
    if totals.size == 0:
        return []
    peaks = np.maximum.accumulate(np.concatenate(([result.initial_cash], totals)))[1:]
    return [float(v) for v in 1.0 - totals / peaks]


def drawdown(path: Floats) -> Drawdown:
    """The maximum drawdown of an equity path whose first value is the initial cash."""
    peaks = np.maximum.accumulate(path)
    depths = 1.0 - path / peaks
    trough = int(np.argmax(depths))
    depth = float(depths[trough])
    if depth == 0.0:
        return Drawdown(0.0, peak=-1, trough=-1, recovery=None, duration=0)
    peak = int(np.argmax(path[: trough + 1] >= peaks[trough]))
    later = np.nonzero(path[trough:] >= peaks[trough])[0]
    recovery = trough + int(later[0]) if later.size else None
    end = recovery if recovery is not None else len(path) - 1
    # Path index i is equity row i - 1 (index 0 is the initial cash).
    return Drawdown(
        depth,
        peak=peak - 1,
        trough=trough - 1,
        recovery=None if recovery is None else recovery - 1,
        duration=end - peak,
    )


def round_trips(result: BacktestResult) -> RoundTrips:
    """Match every sell FIFO against the earliest open buys of its code.

    Each sell trade that closes bought shares is one round trip; its profit is the matched
    volume's sell amount minus its cost, minus the sell's fee and the matched share of each
    buy's fee. Sold shares no buy accounts for (e.g. bonus shares) are counted, not matched.
    """
    lots: dict[str, deque[list[float]]] = {}
    count = wins = losses = unmatched = 0
    profit = loss = 0.0
    trades = result.trades.sort("time", maintain_order=True)
    rows = trades.select("code", "side", "price", "volume", "fee").iter_rows()
    for code, side, price, volume, fee in rows:
        if volume <= 0:
            continue
        book = lots.setdefault(code, deque())
        if side == "buy":
            book.append([price, float(volume), fee / volume])  # price, open volume, fee per share
            continue
        left = float(volume)
        pnl = -fee
        matched = 0.0
        while left > 0 and book:
            lot = book[0]
            take = min(left, lot[1])
            pnl += take * (price - lot[0]) - take * lot[2]
            lot[1] -= take
            left -= take
            matched += take
            if lot[1] == 0:
                book.popleft()
        unmatched += int(left)
        if matched == 0:
            continue
        count += 1
        if pnl > 0:
            wins += 1
            profit += pnl
        else:
            losses += 1
            loss -= pnl
    return RoundTrips(count, wins, losses, profit, loss, unmatched)


def check_risk_free_rate(rate: object) -> float:
    """``rate`` as a float if it is an annual fraction in (-1, 1), such as 0.02 for 2 %."""
    rate = finite_number("risk_free_rate", rate, " such as 0.02")
    if not -1.0 < rate < 1.0:
        raise InvalidArgument(
            f"risk_free_rate is an annual fraction (0.02 for 2 %), got {rate!r}; "
            "expected a value between -1 and 1"
        )
    return float(rate)


def _annualise(total: float | None, days: int) -> float | None:
    if total is None or days == 0:
        return None
    growth = 1.0 + total
    if growth <= 0.0:
        return -1.0
    return float(growth ** (TRADING_DAYS / days) - 1.0)


def _against_benchmark(
    returns: Floats, bench: Floats, rf_day: float, reasons: dict[str, str]
) -> tuple[float | None, float | None, float | None]:
    """Benchmark total return, and Jensen's alpha (annual) and beta of the daily returns."""
    known = bench[np.isfinite(bench)]
    if known.size == 0:
        why = "no benchmark: the equity frame's benchmark column is empty"
        reasons.update(benchmark_return=why, alpha=why, beta=why)
        return None, None, None
    bench_ret = float(known[-1] / known[0] - 1.0) if known[0] > 0 else None
    if bench_ret is None:
        reasons["benchmark_return"] = "the benchmark's first close is not positive"
    # Day t's benchmark return needs closes on days t-1 and t; the strategy's return on day t
    # is aligned with it (the first day has no benchmark return).
    b = bench[1:] / bench[:-1] - 1.0 if bench.size > 1 else np.empty(0)
    r = returns[1:]
    ok = np.isfinite(b)
    b, r = b[ok], r[ok]
    if b.size < 2:
        why = f"needs at least 2 days with benchmark returns, have {b.size}"
        reasons.update(alpha=why, beta=why)
        return bench_ret, None, None
    var_b = float(np.var(b, ddof=1))
    if var_b == 0.0:
        why = "the benchmark's daily return never changed (zero variance)"
        reasons.update(alpha=why, beta=why)
        return bench_ret, None, None
    beta = float(np.cov(r, b, ddof=1)[0, 1]) / var_b
    alpha = (float(np.mean(r)) - rf_day - beta * (float(np.mean(b)) - rf_day)) * TRADING_DAYS
    return bench_ret, alpha, beta
