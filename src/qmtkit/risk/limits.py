"""What a risk rule chain enforces for one account: ``RiskLimits`` and the presets.

Every limit is off (``None``, ``False`` or empty) unless configured; a preset is a named set of
limits that explicit settings override. Money is in yuan, volumes in shares, times in
milliseconds, shares of something as fractions (0.2 means 20 %).
"""

from __future__ import annotations

from typing import Any

import msgspec

from qmtkit.checks import positive_int, positive_number
from qmtkit.errors import InvalidArgument

__all__ = ["PRESETS", "RiskLimits", "limits_from_mapping"]


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The limits of one account; each ``None``/``False``/empty one is off.

    See docs/risk.md for what each rule judges. ``preset`` names the preset these limits were
    built from ("" if none); it is informational.
    """

    preset: str = ""
    # per order
    max_order_volume: int | None = None
    max_order_notional: float | None = None
    # positions and exposure (judged on buys, counting resting buys)
    max_position_volume: int | None = None
    max_position_value: float | None = None
    max_position_share: float | None = None
    max_gross_exposure: float | None = None
    # order flow
    max_active_orders: int | None = None
    max_orders_per_second: float | None = None
    max_cancels_per_second: float | None = None
    max_actions_per_second: float | None = None
    max_orders_per_day: int | None = None
    max_cancels_per_day: int | None = None
    max_actions_per_day: int | None = None
    duplicate_window_ms: int | None = None
    max_cancel_ratio: float | None = None
    cancel_ratio_min_orders: int = 20
    instant_cancel_ms: int | None = None
    max_instant_cancels_per_day: int | None = None
    # prices
    price_band: float | None = None
    price_within_limits: bool = False
    self_trade: bool = False
    # what may be traded
    blacklist: frozenset[str] = frozenset()
    block_st: bool = False
    # loss limits: ACTIVE -> REDUCING -> HALTED
    daily_loss_reducing: float | None = None
    daily_loss_halted: float | None = None
    drawdown_reducing: float | None = None
    drawdown_halted: float | None = None
    # how fresh a last price must be for the price-dependent rules
    mark_max_age_ms: int = 3000

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTS:
            v = getattr(self, name)
            if v is not None:
                positive_int(f"risk limit {name}", v)
        for name in _POSITIVE_REALS:
            v = getattr(self, name)
            if v is not None:
                positive_number(f"risk limit {name}", v)
        for name in _FRACTIONS:
            v = getattr(self, name)
            if v is not None and not 0 < v <= 1:
                raise InvalidArgument(
                    f"risk limit {name} is a fraction: expected 0 < {name} <= 1, got {v!r}"
                )
        if (
            self.daily_loss_reducing is not None
            and self.daily_loss_halted is not None
            and self.daily_loss_reducing > self.daily_loss_halted
        ):
            raise InvalidArgument(
                f"daily_loss_reducing ({self.daily_loss_reducing}) must not exceed "
                f"daily_loss_halted ({self.daily_loss_halted}): reducing comes before halting"
            )
        if (
            self.drawdown_reducing is not None
            and self.drawdown_halted is not None
            and self.drawdown_reducing > self.drawdown_halted
        ):
            raise InvalidArgument(
                f"drawdown_reducing ({self.drawdown_reducing}) must not exceed "
                f"drawdown_halted ({self.drawdown_halted}): reducing comes before halting"
            )
        if (self.max_instant_cancels_per_day is None) != (self.instant_cancel_ms is None):
            raise InvalidArgument(
                "instant_cancel_ms and max_instant_cancels_per_day go together: set both or "
                f"neither (got {self.instant_cancel_ms!r} and "
                f"{self.max_instant_cancels_per_day!r})"
            )
        for code in self.blacklist:
            if not isinstance(code, str) or "." not in code:
                raise InvalidArgument(f"blacklist entries are codes like '600000.SH', got {code!r}")

    @property
    def any_on(self) -> bool:
        """True if at least one rule is configured."""
        return any(
            getattr(self, f) not in (None, False, frozenset())
            for f in self.__struct_fields__
            if f not in _SETTINGS
        )

    def set(self, **changes: Any) -> RiskLimits:
        """A copy with ``changes`` applied (checked like the constructor)."""
        unknown = sorted(set(changes) - set(self.__struct_fields__))
        if unknown:
            raise InvalidArgument(
                f"unknown risk limit(s) {', '.join(unknown)}: known ones are "
                f"{', '.join(self.__struct_fields__)}"
            )
        return limits_from_mapping({**msgspec.structs.asdict(self), **changes})


_POSITIVE_INTS = (
    "max_order_volume",
    "max_position_volume",
    "max_active_orders",
    "max_orders_per_day",
    "max_cancels_per_day",
    "max_actions_per_day",
    "duplicate_window_ms",
    "cancel_ratio_min_orders",
    "instant_cancel_ms",
    "max_instant_cancels_per_day",
    "mark_max_age_ms",
)
_POSITIVE_REALS = (
    "max_order_notional",
    "max_position_value",
    "max_gross_exposure",
    "max_orders_per_second",
    "max_cancels_per_second",
    "max_actions_per_second",
    "daily_loss_reducing",
    "daily_loss_halted",
)
_FRACTIONS = (
    "max_position_share",
    "max_cancel_ratio",
    "price_band",
    "drawdown_reducing",
    "drawdown_halted",
)
#: Fields that tune rules rather than turn one on.
_SETTINGS = frozenset({"preset", "cancel_ratio_min_orders", "mark_max_age_ms"})


def limits_from_mapping(raw: dict[str, Any]) -> RiskLimits:
    """``RiskLimits`` from a plain mapping (a TOML table); ``preset`` is applied first."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"risk limits must be a table of settings, got {raw!r}")
    preset = raw.get("preset", "")
    if not isinstance(preset, str) or (preset and preset not in PRESETS):
        raise InvalidArgument(
            f"unknown risk preset {preset!r}: expected one of {', '.join(sorted(PRESETS))}"
        )
    base = msgspec.structs.asdict(PRESETS[preset]) if preset else {}
    merged = {**base, **raw}
    try:
        return msgspec.convert(merged, RiskLimits, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidArgument(f"bad risk limits: {exc}") from None


#: The named presets; see docs/risk.md for where their figures come from.
PRESETS: dict[str, RiskLimits] = {
    # SSE/SZSE/BSE programmatic-trading rules (in force 2025-07-07): an account is
    # high-frequency at >= 300 orders+cancels in one second or >= 20,000 in one day. The
    # preset stays well below both and flags frequent instant cancels, one of the listed
    # abnormal behaviours.
    "regulatory": RiskLimits(
        preset="regulatory",
        max_actions_per_second=200,
        max_actions_per_day=15_000,
        instant_cancel_ms=1_000,
        max_instant_cancels_per_day=500,
        max_cancel_ratio=0.8,
        cancel_ratio_min_orders=100,
    ),
    # A first live run: small orders, few of them, no duplicates, prices near the market,
    # a loss limit that stops buying and then stops everything.
    "conservative": RiskLimits(
        preset="conservative",
        max_order_volume=10_000,
        max_order_notional=50_000.0,
        max_position_share=0.2,
        max_active_orders=20,
        max_orders_per_second=5,
        max_cancels_per_second=5,
        max_actions_per_day=2_000,
        duplicate_window_ms=1_000,
        price_band=0.05,
        price_within_limits=True,
        self_trade=True,
        block_st=True,
        drawdown_reducing=0.05,
        drawdown_halted=0.1,
    ),
}
