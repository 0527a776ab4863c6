"""``xtquant://``: MiniQMT through the real xtquant package (imported only inside ``open()``).

``backend`` is the adapter; ``convert`` turns xtquant's objects into qmtkit models, ``relay``
carries xtquant's callbacks to the loop through a ``LoopInbox`` (``inbox``), ``reports`` numbers
and reconciles account reports, ``url`` parses the backend URL.
"""

from __future__ import annotations

from qmtkit.backends.xtquant.backend import (
    INSTALL_HINT,
    XtQuantBackend,
    connect_error_message,
    parse_url,
)

__all__ = ["INSTALL_HINT", "XtQuantBackend", "connect_error_message", "parse_url"]
