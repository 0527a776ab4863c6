"""Many programs, one terminal: the shared local simulator behind ``sim://``.

The first program that opens a ``sim://`` terminal (a home and a terminal name) hosts it in
its own process; later programs attach over a Unix domain socket speaking the gateway's
protocol, and when the host ends another program takes over (see ``terminal.backend``).
``qmtkit terminal status|stop`` inspect and stop a running terminal (``terminal.cli``).
"""

from __future__ import annotations

from qmtkit.backends.terminal.paths import TerminalPaths, paths_of

__all__ = ["TerminalPaths", "paths_of"]
