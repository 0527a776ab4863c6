"""The order-flow profile of a backtest, against the exchanges' high-frequency thresholds.

Under the SSE/SZSE/BSE programmatic-trading rules in force since 2025-07-07, an account is
high-frequency when its orders plus cancels reach 300 in one second or 20,000 in one day. The
profile counts what would have reached the exchange: every order except those the local risk
chain refused (their ``error`` starts with ``risk:``, the tag of `qmtkit.risk` refusals), and
every cancel request (the cancels frame does not say why a cancel failed, so all are counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.checks import positive_int

if TYPE_CHECKING:
    from qmtkit.backtest.results import BacktestResult

#: Orders + cancels in one second at which an account is high-frequency (2025 rules).
PER_SECOND_THRESHOLD: Final = 300
#: Orders + cancels in one trading day at which an account is high-frequency (2025 rules).
PER_DAY_THRESHOLD: Final = 20_000
#: A cancel this soon after its order (milliseconds) is an instant cancel.
INSTANT_MS: Final = 1_000
#: The prefix of a risk-chain refusal's message: ``risk:<rule>: what, value, limit``.
RISK_TAG: Final = "risk:"
_RULE_PATTERN: Final = r"^risk:([^:]+):"


@dataclass(frozen=True)
class ComplianceProfile:
    """Order and cancel counts of a run, its peaks, and whether it crossed a threshold.

    ``peak_per_second`` is the most actions (orders + cancels) in any window of 1,000 ms,
    starting at ``peak_second_at``; ``per_day`` has one row per day with actions.
    """

    orders: int
    cancels: int
    peak_per_second: int
    peak_second_at: datetime | None
    peak_per_day: int
    peak_day: date | None
    cancel_ratio: float | None
    instant_cancels: int
    risk_refusals: int
    refusals_by_rule: dict[str, int]
    per_second_threshold: int
    per_day_threshold: int
    high_frequency: bool
    #: One sentence per threshold crossed, empty when none was.
    flags: list[str] = field(default_factory=list)
    per_day: pl.DataFrame = field(default_factory=pl.DataFrame)

    def as_dict(self) -> dict[str, int | float | bool | None]:
        """The scalar counts, e.g. for a row of a sweep frame."""
        return {
            "orders": self.orders,
            "cancels": self.cancels,
            "peak_per_second": self.peak_per_second,
            "peak_per_day": self.peak_per_day,
            "cancel_ratio": self.cancel_ratio,
            "instant_cancels": self.instant_cancels,
            "risk_refusals": self.risk_refusals,
            "high_frequency": self.high_frequency,
        }


def rule_of(error: str | None) -> str | None:
    """The risk rule that refused an order, from its error text; None for other errors."""
    found = re.match(_RULE_PATTERN, error) if error is not None else None
    return (found.group(1).strip() or None) if found else None


def compute_compliance(
    result: BacktestResult,
    *,
    per_second: int = PER_SECOND_THRESHOLD,
    per_day: int = PER_DAY_THRESHOLD,
) -> ComplianceProfile:
    """The compliance profile of ``result``; thresholds default to the 2025 rules."""
    for name, value in (("per_second", per_second), ("per_day", per_day)):
        positive_int(name, value, " threshold")
    rule = pl.col("error").str.extract(_RULE_PATTERN, 1).str.strip_chars()
    orders = result.orders.with_columns(
        rule=pl.when(rule.str.len_chars() > 0).then(rule).otherwise(None)
    )
    refused = orders.filter(pl.col("rule").is_not_null())
    sent = orders.filter(pl.col("rule").is_null())
    by_rule = dict(sorted(refused.group_by("rule").len().iter_rows()))

    actions = pl.concat(
        [
            sent.select("time", kind=pl.lit("order")),
            result.cancels.select("time", kind=pl.lit("cancel")),
        ]
    )
    ms = np.sort(actions["time"].dt.epoch("ms").to_numpy().astype(np.int64))
    peak_second, peak_at = _peak_window(ms, INSTANT_MS)

    firsts = result.cancels.group_by("order_id").agg(cancel_time=pl.col("time").min())
    instant = (
        sent.select("order_id", "time")
        .join(firsts, on="order_id")
        .filter(
            (pl.col("cancel_time") >= pl.col("time"))
            & ((pl.col("cancel_time") - pl.col("time")).dt.total_milliseconds() < INSTANT_MS)
        )
        .with_columns(date=pl.col("cancel_time").dt.date())
    )
    daily = _per_day(actions, refused, instant)
    peak_day_row = (
        daily.sort(["actions", "date"], descending=[True, False]).row(0, named=True)
        if daily.height
        else None
    )
    peak_per_day = int(peak_day_row["actions"]) if peak_day_row else 0

    flags = []
    if peak_second >= per_second:
        flags.append(
            f"{peak_second} orders+cancels within one second from {peak_at}: at or over "
            f"the high-frequency threshold of {per_second} per second"
        )
    if peak_per_day >= per_day:
        assert peak_day_row is not None
        flags.append(
            f"{peak_per_day} orders+cancels on {peak_day_row['date']}: at or over "
            f"the high-frequency threshold of {per_day} per day"
        )
    return ComplianceProfile(
        orders=sent.height,
        cancels=result.cancels.height,
        peak_per_second=peak_second,
        peak_second_at=peak_at,
        peak_per_day=peak_per_day,
        peak_day=peak_day_row["date"] if peak_day_row else None,
        cancel_ratio=result.cancels.height / sent.height if sent.height else None,
        instant_cancels=instant.height,
        risk_refusals=refused.height,
        refusals_by_rule=by_rule,
        per_second_threshold=per_second,
        per_day_threshold=per_day,
        high_frequency=bool(flags),
        flags=flags,
        per_day=daily,
    )


def _peak_window(ms: npt.NDArray[np.int64], width: int) -> tuple[int, datetime | None]:
    """The most stamps in any half-open window ``[t, t + width)``, and the t where it starts."""
    if ms.size == 0:
        return 0, None
    ends = np.searchsorted(ms, ms + width, side="left")
    counts = ends - np.arange(ms.size)
    best = int(np.argmax(counts))
    start = pl.Series([int(ms[best])]).cast(pl.Datetime("ms")).item()
    return int(counts[best]), start


def _per_day(actions: pl.DataFrame, refused: pl.DataFrame, instant: pl.DataFrame) -> pl.DataFrame:
    """One row per day: orders and cancels sent, their sum, instant cancels, risk refusals."""
    counts = actions.group_by(date=pl.col("time").dt.date()).agg(
        orders=(pl.col("kind") == "order").sum().cast(pl.Int64),
        cancels=(pl.col("kind") == "cancel").sum().cast(pl.Int64),
    )
    extra = [
        instant.group_by("date").agg(instant_cancels=pl.len().cast(pl.Int64)),
        refused.group_by(date=pl.col("time").dt.date()).agg(risk_refusals=pl.len().cast(pl.Int64)),
    ]
    days = pl.concat([counts.select("date"), *(e.select("date") for e in extra)]).unique()
    out = days.join(counts, on="date", how="left")
    for e in extra:
        out = out.join(e, on="date", how="left")
    return (
        out.with_columns(pl.exclude("date").fill_null(0))
        .with_columns(actions=pl.col("orders") + pl.col("cancels"))
        .select("date", "orders", "cancels", "actions", "instant_cancels", "risk_refusals")
        .sort("date")
    )
