"""History sources: where ``download`` fetches bars from, when not from the backend.

A source answers the same requests a backend answers for history (``FetchHistory`` →
``HistoryColumns``, ``FetchDividends`` → ``Dividends``, ``ListInstruments`` → ``Instruments``),
so everything after the fetch — coverage, the cache write, adjustment, resampling — is the one
path every backend already takes. A source is one small module with a class that follows
:class:`Source`; :func:`open_source` finds it by name.

Which source ``download`` uses when none is named: ``$QMTKIT_DATA_SOURCE`` (``backend``, the
default, or ``baostock``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol, runtime_checkable

from qmtkit.errors import InvalidArgument
from qmtkit.messages import Reply, Request

#: The environment variable naming the default source of ``download``.
SOURCE_ENV: Final = "QMTKIT_DATA_SOURCE"
#: ``backend`` means: fetch through the connected backend (the simulator, xtquant, a gateway).
BACKEND: Final = "backend"
#: Source name → ``module:class`` of its implementation (imported on first use).
SOURCES: Final = {"baostock": "qmtkit.data.sources.baostock:BaostockSource"}


@runtime_checkable
class Source(Protocol):
    """A history source: ``request`` answers ``FetchHistory``, ``FetchDividends`` and
    ``ListInstruments``; ``periods`` are the stored periods it fetches as such."""

    name: str
    periods: tuple[str, ...]

    async def request(self, req: Request) -> Reply:
        """Answer one history request (anything else raises ``Unsupported``)."""
        ...

    async def aclose(self) -> None:
        """End the source's session."""
        ...


def source_name(name: object = None) -> str:
    """The source to use: ``name``, else ``$QMTKIT_DATA_SOURCE``, else ``backend``; checked."""
    raw = name if name is not None else os.environ.get(SOURCE_ENV) or BACKEND
    if not isinstance(raw, str) or (raw != BACKEND and raw not in SOURCES):
        where = "" if name is not None else f" (from ${SOURCE_ENV})"
        raise InvalidArgument(
            f"unknown data source {raw!r}{where}: expected {BACKEND!r} or one of "
            f"{', '.join(sorted(SOURCES))}"
        )
    return raw


def make_source(name: str, **options: Any) -> Source:
    """Build the source ``name`` (not ``backend``) with its options; nothing is connected yet."""
    checked = source_name(name)
    if checked == BACKEND:
        raise InvalidArgument("'backend' is not a source module: fetch through the backend")
    module_name, _, cls_name = SOURCES[checked].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    source: Source = cls(**options)
    return source


@asynccontextmanager
async def open_source(name: str, **options: Any) -> AsyncIterator[Source]:
    """Build source ``name`` and end its session when the block exits."""
    source = make_source(name, **options)
    try:
        yield source
    finally:
        await source.aclose()
