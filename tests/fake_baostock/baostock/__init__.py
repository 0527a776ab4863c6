"""A fake ``baostock`` (0.9.4 API) for tests: same functions and parameters, string rows,
module-level session; answers come from ``SERVER`` (see ``_server.py``), never the network."""

from __future__ import annotations

import datetime as _dt

from baostock._server import (
    BASIC,
    DIVIDEND,
    FACTOR,
    MINUTE,
    TRADE_DATES,
    FakeServer,
)
from baostock.common import context as _context
from baostock.data.resultset import ResultData

__version__ = "0.9.4"
SERVER = FakeServer()
_FREQS = ("5", "15", "30", "60")


def _today() -> str:
    return SERVER.last_day or _dt.date(2024, 12, 31).isoformat()


def _bad(code: str, msg: str) -> ResultData:
    rs = ResultData()
    rs.error_code, rs.error_msg = code, msg
    return rs


def login(user_id="anonymous", password="123456"):
    """Open the session (a new socket each time, as the real client does)."""
    return SERVER.login(user_id, password)


def logout(user_id="anonymous"):
    """End the session."""
    return SERVER.logout()


def query_history_k_data_plus(
    code, fields, start_date=None, end_date=None, frequency="d", adjustflag="3"
):
    """Bars of one code: ``frequency`` d/w/m or 5/15/30/60; ``adjustflag`` 3 none, 2 front,
    1 back."""
    if not code or len(code) != 9:
        return _bad("10004006", "bad code")
    start = start_date or "2015-01-01"
    end = end_date or _today()
    if end < start:
        return _bad("10004009", "start after end")
    names = [f.strip() for f in fields.split(",")]
    if frequency == "d":
        return SERVER.answer(
            "query_history_k_data_plus",
            names,
            lambda: SERVER.daily_rows(code, names, start, end, adjustflag),
            code=code,
        )
    if frequency in _FREQS:
        bad = [n for n in names if n not in MINUTE]
        if bad:
            return _bad("10004012", f"bad fields {bad}")
        return SERVER.answer(
            "query_history_k_data_plus",
            names,
            lambda: SERVER.minute_rows(code, frequency, names, start, end, adjustflag),
            code=code,
        )
    return _bad("10004006", f"frequency {frequency} not served by the fake")


def query_daily_history_k_AStock(date=""):
    """Every stock's daily bar of one day (one answer, not paged)."""
    day = date or _today()
    names = ["date", "code", "open", "high", "low", "close", "preclose", "volume", "amount",
             "adjustflag", "turn", "tradestatus", "pctChg", "isST"]  # fmt: skip

    def rows():
        out = []
        for code in sorted(SERVER.codes):
            out.extend(SERVER.daily_rows(code, names, day, day, "3"))
        return out

    return SERVER.answer("query_daily_history_k_AStock", names, rows, paged=False)


def query_adjust_factor(code, start_date=None, end_date=None):
    """baostock's adjustment factors of one code, one row per ex-date."""
    start, end = start_date or "2015-01-01", end_date or _today()
    return SERVER.answer(
        "query_adjust_factor", FACTOR, lambda: SERVER.factor_rows(code, start, end), code=code
    )


def query_daily_adjust_factor(date=None):
    """The factor rows of every code whose ex-date is ``date``."""
    day = date or _today()

    def rows():
        out = []
        for code in sorted(SERVER.codes):
            out.extend(SERVER.factor_rows(code, day, day))
        return out

    return SERVER.answer("query_daily_adjust_factor", FACTOR, rows, paged=False)


def query_dividend_data(code, year=None, yearType="report"):
    """Dividend details of one code for one year (``yearType`` report or operate)."""
    y = year or _today()[:4]
    return SERVER.answer(
        "query_dividend_data", DIVIDEND, lambda: SERVER.dividend_rows(code, y, yearType)
    )


def query_trade_dates(start_date=None, end_date=None):
    """Calendar days with ``is_trading_day`` '1' or '0'."""
    start, end = start_date or "2015-01-01", end_date or _today()
    return SERVER.answer(
        "query_trade_dates",
        TRADE_DATES,
        lambda: [[d, f] for d, f in SERVER.trade_dates if start <= d <= end],
    )


def query_all_stock(day=None):
    """Codes trading on ``day`` with their names."""
    d = day or _today()
    return SERVER.answer(
        "query_all_stock",
        ["code", "tradeStatus", "code_name"],
        lambda: [[c, "1", v.basic[1]] for c, v in sorted(SERVER.codes.items()) if v.basic[2] <= d],
    )


def query_stock_basic(code="", code_name=""):
    """Name, listing and delisting dates, type and status: of one code or of all."""
    return SERVER.answer(
        "query_stock_basic",
        BASIC,
        lambda: [v.basic for c, v in sorted(SERVER.codes.items()) if not code or c == code],
    )


__all__ = [
    "SERVER",
    "login",
    "logout",
    "query_adjust_factor",
    "query_all_stock",
    "query_daily_adjust_factor",
    "query_daily_history_k_AStock",
    "query_dividend_data",
    "query_history_k_data_plus",
    "query_stock_basic",
    "query_trade_dates",
]
_ = _context
