"""Pre-trade risk controls: one rule chain in front of every venue.

``RiskLimits`` says what an account may do (each rule off unless set; presets
``regulatory`` and ``conservative``), ``RiskEngine`` judges each order and cancel against an
``AccountBook`` on an injected clock and runs the ACTIVE → REDUCING → HALTED state machine.
See docs/risk.md.
"""

from __future__ import annotations

from qmtkit.risk.book import AccountBook, OpenOrder
from qmtkit.risk.engine import RiskEngine, RiskEntry, TradingState
from qmtkit.risk.limits import PRESETS, RiskLimits, limits_from_mapping
from qmtkit.risk.refusal import RISK_ERROR_BASE, RISK_TAG, RULES, Refusal, error_id_of, rule_of

__all__ = [
    "PRESETS",
    "RISK_ERROR_BASE",
    "RISK_TAG",
    "RULES",
    "AccountBook",
    "OpenOrder",
    "Refusal",
    "RiskEngine",
    "RiskEntry",
    "RiskLimits",
    "TradingState",
    "error_id_of",
    "limits_from_mapping",
    "rule_of",
]
