"""The hosting program's own way into its terminal: the hub's requests and events, no wire.

The program that hosts a terminal is one of its clients too. Its requests go straight to the
simulator (as with a private one) and each report reaches it as the simulator journals it,
under the same numbers the attached programs read, so every program sees the same reports
exactly once and in order. Only what the hub shares between programs (accounts opened at the
simulator once, journaled; quote subscriptions under ids of the hub's) is routed through it.

``DirectChannel`` is also the byte stream of the hosting program's link, so the remote
backend's link machinery (restore after a takeover, the end of the link) works unchanged: it
carries no bytes, ``receive`` waits until the terminal stops and then reports the end of the
stream, ``aclose`` detaches the program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec

from qmtkit.backends.base import (
    CloseAccount,
    ConnectionState,
    EventSink,
    Ok,
    OpenAccount,
    Reply,
    Request,
    SubmitOrder,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.errors import BackendUnavailable, InvalidArgument
from qmtkit.models import AccountReport, QuoteBatch

if TYPE_CHECKING:
    from qmtkit.backends.terminal.control import Program
    from qmtkit.backends.terminal.host import TerminalGateway

#: The requests the hub answers itself; every other one goes straight to the simulator.
ROUTED = (SubscribeQuotes, UnsubscribeQuotes, OpenAccount, CloseAccount)


class DirectChannel(anyio.abc.ByteStream):
    """One program of the hosting process, attached to its terminal without a socket."""

    def __init__(
        self,
        hub: TerminalGateway,
        program: Program,
        sink: EventSink,
        deliver: Callable[[AccountReport], None],
        deliver_many: Callable[[list[AccountReport]], None] | None = None,
    ) -> None:
        self.hub = hub
        self.program = program
        self.sink = sink
        #: Hands one journaled report of the program's accounts to the program.
        self.deliver = deliver
        #: Hands several (one state change's, of one account) at once; None: one by one.
        self.deliver_many = deliver_many
        self.accounts: set[str] = set()
        self.subs: dict[int, int] = {}  # the program's subscription id -> the hub's
        self.ended = anyio.Event()
        #: True once the program has left (``ended`` is set too); read on every order.
        self.left = False
        # Orders are not multiplexed by the hub: the venue's own at-once answer, bound once.
        self._answer_order = hub.order_answerer()

    async def request(self, req: Request) -> Reply:
        """Answer one request: straight from the simulator, through the hub when shared."""
        if type(req) is SubmitOrder or not isinstance(req, ROUTED):
            return await self.hub.backend.request(req)
        if self.ended.is_set():
            raise BackendUnavailable("this program has left its terminal")
        if isinstance(req, OpenAccount):
            return await self.hub.open_direct(self, req)
        if isinstance(req, CloseAccount):
            if req.account_id not in self.accounts:
                raise InvalidArgument(
                    f"account {req.account_id!r} is not open in this program "
                    f"(open ones: {sorted(self.accounts)})"
                )
            self.hub.close_direct(self, req.account_id)
            return Ok()
        if isinstance(req, SubscribeQuotes):
            return await self.hub.subscribe_direct(self, req)
        return await self.hub.unsubscribe_direct(self, req.sub_id)

    def request_now(self, req: Request) -> Reply | None:
        """An order answered at once by the venue (None: use ``request``).

        The simulator answers orders at once, and so does the home's risk chain in front of it
        (``RiskGuard.request_now``) unless a code's price must be fetched first.
        """
        if type(req) is SubmitOrder and not self.left:
            answer = self._answer_order
            return None if answer is None else answer(req)
        return None

    def end(self) -> None:
        """The program has left its terminal, or the terminal stops: no more requests."""
        self.left = True
        self.ended.set()

    # ------------------------------------------------------------------ events from the hub

    def on_quotes(self, batch: QuoteBatch, sub_id: int) -> None:
        """Quotes of the hub's subscription behind this program's ``sub_id``."""
        self.sink.on_quotes(msgspec.structs.replace(batch, sub_id=sub_id))

    def on_connection(self, state: ConnectionState) -> None:
        """The simulator lost or regained its venue (it never does, but the seam allows it)."""
        self.sink.on_connection(state)

    def positions(self) -> dict[str, int]:
        """The seq of the last report handed over, per open account (all the journal holds)."""
        return {account_id: self.hub.last_seq(account_id) for account_id in self.accounts}

    # ------------------------------------------------------------------ the link's stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Nothing ever arrives: wait until the terminal stops, then end the stream."""
        await self.ended.wait()
        raise anyio.EndOfStream

    async def send(self, item: bytes) -> None:
        """Frames (a goodbye) have nowhere to go: dropped."""
        await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """Nothing to half-close."""
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Leave the terminal: this program's accounts and subscriptions are let go."""
        if not self.ended.is_set():
            self.end()
            with anyio.CancelScope(shield=True):
                await self.hub.detach_direct(self)
        await anyio.lowlevel.checkpoint()


__all__ = ["ROUTED", "DirectChannel"]
