"""Column names and dtypes of stored market data, one place for the cache, sources and wire.

Times are Unix milliseconds (int64), as xtquant's ``time`` field. Minute bars are labelled by
their end; daily bars by 00:00 Beijing time of the day (as MiniQMT stores them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

BAR_DTYPES: Final[dict[str, np.dtype[np.generic]]] = {
    "time": np.dtype("<i8"),
    "open": np.dtype("<f8"),
    "high": np.dtype("<f8"),
    "low": np.dtype("<f8"),
    "close": np.dtype("<f8"),
    "volume": np.dtype("<i8"),
    "amount": np.dtype("<f8"),
    "preClose": np.dtype("<f8"),
    "suspendFlag": np.dtype("<i1"),
}

_LEVELS = range(1, 6)
TICK_DTYPES: Final[dict[str, np.dtype[np.generic]]] = {
    "time": np.dtype("<i8"),
    "lastPrice": np.dtype("<f8"),
    "open": np.dtype("<f8"),
    "high": np.dtype("<f8"),
    "low": np.dtype("<f8"),
    "lastClose": np.dtype("<f8"),
    "amount": np.dtype("<f8"),
    "volume": np.dtype("<i8"),
    "pvolume": np.dtype("<i8"),
    "stockStatus": np.dtype("<i4"),
    "openInt": np.dtype("<i8"),
    "transactionNum": np.dtype("<i8"),
    **{f"askPrice{i}": np.dtype("<f8") for i in _LEVELS},
    **{f"bidPrice{i}": np.dtype("<f8") for i in _LEVELS},
    **{f"askVol{i}": np.dtype("<i8") for i in _LEVELS},
    **{f"bidVol{i}": np.dtype("<i8") for i in _LEVELS},
}

#: Minute periods a source may serve as such (baostock's 5/15/30/60-minute bars); they are
#: stored as they came, and derived from 1m (or a finer stored one) only when not stored.
MINUTE_PERIODS: Final = ("5m", "15m", "30m", "1h")
#: The stored periods a backend's ``FetchHistory`` serves (minute periods come from 1m).
BACKEND_PERIODS: Final = ("tick", "1m", "1d")
#: Periods kept in the cache; every other period is derived from one of these.
STORED_PERIODS: Final = ("tick", "1m", *MINUTE_PERIODS, "1d")


def dtypes_for(period: str) -> dict[str, np.dtype[np.generic]]:
    """The stored columns of a stored period."""
    return TICK_DTYPES if period == "tick" else BAR_DTYPES


def window(
    cols: Mapping[str, npt.NDArray[Any]], start_ms: int = 0, end_ms: int = 0, count: int = -1
) -> dict[str, npt.NDArray[Any]]:
    """Rows of time-sorted columns with ``start_ms <= time <= end_ms`` (0: unbounded), as views.

    ``count >= 0`` keeps only the last ``count`` of those rows (xtquant's rule); -1 keeps all.
    """
    t = cols["time"]
    a = int(np.searchsorted(t, start_ms, "left")) if start_ms else 0
    b = int(np.searchsorted(t, end_ms, "right")) if end_ms else len(t)
    if count >= 0:
        a = max(a, b - count)
    return {k: v[a:b] for k, v in cols.items()}
