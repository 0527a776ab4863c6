"""The embedded exchange simulator: synthetic market, paper broker, journal, backend."""

from __future__ import annotations

from qmtkit.backends.sim.backend import SimBackend

__all__ = ["SimBackend"]
