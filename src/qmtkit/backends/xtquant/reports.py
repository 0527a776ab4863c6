"""Pure state machine of the xtquant adapter: finding each submission's order id.

Report numbering and the drop of re-sent pushes live in ``qmtkit._resume`` (``Resume.number``).

Nothing here does I/O or knows about threads; the backend feeds events in loop order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qmtkit.backends.base import SubmitOrder
from qmtkit.constants import OrderStatus, PriceType
from qmtkit.models import (
    Order,
    OrderError,
    OrderResponse,
    cut_remark,
)


@dataclass
class Pending:
    """One submitted order waiting for its order id."""

    token: int
    req: SubmitOrder
    xt_seq: int | None = None
    order_id: int | None = None
    error_msg: str = ""
    failure: str = ""
    response_seen: bool = False
    done: bool = False
    finished: bool = False


@dataclass
class Outcome:
    """How a submission ended: an order id (and a refusal text, if refused) or a failure."""

    order_id: int
    error_msg: str = ""
    failure: str = ""


@dataclass
class OrderReconciler:
    """Finds the order id of each ``order_stock_async`` submission, whichever message comes first.

    MiniQMT answers a submission twice: ``on_order_stock_async_response`` (carrying xtquant's
    request seq and the order id) and the first ``on_stock_order`` push (carrying the order id
    but no seq), in either order; a refused order may also come as ``on_order_error`` carrying
    the seq. A submission is resolved by the first of:

    - the response with its seq;
    - an order error with its seq (either may arrive before ``order_stock_async`` returned
      the seq, and is then kept until ``bind_seq``);
    - an order push of a not-yet-known order id whose account, code, side, volume, strategy
      name, remark (as MiniQMT cuts it) and, for limit orders, price match exactly one waiting
      submission. When two waiting submissions look alike, the push is left for the response.

    Each method returns the tokens resolved by that event.
    """

    _next: int = 0
    _pending: dict[int, Pending] = field(default_factory=dict)
    _by_seq: dict[int, int] = field(default_factory=dict)
    _early: dict[int, OrderResponse] = field(default_factory=dict)
    _early_errors: dict[int, OrderError] = field(default_factory=dict)
    _known_ids: set[int] = field(default_factory=set)

    def begin(self, req: SubmitOrder) -> int:
        """Register a submission before it is sent; returns its token."""
        self._next += 1
        self._pending[self._next] = Pending(self._next, req)
        return self._next

    def bind_seq(self, token: int, xt_seq: int) -> list[int]:
        """Record the seq ``order_stock_async`` returned; applies a response that came early."""
        p = self._pending.get(token)
        if p is None:
            return []
        p.xt_seq = xt_seq
        self._by_seq[xt_seq] = token
        woken = []
        early_error = self._early_errors.pop(xt_seq, None)
        if early_error is not None:
            woken += self.on_order_error(early_error, xt_seq)
        early = self._early.pop(xt_seq, None)
        if early is not None:
            woken += self.on_response(early)
        return woken

    def on_response(self, resp: OrderResponse) -> list[int]:
        """An ``on_order_stock_async_response`` (``resp.seq`` is xtquant's seq)."""
        if resp.order_id > 0:
            self._known_ids.add(resp.order_id)
        token = self._by_seq.get(resp.seq)
        if token is None:
            if len(self._early) < 10_000:
                self._early[resp.seq] = resp
            return []
        p = self._pending[token]
        p.response_seen = True
        if p.done:
            if p.finished:
                self._forget(p)
            return []
        p.order_id, p.error_msg, p.done = resp.order_id, resp.error_msg, True
        return [token]

    def on_order_error(self, err: OrderError, xt_seq: int | None) -> list[int]:
        """An ``on_order_error`` push; it resolves a submission when it carries its seq."""
        if xt_seq is None:
            return []
        token = self._by_seq.get(xt_seq)
        if token is None:
            if len(self._early_errors) < 10_000:
                self._early_errors[xt_seq] = err
            return []
        p = self._pending[token]
        if p.done:
            return []
        p.order_id, p.error_msg, p.done = err.order_id, err.error_msg or "order refused", True
        return [token]

    def on_order_push(self, order: Order) -> list[int]:
        """An ``on_stock_order`` push."""
        if order.order_id in self._known_ids:
            return []
        self._known_ids.add(order.order_id)
        matches = [p for p in self._pending.values() if not p.done and _same_order(p.req, order)]
        if len(matches) != 1:
            return []
        p = matches[0]
        p.order_id, p.done = order.order_id, True
        if order.order_status == OrderStatus.JUNK:
            p.error_msg = order.status_msg or "order refused"
        return [p.token]

    def fail_all(self, reason: str) -> list[int]:
        """The link dropped: every waiting submission fails with ``reason``.

        xtquant numbers requests afresh in each session, so every seq binding is forgotten.
        """
        woken = []
        for p in list(self._pending.values()):
            if not p.done:
                p.failure, p.done = reason, True
                woken.append(p.token)
            p.xt_seq = None
            if p.finished:
                self._forget(p)
        self._by_seq.clear()
        self._early.clear()
        self._early_errors.clear()
        return woken

    def outcome(self, token: int) -> Outcome | None:
        """The result of a resolved submission, None while it waits."""
        p = self._pending.get(token)
        if p is None or not p.done:
            return None
        return Outcome(
            order_id=p.order_id if p.order_id is not None else -1,
            error_msg=p.error_msg,
            failure=p.failure,
        )

    def finish(self, token: int) -> None:
        """The submitter is done; forget the submission once its response is consumed too."""
        p = self._pending.get(token)
        if p is None:
            return
        p.done = p.finished = True
        if p.response_seen or p.xt_seq is None or p.failure:
            self._forget(p)

    def _forget(self, p: Pending) -> None:
        self._pending.pop(p.token, None)
        if p.xt_seq is not None:
            self._by_seq.pop(p.xt_seq, None)

    @property
    def waiting(self) -> int:
        """How many submissions are tracked (waiting, or resolved but not yet answered)."""
        return len(self._pending)


def _same_order(req: SubmitOrder, order: Order) -> bool:
    if (
        order.account_id != req.account_id
        or order.stock_code != req.stock_code
        or order.order_type != req.order_type
        or order.order_volume != req.order_volume
        or order.strategy_name != req.strategy_name
        or order.order_remark != cut_remark(req.order_remark)
    ):
        return False
    if req.price_type == PriceType.FIX_PRICE:
        return math.isclose(order.price, req.price, abs_tol=1e-6)
    return True
