"""A test double for the Backend seam: your function answers, your test pushes events.

Like a mock transport for an HTTP client, ``MockBackend(handler)`` implements the whole seam with
one user function ``handler(request) -> reply`` (plain or ``async``). Events are pushed by the
test with ``push_quotes``, ``push_report`` / ``push_item`` and ``push_connection``; every request
the client sent is kept in ``requests`` so a test can assert what reached (or did not reach)
the venue.

    def handler(req):
        if isinstance(req, SubmitOrder):
            return OrderResponse(account_id=req.account_id, order_id=1)
        return Ok()

    backend = MockBackend(handler)
    async with qmtkit.connect(backend=backend) as qk: ...
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from qmtkit.backends.base import (
    BackendInfo,
    ConnectionState,
    EventSink,
    Hello,
    Ok,
    Reply,
    Request,
)
from qmtkit.errors import BackendUnavailable, ClosedError, InvalidArgument
from qmtkit.models import AccountReport, QuoteBatch, TradeReportItem

Handler = Callable[[Request], Reply | Awaitable[Reply]]


def ok_handler(req: Request) -> Reply:
    """A handler that answers ``Ok()`` to everything (and who it is to ``Hello``)."""
    if isinstance(req, Hello):
        return BackendInfo(kind="mock", url="mock://")
    return Ok()


class MockBackend:
    """A Backend whose replies come from ``handler`` and whose events come from the test."""

    def __init__(
        self,
        handler: Handler = ok_handler,
        *,
        info: BackendInfo | None = None,
    ) -> None:
        if not callable(handler):
            raise InvalidArgument(
                f"MockBackend needs a callable handler(request) -> reply, got {handler!r}"
            )
        self.handler = handler
        self.info = info if info is not None else BackendInfo(kind="mock", url="mock://")
        self.requests: list[Request] = []
        self._sink: EventSink | None = None
        self._seq: dict[str, int] = {}
        self.opened = 0
        self.closed = 0

    @property
    def is_open(self) -> bool:
        """True inside the ``open`` lifetime."""
        return self._sink is not None

    @asynccontextmanager
    async def _lifetime(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        if self._sink is not None:
            raise BackendUnavailable("this MockBackend is already open; open it once at a time")
        self._sink = sink
        self.opened += 1
        try:
            yield self.info
        finally:
            self._sink = None
            self.closed += 1

    def open(self, sink: EventSink) -> AbstractAsyncContextManager[BackendInfo]:
        """Start the lifetime; events pushed before or after it raise ``ClosedError``."""
        return self._lifetime(sink)

    async def request(self, req: Request) -> Reply:
        """Record ``req`` and return what the handler answers (awaiting it if needed)."""
        if self._sink is None:
            raise BackendUnavailable(
                f"MockBackend is not open: {type(req).__name__} sent outside its lifetime"
            )
        self.requests.append(req)
        reply = self.handler(req)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply

    def sent(self, kind: type[object]) -> list[object]:
        """The requests of one type the client sent, in order."""
        return [r for r in self.requests if isinstance(r, kind)]

    # ----------------------------------------------------------------------- events

    def _need_sink(self) -> EventSink:
        if self._sink is None:
            raise ClosedError("MockBackend is not open: nothing to push events into")
        return self._sink

    def push_quotes(self, batch: QuoteBatch) -> None:
        """Deliver one quote batch to the client, now."""
        self._need_sink().on_quotes(batch)

    def push_report(self, report: AccountReport) -> None:
        """Deliver one account report as it is (its ``seq`` untouched)."""
        sink = self._need_sink()
        self._seq[report.account_id] = max(self._seq.get(report.account_id, 0), report.seq)
        sink.on_report(report)

    def push_item(self, account_id: str, item: TradeReportItem) -> AccountReport:
        """Wrap ``item`` in the account's next report (seq + 1), deliver it, and return it."""
        seq = self._seq.get(account_id, 0) + 1
        report = AccountReport(account_id=account_id, seq=seq, item=item)
        self.push_report(report)
        return report

    def push_connection(self, state: ConnectionState) -> None:
        """Tell the client the venue connection changed."""
        self._need_sink().on_connection(state)


__all__ = ["Handler", "MockBackend", "ok_handler"]
