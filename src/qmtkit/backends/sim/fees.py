"""Trading fees of the simulator's paper broker, with A-share defaults.

The defaults follow what a retail A-share account typically pays:

- commission: 0.025 % of the traded amount, at least 5 CNY. The minimum applies to every
  fill (every trade report), so an order filled in three pieces can pay three minimums.
- stamp duty: 0.05 % of the amount, on sells only.
- transfer fee: 0.001 % of the amount on both sides. Real venues differ slightly (BJ charges
  none); the simulator charges SH, SZ and BJ alike to keep one rule.

Every fee is rounded half-up to 0.01 CNY on its own; ``total`` is the sum of the rounded fees.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache

import msgspec

from qmtkit.checks import is_real
from qmtkit.constants import OrderType
from qmtkit.errors import InvalidArgument

_CENT = Decimal("0.01")


class Fees(msgspec.Struct, frozen=True):
    """The fees of one fill, in CNY, each already rounded to 0.01."""

    commission: float
    stamp_duty: float
    transfer_fee: float
    total: float


def _rate(name: str, value: object) -> Decimal:
    if not is_real(value):
        raise InvalidArgument(f"fee {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"fee {name} must be a finite number >= 0, got {value!r}")
    return Decimal(repr(float(value)))


def _cents(value: Decimal) -> int:
    """Round a CNY amount half-up to whole cents."""
    return int((value / _CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@lru_cache(maxsize=64)
def _fraction(rate: float) -> tuple[int, int]:
    """A rate as the exact fraction of its decimal form (0.00025 -> 1/4000)."""
    f = Fraction(repr(float(rate)))
    return f.numerator, f.denominator


def _rate_cents(amount_cents: int, rate: float) -> int:
    """``amount_cents * rate`` rounded half-up to whole cents, in integers (no float error).

    Every fill computes four fees; exact integer arithmetic is both right and several times
    cheaper than Decimal on an order's hot path.
    """
    num, den = _fraction(rate)
    return (2 * amount_cents * num + den) // (2 * den)


class FeeSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """Configurable fee rates; rates are fractions of the traded amount (0.00025 = 0.025 %)."""

    commission_rate: float = 0.00025
    min_commission: float = 5.0
    stamp_duty_rate: float = 0.0005
    transfer_fee_rate: float = 0.00001

    def __post_init__(self) -> None:
        # Validate once here so fee computation can trust its inputs.
        _rate("commission_rate", self.commission_rate)
        _rate("min_commission", self.min_commission)
        _rate("stamp_duty_rate", self.stamp_duty_rate)
        _rate("transfer_fee_rate", self.transfer_fee_rate)

    def fee_cents(self, side: int, amount_cents: int) -> tuple[int, int, int]:
        """Commission, stamp duty and transfer fee in cents for a fill of ``amount_cents``."""
        if amount_cents <= 0:
            return (0, 0, 0)
        commission = max(
            _rate_cents(amount_cents, self.commission_rate),
            _rate_cents(100, self.min_commission),
        )
        stamp = (
            _rate_cents(amount_cents, self.stamp_duty_rate) if side == OrderType.STOCK_SELL else 0
        )
        transfer = _rate_cents(amount_cents, self.transfer_fee_rate)
        return (commission, stamp, transfer)

    def fees_for(self, side: int, amount: float) -> Fees:
        """The fees of one fill of ``amount`` CNY on ``side`` (23 buy, 24 sell)."""
        _check_side(side)
        if not is_real(amount):
            raise InvalidArgument(f"fill amount must be a number of CNY, got {amount!r}")
        if not math.isfinite(amount) or amount < 0:
            raise InvalidArgument(f"fill amount must be a finite number >= 0, got {amount!r}")
        amount_cents = _cents(Decimal(repr(float(amount))))
        c, s, t = self.fee_cents(side, amount_cents)
        return Fees(c / 100, s / 100, t / 100, (c + s + t) / 100)


class FeeRates:
    """A schedule's rates as exact integer fractions, for pricing many fills fast.

    ``total_cents`` equals ``sum(schedule.fee_cents(side, amount_cents))``; the fractions are
    worked out once here instead of on every fill.
    """

    __slots__ = (
        "_bought",
        "_cd",
        "_cd2",
        "_cn",
        "_min",
        "_sd",
        "_sd2",
        "_sn",
        "_td",
        "_td2",
        "_tn",
        "schedule",
    )

    def __init__(self, schedule: FeeSchedule) -> None:
        if not isinstance(schedule, FeeSchedule):
            raise InvalidArgument(f"schedule must be a FeeSchedule, got {schedule!r}")
        self.schedule = schedule
        self._cn, self._cd = _fraction(schedule.commission_rate)
        self._sn, self._sd = _fraction(schedule.stamp_duty_rate)
        self._tn, self._td = _fraction(schedule.transfer_fee_rate)
        self._cd2, self._sd2, self._td2 = 2 * self._cd, 2 * self._sd, 2 * self._td
        self._min = _rate_cents(100, schedule.min_commission)
        #: Buy fees by amount: a buy's fees at its limit are asked for when its cash is
        #: checked and again when it fills (its freeze before the fill). Emptied when full.
        self._bought: dict[int, int] = {}

    def total_cents(self, side: int, amount_cents: int) -> int:
        """Commission + stamp duty + transfer fee in cents for a fill of ``amount_cents``."""
        if amount_cents <= 0:
            return 0
        if side != _SELL:
            bought = self._bought
            fee = bought.get(amount_cents)
            if fee is None:
                fee = self.fill_cents(side, amount_cents)
                if len(bought) >= _MEMO_MAX:
                    bought.clear()
                bought[amount_cents] = fee
            return fee
        return self.fill_cents(side, amount_cents)

    def fill_cents(self, side: int, amount_cents: int) -> int:
        """``total_cents`` without the memo: for a fill's own amount, which rarely comes
        again (remembering each one only pushed the orders' freezes out of the memo)."""
        if amount_cents <= 0:
            return 0
        a2 = 2 * amount_cents  # each fee rounded half up: (2 a n + d) // 2 d
        commission = (a2 * self._cn + self._cd) // self._cd2
        if commission < self._min:
            commission = self._min
        transfer = (a2 * self._tn + self._td) // self._td2
        if side == _SELL:
            return commission + (a2 * self._sn + self._sd) // self._sd2 + transfer
        return commission + transfer


_SELL = int(OrderType.STOCK_SELL)
_MEMO_MAX = 1 << 12


def _check_side(side: object) -> None:
    if isinstance(side, bool) or side not in (OrderType.STOCK_BUY, OrderType.STOCK_SELL):
        raise InvalidArgument(
            f"bad order side {side!r}: expected {int(OrderType.STOCK_BUY)} (STOCK_BUY) "
            f"or {int(OrderType.STOCK_SELL)} (STOCK_SELL)"
        )


#: The default A-share schedule.
DEFAULT_FEES = FeeSchedule()


def fees_for(side: int, amount: float, schedule: FeeSchedule = DEFAULT_FEES) -> Fees:
    """The fees of one fill of ``amount`` CNY on ``side`` under ``schedule`` (default A-share)."""
    if not isinstance(schedule, FeeSchedule):
        raise InvalidArgument(f"schedule must be a FeeSchedule, got {schedule!r}")
    return schedule.fees_for(side, amount)
