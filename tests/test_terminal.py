"""Many programs, one terminal: sim:// is shared by every program on the same home and terminal."""

from __future__ import annotations

import functools
import json
import os
import signal
import stat
import sys
from pathlib import Path

import anyio
import msgspec
import pytest
from anyio.streams.text import TextReceiveStream

import qmtkit
from qmtkit import cli
from qmtkit.backends.base import OpenAccount, SubmitOrder
from qmtkit.backends.remote import AuthRefused, RemoteBackend
from qmtkit.backends.sim import SimBackend
from qmtkit.backends.sim.journal import Journal
from qmtkit.backends.terminal.backend import LocalTerminalBackend, TerminalMismatch
from qmtkit.backends.terminal.channel import CHANNEL_ENV, channel_kind, read_port_file
from qmtkit.backends.terminal.control import StopTerminal, TerminalState, TerminalStatus, control
from qmtkit.backends.terminal.direct import DirectChannel
from qmtkit.backends.terminal.paths import MAX_SOCKET_PATH, paths_of
from qmtkit.errors import BackendUnavailable, InvalidArgument, JournalLocked
from qmtkit.gateway.server import serve
from qmtkit.models import AccountReport, OrderResponse
from support.gateway import RecordingSink

CODE = "600000.SH"
ACCT = "shared-acct"
PROGRAM = Path(__file__).with_name("terminal_program.py")


async def _next_report(reports: object, kind: str) -> AccountReport:
    """The next report whose item is a ``kind`` (skipping the others)."""
    with anyio.fail_after(20):
        async for report in reports:  # type: ignore[attr-defined]
            if type(report.item).__name__ == kind:
                return report  # type: ignore[no-any-return]
    raise AssertionError("report stream ended")


async def _buy_at_limit(acct: qmtkit.client.Account) -> int:
    detail = await acct.client.instrument(CODE)
    assert detail is not None
    handle = await acct.buy(CODE, 100, detail.UpStopPrice)
    with anyio.fail_after(20):
        final = await handle
    return final.order_id


# --------------------------------------------------------------------------- one process


async def test_the_first_program_hosts_and_the_next_attaches(tmp_path: Path) -> None:
    async with qmtkit.connect(home=tmp_path) as first, qmtkit.connect(home=tmp_path) as second:
        assert isinstance(first.backend, LocalTerminalBackend) and first.backend.hosting
        assert isinstance(second.backend, LocalTerminalBackend) and not second.backend.hosting
        assert first.info.kind == second.info.kind == "sim"
        assert first.info.venue_id == second.info.venue_id != ""


async def test_every_program_sees_the_same_reports_in_order(tmp_path: Path) -> None:
    async with qmtkit.connect(home=tmp_path) as a, qmtkit.connect(home=tmp_path) as b:
        acct_a, acct_b = await a.account(ACCT), await b.account(ACCT)
        async with acct_a.reports() as ra, acct_b.reports() as rb:
            order_id = await _buy_at_limit(acct_b)
            seen_a = await _next_report(ra, "Trade")
            seen_b = await _next_report(rb, "Trade")
        assert seen_a == seen_b and seen_a.item.order_id == order_id  # type: ignore[union-attr]
        assert [o.order_id for o in await acct_a.orders()] == [order_id]


async def test_the_hosting_program_trades_without_the_wire(tmp_path: Path) -> None:
    async with qmtkit.connect(home=tmp_path) as host:
        assert isinstance(host.backend, LocalTerminalBackend) and host.backend.hosting
        acct = await host.account(ACCT)
        async with acct.reports() as reports:
            order_id = await _buy_at_limit(acct)
            trade = await _next_report(reports, "Trade")
        gateway = host.backend._gateway
        assert gateway is not None
        assert gateway.sessions == set()  # its own program is no gateway client
        assert trade.item.order_id == order_id  # type: ignore[union-attr]
        assert 0 < trade.seq <= acct.last_seq


async def test_a_direct_channel_answers_orders_at_once_until_its_program_leaves(
    tmp_path: Path,
) -> None:
    async with qmtkit.connect(home=tmp_path) as host:
        assert isinstance(host.backend, LocalTerminalBackend)
        acct = await host.account(ACCT)
        detail = await host.instrument(CODE)
        assert detail is not None
        link = host.backend._link
        assert link is not None and isinstance(link.stream, DirectChannel)
        channel = link.stream
        req = SubmitOrder(ACCT, CODE, 23, 100, 11, detail.UpStopPrice)
        reply = channel.request_now(req)
        assert isinstance(reply, OrderResponse) and reply.order_id > 0
        assert channel.request_now(OpenAccount(ACCT)) is None  # the hub's: never at once
        channel.end()
        assert channel.left and channel.ended.is_set()
        assert channel.request_now(req) is None  # left: the ordinary way, which refuses it
        assert acct.last_seq > 0


async def test_host_and_attached_program_resume_from_the_simulators_numbers(
    tmp_path: Path,
) -> None:
    async with qmtkit.connect(home=tmp_path) as host:
        first = await host.account(ACCT)
        await _buy_at_limit(first)
        written = first.last_seq
        async with qmtkit.connect(home=tmp_path) as other:
            late = await other.account(ACCT)  # replayed from the simulator's journal
            assert late.last_seq == written
            await _buy_at_limit(late)
            with anyio.fail_after(20):
                while first.last_seq < late.last_seq:
                    await anyio.sleep(0.01)
            assert first.last_seq == late.last_seq > written
            assert [o.order_id for o in await first.orders()] == [
                o.order_id for o in await late.orders()
            ]


async def test_host_and_attached_program_each_get_their_quotes(tmp_path: Path) -> None:
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        assert isinstance(host.backend, LocalTerminalBackend) and host.backend.hosting
        async with host.subscribe([CODE]) as mine, other.subscribe([CODE]) as theirs:
            with anyio.fail_after(20):
                got_mine = await mine.__anext__()
                got_theirs = await theirs.__anext__()
        assert {t.stock_code for t in got_mine} == {t.stock_code for t in got_theirs} == {CODE}


async def test_the_terminal_is_reachable_only_by_its_owner(tmp_path: Path) -> None:
    async with qmtkit.connect(home=tmp_path):
        paths = paths_of(f"sim://?home={tmp_path}")
        assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(paths.socket.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(paths.socket.stat().st_mode)
    assert not paths.socket.exists()  # the host removed it on the way out


async def test_a_home_too_deep_for_a_socket_path_gets_a_private_short_one(tmp_path: Path) -> None:
    home = tmp_path / ("d" * 60) / ("e" * 60)
    async with qmtkit.connect(home=home):
        sock = paths_of(f"sim://?home={home}").socket
        assert len(os.fsencode(sock)) <= MAX_SOCKET_PATH and sock.exists()
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


async def test_a_program_asking_for_other_options_is_refused_naming_them(tmp_path: Path) -> None:
    async with qmtkit.connect(home=tmp_path):
        with pytest.raises(TerminalMismatch, match=r"seed.*sim://\?share=0"):
            async with qmtkit.connect("sim://?seed=7", home=tmp_path):
                pass


async def test_share_0_is_a_private_simulator_that_owns_the_journal(tmp_path: Path) -> None:
    async with qmtkit.connect("sim://?share=0", home=tmp_path) as qk:
        assert isinstance(qk.backend, SimBackend)
        await qk.account(ACCT)  # the private simulator takes the journal
        async with qmtkit.connect(home=tmp_path) as shared:
            assert await shared.snapshot([CODE])  # market data still works
            with pytest.raises(JournalLocked):
                await shared.account(ACCT)


async def test_when_the_host_leaves_an_attached_program_takes_over(tmp_path: Path) -> None:
    hosting, leave = anyio.Event(), anyio.Event()

    async def host_program() -> None:
        async with qmtkit.connect(home=tmp_path) as host:
            assert isinstance(host.backend, LocalTerminalBackend) and host.backend.hosting
            hosting.set()
            await leave.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(host_program)
        await hosting.wait()
        async with qmtkit.connect(home=tmp_path) as stays:
            acct = await stays.account(ACCT)
            first = await _buy_at_limit(acct)
            seq = acct.last_seq
            async with stays.connection_changes() as changes:
                leave.set()
                with anyio.fail_after(20):
                    lost, back = await changes.__anext__(), await changes.__anext__()
            assert not lost.connected and back.connected
            assert isinstance(stays.backend, LocalTerminalBackend) and stays.backend.hosting
            assert acct.last_seq == seq  # the resumed stream repeated nothing
            second = await _buy_at_limit(acct)
            assert [o.order_id for o in await acct.orders()] == [first, second]


async def test_a_gateway_serving_sim_serves_the_shared_terminal(tmp_path: Path) -> None:
    token = "t" * 40
    async with anyio.create_task_group() as tg:
        gw = await tg.start(
            functools.partial(
                serve, f"sim://?home={tmp_path}", "127.0.0.1", 0, token=token, home=tmp_path
            )
        )
        remote_url = f"qmtkit://127.0.0.1:{gw.address[1]}?token={token}"
        async with qmtkit.connect(home=tmp_path) as local, qmtkit.connect(remote_url) as remote:
            assert isinstance(local.backend, LocalTerminalBackend) and not local.backend.hosting
            mine, theirs = await local.account(ACCT), await remote.account(ACCT)
            local_order = await _buy_at_limit(mine)
            remote_order = await _buy_at_limit(theirs)
            assert [o.order_id for o in await mine.orders()] == [local_order, remote_order]
            assert [o.order_id for o in await theirs.orders()] == [local_order, remote_order]
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- status and stop


async def test_status_lists_the_attached_programs_and_their_accounts(tmp_path: Path) -> None:
    paths = paths_of(f"sim://?home={tmp_path}")
    async with qmtkit.connect(home=tmp_path) as a, qmtkit.connect(home=tmp_path):
        await a.account(ACCT)
        state = await control(paths, TerminalStatus())
    assert isinstance(state, TerminalState)
    assert state.host_pid == os.getpid()
    assert [p.accounts for p in state.programs] == [[ACCT], []]
    assert all(p.pid == os.getpid() and p.since >= state.since for p in state.programs)


async def test_status_lists_the_host_first_when_programs_attach_in_the_same_millisecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qmtkit.backends.terminal.host as host

    monkeypatch.setattr(host, "wall_ms", lambda: 1_800_000_000_000)  # every attach time ties
    paths = paths_of(f"sim://?home={tmp_path}")
    async with qmtkit.connect(home=tmp_path) as a, qmtkit.connect(home=tmp_path):
        await a.account(ACCT)
        state = await control(paths, TerminalStatus())
    assert isinstance(state, TerminalState)
    assert [p.accounts for p in state.programs] == [[ACCT], []]
    assert len({p.since for p in state.programs}) == 1


async def test_stop_disconnects_every_program_and_none_takes_over(tmp_path: Path) -> None:
    paths = paths_of(f"sim://?home={tmp_path}")
    async with qmtkit.connect(home=tmp_path) as a, qmtkit.connect(home=tmp_path) as b:
        async with a.connection_changes() as ca, b.connection_changes() as cb:
            await control(paths, StopTerminal())
            with anyio.fail_after(20):
                lost_a, lost_b = await ca.__anext__(), await cb.__anext__()
        assert not lost_a.connected and not lost_b.connected
        with pytest.raises(BackendUnavailable):
            await b.account(ACCT)
        assert paths.stopped.exists() and not paths.socket.exists()
    with pytest.raises(BackendUnavailable, match="no terminal is running"):
        await control(paths, TerminalStatus())
    async with qmtkit.connect(home=tmp_path) as again:  # a fresh program starts it again
        assert isinstance(again.backend, LocalTerminalBackend) and again.backend.hosting


# --------------------------------------------------------------------------- processes


class _Program:
    """One terminal_program.py process and its line protocol."""

    def __init__(self, proc: anyio.abc.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None
        self._lines = TextReceiveStream(proc.stdout)
        self._buf = ""

    async def line(self) -> str:
        with anyio.fail_after(90):
            while "\n" not in self._buf:
                self._buf += await self._lines.receive()
        line, self._buf = self._buf.split("\n", 1)
        return line

    async def expect(self, word: str) -> list[str]:
        line = await self.line()
        assert line.split(" ", 1)[0] == word, line
        return line.split()[1:]

    async def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send((text + "\n").encode())

    async def stream(self) -> list[list[object]]:
        line = await self.line()
        assert line.startswith("stream "), line
        return json.loads(line[len("stream ") :])  # type: ignore[no-any-return]


async def _start(mode: str, home: Path, started: list[_Program]) -> _Program:
    proc = await anyio.open_process(
        [sys.executable, str(PROGRAM), mode, str(home), ACCT], stderr=None
    )
    started.append(_Program(proc))
    return started[-1]


async def test_killing_the_host_mid_burst_loses_and_repeats_nothing(tmp_path: Path) -> None:
    started: list[_Program] = []
    try:
        host = await _start("hold", tmp_path, started)
        assert await host.expect("ready") == ["1"]
        trader = await _start("burst", tmp_path, started)
        watcher = await _start("hold", tmp_path, started)
        assert await trader.expect("ready") == ["0"]
        assert await watcher.expect("ready") == ["0"]
        await trader.say("go")
        await trader.expect("half")
        host.proc.send_signal(signal.SIGKILL)
        assert await host.proc.wait() == -signal.SIGKILL
        last, disconnects = map(int, await trader.expect("done"))
        assert disconnects >= 1
        await watcher.say(f"until {last}")
        watched = await watcher.stream()
        await trader.say("dump")
        traded = await trader.stream()
        with anyio.fail_after(60):
            assert await watcher.proc.wait() == 0
            assert await trader.proc.wait() == 0
    finally:
        for program in started:
            if program.proc.returncode is None:
                program.proc.kill()
    path = SimBackend(home=tmp_path).state_dir / "journal.bin"
    with Journal(path) as journal:
        journaled = [
            [r.seq, msgspec.msgpack.encode(r.item).hex()]
            for r in journal.replay()
            if r.account_id == ACCT
        ]
    assert [s for s, _ in journaled] == list(range(1, len(journaled) + 1))
    assert traded == watched == journaled[: len(traded)]
    assert traded[-1][0] == last == journaled[-1][0]


async def test_the_status_command_prints_the_programs_and_exits_1_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["terminal", "status", "--home", str(tmp_path)]
    async with qmtkit.connect(home=tmp_path) as qk:
        await qk.account(ACCT)
        assert await anyio.to_thread.run_sync(cli.main, command) == 0
    out = capsys.readouterr().out
    assert f"hosted by pid {os.getpid()}" in out and "1 program(s) attached" in out
    assert f"pid {os.getpid()} [host]" in out and ACCT in out
    assert await anyio.to_thread.run_sync(cli.main, command) == 1
    assert "no terminal is running" in capsys.readouterr().err


def test_the_status_report_names_each_programs_xtquant_sessions() -> None:
    from qmtkit.backends.terminal.control import Program
    from qmtkit.cli.terminal import format_state

    state = TerminalState(
        "sim://",
        "sim:v",
        11,
        0,
        [Program(11, "a.py", 0, ["acct"], True, [3, 9]), Program(12, "b.py", 0, [])],
    )
    lines = format_state(state).splitlines()
    assert lines[-2].endswith("acct; xtquant sessions 3, 9  (a.py)")
    assert lines[-1].endswith("no accounts  (b.py)")


# --------------------------------------------------------------------------- the TCP channel


@pytest.fixture
def tcp_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel Windows uses: loopback TCP and a token file (``QMTKIT_TERMINAL_CHANNEL``)."""
    monkeypatch.setenv(CHANNEL_ENV, "tcp")


@pytest.mark.usefixtures("tcp_channel")
async def test_programs_share_the_terminal_over_loopback_tcp_and_a_token_file(
    tmp_path: Path,
) -> None:
    paths = paths_of(f"sim://?home={tmp_path}")
    async with qmtkit.connect(home=tmp_path) as host, qmtkit.connect(home=tmp_path) as other:
        assert isinstance(host.backend, LocalTerminalBackend) and host.backend.hosting
        assert isinstance(other.backend, LocalTerminalBackend) and not other.backend.hosting
        assert not paths.socket.exists()
        assert stat.S_IMODE(paths.port_file.stat().st_mode) == 0o600
        order_id = await _buy_at_limit(await other.account(ACCT))
        assert [o.order_id for o in await (await host.account(ACCT)).orders()] == [order_id]
        state = await control(paths, TerminalStatus())
        assert isinstance(state, TerminalState) and len(state.programs) == 2
    assert not paths.port_file.exists()  # the host removed it on the way out


@pytest.mark.usefixtures("tcp_channel")
@pytest.mark.parametrize("token", ["", "w" * 40], ids=["missing", "wrong"])
async def test_the_tcp_channel_refuses_a_program_without_the_files_token(
    tmp_path: Path, token: str
) -> None:
    async with qmtkit.connect(home=tmp_path):
        published = read_port_file(paths_of(f"sim://?home={tmp_path}"))
        assert published is not None and published[1] != token
        stranger = RemoteBackend("127.0.0.1", published[0], token=token, connect_timeout=5)
        with pytest.raises(AuthRefused, match="authentication failed"):
            async with stranger.open(RecordingSink()):
                pass


def test_an_unknown_channel_is_refused_naming_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHANNEL_ENV, "pipe")
    with pytest.raises(InvalidArgument, match="'pipe': expected unix, tcp or auto"):
        channel_kind()
