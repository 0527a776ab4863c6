"""The simulator's listing: a deterministic, seeded universe of A-share codes.

A few hundred codes across every board (SH/SZ main, ChiNext, STAR, BJ), about 5% ST names on
the main boards, a handful of well-known indices and ETFs, and some real famous codes with
plausible names and price levels. Everything else is synthetic but stable for a given seed.

Any valid code outside the universe still gets a :class:`Listing` from :func:`listing_of`, so
the synthetic history can produce it alone (for benchmarks with thousands of codes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Final

import msgspec
import numpy as np

from qmtkit.backends.daylimits import day_limits
from qmtkit.checks import is_int
from qmtkit.codes import Board, limit_ratio, normalize_code, parse_code
from qmtkit.codes import limit_prices as codes_limit_prices
from qmtkit.errors import InvalidArgument, InvalidCode
from qmtkit.models import InstrumentDetail

DEFAULT_SEED: Final = 20240101
#: The first day of synthetic history; older listings start here.
HISTORY_START: Final = 20150105


class Listing(msgspec.Struct, frozen=True):
    """What the simulator knows about one code before any price is drawn.

    ``list_date`` is ``YYYYMMDD``; ``base_price`` the level (CNY) the price path starts from and
    reverts to; ``volatility`` the daily standard deviation of log returns; ``turnover`` the
    typical daily traded fraction of the float; ``kind`` is ``stock``, ``index`` or ``etf``.
    """

    code: str
    name: str
    board: Board
    is_st: bool
    list_date: int
    base_price: float
    float_shares: float
    total_shares: float
    volatility: float
    turnover: float
    kind: str = "stock"

    @property
    def limit_ratio(self) -> float | None:
        """The daily limit ratio of the code's board (None for indices)."""
        return limit_ratio(self.board, self.is_st)


def limit_prices(pre_close: float, board: Board, is_st: bool) -> tuple[float, float]:
    """(down, up) limit prices as ``codes.limit_prices`` gives them; (0, 0) for indices."""
    if limit_ratio(board, is_st) is None:
        if not isinstance(pre_close, (int, float)) or pre_close <= 0:
            raise InvalidArgument(f"pre_close must be a positive price, got {pre_close!r}")
        return 0.0, 0.0
    return codes_limit_prices(pre_close, board, is_st)


# --------------------------------------------------------------------------- fixed entries

# code, name, list date, price, total shares, float shares, daily volatility
_FAMOUS: Final[tuple[tuple[str, str, int, float, float, float, float], ...]] = (
    ("600000.SH", "浦发银行", 19991110, 10.5, 29.35e9, 29.35e9, 0.014),
    ("600036.SH", "招商银行", 20020409, 35.0, 25.22e9, 20.63e9, 0.016),
    ("600519.SH", "贵州茅台", 20010827, 1550.0, 1.256e9, 1.256e9, 0.016),
    ("600900.SH", "长江电力", 20031118, 28.0, 24.47e9, 24.47e9, 0.011),
    ("601318.SH", "中国平安", 20070301, 48.0, 18.21e9, 10.76e9, 0.017),
    ("601398.SH", "工商银行", 20061027, 6.2, 356.4e9, 269.6e9, 0.010),
    ("601012.SH", "隆基绿能", 20120411, 18.0, 7.58e9, 7.58e9, 0.028),
    ("600030.SH", "中信证券", 20030106, 24.0, 14.82e9, 12.2e9, 0.020),
    ("600276.SH", "恒瑞医药", 20001018, 45.0, 6.38e9, 6.38e9, 0.020),
    ("603259.SH", "药明康德", 20180508, 55.0, 2.89e9, 2.48e9, 0.026),
    ("605499.SH", "东鹏饮料", 20210527, 220.0, 0.52e9, 0.52e9, 0.022),
    ("000001.SZ", "平安银行", 19910403, 11.0, 19.41e9, 19.41e9, 0.015),
    ("000002.SZ", "万科A", 19910129, 8.0, 11.93e9, 9.72e9, 0.025),
    ("000333.SZ", "美的集团", 20130918, 70.0, 7.0e9, 6.8e9, 0.018),
    ("000651.SZ", "格力电器", 19961118, 40.0, 5.63e9, 5.58e9, 0.017),
    ("000858.SZ", "五粮液", 19980427, 140.0, 3.88e9, 3.88e9, 0.019),
    ("001979.SZ", "招商蛇口", 20151230, 10.0, 9.06e9, 9.06e9, 0.022),
    ("002415.SZ", "海康威视", 20100528, 30.0, 9.23e9, 9.1e9, 0.020),
    ("002594.SZ", "比亚迪", 20110630, 280.0, 2.91e9, 1.16e9, 0.025),
    ("300750.SZ", "宁德时代", 20180611, 220.0, 4.4e9, 3.9e9, 0.025),
    ("300059.SZ", "东方财富", 20100319, 20.0, 15.79e9, 13.4e9, 0.028),
    ("300760.SZ", "迈瑞医疗", 20181016, 260.0, 1.21e9, 1.21e9, 0.019),
    ("301269.SZ", "华大九天", 20220729, 100.0, 0.54e9, 0.3e9, 0.035),
    ("688981.SH", "中芯国际", 20200716, 85.0, 7.95e9, 1.98e9, 0.030),
    ("688111.SH", "金山办公", 20191118, 280.0, 0.46e9, 0.46e9, 0.030),
    ("688041.SH", "海光信息", 20220812, 140.0, 2.32e9, 1.2e9, 0.035),
    ("688012.SH", "中微公司", 20190722, 170.0, 0.62e9, 0.62e9, 0.030),
    ("430047.BJ", "诺思兰德", 20211115, 12.0, 0.27e9, 0.18e9, 0.040),
    ("830799.BJ", "艾融软件", 20211115, 30.0, 0.21e9, 0.14e9, 0.040),
    ("835185.BJ", "贝特瑞", 20211115, 25.0, 1.12e9, 0.9e9, 0.035),
)

# code, name, base date, level, daily volatility
_INDICES: Final[tuple[tuple[str, str, int, float, float], ...]] = (
    ("000001.SH", "上证指数", 19901219, 3200.0, 0.011),
    ("000016.SH", "上证50", 20040102, 2600.0, 0.012),
    ("000300.SH", "沪深300", 20050408, 3800.0, 0.012),
    ("000905.SH", "中证500", 20070115, 5600.0, 0.014),
    ("000852.SH", "中证1000", 20141017, 6000.0, 0.016),
    ("000688.SH", "科创50", 20200723, 950.0, 0.019),
    ("399001.SZ", "深证成指", 19950123, 10000.0, 0.014),
    ("399006.SZ", "创业板指", 20100601, 2000.0, 0.018),
    ("899050.BJ", "北证50", 20221121, 1000.0, 0.025),
)

# code, name, list date, price, daily volatility
_ETFS: Final[tuple[tuple[str, str, int, float, float], ...]] = (
    ("510050.SH", "上证50ETF", 20050223, 2.6, 0.012),
    ("510300.SH", "沪深300ETF", 20120528, 3.9, 0.012),
    ("510500.SH", "中证500ETF", 20130315, 5.8, 0.014),
    ("512880.SH", "证券ETF", 20160808, 1.0, 0.022),
    ("588000.SH", "科创50ETF", 20201116, 1.0, 0.019),
    ("159915.SZ", "创业板ETF", 20111209, 2.0, 0.018),
    ("159919.SZ", "沪深300ETF嘉实", 20120528, 4.0, 0.012),
)

# How many synthetic stocks each number range gets: (prefixes, exchange, count).
_SYNTHETIC_PLAN: Final[tuple[tuple[tuple[str, ...], str, int], ...]] = (
    (("600", "601", "603", "605"), "SH", 90),
    (("000", "001", "002"), "SZ", 80),
    (("300", "301"), "SZ", 55),
    (("688",), "SH", 35),
    (("43", "83", "87", "92"), "BJ", 20),
)

_BOARD_START: Final = {
    Board.MAIN: 19910101,
    Board.CHINEXT: 20091030,
    Board.STAR: 20190722,
    Board.BJ: 20211115,
    Board.ETF: 20050223,
    Board.INDEX: 19901219,
}

_FIRST_CHARS: Final = "华中东南西北天海金长新恒国宏明鑫瑞安泰盛光通兴远嘉永利富龙凯德晨宇鼎信创博航"
_SECOND_CHARS: Final = "科源达元丰泰润成辰联兴信捷川峰鸿宝康力威立诚林星福祥锐讯图昌"
_SUFFIXES: Final = (
    "科技",
    "电子",
    "股份",
    "医药",
    "能源",
    "材料",
    "智能",
    "实业",
    "控股",
    "传媒",
    "电气",
    "生物",
    "环境",
    "精工",
    "化工",
    "食品",
    "汽车",
    "通信",
    "软件",
    "机械",
    "新材",
    "光电",
    "药业",
    "电力",
    "物流",
    "建设",
    "农业",
    "半导体",
    "重工",
    "纺织",
)


def _rng(seed: int, *salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, *salt])


def _code_key(code: str) -> int:
    sc = parse_code(code)
    return int(sc.symbol) * 4 + ("SH", "SZ", "BJ").index(sc.exchange) + 1


def _random_date(rng: np.random.Generator, first: int, last: int) -> int:
    a = dt.date(first // 10000, first // 100 % 100, first % 100)
    b = dt.date(last // 10000, last // 100 % 100, last % 100)
    d = a + dt.timedelta(days=int(rng.integers(0, (b - a).days + 1)))
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d.year * 10000 + d.month * 100 + d.day


def listing_of(code: str, seed: int = DEFAULT_SEED, name: str = "", is_st: bool = False) -> Listing:
    """A deterministic synthetic :class:`Listing` for any valid code (not only the universe's).

    Parameters depend only on ``seed`` and the code, so one code can be produced alone.
    """
    code = normalize_code(code)
    sc = parse_code(code)
    board = sc.board
    rng = _rng(seed, _code_key(code), 7)
    if board is Board.INDEX:
        level = float(np.round(1000.0 * np.exp(rng.uniform(0.0, 2.3)), 2))
        return Listing(
            code,
            name or f"指数{sc.symbol}",
            board,
            False,
            20050104,
            level,
            0.0,
            0.0,
            float(rng.uniform(0.010, 0.018)),
            0.0,
            "index",
        )
    if board is Board.ETF:
        price = float(np.round(np.exp(rng.uniform(0.0, 1.6)), 2))
        shares = float(rng.uniform(1e9, 3e10))
        return Listing(
            code,
            name or f"ETF{sc.symbol}",
            board,
            False,
            _random_date(rng, 20120101, 20221230),
            price,
            shares,
            shares,
            float(rng.uniform(0.010, 0.020)),
            float(rng.uniform(0.005, 0.05)),
            "etf",
        )
    # Log-uniform price levels between about 2.5 and 150 CNY, with a few dear ones on top.
    price = float(np.exp(rng.uniform(np.log(2.5), np.log(150.0))))
    if rng.random() < 0.03:
        price *= 6.0
    if is_st:
        price = min(price, float(rng.uniform(1.5, 6.0)))
    total = float(np.round(rng.uniform(0.08, 3.0) * 1e9, -4))
    floating = float(np.round(total * rng.uniform(0.4, 1.0), -4))
    vol = {Board.MAIN: 0.022, Board.CHINEXT: 0.03, Board.STAR: 0.032, Board.BJ: 0.04}[board]
    first = max(_BOARD_START[board], 19940101 if board is Board.MAIN else 0)
    return Listing(
        code,
        name or f"股票{sc.symbol}",
        board,
        is_st,
        _random_date(rng, first, 20240628),
        float(np.round(price, 2)),
        floating,
        total,
        float(vol * rng.uniform(0.75, 1.3)),
        float(rng.uniform(0.004, 0.04)),
    )


class Universe:
    """The simulator's listing for one seed: codes, reference data and sectors.

    ``Universe(seed)`` always lists the same codes with the same parameters; a different seed
    changes the synthetic part (the famous codes, indices and ETFs are always present).
    """

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        if not is_int(seed) or seed < 0:
            raise InvalidArgument(f"seed must be a non-negative int, got {seed!r}")
        self.seed = seed
        self._listings: dict[str, Listing] = {}
        self._build()

    # ------------------------------------------------------------------ construction

    def _add(self, listing: Listing) -> None:
        self._listings[listing.code] = listing

    def _build(self) -> None:
        for code, name, base, level, vol in _INDICES:
            self._add(
                Listing(code, name, Board.INDEX, False, base, level, 0.0, 0.0, vol, 0.0, "index")
            )
        for code, name, listed, price, vol in _ETFS:
            shares = 2e10 if price < 3 else 8e9
            self._add(
                Listing(
                    code, name, Board.ETF, False, listed, price, shares, shares, vol, 0.03, "etf"
                )
            )
        for code, name, listed, price, total, floating, vol in _FAMOUS:
            self._add(
                Listing(
                    code,
                    name,
                    parse_code(code).board,
                    False,
                    listed,
                    price,
                    floating,
                    total,
                    vol,
                    0.012,
                )
            )
        rng = _rng(self.seed, 1)
        names = {lst.name for lst in self._listings.values()}
        drawn: list[tuple[str, str]] = []
        for prefixes, exchange, count in _SYNTHETIC_PLAN:
            made = 0
            while made < count:
                prefix = prefixes[int(rng.integers(len(prefixes)))]
                digits = 6 - len(prefix)
                code = f"{prefix}{int(rng.integers(0, 10**digits)):0{digits}d}.{exchange}"
                if code in self._listings or any(code == c for c, _ in drawn):
                    continue
                try:
                    parse_code(code)
                except InvalidCode:
                    continue
                drawn.append((code, self._new_name(rng, names)))
                made += 1
        # ST is a main-board status here; 5% of all stocks carry it.
        n_stocks = len(drawn) + len(_FAMOUS)
        main = [i for i, (c, _) in enumerate(drawn) if parse_code(c).board is Board.MAIN]
        st = set(rng.choice(main, size=round(0.05 * n_stocks), replace=False).tolist())
        for i, (code, name) in enumerate(drawn):
            is_st = i in st
            if is_st:
                name = ("*ST" if rng.random() < 0.5 else "ST") + name
            self._add(listing_of(code, self.seed, name, is_st))
        self._listings = dict(sorted(self._listings.items()))

    @staticmethod
    def _new_name(rng: np.random.Generator, taken: set[str]) -> str:
        while True:
            name = (
                _FIRST_CHARS[int(rng.integers(len(_FIRST_CHARS)))]
                + _SECOND_CHARS[int(rng.integers(len(_SECOND_CHARS)))]
                + _SUFFIXES[int(rng.integers(len(_SUFFIXES)))]
            )
            if name not in taken:
                taken.add(name)
                return name

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._listings)

    def __iter__(self) -> Iterator[Listing]:
        return iter(self._listings.values())

    def __contains__(self, code: object) -> bool:
        try:
            return normalize_code(code) in self._listings
        except InvalidCode:
            return False

    def codes(self) -> list[str]:
        """Every listed code, sorted."""
        return list(self._listings)

    def listing(self, code: str) -> Listing:
        """The listing of ``code``; InvalidCode if the universe does not list it."""
        norm = normalize_code(code)
        try:
            return self._listings[norm]
        except KeyError:
            raise InvalidCode(
                f"code {code!r} is not listed in the simulator's universe (seed {self.seed}); "
                "list the known codes with Universe.codes() or the sector '沪深A股'"
            ) from None

    def get(self, code: str) -> Listing:
        """The universe's listing of ``code``, or a synthetic one for an unlisted valid code."""
        norm = normalize_code(code)
        return self._listings.get(norm) or listing_of(norm, self.seed)

    def instrument(
        self, code: str, pre_close: float, day: int, nth_day: int = 0
    ) -> InstrumentDetail:
        """Reference data of ``code`` for trading day ``day`` (``YYYYMMDD``) given its PreClose.

        The limit prices follow the board's ratio on that day, rounded half-up to 0.01, and
        the new-listing rules when ``nth_day`` (the day's number among the listing's trading
        days, 1 for the listing day; 0: not known) is given (``backends.daylimits``); indices
        have none (0).
        ``PriceTick`` is 0.01 for every code here (real ETFs quote in 0.001; the simulator keeps
        one price grid so that the broker's tick-size rule is the same for all).
        """
        lst = self.listing(code)
        if not isinstance(day, int) or not 19900101 <= day <= 99991231:
            raise InvalidArgument(f"day must be a YYYYMMDD int such as 20240102, got {day!r}")
        limit_prices(pre_close, lst.board, lst.is_st)  # refuses a bad pre_close
        down, up = day_limits(
            pre_close, lst.board, lst.is_st, day, list_date=lst.list_date, nth_day=nth_day
        )
        symbol, exchange = lst.code.split(".")
        return InstrumentDetail(
            ExchangeID=exchange,
            InstrumentID=symbol,
            InstrumentName=lst.name,
            ExchangeCode=symbol,
            UniCode=symbol,
            OpenDate=str(lst.list_date),
            PreClose=float(pre_close),
            UpStopPrice=up,
            DownStopPrice=down,
            FloatVolume=lst.float_shares,
            TotalVolume=lst.total_shares,
            PriceTick=0.01,
            VolumeMultiple=1,
            InstrumentStatus=0,
            IsTrading=lst.kind != "index" and lst.list_date <= day,
            board=lst.board.value,
            is_st=lst.is_st,
        )

    # ------------------------------------------------------------------ sectors

    def sectors(self) -> dict[str, list[str]]:
        """Sector name to sorted member codes, with xtquant's sector names."""
        stocks = [x for x in self if x.kind == "stock"]
        shsz = [x.code for x in stocks if x.board is not Board.BJ]

        def by_cap(items: list[Listing]) -> list[str]:
            ranked = sorted(items, key=lambda x: (-x.base_price * x.total_shares, x.code))
            return [x.code for x in ranked]

        big = [x for x in stocks if x.board is not Board.BJ and not x.is_st]
        ranked = by_cap(big)
        sh_ranked = by_cap([x for x in big if x.code.endswith(".SH") and x.board is Board.MAIN])
        out = {
            "沪深A股": shsz,
            "沪深京A股": [x.code for x in stocks],
            "上证A股": [c for c in shsz if c.endswith(".SH")],
            "深证A股": [c for c in shsz if c.endswith(".SZ")],
            "创业板": [x.code for x in stocks if x.board is Board.CHINEXT],
            "科创板": [x.code for x in stocks if x.board is Board.STAR],
            "北证A股": [x.code for x in stocks if x.board is Board.BJ],
            "沪深ETF": [x.code for x in self if x.kind == "etf"],
            "沪深指数": [
                x.code
                for x in self
                if x.kind == "index" and x.board is Board.INDEX and not x.code.endswith(".BJ")
            ],
            "京市指数": [x.code for x in self if x.kind == "index" and x.code.endswith(".BJ")],
            "沪深300": ranked[:60],
            "中证500": ranked[60:140],
            "上证50": sh_ranked[:20],
            "科创50": by_cap([x for x in big if x.board is Board.STAR])[:15],
            "创业板指": by_cap([x for x in big if x.board is Board.CHINEXT])[:20],
            "北证50": by_cap([x for x in stocks if x.board is Board.BJ])[:10],
        }
        return {k: sorted(v) for k, v in out.items()}

    def sector(self, name: str) -> list[str]:
        """Members of one sector; InvalidArgument naming the known sectors if unknown."""
        secs = self.sectors()
        if name not in secs:
            raise InvalidArgument(f"unknown sector {name!r}: the simulator knows {', '.join(secs)}")
        return secs[name]


def history_start(listing: Listing) -> int:
    """The first day (``YYYYMMDD``) of a listing's synthetic history."""
    if listing.list_date >= HISTORY_START:
        # A newly listed stock's first bar is its listing day.
        return listing.list_date
    return HISTORY_START


__all__ = [
    "DEFAULT_SEED",
    "HISTORY_START",
    "Listing",
    "Universe",
    "history_start",
    "limit_prices",
    "listing_of",
]
