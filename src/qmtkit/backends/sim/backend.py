"""``SimBackend``: the embedded exchange simulator behind the Backend seam.

It ties together the synthetic market (instruments, ticks, history), the paper broker (A-share
rules and matching) and the journal (paper accounts that survive a restart). One task runs
inside ``open()``: at every new tick step of the market it publishes quotes to the
subscriptions and lets resting orders trade against the new book (while the market stands
still, in the lunch break or out of hours, nothing is pushed). Every account report gets the
next ``seq`` of its account, is journaled, and is pushed to the sink if that account's stream
is open. Only codes listed by the session day are quoted or traded; the trading day rolls (T+1,
expiry) on the first step or request that sees a new day.

URL: ``sim://?home=DIR&terminal=NAME&seed=N&clock=session|strict&speed=X&cash=C&step=MS``
(every part optional). ``clock=session`` (the default) keeps the market open whenever the
program runs; ``strict`` follows real session hours; ``speed`` makes session time run X times
faster than the default virtual mapping would (see ``market.virtual_session_time``). ``step``
defaults to the longest tick step that still reaches a subscriber every 3 s of wall time
(``default_step_ms``).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

import qmtkit.messages as msg
from qmtkit._tasks import lifetime_tasks
from qmtkit._version import __version__
from qmtkit.atomicfile import write_atomically
from qmtkit.backends.base import EventSink
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.journal import Journal
from qmtkit.backends.sim.market import (
    ALLOWED_STEPS_MS,
    SyntheticMarket,
    virtual_session_time,
)
from qmtkit.backends.sim.paper_accounts import PaperAccounts, check_account_id, need
from qmtkit.backends.sim.universe import DEFAULT_SEED, Universe
from qmtkit.backends.urlquery import query_number, venue_query
from qmtkit.clock import (
    Clock,
    SessionClock,
    StrictClock,
    VirtualClock,
    in_session,
    parse_pinned_start,
)
from qmtkit.codes import normalize_code, normalize_codes, parse_period
from qmtkit.data.schema import BAR_DTYPES, TICK_DTYPES
from qmtkit.errors import (
    BackendError,
    ClosedError,
    InvalidArgument,
    InvalidCode,
    JournalLocked,
    QmtkitError,
)
from qmtkit.models import (
    AccountReport,
    Bar,
    InstrumentDetail,
    OrderResponse,
    QuoteBatch,
    Tick,
)

DEFAULT_TERMINAL = "default"
_TERMINAL_RE = re.compile(r"[^A-Za-z0-9._-]+")
_TERMINAL_MAX = 120
#: A code on the main SH calendar, used to ask the market which trading day it is.
_CALENDAR_CODE = "600000.SH"
#: The file, next to the journal, naming the simulator's report history (``BackendInfo.venue_id``).
VENUE_FILE = "venue"
#: The paper accounts' journal in the terminal directory.
JOURNAL_FILE = "journal.bin"
#: How many tick steps after its last order a code's book is still computed ahead by the tick
#: loop (20 steps: a minute of wall time at the default pace).
HOT_STEPS = 20


def default_home() -> Path:
    """``$QMTKIT_HOME`` or ``~/.qmtkit``."""
    return Path(os.environ.get("QMTKIT_HOME") or "~/.qmtkit").expanduser()


def venue_id(path: Path, *, fresh: bool) -> str:
    """The venue id kept in ``path``, made (``sim:`` + a random hex) if missing or ``fresh``.

    The simulator is deterministic, so a new history repeats an old one's first reports
    byte for byte; only this id tells a gateway's journal that they are new. ``fresh`` (the
    journal starts empty) always gets a new id: a deleted journal is a new history.
    """
    if not fresh:
        try:
            kept = path.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            kept = ""
        if kept:
            return kept
    made = f"sim:{uuid.uuid4().hex}"
    write_atomically(path, (made + "\n").encode("utf-8"))
    return made


def _clock_start(text: str | None, url: str) -> int | None:
    """``clock_start`` of a ``sim://`` URL as Unix ms (None when absent)."""
    if text is None:
        return None
    try:
        return parse_pinned_start(text)
    except ValueError as exc:
        raise InvalidArgument(f"bad clock_start in {url!r}: {exc}") from None


#: The longest wall time between two snapshots of the default virtual session.
HUMAN_PACE_S = 3.0


def default_step_ms(clock: Clock, speed: float | None) -> int:
    """The tick step (session ms) when none is asked for: 3 s, MiniQMT's, unless that is slow.

    The virtual session runs ``speed / 6`` times as fast as the wall clock (the Beijing day
    stretched over its four trading hours), so a 3 s session step would reach a subscriber
    every 18 s of wall time. The step is the longest allowed one that still brings a new
    snapshot at least every ``HUMAN_PACE_S`` seconds of wall time (0.5 s at speed 1); with real
    hours or a virtual clock it is 3 s.
    """
    if isinstance(clock, (VirtualClock, StrictClock)):
        return 3000
    pace = (speed or 1.0) / 6  # session seconds per wall second
    fitting = [s for s in ALLOWED_STEPS_MS if s <= 3000 and s <= HUMAN_PACE_S * pace * 1000]
    return max(fitting) if fitting else ALLOWED_STEPS_MS[0]


def terminal_name(text: str) -> str:
    """The directory name of the terminal ``text`` names; distinct texts get distinct names.

    A text that is already a safe directory name (letters, digits, ``.``, ``_``, ``-``; at most
    120 characters, not starting or ending with ``.`` or ``_``) is used as it is. Any other text,
    such as a MiniQMT ``userdata_mini`` path, becomes the readable tail of its last path part plus
    a short hash of the whole text, so two paths never share a terminal.
    """
    if len(text) <= _TERMINAL_MAX and not _TERMINAL_RE.search(text) and text.strip("._") == text:
        return text or DEFAULT_TERMINAL
    last = text.replace("\\", "/").rstrip("/").split("/")[-1]
    tail = _TERMINAL_RE.sub("_", last).strip("._")[-_TERMINAL_MAX // 2 :] or "terminal"
    return f"{tail}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


class _Subscription:
    def __init__(self, sub_id: int, codes: list[str], period: str) -> None:
        self.sub_id = sub_id
        self.codes = codes  # empty: the whole market
        self.period = period


class SimBackend:
    """The embedded exchange simulator: a deterministic market and paper accounts."""

    def __init__(
        self,
        *,
        home: Path | str | None = None,
        terminal: str = DEFAULT_TERMINAL,
        seed: int = DEFAULT_SEED,
        clock: Clock | None = None,
        speed: float | None = None,
        initial_cash: float = 1_000_000.0,
        step_ms: int | None = None,
        url: str = "sim://",
    ) -> None:
        if speed is not None and (not isinstance(speed, (int, float)) or not speed > 0):
            raise InvalidArgument(f"speed must be a number > 0, got {speed!r}")
        if not isinstance(terminal, str) or not terminal:
            raise InvalidArgument(f"terminal must be a non-empty string, got {terminal!r}")
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.terminal = terminal_name(terminal)
        self.clock: Clock = clock if clock is not None else SessionClock()
        self.speed = speed
        self.initial_cash = initial_cash
        self.url = url
        if step_ms is None:
            step_ms = default_step_ms(self.clock, speed)
        self.market = SyntheticMarket(seed, Universe(seed), step_ms=step_ms)
        self.step_ms = step_ms
        #: The paper accounts (None until the first account request takes the journal).
        self._accounts: PaperAccounts | None = None
        self._journal: Journal | None = None
        self._venue_id = ""
        self._sink: EventSink | None = None
        self._subs: dict[int, _Subscription] = {}
        # Reference data of the current trading day, filled on first use.
        self._instr_day = 0
        self._instr: dict[str, InstrumentDetail] = {}
        self._listed_day = 0
        self._listed_codes: list[str] = []
        self._t0_wall = 0
        self._t0_session = 0
        self._last_mark = -1
        self._today_key = -1
        self._session_key = -1
        self._session_value = 0
        self._today_value = 0
        # (session minute, accounts, day): those accounts' broker is on that day at that minute.
        self._synced: tuple[int, PaperAccounts | None, int] = (-1, None, 0)
        self._tick_step = -1
        self._tick_cache: dict[str, Tick] = {}
        #: code -> the tick step of its last order: the books the tick loop computes ahead.
        self._hot: dict[str, int] = {}

    @classmethod
    def from_url(cls, url: str) -> SimBackend:
        """Build a simulator from a ``sim://`` URL (see the module docstring)."""
        q = venue_query(
            url,
            "sim",
            ("home", "terminal", "seed", "clock", "clock_start", "speed", "cash", "step"),
            wrong_scheme=f"not a simulator URL: {url!r} (expected sim://...)",
        )
        clock_name = q.get("clock", "session")
        clocks: dict[str, type[SessionClock]] = {"session": SessionClock, "strict": StrictClock}
        if clock_name not in clocks:
            raise InvalidArgument(
                f"bad clock {clock_name!r} in {url!r}: expected 'session' or 'strict'"
            )

        def number(name: str, kind: type[int] | type[float], default: float | None) -> float | None:
            return query_number(q, name, kind, default, url)

        seed = number("seed", int, DEFAULT_SEED)
        step = number("step", int, None)
        cash = number("cash", float, 1_000_000.0)
        return cls(
            home=q.get("home"),
            terminal=q.get("terminal", DEFAULT_TERMINAL),
            seed=int(seed if seed is not None else DEFAULT_SEED),
            clock=clocks[clock_name](_clock_start(q.get("clock_start"), url)),
            speed=number("speed", float, None),
            initial_cash=float(cash if cash is not None else 1_000_000.0),
            step_ms=int(step) if step is not None else None,
            url=url,
        )

    # ------------------------------------------------------------------ lifetime

    @property
    def state_dir(self) -> Path:
        """Where this terminal's journal (and its venue id file) lives."""
        return self.home / "sim" / self.terminal

    @asynccontextmanager
    async def open(self, sink: EventSink) -> AsyncIterator[msg.BackendInfo]:
        """Start the tick loop; the paper accounts' journal is taken on first account use.

        Market data never touches the journal, so a data-only program shares a home with
        another process that trades there.
        """
        if self._sink is not None:
            raise BackendError("this SimBackend is already open; build another one")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._venue_id = self._peek_venue_id()
        self._accounts = None
        try:
            self._sink = sink
            self._session_key = self._today_key = self._tick_step = -1
            self._t0_wall = self.clock.now_ms()
            self._t0_session = self._session_time_raw(self._t0_wall)
            self._last_mark = -1
            async with lifetime_tasks() as tg:
                tg.start_soon(self._tick_loop)
                yield msg.BackendInfo(
                    kind="sim", url=self.url, version=__version__, venue_id=self._venue_id
                )
        finally:
            journal, self._journal = self._journal, None
            if self._accounts is not None:
                self._accounts.close()
            self._accounts = None
            self._sink = None
            self._subs.clear()
            self._hot.clear()
            if journal is not None:
                journal.close()

    def _peek_venue_id(self) -> str:
        """The venue id to announce at open, holding the journal only for the look."""
        path = self.state_dir / VENUE_FILE
        probe = Journal(self.state_dir / JOURNAL_FILE)
        try:
            probe.open()
        except QmtkitError:
            # A process trading here holds the journal and has written the id (or the
            # journal is unreadable: the first account request will say so; data goes on).
            try:
                return path.read_text(encoding="utf-8", errors="replace").strip()
            except FileNotFoundError:
                return ""
        try:
            fresh = next(iter(probe.replay()), None) is None
        finally:
            probe.close()
        return venue_id(path, fresh=fresh)

    def _open_accounts(self) -> PaperAccounts:
        """Take the journal and restore the paper accounts (the first account request)."""
        journal = Journal(self.state_dir / JOURNAL_FILE)
        try:
            journal.open()
        except JournalLocked as exc:
            found = re.search(r"pid \d+(?: on host [^\s)]+)?", str(exc))
            holder = found.group(0) if found else "another program"
            raise JournalLocked(
                f"the paper accounts in {self.state_dir} are in use by {holder}: market data "
                "works here, accounts do not; trade from that program, or run `qmtkit serve` "
                "there and connect to it with qmtkit://"
            ) from None
        try:
            history = list(journal.replay())
            path = self.state_dir / VENUE_FILE
            # The id announced at open stands while the history is still empty.
            vid = (
                self._venue_id
                if not history and self._venue_id
                else venue_id(path, fresh=not history)
            )
            broker = Broker.restore(
                history, initial_cash=self.initial_cash, allow_new_accounts=False
            )
            if self._today() < broker.day:
                raise InvalidArgument(
                    f"the simulator journal in {self.state_dir} was last used on trading day "
                    f"{broker.day}, after the clock's day {self._today()}: start the "
                    "clock later, or use another home or terminal"
                )
        except BaseException:
            journal.close()
            raise
        self._venue_id = vid
        # A reopened backend starts from the journal alone, not from its last run's log.
        accounts = PaperAccounts(broker, journal=journal, history=history, mark=self._mark)
        accounts.sink = self._sink
        self._journal, self._accounts = journal, accounts
        self._sync_day()
        return accounts

    # ------------------------------------------------------------------ time

    def _session_time_raw(self, now: int) -> int:
        if isinstance(self.clock, (VirtualClock, StrictClock)):
            return now
        return virtual_session_time(now)

    def session_now(self) -> int:
        """Session time now (Unix ms): what the market shows and the broker trades at."""
        now = self.clock.now_ms()
        if now == self._session_key:  # one request asks several times within a millisecond
            return self._session_value
        if self.speed is None or isinstance(self.clock, (VirtualClock, StrictClock)):
            value = self._session_time_raw(now)
        else:
            value = self._t0_session + int((now - self._t0_wall) * self.speed / 6)
        self._session_key, self._session_value = now, value
        return value

    def _market_open(self, session_ms: int) -> bool:
        if isinstance(self.clock, StrictClock):
            return in_session(session_ms)
        return self.clock.is_open()

    def _step_wall_seconds(self) -> float:
        step = self.step_ms / 1000
        if isinstance(self.clock, (VirtualClock, StrictClock)):
            return step
        return step * 6 / (self.speed or 1.0)

    def _sleep_after(self, now: int) -> float:
        """Wall seconds the tick loop waits after looking at session time ``now``."""
        if isinstance(self.clock, (VirtualClock, StrictClock)):
            return min(self._step_wall_seconds(), 1.0)
        # Wake just after the next step begins, so each new snapshot goes out on time.
        left_ms = self.step_ms - now % self.step_ms
        return min(left_ms * self._step_wall_seconds() / self.step_ms + 0.002, 1.0)

    def _today(self, now: int | None = None) -> int:
        # The trading day cannot change within a session minute; asking the calendar on
        # every request was a measurable part of an order's round trip.
        minute = (self.session_now() if now is None else now) // 60_000
        if minute != self._today_key:
            self._today_key = minute
            self._today_value = self.market.session_day(_CALENDAR_CODE, minute * 60_000)
        return self._today_value

    def _ticks(self, codes: list[str], now: int) -> dict[str, Tick]:
        """The ticks of ``codes`` at ``now``; a tick is computed once per code and step."""
        step = now // self.step_ms
        if step != self._tick_step:
            self._tick_step, self._tick_cache = step, {}
        cache = self._tick_cache
        missing = [c for c in codes if c not in cache]
        if missing:
            for tick in self.market.ticks(missing, now):
                cache[tick.stock_code] = tick
        return {c: cache[c] for c in codes if c in cache}

    def _sync_day(self, now: int | None = None) -> int:
        """Roll the broker to the clock's trading day if it is behind; returns that day.

        ``now`` is session time already read by the caller (read again if None).
        """
        accounts = self._accounts
        today = self._today(now)
        if accounts is not None and accounts.broker.day != today:
            accounts.publish_many(accounts.broker.roll_day(today))
        return today

    # ------------------------------------------------------------------ reports

    def reports_after(self, account_id: str, after_seq: int) -> list[AccountReport]:
        """The journaled reports of an account with ``seq > after_seq``, oldest first.

        The simulator numbers each account's reports 1, 2, 3 ... and keeps them in memory
        while it is open (the shared terminal replays attached programs from here).
        """
        accounts = self._accounts
        if accounts is None:
            return []
        return accounts.reports.get(account_id, [])[max(after_seq, 0) :]

    # ------------------------------------------------------------------ quotes

    def _all_codes(self) -> list[str]:
        """Every code trading on the current session day (later listings are left out)."""
        today = self._today()
        if self._listed_day != today:
            self._listed_codes = [
                lst.code for lst in self.market.universe if lst.list_date <= today
            ]
            self._listed_day = today
        return self._listed_codes

    def _trades_today(self, code: str) -> bool:
        universe = self.market.universe
        return code in universe and universe.listing(code).list_date <= self._today()

    def _listed(self, codes: list[str]) -> list[str]:
        missing = [c for c in codes if c not in self.market.universe]
        if missing:
            raise InvalidCode(
                f"not listed in the simulator: {', '.join(missing[:10])}"
                f"{' ...' if len(missing) > 10 else ''} (`qmtkit instruments` lists what is)"
            )
        later = [c for c in codes if not self._trades_today(c)]
        if later:
            dates = ", ".join(
                f"{c} from {self.market.universe.listing(c).list_date}" for c in later[:10]
            )
            raise InvalidCode(
                f"not trading yet on {self._today()}: {dates} (`qmtkit instruments` lists what is)"
            )
        return codes

    def _instrument(self, code: str) -> InstrumentDetail | None:
        """Today's reference data of a code, or None if it does not trade today."""
        today = self._today()
        if self._instr_day != today:
            self._instr, self._instr_day = {}, today
        found = self._instr.get(code)
        if found is None and self._trades_today(code):
            found = self._instr[code] = self.market.instrument(code, today)
        return found

    def _quotes(self, sub: _Subscription, now: int, ticks: dict[str, Tick]) -> list[Tick | Bar]:
        codes = sub.codes or self._all_codes()
        if sub.period == "tick":
            return [ticks[c] for c in codes if c in ticks]
        return list(self.market.bars_in_progress(codes, sub.period, now))

    def _publish_quotes(self, subs: list[_Subscription], now: int) -> dict[str, Tick]:
        want: dict[str, None] = {}
        for sub in subs:
            if sub.period == "tick":
                want.update(dict.fromkeys(sub.codes or self._all_codes()))
        ticks = self._ticks(list(want), now) if want else {}
        for sub in subs:
            items = self._quotes(sub, now, ticks)
            if items and self._sink is not None:
                self._sink.on_quotes(QuoteBatch(sub.sub_id, sub.period, items))
        return ticks

    async def _tick_loop(self) -> None:
        last_step = -1
        while True:
            now = self.session_now()
            step = now // self.step_ms
            if step != last_step:
                last_step = step
                self._on_step(now)
            await self.clock.sleep(self._sleep_after(now))

    def _on_step(self, now: int) -> None:
        accounts = self._accounts  # None until an account is used: nothing to match till then
        self._sync_day()
        # The market's own step: it stands still in the lunch break and out of hours, when
        # there is nothing new to push or to match (new orders met this book when placed).
        mark = int(self.market.tick_columns([_CALENDAR_CODE], now)["time"][0])
        if mark == self._last_mark:
            return
        self._last_mark = mark
        ticks = self._publish_quotes(list(self._subs.values()), now)
        self._warm_books(now)
        if accounts is None:
            return
        broker = accounts.broker
        resting = broker.resting_codes
        if not resting or not self._market_open(now):
            return
        missing = [c for c in resting if c not in ticks]
        if missing:
            ticks.update(self._ticks(missing, now))
        for code in resting:
            accounts.publish_many(broker.on_tick(ticks[code], now))

    def _warm_books(self, now: int) -> None:
        """Compute this step's books of the codes ordered lately, ahead of their next order.

        A code's tick costs ~0.5 ms (more on a cold core) the first time in a step; computed
        here, an order on a code traded within the last ``HOT_STEPS`` steps finds its book ready
        instead of paying for it (only orders in the moment between a step's start and this
        loop's wake-up still do).
        """
        hot = self._hot
        if not hot:
            return
        step = now // self.step_ms
        for code in [c for c, last in hot.items() if step - last > HOT_STEPS]:
            del hot[code]
        codes = [c for c in hot if self._trades_today(c)]
        if codes:
            self._ticks(codes, now)

    # ------------------------------------------------------------------ requests

    async def request(self, req: msg.Request) -> msg.Reply:
        """Answer one request (see ``backends.base``)."""
        if self._sink is None:
            raise ClosedError("the simulator is not open: use it inside `async with connect()`")
        now = self.session_now()
        # Every answer reflects the trading day the clock is on, even between loop steps.
        today = self._sync_day(now)
        if type(req) is msg.SubmitOrder:  # the hot path: straight there, not down the match
            return self._submit(self._accounts or self._open_accounts(), req, now, today)
        match req:
            case msg.Hello():
                return msg.BackendInfo(
                    kind="sim", url=self.url, version=__version__, venue_id=self._venue_id
                )
            case msg.ListInstruments(codes=codes):
                wanted = self._all_codes() if codes is None else normalize_codes(codes)
                found = (self._instrument(c) for c in wanted)
                return msg.Instruments([i for i in found if i is not None])
            case msg.GetSnapshot(codes=codes):
                known = [c for c in normalize_codes(codes) if self._trades_today(c)]
                return msg.Snapshots(list(self._ticks(known, now).values()))
            case msg.SubscribeQuotes(sub_id=sub_id, codes=codes, period=period):
                if period not in ("tick", "1m", "1d"):
                    parse_period(period)
                    raise InvalidArgument(
                        f"the simulator streams 'tick', '1m' and '1d' quotes, not {period!r}; "
                        "subscribe to 1m and resample for longer minute periods"
                    )
                if sub_id in self._subs:
                    raise InvalidArgument(f"subscription id {sub_id} is already in use")
                listed = self._listed(normalize_codes(codes)) if codes else []
                sub = _Subscription(sub_id, listed, period)
                self._publish_quotes([sub], now)  # the current state at once, like MiniQMT
                self._subs[sub_id] = sub  # only once it has worked: the tick loop repeats it
                return msg.Ok()
            case msg.UnsubscribeQuotes(sub_id=sub_id):
                self._subs.pop(sub_id, None)
                return msg.Ok()
            case msg.FetchHistory(code=code, period=period, start=start, end=end):
                return self._history(code, period, start, end, now)
            case msg.FetchDividends(code=code):
                code = self._listed([normalize_code(code)])[0]
                return msg.Dividends(code, self.market.history.dividends(code, now))
            case msg.ListSectors():
                return msg.Names(list(self.market.universe.sectors()))
            case msg.GetSectorMembers(sector=sector):
                sectors = self.market.universe.sectors()
                if sector not in sectors:
                    raise InvalidArgument(f"unknown sector {sector!r}; known: {', '.join(sectors)}")
                return msg.Names(list(sectors[sector]))
            case msg.GetCalendar():
                # The simulator keeps no calendar of its own: qmtkit's layers are its calendar.
                return msg.VenueCalendar()
        # Everything below concerns the paper accounts: their journal is taken now.
        accounts = self._accounts or self._open_accounts()
        if isinstance(req, msg.SubmitOrder):
            return self._submit(accounts, req, now, today)
        reply = accounts.handle(req, now)
        if reply is not None:
            return reply
        raise InvalidArgument(f"the simulator does not understand request {req!r}")

    def request_now(self, req: msg.Request) -> msg.Reply | None:
        """Answer an order at once, outside any task (None: ask ``request`` instead).

        Placing an order never waits, so a gateway may answer one in its read callback, a
        turn of the event loop sooner; the reports go to the sink before this returns, as
        with ``request``.
        """
        if type(req) is not msg.SubmitOrder or self._sink is None:
            return None
        now = self.session_now()
        accounts = self._accounts
        minute, synced, today = self._synced
        if minute != now // 60_000 or synced is not accounts or accounts is None:
            # The day can change only from one session minute to the next: looked up (and the
            # broker rolled to it) once a minute, not on every order.
            today = self._sync_day(now)
            accounts = self._accounts or self._open_accounts()
            self._synced = (now // 60_000, accounts, today)
        return self._submit(accounts, req, now, today)

    def _submit(
        self, accounts: PaperAccounts, req: msg.SubmitOrder, now: int, today: int
    ) -> OrderResponse:
        check_account_id(req.account_id)
        code = req.stock_code
        # A code not trading today reaches the broker without data: it refuses it.
        instrument: InstrumentDetail | None = None
        book: Tick | None = None
        if isinstance(code, str):
            instrument = self._instr.get(code) if self._instr_day == today else None
            if instrument is None:
                instrument = self._instrument(code)
            if instrument is not None:
                step = now // self.step_ms
                if step == self._tick_step:
                    book = self._tick_cache.get(code)
                if book is None:
                    book = self._ticks([code], now)[code]
                self._hot[code] = step
        return accounts.submit(
            req,
            book=book,
            instrument=instrument,
            now=now,
            day=today,
            market_open=self._market_open(now),
        )

    def _mark(self, account_id: str, now: int) -> None:
        """Price ``account_id``'s holdings at the market's last prices (before a query)."""
        broker = need(self._accounts, "the simulator").broker
        held = [p.stock_code for p in broker.positions(account_id)]
        if held:
            broker.mark_to_market({c: t.lastPrice for c, t in self._ticks(held, now).items()})

    def _history(
        self, code: str, period: str, start: int, end: int, now: int
    ) -> msg.HistoryColumns:
        code = self._listed([normalize_code(code)])[0]
        if period in ("1d", "1m"):
            cols = self.market.history_until(code, period, start, end, now)
            dtypes = BAR_DTYPES
        elif period == "tick":
            day = self.market.session_day(code, now)
            cols = self.market.day_ticks(code, day, now)
            t = np.asarray(cols["time"], dtype=np.int64)
            keep = (t >= start) & ((t <= end) if end else True)
            cols = {k: v[keep] for k, v in cols.items()}
            dtypes = TICK_DTYPES
        else:
            parse_period(period)
            raise InvalidArgument(
                f"history is stored as 'tick', '1m' or '1d', not {period!r}; "
                "the client derives other periods by resampling"
            )
        rows = len(cols["time"])
        columns = {
            name: np.ascontiguousarray(cols[name], dtype=dt).tobytes()
            for name, dt in dtypes.items()
            if name in cols
        }
        return msg.HistoryColumns(code=code, period=period, rows=rows, columns=columns, as_of=now)
