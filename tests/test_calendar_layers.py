"""The calendar never runs out: bundled table, venue, user file and the provisional rule."""

from __future__ import annotations

import datetime as dt
import logging
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qmtkit.backends.base import (
    Dividends,
    FetchDividends,
    FetchHistory,
    GetCalendar,
    HistoryColumns,
    Ok,
    Reply,
    Request,
    VenueCalendar,
)
from qmtkit.backends.mock import MockBackend
from qmtkit.backends.sim.history import calendar_days
from qmtkit.cli import main
from qmtkit.compat import xtdata
from qmtkit.compat._bridge import bridge
from qmtkit.data import calendar as cal
from qmtkit.data import calendar_layers as layers
from qmtkit.data.api import MarketData
from qmtkit.data.cache import Cache
from qmtkit.data.calendar_sync import import_file
from qmtkit.data.holidays import CLOSURES, provisional_closures
from qmtkit.data.lunar import lunar_to_gregorian, qingming
from qmtkit.errors import InvalidArgument

DAY_MS = 86_400_000


def ymd(d: dt.date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def closures_named(word: str) -> list[tuple[int, int, str]]:
    return [row for row in CLOSURES if word in row[2]]


def closed_weekdays(
    rows: tuple[tuple[int, int, str], ...] | list[tuple[int, int, str]],
) -> set[int]:
    out = set()
    for a, b, _ in rows:
        d = dt.date(a // 10000, a // 100 % 100, a % 100)
        end = dt.date(b // 10000, b // 100 % 100, b % 100)
        while d <= end:
            if d.weekday() < 5:
                out.add(ymd(d))
            d += dt.timedelta(days=1)
    return out


@pytest.fixture(autouse=True)
def fresh_warning() -> Iterator[None]:
    cal.reset_warning()
    yield
    cal.reset_warning()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


# --------------------------------------------------------------------------- lunar dates


@pytest.mark.parametrize("year", range(2005, 2027))
def test_lunar_new_year_falls_in_each_published_spring_festival_closure(year: int) -> None:
    lny = ymd(lunar_to_gregorian(year, 1, 1))
    assert any(a <= lny <= b for a, b, _ in closures_named("Spring Festival"))


@pytest.mark.parametrize(("word", "month", "day"), [("Dragon Boat", 5, 5), ("Mid-Autumn", 8, 15)])
def test_lunar_festivals_fall_in_their_published_closures(word: str, month: int, day: int) -> None:
    # Both became public holidays in 2008.
    for year in range(2008, 2027):
        d = ymd(lunar_to_gregorian(year, month, day))
        assert any(a <= d <= b for a, b, _ in closures_named(word)), (year, d)


def test_qingming_falls_in_each_published_closure() -> None:
    for year in range(2008, 2027):
        d = ymd(qingming(year))
        assert any(a <= d <= b for a, b, _ in closures_named("Qingming")), (year, d)


def test_a_leap_month_shifts_the_months_after_it() -> None:
    # 2023 has a leap second month: Dragon Boat is 22 June, not late May.
    assert lunar_to_gregorian(2023, 5, 5) == dt.date(2023, 6, 22)
    assert lunar_to_gregorian(2023, 1, 1) == dt.date(2023, 1, 22)


@pytest.mark.parametrize(("year", "month", "day"), [(1999, 1, 1), (2101, 1, 1), (2024, 13, 1)])
def test_lunar_dates_outside_the_table_are_refused(year: int, month: int, day: int) -> None:
    with pytest.raises(InvalidArgument, match="lunar"):
        lunar_to_gregorian(year, month, day)


# --------------------------------------------------------------------------- the rule


def _year(rows: object, year: int) -> set[int]:
    return {d for d in closed_weekdays(rows) if d // 10000 == year}  # type: ignore[arg-type]


@pytest.mark.parametrize("year", [2020, 2023, 2024, 2025, 2026])
def test_the_rule_reproduces_the_published_closures_of_recent_years(year: int) -> None:
    assert _year(provisional_closures(year), year) == _year(CLOSURES, year)


@pytest.mark.parametrize("year", [2019, 2021, 2022])
def test_before_the_2025_law_the_rule_closes_at_most_one_extra_day(year: int) -> None:
    published, ruled = _year(CLOSURES, year), _year(provisional_closures(year), year)
    assert published <= ruled and len(ruled - published) <= 1


# --------------------------------------------------------------------------- layered answers


def test_december_and_provisional_january_with_one_warning(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="qmtkit.calendar"):
        days = cal.trading_days_yyyymmdd("SH", "20261201", "20270131", home=home).tolist()
        cal.trading_days_yyyymmdd("SH", "20270201", "20270301", home=home)
    december = [d for d in days if d < 20270101]
    january = [d for d in days if d > 20261231]
    assert len(december) == 23 and december[-1] == 20261231
    # 1 January 2027 is a Friday: New Year closes it, the 4th opens the year.
    assert january[0] == 20270104 and len(january) == 20
    assert all(cal.is_provisional(d, home=home) for d in january)
    assert not cal.is_provisional(20261231, home=home)
    warnings = [r for r in caplog.records if r.name == "qmtkit.calendar"]
    assert len(warnings) == 1 and "provisional" in warnings[0].getMessage()


def test_known_answers_log_nothing(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="qmtkit.calendar"):
        cal.trading_days("SH", "20260101", "20261231", home=home)
    assert not caplog.records


def test_future_dates_answer_instead_of_raising(home: Path) -> None:
    assert cal.is_trading_day("SH", 20300628, home=home)
    assert not cal.is_trading_day("SH", 20270208, home=home)  # provisional Spring Festival
    nxt = cal.next_trading_day("SH", 20261231, home=home)
    assert int(cal.ms_to_yyyymmdd(nxt)) == 20270104
    assert cal.trading_calendar("SZ", "20270201", "20270219", home=home)[:5] == [
        "20270201", "20270202", "20270203", "20270204", "20270215",
    ]  # fmt: skip


@pytest.mark.parametrize("day", [20041231, 21000104])
def test_days_past_the_horizon_are_refused_with_the_range(day: int, home: Path) -> None:
    with pytest.raises(InvalidArgument, match="20050101 to 20991231"):
        cal.is_trading_day("SH", day, home=home)


def test_an_open_end_stops_before_the_provisional_days(home: Path) -> None:
    assert cal.trading_days_yyyymmdd("SH", "20261225", home=home).tolist()[-1] == 20261231
    assert cal.known_range(home=home) == (20050101, 20261231)


def test_the_simulators_history_stands_on_the_same_rule() -> None:
    days = calendar_days("SH")
    spring_2027 = cal.day_number(20270208)
    assert spring_2027 not in set(days.tolist())
    assert cal.day_number(20270104) in set(days.tolist())


# --------------------------------------------------------------------------- user file

USER_FILE = """\
# the 2027 schedule, as announced
covers 20270101 20271231
20270101 New Year
20270104            # a closure the rule could not foresee
20270205 20270212 Spring Festival
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "closures.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_imported_file_replaces_the_provisional_days_it_covers(
    tmp_path: Path, home: Path
) -> None:
    import_file(write(tmp_path, USER_FILE), home)
    assert not cal.is_trading_day("SH", 20270104, home=home)
    assert cal.is_trading_day("SH", 20270609, home=home)  # the rule's Dragon Boat: not listed
    assert not cal.is_provisional(20271231, home=home)
    assert cal.is_provisional(20280103, home=home)
    assert cal.known_range(home=home) == (20050101, 20271231)
    spans = cal.info(home=home)
    assert [s.source for s in spans] == ["bundled", "user", "provisional"]
    assert spans[1] == cal.Span(20270101, 20271231, "user", "file closures.txt")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20270101 New Year\n", "no 'covers"),
        ("covers 20270101\n", "covers FIRST LAST"),
        ("covers 20270101 20271231\ncovers 20270101 20271231\n", "second 'covers'"),
        ("covers 20270101 20271231\n2027-01-01\n", "line 2: expected a date as YYYYMMDD"),
        ("covers 20270101 20271231\n20270230\n", "line 2: bad date"),
        ("covers 20270101 20271231\n20280101\n", "outside covers"),
        ("covers 20271231 20270101\n", "after"),
        ("covers 20270101 20271231\n20270110 20270105\n", "after its end"),
    ],
)
def test_a_bad_file_is_refused_by_line_and_changes_nothing(
    tmp_path: Path, home: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        import_file(write(tmp_path, text), home)
    assert layers.load(home, "user") is None
    assert cal.is_provisional(20270104, home=home)


def test_a_huge_file_is_refused_before_reading(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "#" * (layers.MAX_FILE_BYTES + 1))
    with pytest.raises(InvalidArgument, match="at most"):
        import_file(path, home)


def test_a_damaged_stored_layer_is_ignored_with_a_warning(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = layers.layer_path(home, "user")
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qmtkit.calendar"):
        assert cal.known_range(home=home) == (20050101, 20261231)
    assert "damaged" in caplog.text


def test_cached_bars_on_a_day_found_closed_are_dropped(tmp_path: Path, home: Path) -> None:
    cache = Cache(home)
    days = cal.trading_days("SH", "20261228", "20270108", home=home)  # 20270104 provisional
    n = len(days)
    cols = {
        "time": days,
        "open": np.full(n, 10.0),
        "high": np.full(n, 10.5),
        "low": np.full(n, 9.5),
        "close": np.full(n, 10.0),
    }
    cache.write_bars("1d", {"600000.SH": cols})
    before = cache.coverage("1d", "600000.SH")
    import_file(write(tmp_path, USER_FILE), home)
    kept = cal.ms_to_yyyymmdd(cache.arrays("1d", "600000.SH")["time"]).tolist()
    assert 20270104 not in kept and kept[0] == 20261228 and len(kept) == n - 1
    assert cache.coverage("1d", "600000.SH") == before


# --------------------------------------------------------------------------- venue layer


def venue_days(first: int, last: int, closed: set[int]) -> list[int]:
    d = dt.date(first // 10000, first // 100 % 100, first % 100)
    end = dt.date(last // 10000, last // 100 % 100, last % 100)
    out = []
    while d <= end:
        if d.weekday() < 5 and ymd(d) not in closed:
            out.append(ymd(d))
        d += dt.timedelta(days=1)
    return out


class CalendarVenue:
    """A request function whose venue knows 2026-2027, with 2027-03-01 closed."""

    def __init__(self) -> None:
        self.closed = {20270101, 20270301}
        self.asked = 0

    async def __call__(self, req: Request) -> Reply:
        if isinstance(req, FetchHistory):
            return HistoryColumns(req.code, req.period, 0, {"time": b""})
        if isinstance(req, FetchDividends):
            return Dividends(req.code, [])
        assert isinstance(req, GetCalendar)
        self.asked += 1
        return VenueCalendar(
            venue_days(20260105, 20271231, self.closed), sorted(self.closed | {20260101})
        )


async def test_the_venues_calendar_is_stored_and_used(home: Path) -> None:
    venue = CalendarVenue()
    data = MarketData(venue, home)
    assert await data.sync_calendar()
    assert not cal.is_trading_day("SH", 20270301, home=home)
    assert cal.is_trading_day("SH", 20270208, home=home)  # the venue says it trades
    assert cal.known_range(home=home) == (20050101, 20271231)
    assert [s.source for s in cal.info(home=home)] == ["bundled", "venue", "provisional"]
    assert not await data.sync_calendar()  # nothing new: nothing rewritten


async def test_a_user_file_outranks_the_venue(tmp_path: Path, home: Path) -> None:
    await MarketData(CalendarVenue(), home).sync_calendar()
    import_file(write(tmp_path, USER_FILE), home)
    assert not cal.is_trading_day("SH", 20270208, home=home)
    assert cal.is_trading_day("SH", 20270301, home=home)


async def test_a_venue_without_a_calendar_changes_nothing(home: Path) -> None:
    backend_replies: list[Reply] = [VenueCalendar(), Ok()]
    for reply in backend_replies:
        data = MarketData(MockBackend(lambda req, r=reply: r).request, home)
        assert not await data.sync_calendar()
    assert layers.load(home, "venue") is None


async def test_downloads_ask_the_venue_for_its_calendar_once_per_client(home: Path) -> None:
    venue = CalendarVenue()
    data = MarketData(venue, home)
    await data.download("600000.SH", "1d", "20270101", "20270110")
    await data.download("000001.SZ", "1d", "20270101", "20270110")
    assert venue.asked == 1
    assert layers.load(home, "venue") is not None


# --------------------------------------------------------------------------- shim and CLI


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("QMTKIT_HOME", str(tmp_path / "shim-home"))
    backend = MockBackend(lambda req: VenueCalendar() if isinstance(req, GetCalendar) else Ok())
    bridge().backend_factory = lambda url: backend
    xtdata.enable_hello = False
    try:
        yield
    finally:
        xtdata.disconnect()
        bridge().backend_factory = None
        bridge().shutdown()
        xtdata.enable_hello = True


def test_the_shim_answers_past_the_table_with_one_warning(
    shim: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="qmtkit.calendar"):
        days = xtdata.get_trading_dates("SH", "20261201", "20270131")
        xtdata.get_trading_calendar("SH", "20270101", "20270131")
    ymds = cal.ms_to_yyyymmdd(np.array(days)).tolist()
    assert ymds[0] == 20261201 and 20261231 in ymds and ymds[-1] == 20270129
    assert len([r for r in caplog.records if r.name == "qmtkit.calendar"]) == 1
    assert xtdata.get_holidays()[-1] == "20261007"
    assert xtdata.download_holiday_data() == {}


def test_calendar_info_names_every_layer(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calendar", "import", str(write(tmp_path, USER_FILE)), "--home", str(home)]) == 0
    assert "imported 8 closed weekdays covering 20270101 to 20271231" in capsys.readouterr().out
    assert main(["calendar", "info", "--home", str(home)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["known: 20050101 to 20271231", "provisional: 20280101 to 20991231"]
    assert [line.split()[1] for line in out[2:]] == ["bundled", "user", "provisional"]


def test_calendar_import_of_a_bad_file_says_why_and_fails(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "20270101\n")
    assert main(["calendar", "import", str(path), "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no 'covers" in err


DATA_MD = Path(__file__).resolve().parents[1] / "docs" / "data.md"


def test_the_documented_calendar_info_is_what_a_fresh_home_prints(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(
        r"```console\n *\$ qmtkit calendar info\n(.*?\n) *```", DATA_MD.read_text(), re.S
    )
    assert block is not None
    assert main(["calendar", "info", "--home", str(home)]) == 0
    assert capsys.readouterr().out == textwrap.dedent(block.group(1))


def test_the_documented_calendar_file_imports(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(r"```text\n( *# the 2027 schedule.*?\n) *```", DATA_MD.read_text(), re.S)
    assert block is not None
    path = write(tmp_path, textwrap.dedent(block.group(1)))
    assert main(["calendar", "import", str(path), "--home", str(home)]) == 0
    assert capsys.readouterr().out.startswith("imported 7 closed weekdays covering 20270101")


async def test_a_download_keeps_no_bar_on_a_day_an_imported_file_closes(
    tmp_path: Path, home: Path
) -> None:
    import qmtkit

    import_file(write(tmp_path, USER_FILE), home)  # closes 20270104, a provisional weekday
    async with qmtkit.connect("sim://?clock_start=20270201", home=home) as qk:
        await qk.data.download("600000.SH", "1d", "20261228", "20270108")
    days = cal.ms_to_yyyymmdd(Cache(home).arrays("1d", "600000.SH")["time"]).tolist()
    assert 20270104 not in days
    assert days[0] == 20261228 and 20270105 in days
