"""Quote subscriptions through the client: sharing, routing, back-pressure, reference data."""

from __future__ import annotations

import anyio
import pytest

import qmtkit
from qmtkit.backends.base import (
    GetSectorMembers,
    GetSnapshot,
    Instruments,
    ListInstruments,
    ListSectors,
    Names,
    Ok,
    Reply,
    Request,
    Snapshots,
    SubscribeQuotes,
    UnsubscribeQuotes,
)
from qmtkit.backends.mock import MockBackend
from qmtkit.errors import InvalidArgument, InvalidCode, InvalidPeriod
from qmtkit.models import Bar, InstrumentDetail, QuoteBatch, Tick

CODES = ["600000.SH", "000001.SZ", "300750.SZ"]


def tick(code: str, n: int) -> Tick:
    return Tick(
        stock_code=code,
        time=1_700_000_000_000 + n * 3000,
        lastPrice=10.0 + n / 100,
        open=10.0,
        high=11.0,
        low=9.0,
        lastClose=10.0,
        amount=1000.0 * n,
        volume=n,
    )


class Quotes:
    """A venue that records subscriptions and lets the test push batches to them."""

    def __init__(self) -> None:
        self.backend = MockBackend(self.handle)
        self.unsubscribed = anyio.Event()

    def handle(self, req: Request) -> Reply:
        if isinstance(req, UnsubscribeQuotes):
            self.unsubscribed.set()
        if isinstance(req, GetSnapshot):
            return Snapshots(items=[tick(c, 1) for c in req.codes if c in CODES])
        if isinstance(req, ListInstruments):
            codes = req.codes if req.codes is not None else CODES
            return Instruments(
                items=[
                    InstrumentDetail(
                        ExchangeID=c.split(".")[1],
                        InstrumentID=c.split(".")[0],
                        InstrumentName=f"name {c}",
                    )
                    for c in codes
                    if c in CODES
                ]
            )
        if isinstance(req, ListSectors):
            return Names(items=["沪深300"])
        if isinstance(req, GetSectorMembers):
            return Names(items=CODES[:2])
        return Ok()

    def subs(self) -> list[SubscribeQuotes]:
        return [r for r in self.backend.requests if isinstance(r, SubscribeQuotes)]

    def push(self, sub_id: int, items: list[Tick | Bar], period: str = "tick") -> None:
        self.backend.push_quotes(QuoteBatch(sub_id=sub_id, period=period, items=items))


async def test_subscription_receives_the_batches_of_its_sub_id_only() -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        a = await qk.subscribe(["600000.SH"]).__aenter__()
        b = await qk.subscribe(["000001.SZ"]).__aenter__()
        assert [s.codes for s in venue.subs()] == [["600000.SH"], ["000001.SZ"]]
        assert a.sub_id != b.sub_id and a.sub_id is not None and b.sub_id is not None
        venue.push(a.sub_id, [tick("600000.SH", 1)])
        venue.push(b.sub_id, [tick("000001.SZ", 1)])
        venue.push(12345, [tick("300750.SZ", 1)])  # an unknown subscription is ignored
        assert await a.__anext__() == [tick("600000.SH", 1)]
        assert await b.__anext__() == [tick("000001.SZ", 1)]
        assert a.pending == 0 and b.pending == 0


async def test_consumers_of_the_same_codes_share_one_backend_subscription() -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        subs = [qk.subscribe(CODES, "1m") for _ in range(5)]
        subs.append(qk.subscribe(list(reversed(CODES)), "1m"))
        for s in subs:
            await s.__aenter__()
        assert len(venue.subs()) == 1
        assert qk.quote_subscriptions == 1
        sub_id = subs[0].sub_id
        assert sub_id is not None
        b = Bar(
            stock_code="600000.SH",
            period="1m",
            time=60_000,
            open=1.0,
            high=1.0,
            low=1.0,
            close=1.0,
            volume=1,
            amount=1.0,
        )
        venue.push(sub_id, [b], "1m")
        for s in subs:
            assert await s.__anext__() == [b]
        for s in subs[:-1]:
            await s.aclose()
        assert venue.backend.sent(UnsubscribeQuotes) == []
        await subs[-1].aclose()
        assert venue.backend.sent(UnsubscribeQuotes) == [UnsubscribeQuotes(sub_id)]
        assert qk.quote_subscriptions == 0


async def test_different_period_is_a_different_backend_subscription() -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        tick_sub = await qk.subscribe(CODES, "tick").__aenter__()
        day_sub = await qk.subscribe(CODES, "1d").__aenter__()
        assert [s.period for s in venue.subs()] == ["tick", "1d"]
        assert tick_sub.sub_id != day_sub.sub_id


@pytest.mark.parametrize("whole", [[], "all", "ALL"])
async def test_empty_or_all_subscribes_the_whole_market(whole: object) -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        async with qk.subscribe(whole):  # type: ignore[arg-type]
            pass
        async with qk.subscribe_whole():
            pass
        assert [s.codes for s in venue.subs()] == [[], []]


async def test_slow_subscriber_is_conflated_while_a_fast_one_sees_everything() -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        fast = await qk.subscribe(CODES, max_records=10_000).__aenter__()
        slow = await qk.subscribe(CODES, max_records=6).__aenter__()
        assert fast.sub_id == slow.sub_id and fast.sub_id is not None
        pushed: list[Tick] = []
        fast_seen: list[Tick | Bar] = []
        for n in range(10):
            batch: list[Tick | Bar] = [tick(c, n) for c in CODES]
            pushed += batch  # type: ignore[arg-type]
            venue.push(fast.sub_id, batch)
            fast_seen += await fast.__anext__()
        assert fast_seen == pushed and fast.dropped == 0
        slow_seen: list[Tick | Bar] = []
        while slow.pending:
            slow_seen += await slow.__anext__()
        assert slow.dropped > 0
        assert len(slow_seen) + slow.dropped == len(pushed)
        latest = {t.stock_code: t for t in slow_seen}
        assert latest == {c: tick(c, 9) for c in CODES}
        await fast.aclose()
        await slow.aclose()


async def test_cancelled_consumer_releases_the_backend_subscription() -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        sub = qk.subscribe(CODES)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for _ in sub:  # no `async with`: cancellation alone must clean up
                        pass

                tg.start_soon(consume)
                await anyio.wait_all_tasks_blocked()
                assert qk.quote_subscriptions == 1
                scope.cancel()
        with anyio.fail_after(5):
            await venue.unsubscribed.wait()
        assert qk.quote_subscriptions == 0
        assert len(venue.backend.sent(UnsubscribeQuotes)) == 1


async def test_subscriptions_end_when_the_client_closes() -> None:
    venue = Quotes()
    batches: list[object] = []
    async with qmtkit.connect(backend=venue.backend) as qk:
        sub = await qk.subscribe(CODES).__aenter__()
        assert sub.sub_id is not None
        venue.push(sub.sub_id, [tick("600000.SH", 1)])
    async for b in sub:  # drains what was buffered, then ends
        batches.append(b)
    assert batches == [[tick("600000.SH", 1)]]


@pytest.mark.parametrize(
    ("codes", "period", "error", "named"),
    [
        (["600000"], "tick", InvalidCode, "'600000'"),
        ("hello", "tick", InvalidCode, "'hello'"),
        (CODES, "2m", InvalidPeriod, "'2m'"),
        (CODES, None, InvalidPeriod, "None"),
    ],
)
async def test_bad_subscription_arguments_raise_at_the_call_and_send_nothing(
    codes: object, period: object, error: type[Exception], named: str
) -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        with pytest.raises(error) as info:
            qk.subscribe(codes, period)  # type: ignore[arg-type]
        assert named in str(info.value)
        with pytest.raises(InvalidArgument, match="-3"):
            qk.subscribe(CODES, max_records=-3)
        assert venue.backend.requests == []


async def test_failed_backend_subscribe_leaves_nothing_behind() -> None:
    def handler(req: Request) -> Reply:
        if isinstance(req, SubscribeQuotes):
            raise InvalidCode("venue does not list 600000.SH")
        return Ok()

    async with qmtkit.connect(backend=MockBackend(handler)) as qk:
        with pytest.raises(InvalidCode, match="600000"):
            async with qk.subscribe(CODES):
                pass
        assert qk.quote_subscriptions == 0


async def test_reference_data_queries() -> None:
    venue = Quotes()
    async with qmtkit.connect(backend=venue.backend) as qk:
        snap = await qk.snapshot(["600000.sh", "000001.SZ"])
        assert snap == {"600000.SH": tick("600000.SH", 1), "000001.SZ": tick("000001.SZ", 1)}
        assert sorted(await qk.instruments()) == sorted(CODES)
        one = await qk.instrument("300750.SZ")
        assert one is not None and one.InstrumentName == "name 300750.SZ"
        assert await qk.instrument("600036.SH") is None
        assert await qk.sectors() == ["沪深300"]
        assert await qk.sector_members("沪深300") == CODES[:2]
        assert qk.info.kind == "mock"
        with pytest.raises(InvalidCode, match="'x'"):
            await qk.snapshot(["x"])
