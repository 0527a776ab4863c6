"""The fake's server: the data a test loads, the faults it injects, and a market generator.

``FakeServer.answer(method, rows_fn)`` is what every public function ends in: it applies the
next matching fault, checks the login, and pages the rows. ``synthetic_market`` builds a
small, seeded, internally consistent market: unadjusted daily bars with preclose,
suspensions and ST days, ex-rights events (cash, bonus shares, a rights issue that only the
factor table shows), baostock-style adjustment factors, 5/15/30/60-minute bars, the stock
list and the trading calendar.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from baostock.common import context
from baostock.data.resultset import PER_PAGE, ResultData
from qmtkit.clock import beijing, wall_ms

NO_LOGIN = "10001001"
BLACKLISTED = "10001011"
RECV_FAIL = "10002007"

DAILY = ["date", "code", "open", "high", "low", "close", "preclose", "volume", "amount",
         "adjustflag", "turn", "tradestatus", "pctChg", "isST"]  # fmt: skip
MINUTE = ["date", "time", "code", "open", "high", "low", "close", "volume", "amount",
          "adjustflag"]  # fmt: skip
FACTOR = ["code", "dividOperateDate", "foreAdjustFactor", "backAdjustFactor", "adjustFactor"]
DIVIDEND = ["code", "dividPreNoticeDate", "dividAgmPumDate", "dividPlanAnnounceDate",
            "dividPlanDate", "dividRegistDate", "dividOperateDate", "dividPayDate",
            "dividStockMarketDate", "dividCashPsBeforeTax", "dividCashPsAfterTax",
            "dividStocksPs", "dividCashStock", "dividReserveToStockPs"]  # fmt: skip
BASIC = ["code", "code_name", "ipoDate", "outDate", "type", "status"]
TRADE_DATES = ["calendar_date", "is_trading_day"]


class FakeSocket:
    """Stands in for the package's TCP socket: a hang waits until it is closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.timeout: float | None = None

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def close(self) -> None:
        self.closed.set()


@dataclass
class Fault:
    """One injected failure for the next call of ``method`` (``'*'``: any call).

    kind: ``hang`` (block until the socket is closed, then a receive error), ``error``
    (answer ``code``), ``drop_session`` (the server forgets the login), ``lose_page`` (the
    second page of a paged answer never arrives), ``blacklist`` (login refused).
    """

    kind: str
    method: str = "*"
    code: str = "10002007"


@dataclass
class Event:
    """One ex-rights event: ``cash`` and ``shares`` per share (bonus + transfer), or a rights
    issue only the factor table shows (``listed=False``); ``ref`` the exchange's reference
    price; ``close_before`` the last close before it."""

    date: str
    cash: float
    bonus: float
    gift: float
    ref: float
    close_before: float
    listed: bool = True


@dataclass
class CodeData:
    daily: list[dict[str, str]] = field(default_factory=list)
    minute: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    basic: list[str] = field(default_factory=list)


class FakeServer:
    """Holds the fake market and the faults; counts calls per method."""

    def __init__(self) -> None:
        self.codes: dict[str, CodeData] = {}
        self.trade_dates: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        #: Codes whose every query fails with a receive error (a link that keeps dropping).
        self.unreachable: set[str] = set()
        #: (method, code) of every query, in order (code '' for whole-market queries).
        self.asked: list[tuple[str, str]] = []
        self.calls: dict[str, int] = {}
        self.logins = 0
        self.session_alive = False
        self.last_day = ""

    # ------------------------------------------------------------------ plumbing

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]
        context.default_socket = None
        if hasattr(context, "user_id"):
            del context.user_id

    def inject(self, kind: str, method: str = "*", code: str = RECV_FAIL, times: int = 1) -> None:
        self.faults.extend(Fault(kind, method, code) for _ in range(times))

    def _fault(self, method: str) -> Fault | None:
        for i, f in enumerate(self.faults):
            if f.method in ("*", method):
                return self.faults.pop(i)
        return None

    def login(self, user_id: str, password: str) -> ResultData:
        self.calls["login"] = self.calls.get("login", 0) + 1
        rs = ResultData()
        fault = self._fault("login")
        context.default_socket = FakeSocket()
        if fault is not None and fault.kind == "blacklist":
            rs.error_code, rs.error_msg = BLACKLISTED, "blacklisted user"
            return rs
        if fault is not None and fault.kind == "error":
            rs.error_code, rs.error_msg = fault.code, "login failed"
            return rs
        if fault is not None and fault.kind == "hang":
            self._hang()
            rs.error_code, rs.error_msg = RECV_FAIL, "receive error"
            return rs
        context.user_id = user_id
        self.logins += 1
        self.session_alive = True
        rs.error_code, rs.error_msg = "0", "success"
        return rs

    def logout(self) -> ResultData:
        self.session_alive = False
        rs = ResultData()
        rs.error_code, rs.error_msg = "0", "success"
        return rs

    def _hang(self) -> None:
        sock = context.default_socket
        if sock is None:
            return
        # Blocks like a read on a silent connection; closing the socket releases it. The
        # bound only keeps a broken test from hanging the suite.
        sock.closed.wait(timeout=30)

    def answer(
        self,
        method: str,
        fields: list[str],
        rows_fn: Callable[[], list[list[str]]],
        *,
        paged: bool = True,
        code: str = "",
    ) -> ResultData:
        self.calls[method] = self.calls.get(method, 0) + 1
        self.asked.append((method, code))
        rs = ResultData()
        if not hasattr(context, "user_id"):
            rs.error_code, rs.error_msg = NO_LOGIN, "you don't login."
            return rs
        if code and code in self.unreachable:
            rs.error_code, rs.error_msg = RECV_FAIL, "receive error"
            return rs
        fault = self._fault(method)
        if fault is not None and fault.kind == "hang":
            self._hang()
            rs.error_code, rs.error_msg = RECV_FAIL, "receive error"
            return rs
        if fault is not None and fault.kind == "error":
            rs.error_code, rs.error_msg = fault.code, "server error"
            return rs
        if fault is not None and fault.kind == "drop_session":
            self.session_alive = False
        if not self.session_alive:
            rs.error_code, rs.error_msg = NO_LOGIN, "user not logged in"
            return rs
        rows = rows_fn()
        rs.error_code, rs.error_msg = "0", "success"
        rs.fields = list(fields)
        if not paged:
            rs.data = rows
            rs.per_page_count = "20000"
            return rs
        pages = [rows[i : i + PER_PAGE] for i in range(0, len(rows), PER_PAGE)]
        rs.data = pages[0] if pages else []
        lose = fault is not None and fault.kind == "lose_page"

        def next_page(n: int) -> list[list[str]] | None:
            if lose:
                return None
            return pages[n - 1] if n - 1 < len(pages) else []

        rs._next_page = next_page
        return rs

    # ------------------------------------------------------------------ data access

    def daily_rows(self, code: str, fields: list[str], start: str, end: str, flag: str) -> list:
        data = self.codes.get(code)
        if data is None:
            return []
        out = []
        for bar in data.daily:
            if start <= bar["date"] <= end:
                out.append([self._adjusted(data, bar, f, flag) for f in fields])
        return out

    def minute_rows(
        self, code: str, freq: str, fields: list[str], start: str, end: str, flag: str
    ) -> list:
        data = self.codes.get(code)
        if data is None:
            return []
        out = []
        for bar in data.minute.get(freq, []):
            if start <= bar["date"] <= end:
                out.append([self._adjusted(data, bar, f, flag) for f in fields])
        return out

    def _adjusted(self, data: CodeData, bar: dict[str, str], name: str, flag: str) -> str:
        value = bar.get(name, "") if name != "adjustflag" else flag
        if flag == "3" or name not in ("open", "high", "low", "close", "preclose"):
            return value
        back, fore = self.factors_on(data, bar["date"])
        factor = back if flag == "1" else fore
        return f"{float(value) * factor:.10f}"

    def factors_on(self, data: CodeData, day: str) -> tuple[float, float]:
        """baostock's (back, fore) factors in force on ``day``."""
        back = 1.0
        for e in data.events:
            if e.date <= day:
                back *= e.close_before / e.ref
        total = 1.0
        for e in data.events:
            total *= e.close_before / e.ref
        return back, back / total

    def factor_rows(self, code: str, start: str, end: str) -> list[list[str]]:
        data = self.codes.get(code)
        if data is None:
            return []
        out = []
        back = 1.0
        total = 1.0
        for e in data.events:
            total *= e.close_before / e.ref
        for e in data.events:
            back *= e.close_before / e.ref
            if start <= e.date <= end:
                out.append([code, e.date, f"{back / total:.6f}", f"{back:.6f}", f"{back:.6f}"])
        return out

    def dividend_rows(self, code: str, year: str, year_type: str) -> list[list[str]]:
        data = self.codes.get(code)
        if data is None:
            return []
        out = []
        for e in data.events:
            if not e.listed or e.date[:4] != year:
                continue
            cash = f"{e.cash:.6f}" if e.cash else ""
            out.append([code, "", "", "", "", "", e.date, "", "", cash, cash,
                        f"{e.bonus:.6f}" if e.bonus else "", "",
                        f"{e.gift:.6f}" if e.gift else ""])  # fmt: skip
        return out


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def synthetic_market(
    server: FakeServer,
    codes: list[str],
    first: str = "2023-01-02",
    last: str = "2024-12-31",
    seed: int = 7,
    minute_days: int = 5,
) -> None:
    """Fill ``server`` with a seeded market of ``codes`` (``sh.600000`` form) over weekdays
    from ``first`` to ``last`` (a few fixed holidays left out)."""
    rng = random.Random(seed)
    d0, d1 = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    days = []
    server.trade_dates = []
    d = d0
    # The calendar runs on past the bars, as the real one does to the day it is asked on:
    # through the end of the year after qmtkit's now (the pinned clock when there is one), and
    # never short of 2031, so the suite reads the same calendar on whatever date it runs.
    now_year = beijing(wall_ms()).year
    while d <= max(d1, dt.date(2031, 12, 31), dt.date(now_year + 1, 12, 31)):
        holiday = (d.month == 10 and d.day <= 6) or (d.month, d.day) == (1, 1)
        open_ = d.weekday() < 5 and not holiday
        server.trade_dates.append((d.isoformat(), "1" if open_ else "0"))
        if open_ and d <= d1:
            days.append(d.isoformat())
        d += dt.timedelta(days=1)
    server.last_day = days[-1]
    for n, code in enumerate(codes):
        data = CodeData()
        price = round(rng.uniform(5, 50), 2)
        event_days = {days[len(days) // 3]: "cash", days[len(days) // 2]: "rights",
                      days[2 * len(days) // 3]: "bonus"}  # fmt: skip
        suspended = set(days[40 + n : 44 + n])
        st = set(days[100:160]) if n == 0 else set()
        prev_close = price
        for day in days:
            pre = prev_close
            kind = event_days.get(day)
            if kind is not None:
                ref, ev = _event(rng, day, kind, prev_close)
                data.events.append(ev)
                pre = ref
            if day in suspended:
                o = h = lo = c = pre
                vol, amt, status = 0, 0.0, "0"
            else:
                c = round(max(1.0, pre * (1 + rng.uniform(-0.05, 0.05))), 2)
                o = round(max(1.0, pre * (1 + rng.uniform(-0.02, 0.02))), 2)
                h = round(max(o, c) * (1 + rng.uniform(0, 0.02)), 2)
                lo = round(min(o, c) * (1 - rng.uniform(0, 0.02)), 2)
                vol = rng.randrange(100_000, 5_000_000, 100)
                amt = round(vol * (o + c) / 2, 2)
                status = "1"
            data.daily.append({
                "date": day, "code": code, "open": _fmt(o), "high": _fmt(h), "low": _fmt(lo),
                "close": _fmt(c), "preclose": _fmt(pre), "volume": str(vol),
                "amount": f"{amt:.4f}", "turn": "", "tradestatus": status,
                "pctChg": f"{(c / pre - 1) * 100:.6f}", "isST": "1" if day in st else "0",
            })  # fmt: skip
            prev_close = c
        for freq, minutes in (("5", 5), ("15", 15), ("30", 30), ("60", 60)):
            data.minute[freq] = _minutes(rng, code, days[-minute_days:], minutes)
        name = f"{'*ST' if n == 0 else ''}Fake{n}"
        data.basic = [code, name, days[0], "", "1", "1"]
        server.codes[code] = data


def _event(rng: random.Random, day: str, kind: str, close: float) -> tuple[float, Event]:
    if kind == "cash":
        ref = round(close * 0.97, 2)
        return ref, Event(day, round(close - ref, 2), 0.0, 0.0, ref, close)
    if kind == "bonus":
        bonus, gift = 0.2, 0.3
        ref = round(close * 0.6, 2)
        cash = round(close - ref * (1 + bonus + gift), 3)
        return ref, Event(day, cash, bonus, gift, ref, close)
    ref = round(close * 0.9, 2)
    return ref, Event(day, 0.0, 0.0, 0.0, ref, close, listed=False)


def _minutes(rng: random.Random, code: str, days: list[str], step: int) -> list[dict[str, str]]:
    ends = []
    for start, stop in ((9 * 60 + 30, 11 * 60 + 30), (13 * 60, 15 * 60)):
        m = start + step
        while m <= stop:
            ends.append(m)
            m += step
    out = []
    price = 10.0
    for day in days:
        for m in ends:
            o = price
            c = round(max(1.0, o * (1 + rng.uniform(-0.01, 0.01))), 2)
            vol = rng.randrange(1000, 100_000, 100)
            stamp = f"{day.replace('-', '')}{m // 60:02d}{m % 60:02d}00000"
            out.append({
                "date": day, "time": stamp, "code": code, "open": _fmt(o),
                "high": _fmt(max(o, c) + 0.01), "low": _fmt(min(o, c) - 0.01), "close": _fmt(c),
                "volume": str(vol), "amount": f"{vol * c:.4f}",
            })  # fmt: skip
            price = c
    return out
