"""A crash at any byte of the simulator journal leaves whole state changes: a cut journal
reopens to sound accounts (cash and positions reconcile with fills, seqs contiguous)."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import anyio
import msgspec
import pytest

from qmtkit.backends.sim.journal import FRAMING, LEGACY_MAGIC, MAGIC, Journal
from qmtkit.models import AccountReport
from qmtkit.recordscan import GROUP_FLAG, scan
from support.journal_scenario import check_invariants, record_scenario

ENCODER = msgspec.msgpack.Encoder()


def frame_ends(data: bytes) -> list[int]:
    """The byte offset after each whole frame (a write boundary) of a journal's bytes."""
    view = memoryview(data)[len(MAGIC) :]
    ends, at = [], 0
    while at < len(view):
        (word, _) = FRAMING.header.unpack_from(view, at)
        at += FRAMING.header.size + (word & ~GROUP_FLAG)
        ends.append(len(MAGIC) + at)
    return ends


def reopen_cut(data: bytes, cut: int, home: Path) -> list[AccountReport]:
    """The reports a journal cut after ``cut`` bytes holds once reopened."""
    path = home / "journal.bin"
    path.write_bytes(data[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Journal(path) as journal:
            return list(journal.replay())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    home = tmp_path_factory.mktemp("scenario")
    path = anyio.run(lambda: record_scenario(home, seed=10, orders=70))
    return path.read_bytes()


def test_the_scenario_covers_resting_fills_cancels_and_a_day_roll(recorded: bytes) -> None:
    checked = scan(memoryview(recorded)[len(MAGIC) :], len(MAGIC), FRAMING)
    assert checked.damage is None and checked.records >= 300
    assert checked.frames < checked.records  # bursts are written as groups
    assert len(frame_ends(recorded)) == checked.frames


def test_a_cut_at_every_write_boundary_and_inside_every_write_reopens_sound(
    recorded: bytes, tmp_path: Path
) -> None:
    rng = random.Random(10)
    ends = frame_ends(recorded)
    cuts = set(ends)
    start = len(MAGIC)
    for end in ends:
        cuts.update(rng.randrange(start, end) for _ in range(6))
        start = end
    whole = reopen_cut(recorded, len(recorded), tmp_path)
    check_invariants(whole)
    for cut in sorted(cuts):
        reports = reopen_cut(recorded, cut, tmp_path)
        kept = max((e for e in ends if e <= cut), default=len(MAGIC))
        assert reports == whole[: len(reports)], f"cut at {cut}: not a prefix"
        assert kept == len(MAGIC) or (tmp_path / "journal.bin").stat().st_size == kept
        check_invariants(reports)


def test_a_journal_of_the_first_layout_still_opens_and_is_upgraded(
    recorded: bytes, tmp_path: Path
) -> None:
    whole = reopen_cut(recorded, len(recorded), tmp_path)
    # the first layout: the same header length, one plain frame per report
    path = tmp_path / "old" / "journal.bin"
    path.parent.mkdir()
    framed = b"".join(bytes(FRAMING.frame(ENCODER, r)) for r in whole[:20])
    path.write_bytes(LEGACY_MAGIC + framed)
    with Journal(path) as journal:
        assert list(journal.replay()) == whole[:20]
        journal.extend(whole[20:25])
    assert path.read_bytes().startswith(MAGIC)
    with Journal(path) as journal:
        assert list(journal.replay()) == whole[:25]


def test_a_burst_cut_inside_is_dropped_whole(tmp_path: Path, recorded: bytes) -> None:
    whole = reopen_cut(recorded, len(recorded), tmp_path)
    path = tmp_path / "j" / "journal.bin"
    with Journal(path) as journal:
        journal.extend(whole[:3])
        journal.extend(whole[3:6])
    data = path.read_bytes()
    first = frame_ends(data)[0]
    for cut in range(first, len(data) + 1):  # every byte of the second burst
        got = reopen_cut(data, cut, tmp_path)
        assert got == (whole[:6] if cut == len(data) else whole[:3]), f"cut at {cut}"
