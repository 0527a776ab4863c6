"""The shim keeps xtquant's names, signatures and constant values.

The reference (xtquant 250807) is read with ``ast`` only, never imported, from ``~/xtq`` (or
``$XTQUANT_REF``); those tests skip when it is absent. A checked-in JSON pins the constants
offline.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest

from qmtkit.compat import xtconstant, xtdata, xtdatacenter, xttrader, xttype

PIN = Path(__file__).parent / "scripts" / "data" / "xtconstant_pin.json"
REF = Path(os.environ.get("XTQUANT_REF", Path.home() / "xtq" / "x" / "xtquant"))
needs_ref = pytest.mark.skipif(not (REF / "xtconstant.py").is_file(), reason="no xtquant reference")


def _pinned_value(v: Any) -> Any:
    if isinstance(v, dict) and "set" in v:
        return set(v["set"])
    if isinstance(v, dict) and "dict" in v:
        return {k: x for k, x in v["dict"]}
    return v


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, env)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.Dict):
        return {_eval(k, env): _eval(v, env) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    if isinstance(node, ast.Set):
        return {_eval(e, env) for e in node.elts}
    raise TypeError(ast.dump(node))


def _reference_constants() -> dict[str, Any]:
    tree = ast.parse((REF / "xtconstant.py").read_text(encoding="utf-8"))
    env: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            value = _eval(node.value, env)
            for t in node.targets:
                assert isinstance(t, ast.Name)
                env[t.id] = value
    return env


def _same(a: Any, b: Any) -> bool:
    return (
        type(a) is type(b) and a == b if not isinstance(a, (set, frozenset)) else set(a) == set(b)
    )


# --------------------------------------------------------------------------- constants


def test_every_pinned_constant_has_the_same_name_and_value() -> None:
    pin = json.loads(PIN.read_text(encoding="utf-8"))
    assert len(pin) > 500
    wrong = {
        name: (getattr(xtconstant, name, "<missing>"), _pinned_value(v))
        for name, v in pin.items()
        if not _same(getattr(xtconstant, name, object()), _pinned_value(v))
    }
    assert wrong == {}


@needs_ref
def test_constants_match_the_reference_parsed_with_ast() -> None:
    ref = _reference_constants()
    wrong = {
        n: (getattr(xtconstant, n, "<missing>"), v)
        for n, v in ref.items()
        if not _same(getattr(xtconstant, n, object()), v)
    }
    assert wrong == {}
    assert set(json.loads(PIN.read_text(encoding="utf-8"))) == set(ref)


def test_well_known_codes_have_xtquants_values() -> None:
    assert (xtconstant.STOCK_BUY, xtconstant.STOCK_SELL) == (23, 24)
    assert (xtconstant.FIX_PRICE, xtconstant.LATEST_PRICE) == (11, 5)
    assert (xtconstant.ORDER_SUCCEEDED, xtconstant.ORDER_JUNK) == (56, 57)
    assert xtconstant.ACCOUNT_TYPE_DICT[xtconstant.SECURITY_ACCOUNT] == "STOCK"
    assert xtconstant.MARKET_STR_TO_ENUM_MAPPING["SH"] == xtconstant.SH_MARKET


def test_direction_by_operation_type() -> None:
    assert xtconstant.getDirectionByOpType(xtconstant.OPT_BUY) == xtconstant.DIRECTION_FLAG_BUY
    assert xtconstant.getDirectionByOpType(xtconstant.OPT_SELL) == xtconstant.DIRECTION_FLAG_SELL


# --------------------------------------------------------------------------- signatures


def _ref_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {
        n.name: n
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
    }


def _ref_class(tree: ast.Module, name: str) -> dict[str, ast.FunctionDef]:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    return {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}


def _ref_params(fn: ast.FunctionDef) -> list[tuple[str, str | None]]:
    args = fn.args.args
    defaults: list[str | None] = [None] * (len(args) - len(fn.args.defaults))
    defaults += [ast.unparse(d) for d in fn.args.defaults]
    out = [(a.arg, d) for a, d in zip(args, defaults, strict=True)]
    return [p for p in out if p[0] not in ("self", "cls")]


def _default_matches(ref: str | None, ours: Any) -> bool:
    if ref is None:
        return ours is inspect.Parameter.empty
    if ours is inspect.Parameter.empty:
        return False
    try:
        want = ast.literal_eval(ref)
    except ValueError:
        return repr(ours) == ref or str(ours) == "nan"
    return type(want) is type(ours) and want == ours


def _mismatch(ref: ast.FunctionDef, ours: Any) -> str | None:
    params = [
        p
        for p in inspect.signature(ours).parameters.values()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in ("self", "cls")
    ]
    want = _ref_params(ref)
    got = [(p.name, p.default) for p in params]
    if [n for n, _ in want] != [n for n, _ in got]:
        return f"parameters {[n for n, _ in got]} != {[n for n, _ in want]}"
    for (name, d), (_, o) in zip(want, got, strict=True):
        if not _default_matches(d, o):
            return f"default of {name}: {o!r} != {d}"
    return None


def _parse(name: str) -> ast.Module:
    return ast.parse((REF / name).read_text(encoding="utf-8"))


@needs_ref
def test_xtdata_has_every_public_function_with_the_same_signature() -> None:
    problems: dict[str, str] = {}
    for name, ref in _ref_functions(_parse("xtdata.py")).items():
        ours = getattr(xtdata, name, None)
        if ours is None:
            problems[name] = "missing"
        elif name not in ("get_market_data3",) and (m := _mismatch(ref, ours)):
            problems[name] = m
    assert problems == {}


@needs_ref
def test_xtdata_keeps_the_short_aliases() -> None:
    tree = _parse("xtdata.py")
    aliases = [
        n.targets[0].id  # type: ignore[attr-defined]
        for n in tree.body
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Name)
        and not n.targets[0].id.startswith("_")  # type: ignore[attr-defined]
    ]
    assert aliases and [a for a in aliases if not hasattr(xtdata, a)] == []
    assert xtdata.gmd2 is xtdata.get_market_data_ex and xtdata.gld is xtdata.get_local_data


@needs_ref
def test_trader_has_every_method_with_the_same_signature() -> None:
    problems: dict[str, str] = {}
    for name, ref in _ref_class(_parse("xttrader.py"), "XtQuantTrader").items():
        if name.startswith("_") and name != "__init__":
            continue
        ours = getattr(xttrader.XtQuantTrader, name, None)
        if ours is None:
            problems[name] = "missing"
        elif m := _mismatch(ref, ours):
            problems[name] = m
    assert problems == {}
    assert xttrader.XtQuantTrader.query_account_info is xttrader.XtQuantTrader.query_account_infos


@needs_ref
def test_callback_has_every_on_method() -> None:
    ref = _ref_class(_parse("xttrader.py"), "XtQuantTraderCallback")
    problems = {
        n: _mismatch(f, getattr(xttrader.XtQuantTraderCallback, n, None) or (lambda: None))
        for n, f in ref.items()
    }
    assert {n: p for n, p in problems.items() if p} == {}
    assert all(hasattr(xttrader.XtQuantTraderCallback, n) for n in ref)


@needs_ref
def test_xttype_classes_take_the_reference_constructor_parameters() -> None:
    tree = _parse("xttype.py")
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len(classes) >= 14
    problems: dict[str, str] = {}
    for cls in classes:
        ours = getattr(xttype, cls.name, None)
        if ours is None:
            problems[cls.name] = "missing"
            continue
        init = next(m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__")
        if m := _mismatch(init, ours.__init__):
            problems[cls.name] = m
    assert problems == {}


@needs_ref
def test_xttype_objects_set_the_reference_attributes() -> None:
    tree = _parse("xttype.py")
    problems: dict[str, Any] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Xt")):
        init = next(m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__")
        want = {
            t.attr
            for node in ast.walk(init)
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Attribute)
        }
        n_args = len(_ref_params(init))
        obj = getattr(xttype, cls.name)(*range(n_args))
        if set(vars(obj)) != want:
            problems[cls.name] = set(vars(obj)) ^ want
    assert problems == {}


@needs_ref
def test_xtdatacenter_has_every_public_function() -> None:
    tree = _parse("xtdatacenter.py")
    problems: dict[str, str] = {}
    for name, ref in _ref_functions(tree).items():
        ours = getattr(xtdatacenter, name, None)
        if ours is None:
            problems[name] = "missing"
        elif m := _mismatch(ref, ours):
            problems[name] = m
    assert problems == {}


# --------------------------------------------------------------------------- xttype behaviour


def test_stock_account_maps_type_names_to_codes() -> None:
    assert xttype.StockAccount("1000").account_type == xtconstant.SECURITY_ACCOUNT
    assert xttype.StockAccount("1000", "credit").account_type == xtconstant.CREDIT_ACCOUNT
    acc = xttype.StockAccount("1000", "HUGANGTONG")
    assert (acc.account_id, acc.account_type) == ("1000", xtconstant.HUGANGTONG_ACCOUNT)


def test_stock_account_with_a_non_str_id_returns_a_message_string() -> None:
    # xtquant's constructor hands back a message instead of an account here.
    result: Any = xttype.StockAccount(1000)  # type: ignore[arg-type]
    assert isinstance(result, str)
    assert "str" in result


def test_stock_account_with_an_unknown_type_raises_naming_it() -> None:
    from qmtkit.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="'FOREX'"):
        xttype.StockAccount("1000", "FOREX")


def test_converters_keep_every_field_of_the_model() -> None:
    from qmtkit import models

    order = models.Order(
        account_id="a", stock_code="600000.SH", order_id=7, order_sysid="S7", order_time=1,
        order_type=23, order_volume=200, price_type=11, price=10.5, traded_volume=100,
        traded_price=10.4, order_status=55, status_msg="m", strategy_name="s",
        order_remark="r", secu_account="A1", instrument_name="浦发银行",
    )  # fmt: skip
    x = xttype.to_xt(order)
    assert isinstance(x, xttype.XtOrder)
    assert len(vars(x)) == 20
    assert vars(x) == {k: getattr(order, k) for k in vars(x)}
