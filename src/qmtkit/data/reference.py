"""Reference data a source hands over beside the bars, cached under ``<home>/data/reference``.

Per source (``<source>/``):

* ``st/<code>.json`` — the days (ms at 00:00 Beijing) on which the code was under special
  treatment (ST/*ST), as far as its daily bars were downloaded, with the span they cover;
* ``instruments.json`` — the instrument list (names, listing/delisting dates);
* ``trading_days.json`` — the exchange's trading days (``YYYYMMDD``) and the span asked.

Files are replaced atomically; each is small (the whole market's list is ~1 MB).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from qmtkit.atomicfile import write_atomically
from qmtkit.codes import normalize_code
from qmtkit.errors import CacheError, InvalidArgument
from qmtkit.models import InstrumentDetail

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class StDays(msgspec.Struct):
    """ST days of one code within ``[first, last]`` (ms, the span its bars were read)."""

    first: int
    last: int
    days: list[int]


class TradingDays(msgspec.Struct):
    """Trading days (``YYYYMMDD``) a source listed between ``start`` and ``end``."""

    start: int
    end: int
    days: list[int]


class Reference:
    """The reference files of one cache root (``Cache.root``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "reference"

    def _dir(self, source: str) -> Path:
        if not isinstance(source, str) or not _NAME.match(source):
            raise InvalidArgument(f"bad source name {source!r}: expected a lowercase identifier")
        return self.root / source

    def _read(self, path: Path, typ: Any) -> Any:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return msgspec.json.decode(raw, type=typ)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CacheError(f"reference file {path} is damaged ({exc}); download again") from None

    def _write(self, path: Path, value: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, msgspec.json.encode(value))

    # ------------------------------------------------------------------ ST days

    def record_st(
        self, source: str, code: str, time: npt.NDArray[np.int64], flags: npt.ArrayLike
    ) -> None:
        """Merge the ST flag of each bar (``time`` ascending) into the code's ST days."""
        t = np.asarray(time, dtype=np.int64)
        f = np.asarray(flags)
        if t.shape != f.shape:
            raise InvalidArgument(f"{len(f)} ST flags for {len(t)} bars: expected one per bar")
        if not len(t):
            return
        path = self._dir(source) / "st" / f"{normalize_code(code)}.json"
        old: StDays | None = self._read(path, StDays)
        first, last = int(t[0]), int(t[-1])
        days = {int(x) for x in t[f != 0]}
        if old is not None:
            days |= {d for d in old.days if d < first or d > last}
            first, last = min(first, old.first), max(last, old.last)
        self._write(path, StDays(first, last, sorted(days)))

    def st_days(self, source: str, code: str) -> StDays | None:
        """The code's recorded ST days, or None if no daily bars brought any flags."""
        path = self._dir(source) / "st" / f"{normalize_code(code)}.json"
        got: StDays | None = self._read(path, StDays)
        return got

    # ------------------------------------------------------------------ instruments

    def write_instruments(self, source: str, items: Sequence[InstrumentDetail]) -> None:
        """Replace the source's instrument list."""
        self._write(self._dir(source) / "instruments.json", list(items))

    def instruments(self, source: str) -> list[InstrumentDetail] | None:
        """The source's cached instrument list, or None."""
        got: list[InstrumentDetail] | None = self._read(
            self._dir(source) / "instruments.json", list[InstrumentDetail]
        )
        return got

    # ------------------------------------------------------------------ trading days

    def write_trading_days(self, source: str, start: int, end: int, days: Sequence[int]) -> None:
        """Store the trading days (``YYYYMMDD``) the source listed for ``[start, end]``."""
        self._write(
            self._dir(source) / "trading_days.json",
            TradingDays(int(start), int(end), sorted(int(d) for d in days)),
        )

    def trading_days(self, source: str) -> TradingDays | None:
        """The source's cached trading days, or None."""
        got: TradingDays | None = self._read(self._dir(source) / "trading_days.json", TradingDays)
        return got
