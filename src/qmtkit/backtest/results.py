"""The result of a backtest: five Polars frames, the starting cash and free-form metadata.

`BacktestResult` checks its frames on construction (columns, dtypes, nulls, a few invariants),
so everything downstream (metrics, compliance, the report, the digest) can trust them. Times are
naive ``Datetime("ms")`` in exchange (Beijing) local time; days are ``Date``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import polars as pl

from qmtkit.backtest.compliance import (
    PER_DAY_THRESHOLD,
    PER_SECOND_THRESHOLD,
    ComplianceProfile,
    compute_compliance,
)
from qmtkit.backtest.metrics import Metrics, compute_metrics
from qmtkit.backtest.report import MAX_TRADES, write_report
from qmtkit.checks import positive_number
from qmtkit.errors import InvalidArgument

#: Time stamps: milliseconds, naive, exchange local time.
TIME: Final = pl.Datetime("ms")

#: Column name -> dtype of each frame, in canonical column order.
ORDERS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "time": TIME,
    "order_id": pl.Int64(),
    "code": pl.String(),
    "side": pl.String(),
    "price": pl.Float64(),
    "volume": pl.Int64(),
    "price_type": pl.Int64(),
    "status": pl.Int64(),
    "traded_volume": pl.Int64(),
    "traded_price": pl.Float64(),
    "error": pl.String(),
    "strategy": pl.String(),
}
TRADES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "time": TIME,
    "order_id": pl.Int64(),
    "code": pl.String(),
    "side": pl.String(),
    "price": pl.Float64(),
    "volume": pl.Int64(),
    "amount": pl.Float64(),
    "fee": pl.Float64(),
}
CANCELS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "time": TIME,
    "order_id": pl.Int64(),
    "code": pl.String(),
    "ok": pl.Boolean(),
}
POSITIONS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "date": pl.Date(),
    "code": pl.String(),
    "volume": pl.Int64(),
    "can_use_volume": pl.Int64(),
    "close": pl.Float64(),
    "market_value": pl.Float64(),
}
EQUITY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "date": pl.Date(),
    "cash": pl.Float64(),
    "frozen_cash": pl.Float64(),
    "market_value": pl.Float64(),
    "total": pl.Float64(),
    "benchmark": pl.Float64(),
}
#: Every frame's schema by the attribute that holds it, in digest order.
SCHEMAS: Final[dict[str, dict[str, pl.DataType]]] = {
    "orders": ORDERS_SCHEMA,
    "trades": TRADES_SCHEMA,
    "cancels": CANCELS_SCHEMA,
    "positions": POSITIONS_SCHEMA,
    "equity": EQUITY_SCHEMA,
}
#: The only columns that may hold nulls: an accepted order's refusal reason, a missing benchmark.
NULLABLE: Final[dict[str, frozenset[str]]] = {
    "orders": frozenset({"error"}),
    "equity": frozenset({"benchmark"}),
}
SIDES: Final = ("buy", "sell")
#: Bumped whenever the canonical serialization behind `BacktestResult.digest` changes.
DIGEST_VERSION: Final = "qmtkit-backtest-result/1"


def empty_frame(name: str) -> pl.DataFrame:
    """An empty frame with the schema of ``name`` (one of `SCHEMAS`)."""
    if name not in SCHEMAS:
        raise InvalidArgument(f"unknown result frame {name!r}: expected one of {sorted(SCHEMAS)}")
    return pl.DataFrame(schema=SCHEMAS[name])


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Orders (refused ones included), trades, cancels, daily positions and daily equity.

    Columns may come in any order and are put into the canonical order of `SCHEMAS`; a missing,
    extra or mistyped column, a null outside the nullable columns, an unknown side, a duplicated
    order id or unsorted equity days is refused with `InvalidArgument` naming it.
    """

    orders: pl.DataFrame
    trades: pl.DataFrame
    cancels: pl.DataFrame
    positions: pl.DataFrame
    equity: pl.DataFrame
    initial_cash: float
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in SCHEMAS:
            object.__setattr__(self, name, _checked(name, getattr(self, name)))
        cash = self.initial_cash
        object.__setattr__(self, "initial_cash", positive_number("initial_cash", cash))
        if not isinstance(self.meta, Mapping):
            raise InvalidArgument(f"meta must be a dict of str to str, got {type(self.meta)!r}")
        for key, value in self.meta.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidArgument(
                    f"meta must map str to str, got {key!r}: {value!r} "
                    f"({type(key).__name__}: {type(value).__name__})"
                )
        object.__setattr__(self, "meta", dict(self.meta))
        _check_invariants(self)

    def metrics(self, *, risk_free_rate: float = 0.0) -> Metrics:
        """Returns, risk, drawdown, trading and benchmark figures (`qmtkit.backtest.metrics`)."""
        return compute_metrics(self, risk_free_rate=risk_free_rate)

    def compliance(
        self,
        *,
        per_second: int = PER_SECOND_THRESHOLD,
        per_day: int = PER_DAY_THRESHOLD,
    ) -> ComplianceProfile:
        """Order-flow peaks, cancels and risk refusals against the high-frequency thresholds."""
        return compute_compliance(self, per_second=per_second, per_day=per_day)

    def report(
        self,
        path: str | os.PathLike[str],
        *,
        title: str = "Backtest report",
        risk_free_rate: float = 0.0,
        max_trades: int = MAX_TRADES,
    ) -> Path:
        """Write the self-contained HTML report (`qmtkit.backtest.report`) and return its path."""
        return write_report(
            self,
            path,
            title=title,
            metrics=self.metrics(risk_free_rate=risk_free_rate),
            max_trades=max_trades,
        )

    def digest(self) -> str:
        """SHA-256 (hex) over a canonical serialization of every frame, the cash and the meta.

        Identical inputs give identical digests on any machine; row order counts.
        """
        h = hashlib.sha256()
        h.update(DIGEST_VERSION.encode())
        h.update(struct.pack("<d", self.initial_cash))
        _put_bytes(h, json.dumps(self.meta, sort_keys=True, ensure_ascii=False).encode())
        for name in SCHEMAS:
            frame: pl.DataFrame = getattr(self, name)
            _put_bytes(h, name.encode())
            h.update(struct.pack("<q", frame.height))
            for column in frame.columns:
                _put_bytes(h, column.encode())
                _hash_series(h, frame[column])
        return h.hexdigest()


def _checked(name: str, frame: object) -> pl.DataFrame:
    if not isinstance(frame, pl.DataFrame):
        raise InvalidArgument(
            f"{name} must be a polars DataFrame, got {type(frame).__name__}; "
            f"build it with the columns of qmtkit.backtest.results.SCHEMAS[{name!r}]"
        )
    schema = SCHEMAS[name]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"{name} lacks column(s) {missing}; expected {list(schema)}")
    extra = [c for c in frame.columns if c not in schema]
    if extra:
        raise InvalidArgument(f"{name} has unexpected column(s) {extra}; expected {list(schema)}")
    nullable = NULLABLE.get(name, frozenset())
    for column, dtype in schema.items():
        got = frame.schema[column]
        if column in nullable and got == pl.Null:  # an all-null column takes its proper type
            frame = frame.with_columns(pl.col(column).cast(dtype))
            continue
        if not _same_dtype(got, dtype):
            raise InvalidArgument(f"{name}.{column} has dtype {got}, expected {dtype}")
        if column not in nullable:
            nulls = frame[column].null_count()
            if nulls:
                raise InvalidArgument(f"{name}.{column} holds {nulls} null(s); it may hold none")
    return frame.select(list(schema))


def _same_dtype(got: pl.DataType, want: pl.DataType) -> bool:
    if isinstance(want, pl.Datetime):
        return (
            isinstance(got, pl.Datetime)
            and got.time_unit == want.time_unit
            and got.time_zone == want.time_zone
        )
    return bool(got == want)


def _check_invariants(result: BacktestResult) -> None:
    for name in ("orders", "trades"):
        frame: pl.DataFrame = getattr(result, name)
        bad = frame.filter(~pl.col("side").is_in(SIDES))["side"].unique().sort().to_list()
        if bad:
            raise InvalidArgument(f"{name}.side holds {bad[:5]}; expected one of {list(SIDES)}")
    dup = result.orders.filter(pl.col("order_id").is_duplicated())["order_id"].unique().sort()
    if dup.len():
        raise InvalidArgument(
            f"orders has duplicated order_id(s) {dup.head(5).to_list()}; one row per order"
        )
    dates = result.equity["date"]
    if dates.len() > 1 and not bool((dates.diff().drop_nulls().dt.total_days() > 0).all()):
        raise InvalidArgument("equity.date must be strictly increasing (one row per day)")
    keys = result.positions.select("date", "code")
    if _may_repeat(keys) and keys.is_duplicated().any():
        first = keys.filter(keys.is_duplicated()).row(0)
        raise InvalidArgument(f"positions has more than one row for (date, code) {first}")


def _may_repeat(keys: pl.DataFrame) -> bool:
    """False when no two rows of ``keys`` can be equal: their row hashes all differ.

    A long backtest has millions of position rows; hashing them is a quarter of the cost of
    finding duplicates exactly, which is left for the rare frame whose hashes collide.
    """
    hashes = keys.select(pl.struct(keys.columns).hash().alias("h"))
    return bool(hashes["h"].n_unique() != keys.height)


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _put_bytes(h: _Hasher, data: bytes) -> None:
    h.update(struct.pack("<q", len(data)))
    h.update(data)


def _hash_series(h: _Hasher, series: pl.Series) -> None:
    """Feed a column as its validity mask then its values in a fixed little-endian layout."""
    _put_bytes(h, series.is_null().to_numpy().astype("u1").tobytes())
    dtype = series.dtype
    if dtype == pl.String:
        lengths = series.str.len_bytes().fill_null(0).to_numpy().astype("<i8")
        _put_bytes(h, lengths.tobytes())
        _put_bytes(h, "".join(series.drop_nulls().to_list()).encode())
    elif dtype == pl.Float64:
        values = series.fill_null(0.0).to_numpy().astype("<f8")
        # One bit pattern for every NaN and for both zeros, so equal values hash equal.
        values = np.where(np.isnan(values), np.nan, values) + 0.0
        _put_bytes(h, values.tobytes())
    elif dtype == pl.Boolean:
        _put_bytes(h, series.fill_null(False).to_numpy().astype("u1").tobytes())
    else:  # Int64, Date and Datetime: their physical integers
        ints = series.to_physical().cast(pl.Int64).fill_null(0).to_numpy().astype("<i8")
        _put_bytes(h, ints.tobytes())
