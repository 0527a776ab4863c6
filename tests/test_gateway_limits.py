"""What no client can do to the gateway: exhaust its memory, hold it before login, guess tokens.

The flood test uses a real socket that never reads, so the gateway's writes back up for real.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import qmtkit.backends.hub.gateway as hub
from qmtkit.backends.base import BackendInfo, Hello, ListSectors, Names, OpenAccount
from qmtkit.backends.hub.guard import LoginGuard
from qmtkit.backends.remote import AuthRefused
from qmtkit.cli import main
from qmtkit.errors import BackendUnavailable, InvalidArgument
from qmtkit.gateway.server import AUTH_MAX_FRAME, serve
from qmtkit.wire.protocol import Auth, Call, ErrorFrame, FrameEncoder, ReportEvent
from qmtkit.wire.security import client_tls_context, server_tls_context
from support.gateway import (
    TOKEN,
    FakeVenue,
    RawClient,
    RecordingSink,
    order_item,
    remote_for,
    running_gateway,
)
from support.tls import needs_openssl, self_signed

BIG = Names([f"sector-{i:05d}-" + "x" * 40 for i in range(400)])  # ~20 KB per reply


class SeenSet(set):  # type: ignore[type-arg]
    """The gateway's set of sessions, remembering every session ever added to it."""

    def __init__(self, items: set[object]) -> None:
        super().__init__(items)
        self.added: list[Any] = []

    def add(self, item: object) -> None:
        self.added.append(item)
        super().add(item)


def big_replies(req: object) -> object:
    return BIG if isinstance(req, ListSectors) else None


def flood(port: int, seconds: float) -> str:
    """Log in, open an account, then send calls and never read, until cut off; how it ended."""
    enc = FrameEncoder()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(seconds)
    sock.connect(("127.0.0.1", port))
    deadline = time.monotonic() + seconds
    try:
        sock.sendall(enc.encode(Auth(TOKEN)) + enc.encode(Call(0, OpenAccount("acc"))))
        batch = b"".join(enc.encode(Call(i, ListSectors())) for i in range(1, 101))
        while time.monotonic() < deadline:
            sock.sendall(batch)
        return "never cut off"
    except OSError as exc:
        return f"cut off: {exc!r}"
    finally:
        sock.close()


async def test_a_client_that_stops_reading_is_cut_off_at_its_budget_and_loses_no_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budget = 256 << 10
    venue = FakeVenue(big_replies)
    for n in range(1, 6):
        venue.emit("acc", order_item("acc", n))  # waiting for the flooder, never read
    caplog.set_level(logging.INFO, logger="qmtkit.gateway.server")
    async with running_gateway(venue, tmp_path, client_budget=budget) as gw:
        good = remote_for(gw)
        async with good.open(RecordingSink()), anyio.create_task_group() as tg:
            others = set(gw.sessions)
            gw.sessions = seen = SeenSet(gw.sessions)
            tg.start_soon(anyio.to_thread.run_sync, flood, gw.address[1], 60.0)
            with anyio.fail_after(90):
                while not any(s.killed for s in seen.added):
                    # the other client is served all along
                    assert isinstance(await good.request(Hello()), BackendInfo)
            [flooder] = seen.added
            assert flooder.queued == 0 and not flooder.frames  # freed at once
            # nothing beyond the budget was ever queued (one reply may wait alone)
            assert flooder.peak_queued <= budget + 32_000
            with anyio.fail_after(10):
                while flooder in gw.sessions:
                    await anyio.sleep(0.01)
            assert gw.sessions == others
            assert isinstance(await good.request(Hello()), BackendInfo)
        assert "client is not reading" in caplog.text and "over the budget of 262144" in caplog.text
        # Reconnecting, it gets every report it had not read.
        raw = await RawClient.connect(gw)
        await raw.send(Call(1, OpenAccount("acc", after_seq=0)))
        got = [await raw.recv_until(ReportEvent) for _ in range(5)]
        assert [e.report.seq for e in got] == [1, 2, 3, 4, 5]
        await raw.aclose()


async def test_a_replay_larger_than_the_budget_still_reaches_a_reconnecting_client(
    tmp_path: Path,
) -> None:
    venue = FakeVenue()
    for n in range(1, 401):
        venue.emit("acc", order_item("acc", n, remark="r" * 200))
    async with running_gateway(venue, tmp_path, client_budget=16 << 10) as gw:
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            await remote.request(OpenAccount("acc"))
            await sink.until(lambda: len(sink.reports) == 400)


async def test_a_login_frame_over_a_few_kilobytes_is_refused(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        raw = await RawClient.connect(gw, token="t" * AUTH_MAX_FRAME)
        refusal = await raw.recv()
        assert isinstance(refusal, ErrorFrame) and refusal.fatal
        assert f"exceeds the limit of {AUTH_MAX_FRAME} bytes" in refusal.message


async def test_connections_waiting_to_log_in_are_capped(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        limit = gw.guard.max_pending_per_address
        idle = [await RawClient.connect(gw, token=None) for _ in range(limit)]
        with anyio.fail_after(30):
            while sum(gw.guard.pending.values()) < limit:
                await anyio.sleep(0.01)
        extra = await RawClient.connect(gw, token=None)
        refusal = await extra.recv()
        assert isinstance(refusal, ErrorFrame) and "too many connections from 127.0.0.1" in (
            refusal.message
        )
        for raw in idle:
            await raw.aclose()
        with anyio.fail_after(30):
            while gw.guard.pending:
                await anyio.sleep(0.01)
        remote = remote_for(gw)  # room again
        async with remote.open(RecordingSink()):
            assert isinstance(await remote.request(Hello()), BackendInfo)


@needs_openssl
async def test_peers_stuck_in_the_tls_handshake_hold_login_slots_only_until_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "AUTH_TIMEOUT", 1.0)  # handshake and login together
    cert, key = self_signed(tmp_path)
    async with running_gateway(FakeVenue(), tmp_path, tls=server_tls_context(cert, key)) as gw:
        limit = gw.guard.max_pending_per_address
        # TCP connections that never send a ClientHello.
        stuck = [await anyio.connect_tcp("127.0.0.1", gw.address[1]) for _ in range(limit)]
        with anyio.fail_after(5):
            while gw.guard.pending["127.0.0.1"] < limit:
                await anyio.sleep(0.01)
        tls_client = remote_for(gw, tls=client_tls_context(cert), connect_timeout=0.5)
        with pytest.raises(BackendUnavailable):  # no slot left for it
            async with tls_client.open(RecordingSink()):
                pass
        with anyio.fail_after(5):
            for peer in stuck:  # the deadline closes every one of them
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await peer.receive()
            while gw.guard.pending:
                await anyio.sleep(0.01)
        async with remote_for(gw, tls=client_tls_context(cert)).open(RecordingSink()):
            pass  # room again
    for peer in stuck:
        await peer.aclose()


async def test_no_token_and_a_wrong_token_are_told_apart(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        gw.guard = LoginGuard(base=0.001, cap=0.002)
        with pytest.raises(AuthRefused, match="no token sent"):
            async with remote_for(gw, token="").open(RecordingSink()):
                pass
        with pytest.raises(AuthRefused, match="wrong token"):
            async with remote_for(gw, token="w" * 40).open(RecordingSink()):
                pass


async def test_refused_logins_are_logged_as_one_summary_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qmtkit.gateway.server")
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        gw.guard = LoginGuard(base=0.0005, cap=0.001, interval=3600)
        for _ in range(30):
            raw = await RawClient.connect(gw, token="w" * 40)
            assert isinstance(await raw.recv(), ErrorFrame)
            await raw.aclose()
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    # the first refusal at once, the other 29 in one line when the gateway stops
    assert len(lines) == 2, lines
    assert "refused 29 connections" in lines[1] and "29 wrong token" in lines[1]
    assert "127.0.0.1 x29" in lines[1]


def test_failed_logins_delay_the_next_ones_doubling_up_to_a_cap() -> None:
    guard = LoginGuard(base=0.1, cap=1.0)
    assert guard.wait("a", 0.0) == 0.0
    delays = []
    for _ in range(6):
        guard.failed("a", 100.0)
        delays.append(guard.wait("a", 100.0))
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert guard.wait("b", 100.0) == 0.0  # per address
    assert guard.wait("a", 100.6) == pytest.approx(0.4)
    guard.succeeded("a")
    assert guard.wait("a", 100.0) == 0.0


def test_the_guard_forgets_the_oldest_addresses_past_its_bound() -> None:
    guard = LoginGuard(max_addresses=3)
    for a in "abcd":
        guard.failed(a, 0.0)
    assert guard.wait("a", 0.0) == 0.0 and guard.wait("d", 0.0) > 0


def test_the_summary_comes_at_most_once_per_interval() -> None:
    guard = LoginGuard(interval=5.0)
    guard.refused("x", "wrong token")
    assert guard.summary(0.0) is not None
    guard.refused("x", "wrong token")
    guard.refused("y", "no token")
    assert guard.summary(4.0) is None
    line = guard.summary(5.0)
    assert line is not None and "refused 2 connections in the last 5s" in line
    assert "1 wrong token" in line and "1 no token" in line
    assert guard.summary(20.0) is None  # nothing new


async def test_serving_refuses_short_tokens_and_open_plain_tcp(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="use at least 32"):
        await serve(FakeVenue(), "127.0.0.1", 0, token="x" * 31)
    with pytest.raises(InvalidArgument, match=r"refusing plain TCP on '0\.0\.0\.0'.*--insecure"):
        await serve(FakeVenue(), "0.0.0.0", 0, token=TOKEN)
    with pytest.raises(InvalidArgument, match="loopback only"):
        await serve(FakeVenue(), "0.0.0.0", 0, insecure_no_token=True, insecure=True)


def test_gen_token_prints_a_token_the_gateway_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--gen-token"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 32 and token.isprintable() and " " not in token
