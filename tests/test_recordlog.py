"""The shared record log: typed round trip, buffering, torn-tail repair, corruption, locking."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from qmtkit import recordlog
from qmtkit.errors import CacheError, ClosedError, InvalidArgument, JournalDamaged, JournalLocked
from qmtkit.recordlog import Framing, RecordLog, RecordLogWarning

SRC = str(Path(__file__).resolve().parents[1] / "src")
CHECKED = Framing(magic=b"TESTLOG1", checksum=True)
PLAIN = Framing(magic=b"", checksum=False, big_endian=True)
GROUPED = Framing(magic=b"TESTLOG2", checksum=True, groups=True)


class Rec(msgspec.Struct, array_like=True):
    """A small record with a variable-length field."""

    n: int
    text: str


def recs(count: int) -> list[Rec]:
    """Distinct records 1..count."""
    return [Rec(i, "记录" * (i % 4) + str(i)) for i in range(1, count + 1)]


def make(path: Path, framing: Framing = CHECKED, **kw: object) -> RecordLog[Rec]:
    return RecordLog(path, Rec, framing=framing, **kw)  # type: ignore[arg-type]


def write(path: Path, count: int, framing: Framing = CHECKED) -> int:
    """Write ``count`` records; returns the file size."""
    with make(path, framing) as log:
        log.extend(recs(count))
    return path.stat().st_size


@pytest.mark.parametrize("framing", [CHECKED, PLAIN], ids=["checked", "plain"])
def test_records_round_trip_in_order_across_reopening(tmp_path: Path, framing: Framing) -> None:
    path = tmp_path / "sub" / "log.bin"
    with make(path, framing) as log:
        log.append(recs(1)[0])
        log.extend(recs(5)[1:])
        assert list(log.replay()) == recs(5)
    with make(path, framing, fsync=True) as log:
        log.append(Rec(6, "six"))
        assert list(log.replay()) == [*recs(5), Rec(6, "six")]
    assert path.read_bytes().startswith(framing.magic)


def test_plain_framing_is_a_big_endian_length_then_msgpack(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    write(path, 1, PLAIN)
    payload = msgspec.msgpack.encode(recs(1)[0])
    assert path.read_bytes() == len(payload).to_bytes(4, "big") + payload


def test_buffered_records_reach_the_file_on_sync_and_are_replayed_before(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    with make(path, autoflush=False) as log:
        log.extend(recs(3))
        assert path.stat().st_size == len(CHECKED.magic)  # still in our buffer
        assert log.end > len(CHECKED.magic)
        assert list(log.replay()) == recs(3)  # replay hands the buffer over first
        log.append(Rec(4, "four"))
        log.sync()
        assert path.stat().st_size == log.end
        log.append(Rec(5, "five"))
    with make(path) as log:  # close flushed the last one
        assert [r.n for r in log.replay()] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("framing", [CHECKED, PLAIN], ids=["checked", "plain"])
@pytest.mark.parametrize("cut", [1, 3, 6])
def test_a_torn_last_record_is_cut_away_with_a_warning(
    tmp_path: Path, framing: Framing, cut: int
) -> None:
    path = tmp_path / "log.bin"
    size = write(path, 3, framing)
    with open(path, "r+b") as f:
        f.truncate(size - cut)
    with pytest.warns(RecordLogWarning, match="torn last record"), make(path, framing) as log:
        assert list(log.replay()) == recs(2)
        log.append(Rec(3, "again"))
    with make(path, framing) as log:
        assert list(log.replay()) == [*recs(2), Rec(3, "again")]


def test_a_full_length_but_garbled_last_record_is_refused_not_cut(tmp_path: Path) -> None:
    # a torn write is a prefix of what was written: whole-length bytes that do not check
    # are damage, and cutting them would drop a record that did reach the disk
    path = tmp_path / "log.bin"
    size = write(path, 2)
    with open(path, "r+b") as f:
        f.seek(size - 2)
        f.write(b"\xff\xff")
    before = path.read_bytes()
    with pytest.raises(JournalDamaged, match="checksum"):
        make(path).open()
    assert path.read_bytes() == before


def test_on_torn_receives_the_repair_message_instead_of_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    size = write(path, 2)
    with open(path, "ab") as f:
        f.write(b"\x09\x00")
    told: list[str] = []
    with make(path, on_torn=told.append) as log:
        assert list(log.replay()) == recs(2)
    assert len(told) == 1 and f"2 bytes at byte {size}" in told[0] and str(path) in told[0]


@pytest.mark.parametrize("framing", [CHECKED, PLAIN], ids=["checked", "plain"])
def test_damage_before_the_last_record_raises_and_changes_nothing(
    tmp_path: Path, framing: Framing
) -> None:
    path = tmp_path / "log.bin"
    write(path, 3, framing)
    data = bytearray(path.read_bytes())
    first = len(framing.magic)
    # the first record's array header: breaks the checksum, and the decoding without one
    data[first + framing.header.size] = 0xC1
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match=f"damaged at byte {first}") as info:
        make(path, framing).open()
    message = str(info.value)
    assert str(path) in message and f"qmtkit journal repair {path}" in message
    assert path.read_bytes() == bytes(data)
    with pytest.raises(CacheError):  # the refusal released the lock
        make(path, framing).open()


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    path.write_bytes(b"something else entirely")
    with pytest.raises(CacheError, match="not a qmtkit ledger"):
        RecordLog(path, Rec, framing=CHECKED, kind="ledger").open()


def test_a_torn_magic_header_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    path.write_bytes(CHECKED.magic[:3])
    with pytest.warns(RecordLogWarning), make(path) as log:
        log.append(Rec(1, "one"))
        assert list(log.replay()) == [Rec(1, "one")]


def test_a_record_of_another_type_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    with make(path) as log:
        with pytest.raises(InvalidArgument, match="stores Rec records, got int"):
            log.extend([Rec(1, "ok"), 5])  # type: ignore[list-item]
        assert list(log.replay()) == []


@pytest.mark.parametrize("framing", [CHECKED, GROUPED], ids=["single", "grouped"])
def test_extend_made_writes_the_bytes_extend_writes(tmp_path: Path, framing: Framing) -> None:
    checked, made = tmp_path / "checked.bin", tmp_path / "made.bin"
    with make(checked, framing) as log:
        log.extend(recs(4))
        log.extend(recs(1))
    with make(made, framing) as log:
        log.extend_made(recs(4))
        log.extend_made(recs(1))
        assert list(log.replay()) == [*recs(4), *recs(1)]
    assert made.read_bytes() == checked.read_bytes()


def test_a_group_on_disk_is_its_records_encoded_one_by_one_and_framed(tmp_path: Path) -> None:
    # The group is encoded into a buffer the log keeps between calls: a big group, then a
    # smaller one, must each still be exactly frame_group of their own encoded records.
    path = tmp_path / "log.bin"
    big, small = recs(9), recs(3)
    with make(path, GROUPED) as log:
        log.extend_made(big)
        log.extend_made(small)
    enc = msgspec.msgpack.Encoder()
    frames = [GROUPED.frame_group([enc.encode(r) for r in group]) for group in (big, small)]
    assert path.read_bytes() == GROUPED.magic + b"".join(frames)


def test_extend_made_on_a_closed_log_is_refused(tmp_path: Path) -> None:
    log = make(tmp_path / "log.bin", GROUPED)
    with pytest.raises(ClosedError, match="not open"):
        log.extend_made(recs(2))


def test_a_closed_log_refuses_use(tmp_path: Path) -> None:
    log = make(tmp_path / "log.bin")
    with pytest.raises(ClosedError, match="not open"):
        log.append(Rec(1, "x"))
    with pytest.raises(ClosedError):
        log.sync()
    with pytest.raises(ClosedError):
        list(log.replay())
    assert not (tmp_path / "log.bin").exists()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="path must be a path"):
        RecordLog(7, Rec)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="lock file"):
        RecordLog(tmp_path / "x", Rec, lock_path=tmp_path / "x")
    with pytest.raises(InvalidArgument, match="Warning subclass"):
        RecordLog(tmp_path / "x", Rec, warning=int)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="magic must be bytes"):
        Framing(magic="text")  # type: ignore[arg-type]


def test_the_lock_file_names_the_holder_and_is_cleared_on_close(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    with make(path) as log:
        text = log.lock_path.read_text()
        assert f"pid {os.getpid()}" in text and f"host {socket.gethostname()}" in text
    assert log.lock_path.read_text() == ""


def test_a_second_open_in_this_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    with make(path, lock_hint="try elsewhere"):
        with pytest.raises(JournalLocked) as info:
            make(path).open()
        assert f"pid {os.getpid()}" in str(info.value) and str(path) in str(info.value)
    with make(path) as log:
        assert log.is_open


def _child(code: str, path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    header = (
        "import sys\n"
        "import msgspec\n"
        "from qmtkit.recordlog import RecordLog\n"
        "from qmtkit.errors import JournalLocked\n"
        "class Rec(msgspec.Struct, array_like=True):\n"
        "    n: int\n"
        "    text: str\n"
        f"path = {str(path)!r}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", header + textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_another_process_is_refused_while_we_hold_the_log(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    with make(path, lock_hint="ask its owner"):
        child = _child(
            """
            try:
                RecordLog(path, Rec, lock_hint="ask its owner").open()
                print("OPENED")
            except JournalLocked as e:
                print("LOCKED", e)
            """,
            path,
        )
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.startswith("LOCKED")
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in out
    assert str(path) in out and "ask its owner" in out


def test_we_are_refused_while_another_process_holds_the_log(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    child = _child(
        "log = RecordLog(path, Rec).open()\n"
        "log.append(Rec(1, 'child'))\n"
        "print('READY', flush=True)\n"
        "sys.stdin.readline()\n"
        "log.close()\n",
        path,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "READY"
        with pytest.raises(JournalLocked, match=f"pid {child.pid} on host"):
            RecordLog(path, Rec).open()
        child.stdin.write("done\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with RecordLog(path, Rec) as log:  # the child let go; its record is ours to read
        assert list(log.replay()) == [Rec(1, "child")]


@pytest.mark.parametrize("framing", [CHECKED, PLAIN], ids=["checked", "plain"])
def test_a_record_appended_already_encoded_reads_back_like_any_other(
    tmp_path: Path, framing: Framing
) -> None:
    path = tmp_path / "log.bin"
    with make(path, framing) as log:
        log.append(recs(1)[0])
        log.append_encoded(msgspec.msgpack.encode(recs(2)[1]))
    with make(path, framing) as log:
        assert list(log.replay()) == recs(2)


def test_an_encoded_append_of_no_bytes_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    with make(path, PLAIN) as log:
        for bad in (b"", "text", None):
            with pytest.raises(InvalidArgument, match="payload must be non-empty bytes"):
                log.append_encoded(bad)  # type: ignore[arg-type]
    assert path.read_bytes() == b""


def test_a_group_the_os_takes_in_pieces_is_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    sizes: list[int] = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        # The OS may take fewer bytes than asked (a regular file rarely does): 7 at a time.
        taken = real_write(fd, bytes(data[:7]))
        sizes.append(taken)
        return taken

    def short_writev(fd: int, parts: tuple[bytes, ...]) -> int:
        return short_write(fd, b"".join(parts))

    path = tmp_path / "log.bin"
    with make(path, GROUPED) as log:
        monkeypatch.setattr(os, "write", short_write)
        monkeypatch.setattr(recordlog, "_writev", short_writev)  # POSIX's one call
        log.extend(recs(3))
        monkeypatch.undo()
        assert len(sizes) > 1
        assert log.end == path.stat().st_size
    with make(path, GROUPED) as log:
        assert list(log.replay()) == recs(3)
