"""The xtquant-compatible sync shim: unchanged xtquant scripts on qmtkit.

``install()`` makes ``import xtquant`` (and ``from xtquant import xtdata, xttrader, xtconstant,
xttype, xtdatacenter``) resolve to the shim modules here. ``$QMTKIT_BACKEND`` (or
``install(backend=...)``) picks the backend; the simulator (``sim://``) is the default.
``qmtkit run SCRIPT`` does all of this for a script (``qmtkit.compat.runner``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import types
from collections.abc import Sequence

from qmtkit.errors import InvalidArgument

__all__ = ["MODULES", "install", "installed", "uninstall"]

log = logging.getLogger("qmtkit.compat")

#: The xtquant modules the shim provides.
MODULES = ("xtconstant", "xttype", "xttrader", "xtdata", "xtdatacenter")
#: The xtquant release whose API the shim follows.
XTQUANT_VERSION = "xtquant_250807"


class _AliasLoader(importlib.abc.Loader):
    """Loads ``xtquant.<name>`` by importing ``qmtkit.compat.<name>`` and aliasing it."""

    def __init__(self, target: str | None, missing: str = "") -> None:
        self.target = target
        self.missing = missing

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default empty module; replaced in exec_module

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__
        if self.target is None:
            raise ModuleNotFoundError(
                f"{name} is not provided by qmtkit's xtquant shim ({self.missing}); the shim "
                f"provides xtquant.{', xtquant.'.join(MODULES)}",
                name=name,
            )
        real = importlib.import_module(self.target)
        # The import system returns whatever sys.modules holds once exec_module is done.
        sys.modules[name] = real
        setattr(sys.modules["xtquant"], name.rsplit(".", 1)[1], real)


class _PackageLoader(importlib.abc.Loader):
    """Creates the ``xtquant`` package itself: an empty namespace for the shim modules."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        module.__version__ = XTQUANT_VERSION  # type: ignore[attr-defined]
        module.__doc__ = "xtquant API served by qmtkit's compat shim (qmtkit.compat)."
        module.__all__ = list(MODULES)  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    """Answers imports of ``xtquant`` and ``xtquant.*`` with the shim."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "xtquant":
            return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        if not fullname.startswith("xtquant."):
            return None
        sub = fullname.split(".", 1)[1]
        if sub in MODULES:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(f"qmtkit.compat.{sub}"))
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(None, "it is part of xtquant's native client")
        )


_FINDER = _Finder()


def installed() -> bool:
    """True while ``install()`` is in effect."""
    return _FINDER in sys.meta_path


def install(backend: str | None = None) -> None:
    """Make ``import xtquant`` (and its modules) resolve to the shim.

    ``backend`` (a URL such as ``sim://`` or ``qmtkit://host:port``) sets ``QMTKIT_BACKEND``
    for the shim; without it the environment (or ``sim://``) decides. Idempotent.
    """
    if backend is not None:
        if not isinstance(backend, str) or "://" not in backend:
            raise InvalidArgument(
                f"backend must be a URL such as 'sim://' or 'qmtkit://127.0.0.1:58610', "
                f"got {backend!r}"
            )
        os.environ["QMTKIT_BACKEND"] = backend
    real = sys.modules.get("xtquant")
    if real is not None and not isinstance(getattr(real, "__loader__", None), _PackageLoader):
        log.warning("a real xtquant was already imported; the shim replaces it from now on")
        _forget_xtquant()
    if not installed():
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Undo ``install()``: ``import xtquant`` no longer resolves to the shim."""
    if installed():
        sys.meta_path.remove(_FINDER)
    _forget_xtquant()


def _forget_xtquant() -> None:
    for name in [n for n in sys.modules if n == "xtquant" or n.startswith("xtquant.")]:
        del sys.modules[name]
