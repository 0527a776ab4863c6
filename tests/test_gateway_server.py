"""The gateway end to end over loopback: auth, requests, multiplexing, fan-out, bad frames."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import anyio
import msgspec
import pytest

from qmtkit.backends.base import (
    BackendInfo,
    GetSnapshot,
    Hello,
    ListInstruments,
    ListSectors,
    OpenAccount,
    SubmitOrder,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.backends.remote import AuthRefused, RemoteBackend
from qmtkit.errors import BackendError, BackendUnavailable, InvalidArgument, InvalidCode
from qmtkit.gateway.server import parse_listen, serve, serve_main
from qmtkit.models import OrderResponse
from qmtkit.wire.protocol import (
    Call,
    ErrorFrame,
    Failure,
    Ping,
    Pong,
    QuotesEvent,
    ReportsEvent,
    Result,
    Welcome,
)
from qmtkit.wire.security import client_tls_context, server_tls_context
from support.gateway import (
    TOKEN,
    FakeVenue,
    RawClient,
    RecordingSink,
    order_item,
    remote_for,
    running_gateway,
    tick,
)
from support.tls import self_signed


async def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="without a token"):
        await serve(FakeVenue(), "127.0.0.1", 0, journal=tmp_path / "j")


async def test_serve_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"port must be an int in 0\.\.65535, got 70000"):
        await serve(FakeVenue(), "127.0.0.1", 70000, token=TOKEN)
    with pytest.raises(InvalidArgument, match="timeout"):
        await serve(FakeVenue(), "127.0.0.1", 0, token=TOKEN, heartbeat=2.0, timeout=1.0)
    with pytest.raises(InvalidArgument, match="must be a Backend or a backend URL"):
        await serve(42, "127.0.0.1", 0, token=TOKEN)  # type: ignore[arg-type]


async def test_insecure_no_token_serves_anyone_when_asked_explicitly(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path, token=None, insecure_no_token=True) as gw:
        remote = remote_for(gw, token="anything-at-all")
        async with remote.open(RecordingSink()):
            reply = await remote.request(Hello())
    assert isinstance(reply, BackendInfo) and reply.kind == "fake"


async def test_requests_round_trip_and_errors_keep_their_class(tmp_path: Path) -> None:
    def handler(req: object) -> object:
        if isinstance(req, GetSnapshot):
            raise InvalidCode(f"bad security code {req.codes[0]!r}")
        return None

    async with running_gateway(FakeVenue(handler), tmp_path) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()) as info:
            assert info.kind == "remote" and info.url.endswith(f":{gw.address[1]}")
            reply = await remote.request(SubmitOrder("A", "600000.SH", 23, 100, 11, 10.0, seq=9))
            assert reply == OrderResponse(account_id="A", order_id=1, seq=9)
            with pytest.raises(InvalidCode, match="bad security code 'XX'"):
                await remote.request(GetSnapshot(["XX"]))
            # The connection is still fine after a failed request.
            assert isinstance(await remote.request(Hello()), BackendInfo)


async def test_a_wrong_token_is_refused_and_others_keep_working(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        good = remote_for(gw)
        async with good.open(RecordingSink()):
            with pytest.raises(AuthRefused, match="wrong token"):
                async with remote_for(gw, token="not-the-token").open(RecordingSink()):
                    pass
            raw = await RawClient.connect(gw, token="nope-nope-nope")
            refusal = await raw.recv()
            assert isinstance(refusal, ErrorFrame) and refusal.fatal
            with pytest.raises(anyio.EndOfStream):
                await raw.recv()
            assert isinstance(await good.request(Hello()), BackendInfo)
            assert len(gw.sessions) == 1


async def test_first_frame_must_be_auth(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        raw = await RawClient.connect(gw, token=None)
        await raw.send(Ping(1))
        refusal = await raw.recv()
        assert isinstance(refusal, ErrorFrame) and "first frame must be Auth" in refusal.message


async def test_quote_subscriptions_are_shared_and_ref_counted(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw, anyio.create_task_group() as tg:
        remotes = [remote_for(gw) for _ in range(5)]
        sinks = [RecordingSink() for _ in remotes]
        opened = anyio.Event()
        done = anyio.Event()

        async def client(i: int) -> None:
            async with remotes[i].open(sinks[i]):
                # Each client picks its own id; the gateway maps them to one backend id.
                await remotes[i].request(SubscribeQuotes(100 + i, ["600000.SH", "000001.SZ"]))
                if sum(len(r._resume.subscriptions()) for r in remotes) == len(remotes):
                    opened.set()
                await done.wait()

        for i in range(len(remotes)):
            tg.start_soon(client, i)
        with anyio.fail_after(5):
            await opened.wait()
        assert gw.backend_subscriptions == 1
        assert len([r for r in venue.requests if isinstance(r, SubscribeQuotes)]) == 1
        venue.publish([tick("600000.SH", n) for n in range(50)])
        venue.publish([tick("600519.SH", 1)])  # not subscribed: nobody sees it
        for i, sink in enumerate(sinks):
            await sink.until(lambda s=sink: len(s.records()) >= 50)
            assert {b.sub_id for b in sink.quotes} == {100 + i}
            assert [t.volume for t in sink.records()] == list(range(50))
        # Unsubscribing all but one keeps the backend subscription; the last one drops it.
        for i in range(4):
            await remotes[i].request(UnsubscribeQuotes(100 + i))
        assert gw.backend_subscriptions == 1
        await remotes[4].request(UnsubscribeQuotes(104))
        assert gw.backend_subscriptions == 0
        assert venue.subs == {}
        done.set()


async def test_subscription_ids_are_checked_per_connection(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            await remote.request(SubscribeQuotes(1, ["600000.SH"]))
            with pytest.raises(InvalidArgument, match="subscription id 1 is already in use"):
                await remote.request(SubscribeQuotes(1, ["000001.SZ"]))
            with pytest.raises(InvalidArgument, match="no quote subscription with id 7"):
                await remote.request(UnsubscribeQuotes(7))
            assert gw.backend_subscriptions == 1


async def test_disconnecting_clients_release_their_subscriptions(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        remote = remote_for(gw)
        async with remote.open(RecordingSink()):
            await remote.request(SubscribeQuotes(1, ["600000.SH"]))
            assert gw.backend_subscriptions == 1
        with anyio.fail_after(5):
            while gw.sessions:
                await anyio.sleep(0.01)
        assert gw.backend_subscriptions == 0 and venue.subs == {}


async def test_reports_fan_out_to_every_client_of_the_account_only(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        a1, a2, b = remote_for(gw), remote_for(gw), remote_for(gw)
        s1, s2, sb = RecordingSink(), RecordingSink(), RecordingSink()
        async with a1.open(s1), a2.open(s2), b.open(sb):
            await a1.request(OpenAccount("A"))
            await a2.request(OpenAccount("A"))
            await b.request(OpenAccount("B"))
            for i in range(1, 21):
                venue.emit("A", order_item("A", i))
            venue.emit("B", order_item("B", 1))
            for sink in (s1, s2):
                await sink.until(lambda s=sink: len(s.reports) == 20)
                assert [r.seq for r in sink.reports] == list(range(1, 21))
                assert {r.account_id for r in sink.reports} == {"A"}
            await sb.until(lambda: len(sb.reports) == 1)
            assert sb.reports[0].account_id == "B"


async def test_open_account_replays_from_after_seq(tmp_path: Path) -> None:
    venue = FakeVenue()
    for i in range(1, 11):
        venue.emit("A", order_item("A", i))
    async with running_gateway(venue, tmp_path) as gw:
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            await remote.request(OpenAccount("A", after_seq=6))
            await sink.until(lambda: len(sink.reports) == 4)
            venue.emit("A", order_item("A", 11))
            await sink.until(lambda: len(sink.reports) == 5)
        assert [r.seq for r in sink.reports] == [7, 8, 9, 10, 11]


async def test_malformed_frames_hurt_only_their_sender(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        good = remote_for(gw)
        sink = RecordingSink()
        async with good.open(sink):
            await good.request(OpenAccount("A"))
            bad = await RawClient.connect(gw)
            assert isinstance(await bad.recv(), Welcome)

            await bad.send_payload(b"\xc1 not msgpack")
            err = await bad.recv_until(ErrorFrame)
            assert "not msgpack" in err.message and not err.fatal

            await bad.send_payload(msgspec.msgpack.encode({"type": "launch_rockets"}))
            err = await bad.recv_until(ErrorFrame)
            assert "'launch_rockets'" in err.message

            await bad.send_payload(
                msgspec.msgpack.encode({"type": "call", "id": 5, "req": {"type": "nope"}})
            )
            fail = await bad.recv_until(Failure)
            assert fail.id == 5 and fail.error == "InvalidArgument" and "nope" in fail.message

            # The sender's connection still works after its bad frames...
            await bad.send(Call(6, Hello()))
            result = await bad.recv_until(Result)
            assert result.id == 6
            # ...until it breaks the framing itself, which closes it.
            await bad.stream.send((1 << 31).to_bytes(4, "big"))
            err = await bad.recv_until(ErrorFrame)
            assert err.fatal and "exceeds the limit" in err.message
            with pytest.raises(anyio.EndOfStream):
                while True:
                    await bad.recv()

            venue.emit("A", order_item("A", 1))
            await sink.until(lambda: len(sink.reports) == 1)
            assert isinstance(await good.request(Hello()), BackendInfo)


async def test_gateway_answers_pings_and_drops_silent_clients(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path, heartbeat=0.05, timeout=0.3) as gw:
        raw = await RawClient.connect(gw)
        assert isinstance(await raw.recv(), Welcome)
        await raw.send(Ping(42))
        assert (await raw.recv_until(Pong)).nonce == 42
        # The gateway pings a silent client, then closes it after the timeout.
        got_ping = False
        with anyio.fail_after(3), pytest.raises(anyio.EndOfStream):
            while True:
                msg = await raw.recv()
                got_ping = got_ping or isinstance(msg, Ping)
        assert got_ping
        with anyio.fail_after(2):
            while gw.sessions:
                await anyio.sleep(0.01)


async def test_slow_quote_client_gets_latest_per_code_and_a_dropped_count(tmp_path: Path) -> None:
    venue = FakeVenue()
    codes = [f"60000{i}.SH" for i in range(5)]
    async with running_gateway(venue, tmp_path, max_records=20) as gw:
        raw = await RawClient.connect(gw)
        assert isinstance(await raw.recv(), Welcome)
        await raw.send(Call(1, SubscribeQuotes(9, codes)))
        assert isinstance(await raw.recv_until(Result), Result)
        # The client reads nothing while far more than the socket buffers hold is published.
        total = 0
        for n in range(300):
            venue.publish([tick(c, n * 1000 + k) for k in range(200) for c in codes])
            total += 200 * len(codes)
            await anyio.sleep(0)
        last = {c: tick(c, 299 * 1000 + 199) for c in codes}
        seen: dict[str, int] = {}
        dropped = received = 0
        with anyio.fail_after(20):
            while received + dropped < total:
                msg = await raw.recv()
                if isinstance(msg, QuotesEvent):
                    assert msg.batch.sub_id == 9
                    dropped += msg.dropped
                    received += len(msg.batch.items)
                    for t in msg.batch.items:
                        assert t.volume > seen.get(t.stock_code, -1)  # per code, still in order
                        seen[t.stock_code] = t.volume
        assert received + dropped == total
        assert dropped > 0
        assert {c: seen[c] for c in codes} == {c: last[c].volume for c in codes}


async def test_a_client_overflowing_the_report_cap_is_disconnected_not_shortchanged(
    tmp_path: Path,
) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path, report_cap=50) as gw:
        raw = await RawClient.connect(gw)
        assert isinstance(await raw.recv(), Welcome)
        await raw.send(Call(1, OpenAccount("A")))
        assert isinstance(await raw.recv_until(Result), Result)
        for i in range(1, 3001):
            venue.emit("A", order_item("A", i, remark="x" * 2000))
            if i % 100 == 0:
                await anyio.sleep(0)
        seqs: list[int] = []
        with anyio.fail_after(10), pytest.raises(anyio.EndOfStream):
            while True:
                msg = await raw.recv()
                if isinstance(msg, ReportsEvent):
                    seqs.extend(r.seq for r in msg.reports)
        # What did arrive is a gap-free prefix; the rest is waiting in the journal.
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 3000
        # The client resumes after what it saw and gets every remaining report exactly once.
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            await remote.request(OpenAccount("A", after_seq=len(seqs)))
            await sink.until(lambda: len(sink.reports) == 3000 - len(seqs))
        assert [r.seq for r in sink.reports] == list(range(len(seqs) + 1, 3001))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_link_with_a_pinned_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with running_gateway(FakeVenue(), tmp_path, tls=server_tls_context(cert, key)) as gw:
        remote = remote_for(gw, tls=client_tls_context(cert))
        async with remote.open(RecordingSink()):
            assert isinstance(await remote.request(Hello()), BackendInfo)
        url = f"qmtkit://127.0.0.1:{gw.address[1]}?token={TOKEN}&tls=1&cafile={cert}"
        async with RemoteBackend.from_url(url).open(RecordingSink()) as info:
            assert info.kind == "remote"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_a_tls_mismatch_is_told_in_one_line_on_both_sides(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = self_signed(tmp_path)
    async with running_gateway(FakeVenue(), tmp_path, tls=server_tls_context(cert, key)) as gw:
        with caplog.at_level(logging.WARNING), pytest.raises(BackendUnavailable, match="tls=1"):
            async with remote_for(gw, connect_timeout=2.0).open(RecordingSink()):
                pass
        await anyio.sleep(0.05)  # let the gateway finish with the failed handshake
    handshake = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(handshake) == 1 and handshake[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]
    async with running_gateway(FakeVenue(), tmp_path / "plain") as plain:
        tls_client = remote_for(plain, tls=client_tls_context(cert), connect_timeout=2.0)
        with pytest.raises(BackendUnavailable, match="without tls=1"):
            async with tls_client.open(RecordingSink()):
                pass


async def test_a_client_without_a_token_is_told_so(tmp_path: Path) -> None:
    async with running_gateway(FakeVenue(), tmp_path) as gw:
        with pytest.raises(AuthRefused, match="no token sent"):
            async with remote_for(gw, token="").open(RecordingSink()):
                pass


def test_listen_address_parsing() -> None:
    assert parse_listen("0.0.0.0:58610") == ("0.0.0.0", 58610)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(InvalidArgument, match="'nowhere'"):
        parse_listen("nowhere")
    with pytest.raises(InvalidArgument, match="bad port 'x'"):
        parse_listen("host:x")


def test_serve_main_rejects_bad_options(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QMTKIT_TOKEN", raising=False)
    assert serve_main(["--listen", "127.0.0.1:0", "--tls-cert", "c.pem"]) == 2
    assert "both --tls-cert and --tls-key" in capsys.readouterr().err
    assert serve_main(["--listen", "127.0.0.1:0", "--backend", "sim://"]) == 2
    assert "without a token" in capsys.readouterr().err


async def test_replies_that_cannot_travel_fail_only_their_call(tmp_path: Path) -> None:
    def handler(req: object) -> object:
        if isinstance(req, ListSectors):
            return object()  # not encodable at all
        if isinstance(req, ListInstruments):
            return tick("600000.SH", 1)  # encodable, but not a reply the client knows
        return None

    async with running_gateway(FakeVenue(handler), tmp_path) as gw:
        remote = remote_for(gw)
        sink = RecordingSink()
        async with remote.open(sink):
            with pytest.raises(BackendError, match="cannot be sent"):
                await remote.request(ListSectors())
            with pytest.raises(BackendError, match="could not be decoded"):
                await remote.request(ListInstruments())
            assert isinstance(await remote.request(Hello()), BackendInfo)
        assert sink.states == []  # the link never dropped


async def test_a_client_killed_mid_stream_leaves_the_others_whole(tmp_path: Path) -> None:
    venue = FakeVenue()
    async with running_gateway(venue, tmp_path) as gw:
        survivor = remote_for(gw)
        sink = RecordingSink()
        async with survivor.open(sink):
            await survivor.request(OpenAccount("A"))
            await survivor.request(SubscribeQuotes(1, ["600000.SH"]))
            victim = await RawClient.connect(gw)
            await victim.send(Call(1, OpenAccount("A")))
            await victim.send(Call(2, SubscribeQuotes(5, ["600000.SH"])))
            for call_id in (1, 2):
                assert (await victim.recv_until(Result)).id == call_id
            for i in range(1, 201):
                venue.emit("A", order_item("A", i))
                venue.publish([tick("600000.SH", i)])
                if i == 100:
                    await victim.stream.aclose()  # gone without a goodbye
                await anyio.sleep(0)
            await sink.until(lambda: len(sink.reports) == 200 and len(sink.records(1)) == 200)
            with anyio.fail_after(5):
                while len(gw.sessions) > 1:
                    await anyio.sleep(0.01)
            assert gw.backend_subscriptions == 1  # the survivor's ride on the shared one
        assert [r.seq for r in sink.reports] == list(range(1, 201))
        assert [t.volume for t in sink.records(1)] == list(range(1, 201))
