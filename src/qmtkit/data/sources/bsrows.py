"""baostock's string rows turned into qmtkit's columns and records (pure, no network).

baostock answers every query with a list of field names and rows of strings (``''`` for a
missing value). Dates are ``'YYYY-MM-DD'``; minute bars carry ``time`` as
``'YYYYMMDDhhmmssSSS'``, the end of the bar, which is how the cache labels minute bars too.
Codes are ``'sh.600000'``. Volumes are in shares; the cache stores lots of 100 shares, as
MiniQMT does for stocks, so they are divided by 100 (odd lots round to the nearest lot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import normalize_code
from qmtkit.errors import BackendError, InvalidCode
from qmtkit.messages import Dividend
from qmtkit.models import InstrumentDetail

DAY_MS: Final = 86_400_000
#: The daily fields asked for (``isST`` is kept beside the bars, not in them).
DAILY_FIELDS: Final = "date,code,open,high,low,close,preclose,volume,amount,tradestatus,isST"
#: The minute fields baostock serves (minute bars have no preclose, status or ST flag).
MINUTE_FIELDS: Final = "date,time,code,open,high,low,close,volume,amount"
#: qmtkit period → baostock ``frequency``.
FREQUENCY: Final = {"1d": "d", "5m": "5", "15m": "15", "30m": "30", "1h": "60"}
_EXCHANGES: Final = {"sh": "SH", "sz": "SZ", "bj": "BJ"}
#: baostock ``type`` → the board-ish kind qmtkit reports.
_TYPES: Final = {"1": "stock", "2": "index", "3": "other", "4": "convertible", "5": "etf"}


def to_bs_code(code: str) -> str:
    """``'600000.SH'`` → ``'sh.600000'``."""
    norm = normalize_code(code)
    return f"{norm[7:].lower()}.{norm[:6]}"


def from_bs_code(code: str) -> str:
    """``'sh.600000'`` → ``'600000.SH'``."""
    exch, _, sym = code.partition(".")
    if exch.lower() not in _EXCHANGES or len(sym) != 6 or not sym.isdigit():
        raise InvalidCode(f"baostock sent code {code!r}: expected 'sh.600000' or 'sz.000001'")
    return f"{sym}.{_EXCHANGES[exch.lower()]}"


def ms_to_date(ms: int) -> str:
    """Unix ms → the Beijing day ``'YYYY-MM-DD'`` it falls on."""
    return str(np.datetime64((ms + BEIJING_OFFSET_MS) // DAY_MS, "D"))


def date_ms(dates: Sequence[str]) -> npt.NDArray[np.int64]:
    """``'YYYY-MM-DD'`` strings → Unix ms at 00:00 Beijing."""
    days = np.array(dates, dtype="datetime64[D]").astype(np.int64)
    out: npt.NDArray[np.int64] = days * DAY_MS - BEIJING_OFFSET_MS
    return out


def minute_ms(times: Sequence[str]) -> npt.NDArray[np.int64]:
    """``'YYYYMMDDhhmmssSSS'`` strings (Beijing) → Unix ms."""
    iso = [f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}" for t in times]
    ms = np.array(iso, dtype="datetime64[ms]").astype(np.int64)
    out: npt.NDArray[np.int64] = ms - BEIJING_OFFSET_MS
    return out


def _floats(values: Sequence[str]) -> npt.NDArray[np.float64]:
    return np.array([float(v) if v else 0.0 for v in values], dtype=np.float64)


def _column(fields: Sequence[str], rows: Sequence[Sequence[str]], name: str) -> list[str]:
    try:
        i = list(fields).index(name)
    except ValueError:
        raise BackendError(
            f"baostock's answer lacks field {name!r} (it sent {', '.join(fields)})"
        ) from None
    return [r[i] for r in rows]


def _column_or(
    fields: Sequence[str], rows: Sequence[Sequence[str]], name: str, default: str
) -> list[str]:
    """A column the answer may lack (the whole-market query's fields are the server's)."""
    if name not in fields:
        return [default] * len(rows)
    return _column(fields, rows, name)


def _checked(fields: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    for r in rows:
        if len(r) != len(fields):
            raise BackendError(
                f"baostock sent a row of {len(r)} values for {len(fields)} fields: {r!r}"
            )


def daily_columns(
    fields: Sequence[str], rows: Sequence[Sequence[str]]
) -> dict[str, npt.NDArray[Any]]:
    """Daily rows → the cache's bar columns plus ``isST`` (int8), time ascending."""
    _checked(fields, rows)

    def col(name: str) -> list[str]:
        return _column(fields, rows, name)

    def opt(name: str, default: str) -> list[str]:
        return _column_or(fields, rows, name, default)

    out: dict[str, npt.NDArray[Any]] = {
        "time": date_ms(col("date")),
        "open": _floats(col("open")),
        "high": _floats(col("high")),
        "low": _floats(col("low")),
        "close": _floats(col("close")),
        "volume": np.rint(_floats(col("volume")) / 100.0).astype(np.int64),
        "amount": _floats(opt("amount", "")),
        "preClose": _floats(opt("preclose", "")),
        # tradestatus 1 is a trading day, 0 a suspension; the cache's flag is the opposite.
        "suspendFlag": np.array([0 if s == "1" else 1 for s in opt("tradestatus", "1")], np.int8),
        "isST": np.array([1 if s == "1" else 0 for s in opt("isST", "0")], np.int8),
    }
    return _sorted(out)


def minute_columns(
    fields: Sequence[str], rows: Sequence[Sequence[str]]
) -> dict[str, npt.NDArray[Any]]:
    """Minute rows → the cache's bar columns (no preClose or suspension: zeros)."""
    _checked(fields, rows)

    def col(name: str) -> list[str]:
        return _column(fields, rows, name)

    n = len(rows)
    out: dict[str, npt.NDArray[Any]] = {
        "time": minute_ms(col("time")),
        "open": _floats(col("open")),
        "high": _floats(col("high")),
        "low": _floats(col("low")),
        "close": _floats(col("close")),
        "volume": np.rint(_floats(col("volume")) / 100.0).astype(np.int64),
        "amount": _floats(col("amount")),
        "preClose": np.zeros(n, np.float64),
        "suspendFlag": np.zeros(n, np.int8),
    }
    return _sorted(out)


def _sorted(cols: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    t = cols["time"]
    if len(t) > 1 and not bool(np.all(t[1:] > t[:-1])):
        order = np.argsort(t, kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
    return cols


def dividends(
    factor_fields: Sequence[str],
    factor_rows: Sequence[Sequence[str]],
    div_fields: Sequence[str],
    div_rows: Sequence[Sequence[str]],
) -> list[Dividend]:
    """Ex-rights records from baostock's adjustment factors and dividend table, oldest first.

    Every ex-date in the factor table is an event whose ``dr`` (close before the ex-date over
    the exchange's reference price) is the ratio of consecutive ``backAdjustFactor`` values.
    The dividend table, when it has the ex-date, gives the cash (before tax), bonus and
    capitalisation shares per share; an event it lacks (a rights issue, for one) becomes
    the share change with the same ratio (``stockGift = dr - 1``), so the ratio modes stay
    exact and the arithmetic ones as close as the source allows.
    """
    _checked(factor_fields, factor_rows)
    _checked(div_fields, div_rows)
    details: dict[str, tuple[float, float, float]] = {}
    if div_rows:
        dates = _column(div_fields, div_rows, "dividOperateDate")
        cash = _column(div_fields, div_rows, "dividCashPsBeforeTax")
        bonus = _column(div_fields, div_rows, "dividStocksPs")
        gift = _column(div_fields, div_rows, "dividReserveToStockPs")
        for d, c, b, g in zip(dates, cash, bonus, gift, strict=True):
            if d:
                details[d] = (_num(c), _num(b), _num(g))
    ratios: dict[str, float] = {}
    if factor_rows:
        f_dates = _column(factor_fields, factor_rows, "dividOperateDate")
        back = [_num(v) for v in _column(factor_fields, factor_rows, "backAdjustFactor")]
        prev = 1.0
        for day, factor in sorted(zip(f_dates, back, strict=True)):
            if factor > 0 and prev > 0:
                ratios[day] = factor / prev
            prev = factor if factor > 0 else prev
    out: list[Dividend] = []
    for d in sorted(set(details) | set(ratios)):
        dr = ratios.get(d, 1.0)
        cash_ps, bonus_ps, gift_ps = details.get(d, (0.0, 0.0, 0.0))
        if d not in details:
            if abs(dr - 1.0) < 1e-12:
                continue  # the factor table's first row: no event
            gift_ps = dr - 1.0
        out.append(
            Dividend(
                time=int(date_ms([d])[0]),
                interest=cash_ps,
                stockBonus=bonus_ps,
                stockGift=gift_ps,
                dr=dr,
            )
        )
    return out


def _num(value: str) -> float:
    """A decimal string, ``''`` as 0; baostock fills some cells with other text."""
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def instrument(fields: Sequence[str], row: Sequence[str]) -> InstrumentDetail:
    """One ``query_stock_basic`` row → ``InstrumentDetail`` (listing/delisting dates, name)."""
    get = dict(zip(fields, row, strict=False))
    code = from_bs_code(get.get("code", ""))
    name = get.get("code_name", "")
    kind = _TYPES.get(get.get("type", ""), "other")
    return InstrumentDetail(
        ExchangeID=code[7:],
        InstrumentID=code[:6],
        InstrumentName=name,
        OpenDate=get.get("ipoDate", "").replace("-", ""),
        ExpireDate=get.get("outDate", "").replace("-", "") or "99999999",
        InstrumentStatus=0 if get.get("status") == "1" else 1,
        IsTrading=get.get("status") == "1",
        board=_board(code, kind),
        is_st="ST" in name.upper(),
    )


def _board(code: str, kind: str) -> str:
    if kind == "index":
        return "index"
    if kind == "etf":
        return "etf"
    sym = code[:6]
    if code.endswith(".BJ"):
        return "bj"
    if sym.startswith(("300", "301")):
        return "chinext"
    if sym.startswith("688"):
        return "star"
    return "main"


def trading_days(fields: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """``query_trade_dates`` rows → the open days as ``YYYYMMDD`` ints, ascending."""
    _checked(fields, rows)
    dates = _column(fields, rows, "calendar_date")
    flags = _column(fields, rows, "is_trading_day")
    return sorted(int(d.replace("-", "")) for d, f in zip(dates, flags, strict=True) if f == "1")
