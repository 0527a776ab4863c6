"""Module-level session state: ``user_id`` once logged in, ``default_socket`` the connection."""

from __future__ import annotations

from typing import Any

default_socket: Any = None
