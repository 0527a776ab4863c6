"""Account report listeners: called as each report arrives, in order, on the loop thread."""

from __future__ import annotations

import logging

import pytest

import qmtkit
from qmtkit.backends.base import Ok
from qmtkit.backends.mock import MockBackend
from qmtkit.errors import InvalidArgument
from qmtkit.models import AccountReport, Asset

ACCT = "demo"


def asset(cash: float) -> Asset:
    return Asset(
        account_id=ACCT, cash=cash, frozen_cash=0.0, market_value=0.0, total_asset=cash,
        fetch_balance=cash,
    )  # fmt: skip


async def test_a_listener_gets_each_new_report_before_the_push_returns() -> None:
    backend = MockBackend(lambda req: Ok())
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account(ACCT)
        seen: list[AccountReport] = []
        acct.add_listener(seen.append)
        first = backend.push_item(ACCT, asset(1.0))
        assert seen == [first]  # synchronously, no task had to run
        second = backend.push_item(ACCT, asset(2.0))
        assert [r.seq for r in seen] == [first.seq, second.seq]


async def test_a_replayed_report_does_not_reach_a_listener_again() -> None:
    backend = MockBackend(lambda req: Ok())
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account(ACCT)
        seen: list[AccountReport] = []
        acct.add_listener(seen.append)
        report = backend.push_item(ACCT, asset(1.0))
        backend.push_report(report)
        assert seen == [report]


async def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MockBackend(lambda req: Ok())
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account(ACCT)

        def broken(report: AccountReport) -> None:
            raise RuntimeError("listener bug")

        seen: list[AccountReport] = []
        acct.add_listener(broken)
        acct.add_listener(seen.append)
        with caplog.at_level(logging.ERROR, logger="qmtkit.client"):
            report = backend.push_item(ACCT, asset(1.0))
        assert seen == [report]
        assert "listener bug" in caplog.text
        assert acct.last_seq == report.seq


async def test_a_removed_listener_is_not_called_and_a_non_callable_is_refused() -> None:
    backend = MockBackend(lambda req: Ok())
    async with qmtkit.connect(backend=backend) as qk:
        acct = await qk.account(ACCT)
        seen: list[AccountReport] = []
        acct.add_listener(seen.append)
        acct.remove_listener(seen.append)
        acct.remove_listener(print)  # never added: ignored
        backend.push_item(ACCT, asset(1.0))
        assert seen == []
        with pytest.raises(InvalidArgument, match="listener must be callable"):
            acct.add_listener("not a function")  # type: ignore[arg-type]
