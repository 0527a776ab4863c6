"""The gateway journal is tied to the venue whose reports it holds (``BackendInfo.venue_id``).

The gateway recognises reports replayed by a restarted backend by their backend seq and item.
That is only sound within one venue's history: a fresh simulator repeats an old one's first
reports byte for byte, and without a venue check they would be swallowed as already delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

import qmtkit.gateway.server as server_mod
from qmtkit.backends.base import (
    BackendInfo,
    EventSink,
    Hello,
    OpenAccount,
    SubmitOrder,
    expect,
)
from qmtkit.backends.hub.journal import ReportJournal
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.sim.backend import VENUE_FILE
from qmtkit.backends.xtquant import XtQuantBackend
from qmtkit.clock import BEIJING, VirtualClock
from qmtkit.errors import ClosedError, InvalidArgument, JournalMismatch, QmtkitError
from qmtkit.gateway.server import gateway_home, serve, serve_main
from qmtkit.models import AccountReport
from support.gateway import (
    TOKEN,
    FakeVenue,
    RecordingSink,
    order_item,
    remote_for,
    running_gateway,
)

ACCT = "venue"
START = int(dt.datetime(2024, 6, 3, 10, 0, tzinfo=BEIJING).timestamp() * 1000)
BUY = SubmitOrder(ACCT, "600000.SH", 23, 100, 11, 1.0)


class NamedVenue(FakeVenue):
    """A ``FakeVenue`` that says which report history it is."""

    def __init__(self, venue_id: str) -> None:
        super().__init__()
        self.venue_id = venue_id

    @asynccontextmanager
    async def _named(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        async with self._life(sink) as info:
            yield msgspec.structs.replace(info, venue_id=self.venue_id)

    def open(self, sink: EventSink) -> Any:
        return self._named(sink)


def journal_with_report(path: Path, venue_id: str | None) -> None:
    """A journal file holding one report, bound to ``venue_id`` (None: never bound)."""
    with ReportJournal(path) as journal:
        if venue_id is not None:
            journal.bind_venue(venue_id)
        journal.record(ACCT, order_item(ACCT, 1), bseq=1)
        journal.sync()


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".venue")


# --------------------------------------------------------------------------- bind rules


def test_an_unknown_venue_is_not_checked_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "reports.journal"
    with ReportJournal(path) as journal:
        journal.bind_venue("")
        assert journal.venue_id == ""
    assert not sidecar(path).exists()
    journal_with_report(path, "sim:a")
    with ReportJournal(path) as journal:
        journal.bind_venue("")  # a venue that cannot tell is let through
    assert sidecar(path).read_text() == "sim:a\n"


def test_a_journal_without_reports_is_bound_to_the_venue_served(tmp_path: Path) -> None:
    path = tmp_path / "reports.journal"
    with ReportJournal(path) as journal:
        journal.bind_venue("sim:a")
        assert journal.venue_id == "sim:a"
    assert sidecar(path).read_text() == "sim:a\n"
    with ReportJournal(path) as journal:  # still empty: nothing to confuse, so it rebinds
        journal.bind_venue("sim:b")
        assert journal.venue_id == "sim:b"
    assert sidecar(path).read_text() == "sim:b\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_the_same_venue_resumes_its_journal_after_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "reports.journal"
    journal_with_report(path, "sim:a")
    with ReportJournal(path) as journal:
        journal.bind_venue("sim:a")
        assert journal.venue_id == "sim:a"
        assert [r.seq for r in journal.since(ACCT, 0)] == [1]
    assert sidecar(path).read_text() == "sim:a\n"


def test_another_venue_is_refused_naming_both_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "reports.journal"
    journal_with_report(path, "sim:a")
    before = sidecar(path).read_bytes()
    with ReportJournal(path) as journal:
        with pytest.raises(JournalMismatch) as caught:
            journal.bind_venue("sim:b")
        assert journal.venue_id == ""
    message = str(caught.value)
    for words in (str(path), "'sim:a'", "'sim:b'", "--home", f"move {path} away"):
        assert words in message
    assert isinstance(caught.value, QmtkitError)
    assert sidecar(path).read_bytes() == before
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_a_journal_from_before_venues_is_bound_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "reports.journal"
    journal_with_report(path, None)
    with (
        caplog.at_level(logging.INFO, logger="qmtkit.backends.hub.journal"),
        ReportJournal(path) as journal,
    ):
        journal.bind_venue("xtquant:d:\\qmt\\userdata_mini")
    assert sidecar(path).read_text() == "xtquant:d:\\qmt\\userdata_mini\n"
    assert any("no venue recorded" in r.getMessage() for r in caplog.records)
    with ReportJournal(path) as journal, pytest.raises(JournalMismatch):
        journal.bind_venue("sim:other")  # from now on it is that venue's journal


def test_an_in_memory_journal_only_remembers_the_venue(tmp_path: Path) -> None:
    with ReportJournal() as journal:
        journal.record(ACCT, order_item(ACCT, 1), bseq=1)
        journal.bind_venue("sim:a")
        assert journal.venue_id == "sim:a"
        assert journal.venue_path is None


def test_bind_venue_checks_its_argument_and_needs_an_open_journal(tmp_path: Path) -> None:
    journal = ReportJournal(tmp_path / "reports.journal")
    with pytest.raises(ClosedError, match="not open"):
        journal.bind_venue("sim:a")
    with journal:
        with pytest.raises(InvalidArgument, match="one-line string"):
            journal.bind_venue(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="'a\\\\nb'"):
            journal.bind_venue("a\nb")
    assert not sidecar(tmp_path / "reports.journal").exists()


# --------------------------------------------------------------------------- the simulator


async def sim_venue(home: Path, orders: int = 0) -> str:
    """Open a simulator in ``home``, place ``orders`` orders, and return its venue id."""
    backend = SimBackend(home=home, clock=VirtualClock(START))
    async with backend.open(RecordingSink()) as info:
        if orders:
            await backend.request(OpenAccount(ACCT))
            for _ in range(orders):
                await backend.request(BUY)
        hello = expect(await backend.request(Hello()), BackendInfo)
    assert hello.venue_id == info.venue_id
    return info.venue_id


async def test_the_simulator_keeps_its_venue_id_across_reopens_of_a_home(tmp_path: Path) -> None:
    first = await sim_venue(tmp_path / "a", orders=1)
    assert first.startswith("sim:") and len(first) == len("sim:") + 32
    assert await sim_venue(tmp_path / "a") == first
    assert (tmp_path / "a" / "sim" / "default" / VENUE_FILE).read_text().strip() == first


async def test_a_new_simulator_home_is_a_new_venue(tmp_path: Path) -> None:
    assert await sim_venue(tmp_path / "a", orders=1) != await sim_venue(tmp_path / "b", orders=1)


async def test_a_simulator_whose_journal_was_deleted_is_a_new_venue(tmp_path: Path) -> None:
    first = await sim_venue(tmp_path, orders=1)
    (tmp_path / "sim" / "default" / "journal.bin").unlink()
    second = await sim_venue(tmp_path)
    assert second != first
    assert await sim_venue(tmp_path) != second  # still no reports: every start is a new history


# --------------------------------------------------------------------------- the gateway


async def serve_briefly(backend: Any, journal: Path) -> None:
    """Run ``serve`` in-process; a gateway that does start is stopped at once."""
    with anyio.CancelScope() as scope:
        await serve(backend, "127.0.0.1", 0, token=TOKEN, journal=journal, task_status=_Stop(scope))


class _Stop:
    """A task status that cancels the gateway as soon as it listens."""

    def __init__(self, scope: anyio.CancelScope) -> None:
        self.scope = scope

    def started(self, value: object = None) -> None:
        self.scope.cancel()


async def gateway_reports(
    backend: SimBackend, journal: Path, orders: int = 1
) -> list[AccountReport]:
    """Serve ``backend``, have a client open the account and buy; return what it received."""
    sink = RecordingSink()
    async with running_gateway(backend, journal.parent, journal=journal) as gw:
        remote = remote_for(gw)
        async with remote.open(sink):
            await remote.request(OpenAccount(ACCT))
            for _ in range(orders):
                await remote.request(BUY)
            await sink.until(lambda: any(hasattr(r.item, "order_id") for r in sink.reports))
    return sink.reports


async def test_a_gateway_refuses_a_fresh_simulator_instead_of_swallowing_its_reports(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "gw" / "reports.journal"
    journal.parent.mkdir()
    served = await gateway_reports(
        SimBackend(home=tmp_path / "a", clock=VirtualClock(START)), journal
    )
    assert served
    # Simulator B (new home, same seed and account) repeats A's reports byte for byte: the
    # gateway's replay check alone would take them for ones it already handed out.
    fresh = SimBackend(home=tmp_path / "b", clock=VirtualClock(START))
    sink = RecordingSink()
    async with fresh.open(sink):
        await fresh.request(OpenAccount(ACCT))
        await fresh.request(BUY)
    with ReportJournal(journal) as kept:
        for report in sink.reports:
            assert kept.item_at_bseq(ACCT, report.seq) == report.item
        size = journal.stat().st_size
    bound = sidecar(journal).read_text()

    with pytest.raises(JournalMismatch, match=r"gw/reports\.journal holds the reports of"):
        await serve_briefly(SimBackend(home=tmp_path / "b", clock=VirtualClock(START)), journal)
    assert journal.stat().st_size == size and sidecar(journal).read_text() == bound


async def test_moving_the_journal_away_serves_the_fresh_simulator_in_full(tmp_path: Path) -> None:
    journal = tmp_path / "gw" / "reports.journal"
    journal.parent.mkdir()
    first = await gateway_reports(
        SimBackend(home=tmp_path / "a", clock=VirtualClock(START)), journal
    )
    shutil.move(str(journal.parent), str(tmp_path / "old-gw"))
    journal.parent.mkdir()
    second = await gateway_reports(
        SimBackend(home=tmp_path / "b", clock=VirtualClock(START)), journal
    )
    assert [r.item for r in second] == [r.item for r in first]  # nothing swallowed


async def test_a_gateway_restarted_over_the_same_venue_resumes(tmp_path: Path) -> None:
    venue = NamedVenue("fake:1")
    async with running_gateway(venue, tmp_path) as gw:
        gw.on_report(AccountReport(ACCT, 1, order_item(ACCT, 1)))
        assert gw.journal.last_seq(ACCT) == 1
    async with running_gateway(venue, tmp_path) as gw:
        assert gw.journal.venue_id == "fake:1"
        assert gw.journal.last_seq(ACCT) == 1
    with pytest.raises(JournalMismatch, match=r"'fake:1'.*'fake:2'"):
        await serve_briefly(NamedVenue("fake:2"), tmp_path / "gateway.journal")


async def test_the_remote_backend_reports_the_upstream_venue(tmp_path: Path) -> None:
    async with (
        running_gateway(NamedVenue("fake:upstream"), tmp_path) as gw,
        remote_for(gw).open(RecordingSink()) as info,
    ):
        assert info.kind == "remote"
        assert info.venue_id == "fake:upstream"


def test_qmtkit_serve_exits_2_naming_the_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--home`` shared by the gateway and a simulator whose history was started anew."""
    monkeypatch.delenv("QMTKIT_BACKEND", raising=False)
    monkeypatch.delenv("QMTKIT_TOKEN", raising=False)
    journal = gateway_home(tmp_path) / "reports.journal"
    journal.parent.mkdir(parents=True)

    async def first_run() -> None:
        await gateway_reports(SimBackend(home=tmp_path, clock=VirtualClock(START)), journal)

    anyio.run(first_run)
    (tmp_path / "sim" / "default" / "journal.bin").unlink()  # the simulator starts over
    # Should the gateway start after all, fail at once instead of serving forever.
    monkeypatch.setattr(server_mod._Announce, "started", _refuse_to_serve)
    code = serve_main(["--home", str(tmp_path), "--listen", "127.0.0.1:0", "--insecure-no-token"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("qmtkit serve: the gateway journal ")
    assert "holds the reports of venue 'sim:" in err
    assert str(journal) in err and "--home" in err


def _refuse_to_serve(self: object, value: object = None) -> None:
    raise QmtkitError("started serving over another venue's journal")


# --------------------------------------------------------------------------- xtquant


@pytest.mark.usefixtures("xt")
@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("{tmp}/sub/../userdata_mini", "xtquant:{tmp}/userdata_mini"),
        ("D:/QMT/userdata_mini/", "xtquant:d:\\qmt\\userdata_mini"),
    ],
)
async def test_the_xtquant_adapter_is_the_venue_of_its_terminal_folder(
    tmp_path: Path, folder: str, expected: str
) -> None:
    backend = XtQuantBackend(folder.format(tmp=tmp_path), 4242)
    async with backend.open(RecordingSink()) as info:
        hello = expect(await backend.request(Hello()), BackendInfo)
    assert info.venue_id == hello.venue_id == expected.format(tmp=tmp_path)
