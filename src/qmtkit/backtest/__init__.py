"""Backtesting: replaying history through the paper broker, and what a run produced.

`qmtkit.backtest.results.BacktestResult` holds a run's frames; metrics, the compliance profile,
the HTML report and parameter sweeps are computed from it.
"""
