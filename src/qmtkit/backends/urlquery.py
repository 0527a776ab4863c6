"""Reading the query parts of venue URLs (``sim://?seed=7``, ``backtest://?cash=5e5``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from qmtkit.errors import InvalidArgument

D = TypeVar("D")


def venue_query(
    url: str, scheme: str, known: Iterable[str], *, wrong_scheme: str
) -> dict[str, str]:
    """The query of a ``scheme://`` URL as a dict; another scheme or an unknown part is refused.

    ``wrong_scheme`` is the refusal of a URL of another scheme (it names the URL and the form
    expected).
    """
    parts = urlsplit(url)
    if parts.scheme != scheme:
        raise InvalidArgument(wrong_scheme)
    q = dict(parse_qsl(parts.query))
    names = set(known)
    unknown = set(q) - names
    if unknown:
        raise InvalidArgument(
            f"unknown {scheme}:// parameter(s) {sorted(unknown)} in {url!r}; known: {sorted(names)}"
        )
    return q


def query_number(
    query: Mapping[str, str], name: str, kind: type[int] | type[float], default: D, url: str
) -> int | float | D:
    """``query[name]`` read as ``kind``, ``default`` when absent; a bad text names itself."""
    if name not in query:
        return default
    try:
        return kind(query[name])
    except ValueError:
        raise InvalidArgument(
            f"bad {name}={query[name]!r} in {url!r}: expected a {kind.__name__}"
        ) from None


__all__ = ["query_number", "venue_query"]
