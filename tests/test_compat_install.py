"""``install()`` makes ``import xtquant`` resolve to the shim; ``uninstall()`` undoes it."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator

import pytest

import qmtkit.compat as compat
from qmtkit.errors import InvalidArgument


@pytest.fixture
def shim(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    compat.install()
    try:
        yield
    finally:
        compat.uninstall()


def test_xtquant_and_its_modules_resolve_to_the_shim(shim: None) -> None:
    import xtquant
    from xtquant import xtconstant, xtdata, xtdatacenter, xttrader, xttype
    from xtquant.xttrader import XtQuantTrader, XtQuantTraderCallback

    assert xtdata is importlib.import_module("qmtkit.compat.xtdata")
    assert xttrader is importlib.import_module("qmtkit.compat.xttrader")
    assert xtconstant.STOCK_BUY == 23 and xttype.StockAccount("1").account_type == 2
    assert xtdatacenter.listen.__module__ == "qmtkit.compat.xtdatacenter"
    assert XtQuantTrader is compat.xttrader.XtQuantTrader  # type: ignore[attr-defined]
    assert issubclass(XtQuantTraderCallback, object)
    assert xtquant.__version__.startswith("xtquant_250807")
    import xtquant.xtdata as dotted

    assert dotted is xtdata


def test_modules_the_shim_lacks_fail_with_a_clear_import_error(shim: None) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"xtquant\.xtview is not provided"):
        importlib.import_module("xtquant.xtview")


def test_install_is_idempotent_and_uninstall_removes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    compat.install()
    compat.install()
    assert sys.meta_path.count(compat._FINDER) == 1
    importlib.import_module("xtquant.xtconstant")
    compat.uninstall()
    assert not compat.installed()
    assert "xtquant" not in sys.modules and "xtquant.xtconstant" not in sys.modules


def test_install_sets_the_backend_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMTKIT_BACKEND", "sim://")  # restored afterwards by monkeypatch
    try:
        compat.install("qmtkit://127.0.0.1:58610")
        assert os.environ["QMTKIT_BACKEND"] == "qmtkit://127.0.0.1:58610"
    finally:
        compat.uninstall()
    with pytest.raises(InvalidArgument, match="'localhost'"):
        compat.install("localhost")
