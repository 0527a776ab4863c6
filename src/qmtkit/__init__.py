"""qmtkit: an asyncio-native, typed, fast Python SDK for A-share trading with xtquant's meaning."""

from __future__ import annotations

from qmtkit._version import __version__
from qmtkit.client import Account, Client, OrderHandle, Subscription, connect
from qmtkit.constants import (
    AccountStatusCode,
    AccountType,
    Direction,
    OffsetFlag,
    OrderStatus,
    OrderType,
    PriceType,
)
from qmtkit.models import (
    AccountInfo,
    AccountReport,
    AccountStatus,
    Asset,
    Bar,
    CancelError,
    CancelResponse,
    InstrumentDetail,
    Order,
    OrderError,
    OrderResponse,
    Position,
    QuoteBatch,
    Tick,
    Trade,
)

__all__ = [
    "Account",
    "AccountInfo",
    "AccountReport",
    "AccountStatus",
    "AccountStatusCode",
    "AccountType",
    "Asset",
    "Bar",
    "CancelError",
    "CancelResponse",
    "Client",
    "Direction",
    "InstrumentDetail",
    "OffsetFlag",
    "Order",
    "OrderError",
    "OrderHandle",
    "OrderResponse",
    "OrderStatus",
    "OrderType",
    "Position",
    "PriceType",
    "QuoteBatch",
    "Subscription",
    "Tick",
    "Trade",
    "__version__",
    "connect",
]
