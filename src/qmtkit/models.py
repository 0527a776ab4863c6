"""Typed models with xtquant's field names, as msgspec Structs.

Trader objects (``Order``, ``Trade``, ...) carry the attribute names of xtquant's ``Xt*``
classes; market objects (``Tick``, ``Bar``) carry the field names of xtquant's data dicts.
The account-report types are tagged so that a union of them encodes and decodes unambiguously
(the gateway sends them over the wire as they are). They hold only scalars (an ``Order`` at
most one ``OrderError``), so they can never be part of a reference cycle and are made with
``gc=False``: a venue keeps every report it made, and the collector need not walk them.
"""

from __future__ import annotations

from typing import Union

import msgspec

from qmtkit.constants import AccountType
from qmtkit.errors import InvalidArgument

#: MiniQMT keeps at most this many UTF-8 bytes of an order's ``order_remark``.
REMARK_BYTES = 24


def cut_remark(remark: str, limit: int = REMARK_BYTES) -> str:
    """``remark`` as MiniQMT stores it: at most ``limit`` UTF-8 bytes, never half a character."""
    if not isinstance(remark, str):
        raise InvalidArgument(f"order_remark must be a string, got {remark!r}")
    if len(remark) * 4 <= limit:
        return remark  # no character takes more than 4 bytes
    return remark.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


class Tick(msgspec.Struct, kw_only=True, tag="tick", frozen=True):
    """A level-1 snapshot with a 5-level book, as xtquant's ``get_full_tick`` values.

    ``time`` is a Unix timestamp in milliseconds. ``volume`` is cumulative for the day, in
    lots of 100 shares for stocks (as MiniQMT reports it); ``amount`` is cumulative yuan.
    """

    stock_code: str
    time: int
    lastPrice: float
    open: float
    high: float
    low: float
    lastClose: float
    amount: float
    volume: int
    pvolume: int = 0
    stockStatus: int = 0
    openInt: int = 0
    lastSettlementPrice: float = 0.0
    askPrice: list[float] = msgspec.field(default_factory=list)
    bidPrice: list[float] = msgspec.field(default_factory=list)
    askVol: list[int] = msgspec.field(default_factory=list)
    bidVol: list[int] = msgspec.field(default_factory=list)
    transactionNum: int = 0


# gc=False: a bar holds only a str and numbers, so it can be in no reference cycle; the
# collector need not track it, and a replay makes one per code per step.
class Bar(msgspec.Struct, kw_only=True, tag="bar", frozen=True, gc=False):
    """One K-line bar; ``time`` is the bar's label in Unix milliseconds (minute bars: the end)."""

    stock_code: str
    period: str
    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    amount: float
    settelementPrice: float = 0.0  # xtquant's spelling
    openInterest: int = 0
    preClose: float = 0.0
    suspendFlag: int = 0


class Order(msgspec.Struct, kw_only=True, tag="order", gc=False):
    """An order as ``XtOrder`` describes it."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    stock_code: str
    order_id: int
    order_sysid: str = ""
    order_time: int = 0  # Unix seconds, as xtquant
    order_type: int
    order_volume: int
    price_type: int
    price: float
    traded_volume: int = 0
    traded_price: float = 0.0
    order_status: int
    status_msg: str = ""
    strategy_name: str = ""
    order_remark: str = ""
    direction: int = 48
    offset_flag: int = 48
    secu_account: str = ""
    instrument_name: str = ""
    #: qmtkit's addition: why a rejected order was refused (the client attaches it).
    error: OrderError | None = None


class Trade(msgspec.Struct, kw_only=True, tag="trade", gc=False):
    """A fill as ``XtTrade`` describes it."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    stock_code: str
    order_type: int
    traded_id: str
    traded_time: int  # Unix seconds
    traded_price: float
    traded_volume: int
    traded_amount: float
    order_id: int
    order_sysid: str = ""
    strategy_name: str = ""
    order_remark: str = ""
    direction: int = 48
    offset_flag: int = 48
    commission: float = 0.0
    secu_account: str = ""
    instrument_name: str = ""


class Position(msgspec.Struct, kw_only=True, tag="position", gc=False):
    """A holding as ``XtPosition`` describes it."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    stock_code: str
    volume: int
    can_use_volume: int
    open_price: float
    market_value: float
    frozen_volume: int = 0
    on_road_volume: int = 0
    yesterday_volume: int = 0
    avg_price: float = 0.0
    direction: int = 48
    last_price: float = 0.0
    profit_rate: float = 0.0
    secu_account: str = ""
    instrument_name: str = ""


class Asset(msgspec.Struct, kw_only=True, tag="asset", gc=False):
    """Cash and totals as ``XtAsset`` describes them."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    cash: float
    frozen_cash: float
    market_value: float
    total_asset: float
    fetch_balance: float


class OrderError(msgspec.Struct, kw_only=True, tag="order_error", gc=False):
    """A refused order as ``XtOrderError`` describes it."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    order_id: int
    error_id: int = 0
    error_msg: str = ""
    strategy_name: str = ""
    order_remark: str = ""


class CancelError(msgspec.Struct, kw_only=True, tag="cancel_error", gc=False):
    """A refused cancel as ``XtCancelError`` describes it (market: 0 SH, 1 SZ)."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    order_id: int
    market: int = 0
    order_sysid: str = ""
    error_id: int = 0
    error_msg: str = ""


class OrderResponse(msgspec.Struct, kw_only=True, tag="order_response", gc=False):
    """The answer to an asynchronous order request (``XtOrderResponse``)."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    order_id: int
    strategy_name: str = ""
    order_remark: str = ""
    error_msg: str = ""
    seq: int = 0


class CancelResponse(msgspec.Struct, kw_only=True, tag="cancel_response", gc=False):
    """The answer to a cancel request (``XtCancelOrderResponse``); ``cancel_result`` 0 is OK."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    cancel_result: int
    order_id: int
    order_sysid: str = ""
    seq: int = 0
    error_msg: str = ""


class AccountStatus(msgspec.Struct, kw_only=True, tag="account_status", gc=False):
    """An account's connection state (``XtAccountStatus``)."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    status: int


class AccountInfo(msgspec.Struct, kw_only=True, tag="account_info", gc=False):
    """One account the terminal knows (an entry of ``query_account_infos``)."""

    account_type: int = int(AccountType.STOCK)
    account_id: str
    broker_type: int = 2
    platform_id: int = 0
    account_classification: int = 0
    login_status: int = 0


class InstrumentDetail(msgspec.Struct, kw_only=True, tag="instrument"):
    """Reference data of one security with ``get_instrument_detail``'s keys.

    ``board`` is qmtkit's own addition: one of ``main``, ``chinext``, ``star``, ``bj``,
    ``index``, ``etf``.
    """

    ExchangeID: str
    InstrumentID: str
    InstrumentName: str
    ExchangeCode: str = ""
    UniCode: str = ""
    OpenDate: str = ""
    ExpireDate: str = "99999999"
    PreClose: float = 0.0
    SettlementPrice: float = 0.0
    UpStopPrice: float = 0.0
    DownStopPrice: float = 0.0
    FloatVolume: float = 0.0
    TotalVolume: float = 0.0
    PriceTick: float = 0.01
    VolumeMultiple: int = 1
    InstrumentStatus: int = 0
    IsTrading: bool = True
    board: str = "main"
    is_st: bool = False

    @property
    def stock_code(self) -> str:
        """The code in ``600000.SH`` form."""
        return f"{self.InstrumentID}.{self.ExchangeID}"


#: Everything that can appear in an account's trade-report stream.
TradeReportItem = Union[
    Order,
    Trade,
    OrderError,
    CancelError,
    Asset,
    Position,
    AccountStatus,
    OrderResponse,
    CancelResponse,
]


class AccountReport(msgspec.Struct, frozen=True, tag="report", gc=False):
    """One entry of an account's ordered report stream.

    ``seq`` is assigned by the venue (the backend), starts at 1 and grows by one per report
    of that account, so a consumer that saw ``seq`` N can resume from N + 1.
    """

    account_id: str
    seq: int
    item: TradeReportItem


class QuoteBatch(msgspec.Struct, frozen=True, tag="quotes"):
    """A batch of quote records for one subscription, in the order the venue produced them."""

    sub_id: int
    period: str
    items: list[Tick | Bar]
    #: The last batch of the subscription: the venue has no more (a backtest has ended).
    final: bool = False
