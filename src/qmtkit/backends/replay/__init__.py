"""Backtests: the paper broker over real history replayed from the K-line cache (``backtest://``)."""

from qmtkit.backends.replay.backend import FILL_MODELS, BacktestSpec, ReplayBackend
from qmtkit.backends.replay.market import ReplayMarket

__all__ = ["FILL_MODELS", "BacktestSpec", "ReplayBackend", "ReplayMarket"]
