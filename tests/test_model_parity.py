"""Models and enums carry xtquant 250807's names and integer codes.

The expected values are written out here from xtquant's ``xtconstant``/``xttype`` so that the
test pins them offline; ``tests/test_compat_*`` additionally compares against the reference
sources when they are available.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

import msgspec
import pytest

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
    AccountReport,
    Asset,
    CancelError,
    Order,
    OrderError,
    Position,
    QuoteBatch,
    Tick,
    Trade,
)


def test_order_status_codes_are_xtquants() -> None:
    assert {s.name: int(s) for s in OrderStatus} == {
        "UNREPORTED": 48,
        "WAIT_REPORTING": 49,
        "REPORTED": 50,
        "REPORTED_CANCEL": 51,
        "PARTSUCC_CANCEL": 52,
        "PART_CANCEL": 53,
        "CANCELED": 54,
        "PART_SUCC": 55,
        "SUCCEEDED": 56,
        "JUNK": 57,
        "UNKNOWN": 255,
    }


def test_terminal_states_are_part_cancel_canceled_succeeded_and_junk() -> None:
    assert {s for s in OrderStatus if s.is_terminal} == {
        OrderStatus.PART_CANCEL,
        OrderStatus.CANCELED,
        OrderStatus.SUCCEEDED,
        OrderStatus.JUNK,
    }


def test_order_and_price_type_codes_are_xtquants() -> None:
    assert (OrderType.STOCK_BUY, OrderType.STOCK_SELL) == (23, 24)
    assert (PriceType.LATEST_PRICE, PriceType.FIX_PRICE) == (5, 11)
    assert PriceType.MARKET_SH_CONVERT_5_CANCEL == 42
    assert PriceType.MARKET_SH_CONVERT_5_LIMIT == 43
    assert PriceType.MARKET_PEER_PRICE_FIRST == 44
    assert PriceType.MARKET_MINE_PRICE_FIRST == 45
    assert PriceType.MARKET_SZ_INSTBUSI_RESTCANCEL == 46
    assert PriceType.MARKET_SZ_CONVERT_5_CANCEL == 47
    assert PriceType.MARKET_SZ_FULL_OR_CANCEL == 48


def test_account_direction_and_offset_codes_are_xtquants() -> None:
    assert (AccountType.FUTURE, AccountType.STOCK, AccountType.CREDIT) == (1, 2, 3)
    assert (Direction.LONG, Direction.SHORT) == (48, 49)
    assert (OffsetFlag.OPEN, OffsetFlag.CLOSE, OffsetFlag.LOCALFORCECLOSE) == (48, 49, 54)
    assert (AccountStatusCode.INVALID, AccountStatusCode.OK, AccountStatusCode.CLOSED) == (
        -1,
        0,
        6,
    )


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (
            Order,
            "account_type account_id stock_code order_id order_sysid order_time order_type "
            "order_volume price_type price traded_volume traded_price order_status status_msg "
            "strategy_name order_remark direction offset_flag secu_account instrument_name",
        ),
        (
            Trade,
            "account_type account_id stock_code order_type traded_id traded_time traded_price "
            "traded_volume traded_amount order_id order_sysid strategy_name order_remark "
            "direction offset_flag commission secu_account instrument_name",
        ),
        (
            Position,
            "account_type account_id stock_code volume can_use_volume open_price market_value "
            "frozen_volume on_road_volume yesterday_volume avg_price direction last_price "
            "profit_rate secu_account instrument_name",
        ),
        (
            Asset,
            "account_type account_id cash frozen_cash market_value total_asset fetch_balance",
        ),
        (
            OrderError,
            "account_type account_id order_id error_id error_msg strategy_name order_remark",
        ),
        (
            CancelError,
            "account_type account_id order_id market order_sysid error_id error_msg",
        ),
    ],
)
def test_trader_models_have_xttypes_attribute_names(model: type, fields: str) -> None:
    assert set(fields.split()) <= set(model.__struct_fields__)


def test_tick_has_xtquants_tick_fields_and_a_five_level_book() -> None:
    wanted = [
        "time",
        "lastPrice",
        "open",
        "high",
        "low",
        "lastClose",
        "amount",
        "volume",
        "pvolume",
        "stockStatus",
        "openInt",
        "lastSettlementPrice",
        "askPrice",
        "bidPrice",
        "askVol",
        "bidVol",
        "transactionNum",
    ]
    assert set(wanted) <= set(Tick.__struct_fields__)


def test_a_report_round_trips_through_msgpack_keeping_its_item_type() -> None:
    report = AccountReport(
        "acc",
        7,
        Trade(
            account_id="acc",
            stock_code="600000.SH",
            order_type=23,
            traded_id="t1",
            traded_time=1,
            traded_price=10.0,
            traded_volume=100,
            traded_amount=1000.0,
            order_id=3,
        ),
    )
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(report), type=AccountReport)
    assert decoded == report
    assert isinstance(decoded.item, Trade)


def test_a_quote_batch_round_trips_with_its_book() -> None:
    tick = Tick(
        stock_code="600000.SH",
        time=1,
        lastPrice=10.0,
        open=9.9,
        high=10.1,
        low=9.8,
        lastClose=9.95,
        amount=1e6,
        volume=1000,
        askPrice=[10.01, 10.02, 10.03, 10.04, 10.05],
        bidPrice=[10.0, 9.99, 9.98, 9.97, 9.96],
        askVol=[100] * 5,
        bidVol=[200] * 5,
    )
    batch = QuoteBatch(1, "tick", [tick])
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(batch), type=QuoteBatch) == batch


# xtquant's own spellings that break its pattern (the typed enums keep the regular name).
IRREGULAR = {
    "ACCOUNT_STATUS_STATUSING": "ACCOUNT_STATUSING",
    "OFFSET_FLAG_CLOSEYESTERDAY": "OFFSET_FLAG_ClOSEYESTERDAY",
}


@pytest.mark.parametrize(
    ("enum", "spell"),
    [
        (AccountType, lambda n: "SECURITY_ACCOUNT" if n == "STOCK" else f"{n}_ACCOUNT"),
        (OrderType, lambda n: n),
        (PriceType, lambda n: n),
        (OrderStatus, lambda n: f"ORDER_{n}"),
        (Direction, lambda n: f"DIRECTION_FLAG_{n}"),
        (OffsetFlag, lambda n: f"OFFSET_FLAG_{n}"),
        (AccountStatusCode, lambda n: f"ACCOUNT_STATUS_{n}"),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_every_typed_constant_equals_the_shims_xtconstant_of_the_same_name(
    enum: type[IntEnum], spell: Callable[[str], str]
) -> None:
    from qmtkit.compat import xtconstant

    assert {m.name: int(m) for m in enum} == {
        m.name: getattr(xtconstant, IRREGULAR.get(spell(m.name), spell(m.name))) for m in enum
    }
