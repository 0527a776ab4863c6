"""Calls answered in the event loop's read callback, when the backend can answer at once.

A client's order normally reaches the venue through the session's reading task: the bytes
arrive in the loop's read callback, the task is woken, runs on the next turn of the loop,
hands the reading on to a follower and calls the backend; the reports it produces wake the
writer task, which finds them already sent with the answer. A simulator places an order
without ever waiting (``request_now``), so the callback can do all of it itself: decode the
call, ask the backend, and write the answer with the reports in one ``write``, saving the
loop turn and the wake-ups of the follower and the writer.

Only while the session's reading task waits for bytes with nothing of its own to act on
(``Session.parked``), so frames are acted on in the order they came; the first frame that is
not such a call (a ping, a goodbye, a subscription, an undecodable frame) and every frame after
it are left to that task. Nothing here awaits, and nothing calls anyio (the callback runs
outside any task, where anyio cannot tell which event loop it is on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from qmtkit.backends.base import Backend, Reply, Request
from qmtkit.errors import BackendError, QmtkitError
from qmtkit.wire.fastio import FastStream
from qmtkit.wire.protocol import Call, Failure, FrameReader, Result, error_name

if TYPE_CHECKING:
    from qmtkit.backends.hub.session import Session

log = logging.getLogger("qmtkit.gateway.server")

AnswerNow = Callable[[Request], Reply | None]


@runtime_checkable
class AnswersAtOnce(Protocol):
    """A backend that can answer some requests without waiting (a simulator's orders)."""

    def request_now(self, req: Request) -> Reply | None:
        """The reply, its events already given to the sink; None: ask ``request``."""


def answer_now_of(backend: Backend) -> AnswerNow | None:
    """``backend.request_now`` if it has one, else None."""
    return backend.request_now if isinstance(backend, AnswersAtOnce) else None


class EagerCalls:
    """Acts on a session's calls in the read callback of its ``FastStream`` (module doc)."""

    __slots__ = ("answer_now", "clock", "decode", "reader", "session", "stream")

    def __init__(
        self,
        session: Session,
        reader: FrameReader,
        stream: FastStream,
        answer_now: AnswerNow,
        decode: Callable[[bytes], object],
    ) -> None:
        self.session = session
        self.reader = reader
        self.stream = stream
        self.answer_now = answer_now
        self.decode = decode
        # Outside any task anyio.current_time() raises (sniffio): the loop's own clock.
        self.clock = asyncio.get_running_loop().time
        stream.on_data(self.on_data)

    def close(self) -> None:
        """Stop acting in the read callback."""
        self.stream.on_data(None)

    def on_data(self, data: bytes) -> bool:
        """Act on the calls in ``data`` that can be answered here; False: not parked, the
        reading task takes them."""
        session = self.session
        if not session.parked:
            return False
        session.last_seen = self.clock()
        if not self.reader.take_from(data, self._take):
            session.parked = False  # the reading task acts on the rest, in order
            self.stream.nudge()
        return True

    def _take(self, payload: bytes) -> bool:
        """Answer ``payload`` here if it is a call the backend answers at once."""
        session = self.session
        if session.killed or session.sending or not self.stream.writable:
            return False
        try:
            msg = self.decode(payload)
        except msgspec.DecodeError:
            return False
        if not isinstance(msg, Call):
            return False
        answer: Result | Failure
        session.answering_now = True  # the reports it yields go out with the answer
        try:
            try:
                reply = self.answer_now(msg.req)
            except QmtkitError as exc:
                answer = Failure(msg.id, error_name(exc), str(exc))
            except Exception as exc:
                log.exception("gateway: %s failed on %s", type(msg.req).__name__, session.peer)
                answer = Failure(msg.id, BackendError.__name__, f"gateway internal error: {exc!r}")
            else:
                if reply is None:
                    return False  # the reading task answers it
                answer = Result(msg.id, reply)
        finally:
            session.answering_now = False
        session.send_answer_now(answer, msg.req, self.stream)
        return True


__all__ = ["AnswerNow", "AnswersAtOnce", "EagerCalls", "answer_now_of"]
