"""The shared resume pieces: the reconnect pace and each account's report cursor."""

from __future__ import annotations

import random

from qmtkit._resume import Backoff, ReportCursor


def test_backoff_doubles_up_to_its_maximum() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_jittered_backoff_stays_in_the_upper_half_of_its_window() -> None:
    b = Backoff(1.0, 8.0, random.Random(7))
    for n in range(8):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= b.delay(n) <= ceiling


def test_a_huge_attempt_number_costs_nothing_and_stays_capped() -> None:
    assert Backoff(0.1, 5.0).delay(10**9) == 5.0


def test_the_cursor_drops_replays_and_moves_on_new_reports() -> None:
    c = ReportCursor(2)
    assert [c.take(s) for s in (1, 2, 3, 3, 5)] == [False, False, True, False, True]
    assert c.last == 5


def test_an_unnumbered_report_is_always_new_and_leaves_the_cursor() -> None:
    c = ReportCursor(4)
    assert c.take(0) and c.last == 4
