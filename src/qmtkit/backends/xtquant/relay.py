"""The callback object registered with ``XtQuantTrader``; it runs on xtquant's threads.

Each hook converts the ``Xt*`` object on the calling thread and posts the model to the event
loop through ``post`` (a ``LoopInbox``); nothing here blocks or touches loop state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qmtkit.backends.xtquant.convert import (
    account_status_of,
    asset_of,
    cancel_error_of,
    cancel_response_of,
    order_error_of,
    order_of,
    order_response_of,
    position_of,
    trade_of,
)
from qmtkit.models import CancelResponse, OrderResponse, TradeReportItem

log = logging.getLogger("qmtkit.backends.xtquant")


@dataclass(frozen=True)
class RelayTargets:
    """Where a relay sends things: ``post(fn, *args)`` queues ``fn(*args)`` on the loop."""

    post: Callable[..., None]
    item: Callable[[TradeReportItem, int | None], None]
    disconnected: Callable[[], None]
    order_response: Callable[[OrderResponse], None]
    cancel_response: Callable[[CancelResponse], None]


class TraderRelay:
    """The hooks of ``XtQuantTraderCallback``, forwarding converted models to the loop."""

    def __init__(self, targets: RelayTargets) -> None:
        self._to = targets

    def _forward(self, convert: Callable[[object], Any], obj: object, *then: Any) -> None:
        try:
            model = convert(obj)
        except Exception:
            log.exception("cannot convert xtquant callback object %r", obj)
            return
        self._to.post(then[0], model, *then[1:])

    def on_connected(self) -> None:
        """MiniQMT connected (informational; ``connect()``'s result is what counts)."""

    def on_disconnected(self) -> None:
        """MiniQMT dropped the link."""
        self._to.post(self._to.disconnected)

    def on_account_status(self, status: object) -> None:
        """An account changed state."""
        self._forward(account_status_of, status, self._to.item, None)

    def on_stock_asset(self, asset: object) -> None:
        """Cash changed."""
        self._forward(asset_of, asset, self._to.item, None)

    def on_stock_order(self, order: object) -> None:
        """An order changed."""
        self._forward(order_of, order, self._to.item, None)

    def on_stock_trade(self, trade: object) -> None:
        """A fill."""
        self._forward(trade_of, trade, self._to.item, None)

    def on_stock_position(self, position: object) -> None:
        """A holding changed."""
        self._forward(position_of, position, self._to.item, None)

    def on_order_error(self, order_error: object) -> None:
        """An order was refused; xtquant's raw push also carries the request seq."""
        seq = getattr(order_error, "seq", None)
        self._forward(
            order_error_of, order_error, self._to.item, seq if isinstance(seq, int) else None
        )

    def on_cancel_error(self, cancel_error: object) -> None:
        """A cancel was refused."""
        self._forward(cancel_error_of, cancel_error, self._to.item, None)

    def on_order_stock_async_response(self, response: object) -> None:
        """The answer to ``order_stock_async``."""
        self._forward(order_response_of, response, self._to.order_response)

    def on_cancel_order_stock_async_response(self, response: object) -> None:
        """The answer to ``cancel_order_stock_async``."""
        self._forward(cancel_response_of, response, self._to.cancel_response)


def relay_class(base: type[Any]) -> type[Any]:
    """A subclass of xtquant's ``XtQuantTraderCallback`` (``base``) with ``TraderRelay``'s hooks.

    Built at ``open()`` because xtquant is imported only then.
    """
    return type("QmtkitTraderCallback", (TraderRelay, base), {})
