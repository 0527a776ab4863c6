"""The wire codec, the report journal and the auth helpers, without any network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from qmtkit.backends.base import Ok, SubmitOrder
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.errors import BackendError, ClosedError, InvalidArgument, InvalidCode
from qmtkit.models import AccountReport, Order
from qmtkit.wire.protocol import (
    Call,
    ClientMessage,
    FrameEncoder,
    FrameReader,
    FramingError,
    Result,
    ServerMessage,
    error_from_wire,
    error_name,
)
from qmtkit.wire.security import check_token_value, generate_token, token_matches
from support.gateway import order_item


async def _reader_over(chunks: list[bytes], max_frame: int = 1 << 20) -> FrameReader:
    send, receive = anyio.create_memory_object_stream[bytes](len(chunks) + 1)
    for c in chunks:
        send.send_nowait(c)
    send.close()

    class _Bytes(anyio.abc.ByteReceiveStream):
        async def receive(self, max_bytes: int = 65536) -> bytes:
            try:
                return await receive.receive()
            except anyio.EndOfStream:
                raise
            except anyio.ClosedResourceError:
                raise anyio.EndOfStream from None

        async def aclose(self) -> None:
            receive.close()

    return FrameReader(_Bytes(), max_frame)


async def test_frames_survive_arbitrary_chunking() -> None:
    enc = FrameEncoder()
    msgs = [Call(i, SubmitOrder("acct", "600000.SH", 23, 100 * i, 11, 10.0)) for i in range(1, 6)]
    stream = b"".join(enc.encode(m) for m in msgs)
    # One byte at a time, then everything in one chunk: both yield the same messages.
    for chunks in ([stream[i : i + 1] for i in range(len(stream))], [stream]):
        reader = await _reader_over(chunks)
        dec = msgspec.msgpack.Decoder(ClientMessage)
        got = [dec.decode(await reader.receive()) for _ in msgs]
        assert got == msgs
        with pytest.raises(anyio.EndOfStream):
            await reader.receive()


async def test_oversized_length_is_a_framing_error() -> None:
    reader = await _reader_over([(10_000).to_bytes(4, "big") + b"x"], max_frame=1000)
    with pytest.raises(FramingError, match="10000 exceeds the limit of 1000"):
        await reader.receive()


async def test_stream_ending_inside_a_frame_is_a_framing_error() -> None:
    reader = await _reader_over([(50).to_bytes(4, "big") + b"abc"])
    with pytest.raises(FramingError, match="inside a frame"):
        await reader.receive()


def test_encoder_refuses_a_message_over_the_limit() -> None:
    enc = FrameEncoder(max_frame=64)
    with pytest.raises(InvalidArgument, match="exceeds the frame limit of 64"):
        enc.encode(Call(1, SubmitOrder("a" * 100, "600000.SH", 23, 100, 11, 10.0)))


def test_replies_roundtrip_through_the_server_union() -> None:
    frame = FrameEncoder().encode(Result(7, Ok()))
    assert msgspec.msgpack.Decoder(ServerMessage).decode(frame[4:]) == Result(7, Ok())


def test_errors_travel_by_class_name() -> None:
    assert error_name(InvalidCode("x")) == "InvalidCode"
    assert error_name(RuntimeError("x")) == "BackendError"
    err = error_from_wire("InvalidCode", "bad code 'X'")
    assert type(err) is InvalidCode and str(err) == "bad code 'X'"
    assert type(error_from_wire("NoSuchError", "m")) is BackendError
    assert type(error_from_wire("ValueError", "m")) is BackendError


def test_token_helpers() -> None:
    assert token_matches("secret-token", "secret-token")
    assert not token_matches("secret-token", "secret-tokeN")
    assert len(generate_token()) >= 32 and check_token_value(generate_token())
    with pytest.raises(InvalidArgument, match="31 characters; use at least 32"):
        check_token_value("x" * 31)
    with pytest.raises(InvalidArgument, match="must be a string"):
        check_token_value(12345678)


def _item(n: int, account: str = "A") -> Order:
    return order_item(account, n)


def test_journal_numbers_reports_per_account_and_slices_by_seq(tmp_path: Path) -> None:
    with ReportJournal(tmp_path / "j") as j:
        made = [j.record("A", _item(n), bseq=10 + n) for n in (1, 2, 3)]
        j.record("B", _item(1, "B"), bseq=1)
        assert [r.seq for r in made] == [1, 2, 3]
        assert made[1] == AccountReport(account_id="A", seq=2, item=_item(2))
        assert [r.seq for r in j.since("A", 1)] == [2, 3]
        assert j.since("A", 3) == [] and j.since("Z", 0) == []
        assert (j.last_seq("A"), j.last_seq("B"), j.last_seq("Z")) == (3, 1, 0)
        assert (j.last_bseq("A"), j.item_at_bseq("A", 12), j.item_at_bseq("A", 99)) == (
            13,
            _item(2),
            None,
        )


def test_journal_reloads_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with ReportJournal(path) as j:
        for n in (1, 2, 3):
            j.record("A", _item(n), bseq=n)
    intact = path.stat().st_size
    with open(path, "ab") as f:
        f.write((500).to_bytes(4, "big") + b"half a record")
    with ReportJournal(path) as j:
        assert [r.seq for r in j.since("A", 0)] == [1, 2, 3]
        assert j.item_at_bseq("A", 2) == _item(2)
        assert path.stat().st_size == intact
        j.record("A", _item(4), bseq=4)
    with ReportJournal(path) as j:
        assert [r.item for r in j.since("A", 0)] == [_item(n) for n in (1, 2, 3, 4)]


def test_journal_is_held_by_one_process(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with ReportJournal(path):
        code = (
            "import sys\n"
            "from qmtkit.backends.hub.journal import ReportJournal\n"
            "from qmtkit.errors import JournalLocked\n"
            "try:\n"
            f"    ReportJournal({str(path)!r}).open()\n"
            "except JournalLocked as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 3, proc.stderr
        assert str(path) in proc.stdout and "pid" in proc.stdout


def test_journal_in_memory_needs_no_file() -> None:
    with ReportJournal(None) as j:
        j.record("A", _item(1))
        assert j.last_seq("A") == 1


def test_journal_refuses_writes_when_not_open(tmp_path: Path) -> None:
    j = ReportJournal(tmp_path / "j")
    with pytest.raises(ClosedError, match="not open"):
        j.record("A", _item(1))
    assert not (tmp_path / "j").exists()
