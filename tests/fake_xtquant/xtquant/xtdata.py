"""Fake ``xtquant.xtdata``: history, reference data and quote pushes from module state.

Tests fill ``BARS``, ``TICKS``, ``INSTRUMENTS``, ``SECTORS``, ``FULL_TICK``, ``DIVIDENDS``,
``TRADING_DAYS`` and ``HOLIDAYS`` and
call ``push_quote`` to make the quote thread deliver a push to matching subscriptions.
Calls are recorded in ``CALLS``.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pandas as pd

_BEIJING = timezone(timedelta(hours=8))

BARS = {}  # (code, period) -> list of bar dicts (with 'time' in ms)
TICKS = {}  # code -> list of tick dicts
INSTRUMENTS = {}  # code -> instrument detail dict
SECTORS = {}  # sector name -> list of codes
FULL_TICK = {}  # code -> tick dict
DIVIDENDS = {}  # code -> list of dicts with 'time' (ms) and the dividend fields
TRADING_DAYS = []  # 'YYYYMMDD' strings of SH's trading days (get_trading_calendar)
HOLIDAYS = []  # 'YYYYMMDD' strings (get_holidays); empty: raises, as xtquant without the download
CALLS = []  # (function name, args)
SUBSCRIPTIONS = {}  # seq -> (kind, target, period, callback)
CALLBACK_THREADS = set()

_seqs = itertools.count(1)
_pusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fake-xtdata")


def _to_ms(text, end=False):
    if not text:
        return None
    fmt = "%Y%m%d%H%M%S" if len(text) == 14 else "%Y%m%d"
    ms = int(datetime.strptime(text, fmt).replace(tzinfo=_BEIJING).timestamp() * 1000)
    if end and len(text) == 8:
        ms += 86_400_000 - 1
    return ms


def _label(ms, period):
    fmt = "%Y%m%d" if period == "1d" else "%Y%m%d%H%M%S"
    return datetime.fromtimestamp(ms / 1000, _BEIJING).strftime(fmt)


def download_history_data(stock_code, period, start_time="", end_time="", incrementally=None):
    CALLS.append(("download_history_data", (stock_code, period, start_time, end_time)))


# xtquant's own (mutable) defaults, kept for the contract.
def get_market_data_ex(
    field_list=[],  # noqa: B006
    stock_list=[],  # noqa: B006
    period="1d",
    start_time="",
    end_time="",
    count=-1,
    dividend_type="none",
    fill_data=True,
):
    CALLS.append(
        ("get_market_data_ex", (list(stock_list), period, start_time, end_time, dividend_type))
    )
    lo, hi = _to_ms(start_time), _to_ms(end_time, end=True)
    out = {}
    for code in stock_list:
        rows = TICKS.get(code, []) if period == "tick" else BARS.get((code, period), [])
        rows = [
            r for r in rows if (lo is None or r["time"] >= lo) and (hi is None or r["time"] <= hi)
        ]
        frame = pd.DataFrame(rows)
        if rows:
            frame.index = [_label(r["time"], period) for r in rows]
        out[code] = frame
    return out


def get_full_tick(code_list):
    CALLS.append(("get_full_tick", (list(code_list),)))
    return {c: dict(FULL_TICK[c]) for c in code_list if c in FULL_TICK}


def get_instrument_detail(stock_code, iscomplete=False):
    detail = INSTRUMENTS.get(stock_code)
    return dict(detail) if detail is not None else None


def get_sector_list():
    return list(SECTORS)


def get_stock_list_in_sector(sector_name, real_timetag=-1):
    return list(SECTORS.get(sector_name, []))


def get_divid_factors(stock_code, start_time="", end_time=""):
    rows = DIVIDENDS.get(stock_code, [])
    frame = pd.DataFrame(rows)
    if rows:
        frame.index = [_label(r["time"], "1d") for r in rows]
    return frame


def subscribe_quote(stock_code, period="1d", start_time="", end_time="", count=0, callback=None):
    CALLS.append(("subscribe_quote", (stock_code, period)))
    if stock_code not in INSTRUMENTS:
        return -1
    seq = next(_seqs)
    SUBSCRIPTIONS[seq] = ("single", stock_code, period, callback)
    return seq


def subscribe_whole_quote(code_list, callback=None):
    CALLS.append(("subscribe_whole_quote", (list(code_list),)))
    seq = next(_seqs)
    SUBSCRIPTIONS[seq] = ("whole", list(code_list), "tick", callback)
    return seq


def unsubscribe_quote(seq):
    CALLS.append(("unsubscribe_quote", (seq,)))
    SUBSCRIPTIONS.pop(seq, None)


def push_quote(code, period, record):
    """Deliver one record to every matching subscription, on the quote thread; returns a future."""

    def run():
        CALLBACK_THREADS.add(threading.get_ident())
        for kind, target, sub_period, callback in list(SUBSCRIPTIONS.values()):
            if callback is None or sub_period != period:
                continue
            if kind == "single" and target == code:
                callback({code: [dict(record)]})
            elif kind == "whole" and (code in target or code.split(".")[1] in target):
                callback({code: dict(record)})

    return _pusher.submit(run)


def get_holidays():
    CALLS.append(("get_holidays", ()))
    return list(HOLIDAYS)


def get_trading_calendar(market, start_time="", end_time=""):
    CALLS.append(("get_trading_calendar", (market, start_time, end_time)))
    if market not in ("SH", "SZ"):
        raise Exception("only SH and SZ have a trading calendar")
    if not HOLIDAYS:
        raise Exception("holiday data is empty")
    return [
        d
        for d in TRADING_DAYS
        if (not start_time or d >= start_time) and (not end_time or d <= end_time)
    ]
