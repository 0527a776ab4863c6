"""Where prices come from: the ``Market`` seam between a venue's prices and the paper broker.

The paper broker (``backends.sim.broker.Broker``) is one: A-share rules, matching, fees. What
feeds it differs: the synthetic market of ``sim://`` (``backends.sim.market.SyntheticMarket``),
the replay of cached history for backtests (``backends.replay.market.ReplayMarket``) and, for
paper trading, live quotes from another backend. Each answers the same few questions for a
moment in time; nothing a market returns lies after the moment asked about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qmtkit.models import Bar, InstrumentDetail, Tick

Columns = Mapping[str, npt.NDArray[Any]]


class Market(Protocol):
    """The questions a venue asks of its prices, each as of a moment (Unix ms)."""

    def session_day(self, code: str, now_ms: int) -> int:
        """The trading day (``YYYYMMDD``) whose prices ``code`` shows at ``now_ms``."""

    def instrument(self, code: str, day: int) -> InstrumentDetail:
        """Reference data of ``code`` on ``day``: limits, pre-close, suspension (``IsTrading``)."""

    def ticks(self, codes: list[str], now_ms: int) -> list[Tick]:
        """The latest snapshot of each code at ``now_ms`` (codes without one are left out)."""

    def bars_in_progress(self, codes: list[str], period: str, now: int) -> list[Bar]:
        """The newest bar of ``period`` of each code as known at ``now``."""

    def history_until(
        self, code: str, period: str, start_ms: int, end_ms: int, now_ms: int
    ) -> Mapping[str, np.ndarray[Any, Any]]:
        """Stored bars of ``code`` in ``[start_ms, end_ms]`` known at ``now_ms``, no later."""


__all__ = ["Columns", "Market"]
