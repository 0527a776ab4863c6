"""Pure conversions between xtquant's shapes and qmtkit's models (no I/O, no xtquant import).

xtquant hands out objects (``XtOrder``, ``XtTrade``, ...), dicts (ticks, bars, instrument
details) and pandas DataFrames (history, dividends). Everything here reads them by attribute or
key name only, so the real module, the test double and plain dicts all work alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Final, TypeVar

import msgspec
import numpy as np

from qmtkit.backends.base import Dividend, HistoryColumns
from qmtkit.clock import BEIJING
from qmtkit.codes import board_of
from qmtkit.data.schema import BAR_DTYPES, TICK_DTYPES, dtypes_for
from qmtkit.errors import BackendError, InvalidCode
from qmtkit.models import (
    AccountInfo,
    AccountStatus,
    Asset,
    Bar,
    CancelError,
    CancelResponse,
    InstrumentDetail,
    Order,
    OrderError,
    OrderResponse,
    Position,
    Tick,
    Trade,
)

#: Beijing time, in which xtdata's time strings are written.
#: Depth of the book in xtquant's level-1 ticks.
BOOK_LEVELS: Final = 5

S = TypeVar("S", bound=msgspec.Struct)

# --------------------------------------------------------------------------- generic coercion


def _to_int(value: Any) -> int:
    if isinstance(value, float):
        return 0 if math.isnan(value) else round(value)
    return int(value)


def _to_list(value: Any, item: Callable[[Any], Any]) -> list[Any]:
    if value is None:
        return []
    return [item(v) for v in value]


@cache
def _coercers(cls: type[msgspec.Struct]) -> tuple[tuple[str, bool, Callable[[Any], Any]], ...]:
    """(name, required, coerce) for every field of a model, worked out once per class."""
    out: list[tuple[str, bool, Callable[[Any], Any]]] = []
    for f in msgspec.structs.fields(cls):
        t = f.type
        fn: Callable[[Any], Any]
        if t is bool:
            fn = bool
        elif t is int:
            fn = _to_int
        elif t is float:
            fn = float
        elif t is str:
            fn = str
        elif t == list[float]:
            fn = lambda v: _to_list(v, float)  # noqa: E731
        elif t == list[int]:
            fn = lambda v: _to_list(v, _to_int)  # noqa: E731
        else:  # pragma: no cover - every model field used here is one of the above
            fn = lambda v: v  # noqa: E731
        out.append((f.name, f.required, fn))
    return tuple(out)


_ZERO: Final[dict[Callable[[Any], Any], Any]] = {bool: False, _to_int: 0, float: 0.0, str: ""}


def build(cls: type[S], get: Callable[[str], Any], **fixed: Any) -> S:
    """Build model ``cls`` reading each field through ``get(name)``; ``None`` means absent.

    Absent optional fields keep the model's default; absent required ones become zero/empty,
    because xtquant leaves fields out rather than sending nulls.
    """
    kwargs: dict[str, Any] = dict(fixed)
    for name, required, coerce in _coercers(cls):
        if name in kwargs:
            continue
        value = get(name)
        if value is None:
            if required:
                kwargs[name] = _ZERO.get(coerce, [])
            continue
        try:
            kwargs[name] = coerce(value)
        except (TypeError, ValueError) as exc:
            raise BackendError(
                f"xtquant sent {name}={value!r} for a {cls.__name__}, which cannot be read "
                f"as {coerce.__name__}: {exc}"
            ) from exc
    return cls(**kwargs)


def from_object(cls: type[S], obj: object, **fixed: Any) -> S:
    """Build model ``cls`` from an xtquant object's attributes of the same names."""
    return build(cls, lambda name: getattr(obj, name, None), **fixed)


def from_mapping(cls: type[S], data: Mapping[str, Any], **fixed: Any) -> S:
    """Build model ``cls`` from a dict keyed by the model's field names."""
    return build(cls, data.get, **fixed)


# --------------------------------------------------------------------------- trader objects


def order_of(obj: object) -> Order:
    """An ``XtOrder`` as an ``Order``."""
    return from_object(Order, obj)


def trade_of(obj: object) -> Trade:
    """An ``XtTrade`` as a ``Trade``."""
    return from_object(Trade, obj)


def position_of(obj: object) -> Position:
    """An ``XtPosition`` as a ``Position``."""
    return from_object(Position, obj)


def asset_of(obj: object) -> Asset:
    """An ``XtAsset`` as an ``Asset``."""
    return from_object(Asset, obj)


def order_error_of(obj: object) -> OrderError:
    """An ``XtOrderError`` as an ``OrderError``."""
    return from_object(OrderError, obj)


def cancel_error_of(obj: object) -> CancelError:
    """An ``XtCancelError`` as a ``CancelError``."""
    return from_object(CancelError, obj)


def order_response_of(obj: object) -> OrderResponse:
    """An ``XtOrderResponse`` as an ``OrderResponse`` (``seq`` is xtquant's request number)."""
    return from_object(OrderResponse, obj)


def cancel_response_of(obj: object) -> CancelResponse:
    """An ``XtCancelOrderResponse`` as a ``CancelResponse`` (``seq`` is xtquant's)."""
    return from_object(CancelResponse, obj)


def account_status_of(obj: object) -> AccountStatus:
    """An ``XtAccountStatus`` as an ``AccountStatus``."""
    return from_object(AccountStatus, obj)


def account_info_of(obj: object) -> AccountInfo:
    """An ``XtAccountInfo`` as an ``AccountInfo``."""
    return from_object(AccountInfo, obj)


def many(convert: Callable[[object], S], objs: Iterable[object] | None) -> list[S]:
    """Convert a query answer; xtquant answers ``None`` for an empty or failed list."""
    return [] if objs is None else [convert(o) for o in objs]


# --------------------------------------------------------------------------- market data


def tick_of(code: str, data: Mapping[str, Any]) -> Tick:
    """One tick dict (``get_full_tick`` value or a quote push) as a ``Tick``."""
    return from_mapping(Tick, data, stock_code=code)


def bar_of(code: str, period: str, data: Mapping[str, Any]) -> Bar:
    """One K-line dict of a quote push as a ``Bar``."""
    return from_mapping(Bar, data, stock_code=code, period=period)


def quote_items(datas: Mapping[str, Any], period: str) -> list[Tick | Bar]:
    """The records of one xtdata quote callback, in the order xtdata listed them.

    ``subscribe_quote`` sends ``{code: [record, ...]}``; ``subscribe_whole_quote`` sends
    ``{code: record}``. Both shapes are accepted.
    """
    out: list[Tick | Bar] = []
    for code, value in datas.items():
        records = [value] if isinstance(value, Mapping) else list(value)
        for rec in records:
            out.append(tick_of(code, rec) if period == "tick" else bar_of(code, period, rec))
    return out


def instrument_of(data: Mapping[str, Any]) -> InstrumentDetail | None:
    """A ``get_instrument_detail`` dict as an ``InstrumentDetail``; None if qmtkit can't trade it.

    Codes outside qmtkit's boards (bonds, options, futures) give None.
    """
    exchange = str(data.get("ExchangeID", ""))
    symbol = str(data.get("InstrumentID", ""))
    try:
        board = board_of(symbol, exchange)
    except InvalidCode:
        return None
    name = str(data.get("InstrumentName", ""))
    fixed: dict[str, Any] = {"board": board.value, "is_st": "ST" in name.upper()}
    for key in ("OpenDate", "ExpireDate"):
        value = data.get(key)
        if value is not None:
            fixed[key] = str(value)
    return from_mapping(InstrumentDetail, data, **fixed)


# --------------------------------------------------------------------------- times


def ms_to_xt_time(ms: int) -> str:
    """Unix milliseconds as xtdata's ``YYYYMMDDhhmmss`` (Beijing time); 0 means unbounded ''."""
    if ms <= 0:
        return ""
    return datetime.fromtimestamp(ms / 1000, BEIJING).strftime("%Y%m%d%H%M%S")


def xt_date_to_ms(text: str) -> int:
    """An xtdata date (``YYYYMMDD``, optionally ``hhmmss``) in Beijing time as Unix ms."""
    text = text.strip()
    fmt = "%Y%m%d%H%M%S" if len(text) >= 14 else "%Y%m%d"
    try:
        dt = datetime.strptime(text[: 14 if len(text) >= 14 else 8], fmt)
    except ValueError as exc:
        raise BackendError(f"xtquant sent the date {text!r}, expected YYYYMMDD[hhmmss]") from exc
    return int(dt.replace(tzinfo=BEIJING).timestamp() * 1000)


# --------------------------------------------------------------------------- history


def _column(frame: Any, name: str) -> np.ndarray[Any, Any] | None:
    if name not in frame.columns:
        return None
    return np.asarray(frame[name].to_numpy())


def _levels(values: np.ndarray[Any, Any], rows: int) -> np.ndarray[Any, Any]:
    """An object column of per-row price/volume lists as a (rows, 5) float array, zero-padded."""
    out = np.zeros((rows, BOOK_LEVELS), dtype="<f8")
    for i, row in enumerate(values):
        if row is None:
            continue
        seq = list(row)[:BOOK_LEVELS]
        out[i, : len(seq)] = seq
    return out


def _cast(values: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    if dtype.kind in "iu":
        as_float = values.astype("<f8", copy=False)
        out: np.ndarray[Any, Any] = np.nan_to_num(as_float, nan=0.0).round().astype(dtype)
        return out
    return values.astype(dtype)


def history_columns(
    code: str, period: str, frame: Any, start: int = 0, end: int = 0
) -> HistoryColumns:
    """One code's ``get_market_data_ex`` DataFrame as ``HistoryColumns`` in the stored schema.

    ``time`` (int64 Unix ms) is taken from the frame's ``time`` column; rows outside
    ``start <= time <= end`` (0: unbounded) are dropped and the rest sorted by time. Columns the
    frame lacks are filled with zeros; tick book columns (``askPrice`` lists) are spread over
    ``askPrice1 .. askPrice5`` and the like.
    """
    dtypes = dtypes_for(period)
    if frame is None or len(frame) == 0:
        return HistoryColumns(code=code, period=period, rows=0, columns={k: b"" for k in dtypes})
    rows = len(frame)
    times = _column(frame, "time")
    if times is None:
        raise BackendError(
            f"xtquant's {period} data for {code} has no 'time' column (columns: "
            f"{list(frame.columns)}); cannot place the rows in time"
        )
    arrays: dict[str, np.ndarray[Any, Any]] = {"time": _cast(times, BAR_DTYPES["time"])}
    books: dict[str, np.ndarray[Any, Any]] = {}
    for name, dtype in dtypes.items():
        if name == "time":
            continue
        col = _column(frame, name)
        if col is None and period == "tick" and name[-1].isdigit():
            base, level = name[:-1], int(name[-1]) - 1
            if base not in books:
                raw = _column(frame, base)
                books[base] = np.zeros((rows, BOOK_LEVELS)) if raw is None else _levels(raw, rows)
            col = books[base][:, level]
        arrays[name] = np.zeros(rows, dtype) if col is None else _cast(col, dtype)
    keep = np.ones(rows, dtype=bool)
    t = arrays["time"]
    if start > 0:
        keep &= t >= start
    if end > 0:
        keep &= t <= end
    order = np.argsort(t[keep], kind="stable")
    columns = {k: np.ascontiguousarray(v[keep][order]).tobytes() for k, v in arrays.items()}
    return HistoryColumns(code=code, period=period, rows=int(keep.sum()), columns=columns)


def history_arrays(reply: HistoryColumns) -> dict[str, np.ndarray[Any, Any]]:
    """The numpy arrays behind a ``HistoryColumns`` reply (a zero-copy view of its bytes)."""
    dtypes = TICK_DTYPES if reply.period == "tick" else BAR_DTYPES
    return {k: np.frombuffer(v, dtype=dtypes[k]) for k, v in reply.columns.items()}


# --------------------------------------------------------------------------- dividends

_DIVIDEND_FIELDS: Final = (
    "interest",
    "stockBonus",
    "stockGift",
    "allotNum",
    "allotPrice",
    "gugai",
    "dr",
)


def dividends_of(frame: Any) -> list[Dividend]:
    """A ``get_divid_factors`` DataFrame (one row per ex-date) as ``Dividend``s, oldest first.

    The ex-date comes from a ``time`` column (ms) when there is one, else from the row label
    (``YYYYMMDD``, Beijing time).
    """
    if frame is None or len(frame) == 0:
        return []
    out: list[Dividend] = []
    has_time = "time" in frame.columns
    for label, row in frame.iterrows():
        when = _to_int(row["time"]) if has_time else xt_date_to_ms(str(label))
        values = {k: row[k] for k in _DIVIDEND_FIELDS if k in frame.columns}
        out.append(build(Dividend, values.get, time=when))
    out.sort(key=lambda d: d.time)
    return out
