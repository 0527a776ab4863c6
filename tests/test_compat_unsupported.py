"""The shim's unsupported xtquant functions: generated from one table, each refuses clearly."""

from __future__ import annotations

import inspect

import pytest

from qmtkit.compat import _unsupported, xtdata, xttrader
from qmtkit.errors import Unsupported


def test_every_table_entry_becomes_a_function_of_that_signature() -> None:
    names = [line.split("(")[0] for line in _unsupported._entries(_unsupported.XTDATA)]
    assert len(names) > 80 and len(set(names)) == len(names)
    fn = xtdata.get_broker_queue_data
    assert list(inspect.signature(fn).parameters) == [
        "stock_list", "start_time", "end_time", "count", "show_broker_name",
    ]  # fmt: skip
    assert fn.__name__ == "get_broker_queue_data" and "Unsupported" in (fn.__doc__ or "")


def test_a_stub_refuses_naming_itself() -> None:
    with pytest.raises(Unsupported, match=r"xtdata\.download_etf_info\(\) is not supported"):
        xtdata.download_etf_info()


def test_a_stub_called_with_wrong_arguments_is_a_type_error_first() -> None:
    with pytest.raises(TypeError):
        xtdata.download_etf_info(1)


def test_a_trader_stub_is_a_method_that_refuses_naming_itself() -> None:
    trader = xttrader.XtQuantTrader("/tmp/userdata_mini", 1)
    assert "self" not in inspect.signature(trader.query_credit_detail).parameters
    with pytest.raises(Unsupported, match=r"XtQuantTrader\.query_credit_detail\(\)"):
        trader.query_credit_detail(None)
    with pytest.raises(TypeError):
        trader.query_credit_detail()


def test_no_table_entry_shadows_a_written_function() -> None:
    import ast
    from pathlib import Path

    for module, table, cls in (
        (xtdata, _unsupported.XTDATA, None),
        (xttrader, _unsupported.XTQUANT_TRADER, "XtQuantTrader"),
    ):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        body = tree.body
        if cls is not None:
            body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
        written = {n.name for n in body if isinstance(n, ast.FunctionDef)}
        stubs = {line.split("(")[0] for line in _unsupported._entries(table)}
        assert written & stubs == set(), "delete these lines from compat/_unsupported.py"
