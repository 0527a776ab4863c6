"""The qmtkit gateway: serve any Backend to remote clients (``qmtkit serve``).

``serve(backend, host, port, token=...)`` runs the server; clients reach it with the
``qmtkit://HOST:PORT?token=...`` backend URL (``qmtkit.backends.remote.RemoteBackend``).
"""

from __future__ import annotations

from qmtkit.gateway.protocol import DEFAULT_PORT, PROTOCOL_VERSION
from qmtkit.gateway.security import generate_token
from qmtkit.gateway.server import Gateway, serve, serve_main

__all__ = ["DEFAULT_PORT", "PROTOCOL_VERSION", "Gateway", "generate_token", "serve", "serve_main"]
