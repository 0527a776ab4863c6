"""``buy``/``sell`` with a limit price take a shorter path to the request (``_limit_request``):
it must make the same request as ``order()``'s checks (``_order_request``) and refuse the same
arguments with the same error, whether the code's canonical text is remembered or not."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

import qmtkit
import qmtkit.client as client_module
from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.mock import MockBackend
from qmtkit.constants import OrderType, PriceType
from qmtkit.models import OrderResponse

CODES: list[object] = ["600000.SH", "600000.sh", " 000001.SZ", "600000", 600000, None, ["x"]]
VOLUMES: list[object] = [100, 1, 0, -100, 100.0, True, np.int64(100), "100"]
PRICES: list[object] = [10.5, 0.01, 0.0, -1.0, math.nan, math.inf, 10, np.float64(9.87), "10", True]
NAMES: list[object] = ["", "strat", 5, None]
_BUY, _SELL = int(OrderType.STOCK_BUY), int(OrderType.STOCK_SELL)
_FIX = int(PriceType.FIX_PRICE)


def outcome(make: Callable[[], SubmitOrder]) -> object:
    """The request made, or the error's type and text."""
    try:
        return make()
    except Exception as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("remembered", [False, True])
async def test_limit_request_equals_order_request_on_every_argument(remembered: bool) -> None:
    backend = MockBackend(lambda req: OrderResponse(account_id="a", order_id=1))
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account("a")
        compared = 0
        for code, volume, price, name, side in itertools.product(
            CODES, VOLUMES, PRICES, NAMES, (_BUY, _SELL)
        ):
            client_module._CANONICAL.clear()
            if remembered and isinstance(code, str):
                outcome(partial(acct._order_request, code, 23, 100, 11, 1.0))
            fast = outcome(partial(acct._limit_request, code, side, volume, price, name, name))
            full = outcome(
                partial(acct._order_request, code, side, volume, _FIX, price, name, name)
            )
            assert fast == full, (code, volume, price, name, side)
            if isinstance(fast, SubmitOrder):
                assert type(fast.price) is float and type(fast.order_volume) is int
                compared += 1
        assert compared > 0


async def test_buy_and_sell_send_what_order_sends() -> None:
    backend = MockBackend(lambda req: OrderResponse(account_id="a", order_id=1))
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account("a")
        await acct.buy("600000.sh", 200, 10.5, strategy_name="s", remark="r")
        await acct.sell("600000.SH", 100, 9.5)
        await acct.order("600000.SH", 23, 200, 11, 10.5, "s", "r")
        await acct.order("600000.SH", 24, 100, 11, 9.5)
        sent = backend.sent(SubmitOrder)
        assert sent[:2] == sent[2:]
        assert sent[0] == SubmitOrder("a", "600000.SH", 23, 200, 11, 10.5, "s", "r")


def test_remembered_codes_stay_bounded() -> None:
    client_module._CANONICAL.clear()
    for i in range(client_module._CANONICAL_MAX + 5):
        client_module._remember_code(f"{i:06d}", f"{i:06d}.SH")
    assert len(client_module._CANONICAL) <= client_module._CANONICAL_MAX
