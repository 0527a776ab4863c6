"""The qmtkit gateway: serve any Backend to remote clients (``qmtkit serve``).

``serve(backend, host, port, token=...)`` runs the server; clients reach it with the
``qmtkit://HOST:PORT?token=...`` backend URL (``qmtkit.backends.remote.RemoteBackend``).
The server is imported on first use, so a submodule (the protocol, the CLI options) can be
imported without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qmtkit.wire.protocol import DEFAULT_PORT, PROTOCOL_VERSION

if TYPE_CHECKING:
    from qmtkit.gateway.server import Gateway, serve, serve_main
    from qmtkit.wire.security import generate_token

_LAZY = {
    "Gateway": "qmtkit.gateway.server",
    "serve": "qmtkit.gateway.server",
    "serve_main": "qmtkit.gateway.server",
    "generate_token": "qmtkit.wire.security",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["DEFAULT_PORT", "PROTOCOL_VERSION", "Gateway", "generate_token", "serve", "serve_main"]
