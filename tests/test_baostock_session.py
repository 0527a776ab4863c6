"""The hardened baostock session against injected faults, and the pacing arithmetic.

No test sleeps: backoff and pacing waits go to a recording ``sleep``; only the timeout test
waits for its (short) deadline, since a deadline is what it checks.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType

import pytest

from bsfake import FAST, QK, fake_module, raw_daily
from qmtkit.backends.base import Reply, Request
from qmtkit.data.api import MarketData
from qmtkit.data.sources.baostock import BaostockSource
from qmtkit.data.sources.bssession import BaostockSession
from qmtkit.data.sources.pacing import Pacer
from qmtkit.errors import BackendError, BackendUnavailable, InvalidArgument

END = "20241231"


@pytest.fixture
def bs() -> ModuleType:
    return fake_module()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def session(bs: ModuleType, sleeps: Sleeps, **kw: object) -> BaostockSession:
    opts: dict[str, object] = {"timeout": 5.0, "rate": 1e6, "rng": random.Random(3)}
    opts.update(kw)
    return BaostockSession(bs, sleep=sleeps, **opts)  # type: ignore[arg-type]


async def trade_dates(s: BaostockSession) -> int:
    res = await s.call("query_trade_dates", start_date="2023-01-02", end_date="2024-12-31")
    return len(res.rows)


async def test_one_login_serves_many_calls(bs: ModuleType) -> None:
    s = session(bs, Sleeps())
    for _ in range(3):
        assert await trade_dates(s) == 730
    assert bs.SERVER.logins == 1
    await s.close()
    assert not bs.SERVER.session_alive


async def test_a_hung_call_times_out_and_is_retried_on_a_new_login(bs: ModuleType) -> None:
    bs.SERVER.inject("hang", "query_trade_dates")
    sleeps = Sleeps()
    s = session(bs, sleeps, timeout=1.0)
    assert await trade_dates(s) == 730
    assert bs.SERVER.logins == 2
    assert len(sleeps.waits) == 1  # one backoff


async def test_the_socket_gets_a_timeout_the_package_never_sets(bs: ModuleType) -> None:
    s = session(bs, Sleeps(), timeout=7.5)
    await trade_dates(s)
    assert bs.common.context.default_socket.timeout == 7.5


async def test_a_dropped_session_logs_in_again(bs: ModuleType) -> None:
    s = session(bs, Sleeps())
    await trade_dates(s)
    bs.SERVER.inject("drop_session", "query_trade_dates")
    assert await trade_dates(s) == 730
    assert bs.SERVER.logins == 2


async def test_network_error_codes_are_retried(bs: ModuleType) -> None:
    bs.SERVER.inject("error", "query_trade_dates", code="10002007", times=2)
    sleeps = Sleeps()
    s = session(bs, sleeps)
    assert await trade_dates(s) == 730
    assert len(sleeps.waits) == 2


async def test_a_lost_page_is_never_taken_for_the_end(bs: ModuleType) -> None:
    # Ten years of calendar days span three pages; the second page never arrives once.
    from baostock._server import synthetic_market

    synthetic_market(bs.SERVER, ["sh.600000"], first="2015-01-01", last="2024-12-31")
    bs.SERVER.inject("lose_page", "query_trade_dates")
    src = BaostockSource(**{**FAST, "module": bs, "sleep": Sleeps()})
    try:
        days = await src.trading_days("2015-01-01", "2024-12-31")
    finally:
        await src.aclose()
    want = [d for d, f in bs.SERVER.trade_dates if f == "1" and d <= "2024-12-31"]
    assert len(days) == len(want) and days[-1] == 20241231
    assert bs.SERVER.calls["query_trade_dates"] == 2


def test_a_query_sized_to_one_page_rejects_a_full_page() -> None:
    from qmtkit.data.sources.bssession import PAGE_ROWS, Result, below_one_page

    assert below_one_page(Result(["date"], [["x"]] * (PAGE_ROWS - 1)))
    assert not below_one_page(Result(["date"], [["x"]] * PAGE_ROWS))


async def test_retries_give_up_with_a_clear_error(bs: ModuleType) -> None:
    bs.SERVER.inject("error", "query_trade_dates", code="10002003", times=10)
    s = session(bs, Sleeps(), retries=2)
    with pytest.raises(BackendUnavailable, match=r"failed 3 times.*rerun later"):
        await trade_dates(s)


async def test_a_blacklisted_address_is_refused_without_retrying(bs: ModuleType) -> None:
    bs.SERVER.inject("blacklist", "login")
    sleeps = Sleeps()
    s = session(bs, sleeps)
    with pytest.raises(BackendUnavailable, match="blacklisted"):
        await trade_dates(s)
    assert bs.SERVER.calls["login"] == 1 and sleeps.waits == []


async def test_a_malformed_request_is_not_retried(bs: ModuleType) -> None:
    s = session(bs, Sleeps())
    with pytest.raises(BackendError, match="10004006"):
        await s.call("query_history_k_data_plus", code="sh.6", fields="date")
    assert bs.SERVER.logins == 1


async def test_backoff_waits_follow_the_seeded_jitter(bs: ModuleType) -> None:
    bs.SERVER.inject("error", "query_trade_dates", times=3)
    sleeps = Sleeps()
    s = session(bs, sleeps, rng=random.Random(42), backoff=1.0)
    await trade_dates(s)
    twin = Pacer(1.0, base_delay=1.0, rng=random.Random(42))
    assert sleeps.waits == [twin.backoff(1), twin.backoff(2), twin.backoff(3)]


async def test_calls_are_spaced_to_the_rate(bs: ModuleType) -> None:
    sleeps = Sleeps()
    s = session(bs, sleeps, rate=4.0, clock=lambda: 100.0)
    for _ in range(3):
        await trade_dates(s)
    # login + 3 queries at a frozen clock: each waits a quarter second more than the last
    assert sleeps.waits == [0.25, 0.5, 0.75]


def test_pacer_spacing_and_backoff_bounds() -> None:
    p = Pacer(2.0, base_delay=1.0, max_delay=8.0, rng=random.Random(0))
    assert p.wait_before_call(10.0) == 0.0
    assert p.wait_before_call(10.1) == pytest.approx(0.4)
    assert p.wait_before_call(20.0) == 0.0
    for attempt, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        wait = p.backoff(attempt)
        assert cap / 2 <= wait <= cap
    with pytest.raises(InvalidArgument, match=r"bad rate .*: expected a positive number"):
        Pacer(0)


# --------------------------------------------------------------------------- downloads


async def no_backend(req: Request) -> Reply:
    raise AssertionError(f"unexpected backend request {req!r}")


async def test_a_failed_download_keeps_what_it_fetched(tmp_path: Path, bs: ModuleType) -> None:
    md = MarketData(no_backend, tmp_path)
    codes = sorted(QK.values())
    bs.SERVER.unreachable.add("sh.688001")  # the third code's queries keep failing
    opts = {**FAST, "module": bs, "retries": 1}
    with pytest.raises(BackendUnavailable):
        await md.download(codes, "1d", end=END, source="baostock", source_options=opts)
    assert md.cache.codes("1d") == ["000001.SZ", "600000.SH"]
    bs.SERVER.unreachable.clear()
    asked = len(bs.SERVER.asked)
    await md.download(codes, "1d", end=END, source="baostock", source_options=opts)
    # the rerun asked only about the code that was missing
    assert {code for _, code in bs.SERVER.asked[asked:] if code} == {"sh.688001"}
    got = md.read_bars("688001.SH", "1d")
    assert got["close"].to_list() == raw_daily(bs, "sh.688001")["close"].tolist()
