"""Fan-out channels: every consumer sees its stream; slow quote consumers are conflated."""

from __future__ import annotations

import random

import anyio
import pytest

from qmtkit.errors import ClosedError, InvalidArgument
from qmtkit.models import Bar, Tick
from qmtkit.streams import (
    EventMaker,
    QuoteFanout,
    ReportFanout,
    Waiter,
    WaiterMaker,
    merge_latest,
    quote_key,
)


def tick(code: str, n: int) -> Tick:
    return Tick(
        stock_code=code,
        time=1_700_000_000_000 + n,
        lastPrice=10.0 + n / 100,
        open=10.0,
        high=11.0,
        low=9.0,
        lastClose=10.0,
        amount=float(n),
        volume=n,
    )


def bar(code: str, t: int, close: float) -> Bar:
    return Bar(
        stock_code=code,
        period="1m",
        time=t,
        open=1.0,
        high=2.0,
        low=0.5,
        close=close,
        volume=1,
        amount=1.0,
    )


CODES = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "430047.BJ"]


def round_of_ticks(n: int) -> list[Tick]:
    return [tick(c, n) for c in CODES]


# --------------------------------------------------------------------------- quotes


async def test_every_consumer_sees_every_batch_in_order() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    subs = [fan.subscribe(max_records=1000) for _ in range(3)]
    batches = [round_of_ticks(n) for n in range(6)]
    for b in batches:
        fan.publish(b)
    fan.close()
    for sub in subs:
        seen = [batch async for batch in sub]
        assert seen == batches
        assert sub.dropped == 0


async def test_consumer_gets_its_own_copy_of_each_batch() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    a, b = fan.subscribe(), fan.subscribe()
    fan.publish(round_of_ticks(1))
    got_a = await a.__anext__()
    got_a.clear()
    assert await b.__anext__() == round_of_ticks(1)


async def test_slow_consumer_is_merged_to_latest_per_code_and_counts_dropped() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    fast = fan.subscribe(max_records=1000)
    slow = fan.subscribe(max_records=12)
    fast_seen: list[Tick] = []
    published: list[Tick] = []
    for n in range(4):  # 4 rounds x 5 codes = 20 records; the slow buffer holds 12
        batch = round_of_ticks(n)
        published += batch
        fan.publish(batch)
        fast_seen += await fast.__anext__()
    assert fast_seen == published
    assert fast.dropped == 0
    # rounds 0+1 fit (10); round 2 overflows: 15 merged to 5 latest; round 3 fits again (10).
    assert slow.pending == 10
    assert slow.dropped == 10
    slow_seen: list[Tick] = []
    while (b := slow.get_nowait()) is not None:
        slow_seen += b
    assert slow_seen == round_of_ticks(2) + round_of_ticks(3)
    assert len(slow_seen) + slow.dropped == len(published)


async def test_merge_keeps_latest_version_of_each_bar() -> None:
    fan: QuoteFanout[Bar] = QuoteFanout()
    sub = fan.subscribe(max_records=3)
    fan.publish([bar("600000.SH", 60_000, 1.0), bar("600000.SH", 120_000, 2.0)])
    fan.publish([bar("600000.SH", 60_000, 1.5), bar("000001.SZ", 60_000, 3.0)])
    assert sub.dropped == 1
    merged = sub.get_nowait()
    assert merged == [
        bar("600000.SH", 120_000, 2.0),
        bar("600000.SH", 60_000, 1.5),
        bar("000001.SZ", 60_000, 3.0),
    ]


async def test_buffer_bound_holds_even_with_more_codes_than_room() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    sub = fan.subscribe(max_records=3)
    fan.publish(round_of_ticks(0))  # 5 distinct codes, room for 3
    assert sub.pending == 3
    assert sub.dropped == 2
    assert sub.get_nowait() == round_of_ticks(0)[2:]


async def test_publish_never_waits_for_a_consumer_that_never_reads() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    rng = random.Random(7)
    sub = fan.subscribe(max_records=50)
    total = 0
    for n in range(2000):
        batch = [tick(rng.choice(CODES), n) for _ in range(rng.randint(1, 20))]
        total += len(batch)
        fan.publish(batch)
        assert sub.pending <= 50
    assert sub.pending + sub.dropped == total


def test_merge_latest_keeps_arrival_order_of_kept_records() -> None:
    recs = [tick("600000.SH", 1), tick("000001.SZ", 2), tick("600000.SH", 3)]
    assert merge_latest(recs, quote_key) == [recs[1], recs[2]]


async def test_close_ends_iteration_after_the_buffer_is_drained() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    sub = fan.subscribe()
    fan.publish(round_of_ticks(0))
    fan.close()
    assert [b async for b in sub] == [round_of_ticks(0)]
    assert fan.consumers == 0
    with pytest.raises(ClosedError):
        fan.publish(round_of_ticks(1))
    with pytest.raises(ClosedError):
        fan.subscribe()


async def test_close_wakes_a_waiting_consumer() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    sub = fan.subscribe()
    ended = anyio.Event()

    async def consume() -> None:
        async for _ in sub:
            pass
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        fan.close()
        with anyio.fail_after(5):
            await ended.wait()


async def test_cancelled_quote_consumer_is_detached() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            async with fan.subscribe() as sub:
                async for _ in sub:
                    pass

        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert fan.consumers == 1
        tg.cancel_scope.cancel()
    assert fan.consumers == 0
    fan.publish(round_of_ticks(0))  # nobody left to hold it


async def test_quote_consumer_leaving_its_context_detaches() -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    async with fan.subscribe() as sub:
        fan.publish(round_of_ticks(0))
        assert fan.consumers == 1
    assert fan.consumers == 0
    assert sub.closed


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_bad_max_records_is_refused_with_the_value(bad: object) -> None:
    fan: QuoteFanout[Tick] = QuoteFanout()
    with pytest.raises(InvalidArgument, match=repr(bad).replace(".", r"\.")):
        fan.subscribe(max_records=bad)  # type: ignore[arg-type]
    assert fan.consumers == 0


# --------------------------------------------------------------------------- reports


async def test_every_report_consumer_sees_every_report_in_order() -> None:
    fan: ReportFanout[int] = ReportFanout()
    subs = [fan.subscribe() for _ in range(4)]
    for i in range(100):
        fan.publish(i)
    fan.close()
    for sub in subs:
        assert [x async for x in sub] == list(range(100))


async def test_slow_report_consumer_never_loses_a_report() -> None:
    fan: ReportFanout[int] = ReportFanout()
    fast_seen: list[int] = []
    slow_seen: list[int] = []

    async def fast() -> None:
        async with fan.subscribe() as sub:
            async for x in sub:
                fast_seen.append(x)

    async def slow() -> None:
        async with fan.subscribe() as sub:
            async for x in sub:
                slow_seen.append(x)
                if x % 100 == 0:
                    await anyio.sleep(0)  # yields far less often than the producer publishes

    async with anyio.create_task_group() as tg:
        tg.start_soon(fast)
        tg.start_soon(slow)
        await anyio.wait_all_tasks_blocked()
        for i in range(10_000):
            fan.publish(i)
            if i % 1000 == 0:
                await anyio.sleep(0)
        fan.close()
    assert fast_seen == list(range(10_000))
    assert slow_seen == list(range(10_000))
    assert fan.consumers == 0
    assert fan.retained == 0


async def test_report_log_is_trimmed_once_every_consumer_passed() -> None:
    fan: ReportFanout[int] = ReportFanout()
    a, b = fan.subscribe(), fan.subscribe()
    for i in range(1000):
        fan.publish(i)
    for _ in range(1000):
        assert a.get_nowait() is not None
    assert fan.retained == 1000  # b still needs all of them
    got = [b.get_nowait() for _ in range(1000)]
    assert got == list(range(1000))
    assert fan.retained < 300  # trimmed in amortised steps
    await b.aclose()
    await a.aclose()
    assert fan.retained == 0


async def test_a_lone_consumer_that_took_a_burst_frees_it_and_reads_on() -> None:
    fan: ReportFanout[int] = ReportFanout()
    only = fan.subscribe()
    fan.publish_many([1, 2, 3, 4, 5, 6])
    assert only.take(100) == [1, 2, 3, 4, 5, 6]
    assert fan.retained == 0  # trimmed at once: nobody else reads it
    fan.publish_many([7, 8])
    assert only.take(100) == [7, 8]


async def test_a_burst_taken_by_one_of_two_consumers_is_kept_for_the_other() -> None:
    fan: ReportFanout[int] = ReportFanout()
    a, b = fan.subscribe(), fan.subscribe()
    fan.publish_many([1, 2, 3])
    assert a.take(100) == [1, 2, 3]
    assert fan.retained == 3  # b has read none of them
    fan.publish_many([4])
    assert b.take(100) == [1, 2, 3, 4]
    assert a.take(100) == [4]


async def test_late_report_consumer_starts_from_when_it_joined() -> None:
    fan: ReportFanout[str] = ReportFanout()
    early = fan.subscribe()
    fan.publish("a")
    late = fan.subscribe()
    fan.publish("b")
    fan.close()
    assert [x async for x in early] == ["a", "b"]
    assert [x async for x in late] == ["b"]


async def test_reports_published_with_no_consumer_are_not_kept() -> None:
    fan: ReportFanout[int] = ReportFanout()
    for i in range(10):
        fan.publish(i)
    assert fan.retained == 0


async def test_cancelled_report_consumer_is_detached_and_frees_the_log() -> None:
    fan: ReportFanout[int] = ReportFanout()
    keeper = fan.subscribe()

    async def consume() -> None:
        async for _ in fan.subscribe():
            pass

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            assert fan.consumers == 2
            scope.cancel()
    assert fan.consumers == 1
    await keeper.aclose()
    assert fan.consumers == 0


async def test_closing_report_fanout_wakes_waiting_consumers() -> None:
    fan: ReportFanout[int] = ReportFanout()
    results: list[list[int]] = []

    async def consume() -> None:
        results.append([x async for x in fan.subscribe()])

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        fan.publish(1)
        fan.close()
    assert results == [[1], [1], [1]]
    with pytest.raises(ClosedError):
        fan.publish(2)


async def test_closing_a_consumer_from_another_task_ends_its_iteration() -> None:
    quotes: QuoteFanout[Tick] = QuoteFanout()
    reports: ReportFanout[int] = ReportFanout()
    q_sub, r_sub = quotes.subscribe(), reports.subscribe()
    ended: list[str] = []

    async def read_quotes() -> None:
        async for _ in q_sub:
            pass
        ended.append("quotes")

    async def read_reports() -> None:
        async for _ in r_sub:
            pass
        ended.append("reports")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_quotes)
            tg.start_soon(read_reports)
            await anyio.wait_all_tasks_blocked()
            await q_sub.aclose()
            await r_sub.aclose()
    assert sorted(ended) == ["quotes", "reports"]
    assert quotes.consumers == 0 and reports.consumers == 0


async def test_a_report_fanout_is_watched_exactly_while_a_consumer_is_attached() -> None:
    fanout: ReportFanout[int] = ReportFanout()
    assert not fanout.watched
    fanout.publish(1)  # kept for no one
    first, second = fanout.subscribe(), fanout.subscribe()
    assert fanout.watched
    fanout.publish(2)
    await first.aclose()
    assert fanout.watched  # the second is still there
    got = []
    async for item in second:
        got.append(item)
        break
    assert got == [2]
    await second.aclose()
    assert not fanout.watched and fanout.retained == 0


async def test_on_watched_is_told_each_change_of_watched_and_only_then() -> None:
    fanout: ReportFanout[int] = ReportFanout()
    told: list[bool] = []
    fanout.on_watched = told.append
    first = fanout.subscribe()
    second = fanout.subscribe()  # already watched: nothing to tell
    assert told == [True]
    await first.aclose()
    assert told == [True]
    await second.aclose()
    await second.aclose()  # leaving twice tells nothing more
    assert told == [True, False]
    async with fanout.subscribe():
        assert told == [True, False, True] and fanout.watched
    assert told == [True, False, True, False] and not fanout.watched


async def test_an_event_maker_makes_fresh_unset_events_of_the_running_backend() -> None:
    make = EventMaker()
    first, second = make(), make()
    assert first is not second and type(first) is type(second)
    first.set()
    assert first.is_set() and not second.is_set()


async def test_a_waiter_maker_wakes_its_waiting_task_and_survives_a_cancelled_wait() -> None:
    make = WaiterMaker()
    first = make()  # the first one finds out the async library: an anyio event
    assert isinstance(first, anyio.Event)
    woken: list[int] = []

    async def wait(n: int, waiter: Waiter) -> None:
        await waiter.wait()
        woken.append(n)

    async with anyio.create_task_group() as tg:
        second, third = make(), make()  # bare futures of the running loop from then on
        assert type(second).__name__ == "_FutureWaiter" and second is not third
        tg.start_soon(wait, 1, first)
        tg.start_soon(wait, 2, second)
        await anyio.sleep(0)
        assert woken == []
        second.set()
        second.set()  # twice: nothing more
        first.set()
        await anyio.sleep(0.01)
        assert sorted(woken) == [1, 2]
        with anyio.CancelScope() as scope:
            scope.cancel()
            await third.wait()  # cancelled while waiting
        third.set()  # a cancelled wait's waiter: nothing to wake, no error
    set_before = make()
    set_before.set()
    await set_before.wait()  # already set: returns at once
