"""Where risk limits come from: ``RiskConfig`` in code, or ``<home>/risk.toml``.

The file has an optional ``[default]`` table (limits of every account not listed) and one
``[accounts."ID"]`` table per account; an account's table replaces the default, it does not
merge with it. Each table holds ``RiskLimits`` fields, ``preset = "..."`` first::

    [default]
    preset = "regulatory"

    [accounts."8886660057"]
    preset = "conservative"
    max_order_volume = 5000
    blacklist = ["600519.SH"]

Reading uses the standard library's ``tomllib`` (Python 3.11+) or its backport ``tomli``
(3.10); writing (``qmtkit risk set``) is done here, for exactly this shape.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from qmtkit.atomicfile import write_atomically
from qmtkit.errors import InvalidArgument
from qmtkit.risk.generation import bump_generation
from qmtkit.risk.limits import RiskLimits, limits_from_mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["CONFIG_NAME", "RiskConfig", "default_home", "load_config", "risk_dir", "save_config"]

CONFIG_NAME = "risk.toml"


def default_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``home``, else ``$QMTKIT_HOME``, else ``~/.qmtkit``."""
    raw = home if home is not None else os.environ.get("QMTKIT_HOME") or "~/.qmtkit"
    return Path(raw).expanduser()


def risk_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """Where the risk journals and halt switches live: ``<home>/risk``."""
    return default_home(home) / "risk"


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Limits per account, and the limits of every other account (``default``; None: none)."""

    default: RiskLimits | None = None
    accounts: dict[str, RiskLimits] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default is not None and not isinstance(self.default, RiskLimits):
            raise InvalidArgument(f"default must be RiskLimits or None, got {self.default!r}")
        for account, limits in self.accounts.items():
            if not isinstance(account, str) or not account:
                raise InvalidArgument(f"account ids are non-empty strings, got {account!r}")
            if not isinstance(limits, RiskLimits):
                raise InvalidArgument(
                    f"limits of account {account!r} must be RiskLimits, got {limits!r}"
                )

    def limits_for(self, account_id: str) -> RiskLimits | None:
        """The limits of ``account_id`` (None: no risk chain for it)."""
        limits = self.accounts.get(account_id, self.default)
        return limits if limits is not None and limits.any_on else None

    @property
    def any_on(self) -> bool:
        """True if some account has a rule on."""
        return (self.default is not None and self.default.any_on) or any(
            lim.any_on for lim in self.accounts.values()
        )

    def with_account(self, account_id: str, limits: RiskLimits) -> RiskConfig:
        """A copy where ``account_id`` has ``limits``."""
        return RiskConfig(default=self.default, accounts={**self.accounts, account_id: limits})


def config_from_mapping(raw: dict[str, Any], where: str = "risk config") -> RiskConfig:
    """``RiskConfig`` from a parsed TOML document; errors name the table at fault."""
    unknown = sorted(set(raw) - {"default", "accounts"})
    if unknown:
        raise InvalidArgument(
            f"{where}: unknown table(s) {', '.join(unknown)}: expected [default] and "
            '[accounts."ID"]'
        )
    default = None
    if "default" in raw:
        try:
            default = limits_from_mapping(raw["default"])
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where} [default]: {exc}") from None
    accounts: dict[str, RiskLimits] = {}
    tables = raw.get("accounts", {})
    if not isinstance(tables, dict):
        raise InvalidArgument(f'{where}: accounts must be tables like [accounts."ID"]')
    for account, table in tables.items():
        try:
            accounts[account] = limits_from_mapping(table)
        except InvalidArgument as exc:
            raise InvalidArgument(f'{where} [accounts."{account}"]: {exc}') from None
    return RiskConfig(default=default, accounts=accounts)


def load_config(home: str | os.PathLike[str] | None = None) -> RiskConfig | None:
    """The config in ``<home>/risk.toml``, or None if there is no such file."""
    path = default_home(home) / CONFIG_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path} is not valid TOML: {exc}") from None
    return config_from_mapping(raw, str(path))


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidArgument(f"risk limits are finite numbers, got {v!r}")
        return repr(v)
    if isinstance(v, str):
        return msgspec.json.encode(v).decode()  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple, set, frozenset)):
        return "[" + ", ".join(_value(x) for x in sorted(v)) + "]"
    raise InvalidArgument(f"cannot write {v!r} to the risk config")


def _table(limits: RiskLimits) -> list[str]:
    base = RiskLimits()
    lines = []
    if limits.preset:
        lines.append(f"preset = {_value(limits.preset)}")
    from qmtkit.risk.limits import PRESETS

    ref = PRESETS[limits.preset] if limits.preset else base
    for name in limits.__struct_fields__:
        if name == "preset":
            continue
        v = getattr(limits, name)
        if v != getattr(ref, name):
            if v is None:
                raise InvalidArgument(
                    f"{name} cannot be switched off below the preset {limits.preset!r} in a "
                    "TOML file; pick another preset or none"
                )
            lines.append(f"{name} = {_value(v)}")
    return lines


def dump_config(config: RiskConfig) -> str:
    """The TOML text of ``config`` (only what differs from each table's preset)."""
    out = ["# qmtkit risk limits (docs/risk.md); `qmtkit risk set` rewrites this file.", ""]
    if config.default is not None:
        out += ["[default]", *_table(config.default), ""]
    for account in sorted(config.accounts):
        out += [f"[accounts.{_value(account)}]", *_table(config.accounts[account]), ""]
    return "\n".join(out)


def save_config(config: RiskConfig, home: str | os.PathLike[str] | None = None) -> Path:
    """Write ``config`` to ``<home>/risk.toml`` atomically; returns the path."""
    path = default_home(home) / CONFIG_NAME
    text = dump_config(config)
    # What is written must read back as the same config.
    if config_from_mapping(tomllib.loads(text)) != config:
        raise InvalidArgument("the risk config does not survive a round trip through TOML")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode("utf-8"))
    bump_generation(path.parent)  # running guards read it before their next request
    return path
