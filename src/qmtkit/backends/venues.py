"""``open_venue``: the backend a URL names as this process's own, ``paper+`` URLs included.

Kept apart from ``backends.urls`` because the paper backend opens its own source through
``urls.open_plain_venue``: one module doing both would import itself in a circle.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from qmtkit.backends.base import Backend
from qmtkit.backends.urls import backend_url, check_url, open_plain_venue


def open_venue(url: str | None = None) -> Backend:
    """Build (not start) the backend a URL names; ``sim://`` is a private simulator here."""
    url = check_url(backend_url(url))
    if urlsplit(url).scheme.startswith("paper+"):
        from qmtkit.backends.paper import PaperBackend

        return PaperBackend.from_url(url)
    return open_plain_venue(url)


__all__ = ["open_venue"]
