"""The fake xtquant (tests/fake_xtquant) and the xtquant:// adapter keep xtquant 250807's API.

Every xtquant name the adapter touches is found by reading the adapter's source with ``ast``:
functions of ``xtdata``, methods of the ``XtQuantTrader`` object, the classes it builds from
``xttrader``/``xttype``, the callback hooks it overrides and the attributes it reads off
xttype objects. ``tests/scripts/data/xtquant_api_pin.json`` holds the reference's signature of
each of them (and the attribute names of the xttype classes), so the checks run offline; the
reference itself (``~/xtq`` or ``$XTQUANT_REF``, read with ``ast`` only, never imported) is
needed only to confirm or regenerate the pin::

    python tests/test_fake_xtquant_contract.py --write-pin
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import msgspec
import pytest

from support.xtquant_fake import FAKE, purge_xtquant

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "src" / "qmtkit" / "backends" / "xtquant"
ADAPTER_FILES = tuple(sorted(ADAPTER.glob("*.py")))
PIN = Path(__file__).parent / "scripts" / "data" / "xtquant_api_pin.json"
REF = Path(os.environ.get("XTQUANT_REF", Path.home() / "xtq" / "x" / "xtquant"))
needs_ref = pytest.mark.skipif(not (REF / "xttrader.py").is_file(), reason="no xtquant reference")

#: The xtquant submodules the adapter may reach through ``_Xt``.
MODULES = ("xtdata", "xttrader", "xttype")
#: Adapter helpers that call the function passed as their first argument with the rest.
WRAPPERS = frozenset({"_call", "_data", "_quietly"})
#: Adapter helpers that hand back the trader object (``_make_trader``: as the first of a pair).
TRADER_GETTERS = frozenset({"_live_trader"})
TRADER_MAKERS = frozenset({"_make_trader"})

#: The xttype class each qmtkit model is converted from (``from_object(Model, obj)``).
MODEL_TO_XT = {
    "Order": "XtOrder",
    "Trade": "XtTrade",
    "Position": "XtPosition",
    "Asset": "XtAsset",
    "OrderError": "XtOrderError",
    "CancelError": "XtCancelError",
    "OrderResponse": "XtOrderResponse",
    "CancelResponse": "XtCancelOrderResponse",
    "AccountStatus": "XtAccountStatus",
    "AccountInfo": "XtAccountInfo",
}
#: The object each ``XtQuantTraderCallback`` hook receives, as doc/xttrader.md states.
HOOK_TYPES = {
    "on_account_status": "XtAccountStatus",
    "on_stock_asset": "XtAsset",
    "on_stock_order": "XtOrder",
    "on_stock_trade": "XtTrade",
    "on_stock_position": "XtPosition",
    "on_order_error": "XtOrderError",
    "on_cancel_error": "XtCancelError",
    "on_order_stock_async_response": "XtOrderResponse",
    "on_cancel_order_stock_async_response": "XtCancelOrderResponse",
}
#: Model fields that are qmtkit's own additions, not xtquant attributes. ``from_object`` reads
#: them with ``getattr(obj, name, None)``, so on a real xttype object they are simply absent
#: and keep the model's default: reading them is harmless, and they are exempt here.
QMTKIT_ONLY_FIELDS = {"Order": frozenset({"error"})}


# --------------------------------------------------------------------------- adapter scan


@dataclass(frozen=True)
class Site:
    """One use of an xtquant name in the adapter; ``args`` is None for a bare reference."""

    where: str
    args: int | None = None
    keywords: tuple[str, ...] = ()
    starred: bool = False


@dataclass
class Usage:
    """Every xtquant name the adapter reaches, with where and how."""

    modules: set[str] = field(default_factory=set)
    xtdata: dict[str, list[Site]] = field(default_factory=dict)
    trader: dict[str, list[Site]] = field(default_factory=dict)
    classes: dict[str, dict[str, list[Site]]] = field(default_factory=dict)
    hooks: dict[str, list[str]] = field(default_factory=dict)
    hook_converters: dict[str, str] = field(default_factory=dict)
    hook_reads: dict[str, set[str]] = field(default_factory=dict)
    converters: dict[str, str] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _is_self_attr(node: ast.AST, name: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == name
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def _callee(node: ast.Call) -> str | None:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _module_of(node: ast.AST) -> str | None:
    """``xtdata`` for ``xtdata`` / ``<anything>.xtdata`` (likewise xttrader, xttype)."""
    if isinstance(node, ast.Name) and node.id in MODULES:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in MODULES:
        return node.attr
    return None


class _TraderFlow:
    """Which expressions hold the ``XtQuantTrader`` object (names found to a fixpoint)."""

    def __init__(self, trees: list[ast.Module]) -> None:
        self.names: set[str] = set()
        assigns = [n for t in trees for n in ast.walk(t) if isinstance(n, ast.Assign)]
        while True:
            before = len(self.names)
            for a in assigns:
                for target in a.targets:
                    self._bind(target, a.value)
            if len(self.names) == before:
                break

    def is_trader(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Await):
            return self.is_trader(node.value)
        if isinstance(node, ast.Name):
            return node.id in self.names
        if _is_self_attr(node, "_trader"):
            return True
        if isinstance(node, ast.Call):
            return _callee(node) == "XtQuantTrader" or (
                _callee(node) in TRADER_GETTERS and _is_self_attr(node.func, _callee(node) or "")
            )
        return False

    @staticmethod
    def makes_pair(node: ast.AST) -> bool:
        """``self._make_trader(...)`` or ``await <...>.run_sync(self._make_trader, ...)``."""
        if isinstance(node, ast.Await):
            node = node.value
        if not isinstance(node, ast.Call):
            return False
        if _callee(node) in TRADER_MAKERS:
            return True
        return bool(node.args) and any(_is_self_attr(node.args[0], m) for m in TRADER_MAKERS)

    def _bind(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for t, v in zip(target.elts, value.elts, strict=False):
                self._bind(t, v)
        elif isinstance(target, ast.Tuple) and self.makes_pair(value):
            self._bind_name(target.elts[0])
        elif self.is_trader(value):
            self._bind_name(target)

    def _bind_name(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.names.add(target.id)


def _site(node: ast.Attribute, parent: ast.AST | None, where: str) -> Site:
    if isinstance(parent, ast.Call) and parent.func is node:
        return Site(
            where,
            len(parent.args),
            tuple(k.arg for k in parent.keywords if k.arg),
            any(isinstance(a, ast.Starred) for a in parent.args)
            or any(k.arg is None for k in parent.keywords),
        )
    if isinstance(parent, ast.Call) and node in parent.args:
        k = parent.args.index(node)
        first = parent.args[0]
        wrapped = _callee(parent) in WRAPPERS or (
            k > 0
            and _callee(parent) in ("run_sync", "partial")
            and (
                (isinstance(first, ast.Name) and first.id in WRAPPERS)
                or (isinstance(first, ast.Attribute) and first.attr in WRAPPERS)
            )
        )
        if wrapped and (_callee(parent) not in WRAPPERS or k == 0):
            rest = parent.args[k + 1 :]
            return Site(where, len(rest), (), any(isinstance(a, ast.Starred) for a in rest))
    return Site(where)


def _scan_relay(tree: ast.Module, usage: Usage) -> None:
    cls = next(
        (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TraderRelay"), None
    )
    if cls is None:
        return
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("on_"):
            continue
        params = [a.arg for a in fn.args.args[1:]]
        usage.hooks[fn.name] = params
        reads: set[str] = set()
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in params
            ):
                reads.add(node.attr)
            if (
                isinstance(node, ast.Call)
                and _callee(node) == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in params
            ):
                lit = node.args[1]
                if isinstance(lit, ast.Constant) and isinstance(lit.value, str):
                    reads.add(lit.value)
                else:
                    usage.problems.append(f"{fn.name}: getattr with a computed name")
            if (
                isinstance(node, ast.Call)
                and _callee(node) == "_forward"
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name)
            ):
                usage.hook_converters[fn.name] = node.args[0].id
        if reads:
            usage.hook_reads[fn.name] = reads


def _scan_converters(tree: ast.Module, usage: Usage) -> None:
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and _callee(node) == "from_object":
                model = node.args[0] if node.args else None
                if isinstance(model, ast.Name):
                    usage.converters[fn.name] = model.id
                else:
                    usage.problems.append(f"{fn.name}: from_object with a computed model")


def scan_adapter(sources: dict[str, str] | None = None) -> Usage:
    """Every xtquant name the adapter sources (file name -> text) reach, found with ``ast``."""
    if sources is None:
        sources = {p.name: p.read_text(encoding="utf-8") for p in ADAPTER_FILES}
    trees = {name: ast.parse(text) for name, text in sources.items()}
    flow = _TraderFlow(list(trees.values()))
    usage = Usage()
    for fname, tree in trees.items():
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        # Attributes of imported modules (``anyio.sleep``) are no xtquant names.
        imported = {
            (a.asname or a.name).split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and not (
                isinstance(node.value, ast.Name) and node.value.id in imported
            ):
                usage.attributes.add(node.attr)
            if isinstance(node, ast.Call) and _callee(node) == "import_module" and node.args:
                arg = node.args[0]
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.startswith("xtquant.")
                ):
                    usage.modules.add(arg.value.removeprefix("xtquant."))
            if isinstance(node, ast.Assign) and _module_of(node.value):
                # Aliasing a module under another name would hide its calls from the scan.
                for t in node.targets:
                    if not (isinstance(t, ast.Name) and t.id == _module_of(node.value)):
                        usage.problems.append(
                            f"{fname}:{node.lineno}: {ast.unparse(t)} aliases xtquant."
                            f"{_module_of(node.value)}"
                        )
            if not isinstance(node, ast.Attribute):
                continue
            where = f"{fname}:{node.lineno}"
            site = _site(node, parents.get(node), where)
            module = _module_of(node.value)
            if module == "xtdata":
                usage.xtdata.setdefault(node.attr, []).append(site)
            elif module in ("xttrader", "xttype"):
                usage.classes.setdefault(module, {}).setdefault(node.attr, []).append(site)
            elif flow.is_trader(node.value):
                usage.trader.setdefault(node.attr, []).append(site)
        if fname == "relay.py":
            _scan_relay(tree, usage)
        if fname == "convert.py":
            _scan_converters(tree, usage)
        _check_trader_helpers(fname, tree, flow, usage)
    # Building the trader calls its __init__, checked like any method.
    for s in usage.classes.get("xttrader", {}).get("XtQuantTrader", []):
        if s.args is not None:
            usage.trader.setdefault("__init__", []).append(s)
    return usage


def _check_trader_helpers(fname: str, tree: ast.Module, flow: _TraderFlow, usage: Usage) -> None:
    """The helpers the flow trusts must really hand back the trader."""
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        returns = [r.value for r in ast.walk(fn) if isinstance(r, ast.Return) and r.value]
        if fn.name in TRADER_GETTERS and not all(flow.is_trader(r) for r in returns):
            usage.problems.append(f"{fname}: {fn.name} returns something besides the trader")
        if fn.name in TRADER_MAKERS and not all(
            isinstance(r, ast.Tuple) and flow.is_trader(r.elts[0]) for r in returns
        ):
            usage.problems.append(f"{fname}: {fn.name} does not return (trader, ...)")


def model_fields(model: str) -> set[str]:
    """The field names of a qmtkit model: the attributes ``from_object`` reads."""
    from qmtkit import models

    cls = getattr(models, model)
    return {f.name for f in msgspec.structs.fields(cls)}


# --------------------------------------------------------------------------- reference (ast)


def _params(fn: ast.FunctionDef) -> list[list[str | None]]:
    """[name, kind, default as source text or None] per parameter, ``self`` left out."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
    defaults += list(a.defaults)
    out: list[list[str | None]] = []
    for p, d in zip(positional, defaults, strict=True):
        kind = "positional_only" if p in a.posonlyargs else "positional_or_keyword"
        out.append([p.arg, kind, None if d is None else ast.unparse(d)])
    if a.vararg:
        out.append([a.vararg.arg, "var_positional", None])
    for p, kd in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append([p.arg, "keyword_only", None if kd is None else ast.unparse(kd)])
    if a.kwarg:
        out.append([a.kwarg.arg, "var_keyword", None])
    return [p for p in out if p[0] not in ("self", "cls")]


def _parse_ref(name: str) -> ast.Module:
    return ast.parse((REF / name).read_text(encoding="utf-8"))


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _init_attributes(cls: ast.ClassDef) -> list[str]:
    init = _methods(cls)["__init__"]
    return sorted(
        {
            t.attr
            for node in ast.walk(init)
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Attribute)
            and isinstance(t.value, ast.Name)
            and t.value.id == "self"
        }
    )


def _doc_attributes(doc: str, cls: str) -> list[str]:
    """Attribute names from the table under ``### <title>XtFoo`` in a reference doc."""
    text = (REF / "doc" / doc).read_text(encoding="utf-8")
    m = re.search(rf"^###[^\n]*{cls}\s*$(.*?)(?=^#)", text, re.S | re.M)
    assert m, f"no section for {cls} in {doc}"
    names = re.findall(r"^\|?\s*`?([a-z_][a-z0-9_]*)`?\s*\|", m.group(1), re.M)
    return sorted(set(names))


def _push_attributes(trader: ast.ClassDef) -> dict[str, list[str]]:
    """Per hook, the attributes the reference's own push handlers read off the raw object."""
    out: dict[str, set[str]] = {}
    for fn in ast.walk(_methods(trader)["__init__"]):
        if not isinstance(fn, ast.FunctionDef) or len(fn.args.args) != 1:
            continue
        param = fn.args.args[0].arg
        rebound = any(
            isinstance(t, ast.Name) and t.id == param
            for a in ast.walk(fn)
            if isinstance(a, ast.Assign)
            for t in a.targets
        )
        if rebound:  # the hook gets a freshly built xttype object, not the raw push
            continue
        hooks = {
            _callee(c)
            for c in ast.walk(fn)
            if isinstance(c, ast.Call)
            and isinstance(c.func, ast.Attribute)
            and ast.unparse(c.func.value) == "self.callback"
            and [ast.unparse(x) for x in c.args] == [param]
        }
        reads = {
            n.attr
            for n in ast.walk(fn)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == param
        }
        for hook in hooks:
            if hook and reads:
                out.setdefault(hook, set()).update(reads)
    return {k: sorted(v) for k, v in sorted(out.items())}


def reference_pin(usage: Usage | None = None) -> dict[str, Any]:
    """The pin as the reference says it today, for the names ``usage`` (the adapter) reaches."""
    usage = usage or scan_adapter()
    xtdata = _parse_ref("xtdata.py")
    xttrader = _parse_ref("xttrader.py")
    xttype = _parse_ref("xttype.py")
    init = _parse_ref("__init__.py")
    version = next(
        n.value.value
        for n in init.body
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Constant)
        and ast.unparse(n.targets[0]) == "__version__"
    )
    functions = {n.name: n for n in xtdata.body if isinstance(n, ast.FunctionDef)}
    trader = _class(xttrader, "XtQuantTrader")
    callback = _class(xttrader, "XtQuantTraderCallback")
    trader_methods = _methods(trader)
    classes: dict[str, Any] = {}
    for name in sorted({"StockAccount", *MODEL_TO_XT.values()}):
        node = next(
            (n for n in xttype.body if isinstance(n, ast.ClassDef) and n.name == name), None
        )
        if node is None:
            # Built by the binary client; only its documented attribute names are known.
            classes[name] = {
                "params": None,
                "attributes": _doc_attributes("xttrader.md", name),
                "source": "doc/xttrader.md",
            }
        else:
            classes[name] = {
                "params": _params(_methods(node)["__init__"]),
                "attributes": _init_attributes(node),
                "source": "xttype.py",
            }
    return {
        "reference": version,
        "modules": sorted(usage.modules),
        "xtdata": {n: _params(functions[n]) for n in sorted(usage.xtdata)},
        "XtQuantTrader": {n: _params(trader_methods[n]) for n in sorted(usage.trader)},
        "XtQuantTraderCallback": {n: _params(m) for n, m in sorted(_methods(callback).items())},
        "push_attributes": _push_attributes(trader),
        "xttrader_classes": sorted(usage.classes.get("xttrader", {})),
        "xttype": classes,
        "all_names": {
            "xtdata": sorted(n for n in functions if not n.startswith("_")),
            "XtQuantTrader": sorted(n for n in trader_methods if not n.startswith("_")),
        },
    }


def load_pin() -> dict[str, Any]:
    """The checked-in pin."""
    pin: dict[str, Any] = json.loads(PIN.read_text(encoding="utf-8"))
    return pin


def write_pin() -> None:
    """Regenerate the pin from the reference (which must be present)."""
    PIN.write_text(
        json.dumps(reference_pin(), indent=1, ensure_ascii=False, sort_keys=True) + "\n",
        encoding="utf-8",
    )


# --------------------------------------------------------------------------- fake package


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The fake xtquant's modules, imported fresh from tests/fake_xtquant."""
    import importlib

    purge_xtquant()
    monkeypatch.syspath_prepend(str(FAKE))
    mods: dict[str, ModuleType] = {
        m: importlib.import_module(f"xtquant.{m}") for m in (*MODULES, "xtconstant")
    }
    yield SimpleNamespace(**mods)
    purge_xtquant()


def _fake_params(fn: Any) -> list[list[str | None]]:
    out: list[list[str | None]] = []
    for p in inspect.signature(fn).parameters.values():
        if p.name in ("self", "cls"):
            continue
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        out.append([p.name, p.kind.name.lower(), default])
    return out


def _normal(params: list[list[str | None]]) -> list[tuple[str | None, ...]]:
    """Defaults compared as values (``'x'`` and ``"x"`` are the same default)."""
    out: list[tuple[str | None, ...]] = []
    for name, kind, default in params:
        value = default
        if default is not None:
            try:
                value = repr(ast.literal_eval(default))
            except ValueError:
                value = default
        out.append((name, kind, value))
    return out


def _signature(params: list[list[str | None]]) -> inspect.Signature:
    kinds = {
        "positional_only": inspect.Parameter.POSITIONAL_ONLY,
        "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
        "var_positional": inspect.Parameter.VAR_POSITIONAL,
        "keyword_only": inspect.Parameter.KEYWORD_ONLY,
        "var_keyword": inspect.Parameter.VAR_KEYWORD,
    }
    return inspect.Signature(
        [
            inspect.Parameter(
                str(name),
                kinds[str(kind)],
                default=inspect.Parameter.empty if default is None else default,
            )
            for name, kind, default in params
        ]
    )


# --------------------------------------------------------------------------- (a) the pin


@needs_ref
def test_pin_is_what_the_reference_says_today() -> None:
    assert load_pin() == json.loads(json.dumps(reference_pin()))


def test_pin_covers_the_reference_version_the_project_targets() -> None:
    pin = load_pin()
    assert pin["reference"] == "xtquant_250807"
    assert len(pin["xtdata"]) >= 10 and len(pin["XtQuantTrader"]) >= 15


# --------------------------------------------------------------------------- (b) the fake


def test_fake_xtdata_functions_have_the_pinned_signatures(fake: SimpleNamespace) -> None:
    wrong = {
        name: _fake_params(getattr(fake.xtdata, name)) if hasattr(fake.xtdata, name) else "missing"
        for name, params in load_pin()["xtdata"].items()
        if not hasattr(fake.xtdata, name)
        or _normal(_fake_params(getattr(fake.xtdata, name))) != _normal(params)
    }
    assert wrong == {}


def test_fake_trader_methods_have_the_pinned_signatures(fake: SimpleNamespace) -> None:
    cls = fake.xttrader.XtQuantTrader
    wrong = {
        name: _fake_params(getattr(cls, name)) if hasattr(cls, name) else "missing"
        for name, params in load_pin()["XtQuantTrader"].items()
        if not hasattr(cls, name) or _normal(_fake_params(getattr(cls, name))) != _normal(params)
    }
    assert wrong == {}


def test_fake_callback_base_has_every_reference_hook_with_its_parameters(
    fake: SimpleNamespace,
) -> None:
    cls = fake.xttrader.XtQuantTraderCallback
    ours = {n: _fake_params(m) for n, m in vars(cls).items() if n.startswith("on_")}
    assert ours == load_pin()["XtQuantTraderCallback"]


def test_fake_builds_every_class_the_adapter_takes_from_xttrader(fake: SimpleNamespace) -> None:
    missing = [n for n in load_pin()["xttrader_classes"] if not hasattr(fake.xttrader, n)]
    assert missing == []


def test_fake_stock_account_takes_the_pinned_parameters_and_sets_its_attributes(
    fake: SimpleNamespace,
) -> None:
    pinned = load_pin()["xttype"]["StockAccount"]
    assert _normal(_fake_params(fake.xttype.StockAccount)) == _normal(pinned["params"])
    account = fake.xttype.StockAccount("1000000365", "STOCK")
    assert sorted(vars(account)) == pinned["attributes"]
    assert account.account_type == fake.xtconstant.SECURITY_ACCOUNT


@pytest.mark.parametrize("xt_class", sorted(set(MODEL_TO_XT.values())))
def test_fake_xttype_objects_set_exactly_the_reference_attributes(
    fake: SimpleNamespace, xt_class: str
) -> None:
    pinned = load_pin()["xttype"][xt_class]
    cls = getattr(fake.xttype, xt_class)
    # The fake's records take *args/**kwargs (one generic constructor), so only the count and
    # order of the reference's parameters can be honoured: positional placeholders suffice.
    n_args = len(pinned["params"]) if pinned["params"] is not None else len(cls._fields)
    obj = cls(*(f"v{i}" for i in range(n_args)))
    assert sorted(vars(obj)) == pinned["attributes"]
    if pinned["params"] is not None:
        names = [p[0] for p in pinned["params"]]
        assert [getattr(obj, n) for n in names] == [f"v{i}" for i in range(n_args)]


def test_fake_xtconstant_values_are_the_pinned_reference_values(fake: SimpleNamespace) -> None:
    # The fake keeps a few constants only; mappings may be a subset of xtquant's.
    pinned = json.loads((PIN.parent / "xtconstant_pin.json").read_text(encoding="utf-8"))
    wrong: dict[str, Any] = {}
    for name, value in vars(fake.xtconstant).items():
        if not name.isupper():
            continue
        want = pinned.get(name, "<not in xtquant>")
        if isinstance(want, dict) and "dict" in want:
            want = {k: v for k, v in want["dict"]}
            ok = isinstance(value, dict) and value.items() <= want.items()
        else:
            ok = type(value) is type(want) and value == want
        if not ok:
            wrong[name] = (value, want)
    assert wrong == {}


# --------------------------------------------------------------------------- (c) the adapter


def test_scan_finds_no_name_it_cannot_follow() -> None:
    assert scan_adapter().problems == []


def test_every_xtdata_function_the_adapter_calls_is_pinned() -> None:
    assert sorted(scan_adapter().xtdata) == sorted(load_pin()["xtdata"])


def test_every_trader_method_the_adapter_calls_is_pinned() -> None:
    assert sorted(scan_adapter().trader) == sorted(load_pin()["XtQuantTrader"])


def test_every_xtquant_module_and_class_the_adapter_takes_is_pinned() -> None:
    usage, pin = scan_adapter(), load_pin()
    assert sorted(usage.modules) == pin["modules"] == sorted(MODULES)
    assert sorted(usage.classes.get("xttrader", {})) == pin["xttrader_classes"]
    assert set(usage.classes.get("xttype", {})) <= set(pin["xttype"])


def test_no_other_xtquant_api_name_appears_in_the_adapter() -> None:
    # Safety net for calls the scan could not tie to xtdata or the trader (e.g. through an
    # alias): any attribute spelled like a reference function/method must be a pinned one.
    pin = load_pin()
    known = set(pin["all_names"]["xtdata"]) | set(pin["all_names"]["XtQuantTrader"])
    pinned = set(pin["xtdata"]) | set(pin["XtQuantTrader"])
    assert sorted((scan_adapter().attributes & known) - pinned) == []


def test_every_adapter_call_binds_to_the_pinned_signature() -> None:
    usage, pin = scan_adapter(), load_pin()
    sigs = {
        **{f"xtdata.{n}": p for n, p in pin["xtdata"].items()},
        **{f"trader.{n}": p for n, p in pin["XtQuantTrader"].items()},
        **{f"xttype.{n}": c["params"] for n, c in pin["xttype"].items() if c["params"]},
    }
    sites = [
        *((f"xtdata.{n}", s) for n, ss in usage.xtdata.items() for s in ss),
        *((f"trader.{n}", s) for n, ss in usage.trader.items() for s in ss),
        *((f"xttype.{n}", s) for n, ss in usage.classes.get("xttype", {}).items() for s in ss),
    ]
    checked, wrong = 0, []
    for name, site in sites:
        if site.args is None or site.starred:
            continue
        try:
            _signature(sigs[name]).bind(*range(site.args), **dict.fromkeys(site.keywords))
        except TypeError as exc:
            wrong.append(f"{site.where} {name}: {exc}")
        checked += 1
    assert wrong == []
    assert checked >= 20


def test_every_conversion_reads_only_reference_attributes() -> None:
    usage, pin = scan_adapter(), load_pin()
    assert usage.converters, "the scan found no from_object conversion"
    unmapped = sorted(set(usage.converters.values()) - set(MODEL_TO_XT))
    assert unmapped == [], "map these models to their xttype class in MODEL_TO_XT"
    extra = {
        model: sorted(
            model_fields(model)
            - set(pin["xttype"][MODEL_TO_XT[model]]["attributes"])
            - QMTKIT_ONLY_FIELDS.get(model, frozenset())
        )
        for model in set(usage.converters.values())
    }
    assert {m: e for m, e in extra.items() if e} == {}


def test_relay_hooks_convert_the_object_the_reference_hands_them() -> None:
    usage = scan_adapter()
    got = {
        hook: MODEL_TO_XT[usage.converters[conv]] for hook, conv in usage.hook_converters.items()
    }
    assert got == {h: t for h, t in HOOK_TYPES.items() if h in usage.hook_converters}


def test_relay_reads_only_attributes_the_reference_push_carries() -> None:
    usage, pin = scan_adapter(), load_pin()
    wrong = {
        hook: sorted(
            reads
            - set(pin["xttype"][HOOK_TYPES[hook]]["attributes"])
            - set(pin["push_attributes"].get(hook, []))
        )
        for hook, reads in usage.hook_reads.items()
    }
    assert {h: w for h, w in wrong.items() if w} == {}
    assert "seq" in usage.hook_reads.get("on_order_error", set())


def test_scan_catches_a_trader_call_through_an_alias_and_a_bad_argument() -> None:
    src = (
        "class B:\n"
        "    async def q(self, acc):\n"
        "        t = self._live_trader()\n"
        "        other = t\n"
        "        other.query_stock_position(acc)\n"
        "        await self._call(self._trader.query_stock_orders, acc, True, 1)\n"
        "        self._xtm().xtdata.get_full_tick(['600000.SH'], period='1d')\n"
        "    def _live_trader(self):\n"
        "        return self._trader\n"
    )
    usage = scan_adapter({"xtquant.py": src})
    assert sorted(usage.trader) == ["query_stock_orders", "query_stock_position"]
    assert usage.trader["query_stock_orders"][0].args == 3
    assert usage.xtdata["get_full_tick"][0].keywords == ("period",)
    sig = _signature(load_pin()["XtQuantTrader"]["query_stock_orders"])
    with pytest.raises(TypeError):
        sig.bind(0, 1, 2)


# --------------------------------------------------------------------------- (d) callbacks


def test_relay_hooks_are_reference_callback_methods_with_the_same_parameters() -> None:
    pinned = load_pin()["XtQuantTraderCallback"]
    hooks = scan_adapter().hooks
    assert len(hooks) >= 9
    wrong = {
        name: params
        for name, params in hooks.items()
        if name not in pinned or params != [p[0] for p in pinned[name]]
    }
    assert wrong == {}


def test_relay_handles_every_hook_whose_object_it_can_convert() -> None:
    assert set(HOOK_TYPES) <= set(scan_adapter().hooks)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-pin"]:
        sys.exit("usage: python tests/test_fake_xtquant_contract.py --write-pin")
    write_pin()
    print(f"wrote {PIN.relative_to(ROOT)}")
