"""Links that break: clients cut off, gateways restarted, silent peers: nothing lost or doubled."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import anyio
import anyio.abc
import msgspec
import pytest

from qmtkit.backends.base import BackendInfo, Hello, OpenAccount, SubmitOrder, SubscribeQuotes
from qmtkit.backends.remote import RemoteBackend
from qmtkit.errors import BackendUnavailable, ClosedError, InvalidArgument
from qmtkit.wire.protocol import (
    Auth,
    ClientMessage,
    FrameEncoder,
    FrameReader,
    FramingError,
    Welcome,
)
from support.gateway import (
    TOKEN,
    FakeVenue,
    RecordingSink,
    order_item,
    remote_for,
    running_gateway,
    tick,
)


def _seqs(sink: RecordingSink, account: str = "A") -> list[int]:
    return [r.seq for r in sink.reports if r.account_id == account]


async def _emit_slowly(venue: FakeVenue, first: int, last: int) -> None:
    for i in range(first, last + 1):
        venue.emit("A", order_item("A", i))
        if i % 7 == 0:
            await anyio.sleep(0)


async def test_a_client_cut_off_mid_stream_resumes_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            await remote.request(OpenAccount("A"))
            await remote.request(SubscribeQuotes(3, ["600000.SH"]))
            await _emit_slowly(venue, 1, 300)
            # Cut the link from the gateway's side while reports are still flowing.
            for session in list(gw.sessions):
                session.kill("test: network cut")
            await _emit_slowly(venue, 301, 600)
            await sink.until(lambda: len(sink.reports) >= 600 and len(sink.states) >= 2)
            # Cut it again from the client's side.
            assert remote._link is not None
            await remote._link.stream.aclose()
            await _emit_slowly(venue, 601, 900)
            await sink.until(lambda: len(sink.reports) >= 900 and len(sink.states) >= 4)
            # Quote subscriptions were restored with the client's own id.
            venue.publish([tick("600000.SH", 1)])
            await sink.until(lambda: len(sink.records(3)) >= 1)
        assert _seqs(sink) == list(range(1, 901))
        assert [s.connected for s in sink.states] == [False, True, False, True]
        assert remote.reconnects == 2


async def test_the_gateway_restarted_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    venue = FakeVenue()
    remote: RemoteBackend | None = None
    sink = RecordingSink()
    async with anyio.create_task_group() as tg:
        async with running_gateway(venue, tmp_path) as gw:
            port = gw.address[1]
            remote = remote_for(gw)
            opened = anyio.Event()
            stop = anyio.Event()

            async def client() -> None:
                assert remote is not None
                async with remote.open(sink):
                    await remote.request(OpenAccount("A"))
                    opened.set()
                    await stop.wait()

            tg.start_soon(client)
            await opened.wait()
            await _emit_slowly(venue, 1, 200)
            await sink.until(lambda: len(sink.reports) >= 150)
        # The gateway is gone; the venue keeps trading meanwhile.
        await sink.until(lambda: any(not s.connected for s in sink.states))
        await _emit_slowly(venue, 201, 400)
        async with running_gateway(venue, tmp_path, port=port):
            await sink.until(lambda: any(s.connected for s in sink.states))
            await _emit_slowly(venue, 401, 600)
            await sink.until(lambda: len(sink.reports) >= 600)
            stop.set()
    assert _seqs(sink) == list(range(1, 601))
    assert venue.lifetimes == 2


async def test_a_backend_whose_numbering_restarts_still_yields_one_sequence(
    tmp_path: Path,
) -> None:
    """Like xtquant's: after a restart the backend numbers its reports from 1 again."""
    venue = FakeVenue()
    sink = RecordingSink()
    async with anyio.create_task_group() as tg:
        async with running_gateway(venue, tmp_path) as gw:
            port = gw.address[1]
            remote = remote_for(gw)
            opened = anyio.Event()
            stop = anyio.Event()

            async def client() -> None:
                async with remote.open(sink):
                    await remote.request(OpenAccount("A"))
                    opened.set()
                    await stop.wait()

            tg.start_soon(client)
            await opened.wait()
            await _emit_slowly(venue, 1, 100)
            await sink.until(lambda: len(sink.reports) >= 100)
        await sink.until(lambda: any(not s.connected for s in sink.states))
        venue.reports.clear()  # the backend restarted and remembers nothing
        async with running_gateway(venue, tmp_path, port=port):
            await sink.until(lambda: any(s.connected for s in sink.states))
            await _emit_slowly(venue, 101, 250)
            await sink.until(lambda: len(sink.reports) >= 250)
            stop.set()
    assert _seqs(sink) == list(range(1, 251))
    assert [r.item.order_id for r in sink.reports] == list(range(1, 251))
    assert venue.reports["A"][-1].seq == 150  # the backend's own numbering did restart


async def test_the_journal_outlives_the_gateway_and_its_venue_memory(tmp_path: Path) -> None:
    first = FakeVenue()
    async with running_gateway(first, tmp_path) as gw:
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            await remote.request(OpenAccount("A"))
            await _emit_slowly(first, 1, 5)
            await sink.until(lambda: len(sink.reports) == 5)
    # A new gateway over a venue that remembers nothing still replays from its journal.
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        remote = remote_for(gw)
        late = RecordingSink()
        async with remote.open(late):
            await remote.request(OpenAccount("A", after_seq=2))
            await late.until(lambda: len(late.reports) == 3)
    assert _seqs(late) == [3, 4, 5]


async def test_requests_in_flight_fail_and_orders_are_not_resent(tmp_path: Path) -> None:
    release = anyio.Event()

    async def handler(req: object) -> object:
        if isinstance(req, SubmitOrder):
            await release.wait()
        return None

    venue = FakeVenue(handler)
    async with running_gateway(venue, tmp_path) as gw:
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            failure: list[BaseException] = []

            async def place() -> None:
                try:
                    await remote.request(SubmitOrder("A", "600000.SH", 23, 100, 11, 10.0))
                except BackendUnavailable as exc:
                    failure.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(place)
                with anyio.fail_after(5):
                    while not venue.requests:
                        await anyio.sleep(0.005)
                for session in list(gw.sessions):
                    session.kill("test: network cut")
            assert len(failure) == 1
            assert "not re-sent" in str(failure[0])
            await sink.until(lambda: any(s.connected for s in sink.states))
            release.set()
            assert isinstance(await remote.request(Hello()), BackendInfo)
        assert len([r for r in venue.requests if isinstance(r, SubmitOrder)]) == 1


async def test_requests_while_disconnected_fail_fast(tmp_path: Path) -> None:
    venue = FakeVenue()
    sink = RecordingSink()
    async with anyio.create_task_group() as tg:
        async with running_gateway(venue, tmp_path) as gw:
            remote = remote_for(gw, backoff=(5.0, 5.0))
            ready = anyio.Event()
            done = anyio.Event()

            async def client() -> None:
                async with remote.open(sink):
                    ready.set()
                    await done.wait()

            tg.start_soon(client)
            await ready.wait()
        await sink.until(lambda: bool(sink.states))
        with pytest.raises(BackendUnavailable, match="reconnecting"):
            await remote.request(Hello())
        done.set()
    with pytest.raises(ClosedError):
        await remote.request(Hello())


async def test_the_client_detects_a_gateway_gone_silent(tmp_path: Path) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    connections = 0

    async def mute_gateway(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        connections += 1
        reader = FrameReader(stream)
        msg = msgspec.msgpack.Decoder(ClientMessage).decode(await reader.receive())
        assert isinstance(msg, Auth) and msg.token == TOKEN
        await stream.send(FrameEncoder().encode(Welcome(BackendInfo(kind="mute", url=""))))
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, FramingError):
            while True:
                await reader.receive()  # read and never answer

    sink = RecordingSink()
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, mute_gateway)
        remote = RemoteBackend(
            "127.0.0.1", port, token=TOKEN, heartbeat=0.05, timeout=0.25, backoff=(0.01, 0.02)
        )
        async with remote.open(sink):
            await sink.until(lambda: bool(sink.states), timeout=5)
            assert not sink.states[0].connected
            assert "heartbeat timeout" in sink.states[0].reason
        tg.cancel_scope.cancel()
    assert connections >= 1


def test_backoff_doubles_to_its_cap_with_seeded_jitter() -> None:
    a = RemoteBackend("h", 1, token=TOKEN, backoff=(0.1, 1.0), rng=random.Random(7))
    b = RemoteBackend("h", 1, token=TOKEN, backoff=(0.1, 1.0), rng=random.Random(7))
    delays = [a.backoff_delay(n) for n in range(8)]
    assert delays == [b.backoff_delay(n) for n in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_from_url_reads_token_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    r = RemoteBackend.from_url("qmtkit://10.0.0.5:9000?token=abc%2Fdef&heartbeat=2&timeout=9")
    assert (r.host, r.port, r.token, r.heartbeat, r.timeout) == ("10.0.0.5", 9000, "abc/def", 2, 9)
    assert r.tls is None
    monkeypatch.setenv("QMTKIT_TOKEN", "from-the-environment")
    r = RemoteBackend.from_url("qmtkit://gw.example")
    assert (r.port, r.token) == (58610, "from-the-environment")
    r = RemoteBackend.from_url("qmtkit://gw.example:1?tls=1&verify=0")
    assert r.tls is not None and not r.tls.check_hostname


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:1", "expected qmtkit://HOST:PORT"),
        ("qmtkit://h:99999", "bad port"),
        ("qmtkit://h:1?tokn=x", "unknown option"),
        ("qmtkit://h:1?tls=maybe", "tls='maybe'"),
        ("qmtkit://h:1?heartbeat=soon", "heartbeat='soon'"),
        ("qmtkit://h:1?heartbeat=5&timeout=1", "must exceed the heartbeat"),
    ],
)
def test_from_url_names_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        RemoteBackend.from_url(url)


async def test_a_backend_has_one_lifetime(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            with pytest.raises(InvalidArgument, match="already open"):
                async with remote.open(RecordingSink()):
                    pass
        with pytest.raises(ClosedError):
            async with remote.open(RecordingSink()):
                pass


async def test_a_failed_first_connect_raises_and_leaves_the_backend_usable(tmp_path: Path) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    remote = RemoteBackend("127.0.0.1", port, token=TOKEN)
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}"):
        async with remote.open(RecordingSink()):
            pass
    async with running_gateway(FakeVenue(), tmp_path, port=port), remote.open(RecordingSink()):
        assert isinstance(await remote.request(Hello()), BackendInfo)
