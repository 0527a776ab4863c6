"""The stored layers of the trading calendar: the venue's and the user's, under ``QMTKIT_HOME``.

Each layer is a stretch of days one source speaks for: every weekday in ``[first, last]`` trades
unless it is listed in ``closed``. Layers live as msgspec JSON in ``<home>/calendar/``
(``venue.json``: fetched from a connected venue; ``user.json``: ``qmtkit calendar import``).
The bundled table and the provisional rule are not stored: they are code
(:mod:`qmtkit.data.holidays`).

A user file is plain text, one entry a line (``#`` starts a comment)::

    covers 20270101 20271231          # the days this file speaks for (required, once)
    20270101 New Year                 # one closed day, with an optional name
    20270205 20270212 Spring Festival # a closed range, both ends inclusive

Weekend days inside a range are harmless. Every weekday inside ``covers`` that no entry closes
is a trading day.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Final

import msgspec

from qmtkit.atomicfile import write_atomically
from qmtkit.errors import InvalidArgument

log = logging.getLogger("qmtkit.calendar")

#: Layer names, strongest first: a day is taken from the first layer that covers it.
STORED_LAYERS: Final = ("user", "venue")
#: Bound on a user file, so a wrong file is refused quickly.
MAX_FILE_BYTES: Final = 1 << 20
#: Years any layer may speak for.
FIRST_YEAR: Final = 1990
LAST_YEAR: Final = 2099


class Layer(msgspec.Struct, frozen=True):
    """One source's calendar: weekdays of ``[first, last]`` trade unless listed in ``closed``."""

    source: str
    first: int
    last: int
    closed: list[int] = msgspec.field(default_factory=list)
    #: ``(first, last, name)`` rows as the source named them, for ``qmtkit calendar info``.
    names: list[tuple[int, int, str]] = msgspec.field(default_factory=list)


def layer_dir(home: Path) -> Path:
    """The folder of the stored layers."""
    return home / "calendar"


def layer_path(home: Path, name: str) -> Path:
    """The file of stored layer ``name`` (``'user'`` or ``'venue'``)."""
    if name not in STORED_LAYERS:
        raise InvalidArgument(f"unknown calendar layer {name!r}: expected one of {STORED_LAYERS}")
    return layer_dir(home) / f"{name}.json"


def stamp(home: Path) -> tuple[tuple[int, int] | None, ...]:
    """A cheap token that changes whenever a stored layer changes."""
    out: list[tuple[int, int] | None] = []
    for name in STORED_LAYERS:
        try:
            st = os.stat(layer_path(home, name))
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def load(home: Path, name: str) -> Layer | None:
    """Stored layer ``name``, or None if there is none; an unreadable file is logged and skipped."""
    path = layer_path(home, name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("calendar layer %s unreadable (%s); ignoring it", path, exc)
        return None
    try:
        layer = msgspec.json.decode(raw, type=Layer)
        check_layer(layer)
    except (msgspec.DecodeError, msgspec.ValidationError, InvalidArgument) as exc:
        log.warning(
            "calendar layer %s is damaged (%s); ignoring it (import or fetch it again)", path, exc
        )
        return None
    return layer


def save(home: Path, name: str, layer: Layer) -> None:
    """Store ``layer`` as layer ``name`` atomically."""
    check_layer(layer)
    path = layer_path(home, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, msgspec.json.encode(layer))


def remove(home: Path, name: str) -> bool:
    """Delete stored layer ``name``; True if there was one."""
    try:
        layer_path(home, name).unlink()
    except FileNotFoundError:
        return False
    return True


def to_date(value: int, what: str) -> dt.date:
    """The date of a ``YYYYMMDD`` int, or a clear refusal naming ``what``."""
    try:
        d = dt.date(value // 10000, value // 100 % 100, value % 100)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{what}: bad date {value!r}, expected YYYYMMDD") from None
    if not FIRST_YEAR <= d.year <= LAST_YEAR:
        raise InvalidArgument(
            f"{what}: {value} is outside the years a calendar may cover "
            f"({FIRST_YEAR} to {LAST_YEAR})"
        )
    return d


def check_layer(layer: Layer) -> None:
    """Refuse a layer whose range is reversed or whose closed days fall outside it."""
    to_date(layer.first, "first day")
    to_date(layer.last, "last day")
    if layer.first > layer.last:
        raise InvalidArgument(
            f"calendar layer from {layer.source}: first day {layer.first} is after the last "
            f"{layer.last}"
        )
    for day in layer.closed:
        to_date(day, "closed day")
        if not layer.first <= day <= layer.last:
            raise InvalidArgument(
                f"calendar layer from {layer.source}: closed day {day} is outside the days it "
                f"covers ({layer.first} to {layer.last})"
            )


def _weekdays(first: dt.date, last: dt.date) -> list[int]:
    out = []
    d = first
    while d <= last:
        if d.weekday() < 5:
            out.append(d.year * 10000 + d.month * 100 + d.day)
        d += dt.timedelta(days=1)
    return out


def _day_token(token: str, where: str) -> int:
    if len(token) != 8 or not token.isdigit():
        raise InvalidArgument(f"{where}: expected a date as YYYYMMDD, got {token!r}")
    value = int(token)
    to_date(value, where)
    return value


def parse_user_file(text: str, source: str) -> Layer:
    """The layer a user calendar file describes (format in the module docstring)."""
    covers: tuple[int, int] | None = None
    rows: list[tuple[int, int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{source} line {number}"
        parts = body.split()
        if parts[0].lower() == "covers":
            if covers is not None:
                raise InvalidArgument(f"{where}: a second 'covers' line; give the range once")
            if len(parts) != 3:
                raise InvalidArgument(f"{where}: expected 'covers FIRST LAST' (YYYYMMDD YYYYMMDD)")
            covers = (_day_token(parts[1], where), _day_token(parts[2], where))
            if covers[0] > covers[1]:
                raise InvalidArgument(f"{where}: covers {covers[0]} is after {covers[1]}")
            continue
        first = _day_token(parts[0], where)
        rest = parts[1:]
        last = first
        if rest and len(rest[0]) == 8 and rest[0].isdigit():
            last = _day_token(rest[0], where)
            rest = rest[1:]
        if first > last:
            raise InvalidArgument(f"{where}: closure {first} is after its end {last}")
        rows.append((first, last, " ".join(rest)))
    if covers is None:
        raise InvalidArgument(
            f"{source}: no 'covers FIRST LAST' line; the file must say which days it speaks for"
        )
    closed: set[int] = set()
    for first, last, _ in rows:
        if first < covers[0] or last > covers[1]:
            raise InvalidArgument(
                f"{source}: closure {first}-{last} lies outside covers {covers[0]}-{covers[1]}"
            )
        closed.update(_weekdays(to_date(first, source), to_date(last, source)))
    return Layer(source, covers[0], covers[1], sorted(closed), sorted(rows))


def read_user_file(path: str | os.PathLike[str]) -> Layer:
    """Read and parse a user calendar file, refusing a missing, huge or non-text one."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InvalidArgument(f"cannot read calendar file {str(p)!r}: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise InvalidArgument(
            f"calendar file {str(p)!r} is {size} bytes; a calendar file is at most "
            f"{MAX_FILE_BYTES} bytes of 'covers' and closure lines"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"cannot read calendar file {str(p)!r} as UTF-8 text: {exc}"
        ) from None
    return parse_user_file(text, f"file {p.name}")


def venue_layer(source: str, trading_days: list[int], holiday_days: list[int]) -> Layer | None:
    """The layer of a venue's calendar: its trading days and announced holidays (``YYYYMMDD``).

    The venue speaks from its first trading day through 31 December of the last year it has
    announced holidays for (or its last listed trading day, if later), as xtquant's own
    ``get_trading_calendar`` does. None when it gave no trading days.
    """
    days = sorted({int(d) for d in trading_days})
    if not days:
        return None
    last = days[-1]
    if holiday_days:
        last = max(last, max(int(h) for h in holiday_days) // 10000 * 10000 + 1231)
    first = days[0]
    d0, d1 = to_date(first, "venue first day"), to_date(last, "venue last day")
    open_set = set(days)
    closed = [d for d in _weekdays(d0, d1) if d not in open_set]
    return Layer(source, first, last, closed)
