"""The async client over ``qmtkit://``: the gateway is invisible to strategy code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

import qmtkit.client as client_mod
from qmtkit.backends import open_backend
from qmtkit.backends.base import BackendInfo, Hello, OpenAccount, SubmitOrder, expect
from qmtkit.backends.remote import RemoteBackend
from support.gateway import TOKEN, FakeVenue, RecordingSink, running_gateway, tick


async def test_open_backend_builds_a_remote_backend_from_the_url() -> None:
    backend = open_backend(f"qmtkit://127.0.0.1:4567?token={TOKEN}")
    assert isinstance(backend, RemoteBackend)
    assert (backend.host, backend.port, backend.token) == ("127.0.0.1", 4567, TOKEN)


async def test_client_orders_reports_and_quotes_through_the_gateway(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        url = f"qmtkit://127.0.0.1:{gw.address[1]}?token={TOKEN}"
        async with client_mod.connect(url) as qk:
            assert qk.info.kind == "remote"
            account = await qk.account("A")
            async with account.reports() as reports:
                handle = await account.buy("600000.SH", 100, 10.0, remark="via gateway")
                assert handle.order_id == 1
                with anyio.fail_after(5):
                    first = await reports.__anext__()
                assert first.seq == 1 and first.item.order_remark == "via gateway"
            async with qk.subscribe(["600000.SH"]) as sub:
                with anyio.fail_after(5):
                    while gw.backend_subscriptions == 0:
                        await anyio.sleep(0.01)
                venue.publish([tick("600000.SH", 5)])
                with anyio.fail_after(5):
                    batch = await sub.__anext__()
                assert [t.volume for t in batch] == [5]
        submitted = [r for r in venue.requests if type(r).__name__ == "SubmitOrder"]
        assert len(submitted) == 1


async def test_serving_the_simulator(tmp_path: Path) -> None:
    sim = pytest.importorskip("qmtkit.backends.sim.backend")
    backend = sim.SimBackend(home=tmp_path / "home")
    async with running_gateway(backend, tmp_path) as gw:
        url = f"qmtkit://127.0.0.1:{gw.address[1]}?token={TOKEN}"
        async with client_mod.connect(url) as qk:
            assert qk.info.kind == "remote"
            detail = await qk.instrument("600000.SH")
            assert detail is not None and detail.InstrumentID == "600000"
            account = await qk.account("simgw")
            async with account.reports() as reports:
                # A limit far under the market rests: the venue reports it, nothing trades.
                price = round(max(detail.DownStopPrice, 0.01), 2)
                handle = await account.buy("600000.SH", 100, price)
                with anyio.fail_after(10):
                    report = await reports.__anext__()
                    while getattr(report.item, "order_id", None) != handle.order_id:
                        report = await reports.__anext__()
            last = account.last_seq
            assert last >= report.seq >= 1
        # The gateway journaled the simulator's reports under the simulator's own seqs.
        assert gw.journal.last_seq("simgw") >= last
        assert [r.seq for r in gw.journal.since("simgw", 0)][: report.seq] == list(
            range(1, report.seq + 1)
        )


def test_qmtkit_serve_runs_until_interrupted(tmp_path: Path) -> None:
    """The CLI entry serves the simulator, announces its address and stops on Ctrl-C."""
    env = {**os.environ, "QMTKIT_TOKEN": TOKEN}
    env.pop("QMTKIT_BACKEND", None)
    code = (
        "import sys; from qmtkit.gateway.server import serve_main; "
        "sys.exit(serve_main(sys.argv[1:]))"
    )
    args = ["--backend", "sim://", "--listen", "127.0.0.1:0", "--home", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stderr is not None
        line = ""
        for _ in range(50):
            line = proc.stderr.readline()
            if "serving" in line or not line:
                break
        match = re.search(r"on 127\.0\.0\.1:(\d+) \(plain TCP\)", line)
        assert match, line

        async def hello() -> BackendInfo:
            remote = RemoteBackend("127.0.0.1", int(match.group(1)), token=TOKEN)
            async with remote.open(RecordingSink()):
                return expect(await remote.request(Hello()), BackendInfo)

        assert anyio.run(hello).kind == "sim"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert (tmp_path / "gateway" / "reports.journal").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_restarting_a_gateway_over_the_simulator_keeps_one_report_sequence(
    tmp_path: Path,
) -> None:
    sim = pytest.importorskip("qmtkit.backends.sim.backend")
    home = tmp_path / "home"
    sink = RecordingSink()
    remote: RemoteBackend | None = None

    async def place(n: int) -> None:
        assert remote is not None
        for _ in range(n):
            await remote.request(SubmitOrder("simgw", "600000.SH", 23, 100, 11, 1.0))

    async with anyio.create_task_group() as tg:
        async with running_gateway(sim.SimBackend(home=home), tmp_path) as gw:
            port = gw.address[1]
            remote = RemoteBackend("127.0.0.1", port, token=TOKEN, backoff=(0.01, 0.05))
            ready = anyio.Event()
            stop = anyio.Event()

            async def client() -> None:
                assert remote is not None
                async with remote.open(sink):
                    await remote.request(OpenAccount("simgw"))
                    ready.set()
                    await stop.wait()

            tg.start_soon(client)
            await ready.wait()
            await place(3)
            await sink.until(lambda: len(sink.reports) >= 3)
        await sink.until(lambda: any(not s.connected for s in sink.states))
        async with running_gateway(sim.SimBackend(home=home), tmp_path, port=port):
            await sink.until(lambda: any(s.connected for s in sink.states))
            before = len(sink.reports)
            await place(3)
            await sink.until(lambda: len(sink.reports) >= before + 3)
            await anyio.sleep(0.2)  # let any stray duplicate arrive before checking
            stop.set()
    seqs = [r.seq for r in sink.reports]
    assert seqs == list(range(1, len(seqs) + 1))
    orders = {r.item.order_id for r in sink.reports if hasattr(r.item, "order_id")}
    assert orders == {1, 2, 3, 4, 5, 6}
    # A report replayed by the restarted simulator but handed out again would repeat an item.
    items = [msgspec.msgpack.encode(r.item) for r in sink.reports]
    assert len(set(items)) == len(items)
