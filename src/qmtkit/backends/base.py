"""The Backend seam: a small typed message protocol every backend speaks.

A backend answers requests (``await backend.request(req)`` returns one reply Struct) and pushes
events (quote batches, account reports, connection changes) into the ``EventSink`` it was
opened with. The messages themselves are defined in ``qmtkit.messages`` and re-exported here,
so a backend needs one import. Everything above the seam (fan-out, back-pressure, order
handles, caching, adjustment, resampling) lives in the client, once.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from qmtkit.messages import *  # noqa: F403  (the seam's vocabulary, re-exported whole)
from qmtkit.messages import BackendInfo, ConnectionState, Reply, Request
from qmtkit.models import AccountReport, QuoteBatch


@runtime_checkable
class EventSink(Protocol):
    """Where a backend pushes events. Called on the event loop's thread; never blocks."""

    def on_quotes(self, batch: QuoteBatch) -> None:
        """A batch of quote records for subscription ``batch.sub_id``."""

    def on_report(self, report: AccountReport) -> None:
        """One account report; per account, ``seq`` grows by one each call."""

    def on_connection(self, state: ConnectionState) -> None:
        """The venue connection changed."""


@runtime_checkable
class Backend(Protocol):
    """The seam between the client and a venue.

    ``open(sink)`` is the backend's lifetime: inside it the backend may run tasks, hold files
    and sockets and push events into ``sink``; on exit all of them are gone. ``request`` may be
    called only inside that lifetime, from the event loop's thread.
    """

    def open(self, sink: EventSink) -> AbstractAsyncContextManager[BackendInfo]:
        """Start the backend; the context value describes it."""

    async def request(self, req: Request) -> Reply:
        """Answer one request, or raise a ``qmtkit.errors.QmtkitError``."""
