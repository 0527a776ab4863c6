"""The fake baostock (tests/fake_baostock) and the baostock source keep baostock 0.9.4's API.

Every baostock function the source calls is found by reading the source modules with ``ast``
(``session.call("name", keyword=...)``). ``tests/scripts/data/baostock_api_pin.json`` holds the
real package's signature of each (and of ``login``/``logout``), so the checks run offline; the
real package (``~/bs/x/baostock`` or ``$BAOSTOCK_REF``: the wheel unpacked, read with ``ast``
only, never imported) is needed only to confirm or regenerate the pin::

    pip download --no-deps baostock==0.9.4 -d ~/bs && unzip ~/bs/baostock-*.whl -d ~/bs/x
    python tests/test_fake_baostock_contract.py --write-pin
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "src" / "qmtkit" / "data" / "sources"
FAKE = Path(__file__).parent / "fake_baostock"
PIN = Path(__file__).parent / "scripts" / "data" / "baostock_api_pin.json"
REF = Path(os.environ.get("BAOSTOCK_REF", Path.home() / "bs" / "x" / "baostock"))
needs_ref = pytest.mark.skipif(not (REF / "__init__.py").is_file(), reason="no baostock copy")
#: Called by the session itself rather than through ``call``.
SESSION_FUNCS = ("login", "logout")
#: Keywords of ``call`` itself, not passed on to baostock.
SESSION_KEYWORDS = frozenset({"check"})
#: What the session reads off a result object, and the socket holder it closes.
RESULT_ATTRS = ("error_code", "error_msg", "fields", "next", "get_row_data", "per_page_count")


def used_calls() -> dict[str, set[str]]:
    """baostock function → keyword names, for every ``*.call("fn", kw=...)`` in the source."""
    out: dict[str, set[str]] = {name: set() for name in SESSION_FUNCS}
    for path in sorted(SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                out.setdefault(node.args[0].value, set()).update(
                    k.arg for k in node.keywords if k.arg and k.arg not in SESSION_KEYWORDS
                )
    return out


def _signature_of(fn: ast.FunctionDef) -> list[list[Any]]:
    args = fn.args.args
    defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
    return [
        [a.arg, None if d is None else repr(ast.literal_eval(d))]
        for a, d in zip(args, defaults, strict=True)
    ]


def reference_signatures() -> dict[str, list[list[Any]]]:
    """Top-level function signatures of the real package, read with ``ast``."""
    out: dict[str, list[list[Any]]] = {}
    for path in sorted(REF.rglob("*.py")):
        if "demo" in path.parts:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                out.setdefault(node.name, _signature_of(node))
    return out


def fake_signature(fn: Any) -> list[list[Any]]:
    return [
        [p.name, None if p.default is inspect.Parameter.empty else repr(p.default)]
        for p in inspect.signature(fn).parameters.values()
    ]


def load_pin() -> dict[str, Any]:
    pin: dict[str, Any] = json.loads(PIN.read_text(encoding="utf-8"))
    return pin


@pytest.fixture(scope="module")
def fake() -> Any:
    if str(FAKE) not in sys.path:
        sys.path.insert(0, str(FAKE))
    import baostock

    return baostock


def test_every_function_the_source_calls_is_pinned() -> None:
    pinned = load_pin()["functions"]
    missing = sorted(set(used_calls()) - set(pinned))
    assert not missing, f"pin lacks {missing}: rerun with --write-pin"


def test_the_source_passes_only_parameters_the_package_has() -> None:
    pinned = load_pin()["functions"]
    for fn, keywords in used_calls().items():
        names = {p[0] for p in pinned[fn]}
        assert keywords <= names, (fn, sorted(keywords - names))


def test_the_fake_has_the_pinned_signatures(fake: Any) -> None:
    for fn, sig in load_pin()["functions"].items():
        assert fake_signature(getattr(fake, fn)) == sig, fn


def test_the_fake_result_has_what_the_session_reads(fake: Any) -> None:
    from baostock.data.resultset import ResultData

    rs = ResultData()
    for attr in load_pin()["result_attrs"]:
        assert hasattr(rs, attr), attr
    assert hasattr(fake.common.context, "default_socket")


@needs_ref
def test_the_pin_matches_the_real_package() -> None:
    ref = reference_signatures()
    for fn, sig in load_pin()["functions"].items():
        assert ref.get(fn) == sig, fn
    result_src = (REF / "data" / "resultset.py").read_text(encoding="utf-8")
    for attr in load_pin()["result_attrs"]:
        assert f"self.{attr}" in result_src or f"def {attr}(" in result_src, attr
    assert "default_socket" in (REF / "util" / "socketutil.py").read_text(encoding="utf-8")


def write_pin() -> None:
    """Regenerate the pin from the real package (read with ast)."""
    ref = reference_signatures()
    pin = {
        "package": "baostock 0.9.4",
        "functions": {fn: ref[fn] for fn in sorted(used_calls())},
        "result_attrs": list(RESULT_ATTRS),
    }
    PIN.write_text(json.dumps(pin, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if "--write-pin" in sys.argv:
        write_pin()
        print(f"wrote {PIN}")
