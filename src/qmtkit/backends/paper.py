"""``PaperBackend``: paper trading on live quotes (``paper+qmtkit://``, ``paper+xtquant://``, ...).

Market data comes from another backend (the *source*: a gateway beside MiniQMT, xtquant
itself, or any backend URL); accounts live here, in the same paper broker as ``sim://``,
journaled under ``<paper_home>/paper/<name>/``. No account request ever reaches the source:
orders, cancels and queries are answered by the local broker, which matches against the
source's live snapshots (at once when an order is placed, then on every tick of the codes
with resting orders, through one internal tick subscription).

URL: ``paper+<source URL>``, e.g. ``paper+qmtkit://HOST:PORT?token=T``. Options for the paper
side (removed before the source URL is opened): ``paper_home=DIR`` (default ``$QMTKIT_HOME``),
``paper_name=NAME`` (the journal's folder, default ``default``), ``paper_cash=C`` (a new
account's cash, default 1,000,000) and ``paper_book=lots|shares`` (how the source's book
volumes count: MiniQMT reports lots of 100, the simulator shares; default ``lots``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import qmtkit.messages as msg
from qmtkit._version import __version__
from qmtkit.backends.base import Backend, EventSink, expect
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.journal import Journal
from qmtkit.backends.sim.paper_accounts import (
    PaperAccounts,
    check_account_id,
    need,
)
from qmtkit.clock import trading_day_of, wall_ms
from qmtkit.codes import normalize_code
from qmtkit.errors import BackendError, InvalidArgument, InvalidCode
from qmtkit.models import (
    AccountReport,
    OrderResponse,
    QuoteBatch,
    Tick,
)

#: The sub_id of the paper side's own tick subscription at the source (clients count up from 1).
_INTERNAL_SUB: Final = 1 << 30
_PAPER_OPTIONS: Final = ("paper_home", "paper_name", "paper_cash", "paper_book")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``paper+SOURCE`` -> (the source URL without the paper options, the paper options)."""
    if not isinstance(url, str) or not url.startswith("paper+"):
        raise InvalidArgument(f"not a paper URL: {url!r} (expected paper+qmtkit://HOST:PORT...)")
    source = url[len("paper+") :]
    parts = urlsplit(source)
    if not parts.scheme or parts.scheme in ("paper", "backtest") or "+" in parts.scheme:
        raise InvalidArgument(
            f"bad paper source {source!r}: expected a live backend URL such as qmtkit://HOST:PORT"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in _PAPER_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _PAPER_OPTIONS]
    base = source.split("?", 1)[0]
    return (f"{base}?{urlencode(rest)}" if rest else base), options


class _Sink:
    """Passes the source's events to the client, keeping the paper side's own ticks."""

    def __init__(self, paper: PaperBackend, outer: EventSink) -> None:
        self.paper = paper
        self.outer = outer

    def on_quotes(self, batch: QuoteBatch) -> None:
        if batch.sub_id == _INTERNAL_SUB:
            self.paper._on_ticks(batch.items)
        else:
            self.outer.on_quotes(batch)

    def on_report(self, report: AccountReport) -> None:
        """The source's own accounts are not this venue's: their reports are dropped."""

    def on_connection(self, state: msg.ConnectionState) -> None:
        self.outer.on_connection(state)


class PaperBackend:
    """The paper broker over another backend's live quotes (see the module docstring)."""

    def __init__(
        self,
        source: Backend,
        *,
        home: Path | str | None = None,
        name: str = "default",
        initial_cash: float = 1_000_000.0,
        book_unit: str = "lots",
        url: str = "paper+",
    ) -> None:
        if book_unit not in ("lots", "shares"):
            raise InvalidArgument(f"paper_book must be 'lots' or 'shares', got {book_unit!r}")
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise InvalidArgument(f"paper_name must be a plain folder name, got {name!r}")
        self.source = source
        root = (
            Path(home).expanduser()
            if home
            else Path(os.environ.get("QMTKIT_HOME") or "~/.qmtkit").expanduser()
        )
        self.state_dir = root / "paper" / name
        self.initial_cash = initial_cash
        self.lot_factor = 100 if book_unit == "lots" else 1
        self.url = url
        self.accounts: PaperAccounts | None = None
        self._sink: EventSink | None = None
        self._watched: tuple[str, ...] = ()
        self._instruments: dict[tuple[str, int], msg.Instruments] = {}

    @classmethod
    def from_url(cls, url: str) -> PaperBackend:
        """Build from ``paper+SOURCE_URL`` (see the module docstring)."""
        # The source as this process's own venue (imported from the URL helpers, not the
        # package, so that the dispatch does not import itself).
        from qmtkit.backends.urls import open_plain_venue

        source_url, options = split_url(url)
        cash_text = options.get("paper_cash", "1000000")
        try:
            cash = float(cash_text)
        except ValueError:
            raise InvalidArgument(f"bad paper_cash={cash_text!r} in {url!r}: a number") from None
        if not cash > 0:
            raise InvalidArgument(f"bad paper_cash={cash_text!r} in {url!r}: expected > 0")
        return cls(
            open_plain_venue(source_url),
            home=options.get("paper_home"),
            name=options.get("paper_name", "default"),
            initial_cash=cash,
            book_unit=options.get("paper_book", "lots"),
            url=url,
        )

    # ------------------------------------------------------------------ lifetime

    @asynccontextmanager
    async def open(self, sink: EventSink) -> AsyncIterator[msg.BackendInfo]:
        """Open the source and the local journal; close both on exit."""
        if self._sink is not None:
            raise BackendError("this PaperBackend is already open; build another one")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        journal = Journal(self.state_dir / "journal.bin").open()
        accounts: PaperAccounts | None = None
        try:
            history = list(journal.replay())
            broker = Broker.restore(
                history, initial_cash=self.initial_cash, allow_new_accounts=False
            )
            accounts = PaperAccounts(broker, journal=journal, history=history)
            async with self.source.open(_Sink(self, sink)):
                self.accounts, self._sink = accounts, sink
                accounts.sink = sink
                self._watched = ()
                self._roll()
                await self._watch()
                yield msg.BackendInfo(kind="paper", url=self.url, version=__version__)
        finally:
            self._sink = None
            self.accounts = None
            if accounts is not None:
                accounts.close()
            journal.close()

    # ------------------------------------------------------------------ the paper side

    def _need(self) -> PaperAccounts:
        return need(self.accounts if self._sink is not None else None, "the paper venue")

    def _roll(self) -> int:
        accounts = self._need()
        broker = accounts.broker
        today = trading_day_of(wall_ms())
        if broker.day < today:
            accounts.publish_many(broker.roll_day(today))
        return broker.day

    def _book(self, tick: Tick) -> Tick:
        if self.lot_factor == 1:
            return tick
        return Tick(
            stock_code=tick.stock_code,
            time=tick.time,
            lastPrice=tick.lastPrice,
            open=tick.open,
            high=tick.high,
            low=tick.low,
            lastClose=tick.lastClose,
            amount=tick.amount,
            volume=tick.volume,
            askPrice=tick.askPrice,
            bidPrice=tick.bidPrice,
            askVol=[v * self.lot_factor for v in tick.askVol],
            bidVol=[v * self.lot_factor for v in tick.bidVol],
        )

    def _on_ticks(self, items: Sequence[object]) -> None:
        accounts = self.accounts
        if accounts is None:
            return
        now = wall_ms()
        for item in items:
            if isinstance(item, Tick):
                accounts.publish_many(accounts.broker.on_tick(self._book(item), now))

    async def _watch(self) -> None:
        """Keep the internal tick subscription on exactly the codes with resting orders."""
        want = tuple(self._need().broker.resting_codes)
        if want == self._watched:
            return
        if self._watched:
            await self.source.request(msg.UnsubscribeQuotes(_INTERNAL_SUB))
        self._watched = ()
        if want:
            await self.source.request(msg.SubscribeQuotes(_INTERNAL_SUB, list(want), "tick"))
        self._watched = want

    async def _instrument(self, code: str, day: int) -> msg.Instruments:
        found = self._instruments.get((code, day))
        if found is None:
            reply = expect(await self.source.request(msg.ListInstruments([code])), msg.Instruments)
            found = self._instruments[(code, day)] = reply
        return found

    async def _submit(self, req: msg.SubmitOrder) -> OrderResponse:
        accounts = self._need()
        check_account_id(req.account_id)
        day = self._roll()
        instrument = book = None
        if isinstance(req.stock_code, str):
            try:
                code = normalize_code(req.stock_code)
            except InvalidCode:
                code = ""
            if code:
                found = (await self._instrument(code, day)).items
                instrument = found[0] if found else None
                snaps = expect(
                    await self.source.request(msg.GetSnapshot([code])), msg.Snapshots
                ).items
                book = self._book(snaps[0]) if snaps else None
        response = accounts.submit(
            req, book=book, instrument=instrument, now=wall_ms(), day=day, market_open=True
        )
        await self._watch()
        return response

    # ------------------------------------------------------------------ requests

    async def request(self, req: msg.Request) -> msg.Reply:
        """Account requests go to the local broker; everything else to the source."""
        if type(req) is msg.SubmitOrder:
            return await self._submit(req)
        match req:
            case msg.Hello():
                return msg.BackendInfo(kind="paper", url=self.url, version=__version__)
            case msg.SubscribeQuotes(sub_id=sub_id) if sub_id == _INTERNAL_SUB:
                raise InvalidArgument(f"subscription id {sub_id} is reserved by the paper venue")
        reply = self._need().handle(req, wall_ms())
        if reply is None:
            return await self.source.request(req)
        if isinstance(req, (msg.CancelOrder, msg.CancelOrderSysid)):
            await self._watch()
        return reply


__all__ = ["PaperBackend", "split_url"]
