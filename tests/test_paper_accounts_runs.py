"""``PaperAccounts.publish_runs`` (reports as runs of one account, a step's fills) and
``publish_many`` (account, report) pairs) number, journal, keep, observe and push alike: each
account's reports numbered on from its last, one journal unit per call, each account's log
in order, the observer once per run of one account, and a sink that takes an account's
reports in one call (``on_reports``) once per run of a streaming account (runs of accounts
nobody streams in between do not break it), or report by report (``on_report``). Empty runs
and runs of one account given one after another are one run."""

from __future__ import annotations

import random

import pytest

from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.paper_accounts import PaperAccounts
from qmtkit.models import AccountReport, TradeReportItem

ACCOUNTS = ("A1", "A2", "A3")


class _Journal:
    def __init__(self) -> None:
        self.units: list[list[AccountReport]] = []

    def extend(self, reports: list[AccountReport]) -> None:
        self.units.append(list(reports))

    def extend_made(self, reports: list[AccountReport]) -> None:
        self.units.append(list(reports))


class _Sink:
    def __init__(self, many: bool) -> None:
        self.calls: list[list[AccountReport]] = []
        if many:
            self.on_reports = self._many

    def _many(self, reports: list[AccountReport]) -> None:
        self.calls.append(list(reports))

    def on_report(self, report: AccountReport) -> None:
        self.calls.append([report])


def _accounts(journal: bool, keep: bool, sink: _Sink | None) -> tuple[PaperAccounts, list]:
    seen: list[tuple[str, list[TradeReportItem]]] = []
    broker = Broker(allow_new_accounts=False, accounts=ACCOUNTS)
    accounts = PaperAccounts(
        broker,
        journal=_Journal() if journal else None,
        observe=lambda a, items: seen.append((a, list(items))),
    )
    accounts.keep_log = keep
    if sink is not None:
        accounts.sink = sink  # type: ignore[assignment]
        accounts.streaming.update({"A1", "A3"})
    return accounts, seen


def _expected_pushes(
    pairs: list[tuple[str, AccountReport]], streaming: set[str], many: bool
) -> list[list[AccountReport]]:
    if not many:
        return [[r] for a, r in pairs if a in streaming]
    out: list[list[AccountReport]] = []
    for a, r in pairs:
        if a not in streaming:
            continue
        if out and out[-1][0].account_id == a:
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _merged(pairs: list[tuple[str, TradeReportItem]]) -> list[tuple[str, list[TradeReportItem]]]:
    out: list[tuple[str, list[TradeReportItem]]] = []
    for a, i in pairs:
        if out and out[-1][0] == a:
            out[-1][1].append(i)
        else:
            out.append((a, [i]))
    return out


@pytest.mark.parametrize("journal", [False, True])
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("sink", [None, "one", "many"])
@pytest.mark.parametrize("seed", range(6))
def test_runs_and_pairs_are_numbered_kept_observed_and_pushed_alike(
    journal: bool, keep: bool, sink: str | None, seed: int
) -> None:
    rng = random.Random(seed)
    items = [Broker(accounts=[a]).asset(a) for a in ACCOUNTS]
    sinks = [None if sink is None else _Sink(sink == "many") for _ in range(2)]
    by_runs, seen_runs = _accounts(journal, keep, sinks[0])
    by_pairs, seen_pairs = _accounts(journal, keep, sinks[1])
    every: list[tuple[str, AccountReport]] = []
    seqs = dict.fromkeys(ACCOUNTS, 0)
    observed: list[tuple[str, list[TradeReportItem]]] = []
    units: list[list[AccountReport]] = []
    pushes: list[list[AccountReport]] = []
    for _ in range(6):
        runs = [
            (a, rng.sample(items, rng.choice((0, 1, 2, 3))))
            for a in rng.choices(ACCOUNTS, k=rng.randint(0, 6))
        ]
        pairs = [(a, i) for a, run in runs for i in run]
        by_runs.publish_runs(runs)
        by_pairs.publish_many(pairs)
        step: list[tuple[str, AccountReport]] = []
        for a, i in pairs:
            seqs[a] += 1
            step.append((a, AccountReport(a, seqs[a], i)))
        every += step
        observed += _merged(pairs)
        if step:
            units.append([r for _, r in step])
        pushes += _expected_pushes(step, {"A1", "A3"}, sink == "many")
    assert seen_runs == seen_pairs == observed
    for accounts in (by_runs, by_pairs):
        assert {a: accounts.last_seq.get(a, 0) for a in ACCOUNTS} == seqs
        assert accounts.report_count == len(every)
        want_log = {a: [r for b, r in every if b == a] for a in ACCOUNTS if seqs[a]}
        assert accounts.reports == (want_log if keep else {})
        if journal:
            assert accounts.journal.units == units  # type: ignore[union-attr]
    for sunk in sinks:
        if sunk is not None:
            assert sunk.calls == pushes
