"""``qmtkit risk show|set|halt|resume ACCOUNT``: the risk chain from the command line.

``show`` prints the limits in force, the trading state and the journal's tail; ``set`` edits
``<home>/risk.toml`` (``*`` as ACCOUNT edits the ``[default]`` table); ``halt`` and ``resume``
flip the account's halt switch. Running programs with a risk chain on the same home obey
``set``, ``halt`` and ``resume`` from their next order or cancel (a halt also cancels the
account's open orders there within a fraction of a second); ``reload`` checks a hand-edited
``risk.toml`` and has them read it at once (unchecked, they read it within a poll).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime
from typing import Any

import msgspec

from qmtkit.clock import BEIJING, wall_ms
from qmtkit.errors import InvalidArgument, JournalLocked
from qmtkit.risk.config import (
    CONFIG_NAME,
    RiskConfig,
    default_home,
    load_config,
    risk_dir,
    save_config,
)
from qmtkit.risk.engine import RiskEntry
from qmtkit.risk.generation import bump_generation
from qmtkit.risk.journal import (
    HaltSwitch,
    append_entries,
    journal_path,
    read_entries,
    read_switch,
    switch_path,
    write_switch,
)
from qmtkit.risk.limits import RiskLimits, limits_from_mapping

__all__ = ["add_subcommands"]


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, BEIJING).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _config(home: str | None) -> RiskConfig:
    return load_config(home) or RiskConfig()


def cmd_show(args: argparse.Namespace) -> int:
    """Print limits, state and the journal's tail of one account."""
    home, account = args.home, args.account
    out = sys.stdout
    print(f"account {account}  (home {default_home(home)})", file=out)
    try:
        config = _config(home)
    except InvalidArgument as exc:
        # Running programs refuse such a file and keep the limits they had: say so, go on.
        print(f"risk.toml is refused: {exc}", file=out)
        print("running programs keep the limits they had before this change", file=out)
        config = None
    limits = config.limits_for(account) if config is not None else None
    source = "its own table" if config is not None and account in config.accounts else "[default]"
    if config is not None and limits is None:
        print("limits: none (no risk chain unless halted)", file=out)
    elif limits is not None:
        on = {
            k: v
            for k, v in msgspec.structs.asdict(limits).items()
            if v not in (None, False, frozenset(), "") and k not in ("mark_max_age_ms",)
        }
        print(f"limits ({source}):", file=out)
        for k, v in on.items():
            shown = ", ".join(sorted(v)) if isinstance(v, frozenset) else v
            print(f"  {k} = {shown}", file=out)
    switch = read_switch(switch_path(risk_dir(home), account))
    entries = list(read_entries(journal_path(risk_dir(home), account)))
    states = [e for e in entries if e.kind == "state"]
    state = states[-1].new if states else "active"
    why = f" ({states[-1].message})" if states and states[-1].message else ""
    print(f"state: {state}{why}", file=out)
    if switch is not None and switch.halted:
        print(f"halt switch: ON since {_when(switch.at_ms)} ({switch.reason})", file=out)
    refused = Counter(e.rule for e in entries if e.kind == "refused")
    if refused:
        print("refusals by rule: " + ", ".join(f"{r} {n}" for r, n in refused.most_common()))
    flags = [e for e in entries if e.kind == "flag"]
    if flags:
        print(f"flags: {len(flags)}", file=out)
    tail = entries[-args.last :] if args.last > 0 else []
    if tail:
        print(f"last {len(tail)} journal entries:", file=out)
        for e in tail:
            what = e.message or f"{e.old} -> {e.new}"
            print(f"  {_when(e.at_ms)}  {e.kind:<8} {what}", file=out)
    return 0


def _parse(settings: list[str]) -> tuple[dict[str, Any], list[str]]:
    changes: dict[str, Any] = {}
    unset: list[str] = []
    known = set(RiskLimits.__struct_fields__)
    for s in settings:
        key, sep, value = s.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidArgument(
                f"bad setting {s!r}: expected NAME=VALUE, e.g. max_order_volume=5000"
            )
        if key not in known:
            raise InvalidArgument(
                f"unknown risk limit {key!r}: known ones are {', '.join(sorted(known))}"
            )
        value = value.strip()
        if value.lower() in ("off", "none", ""):
            unset.append(key)
        elif key == "blacklist":
            changes[key] = [c.strip() for c in value.split(",") if c.strip()]
        else:
            changes[key] = value
    return changes, unset


def cmd_set(args: argparse.Namespace) -> int:
    """Change limits of one account (or ``*``: the default) in risk.toml."""
    home, account = args.home, args.account
    config = _config(home)
    current = config.default if account == "*" else config.accounts.get(account)
    table: dict[str, Any] = {}
    if current is not None:
        base = (
            RiskLimits() if not current.preset else limits_from_mapping({"preset": current.preset})
        )
        table = {
            k: sorted(v) if isinstance(v, frozenset) else v
            for k, v in msgspec.structs.asdict(current).items()
            if v != getattr(base, k) or k == "preset"
        }
    changes, unset = _parse(args.settings)
    if args.preset is not None:
        table["preset"] = "" if args.preset == "none" else args.preset
    for key in unset:
        table.pop(key, None)
    table.update(changes)
    limits = limits_from_mapping(table)
    if account == "*":
        config = RiskConfig(default=limits, accounts=config.accounts)
    else:
        config = config.with_account(account, limits)
    path = save_config(config, home)
    _journal(home, account, "set", f"limits changed: {' '.join(args.settings) or args.preset}")
    print(f"wrote {path}", file=sys.stdout)
    return 0


def _journal(home: str | None, account: str, rule: str, message: str) -> None:
    if account == "*":
        return
    entry = RiskEntry(
        at_ms=wall_ms(), account_id=account, kind="command", rule=rule, message=message
    )
    try:
        append_entries(journal_path(risk_dir(home), account), [entry])
    except JournalLocked:
        print(
            "note: the journal is busy; the command is in force but not journaled", file=sys.stderr
        )


def cmd_halt(args: argparse.Namespace) -> int:
    """Switch an account's halt on: running guards halt it and cancel its open orders."""
    reason = args.reason or "halted with `qmtkit risk halt`"
    write_switch(
        switch_path(risk_dir(args.home), args.account),
        HaltSwitch(halted=True, reason=reason, at_ms=wall_ms()),
    )
    _journal(args.home, args.account, "halt", reason)
    print(f"{args.account}: halted ({reason})", file=sys.stdout)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Switch an account's halt off: running guards return it to ACTIVE."""
    reason = args.reason or "resumed with `qmtkit risk resume`"
    write_switch(
        switch_path(risk_dir(args.home), args.account),
        HaltSwitch(halted=False, reason=reason, at_ms=wall_ms()),
    )
    _journal(args.home, args.account, "resume", reason)
    print(f"{args.account}: resumed ({reason})", file=sys.stdout)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Check a hand-edited risk.toml and have running programs read it before their next
    request (changes made with ``set`` need no reload)."""
    path = default_home(args.home) / CONFIG_NAME
    load_config(args.home)  # a file that does not load is refused here, naming the field
    bump_generation(default_home(args.home))
    print(f"{path}: running programs read it before their next request", file=sys.stdout)
    return 0


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = fn(args)
        except InvalidArgument as exc:
            print(f"qmtkit risk: {exc}", file=sys.stderr)
            return 2
        return result

    return run


def add_subcommands(subparsers: Any) -> None:
    """Add ``qmtkit risk ...`` to an argparse ``add_subparsers()`` object."""
    risk = subparsers.add_parser("risk", help="pre-trade risk limits, state and kill switch")
    sub = risk.add_subparsers(dest="risk_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("account", help="the account id")
        p.add_argument(
            "--home", default=None, help="qmtkit home (default $QMTKIT_HOME or ~/.qmtkit)"
        )

    p = sub.add_parser("show", help="limits, trading state and the journal's last entries")
    common(p)
    p.add_argument("--last", type=int, default=10, help="journal entries to print (default 10)")
    p.set_defaults(func=_guarded(cmd_show))
    p = sub.add_parser("set", help=f"change limits in <home>/{CONFIG_NAME} ('*': the default)")
    common(p)
    p.add_argument("settings", nargs="*", help="NAME=VALUE (VALUE 'off' removes a setting)")
    p.add_argument("--preset", default=None, help="regulatory, conservative or none")
    p.set_defaults(func=_guarded(cmd_set))
    p = sub.add_parser("reload", help=f"check a hand-edited {CONFIG_NAME}, apply it at once")
    p.add_argument("--home", default=None, help="qmtkit home (default $QMTKIT_HOME or ~/.qmtkit)")
    p.set_defaults(func=_guarded(cmd_reload))
    p = sub.add_parser("halt", help="kill switch: halt the account, cancel its open orders")
    common(p)
    p.add_argument("--reason", default="", help="why (shown in refusals and the journal)")
    p.set_defaults(func=_guarded(cmd_halt))
    p = sub.add_parser("resume", help="lift a halt: the account is ACTIVE again")
    common(p)
    p.add_argument("--reason", default="", help="why")
    p.set_defaults(func=_guarded(cmd_resume))
