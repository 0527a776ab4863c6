"""Integer codes with xtquant 250807's values, as IntEnums.

The members are named after xtquant's ``xtconstant`` names so that ``int(OrderType.STOCK_BUY)``
is what ``xtconstant.STOCK_BUY`` is.
"""

from __future__ import annotations

from enum import IntEnum


class AccountType(IntEnum):
    """Account kinds (``xtconstant.*_ACCOUNT``)."""

    FUTURE = 1
    STOCK = 2  # xtconstant.SECURITY_ACCOUNT
    CREDIT = 3
    FUTURE_OPTION = 5
    STOCK_OPTION = 6
    HUGANGTONG = 7
    INCOME_SWAP = 8
    NEW3BOARD = 10
    SHENGANGTONG = 11


class OrderType(IntEnum):
    """Order operations (``xtconstant.STOCK_BUY`` / ``STOCK_SELL``)."""

    STOCK_BUY = 23
    STOCK_SELL = 24


class PriceType(IntEnum):
    """Price types (``xtconstant.FIX_PRICE``, ``LATEST_PRICE`` and the market kinds)."""

    LATEST_PRICE = 5
    FIX_PRICE = 11
    MARKET_BEST = 18
    MARKET_CANCEL = 19
    MARKET_CANCEL_ALL = 20
    MARKET_CANCEL_1 = 21
    MARKET_CANCEL_5 = 22
    MARKET_CONVERT_1 = 23
    MARKET_CONVERT_5 = 24
    MARKET_SH_CONVERT_5_CANCEL = 42
    MARKET_SH_CONVERT_5_LIMIT = 43
    MARKET_PEER_PRICE_FIRST = 44
    MARKET_MINE_PRICE_FIRST = 45
    MARKET_SZ_INSTBUSI_RESTCANCEL = 46
    MARKET_SZ_CONVERT_5_CANCEL = 47
    MARKET_SZ_FULL_OR_CANCEL = 48


#: Market price types accepted on the Shanghai exchange (SH and, by the same rules, BJ).
SH_MARKET_PRICE_TYPES = frozenset(
    {
        PriceType.MARKET_SH_CONVERT_5_CANCEL,
        PriceType.MARKET_SH_CONVERT_5_LIMIT,
        PriceType.MARKET_PEER_PRICE_FIRST,
        PriceType.MARKET_MINE_PRICE_FIRST,
    }
)
#: Market price types accepted on the Shenzhen exchange.
SZ_MARKET_PRICE_TYPES = frozenset(
    {
        PriceType.MARKET_PEER_PRICE_FIRST,
        PriceType.MARKET_MINE_PRICE_FIRST,
        PriceType.MARKET_SZ_INSTBUSI_RESTCANCEL,
        PriceType.MARKET_SZ_CONVERT_5_CANCEL,
        PriceType.MARKET_SZ_FULL_OR_CANCEL,
    }
)


class OrderStatus(IntEnum):
    """Order states (``xtconstant.ORDER_*``), 48 … 57 and 255."""

    UNREPORTED = 48
    WAIT_REPORTING = 49
    REPORTED = 50
    REPORTED_CANCEL = 51
    PARTSUCC_CANCEL = 52
    PART_CANCEL = 53
    CANCELED = 54
    PART_SUCC = 55
    SUCCEEDED = 56
    JUNK = 57
    UNKNOWN = 255

    @property
    def is_terminal(self) -> bool:
        """True for states after which the order never changes again."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.PART_CANCEL, OrderStatus.CANCELED, OrderStatus.SUCCEEDED, OrderStatus.JUNK}
)


class Direction(IntEnum):
    """Direction flags (``xtconstant.DIRECTION_FLAG_*``)."""

    LONG = 48
    SHORT = 49


class OffsetFlag(IntEnum):
    """Offset flags (``xtconstant.OFFSET_FLAG_*``); for stocks, buy is OPEN and sell is CLOSE."""

    OPEN = 48
    CLOSE = 49
    FORCECLOSE = 50
    CLOSETODAY = 51
    CLOSEYESTERDAY = 52
    FORCEOFF = 53
    LOCALFORCECLOSE = 54


class AccountStatusCode(IntEnum):
    """Account connection states (``xtconstant.ACCOUNT_STATUS_*``)."""

    INVALID = -1
    OK = 0
    WAITING_LOGIN = 1
    STATUSING = 2
    FAIL = 3
    INITING = 4
    CORRECTING = 5
    CLOSED = 6
    ASSIS_FAIL = 7
    DISABLEBYSYS = 8
    DISABLEBYUSER = 9
