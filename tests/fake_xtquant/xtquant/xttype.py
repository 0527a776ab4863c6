"""Data classes with xttype's constructor parameters (names and order), written for the tests."""

from . import xtconstant


class StockAccount:
    """An account handle: ``StockAccount(account_id, account_type='STOCK')``."""

    def __init__(self, account_id, account_type="STOCK"):
        if not isinstance(account_id, str):
            raise TypeError("account_id must be a str")
        wanted = account_type.upper()
        for code, name in xtconstant.ACCOUNT_TYPE_DICT.items():
            if name == wanted:
                self.account_type = code
                self.account_id = account_id
                return
        raise ValueError(f"unsupported account type {account_type!r}")


def _record(name, params, account_type=xtconstant.SECURITY_ACCOUNT):
    """A class whose positional/keyword constructor parameters become attributes."""
    names = params.split()

    def __init__(self, *args, **kwargs):
        if account_type is not None:
            self.account_type = account_type
        values = dict(zip(names, args, strict=False))
        values.update(kwargs)
        for field in names:
            setattr(self, field, values.get(field))

    def __repr__(self):
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in names)
        return f"{name}({inner})"

    return type(name, (), {"__init__": __init__, "__repr__": __repr__, "_fields": names})


XtAsset = _record("XtAsset", "account_id cash frozen_cash market_value total_asset fetch_balance")
XtOrder = _record(
    "XtOrder",
    "account_id stock_code order_id order_sysid order_time order_type order_volume price_type "
    "price traded_volume traded_price order_status status_msg strategy_name order_remark "
    "direction offset_flag secu_account instrument_name",
)
XtTrade = _record(
    "XtTrade",
    "account_id stock_code order_type traded_id traded_time traded_price traded_volume "
    "traded_amount order_id order_sysid strategy_name order_remark direction offset_flag "
    "commission secu_account instrument_name",
)
XtPosition = _record(
    "XtPosition",
    "account_id stock_code volume can_use_volume open_price market_value frozen_volume "
    "on_road_volume yesterday_volume avg_price direction last_price profit_rate secu_account "
    "instrument_name",
)
XtOrderError = _record(
    "XtOrderError", "account_id order_id error_id error_msg strategy_name order_remark"
)
XtCancelError = _record(
    "XtCancelError", "account_id order_id market order_sysid error_id error_msg"
)
XtOrderResponse = _record(
    "XtOrderResponse", "account_id order_id strategy_name order_remark error_msg seq"
)
XtCancelOrderResponse = _record(
    "XtCancelOrderResponse", "account_id cancel_result order_id order_sysid seq error_msg"
)
XtAccountStatus = _record("XtAccountStatus", "account_id account_type status", account_type=None)
# In xtquant this one comes from the binary client; same attribute names.
XtAccountInfo = _record(
    "XtAccountInfo",
    "account_type account_id broker_type platform_id account_classification login_status",
    account_type=None,
)
