"""Backend URLs: which one applies, and the venue each names, built without sharing.

``open_plain_venue`` builds the backend a URL names as one process's own: ``sim://`` is a
private simulator here (``paper+`` URLs are ``venues.open_venue``'s, which wraps this).
``backends.open_backend`` is what programs (and ``qmtkit serve``) use: the same, except that
``sim://`` is the shared local terminal (``backends.terminal``).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit

from qmtkit.backends.base import Backend
from qmtkit.errors import InvalidArgument

DEFAULT_URL = "sim://"
SCHEMES = ("sim", "xtquant", "qmtkit", "backtest")


def backend_url(url: str | None) -> str:
    """The URL to use: ``url``, else ``$QMTKIT_BACKEND``, else ``sim://``."""
    return url or os.environ.get("QMTKIT_BACKEND") or DEFAULT_URL


def check_url(url: object) -> str:
    """``url`` if it is a string naming a known scheme, else ``InvalidArgument``."""
    if not isinstance(url, str):
        raise InvalidArgument(f"backend URL must be a string, got {url!r}")
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES and not scheme.startswith("paper+"):
        raise InvalidArgument(
            f"unknown backend URL {url!r}: expected sim://, xtquant://<userdata_mini path>"
            "?session=N, qmtkit://HOST:PORT, backtest://?start=YYYYMMDD... or paper+<live URL>"
        )
    return url


#: The option that turns sharing off: ``sim://?share=0`` is a private, in-process simulator.
SHARE = "share"


def shared(url: str) -> bool:
    """Whether a ``sim://`` URL asks for the shared terminal (the default) or a private one."""
    value = dict(parse_qsl(urlsplit(url).query)).get(SHARE, "1").strip().lower()
    if value in ("1", "true", "yes", "on", ""):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"bad share={value!r} in {url!r}: expected 1 (shared terminal) or 0")


def without_share(url: str) -> str:
    """The URL minus its ``share`` option (what the simulator itself is opened with)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != SHARE]
    tail = f"?{urlencode(query)}" if query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{tail}"


def open_plain_venue(url: str | None = None) -> Backend:
    """Build (not start) the backend a URL names, ``sim://`` as a private simulator (no paper+)."""
    url = check_url(backend_url(url))
    scheme = urlsplit(url).scheme
    if scheme == "sim":
        from qmtkit.backends.sim import SimBackend

        return SimBackend.from_url(without_share(url))
    if scheme.startswith("paper+"):
        raise InvalidArgument(
            f"{url!r} is a paper URL: open it with qmtkit.backends.venues.open_venue "
            "(a paper account's source cannot itself be a paper URL)"
        )
    if scheme == "backtest":
        from qmtkit.backends.replay import ReplayBackend

        return ReplayBackend.from_url(url)
    if scheme == "xtquant":
        from qmtkit.backends.xtquant import XtQuantBackend

        return XtQuantBackend.from_url(url)
    from qmtkit.backends.remote import RemoteBackend

    return RemoteBackend.from_url(url)


__all__ = [
    "DEFAULT_URL",
    "SCHEMES",
    "SHARE",
    "backend_url",
    "check_url",
    "open_plain_venue",
    "shared",
    "without_share",
]
