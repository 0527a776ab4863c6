"""Backends: the seam (``base``) and the venues behind it; ``open_backend`` picks one by URL."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from qmtkit.backends.base import Backend
from qmtkit.errors import InvalidArgument

DEFAULT_URL = "sim://"
SCHEMES = ("sim", "xtquant", "qmtkit", "backtest")


def backend_url(url: str | None) -> str:
    """The URL to use: ``url``, else ``$QMTKIT_BACKEND``, else ``sim://``."""
    return url or os.environ.get("QMTKIT_BACKEND") or DEFAULT_URL


def open_backend(url: str | None = None) -> Backend:
    """Build (not start) the backend a URL names: ``sim://``, ``xtquant://PATH``, ``qmtkit://HOST:PORT``."""
    url = backend_url(url)
    if not isinstance(url, str):
        raise InvalidArgument(f"backend URL must be a string, got {url!r}")
    scheme = urlsplit(url).scheme
    if scheme == "sim":
        from qmtkit.backends.sim import SimBackend

        return SimBackend.from_url(url)
    if scheme.startswith("paper+"):
        from qmtkit.backends.paper import PaperBackend

        return PaperBackend.from_url(url)
    if scheme == "backtest":
        from qmtkit.backends.replay import ReplayBackend

        return ReplayBackend.from_url(url)
    if scheme == "xtquant":
        from qmtkit.backends.xtquant import XtQuantBackend

        return XtQuantBackend.from_url(url)
    if scheme == "qmtkit":
        from qmtkit.backends.remote import RemoteBackend

        return RemoteBackend.from_url(url)
    raise InvalidArgument(
        f"unknown backend URL {url!r}: expected sim://, xtquant://<userdata_mini path>?session=N "
        "qmtkit://HOST:PORT, backtest://?start=YYYYMMDD... or paper+<live URL>"
    )


__all__ = ["Backend", "backend_url", "open_backend"]
