"""The messages of the Backend seam: requests, replies and the connection event.

Requests and replies are tagged msgspec Structs, so the same messages travel unchanged through
the gateway. They are vocabulary, not behaviour: the data layer, the backends, the wire and the
client all speak them, so they sit in the model layer (``qmtkit.backends.base`` re-exports them
beside the ``Backend`` and ``EventSink`` protocols).
"""

from __future__ import annotations

from typing import TypeVar, Union

import msgspec

from qmtkit.models import (
    AccountInfo,
    AccountStatus,
    Asset,
    CancelResponse,
    InstrumentDetail,
    Order,
    OrderResponse,
    Position,
    Tick,
    Trade,
)

# --------------------------------------------------------------------------- requests


class Hello(msgspec.Struct, tag="hello"):
    """Ask the backend who it is."""


class ListInstruments(msgspec.Struct, tag="list_instruments"):
    """Reference data for ``codes``; ``None`` lists every instrument the venue has."""

    codes: list[str] | None = None


class GetSnapshot(msgspec.Struct, tag="get_snapshot"):
    """The latest tick of each code (unknown codes are left out of the answer)."""

    codes: list[str]


class SubscribeQuotes(msgspec.Struct, tag="subscribe_quotes"):
    """Start pushing ``QuoteBatch(sub_id, ...)`` for ``codes`` (empty: the whole market)."""

    sub_id: int
    codes: list[str]
    period: str = "tick"


class UnsubscribeQuotes(msgspec.Struct, tag="unsubscribe_quotes"):
    """Stop the pushes of one subscription."""

    sub_id: int


class FetchHistory(msgspec.Struct, tag="fetch_history"):
    """Bars of one code and stored period (``1m``, ``1d``, ``tick``), ``start <= time <= end``.

    Times are Unix milliseconds; 0 means unbounded.
    """

    code: str
    period: str
    start: int = 0
    end: int = 0


class FetchDividends(msgspec.Struct, tag="fetch_dividends"):
    """The ex-rights records of one code."""

    code: str


class ListSectors(msgspec.Struct, tag="list_sectors"):
    """The names of the sectors the venue knows."""


class GetSectorMembers(msgspec.Struct, tag="get_sector_members"):
    """The codes in one sector."""

    sector: str


class GetCalendar(msgspec.Struct, tag="get_calendar"):
    """The venue's own trading calendar (SH's; SZ and BJ close on the same days)."""


class OpenAccount(msgspec.Struct, tag="open_account"):
    """Start the report stream of an account, replaying every report with ``seq > after_seq``."""

    account_id: str
    account_type: int = 2
    after_seq: int = 0


class CloseAccount(msgspec.Struct, tag="close_account"):
    """Stop the report stream of an account."""

    account_id: str


class SubmitOrder(msgspec.Struct, tag="submit_order"):
    """Place an order; the reply carries the order id, the fate arrives as account reports."""

    account_id: str
    stock_code: str
    order_type: int
    order_volume: int
    price_type: int
    price: float
    strategy_name: str = ""
    order_remark: str = ""
    seq: int = 0


class CancelOrder(msgspec.Struct, tag="cancel_order"):
    """Cancel by qmtkit/xtquant order id."""

    account_id: str
    order_id: int
    seq: int = 0


class CancelOrderSysid(msgspec.Struct, tag="cancel_order_sysid"):
    """Cancel by the venue's order number (``market``: 0 SH, 1 SZ, 2 BJ)."""

    account_id: str
    market: int
    order_sysid: str
    seq: int = 0


class QueryAsset(msgspec.Struct, tag="query_asset"):
    """The account's cash and totals."""

    account_id: str


class QueryOrders(msgspec.Struct, tag="query_orders"):
    """Today's orders of the account (only the cancelable ones if asked)."""

    account_id: str
    cancelable_only: bool = False


class QueryTrades(msgspec.Struct, tag="query_trades"):
    """Today's fills of the account."""

    account_id: str


class QueryPositions(msgspec.Struct, tag="query_positions"):
    """The account's holdings."""

    account_id: str


class QueryAccountInfos(msgspec.Struct, tag="query_account_infos"):
    """Every account the venue knows."""


class QueryAccountStatus(msgspec.Struct, tag="query_account_status"):
    """The state of every account the venue knows."""


Request = Union[
    Hello,
    ListInstruments,
    GetSnapshot,
    SubscribeQuotes,
    UnsubscribeQuotes,
    FetchHistory,
    FetchDividends,
    ListSectors,
    GetSectorMembers,
    GetCalendar,
    OpenAccount,
    CloseAccount,
    SubmitOrder,
    CancelOrder,
    CancelOrderSysid,
    QueryAsset,
    QueryOrders,
    QueryTrades,
    QueryPositions,
    QueryAccountInfos,
    QueryAccountStatus,
]

# --------------------------------------------------------------------------- replies


class Ok(msgspec.Struct, tag="ok"):
    """A request that has nothing to return succeeded."""


class BackendInfo(msgspec.Struct, tag="backend_info"):
    """Who answers: ``kind`` is ``sim``, ``xtquant`` or ``remote``; ``url`` what was opened.

    ``venue_id`` is a stable identifier of the venue's report history: equal ids mean the same
    history (so a journal of its reports may be resumed); ``""`` means unknown.
    """

    kind: str
    url: str
    version: str = ""
    venue_id: str = ""


class Instruments(msgspec.Struct, tag="instruments"):
    """Reference data, one entry per known code."""

    items: list[InstrumentDetail]


class Snapshots(msgspec.Struct, tag="snapshots"):
    """Latest ticks, one per known code."""

    items: list[Tick]


class HistoryColumns(msgspec.Struct, tag="history"):
    """Bars as columns: each value is the raw little-endian bytes of a numpy array.

    The column names and dtypes are those of ``qmtkit.data.schema`` for the period; ``rows``
    is the number of bars. Raw bytes keep a million bars cheap to send through the gateway.
    ``as_of`` is the venue's own clock (Unix ms) when it answered: no bar after it can exist
    yet, whatever the caller's clock says (0: unknown, the caller's clock stands in).
    """

    code: str
    period: str
    rows: int
    columns: dict[str, bytes]
    as_of: int = 0


class Dividend(msgspec.Struct, tag="dividend"):
    """One ex-rights record with xtquant's field names; ``time`` is the ex-date (ms)."""

    time: int
    interest: float = 0.0
    stockBonus: float = 0.0
    stockGift: float = 0.0
    allotNum: float = 0.0
    allotPrice: float = 0.0
    gugai: int = 0
    dr: float = 1.0


class Dividends(msgspec.Struct, tag="dividends"):
    """The ex-rights records of one code, oldest first."""

    code: str
    items: list[Dividend]


class Names(msgspec.Struct, tag="names"):
    """A list of names (sectors, codes)."""

    items: list[str]


class VenueCalendar(msgspec.Struct, tag="venue_calendar"):
    """A venue's trading days and announced holidays as ``YYYYMMDD``; empty: it keeps none."""

    trading_days: list[int] = msgspec.field(default_factory=list)
    holidays: list[int] = msgspec.field(default_factory=list)


class Orders(msgspec.Struct, tag="orders"):
    """A list of orders."""

    items: list[Order]


class Trades(msgspec.Struct, tag="trades"):
    """A list of fills."""

    items: list[Trade]


class Positions(msgspec.Struct, tag="positions"):
    """A list of holdings."""

    items: list[Position]


class AccountInfos(msgspec.Struct, tag="account_infos"):
    """A list of accounts."""

    items: list[AccountInfo]


class AccountStatuses(msgspec.Struct, tag="account_statuses"):
    """A list of account states."""

    items: list[AccountStatus]


Reply = Union[
    Ok,
    BackendInfo,
    Instruments,
    Snapshots,
    HistoryColumns,
    Dividends,
    Names,
    VenueCalendar,
    Orders,
    Trades,
    Positions,
    AccountInfos,
    AccountStatuses,
    Asset,
    AccountStatus,
    OrderResponse,
    CancelResponse,
]

# --------------------------------------------------------------------------- events


class ConnectionState(msgspec.Struct, frozen=True, tag="connection"):
    """The backend lost (``connected=False``) or regained its venue."""

    connected: bool
    reason: str = ""


ReplyT = TypeVar("ReplyT")


def expect(reply: Reply, kind: type[ReplyT]) -> ReplyT:
    """Narrow a reply to the type the request promises, failing loudly on a protocol slip."""
    if not isinstance(reply, kind):
        from qmtkit.errors import BackendError

        raise BackendError(f"backend answered {type(reply).__name__}, expected {kind.__name__}")
    return reply
