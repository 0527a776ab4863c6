"""Security codes, boards and periods: parsed and validated here and nowhere else."""

from __future__ import annotations

import functools
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Final

import msgspec

from qmtkit.checks import is_real
from qmtkit.errors import InvalidArgument, InvalidCode, InvalidPeriod

EXCHANGES: Final = ("SH", "SZ", "BJ")
_CODE_RE = re.compile(r"^(\d{6})\.(SH|SZ|BJ)$")


class Board(str, Enum):
    """The listing board of a security; it decides the daily price limit."""

    MAIN = "main"
    CHINEXT = "chinext"  # 创业板, SZ 300/301
    STAR = "star"  # 科创板, SH 688/689
    BJ = "bj"  # 北交所
    INDEX = "index"
    ETF = "etf"


#: Boards by value (and by member: a ``Board`` is a ``str`` and hashes as its value).
_BOARDS: dict[str, Board] = {b.value: b for b in Board}


class SecurityCode(msgspec.Struct, frozen=True, order=True):
    """A parsed security code such as ``600000.SH``: six digits and an exchange."""

    symbol: str
    exchange: str

    def __str__(self) -> str:
        return f"{self.symbol}.{self.exchange}"

    @property
    def board(self) -> Board:
        """The board the code belongs to, from its exchange and number range."""
        return board_of(self.symbol, self.exchange)


def parse_code(code: object) -> SecurityCode:
    """Parse ``code`` (``'600000.SH'``; lower-case exchange accepted) or raise InvalidCode."""
    if not isinstance(code, str):
        raise InvalidCode(
            f"security code must be a string like '600000.SH', got {type(code).__name__} {code!r}"
        )
    m = _CODE_RE.match(code.strip().upper())
    if m is None:
        raise InvalidCode(
            f"bad security code {code!r}: expected six digits, a dot and SH, SZ or BJ "
            "(e.g. '600000.SH', '000001.SZ', '430047.BJ')"
        )
    symbol, exchange = m.group(1), m.group(2)
    board_of(symbol, exchange)  # rejects numbers no board uses
    return SecurityCode(symbol, exchange)


#: Codes already parsed, by the text given (valid ones only; emptied when full, so a stream of
#: distinct hostile texts costs bounded memory).
_SEEN: dict[str, tuple[str, SecurityCode, Board]] = {}
_SEEN_MAX: Final = 1 << 16


def parsed_code(code: object) -> tuple[str, SecurityCode, Board]:
    """``(canonical text, parsed code, board)`` of ``code``, remembered; raises like parse_code."""
    if isinstance(code, str):
        hit = _SEEN.get(code)
        if hit is not None:
            return hit
    sc = parse_code(code)
    entry = (str(sc), sc, sc.board)
    if isinstance(code, str):
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        _SEEN[code] = entry
    return entry


def normalize_code(code: object) -> str:
    """Return ``code`` in canonical ``'600000.SH'`` form, or raise InvalidCode."""
    hit = _SEEN.get(code) if isinstance(code, str) else None
    return hit[0] if hit is not None else parsed_code(code)[0]


def normalize_codes(codes: object, name: str = "codes") -> list[str]:
    """Normalise one code or a list of codes; duplicates are removed, order is kept.

    ``name`` is the caller's name for the argument, for the error.
    """
    if isinstance(codes, str):
        codes = [codes]
    if not isinstance(codes, (list, tuple, set, frozenset)):
        raise InvalidCode(
            f"{name} must be a code or a list of codes like ['600000.SH'], got {codes!r}"
        )
    out: dict[str, None] = {}
    for c in codes:
        out[normalize_code(c)] = None
    return list(out)


def board_of(symbol: str, exchange: str) -> Board:
    """Classify a six-digit symbol on an exchange into its board."""
    p3, p2 = symbol[:3], symbol[:2]
    if exchange == "SH":
        if p3 in ("600", "601", "603", "605"):
            return Board.MAIN
        if p3 in ("688", "689"):
            return Board.STAR
        if p3 == "000" or p2 == "99":
            return Board.INDEX
        if p2 in ("51", "52", "56", "58"):
            return Board.ETF
    elif exchange == "SZ":
        if p3 in ("000", "001", "002", "003"):
            return Board.MAIN
        if p3 in ("300", "301"):
            return Board.CHINEXT
        if p3 == "399":
            return Board.INDEX
        if p2 in ("15", "16"):
            return Board.ETF
    elif exchange == "BJ":
        if p3 == "899":
            return Board.INDEX
        if p2 in ("43", "82", "83", "87", "88", "92"):
            return Board.BJ
    raise InvalidCode(
        f"bad security code {symbol}.{exchange}: {symbol} is not a stock, index or ETF number "
        f"on {exchange} (SH stocks 600/601/603/605/688, SZ 000-003/300/301, BJ 43/83/87/92...)"
    )


# The members as plain names: reading ``Board.X`` goes through the enum's descriptor (~60 ns),
# several times on every order's limits.
_INDEX, _BJ, _CHINEXT, _STAR = Board.INDEX, Board.BJ, Board.CHINEXT, Board.STAR


def limit_ratio(board: Board, is_st: bool) -> float | None:
    """The daily price-limit ratio for a board; None where there is no limit (indices)."""
    if board is _INDEX:
        return None
    if board is _BJ:
        return 0.30
    if board is _CHINEXT or board is _STAR:
        return 0.20
    if is_st:
        return 0.05
    return 0.10


#: ``limit_prices``' answers for codes that are not ST, by board (its text or member) and
#: pre-close: a strategy asks for every order it prices, and the checks, the ratio and
#: ``band_prices``' memo cost several times a dict lookup. Only answers given are kept (a bad
#: argument never is); each board's memo is emptied when full.
_LIMITS: dict[str, dict[float, tuple[float, float]]] = {}
_LIMITS_MAX: Final = 1 << 16


def limit_prices(pre_close: float, board: Board | str, is_st: bool = False) -> tuple[float, float]:
    """The (down, up) daily limit prices: pre_close x (1 -/+ ratio), rounded half-up to 0.01.

    Ratios come from ``limit_ratio``. A board without a limit (indices) raises InvalidArgument.
    """
    memo = (
        _LIMITS.get(board)
        if is_st is False and type(pre_close) is float and isinstance(board, str)
        else None
    )
    if memo is not None:
        hit = memo.get(pre_close)
        if hit is not None:
            return hit
    if type(pre_close) is not float or not 0.0 < pre_close < math.inf:  # else: full checks
        if not is_real(pre_close):
            raise InvalidArgument(f"pre_close must be a price, got {pre_close!r}")
        if not math.isfinite(pre_close) or pre_close <= 0:
            raise InvalidArgument(f"pre_close must be a finite price > 0, got {pre_close!r}")
    b = _BOARDS.get(board) if isinstance(board, str) else None  # an enum call per use is slow
    if b is None:
        try:
            b = Board(board)
        except ValueError:
            raise InvalidArgument(
                f"unknown board {board!r}: expected one of {', '.join(x.value for x in Board)}"
            ) from None
    ratio = limit_ratio(b, bool(is_st))
    if ratio is None:
        raise InvalidArgument(f"board {b.value!r} has no daily price limit")
    prices = band_prices(pre_close, ratio, ratio)
    if is_st is False and type(pre_close) is float and isinstance(board, str):
        if memo is None:
            memo = _LIMITS.setdefault(board, {})
        elif len(memo) >= _LIMITS_MAX:
            memo.clear()
        memo[pre_close] = prices
    return prices


#: Prices below this (in yuan) have a whole number of cents far inside a float's exact range.
_WHOLE_CENTS_BELOW: Final = float(2**40) / 100


@functools.lru_cache(maxsize=1 << 16)
def band_prices(base_price: float, up_ratio: float, down_ratio: float) -> tuple[float, float]:
    """(down, up) = base x (1 - down_ratio), base x (1 + up_ratio), rounded half-up to 0.01.

    The caller checks its arguments (``limit_prices`` does); the down price is at least 0.01.
    Memoised: a backtest asks for the limits of every code on every day it orders, and
    closes on the cent grid repeat (the decimal arithmetic below is the slow part).
    """
    if 0.0 < base_price < _WHOLE_CENTS_BELOW:
        # A price on the cent grid and whole-percent ratios (every board's): the decimal
        # arithmetic below in whole cents, exactly (``ordinary_limits`` does the same in numpy).
        cents = round(base_price * 100)
        up_pct, down_pct = round(up_ratio * 100), round(down_ratio * 100)
        if (
            cents / 100 == base_price
            and up_pct / 100 == up_ratio
            and down_pct / 100 == down_ratio
            and up_pct >= 0
            and 0 <= down_pct < 100
        ):
            up_cents = (cents * (100 + up_pct) + 50) // 100
            down_cents = max((cents * (100 - down_pct) + 50) // 100, 1)
            return down_cents / 100, up_cents / 100
    # Decimal of the shortest repr computes on the price as written (1.005), not its binary
    # neighbour, and rounds half-up to the cent as the exchanges publish limits.
    base, cent = Decimal(repr(float(base_price))), Decimal("0.01")
    up = (base * (1 + Decimal(repr(up_ratio)))).quantize(cent, rounding=ROUND_HALF_UP)
    down = (base * (1 - Decimal(repr(down_ratio)))).quantize(cent, rounding=ROUND_HALF_UP)
    return float(max(cent, down)), float(up)


class Period(msgspec.Struct, frozen=True):
    """A K-line period: its xtquant name and its length in seconds (0 for ticks).

    Weeks and months have a nominal length; their bars follow the calendar, not the length.
    """

    name: str
    seconds: int

    def __str__(self) -> str:
        return self.name

    @property
    def is_intraday(self) -> bool:
        """True for tick and minute periods."""
        return self.seconds < 86400

    @property
    def base(self) -> str:
        """The stored period this one is derived from (``1m`` for minutes, ``1d`` for days)."""
        if self.name in ("tick", "1m", "1d"):
            return self.name
        return "1m" if self.seconds < 86400 else "1d"


PERIODS: Final[dict[str, Period]] = {
    p.name: p
    for p in (
        Period("tick", 0),
        Period("1m", 60),
        Period("5m", 300),
        Period("15m", 900),
        Period("30m", 1800),
        Period("1h", 3600),
        Period("1d", 86400),
        Period("1w", 7 * 86400),
        Period("1mon", 30 * 86400),
    )
}


def parse_period(period: object) -> Period:
    """Parse a period name (``'1d'``, ``'5m'``, ...) or raise InvalidPeriod naming it."""
    if isinstance(period, str) and period in PERIODS:
        return PERIODS[period]
    raise InvalidPeriod(f"bad period {period!r}: expected one of {', '.join(PERIODS)}")
