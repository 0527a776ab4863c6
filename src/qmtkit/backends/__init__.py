"""Backends: the seam (``base``) and the venues behind it; ``open_backend`` picks one by URL."""

from __future__ import annotations

from qmtkit.backends.base import Backend
from qmtkit.backends.urls import DEFAULT_URL, SCHEMES, backend_url, check_url, shared
from qmtkit.backends.venues import open_venue


def open_backend(url: str | None = None) -> Backend:
    """Build (not start) the backend a URL names: ``sim://``, ``xtquant://PATH``, ``qmtkit://HOST:PORT``.

    ``sim://`` is the shared local terminal (``backends.terminal``): the first program hosts
    it, later ones attach (over a Unix socket, or loopback TCP and a token file where there are
    no Unix sockets); ``sim://?share=0`` is a private simulator inside this process.
    """
    url = check_url(backend_url(url))
    if url.startswith("sim:") and shared(url):
        from qmtkit.backends.terminal.backend import LocalTerminalBackend

        return LocalTerminalBackend.from_url(url)
    return open_venue(url)


__all__ = ["DEFAULT_URL", "SCHEMES", "Backend", "backend_url", "open_backend", "open_venue"]
