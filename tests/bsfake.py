"""Helpers shared by the baostock tests: the fake package on the path, and expected values
computed from the fake's own rows (never through qmtkit's code)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

FAKE_DIR = Path(__file__).parent / "fake_baostock"
CODES = ["sh.600000", "sz.000001", "sh.688001"]
QK = {"sh.600000": "600000.SH", "sz.000001": "000001.SZ", "sh.688001": "688001.SH"}
#: Options that keep the source fast and its waits out of the tests.
FAST: dict[str, Any] = {"rate": 1e6, "timeout": 5.0, "backoff": 0.001, "seed": 1}
BJ_MS = 8 * 3_600_000


def fake_module() -> ModuleType:
    """The fake ``baostock`` package (importable as ``baostock`` once its directory is on
    ``sys.path``), with a fresh synthetic market."""
    if str(FAKE_DIR) not in sys.path:
        sys.path.insert(0, str(FAKE_DIR))
    import baostock
    from baostock._server import synthetic_market

    baostock.SERVER.reset()
    synthetic_market(baostock.SERVER, CODES)
    return baostock


def day_ms(date: str) -> int:
    return int(np.datetime64(date, "D").astype(np.int64)) * 86_400_000 - BJ_MS


def raw_daily(bs: ModuleType, code: str) -> dict[str, np.ndarray]:
    """The fake's unadjusted daily rows of ``code`` as float columns."""
    rows = bs.SERVER.codes[code].daily
    out = {
        "time": np.array([day_ms(r["date"]) for r in rows], dtype=np.int64),
        "preClose": np.array([float(r["preclose"]) for r in rows]),
        "volume": np.array([int(r["volume"]) // 100 for r in rows], dtype=np.int64),
        "suspendFlag": np.array([0 if r["tradestatus"] == "1" else 1 for r in rows]),
    }
    for name in ("open", "high", "low", "close"):
        out[name] = np.array([float(r[name]) for r in rows])
    return out


def expected_adjusted(bs: ModuleType, code: str, mode: str) -> dict[str, np.ndarray]:
    """Prices adjusted by the textbook definitions, from the fake's events directly.

    Arithmetic modes map a price through every later (front) or earlier (back) event
    ``p -> (p - cash) / (1 + shares)``; an event only the factor table shows (a rights
    issue) counts as the share change of the same ratio. Ratio modes scale by
    ``ref / close_before`` per event.
    """
    raw = raw_daily(bs, code)
    events = bs.SERVER.codes[code].events
    t = raw["time"]
    out = {k: raw[k].copy() for k in ("open", "high", "low", "close")}
    # Front maps through later events oldest first; back undoes earlier ones newest first.
    order = events if mode.startswith("front") else list(reversed(events))
    for e in order:
        et = day_ms(e.date)
        before = t < et
        after = ~before
        if e.listed:
            cash, shares = e.cash, e.bonus + e.gift
        else:
            cash, shares = 0.0, e.close_before / e.ref - 1.0
        ratio = e.ref / e.close_before
        for k in out:
            p = out[k]
            if mode == "front":
                p[before] = (p[before] - cash) / (1.0 + shares)
            elif mode == "front_ratio":
                p[before] = p[before] * ratio
            elif mode == "back":
                p[after] = p[after] * (1.0 + shares) + cash
            elif mode == "back_ratio":
                p[after] = p[after] / ratio
    return out


def baostock_adjusted(bs: ModuleType, code: str, flag: str) -> dict[str, np.ndarray]:
    """The fake's own adjusted daily prices for ``adjustflag`` (1 back, 2 front)."""
    data = bs.SERVER.codes[code]
    out: dict[str, list[float]] = {k: [] for k in ("open", "high", "low", "close")}
    for r in data.daily:
        for k in out:
            out[k].append(float(bs.SERVER._adjusted(data, r, k, flag)))
    return {k: np.array(v) for k, v in out.items()}
