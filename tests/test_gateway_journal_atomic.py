"""The gateway's journal writes each burst of reports as one unit: a crash at any byte keeps
whole bursts (all of a state change's reports or none), and journals of the first layout are
rewritten in the checksummed one when opened."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import anyio

from qmtkit.backends.base import CloseAccount, OpenAccount
from qmtkit.backends.hub.journal import FRAMING, LEGACY_FRAMING, MAGIC, JournalEntry, ReportJournal
from qmtkit.models import AccountReport
from qmtkit.recordlog import RecordLog
from qmtkit.recordscan import GROUP_FLAG
from support.gateway import FakeVenue, RecordingSink, order_item, remote_for, running_gateway

ACCOUNTS = ("a", "b")


def frame_ends(data: bytes) -> list[int]:
    """The byte offset after each whole frame (a write boundary) of a journal's bytes."""
    ends, at = [], len(MAGIC)
    while at < len(data):
        (word, _) = FRAMING.header.unpack_from(data, at)
        at += FRAMING.header.size + (word & ~GROUP_FLAG)
        ends.append(at)
    return ends


def record_bursts(path: Path, seed: int) -> list[list[AccountReport]]:
    """Record seeded bursts of 1-6 reports (each synced as the gateway does); the bursts."""
    rng = random.Random(seed)
    bursts: list[list[AccountReport]] = []
    order_id = 0
    with ReportJournal(path) as journal:
        for _ in range(40):
            burst = []
            for _ in range(rng.randint(1, 6)):
                account = rng.choice(ACCOUNTS)
                order_id += 1
                burst.append(journal.record(account, order_item(account, order_id), order_id))
            journal.sync()
            bursts.append(burst)
    return bursts


def reopen(data: bytes, path: Path) -> list[AccountReport]:
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torn tail is cut with a warning
        with ReportJournal(path) as journal:
            kept = [r for a in ACCOUNTS for r in journal.since(a, 0)]
    return sorted(kept, key=lambda r: r.item.order_id)  # type: ignore[union-attr]


def test_a_burst_is_one_frame_on_disk(tmp_path: Path) -> None:
    bursts = record_bursts(tmp_path / "j", seed=1)
    assert len(frame_ends((tmp_path / "j").read_bytes())) == len(bursts)


def test_a_cut_at_every_write_boundary_and_inside_every_write_keeps_whole_bursts_only(
    tmp_path: Path,
) -> None:
    bursts = record_bursts(tmp_path / "j", seed=2)
    data = (tmp_path / "j").read_bytes()
    # What a reopen may hold: the reports of the first k bursts, for some k.
    prefixes: dict[int, list[AccountReport]] = {0: []}
    flat: list[AccountReport] = []
    for burst in bursts:
        flat = flat + sorted(burst, key=lambda r: r.item.order_id)  # type: ignore[union-attr]
        prefixes[len(flat)] = flat
    rng = random.Random(2)
    cuts, start = [], len(MAGIC)
    for end in frame_ends(data):
        cuts += [end, rng.randrange(start, end), rng.randrange(start, end)]
        start = end
    cut_path = tmp_path / "cut"
    for cut in cuts:
        kept = reopen(data[:cut], cut_path)
        assert kept == prefixes.get(len(kept)), f"cut at byte {cut}: part of a burst survived"
        for account in ACCOUNTS:
            seqs = [r.seq for r in kept if r.account_id == account]
            assert seqs == list(range(1, len(seqs) + 1)), f"cut at byte {cut}: seq gap"


def test_a_journal_of_the_first_layout_is_rewritten_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "reports.journal"
    with RecordLog(path, JournalEntry, framing=LEGACY_FRAMING) as old:
        for n in range(1, 4):
            old.append(JournalEntry(n, AccountReport("a", n, order_item("a", n))))
    with ReportJournal(path) as journal:
        assert [r.seq for r in journal.since("a", 0)] == [1, 2, 3]
        journal.record("a", order_item("a", 4), 4)
    assert path.read_bytes().startswith(MAGIC)
    with ReportJournal(path) as journal:
        assert [r.seq for r in journal.since("a", 0)] == [1, 2, 3, 4]


async def test_a_burst_for_an_account_no_client_reads_reaches_the_disk_as_one_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.journal"
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path, journal=path) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            await remote.request(OpenAccount("unread"))  # opened at the venue ...
            await remote.request(CloseAccount("unread"))  # ... and read by no client
        for n in range(1, 6):  # one venue event: five reports pushed in one go
            venue.emit("unread", order_item("unread", n))
        with anyio.fail_after(5):
            while not frame_ends(path.read_bytes()):
                await anyio.sleep(0.005)
        data = path.read_bytes()
    (end,) = frame_ends(data)
    (word, _) = FRAMING.header.unpack_from(data, len(MAGIC))
    assert end == len(data) and word & GROUP_FLAG
    entries = ReportJournal(path).open()
    try:
        assert [r.seq for r in entries.since("unread", 0)] == [1, 2, 3, 4, 5]
    finally:
        entries.close()
