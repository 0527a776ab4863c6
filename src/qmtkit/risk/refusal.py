"""What a refusal says: ``Refusal`` (rule, limit, value) and its stable tag and error id.

Every refusal message starts with ``risk:<rule>:`` so that whoever reads an ``OrderError`` (a
strategy, the shim's ``on_order_error``, a backtest's compliance profile) can tell a local risk
refusal from a venue's and count it by rule.
"""

from __future__ import annotations

import msgspec

__all__ = ["RISK_ERROR_BASE", "RISK_TAG", "RULES", "Refusal", "error_id_of", "rule_of"]

RISK_TAG = "risk:"
#: Error ids of risk refusals are RISK_ERROR_BASE + the rule's index in RULES (stable: new
#: rules are only ever appended).
RISK_ERROR_BASE = 9100

RULES: tuple[str, ...] = (
    "halted",
    "reducing",
    "blacklist",
    "st",
    "max_order_volume",
    "max_order_notional",
    "price_band",
    "price_limits",
    "self_trade",
    "max_position_volume",
    "max_position_value",
    "max_position_share",
    "max_gross_exposure",
    "max_active_orders",
    "duplicate_order",
    "max_orders_per_second",
    "max_cancels_per_second",
    "max_actions_per_second",
    "max_orders_per_day",
    "max_cancels_per_day",
    "max_actions_per_day",
    "max_cancel_ratio",
    "no_price",
)
_IDS = {name: RISK_ERROR_BASE + i for i, name in enumerate(RULES)}


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """Why the risk chain refused an order or a cancel.

    ``limit`` and ``value`` are what was configured and what the request would have made it;
    ``message`` is the full text (tag, rule, what, value, limit).
    """

    rule: str
    limit: str
    value: str
    message: str

    @property
    def error_id(self) -> int:
        """The stable error id of the rule (RISK_ERROR_BASE + its index)."""
        return _IDS.get(self.rule, RISK_ERROR_BASE - 1)


def refuse(rule: str, what: str, value: object, limit: object) -> Refusal:
    """A refusal of ``rule``: ``what`` was ``value``, over ``limit``."""
    return Refusal(
        rule=rule,
        limit=str(limit),
        value=str(value),
        message=f"{RISK_TAG}{rule}: {what} {value} is over the limit {limit}",
    )


def rule_of(message: str) -> str | None:
    """The rule a refusal message names, or None if it is not a risk refusal."""
    if not message.startswith(RISK_TAG):
        return None
    rule, sep, _ = message[len(RISK_TAG) :].partition(":")
    return rule if sep else None


def error_id_of(message: str, default: int = -1) -> int:
    """The error id of a risk refusal message (``default`` for anything else)."""
    rule = rule_of(message)
    return _IDS.get(rule, default) if rule is not None else default
