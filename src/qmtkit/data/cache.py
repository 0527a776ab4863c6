"""The local K-line cache: columnar, memory-mapped, written atomically, checked on open.

Layout under ``<home>/data/<period>/`` (home: ``home=``, else ``$QMTKIT_HOME``, else
``~/.qmtkit``)::

    MANIFEST              msgspec JSON: version number and, per shard, its current file
    .lock                 taken by writers (one writer at a time per period)
    SH/6000.g7.qkc        a shard: every code of SH whose symbol starts with 6000 (daily)
    SZ/000001.g3.qkc      minute and tick shards hold one code each

A write builds new shard files (new generation numbers), then swaps the manifest by
rename; old files are unlinked after. A reader picks files from one manifest snapshot and
keeps the mappings it holds, so it sees one consistent version while writers work.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.atomicfile import write_atomically
from qmtkit.codes import normalize_code
from qmtkit.data import coverage as cov
from qmtkit.data.frames import columns_of, empty_frame, shard_frame
from qmtkit.data.schema import STORED_PERIODS, dtypes_for
from qmtkit.data.store import REPAIR_HINT, Shard, open_shard, verify_shard, write_shard
from qmtkit.errors import CacheError, InvalidArgument, InvalidPeriod

#: How many leading symbol digits pick a shard, per stored period.
SHARD_DIGITS: Final = {"1d": 4, "1m": 6, "tick": 6, "5m": 6, "15m": 6, "30m": 6, "1h": 6}
_REQUIRED: Final = {"1d": ("time", "open", "high", "low", "close"), "tick": ("time", "lastPrice")}
_FILE_RE = re.compile(r"^(?P<key>\d+)\.g(?P<gen>\d+)\.qkc$")
_RETRIES: Final = 8

ColumnsLike = Mapping[str, "npt.ArrayLike | bytes"]


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The qmtkit home: ``home``, else ``$QMTKIT_HOME``, else ``~/.qmtkit``."""
    if home is not None and not isinstance(home, (str, os.PathLike)):
        raise InvalidArgument(f"home must be a path, got {type(home).__name__} {home!r}")
    raw = home if home is not None else os.environ.get("QMTKIT_HOME") or "~/.qmtkit"
    return Path(raw).expanduser()


def check_period(period: object) -> str:
    """Validate a stored period name (``tick``, ``1m`` or ``1d``)."""
    if not isinstance(period, str) or period not in STORED_PERIODS:
        raise InvalidPeriod(
            f"the cache stores periods {', '.join(STORED_PERIODS)}, not {period!r} "
            "(other periods are resampled from stored ones when read)"
        )
    return period


def shard_key(period: str, code: str) -> str:
    """The shard (``'SH/6000'``) a normalised code lives in for ``period``."""
    return f"{code[7:]}/{code[: SHARD_DIGITS[period]]}"


class ShardEntry(msgspec.Struct):
    """The current file of one shard."""

    file: str
    codes: int
    rows: int
    bytes: int


class Manifest(msgspec.Struct):
    """Which file holds each shard of a period; ``version`` grows by one per write."""

    format: int = 1
    version: int = 0
    shards: dict[str, ShardEntry] = msgspec.field(default_factory=dict)


class PeriodInfo(msgspec.Struct):
    """Summary of one cached period."""

    period: str
    version: int
    shards: int
    codes: int
    rows: int
    bytes: int


class _Retry(Exception):
    """A file named by the manifest vanished: a writer swapped versions meanwhile."""


class _State:
    """One period's manifest as last read, plus the mappings made from it."""

    def __init__(self, stamp: tuple[int, int, int] | None, manifest: Manifest) -> None:
        self.stamp = stamp
        self.manifest = manifest
        self.shards: dict[str, Shard] = {}
        self.frames: dict[str, pl.DataFrame] = {}
        self.verified: set[str] = set()  # shard keys whose every CRC was checked


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Cache:
    """The K-line cache of one qmtkit home.

    Thread-safe; several processes may read while one writes. ``checksums=True`` verifies
    every column's CRC the first time a shard is mapped (slower opens, byte flips caught).
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, checksums: bool = False):
        self.home = resolve_home(home)
        self.root = self.home / "data"
        self.checksums = bool(checksums)
        self._lock = threading.RLock()
        self._states: dict[str, _State] = {}

    def __repr__(self) -> str:
        return f"Cache({str(self.home)!r})"

    # ----------------------------------------------------------------------- reading

    def period_dir(self, period: str) -> Path:
        """Where a stored period lives."""
        return self.root / check_period(period)

    def _manifest_path(self, period: str) -> Path:
        return self.period_dir(period) / "MANIFEST"

    def _load_manifest(self, path: Path) -> Manifest:
        try:
            return msgspec.json.decode(path.read_bytes(), type=Manifest)
        except FileNotFoundError:
            return Manifest()
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CacheError(
                f"cache manifest {path} is damaged ({exc}); run `qmtkit cache verify --repair` "
                "to rebuild it from the shard files, or delete the directory and re-download"
            ) from None

    def _stamp(self, period: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._manifest_path(period))
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _state(self, period: str) -> _State:
        """The current manifest of ``period``, re-read only when the file changed."""
        path = self._manifest_path(period)
        stamp = self._stamp(period)
        with self._lock:
            state = self._states.get(period)
            if state is None or state.stamp != stamp:
                state = _State(stamp, self._load_manifest(path) if stamp else Manifest())
                self._states[period] = state
            return state

    def _shard(self, period: str, state: _State, key: str) -> Shard | None:
        entry = state.manifest.shards.get(key)
        if entry is None:
            return None
        with self._lock:
            shard = state.shards.get(key)
            if shard is None:
                try:
                    shard = open_shard(
                        self.period_dir(period) / entry.file,
                        dtypes_for(period),
                        checksums=self.checksums,
                    )
                except FileNotFoundError:
                    raise self._vanished(period, state, key, entry) from None
                if self.checksums:
                    state.verified.add(key)
                state.shards[key] = shard
            return shard

    def _vanished(self, period: str, state: _State, key: str, entry: ShardEntry) -> Exception:
        """Why a shard file named by ``state`` could not be opened: swapped, or missing."""
        with self._lock, contextlib.suppress(KeyError):
            del self._states[period]
        if self._stamp(period) != state.stamp:
            return _Retry()  # replaced by a writer after our snapshot: take the new manifest
        path = self.period_dir(period) / entry.file
        return CacheError(
            f"cache shard {path} ({period} {key}) is missing although the manifest names "
            "it; run `qmtkit cache verify --repair` to drop it, then download its codes again"
        )

    def _verify_shard(self, period: str, state: _State, key: str) -> None:
        """Check every CRC of a shard once (``read(verify=True)``), or raise ``CacheError``."""
        entry = state.manifest.shards.get(key)
        if entry is None or key in state.verified:
            return
        try:
            verify_shard(self.period_dir(period) / entry.file, dtypes_for(period))
        except FileNotFoundError:
            raise self._vanished(period, state, key, entry) from None
        with self._lock:
            state.verified.add(key)

    def _frame(self, period: str, state: _State, key: str) -> tuple[Shard, pl.DataFrame] | None:
        shard = self._shard(period, state, key)
        if shard is None:
            return None
        with self._lock:
            frame = state.frames.get(key)
            if frame is None:
                frame = state.frames[key] = shard_frame(shard)
            return shard, frame

    def _retrying(self, fn: Any, *args: Any) -> Any:
        for _ in range(_RETRIES):
            try:
                return fn(*args)
            except _Retry:
                continue
        raise CacheError(
            "the cache kept changing under a read (a writer swapped versions "
            f"{_RETRIES} times in a row); retry the read"
        )

    def codes(self, period: str) -> list[str]:
        """Every code the cache holds for ``period``, sorted."""
        period = check_period(period)

        def run() -> list[str]:
            state = self._state(period)
            out: list[str] = []
            for key in state.manifest.shards:
                shard = self._shard(period, state, key)
                if shard is not None:
                    out.extend(shard.codes)
            return sorted(out)

        result: list[str] = self._retrying(run)
        return result

    def coverage(self, period: str, code: str) -> tuple[int, int] | None:
        """The closed time interval (ms) of ``code`` known complete in the cache, or None."""
        period, code = check_period(period), normalize_code(code)

        def run() -> tuple[int, int] | None:
            state = self._state(period)
            shard = self._shard(period, state, shard_key(period, code))
            return None if shard is None else shard.coverage(code)

        result: tuple[int, int] | None = self._retrying(run)
        return result

    def arrays(self, period: str, code: str) -> dict[str, npt.NDArray[np.generic]]:
        """Zero-copy numpy views of one code's stored columns (empty if not cached)."""
        period, code = check_period(period), normalize_code(code)

        def run() -> dict[str, npt.NDArray[np.generic]]:
            state = self._state(period)
            shard = self._shard(period, state, shard_key(period, code))
            if shard is None:
                return {k: np.zeros(0, dtype=dt) for k, dt in dtypes_for(period).items()}
            return shard.arrays(code)

        result: dict[str, npt.NDArray[np.generic]] = self._retrying(run)
        return result

    def read(
        self,
        period: str,
        codes: Sequence[str],
        start: int = 0,
        end: int = 0,
        count: int = -1,
        fields: Sequence[str] | None = None,
        *,
        verify: bool = False,
    ) -> pl.DataFrame:
        """Stored bars of ``codes`` (already normalised) with ``start <= time <= end``.

        Wire-style bounds: ``0`` is unbounded. ``count >= 0`` keeps the last ``count`` bars
        per code inside the range. Rows are grouped by code in the order given, time
        ascending. Columns are views of the mapped files wherever the selection allows.
        ``verify`` checks every column CRC of each shard read, once per shard file and
        ``Cache`` (as ``checksums=True`` does for every shard): a flipped byte raises
        ``CacheError`` instead of being returned.
        """
        period = check_period(period)
        dtypes = dtypes_for(period)
        names = list(dtypes) if fields is None else list(fields)
        unknown = [f for f in names if f not in dtypes and f != "code"]
        if unknown:
            raise InvalidArgument(
                f"unknown field(s) {unknown} for {period} data: expected any of {list(dtypes)}"
            )
        lo_t, hi_t = cov.bounds(start, end)
        result: pl.DataFrame = self._retrying(
            self._read_once, period, codes, lo_t, hi_t, count, names, dtypes, bool(verify)
        )
        return result

    def verify_codes(self, period: str, codes: Sequence[str]) -> None:
        """Check every column CRC of the shards holding ``codes`` (each shard file once per
        ``Cache``); raise ``CacheError`` naming a damaged or missing one."""
        period = check_period(period)
        keys = sorted({shard_key(period, normalize_code(c)) for c in codes})

        def run() -> None:
            state = self._state(period)
            for key in keys:
                self._verify_shard(period, state, key)

        self._retrying(run)

    def _read_once(
        self,
        period: str,
        codes: Sequence[str],
        lo_t: int,
        hi_t: int,
        count: int,
        names: list[str],
        dtypes: Mapping[str, np.dtype[np.generic]],
        verify: bool = False,
    ) -> pl.DataFrame:
        state = self._state(period)
        # Row runs (frame key, lo, hi), adjacent runs of one shard merged.
        runs: list[list[Any]] = []
        frames: dict[str, pl.DataFrame] = {}
        for code in codes:
            key = shard_key(period, code)
            got = self._frame(period, state, key)
            if got is None:
                continue
            if verify and key not in state.verified:
                self._verify_shard(period, state, key)
            shard, frame = got
            span = shard.span(code)
            if span is None:
                continue
            a, b = span
            if lo_t != cov.MIN_TIME or hi_t != cov.MAX_TIME:
                t = shard.columns["time"][a:b]
                if lo_t != cov.MIN_TIME:
                    a += int(np.searchsorted(t, lo_t, "left"))
                if hi_t != cov.MAX_TIME:
                    b = span[0] + int(np.searchsorted(t, hi_t, "right"))
            if count >= 0:
                a = max(a, b - count)
            if a >= b:
                continue
            frames[key] = frame
            if runs and runs[-1][0] == key and runs[-1][2] == a:
                runs[-1][2] = b
            else:
                runs.append([key, a, b])
        if not runs:
            return empty_frame(dtypes, names)
        rows = sum(b - a for _, a, b in runs)
        if len(runs) <= 64 or rows >= 4096 * len(runs):
            # Few or long runs: zero-copy slices of the mapped frames.
            pieces = [frames[k].slice(a, b - a) for k, a, b in runs]
        else:
            # Many scattered runs: one gather per shard beats thousands of tiny slices.
            pieces = []
            for key, group in _group_consecutive(runs):
                idx = np.concatenate([np.arange(a, b, dtype=np.int64) for _, a, b in group])
                pieces.append(frames[key][idx])
        out = pieces[0] if len(pieces) == 1 else pl.concat(pieces, rechunk=False)
        return columns_of(out, names)

    # ----------------------------------------------------------------------- writing

    def write_bars(
        self,
        period: str,
        data: Mapping[str, ColumnsLike],
        *,
        coverage: Mapping[str, tuple[int, int]] | None = None,
        replace: bool = False,
    ) -> None:
        """Store bars of many codes at once, atomically: the write seam for every source.

        ``data`` maps a code to its columns (numpy arrays, sequences, or raw little-endian
        bytes as in ``HistoryColumns``), named and typed as ``qmtkit.data.schema``; missing
        optional columns are filled with 0. Rows need not be sorted; on equal times the
        last row wins. New bars are merged into what is cached (a new bar replaces a cached
        one with the same time) unless ``replace``, which drops the code's old bars.
        ``coverage`` sets a code's coverage (ms interval known complete) after the write; by
        default it becomes the union of the old coverage and the span of the new bars (an
        importer hands over all it has; a source that skips ranges must pass ``coverage``).
        Readers see either all of this write or none of it.
        """
        period = check_period(period)
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                f"write_bars wants a mapping of code -> columns, got {type(data).__name__}"
            )
        dtypes = dtypes_for(period)
        clean: dict[str, dict[str, npt.NDArray[np.generic]]] = {}
        for code, cols in data.items():
            norm = normalize_code(code)
            clean[norm] = _clean_columns(period, norm, cols, dtypes)
        covs: dict[str, tuple[int, int]] = {}
        for code, iv in (coverage or {}).items():
            norm = normalize_code(code)
            if norm not in clean:
                clean[norm] = {k: np.zeros(0, dtype=dt) for k, dt in dtypes.items()}
            if (
                not isinstance(iv, tuple)
                or len(iv) != 2
                or not all(isinstance(x, (int, np.integer)) for x in iv)
            ):
                raise InvalidArgument(
                    f"coverage of {norm} must be a (first_ms, last_ms) tuple, got {iv!r}"
                )
            covs[norm] = (int(iv[0]), int(iv[1]))
        if not clean:
            return
        by_shard: dict[str, list[str]] = {}
        for code in clean:
            by_shard.setdefault(shard_key(period, code), []).append(code)

        pdir = self.period_dir(period)
        with _locked(pdir / ".lock"):
            mpath = pdir / "MANIFEST"
            manifest = self._load_manifest(mpath)
            _sweep(pdir, manifest)
            version = manifest.version + 1
            new_entries: dict[str, ShardEntry] = {}
            old_files: list[str] = []
            for key, new_codes in sorted(by_shard.items()):
                entry = manifest.shards.get(key)
                old = (
                    open_shard(pdir / entry.file, dtypes, checksums=False)
                    if entry is not None
                    else None
                )
                codes_out, parts, coverages = _merge_shard(
                    old, {c: clean[c] for c in new_codes}, covs, replace, dtypes
                )
                exch, prefix = key.split("/")
                rel = f"{exch}/{prefix}.g{version}.qkc"
                write_shard(pdir / rel, period, dtypes, codes_out, parts, coverages)
                size = (pdir / rel).stat().st_size
                rows = sum(len(p["time"]) for p in parts)
                new_entries[key] = ShardEntry(rel, len(codes_out), rows, size)
                if entry is not None:
                    old_files.append(entry.file)
                del old
            shards = dict(manifest.shards)
            shards.update(new_entries)
            new_manifest = Manifest(version=version, shards=dict(sorted(shards.items())))
            write_atomically(mpath, msgspec.json.encode(new_manifest))
            for rel in old_files:
                # Readers holding a mapping keep the data; on Windows the unlink may fail
                # while mapped, and the next write sweeps the leftover.
                with contextlib.suppress(OSError):
                    (pdir / rel).unlink()
            self._states.pop(period, None)

    # ----------------------------------------------------------------------- dividends

    def dividends_path(self, code: str) -> Path:
        """Where the ex-rights records of ``code`` are cached."""
        return self.root / "dividends" / f"{normalize_code(code)}.json"

    def write_dividends(self, code: str, items: Sequence[Any]) -> None:
        """Cache the ex-rights records of a code (msgspec Structs or dicts), atomically."""
        path = self.dividends_path(code)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, msgspec.json.encode(list(items)))

    def read_dividends(self, code: str) -> list[dict[str, Any]] | None:
        """The cached ex-rights records of a code, or None if never cached."""
        path = self.dividends_path(code)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            out = msgspec.json.decode(raw, type=list[dict[str, Any]])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CacheError(
                f"cached dividends {path} are damaged ({exc}); {REPAIR_HINT}"
            ) from None
        return out

    # ----------------------------------------------------------------------- upkeep

    def info(self) -> list[PeriodInfo]:
        """A summary of every cached period (from the manifests; nothing is mapped)."""
        out: list[PeriodInfo] = []
        for period in STORED_PERIODS:
            m = self._load_manifest(self.root / period / "MANIFEST")
            if not m.shards:
                continue
            out.append(
                PeriodInfo(
                    period,
                    m.version,
                    len(m.shards),
                    sum(e.codes for e in m.shards.values()),
                    sum(e.rows for e in m.shards.values()),
                    sum(e.bytes for e in m.shards.values()),
                )
            )
        return out

    def verify(self, *, repair: bool = False) -> list[str]:
        """Check every shard fully (all CRCs); return one line per problem found.

        With ``repair``, damaged or missing shards are dropped from the manifest (their codes
        must be downloaded again), leftovers of crashed writers are deleted, and a damaged
        manifest is rebuilt from the newest readable shard files.
        """
        problems: list[str] = []
        for period in STORED_PERIODS:
            pdir = self.root / period
            if not pdir.is_dir():
                continue
            dtypes = dtypes_for(period)
            with _locked(pdir / ".lock"):
                mpath = pdir / "MANIFEST"
                try:
                    manifest = self._load_manifest(mpath)
                except CacheError as exc:
                    problems.append(str(exc))
                    if not repair:
                        continue
                    manifest = _rebuild_manifest(pdir, period, dtypes)
                    problems.append(f"rebuilt {mpath} from {len(manifest.shards)} shard files")
                bad: list[str] = []
                for key, entry in manifest.shards.items():
                    try:
                        open_shard(pdir / entry.file, dtypes, checksums=True)
                    except FileNotFoundError:
                        problems.append(f"shard file {pdir / entry.file} is missing")
                        bad.append(key)
                    except CacheError as exc:
                        problems.append(str(exc))
                        bad.append(key)
                for leftover in _leftovers(pdir, manifest):
                    size = leftover.stat().st_size if leftover.exists() else 0
                    problems.append(
                        f"leftover file {leftover} ({size} bytes) from an interrupted or "
                        "superseded write"
                        + ("; deleted" if repair else "; `qmtkit cache verify --repair` deletes it")
                    )
                if repair:
                    shards = {k: e for k, e in manifest.shards.items() if k not in bad}
                    fixed = Manifest(version=manifest.version + 1, shards=shards)
                    write_atomically(mpath, msgspec.json.encode(fixed))
                    for key in bad:
                        problems.append(f"dropped shard {period}/{key}; download its codes again")
                    _sweep(pdir, fixed)
                self._states.pop(period, None)
        return problems


def _group_consecutive(runs: list[list[Any]]) -> Iterator[tuple[str, list[list[Any]]]]:
    group: list[list[Any]] = []
    for run in runs:
        if group and group[-1][0] != run[0]:
            yield group[0][0], group
            group = []
        group.append(run)
    if group:
        yield group[0][0], group


def _clean_columns(
    period: str, code: str, cols: object, dtypes: Mapping[str, np.dtype[np.generic]]
) -> dict[str, npt.NDArray[np.generic]]:
    """Typed, time-sorted, de-duplicated columns of one code, or InvalidArgument."""
    if not isinstance(cols, Mapping):
        raise InvalidArgument(
            f"columns of {code} must be a mapping of column name -> array, "
            f"got {type(cols).__name__}"
        )
    unknown = sorted(set(cols) - set(dtypes))
    if unknown:
        raise InvalidArgument(
            f"unknown column(s) {unknown} for {code} {period}: stored columns are {list(dtypes)}"
        )
    required = _REQUIRED.get(period, _REQUIRED["1d"])
    absent = [c for c in required if c not in cols]
    if absent:
        raise InvalidArgument(f"columns {absent} of {code} {period} are required but missing")
    out: dict[str, npt.NDArray[np.generic]] = {}
    n: int | None = None
    for name, dt in dtypes.items():
        if name not in cols:
            continue
        raw = cols[name]
        try:
            arr = (
                np.frombuffer(raw, dtype=dt)
                if isinstance(raw, (bytes, bytearray, memoryview))
                else np.asarray(raw, dtype=dt)
            )
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"column {name!r} of {code} cannot be read as {dt}: {exc}"
            ) from None
        if arr.ndim != 1:
            raise InvalidArgument(f"column {name!r} of {code} must be one-dimensional")
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise InvalidArgument(
                f"column {name!r} of {code} has {len(arr)} rows, expected {n} like 'time'"
            )
        out[name] = arr
    n = n or 0
    for name, dt in dtypes.items():
        if name not in out:
            out[name] = np.zeros(n, dtype=dt)
    t = out["time"].view(np.int64)
    if n > 1 and not bool(np.all(t[1:] > t[:-1])):
        # Stable sort, then keep the last row of each time.
        order = np.argsort(t, kind="stable")
        ts = t[order]
        keep = np.ones(n, dtype=bool)
        keep[:-1] = ts[1:] != ts[:-1]
        sel = order[keep]
        out = {k: v[sel] for k, v in out.items()}
    return out


def _merge_shard(
    old: Shard | None,
    new: dict[str, dict[str, npt.NDArray[np.generic]]],
    covs: Mapping[str, tuple[int, int]],
    replace: bool,
    dtypes: Mapping[str, np.dtype[np.generic]],
) -> tuple[list[str], list[Mapping[str, npt.NDArray[np.generic]]], list[tuple[int, int]]]:
    """The codes, per-code columns and coverages of a shard after a write."""
    codes = sorted(set(old.codes if old is not None else ()) | set(new))
    parts: list[Mapping[str, npt.NDArray[np.generic]]] = []
    coverages: list[tuple[int, int]] = []
    for code in codes:
        prev = old.arrays(code) if old is not None and code in old.index else None
        prev_cov = old.coverage(code) if old is not None else None
        add = new.get(code)
        if add is None:
            assert prev is not None
            parts.append(prev)
            coverages.append(prev_cov or (0, -1))
            continue
        if prev is None or replace or len(prev["time"]) == 0:
            cols = add
        elif len(add["time"]) == 0:
            cols = prev
        elif prev["time"][-1] < add["time"][0]:
            cols = {k: np.concatenate([prev[k], add[k]]) for k in dtypes}
        else:
            keep = ~np.isin(prev["time"], add["time"])
            merged = {k: np.concatenate([prev[k][keep], add[k]]) for k in dtypes}
            order = np.argsort(merged["time"], kind="stable")
            cols = {k: v[order] for k, v in merged.items()}
        parts.append(cols)
        base = None if replace else prev_cov
        if code in covs:
            exact = covs[code]
            coverages.append(exact if exact[0] <= exact[1] else (0, -1))
            continue
        t = add["time"]
        span = (int(t[0]), int(t[-1])) if len(t) else (0, -1)
        coverages.append(cov.merge(base, span) if span[0] <= span[1] else base or (0, -1))
    return codes, parts, coverages


def _leftovers(pdir: Path, manifest: Manifest) -> list[Path]:
    """Files of crashed or superseded writes: shard files the manifest does not name and
    temporary files (of shards and of the manifest itself)."""
    live = {e.file for e in manifest.shards.values()}
    out = [f for f in pdir.iterdir() if f.is_file() and f.name.startswith("MANIFEST.tmp-")]
    for sub in pdir.iterdir():
        if not sub.is_dir():
            continue
        for f in sub.iterdir():
            rel = f"{sub.name}/{f.name}"
            if rel not in live and (".tmp-" in f.name or _FILE_RE.match(f.name)):
                out.append(f)
    return sorted(out)


def _sweep(pdir: Path, manifest: Manifest) -> None:
    """Delete the leftovers of crashed or superseded writes (see ``_leftovers``).

    Called with the period's write lock held, so no live writer owns any of them.
    """
    for f in _leftovers(pdir, manifest):
        with contextlib.suppress(OSError):
            f.unlink()


def _rebuild_manifest(
    pdir: Path, period: str, dtypes: Mapping[str, np.dtype[np.generic]]
) -> Manifest:
    """A manifest naming, per shard, the newest shard file that passes a full check."""
    best: dict[str, tuple[int, str, Shard]] = {}
    for sub in sorted(p for p in pdir.iterdir() if p.is_dir()):
        for f in sub.iterdir():
            m = _FILE_RE.match(f.name)
            if m is None:
                continue
            key, gen = f"{sub.name}/{m['key']}", int(m["gen"])
            if key in best and best[key][0] > gen:
                continue
            try:
                shard = open_shard(f, dtypes, checksums=True)
            except CacheError:
                continue
            best[key] = (gen, f"{sub.name}/{f.name}", shard)
    shards = {
        k: ShardEntry(rel, len(s.codes), s.rows, (pdir / rel).stat().st_size)
        for k, (_, rel, s) in sorted(best.items())
    }
    version = max((g for g, _, _ in best.values()), default=0)
    return Manifest(version=version, shards=shards)
