"""xtquant's ``xttype`` module for the compat shim: ``StockAccount`` and the ``Xt*`` records.

Constructors take xtquant's positional parameters in xtquant's order and set xtquant's attribute
names, so scripts that build or read these objects see what they expect. The ``from_*``
functions turn qmtkit models (``qmtkit.models``) into them; ``to_xt`` picks the right one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qmtkit import models
from qmtkit.compat import xtconstant as _C

__all__ = [
    "StockAccount",
    "XtAccountInfo",
    "XtAccountStatus",
    "XtAsset",
    "XtBankTransferResponse",
    "XtCancelError",
    "XtCancelOrderResponse",
    "XtCreditDeal",
    "XtCreditOrder",
    "XtOperateSmartTaskResponse",
    "XtOrder",
    "XtOrderError",
    "XtOrderResponse",
    "XtPosition",
    "XtSmartAlgoOrderResponse",
    "XtSmtAppointmentResponse",
    "XtTrade",
    "to_xt",
]

#: What ``StockAccount(...)`` hands back (instead of an account) when the id is not a str,
#: as xtquant does: the caller gets a message string, not an exception.
ACCOUNT_ID_NOT_STR = "account_id must be a str (资金账号必须为字符串类型)"


class _Record:
    """Common repr for the plain attribute bags below."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class StockAccount(_Record):
    """A trading account: ``StockAccount('1000000365')`` or ``StockAccount(id, 'CREDIT')``.

    ``account_type`` is one of the names of ``xtconstant.ACCOUNT_TYPE_DICT`` (any case) and is
    stored as its integer code. A non-str ``account_id`` makes the constructor return a message
    string instead of an account, exactly as xtquant does; an unknown type name raises.
    """

    account_id: str
    account_type: int

    def __new__(cls, account_id: str, account_type: str = "STOCK") -> StockAccount:
        if not isinstance(account_id, str):
            return ACCOUNT_ID_NOT_STR  # type: ignore[unreachable, unused-ignore]
        return super().__new__(cls)

    def __init__(self, account_id: str, account_type: str = "STOCK") -> None:
        wanted = account_type.upper() if isinstance(account_type, str) else account_type
        for code, name in _C.ACCOUNT_TYPE_DICT.items():
            if wanted == name:
                self.account_type = code
                self.account_id = account_id
                return
        from qmtkit.errors import InvalidArgument

        raise InvalidArgument(
            f"unsupported account type {account_type!r}: expected one of "
            f"{', '.join(_C.ACCOUNT_TYPE_DICT.values())} (e.g. 'STOCK', 'CREDIT')"
        )


class XtAsset(_Record):
    """Cash and totals of a stock account."""

    def __init__(
        self,
        account_id: str,
        cash: float,
        frozen_cash: float,
        market_value: float,
        total_asset: float,
        fetch_balance: float,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cash = cash
        self.frozen_cash = frozen_cash
        self.market_value = market_value
        self.total_asset = total_asset
        self.fetch_balance = fetch_balance


class XtOrder(_Record):
    """One order and its current state."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_id: int,
        order_sysid: str,
        order_time: int,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        traded_volume: int,
        traded_price: float,
        order_status: int,
        status_msg: str,
        strategy_name: str,
        order_remark: str,
        direction: int,
        offset_flag: int,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtTrade(_Record):
    """One fill."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        order_type: int,
        traded_id: str,
        traded_time: int,
        traded_price: float,
        traded_volume: int,
        traded_amount: float,
        order_id: int,
        order_sysid: str,
        strategy_name: str,
        order_remark: str,
        direction: int,
        offset_flag: int,
        commission: float,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_type = order_type
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.traded_amount = traded_amount
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.commission = commission
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtPosition(_Record):
    """One holding."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        volume: int,
        can_use_volume: int,
        open_price: float,
        market_value: float,
        frozen_volume: int,
        on_road_volume: int,
        yesterday_volume: int,
        avg_price: float,
        direction: int,
        last_price: float,
        profit_rate: float,
        secu_account: str,
        instrument_name: str,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.volume = volume
        self.can_use_volume = can_use_volume
        self.open_price = open_price
        self.market_value = market_value
        self.frozen_volume = frozen_volume
        self.on_road_volume = on_road_volume
        self.yesterday_volume = yesterday_volume
        self.avg_price = avg_price
        self.direction = direction
        self.last_price = last_price
        self.profit_rate = profit_rate
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtOrderError(_Record):
    """A refused order."""

    def __init__(
        self,
        account_id: str,
        order_id: int,
        error_id: int | None = None,
        error_msg: str | None = None,
        strategy_name: str | None = None,
        order_remark: str | None = None,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.error_id = error_id
        self.error_msg = error_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark


class XtCancelError(_Record):
    """A refused cancel (``market``: 0 Shanghai, 1 Shenzhen)."""

    def __init__(
        self,
        account_id: str,
        order_id: int,
        market: int,
        order_sysid: str,
        error_id: int | None = None,
        error_msg: str | None = None,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.market = market
        self.order_sysid = order_sysid
        self.error_id = error_id
        self.error_msg = error_msg


class XtOrderResponse(_Record):
    """The answer to ``order_stock_async``, matched to the request by ``seq``."""

    def __init__(
        self,
        account_id: str,
        order_id: int,
        strategy_name: str,
        order_remark: str,
        error_msg: str,
        seq: int,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtCancelOrderResponse(_Record):
    """The answer to a cancel request (``cancel_result`` 0 means accepted)."""

    def __init__(
        self,
        account_id: str,
        cancel_result: int,
        order_id: int,
        order_sysid: str,
        seq: int,
        error_msg: str,
    ) -> None:
        self.account_type: int = _C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cancel_result = cancel_result
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.seq = seq
        self.error_msg = error_msg


class XtCreditOrder(XtOrder):
    """An order of a credit (margin) account."""

    def __init__(  # xtquant's subclass sets a different attribute set on purpose
        self,
        account_id: str,
        stock_code: str,
        order_id: int,
        order_time: int,
        order_type: int,
        order_volume: int,
        price_type: int,
        price: float,
        traded_volume: int,
        traded_price: float,
        order_status: int,
        status_msg: str,
        order_remark: str,
        contract_no: str,
        stock_code1: str,
    ) -> None:
        self.account_type = _C.CREDIT_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.order_remark = order_remark
        self.contract_no = contract_no
        self.stock_code1 = stock_code1


class XtCreditDeal(_Record):
    """A fill of a credit (margin) account."""

    def __init__(
        self,
        account_id: str,
        stock_code: str,
        traded_id: str,
        traded_time: int,
        traded_price: float,
        traded_volume: int,
        order_id: int,
        contract_no: str,
        stock_code1: str,
    ) -> None:
        self.account_type: int = _C.CREDIT_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.order_id = order_id
        self.contract_no = contract_no
        self.stock_code1 = stock_code1


class XtAccountStatus(_Record):
    """The connection state of an account (``xtconstant.ACCOUNT_STATUS_*``)."""

    def __init__(self, account_id: str, account_type: int, status: int) -> None:
        self.account_type = account_type
        self.account_id = account_id
        self.status = status


class XtAccountInfo(_Record):
    """One account the terminal knows (an entry of ``query_account_infos``)."""

    def __init__(
        self,
        account_id: str,
        account_type: int,
        broker_type: int,
        platform_id: int,
        account_classification: int,
        login_status: int,
    ) -> None:
        self.account_type = account_type
        self.account_id = account_id
        self.broker_type = broker_type
        self.platform_id = platform_id
        self.account_classification = account_classification
        self.login_status = login_status


class XtSmtAppointmentResponse(_Record):
    """The answer to a securities-lending appointment request."""

    def __init__(self, seq: int, success: bool, msg: str, apply_id: str) -> None:
        self.seq = seq
        self.success = success
        self.msg = msg
        self.apply_id = apply_id


class XtBankTransferResponse(_Record):
    """The answer to a bank transfer request."""

    def __init__(self, seq: int, success: bool, msg: str) -> None:
        self.seq = seq
        self.success = success
        self.msg = msg


class XtSmartAlgoOrderResponse(_Record):
    """The answer to a smart-algorithm order request."""

    def __init__(
        self,
        account_id: str,
        task_id: int,
        strategy_name: str,
        order_remark: str,
        error_msg: str,
        seq: int,
    ) -> None:
        self.account_id = account_id
        self.task_id = task_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtOperateSmartTaskResponse(_Record):
    """The answer to an operation on a smart-algorithm task."""

    def __init__(
        self, seq: int, success: bool, task_id: int, operate_reason: str, error_msg: str
    ) -> None:
        self.seq = seq
        self.success = success
        self.task_id = task_id
        self.operate_reason = operate_reason
        self.error_msg = error_msg


# --------------------------------------------------------------------------- converters


def from_asset(m: models.Asset) -> XtAsset:
    """An ``XtAsset`` from a qmtkit ``Asset``."""
    x = XtAsset(m.account_id, m.cash, m.frozen_cash, m.market_value, m.total_asset, m.fetch_balance)
    x.account_type = m.account_type
    return x


def from_order(m: models.Order) -> XtOrder:
    """An ``XtOrder`` from a qmtkit ``Order``."""
    x = XtOrder(
        m.account_id, m.stock_code, m.order_id, m.order_sysid, m.order_time, m.order_type,
        m.order_volume, m.price_type, m.price, m.traded_volume, m.traded_price, m.order_status,
        m.status_msg, m.strategy_name, m.order_remark, m.direction, m.offset_flag,
        m.secu_account, m.instrument_name,
    )  # fmt: skip
    x.account_type = m.account_type
    return x


def from_trade(m: models.Trade) -> XtTrade:
    """An ``XtTrade`` from a qmtkit ``Trade``."""
    x = XtTrade(
        m.account_id, m.stock_code, m.order_type, m.traded_id, m.traded_time, m.traded_price,
        m.traded_volume, m.traded_amount, m.order_id, m.order_sysid, m.strategy_name,
        m.order_remark, m.direction, m.offset_flag, m.commission, m.secu_account,
        m.instrument_name,
    )  # fmt: skip
    x.account_type = m.account_type
    return x


def from_position(m: models.Position) -> XtPosition:
    """An ``XtPosition`` from a qmtkit ``Position``."""
    x = XtPosition(
        m.account_id, m.stock_code, m.volume, m.can_use_volume, m.open_price, m.market_value,
        m.frozen_volume, m.on_road_volume, m.yesterday_volume, m.avg_price, m.direction,
        m.last_price, m.profit_rate, m.secu_account, m.instrument_name,
    )  # fmt: skip
    x.account_type = m.account_type
    return x


def from_order_error(m: models.OrderError) -> XtOrderError:
    """An ``XtOrderError`` from a qmtkit ``OrderError``."""
    x = XtOrderError(
        m.account_id, m.order_id, m.error_id, m.error_msg, m.strategy_name, m.order_remark
    )
    x.account_type = m.account_type
    return x


def from_cancel_error(m: models.CancelError) -> XtCancelError:
    """An ``XtCancelError`` from a qmtkit ``CancelError``."""
    x = XtCancelError(m.account_id, m.order_id, m.market, m.order_sysid, m.error_id, m.error_msg)
    x.account_type = m.account_type
    return x


def from_order_response(m: models.OrderResponse, seq: int | None = None) -> XtOrderResponse:
    """An ``XtOrderResponse``; ``seq`` overrides the model's (the shim numbers its requests)."""
    x = XtOrderResponse(
        m.account_id, m.order_id, m.strategy_name, m.order_remark, m.error_msg,
        m.seq if seq is None else seq,
    )  # fmt: skip
    x.account_type = m.account_type
    return x


def from_cancel_response(m: models.CancelResponse, seq: int | None = None) -> XtCancelOrderResponse:
    """An ``XtCancelOrderResponse``; ``seq`` overrides the model's."""
    x = XtCancelOrderResponse(
        m.account_id, m.cancel_result, m.order_id, m.order_sysid,
        m.seq if seq is None else seq, m.error_msg,
    )  # fmt: skip
    x.account_type = m.account_type
    return x


def from_account_status(m: models.AccountStatus) -> XtAccountStatus:
    """An ``XtAccountStatus`` from a qmtkit ``AccountStatus``."""
    return XtAccountStatus(m.account_id, m.account_type, m.status)


def from_account_info(m: models.AccountInfo) -> XtAccountInfo:
    """An ``XtAccountInfo`` from a qmtkit ``AccountInfo``."""
    return XtAccountInfo(
        m.account_id, m.account_type, m.broker_type, m.platform_id,
        m.account_classification, m.login_status,
    )  # fmt: skip


# Each converter takes its own model type; the table is keyed by that type, so callers only
# ever pass a converter the model it was registered for.
_CONVERTERS: dict[type, Callable[[Any], object]] = {
    models.Asset: from_asset,
    models.Order: from_order,
    models.Trade: from_trade,
    models.Position: from_position,
    models.OrderError: from_order_error,
    models.CancelError: from_cancel_error,
    models.OrderResponse: from_order_response,
    models.CancelResponse: from_cancel_response,
    models.AccountStatus: from_account_status,
    models.AccountInfo: from_account_info,
}


def to_xt(m: object) -> object:
    """The ``Xt*`` object for any qmtkit trade model; raises InvalidArgument for anything else."""
    conv = _CONVERTERS.get(type(m))
    if conv is None:
        from qmtkit.errors import InvalidArgument

        raise InvalidArgument(
            f"cannot convert {type(m).__name__} to an xttype object: expected one of "
            f"{', '.join(t.__name__ for t in _CONVERTERS)}"
        )
    result: object = conv(m)
    return result
