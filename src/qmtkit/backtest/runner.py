"""Run a strategy as a backtest and get its ``BacktestResult``.

Two forms, one engine (``backends.replay``):

* **per bar** — ``strategy(qk, account)`` is ordinary async qmtkit code (subscriptions, orders,
  ``await order``, ``qk.sleep``); it runs as a task beside the replay and is cancelled once the
  replay has passed its end (if it has not returned by then);
* **cross-sectional** — ``on_bars(frame, ctx)`` is called at each timestamp's close with every
  code's bar in one Polars frame; it orders through ``ctx`` (the same broker, synchronously) and
  may not wait for fills (the replay is waiting for it).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.backends.replay import BacktestSpec, ReplayBackend
from qmtkit.backtest.results import BacktestResult
from qmtkit.client import Account, Client, connect
from qmtkit.constants import OrderType, PriceType
from qmtkit.errors import InvalidArgument
from qmtkit.messages import SubmitOrder
from qmtkit.models import OrderResponse
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.guard import RiskGuard
from qmtkit.risk.limits import RiskLimits

Strategy = Callable[[Client, Account], Awaitable[None]]
_BUY = int(OrderType.STOCK_BUY)
_SELL = int(OrderType.STOCK_SELL)
_FIX_PRICE = int(PriceType.FIX_PRICE)
ProgressFn = Callable[[int, int, int], None]


class BarContext:
    """What a cross-sectional callback trades through: one account of the backtest's broker."""

    def __init__(
        self, backend: ReplayBackend, account_id: str, risk: RiskGuard | None = None
    ) -> None:
        self._backend = backend
        self.account_id = account_id
        self._risk = risk

    def now(self) -> int:
        """The virtual time, Unix ms."""
        return self._backend.clock.now_ms()

    def position(self, code: str) -> int:
        """Shares of ``code`` held (0 if none)."""
        return self._backend.broker.holding(self.account_id, code)[0]

    def sellable(self, code: str) -> int:
        """Shares of ``code`` that may be sold now (T+1)."""
        return self._backend.broker.holding(self.account_id, code)[1]

    def open_orders(self, code: str | None = None) -> int:
        """How many of the account's orders (on ``code``, if given) can still trade."""
        orders = self._backend.broker.orders(self.account_id, cancelable_only=True)
        return sum(1 for o in orders if code is None or o.stock_code == code)

    def cash(self) -> float:
        """Available cash (CNY)."""
        return self._backend.broker.asset(self.account_id).cash

    def order(
        self,
        code: str,
        side: int,
        volume: int,
        price: float,
        price_type: int = _FIX_PRICE,
    ) -> OrderResponse:
        """Place one order (``side``: ``OrderType.STOCK_BUY``/``STOCK_SELL``) through the broker."""
        req = SubmitOrder(self.account_id, code, side, volume, price_type, price)
        if self._risk is not None:
            # The same risk chain as the client's orders (docs/risk.md).
            return self._risk.submit_now(req, self._backend.submit_now)
        return self._backend.submit_now(req)

    def buy(self, code: str, volume: int, price: float) -> OrderResponse:
        """A limit buy."""
        return self.order(code, _BUY, volume, price)

    def sell(self, code: str, volume: int, price: float) -> OrderResponse:
        """A limit sell."""
        return self.order(code, _SELL, volume, price)

    def order_many(
        self,
        codes: Column,
        sides: int | Column,
        volumes: int | Column,
        prices: float | Column,
        price_types: int | Column = _FIX_PRICE,
    ) -> list[OrderResponse]:
        """Place ``len(codes)`` orders in one call, one per code, in order: the same as
        ``order(codes[i], sides[i], volumes[i], prices[i], price_types[i])`` for each ``i`` in
        turn (the same ids, responses, refusals and recorded rows), with the step's lookups
        done once. ``sides``, ``volumes``, ``prices`` and ``price_types`` are each one value
        for all or a column as long as ``codes`` (a list, tuple, 1-d numpy array or Polars
        Series); a column of another length, or ``codes`` not a column, is an
        ``InvalidArgument``. Each order's values are judged as ``order`` judges them: a bad
        one is refused (in the result's orders), not raised."""
        names = codes if type(codes) is list else _codes(codes)
        n = len(names)
        reqs = list(
            map(
                SubmitOrder,
                repeat(self.account_id, n),
                names,
                _column("sides", sides, n),
                _column("volumes", volumes, n),
                _column("price_types", price_types, n),
                _column("prices", prices, n),
            )
        )
        risk = self._risk
        if risk is not None:
            submit = self._backend.submit_now
            return [risk.submit_now(req, submit) for req in reqs]
        return self._backend.submit_many(reqs)

    def buy_many(
        self, codes: Column, volumes: int | Column, prices: float | Column
    ) -> list[OrderResponse]:
        """Limit buys of ``codes``, as ``order_many`` places them."""
        return self.order_many(codes, _BUY, volumes, prices)

    def sell_many(
        self, codes: Column, volumes: int | Column, prices: float | Column
    ) -> list[OrderResponse]:
        """Limit sells of ``codes``, as ``order_many`` places them."""
        return self.order_many(codes, _SELL, volumes, prices)


#: A column of per-order values: one per code.
Column = Sequence[Any] | npt.NDArray[Any] | pl.Series


def _values(name: str, values: object) -> list[Any] | None:
    """A column's values as a list; None if ``values`` is not a column."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise InvalidArgument(f"{name} must be one-dimensional, got shape {values.shape}")
        out: list[Any] = values.tolist()
        return out
    if isinstance(values, pl.Series):
        return values.to_list()
    if isinstance(values, (list, tuple, range)):
        return values if type(values) is list else list(values)
    return None


def _codes(codes: object) -> list[Any]:
    """The codes of a batch, one per order."""
    out = _values("codes", codes)
    if out is None:
        raise InvalidArgument(
            f"codes must be a list, tuple, numpy array or Polars Series, got {codes!r}"
        )
    return out


def _column(name: str, values: object, n: int) -> Iterable[Any]:
    """``n`` per-order values: a column's (of length ``n``), or one value ``n`` times."""
    kind = type(values)
    if kind is list:
        out: list[Any] | None = values  # type: ignore[assignment]
    elif kind is int or kind is float:  # one value for all: the usual volume
        return repeat(values, n)
    else:
        out = _values(name, values)
        if out is None:
            return repeat(values, n)
    assert out is not None
    if len(out) != n:
        raise InvalidArgument(f"{name} has {len(out)} values for {n} codes")
    return out


async def run_backtest(
    spec: BacktestSpec | str,
    strategy: Strategy | None = None,
    *,
    on_bars: Callable[[pl.DataFrame, BarContext], Awaitable[None] | None] | None = None,
    account: str = "backtest",
    progress: ProgressFn | None = None,
    home: str | Path | None = None,
    backend_hook: Callable[[ReplayBackend], None] | None = None,
    risk: RiskConfig | RiskLimits | bool | None = None,
    batch: int = 1,
) -> BacktestResult:
    """Replay ``spec`` (a ``BacktestSpec`` or a ``backtest://`` URL) and return the result.

    ``progress(step, steps, day)`` is called after each step; ``backend_hook`` gets the
    ``ReplayBackend`` before it opens (to watch it, or to register more callbacks).
    ``risk`` is ``connect``'s: the pre-trade risk chain judges both forms' orders as it would
    live (``None``: ``<home>/risk.toml`` if any), and its refusals are in the result's orders.
    ``batch=N`` calls ``on_bars`` once per N timestamps (and at each day's last) with their
    records in one frame, several rows per code (a tick replay's fast path); its orders are
    placed at the last timestamp's close.
    """
    if isinstance(spec, str):
        spec = BacktestSpec.from_url(spec)
    if not isinstance(spec, BacktestSpec):
        raise InvalidArgument(f"spec must be a BacktestSpec or a backtest:// URL, got {spec!r}")
    if strategy is None and on_bars is None:
        raise InvalidArgument("give a strategy(qk, account), an on_bars(frame, ctx), or both")
    for name, fn in (("strategy", strategy), ("on_bars", on_bars)):
        if fn is not None and not callable(fn):
            raise InvalidArgument(f"{name} must be callable, got {fn!r}")
    if on_bars is None and batch != 1:
        raise InvalidArgument(f"batch={batch!r} batches on_bars calls: give an on_bars too")
    if home is not None:
        spec.home = str(home)
    backend = ReplayBackend(spec)
    if progress is not None:
        backend.on_progress(progress)
    if backend_hook is not None:
        backend_hook(backend)
    async with connect(backend=backend, home=spec.home, risk=risk) as qk:
        # The fast form alone, with no risk chain to feed, needs no report stream in the client.
        quiet = strategy is None and qk.risk is None
        acct = None if quiet else await qk.account(account)
        if acct is None:
            backend.open_account_quietly(account)
        if on_bars is not None:
            ctx = BarContext(backend, account, qk.risk)
            callback = on_bars

            def call(frame: pl.DataFrame) -> Awaitable[None] | None:
                return callback(frame, ctx)

            backend.on_frame(call, batch=batch)
        async with anyio.create_task_group() as tg:
            if strategy is not None and acct is not None:
                tg.start_soon(_guarded, strategy, qk, acct)
            await backend.finished.wait()
            tg.cancel_scope.cancel()
    result: BacktestResult = backend.result(account)
    return result


async def _guarded(strategy: Strategy, qk: Client, account: Account) -> None:
    result: Any = strategy(qk, account)
    if inspect.isawaitable(result):
        await result


__all__ = ["BarContext", "run_backtest"]
