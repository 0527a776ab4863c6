"""Gateway benchmark: order round trip and quote throughput over loopback, beside in-process.

Run ``python benchmarks/bench_gateway.py`` (``--quick`` for a smoke run). The gateway runs in a
child process (as it would beside MiniQMT), serving a small echo venue defined here: it answers
``SubmitOrder`` with an ``OrderResponse`` and pushes the ``Order`` report, and publishes synthetic
ticks on demand. The same venue is also driven in-process in the same run, as the baseline.

Every remote figure is measured twice: with default event loops, and with busy polling
(``qmtkit serve --busy-poll`` in the gateway, ``qmtkit.busypoll`` in the client; see
docs/deploy.md), which trades CPU for the ~55 us a sleeping process needs to wake on this
kind of machine. The TCP floor is measured both ways too.

Figures (targets): remote order round trip median <= 300 us; >= 200,000 quote records/s to one
remote client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from ratios import record

from qmtkit.backends.base import (
    BackendInfo,
    ConnectionState,
    EventSink,
    GetSectorMembers,
    Names,
    Ok,
    OpenAccount,
    Reply,
    Request,
    SubmitOrder,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.backends.remote import RemoteBackend
from qmtkit.errors import BackendUnavailable
from qmtkit.models import AccountReport, Order, OrderResponse, QuoteBatch, Tick

TOKEN = "bench-token-" + "x" * 24
CODES = [f"{600000 + i:06d}.SH" for i in range(50)]


def make_ticks(n: int) -> list[Tick]:
    """``n`` realistic ticks (5-level book) cycling over ``CODES``."""
    out = []
    for i in range(n):
        p = 10.0 + (i % 100) * 0.01
        out.append(
            Tick(
                stock_code=CODES[i % len(CODES)],
                time=1_700_000_000_000 + i,
                lastPrice=p,
                open=10.0,
                high=11.0,
                low=9.0,
                lastClose=10.0,
                amount=1e6 + i,
                volume=1000 + i,
                askPrice=[p + 0.01 * k for k in range(1, 6)],
                bidPrice=[p - 0.01 * k for k in range(1, 6)],
                askVol=[100 * k for k in range(1, 6)],
                bidVol=[100 * k for k in range(1, 6)],
            )
        )
    return out


class EchoVenue:
    """Answers orders at once and publishes prepared ticks when asked (``bench-publish:N:B``)."""

    def __init__(self) -> None:
        self.sink: EventSink | None = None
        self.subs: dict[int, SubscribeQuotes] = {}
        self.seq: dict[str, int] = {}
        self.next_order = 1
        self._tg: Any = None
        self._ticks = make_ticks(1000)

    @asynccontextmanager
    async def _life(self, sink: EventSink) -> AsyncIterator[BackendInfo]:
        self.sink = sink
        async with anyio.create_task_group() as tg:
            self._tg = tg
            yield BackendInfo(kind="echo", url="echo://", version="bench")
            tg.cancel_scope.cancel()
        self.sink = None

    def open(self, sink: EventSink) -> Any:
        return self._life(sink)

    async def request(self, req: Request) -> Reply:
        assert self.sink is not None
        if isinstance(req, SubmitOrder):
            oid = self.next_order
            self.next_order += 1
            seq = self.seq.get(req.account_id, 0) + 1
            self.seq[req.account_id] = seq
            order = Order(
                account_id=req.account_id,
                stock_code=req.stock_code,
                order_id=oid,
                order_type=req.order_type,
                order_volume=req.order_volume,
                price_type=req.price_type,
                price=req.price,
                order_status=50,
            )
            self.sink.on_report(AccountReport(req.account_id, seq, order))
            return OrderResponse(account_id=req.account_id, order_id=oid, seq=req.seq)
        if isinstance(req, SubscribeQuotes):
            self.subs[req.sub_id] = req
            return Ok()
        if isinstance(req, UnsubscribeQuotes):
            self.subs.pop(req.sub_id, None)
            return Ok()
        if isinstance(req, GetSectorMembers) and req.sector.startswith("bench-publish:"):
            _, n, batch = req.sector.split(":")
            self._tg.start_soon(self._publish, int(n), int(batch))
            return Names([])
        return Ok()

    async def _publish(self, n: int, batch: int) -> None:
        assert self.sink is not None
        ticks = self._ticks
        sent = 0
        while sent < n:
            k = min(batch, n - sent)
            items = (ticks * (k // len(ticks) + 1))[:k]
            for gid, sub in list(self.subs.items()):
                self.sink.on_quotes(QuoteBatch(gid, sub.period, items))
            sent += k
            await anyio.sleep(0)


class CountingSink:
    """Counts quote records and wakes waiters on reports / a record target."""

    def __init__(self) -> None:
        self.records = 0
        self.target = 0
        self.done = anyio.Event()
        self.report_event: anyio.Event | None = None

    def on_quotes(self, batch: QuoteBatch) -> None:
        self.records += len(batch.items)
        if self.target and self.records >= self.target:
            self.done.set()

    def on_report(self, report: AccountReport) -> None:
        ev = self.report_event
        if ev is not None:
            self.report_event = None
            ev.set()

    def on_connection(self, state: ConnectionState) -> None:
        pass


async def order_round_trips(
    backend: Any, sink: CountingSink, n: int
) -> tuple[list[float], list[float]]:
    """Per order: seconds to the reply, and to the Order report."""
    replies: list[float] = []
    reports: list[float] = []
    req = SubmitOrder("bench", "600000.SH", 23, 100, 11, 10.0)
    for _ in range(n):
        ev = sink.report_event = anyio.Event()
        t0 = time.perf_counter()
        await backend.request(req)
        t1 = time.perf_counter()
        await ev.wait()
        t2 = time.perf_counter()
        replies.append(t1 - t0)
        reports.append(t2 - t0)
    return replies, reports


async def quote_rate(backend: Any, sink: CountingSink, n: int, batch: int) -> tuple[float, int]:
    """Records per second delivered to ``sink`` for ``n`` published records."""
    sink.records = 0
    sink.target = n
    sink.done = anyio.Event()
    t0 = time.perf_counter()
    await backend.request(GetSectorMembers(f"bench-publish:{n}:{batch}"))
    with anyio.fail_after(120):
        await sink.done.wait()
    dt = time.perf_counter() - t0
    dropped = sum(getattr(backend, "quotes_dropped", {}).values())
    return sink.records / dt, dropped


_ECHO_SERVER = """
import asyncio, sys
from qmtkit.busypoll import busy_poll_loop_factory
async def main():
    async def handle(r, w):
        try:
            while True:
                w.write(await r.readexactly(64))
        except asyncio.IncompleteReadError:
            pass
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
spin = float(sys.argv[1])
with asyncio.Runner(loop_factory=busy_poll_loop_factory(spin) if spin else None) as runner:
    runner.run(main())
"""


def tcp_floor(n: int, spin_us: float = 0) -> list[float]:
    """Round trips of 64 bytes to a bare asyncio echo server in another process.

    With ``spin_us`` both ends busy-poll for that long (the same loops as the gateway's).
    """
    import asyncio
    import socket

    from qmtkit.busypoll import busy_poll_loop_factory

    child = subprocess.Popen(
        [sys.executable, "-c", _ECHO_SERVER, str(spin_us)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    port = int(child.stdout.readline())

    async def ping() -> list[float]:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            w.write(b"x" * 64)
            await r.readexactly(64)
            out.append(time.perf_counter() - t0)
        w.close()
        return out

    try:
        factory = busy_poll_loop_factory(spin_us) if spin_us else None
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(ping())
    finally:
        child.stdin.close()
        child.wait(10)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def row(name: str, value: str, baseline: str, target: str) -> None:
    print(f"| {name} | {value} | {baseline} | {target} |")


#: The busy-poll budget of the busy-polling runs, at both ends (µs).
SPIN_US = 300


def loop_options(spin_us: float) -> dict[str, Any]:
    """``anyio.run`` backend options for a client loop that busy-polls ``spin_us`` (0: default)."""
    from qmtkit.busypoll import busy_poll_loop_factory

    return {"loop_factory": busy_poll_loop_factory(spin_us)} if spin_us else {}


async def echo_local(n_orders: int, n_quotes: int, batch: int) -> dict[str, Any]:
    """The in-process baseline: the echo venue called directly."""
    venue = EchoVenue()
    sink = CountingSink()
    async with venue.open(sink):
        await order_round_trips(venue, sink, 200)
        rep, rt = await order_round_trips(venue, sink, n_orders)
        await venue.request(SubscribeQuotes(1, CODES))
        rate, dropped = await quote_rate(venue, sink, n_quotes, batch)
    return {"rep": rep, "rt": rt, "rate": rate, "dropped": dropped}


async def echo_remote(n_orders: int, n_quotes: int, batch: int, spin_us: float) -> dict[str, Any]:
    """The echo venue behind a gateway in a child process (both busy-polling ``spin_us``)."""
    with tempfile.TemporaryDirectory() as home:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", home, str(spin_us)],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            remote = RemoteBackend("127.0.0.1", port, token=TOKEN)
            sink = CountingSink()
            async with remote.open(sink):
                await remote.request(OpenAccount("bench"))
                await order_round_trips(remote, sink, 200)
                rep, rt = await order_round_trips(remote, sink, n_orders)
                await remote.request(SubscribeQuotes(1, CODES))
                await quote_rate(remote, sink, min(n_quotes, 50_000), batch)  # warm-up
                rate, dropped = await quote_rate(remote, sink, n_quotes, batch)
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(10)
    return {"rep": rep, "rt": rt, "rate": rate, "dropped": dropped}


def run_echo(quick: bool) -> None:
    """The gateway's own round trip and quote rate: echo venue, default and busy-polling loops."""
    n_orders = 500 if quick else 5000
    n_quotes = 100_000 if quick else 1_000_000
    batch = 1000
    local = anyio.run(echo_local, n_orders, n_quotes, batch)
    plain = anyio.run(echo_remote, n_orders, n_quotes, batch, 0)
    busy = anyio.run(
        echo_remote, n_orders, n_quotes, batch, SPIN_US, backend_options=loop_options(SPIN_US)
    )
    floor = tcp_floor(n_orders)
    floor_busy = tcp_floor(n_orders, SPIN_US)
    us = 1e6
    print(f"gateway benchmark ({'quick' if quick else 'full'}; gateway in a child process,")
    print(f"echo venue; {n_orders} orders, {n_quotes:,} ticks in batches of {batch}; 2 procs;")
    print(f"busy polling: {SPIN_US} µs at both ends)\n")
    print(
        "| figure | remote, default loops | remote, busy polling | in-process baseline | target |"
    )
    print("|---|---|---|---|---|")

    def line(name: str, key: str, q: float | None, target: str = "") -> None:
        def fig(r: dict[str, Any], digits: int = 0) -> str:
            xs = r[key]
            v = statistics.median(xs) if q is None else pct(xs, q)
            return f"{v * us:.{digits}f} µs"

        print(f"| {name} | {fig(plain)} | {fig(busy)} | {fig(local, 1)} | {target} |")

    record(
        "order reply median, remote/floor",
        statistics.median(plain["rep"]) / statistics.median(floor),
    )
    line("order reply, median", "rep", None, "≤ 300 µs")
    line("order reply, p99", "rep", 0.99)
    line("submit → order report, median", "rt", None)
    line("submit → order report, p99", "rt", 0.99)
    print(
        "| bare asyncio TCP ping-pong across processes (floor), median | "
        f"{statistics.median(floor) * us:.0f} µs | {statistics.median(floor_busy) * us:.0f} µs "
        "|  |  |"
    )
    print(
        f"| quote records/s to one client | {plain['rate']:,.0f} (merged away: "
        f"{plain['dropped']}) | {busy['rate']:,.0f} (merged away: {busy['dropped']}) | "
        f"{local['rate']:,.0f} | ≥ 200,000 |"
    )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def client_round_trips(url: str, n: int) -> list[float]:
    """Seconds from ``account.buy`` to the filled order, through the public client."""
    import qmtkit

    async with qmtkit.connect(url) as qk:
        account = await qk.account("bench-client")
        # A limit at the day's up-limit always crosses the book: a limit at the ask of one
        # moment could rest unfilled once the (moving) simulated market ticks up.
        detail = await qk.instrument("600000.SH")
        assert detail is not None
        limit = detail.UpStopPrice
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            with anyio.move_on_after(30) as stuck:
                handle = None
                handle = await account.buy("600000.SH", 100, limit)
                final = await handle
            if stuck.cancelled_caught:  # say where it hangs instead of hanging the benchmark
                raise RuntimeError(
                    f"order {i} of {url} not final after 30 s: handle {handle!r}, "
                    f"its reports {handle._events if handle else None}, "
                    f"account last seq {account.last_seq}, connection {qk.connection}"
                )
            times.append(time.perf_counter() - t0)
            assert final.order_status == 56, final
        return times


async def remote_sim(home: str, n: int, spin_us: float) -> list[float]:
    """Buy → filled through ``qmtkit serve`` (a child process, busy-polling ``spin_us``)."""
    port = free_port()
    # The gateway's report journal goes in this run's own home: a simulator in a fresh home
    # is a new venue, and a gateway refuses a journal that holds another venue's reports.
    serve = subprocess.Popen(
        [sys.executable, "-m", "qmtkit", "serve", "--backend",
         f"sim://?home={home}&cash=1000000000", "--listen", f"127.0.0.1:{port}",
         "--token", TOKEN, "--home", home, "--busy-poll", str(spin_us)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"qmtkit://127.0.0.1:{port}?token={TOKEN}"
        for _ in range(200):  # wait for the listener
            try:
                await client_round_trips(url, 1)
                break
            except BackendUnavailable:  # not listening yet; anything else is a real error
                await anyio.sleep(0.05)
        return await client_round_trips(url, n)
    finally:
        serve.terminate()
        serve.wait(10)


def run_sim(quick: bool) -> None:
    """The full path a strategy takes: client → gateway → simulator, beside in-process."""
    n = 300 if quick else 2000
    with tempfile.TemporaryDirectory() as home:
        local = anyio.run(
            client_round_trips, f"sim://?home={home}/local&cash=1000000000&share=0", n
        )
        plain = anyio.run(remote_sim, f"{home}/plain", n, 0)
        busy = anyio.run(
            remote_sim, f"{home}/busy", n, SPIN_US, backend_options=loop_options(SPIN_US)
        )
    us = 1e6
    print(f"\nclient → simulator order round trip (buy → filled, {n} orders; the gateway in a")
    print("child process serving sim://, the baseline the same client on sim:// in-process;")
    print(f"busy polling: `qmtkit serve --busy-poll {SPIN_US}` and a client loop from")
    print("`qmtkit.busypoll` with the same budget)\n")
    print("| figure | gateway, default loops | gateway, busy polling | in-process | target |")
    print("|---|---|---|---|---|")
    row2 = "| {} | {:.0f} µs | {:.0f} µs | {:.0f} µs | {} |"
    record(
        "buy → filled median, gateway/in-process",
        statistics.median(plain) / statistics.median(local),
    )
    print(row2.format("buy → filled order, median", statistics.median(plain) * us,
                      statistics.median(busy) * us, statistics.median(local) * us,
                      "≤ 300 µs remote, ≤ 100 µs local"))  # fmt: skip
    print(row2.format("buy → filled order, p99", pct(plain, 0.99) * us, pct(busy, 0.99) * us,
                      pct(local, 0.99) * us, ""))  # fmt: skip


async def child_main(home: str) -> None:
    """The gateway child: serve the echo venue until the parent closes our stdin."""
    from qmtkit.gateway.server import Gateway, serve

    async with anyio.create_task_group() as tg:
        gw: Gateway = await tg.start(
            lambda task_status: serve(
                EchoVenue(),
                "127.0.0.1",
                0,
                token=TOKEN,
                home=home,
                max_records=10_000_000,
                task_status=task_status,
            )
        )
        print(gw.address[1], flush=True)
        # Serve until the parent closes our stdin.
        await anyio.to_thread.run_sync(sys.stdin.read)
        tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    parser.add_argument(
        "--sim-only", action="store_true", help="only the client → gateway → simulator figures"
    )
    parser.add_argument("--child", nargs=2, metavar=("HOME", "SPIN_US"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spin = float(args.child[1])
        anyio.run(child_main, args.child[0], backend_options=loop_options(spin))
        return
    os.environ.pop("QMTKIT_TOKEN", None)
    if not args.sim_only:
        run_echo(args.quick)
    run_sim(args.quick)


if __name__ == "__main__":
    main()
