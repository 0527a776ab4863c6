"""What a backtest keeps for its result: orders, fills, cancels and the daily book of each account.

The recorder sees every account report as the broker emits it (with the virtual time) and a
snapshot of each account at every close; ``result()`` turns them into the Polars frames of a
``qmtkit.backtest.results.BacktestResult``. Times are naive Beijing local time, milliseconds.
"""

from __future__ import annotations

import datetime as dt
import importlib
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.backends.replay import fresh
from qmtkit.backends.sim.accounts import VALUE_SCALE, round2
from qmtkit.backends.sim.dayclose import DayLog, day_values
from qmtkit.backends.sim.marks import HeldArrays
from qmtkit.constants import OrderStatus, OrderType
from qmtkit.errors import InvalidArgument
from qmtkit.messages import SubmitOrder
from qmtkit.models import (
    AccountReport,
    Asset,
    Order,
    OrderError,
    Trade,
    TradeReportItem,
)

_BUY: Final = int(OrderType.STOCK_BUY)
_JUNK: Final = int(OrderStatus.JUNK)
_BEIJING_MS: Final = 8 * 3_600_000
TIME: Final = pl.Datetime("ms")

ORDER_COLUMNS: Final = {
    "time": TIME,
    "order_id": pl.Int64,
    "code": pl.String,
    "side": pl.String,
    "price": pl.Float64,
    "volume": pl.Int64,
    "price_type": pl.Int64,
    "status": pl.Int64,
    "traded_volume": pl.Int64,
    "traded_price": pl.Float64,
    "error": pl.String,
    "strategy": pl.String,
}
TRADE_COLUMNS: Final = {
    "time": TIME,
    "order_id": pl.Int64,
    "code": pl.String,
    "side": pl.String,
    "price": pl.Float64,
    "volume": pl.Int64,
    "amount": pl.Float64,
    "fee": pl.Float64,
}
CANCEL_COLUMNS: Final = {"time": TIME, "order_id": pl.Int64, "code": pl.String, "ok": pl.Boolean}
POSITION_COLUMNS: Final = {
    "date": pl.Date,
    "code": pl.String,
    "volume": pl.Int64,
    "can_use_volume": pl.Int64,
    "close": pl.Float64,
    "market_value": pl.Float64,
}
EQUITY_COLUMNS: Final = {
    "date": pl.Date,
    "cash": pl.Float64,
    "frozen_cash": pl.Float64,
    "market_value": pl.Float64,
    "total": pl.Float64,
    "benchmark": pl.Float64,
}


def local_ms(ms: int) -> int:
    """Unix ms to naive Beijing-local ms (what the result frames hold)."""
    return ms + _BEIJING_MS


_EPOCH: Final = dt.date(1970, 1, 1)


def _epoch_day(day: int) -> int:
    """``YYYYMMDD`` to days since 1970-01-01 (what a Polars ``Date`` holds)."""
    return (dt.date(day // 10000, day // 100 % 100, day % 100) - _EPOCH).days


#: ``to_fen`` rounds in one vector step where the amount in fen is below this (there a
#: product's rounding error, at most half a unit in the last place, is below 2**-21 fen).
_FEN_EXACT_BELOW: Final = float(2**32)
_TIE_MARGIN: Final = 1e-6


def to_fen(amounts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``round(x, 2)`` of every amount, the very floats Python's ``round`` gives.

    Python rounds the exact binary value to the nearest cent (ties to even) and returns the
    float nearest that decimal. Away from a tie, the fen count nearest ``x * 100`` is that
    cent, and dividing the whole count by 100 is correctly rounded too; amounts within
    ``_TIE_MARGIN`` fen of a tie, or too large for that, go through ``round`` one by one.
    """
    fen = amounts * 100.0
    whole = np.rint(fen)
    out: npt.NDArray[np.float64] = whole / 100.0
    doubtful = (np.abs(fen - np.floor(fen) - 0.5) <= _TIE_MARGIN) | ~(
        np.abs(fen) < _FEN_EXACT_BELOW
    )
    for i in np.flatnonzero(doubtful).tolist():
        out[i] = round(float(amounts[i]), 2)
    return out


@dataclass(slots=True)
class _KeyedDay:
    """One close's rows given by code number (``names[key]``), as the broker's own arrays."""

    date: int
    names: list[str]
    rows: HeldArrays


class _Logged:
    """The closes of one account kept by a ``DayLog`` (``sim.dayclose``): their dates and
    benchmark closes here, their rows and values made from the log when first asked for."""

    __slots__ = ("benches", "dates", "log", "made", "names")

    def __init__(self, log: DayLog, names: list[str]) -> None:
        self.log = log
        self.names = names  # codes by the log's numbers
        self.dates: list[int] = []
        self.benches: list[float | None] = []
        #: (closes, codes, shares, sellable, prices, rows per close, equity rows) once made
        self.made: tuple[Any, ...] | None = None

    def build(self) -> tuple[Any, ...]:
        """The run's positions columns (codes by number), rows per close and equity rows."""
        n = len(self.dates)
        if self.made is not None and self.made[0] == n:
            return self.made
        log = self.log
        rows = log.rows(n)
        prices = log.row_prices(rows)
        counts = rows.counts.tolist()
        equity = []
        cash, frozen = log.cash, log.frozen
        for j, value in enumerate(day_values(rows, prices)):
            # Broker._asset_report's figures, from the close's cash and exact value.
            mv = value / VALUE_SCALE
            held = cash[j] + frozen[j]
            total = round2(held / 100 + mv)
            equity.append(
                (self.dates[j], cash[j] / 100, frozen[j] / 100, round2(mv), total, self.benches[j])
            )
        self.made = (n, rows.keys, rows.volume, rows.usable, prices, counts, equity)
        return self.made


class _Positions:
    """Daily holdings without a Python object per value: rows given by code name in typed
    arrays (codes by number into ``names``), rows given by code number (``add_keyed``) as
    the close's own numpy columns, kept in recording order (``_parts``)."""

    def __init__(self) -> None:
        self.dates = array("i")  # days since 1970-01-01
        self.codes = array("i")  # index into ``names``
        self.volumes = array("q")
        self.usable = array("q")
        self.closes = array("d")
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        #: In recording order: a run ``(first, end)`` of the typed arrays' rows, or a close
        #: recorded by code number.
        self._parts: list[tuple[int, int] | _KeyedDay | _Logged] = []

    def _named(self, before: int) -> None:
        """Rows from ``before`` on were added to the typed arrays: extend or start a run."""
        end = len(self.codes)
        parts = self._parts
        last = parts[-1] if parts else None
        if isinstance(last, tuple) and last[1] == before:
            parts[-1] = (last[0], end)
        elif end > before:
            parts.append((before, end))

    def add(self, date: int, held: list[tuple[str, int, int, float]]) -> None:
        """One day's rows: (code, shares, sellable shares, last price) with shares > 0."""
        # A column at a time (no transpose of the rows: over a whole market a day holds
        # thousands of them, and ``zip(*held)`` was most of the snapshot's cost).
        before = len(self.codes)
        ids = self._ids
        names = self.names
        codes = self.codes
        for h in held:
            i = ids.get(h[0])
            if i is None:
                i = ids[h[0]] = len(names)
                names.append(h[0])
            codes.append(i)
        self.dates.extend(array("i", [date]) * len(held))
        self.volumes.extend([h[1] for h in held])
        self.usable.extend([h[2] for h in held])
        self.closes.extend([h[3] for h in held])
        self._named(before)

    def add_columns(
        self,
        date: int,
        codes: list[str],
        volumes: list[int],
        usable: list[int],
        closes: list[float],
    ) -> None:
        """``add`` for rows given as columns (shares > 0), as the broker's day end gives them."""
        before = len(self.codes)
        ids = self._ids
        numbers = list(map(ids.get, codes))
        if None in numbers:
            names = self.names
            for j, code in enumerate(codes):
                if numbers[j] is None:
                    i = ids.get(code)  # listed twice in one day: a new name once only
                    if i is None:
                        i = ids[code] = len(names)
                        names.append(code)
                    numbers[j] = i
        self.codes.extend(numbers)  # type: ignore[arg-type]  # no None left
        self.dates.extend(array("i", [date]) * len(codes))
        self.volumes.extend(volumes)
        self.usable.extend(usable)
        self.closes.extend(closes)
        self._named(before)

    def add_keyed(self, date: int, names: list[str], rows: HeldArrays) -> None:
        """``add_columns`` for codes given by number (``names[key]``) and numpy columns: the
        broker's day end of an account marked as columns (``sim.marks``), kept as they are
        (they are the mark's own copies; the frame is made from them at the end)."""
        if len(rows.keys):
            self._parts.append(_KeyedDay(date, names, rows))

    def add_logged(self, run: _Logged) -> None:
        """The rows of a run of logged closes (made when the frame is)."""
        self._parts.append(run)

    def frame(self) -> pl.DataFrame:
        """The ``positions`` frame (``POSITION_COLUMNS``)."""

        def column(values: array[Any], dtype: Any) -> npt.NDArray[Any]:
            # A copy: a view would keep the array from growing if recording went on.
            out: npt.NDArray[Any] = np.frombuffer(values, dtype=dtype).copy()
            return out

        parts = self._parts
        if all(type(p) is tuple for p in parts):
            all_names = self.names
            codes = column(self.codes, np.int32)
            dates = column(self.dates, np.int32)
            volumes = column(self.volumes, np.int64)
            usable = column(self.usable, np.int64)
            closes = column(self.closes, np.float64)
        else:
            # Each name list the keyed rows number into follows the named rows' names: a
            # keyed row's code is its key past that list's start.
            all_names = list(self.names)
            start_of: dict[int, int] = {}
            named: tuple[npt.NDArray[Any], ...] = (
                np.frombuffer(self.codes, dtype=np.int32),
                np.frombuffer(self.dates, dtype=np.int32),
                np.frombuffer(self.volumes, dtype=np.int64),
                np.frombuffer(self.usable, dtype=np.int64),
                np.frombuffer(self.closes, dtype=np.float64),
            )
            pieces: list[list[npt.NDArray[Any]]] = [[], [], [], []]
            days: list[int] = []
            counts: list[int] = []
            for part in parts:
                if isinstance(part, tuple):
                    a, b = part
                    for piece, col in zip(pieces, (named[0], *named[2:]), strict=True):
                        piece.append(col[a:b])
                    days.extend(named[1][a:b].tolist())
                    counts.extend([1] * (b - a))
                    continue
                start = start_of.get(id(part.names))
                if start is None:
                    start = start_of[id(part.names)] = len(all_names)
                    all_names.extend(part.names)
                if isinstance(part, _Logged):
                    _, keys, volume, usable, prices, per_close, _ = part.build()
                    pieces[0].append(keys if start == 0 else keys + start)
                    pieces[1].append(volume)
                    pieces[2].append(usable)
                    pieces[3].append(prices)
                    days.extend(part.dates)
                    counts.extend(per_close)
                    continue
                rows = part.rows
                pieces[0].append(rows.keys if start == 0 else rows.keys + start)
                pieces[1].append(rows.volume)
                pieces[2].append(rows.usable)
                pieces[3].append(rows.close)
                days.append(part.date)
                counts.append(len(rows.keys))
            codes = np.concatenate(pieces[0]).astype(np.uint32)
            dates = np.repeat(np.asarray(days, dtype=np.int32), counts)
            volumes = np.concatenate(pieces[1]).astype(np.int64, copy=False)
            usable = np.concatenate(pieces[2]).astype(np.int64, copy=False)
            closes = np.concatenate(pieces[3]).astype(np.float64, copy=False)
        names = pl.Series("code", all_names, dtype=pl.String)
        index = pl.Series("code", codes, dtype=pl.UInt32)
        return pl.DataFrame(
            {
                "date": pl.Series("date", dates).cast(pl.Date),
                "code": names.gather(index),
                "volume": pl.Series("volume", volumes),
                "can_use_volume": pl.Series("can_use_volume", usable),
                "close": pl.Series("close", closes),
                # A holding's market value is the broker's own: shares x last price, to the fen.
                "market_value": pl.Series(
                    "market_value", to_fen(volumes.astype(np.float64) * closes)
                ),
            }
        )


#: An order's row in ``_Book.order_rows``: what its first report fixes (time, id, volume,
#: price type, side, strategy), then what its later reports change (``_ORDER_LATER``, at
#: ``_LATER_AT``): code, price, status, traded volume and price. Strings are numbers into
#: ``Recorder``'s names; the side is 1 for a buy.
_ORDER_ROW: Final = struct.Struct("<qqqqiiidqqd")
_ORDER_LATER: Final = struct.Struct("<idqqd")
_LATER_AT: Final = 40
_ORDER_DTYPE: Final = np.dtype(
    [
        ("time", "<i8"),
        ("order_id", "<i8"),
        ("volume", "<i8"),
        ("price_type", "<i8"),
        ("side", "<i4"),
        ("strategy", "<i4"),
        ("code", "<i4"),
        ("price", "<f8"),
        ("status", "<i8"),
        ("traded_volume", "<i8"),
        ("traded_price", "<f8"),
    ]
)
#: A fill's row in ``_Book.trade_rows`` (``TRADE_COLUMNS``' order; code and side as numbers).
_TRADE_ROW: Final = struct.Struct("<qqiidqdd")
_TRADE_DTYPE: Final = np.dtype(
    [
        ("time", "<i8"),
        ("order_id", "<i8"),
        ("code", "<i4"),
        ("side", "<i4"),
        ("price", "<f8"),
        ("volume", "<i8"),
        ("amount", "<f8"),
        ("fee", "<f8"),
    ]
)
_SIDES: Final = ("sell", "buy")


@dataclass
class _Book:
    """One account's recording. Orders and fills are packed rows (no Python object per
    order: a whole market makes ~775 k of each, and reading them back as objects scattered
    over the heap was most of the result frames' cost)."""

    #: Order id -> its row number in ``order_rows`` (each order is one row, its latest state).
    order_ids: dict[int, int] = field(default_factory=dict)
    order_rows: bytearray = field(default_factory=bytearray)
    #: Row number -> the error text of an order refused (the only column mostly empty).
    errors: dict[int, Any] = field(default_factory=dict)
    trade_rows: bytearray = field(default_factory=bytearray)
    #: The daily holdings as typed columns (a backtest holds a row per held code per day:
    #: rows, or lists of Python numbers, were slow and most of a long run's memory).
    positions: _Positions = field(default_factory=lambda: _Positions())
    #: A row per close; None for a logged close (its row is made from the log: ``logged``).
    equity: list[tuple[Any, ...] | None] = field(default_factory=list)
    logged: list[_Logged] = field(default_factory=list)


@dataclass
class Frames:
    """The five frames of a backtest, for when ``BacktestResult`` is not available."""

    orders: pl.DataFrame
    trades: pl.DataFrame
    cancels: pl.DataFrame
    positions: pl.DataFrame
    equity: pl.DataFrame
    initial_cash: float
    meta: dict[str, str]


class Recorder:
    """Collects a backtest's reports and daily snapshots per account."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._cancels: list[tuple[Any, ...]] = []
        self._refused = 0
        #: Code and strategy names of the order and fill rows, by number.
        self._names: list[Any] = []
        self._name_ids: dict[Any, int] = {}

    @property
    def accounts(self) -> list[str]:
        """The accounts seen, in the order they first appeared."""
        return list(self._books)

    def _book(self, account_id: str) -> _Book:
        book = self._books.get(account_id)
        if book is None:
            book = self._books[account_id] = _Book()
        return book

    def on_report(self, report: AccountReport, now_ms: int) -> None:
        """Note one account report made at virtual time ``now_ms``."""
        self.on_items(report.account_id, [report.item], now_ms)

    def on_items(self, account_id: str, items: list[TradeReportItem], now_ms: int) -> None:
        """Note the items of one account's reports, in order, made at virtual time ``now_ms``."""
        book = self._books.get(account_id)
        if book is None:
            book = self._books[account_id] = _Book()  # listed in the order first seen
        ids = book.order_ids
        name_ids = self._name_ids
        local = now_ms + _BEIJING_MS  # local_ms
        for item in items:
            # A fill's Trade and Order first: a backtest's most frequent items after the
            # Asset and Position reports, of which the frames take nothing.
            if type(item) is Trade:
                code = name_ids.get(item.stock_code)
                if code is None:
                    code = self._name_of(item.stock_code)
                book.trade_rows += _TRADE_ROW.pack(
                    local,
                    item.order_id,
                    code,
                    item.order_type == _BUY,
                    item.traded_price,
                    item.traded_volume,
                    item.traded_amount,
                    item.commission,
                )
            elif type(item) is Order:
                code = name_ids.get(item.stock_code)
                if code is None:
                    code = self._name_of(item.stock_code)
                row = ids.get(item.order_id)
                if row is not None:
                    _ORDER_LATER.pack_into(
                        book.order_rows,
                        row * _ORDER_ROW.size + _LATER_AT,
                        code,
                        item.price,
                        item.order_status,
                        item.traded_volume,
                        item.traded_price,
                    )
                    continue
                strategy = name_ids.get(item.strategy_name)
                if strategy is None:
                    strategy = self._name_of(item.strategy_name)
                ids[item.order_id] = len(ids)
                book.order_rows += _ORDER_ROW.pack(
                    local,
                    item.order_id,
                    item.order_volume,
                    item.price_type,
                    item.order_type == _BUY,
                    strategy,
                    code,
                    item.price,
                    item.order_status,
                    item.traded_volume,
                    item.traded_price,
                )
            elif type(item) is OrderError:
                row = ids.get(item.order_id)
                if row is not None:
                    book.errors[row] = item.error_msg

    def _name_of(self, name: Any) -> int:
        """The number of a code or strategy name, given one the first time it is seen."""
        number = self._name_ids.get(name)
        if number is None:
            number = self._name_ids[name] = len(self._names)
            self._names.append(name)
        return number

    def on_refusal(self, req: SubmitOrder, message: str, now_ms: int) -> None:
        """Note an order the risk chain refused before it reached the broker.

        It is listed with the other orders, junk (57) with ``message`` as its error, under an
        id of its own below zero (it never got a venue id).
        """
        self._refused += 1
        oid = -self._refused
        book = self._book(req.account_id)
        row = book.order_ids[oid] = len(book.order_ids)
        book.order_rows += _ORDER_ROW.pack(
            local_ms(now_ms),
            oid,
            req.order_volume,
            req.price_type,
            req.order_type == _BUY,
            self._name_of(req.strategy_name),
            self._name_of(req.stock_code),
            req.price,
            _JUNK,
            0,
            0.0,
        )
        book.errors[row] = message

    def on_cancel(self, now_ms: int, order_id: int, code: str, ok: bool) -> None:
        """Note one cancel request and whether it was accepted."""
        self._cancels.append((local_ms(now_ms), order_id, code, ok))

    def record_day(
        self,
        account_id: str,
        day: int,
        asset: Asset,
        holdings: list[tuple[str, int, int, float]],
        benchmark: float | None,
    ) -> None:
        """Snapshot one account at the close of ``day`` (``YYYYMMDD``).

        ``holdings`` are the broker's (code, shares, sellable, last price); a holding's market
        value is the broker's own: shares x last price, rounded to the fen.
        """
        book = self._book(account_id)
        date = _epoch_day(day)
        held = [h for h in holdings if h[1] > 0]
        if held:
            book.positions.add(date, held)
        book.equity.append(
            (date, asset.cash, asset.frozen_cash, asset.market_value, asset.total_asset, benchmark)
        )

    def record_day_columns(
        self,
        account_id: str,
        day: int,
        asset: Asset,
        held: tuple[list[str], list[int], list[int], list[float]],
        benchmark: float | None,
    ) -> None:
        """``record_day`` with the holdings with shares as columns (codes, shares, sellable,
        last prices): the broker's ``mark_and_snapshot``."""
        book = self._book(account_id)
        date = _epoch_day(day)
        if held[0]:
            book.positions.add_columns(date, *held)
        book.equity.append(
            (date, asset.cash, asset.frozen_cash, asset.market_value, asset.total_asset, benchmark)
        )

    def record_day_keyed(
        self,
        account_id: str,
        day: int,
        asset: Asset,
        names: list[str],
        held: HeldArrays,
        benchmark: float | None,
    ) -> None:
        """``record_day`` with the holdings with shares as numpy columns, codes by number
        (``names[key]``): the broker's day end of an account marked as columns."""
        book = self._book(account_id)
        date = _epoch_day(day)
        book.positions.add_keyed(date, names, held)
        book.equity.append(
            (date, asset.cash, asset.frozen_cash, asset.market_value, asset.total_asset, benchmark)
        )

    def record_day_logged(
        self, log: DayLog, day: int, names: list[str], benchmark: float | None
    ) -> None:
        """Note a close the broker logged (``Broker.close_quietly``) for ``day``: its rows and
        equity row are made from the log at the end (codes by number into ``names``)."""
        book = self._book(log.account_id)
        runs = book.logged
        run = runs[-1] if runs else None
        if run is None or run.log is not log or book.equity[-1] is not None:
            run = _Logged(log, names)
            runs.append(run)
            book.positions.add_logged(run)
        run.dates.append(_epoch_day(day))
        run.benches.append(benchmark)
        book.equity.append(None)

    def frames(self, account_id: str | None = None) -> dict[str, pl.DataFrame]:
        """The five frames of one account (the only one, or the first seen, if not named)."""
        if account_id is None:
            account_id = self.accounts[0] if self._books else ""
        elif account_id not in self._books:
            raise InvalidArgument(
                f"no account {account_id!r} in this backtest; it has {self.accounts}"
            )
        book = self._books.get(account_id, _Book())
        names = pl.Series("code", self._names, dtype=pl.String)
        return {
            "orders": _order_frame(book, names),
            "trades": _trade_frame(book, names),
            "cancels": _frame(self._cancels, CANCEL_COLUMNS),
            "positions": book.positions.frame(),
            "equity": _frame(_equity_rows(book), EQUITY_COLUMNS),
        }

    def result(self, account_id: str | None, *, initial_cash: float, meta: dict[str, str]) -> Any:
        """A ``BacktestResult`` (or ``Frames`` where the results module is not installed)."""
        frames = self.frames(account_id)
        try:
            module = importlib.import_module("qmtkit.backtest.results")
        except ImportError:
            return Frames(**frames, initial_cash=initial_cash, meta=meta)
        return module.BacktestResult(**frames, initial_cash=initial_cash, meta=meta)


def _equity_rows(book: _Book) -> list[tuple[Any, ...]]:
    """The equity rows of every close, the logged ones made from their logs."""
    if not book.logged:
        return book.equity  # type: ignore[return-value]  # no None without a log
    made = iter([row for run in book.logged for row in run.build()[6]])
    return [next(made) if row is None else row for row in book.equity]


def _fields(
    rows: bytearray, dtype: np.dtype[Any], by: str | None = None
) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.intp] | None]:
    """Each field of the packed rows as a column of its own, and the row order used: sorted
    stably by field ``by`` unless already increasing in it (None: as recorded).

    The rows are read through a view gone on return (it would lock ``rows`` from growing);
    each field is copied once, straight from the rows into its column.
    """
    rec = np.frombuffer(rows, dtype=dtype)
    order = None
    if by is not None and len(rec) > 1:
        key = rec[by]
        if not bool((key[1:] > key[:-1]).all()):
            order = np.argsort(key, kind="stable")
    out: dict[str, npt.NDArray[Any]] = {}
    for name in dtype.names or ():
        src = rec[name]
        col = fresh.empty(len(src), src.dtype)
        if order is None:
            np.copyto(col, src)
        else:
            np.take(src, order, out=col)
        out[name] = col
    return out, order


def _codes(name: str, numbers: npt.NDArray[Any]) -> pl.Series:
    """Numbers into a names list as a Polars index column."""
    return pl.Series(name, numbers, dtype=pl.UInt32)


def _order_frame(book: _Book, names: pl.Series) -> pl.DataFrame:
    """The ``orders`` frame (``ORDER_COLUMNS``): each order once, its latest state, by id."""
    cols, order = _fields(book.order_rows, _ORDER_DTYPE, by="order_id")
    n = len(cols["order_id"])
    errors = pl.Series("error", dtype=pl.String).extend_constant(None, n)
    if book.errors:
        errors = errors.scatter(list(book.errors), list(book.errors.values()))
        if order is not None:
            errors = errors.gather(order)
    return pl.DataFrame(
        {
            **_leading_columns(cols, names),
            "price_type": pl.Series("price_type", cols["price_type"]),
            "status": pl.Series("status", cols["status"]),
            "traded_volume": pl.Series("traded_volume", cols["traded_volume"]),
            "traded_price": pl.Series("traded_price", cols["traded_price"]),
            "error": errors,
            "strategy": names.gather(_codes("strategy", cols["strategy"])).rename("strategy"),
        }
    )


def _leading_columns(cols: dict[str, npt.NDArray[Any]], names: pl.Series) -> dict[str, pl.Series]:
    """The columns the orders and trades frames both begin with, from their packed fields."""
    return {
        "time": pl.Series("time", cols["time"]).cast(TIME),
        "order_id": pl.Series("order_id", cols["order_id"]),
        "code": names.gather(_codes("code", cols["code"])),
        "side": pl.Series("side", _SIDES).gather(_codes("side", cols["side"])),
        "price": pl.Series("price", cols["price"]),
        "volume": pl.Series("volume", cols["volume"]),
    }


def _trade_frame(book: _Book, names: pl.Series) -> pl.DataFrame:
    """The ``trades`` frame (``TRADE_COLUMNS``), fills in the order they came."""
    cols, _ = _fields(book.trade_rows, _TRADE_DTYPE)
    return pl.DataFrame(
        {
            **_leading_columns(cols, names),
            "amount": pl.Series("amount", cols["amount"]),
            "fee": pl.Series("fee", cols["fee"]),
        }
    )


def _frame(rows: Sequence[Sequence[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    """A frame from rows (see ``_columns`` for times and dates)."""
    if not rows:
        return _columns([() for _ in schema], schema)
    # One column at a time: Polars builds a typed column from a list about twice as fast as
    # it reads the same values row by row, and a comprehension per column transposes a long
    # run's rows faster than ``zip(*rows)`` (one iterator per row).
    return _columns([[row[i] for row in rows] for i in range(len(schema))], schema)


def _columns(cols: Sequence[Sequence[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    """A frame from one sequence per column; times are Unix ms, dates days since 1970."""
    data = {}
    for (name, dtype), values in zip(schema.items(), cols, strict=True):
        if dtype == TIME:
            data[name] = pl.Series(name, values, dtype=pl.Int64).cast(TIME)
        elif dtype == pl.Date:
            data[name] = pl.Series(name, values, dtype=pl.Int32).cast(pl.Date)
        else:
            data[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(data)
