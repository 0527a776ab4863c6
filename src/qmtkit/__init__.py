"""qmtkit: an asyncio-native, typed, fast Python SDK for A-share trading with xtquant's meaning."""

from __future__ import annotations

__version__ = "0.1.0"
