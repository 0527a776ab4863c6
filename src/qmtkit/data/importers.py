"""Import a user's CSV or Parquet bar files into cache-ready columns, one dict per code.

Columns are found by name, case-insensitively; the first present name of each list wins:

=============  ==============================================================================
column         accepted source names
=============  ==============================================================================
time           datetime, trade_time, timestamp, time, date, trade_date, 日期, 时间
open/high/...  open, high, low, close (also 开盘, 最高, 最低, 收盘)
volume         volume, vol, 成交量
amount         amount, turnover, money, 成交额 (optional: NaN when absent)
preClose       preclose, pre_close, prev_close, last_close, 昨收 (optional: previous row's close,
               0.0 on the first row as MiniQMT stores it)
suspendFlag    suspendflag, suspend_flag, suspend (optional: 0)
code           code, ts_code, stock_code, symbol, 代码 (for long files with many codes)
=============  ==============================================================================

``mapping={"time": "my_col", ...}`` names source columns explicitly and wins over the lists.

Times: a date (``2024-01-02``, ``20240102``, a Date column) becomes 00:00 Beijing of that day;
a date-time without a zone (``2024-01-02 09:31:00``, ``202401020931``, ``20240102093100``) is
read as Beijing wall time; a zoned Datetime column is converted; a 13-digit integer is Unix ms.
Daily bars are floored to their Beijing day. Minute bars must be labelled by their end, on a
session minute (09:30..11:30, 13:01..15:00).

Volume is stored in lots (手, 100 shares) like xtquant's bars: ``volume_unit="shares"`` divides
by 100 (rounding), ``"lots"`` keeps the numbers. ``amount_scale`` multiplies amounts (e.g. 1000
for sources in thousands of yuan).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl

from qmtkit.checks import positive_number
from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import normalize_code
from qmtkit.data.resample import minute_labels
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import InvalidArgument, InvalidCode

Columns: TypeAlias = dict[str, npt.NDArray[Any]]
PathLike: TypeAlias = "str | os.PathLike[str]"
Duplicates: TypeAlias = Literal["error", "first", "last"]
VolumeUnit: TypeAlias = Literal["lots", "shares"]

_DAY_MS: Final = 86_400_000

#: Accepted source names of each target column, in order of preference (lower-case).
COLUMN_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "time": ("datetime", "trade_time", "timestamp", "time", "date", "trade_date", "日期", "时间"),
    "open": ("open", "开盘"),
    "high": ("high", "最高"),
    "low": ("low", "最低"),
    "close": ("close", "收盘"),
    "volume": ("volume", "vol", "成交量"),
    "amount": ("amount", "turnover", "money", "成交额"),
    "preClose": ("preclose", "pre_close", "prev_close", "last_close", "昨收"),
    "suspendFlag": ("suspendflag", "suspend_flag", "suspend"),
    "code": ("code", "ts_code", "stock_code", "symbol", "代码"),
}
REQUIRED: Final = ("time", "open", "high", "low", "close", "volume")
_PRICES: Final = ("open", "high", "low", "close")
_STR_FORMATS: Final = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
)
_LOOSE_CODE = re.compile(r"^(SH|SZ|BJ)\.?(\d{6})$")


def read_table(path: PathLike) -> pl.DataFrame:
    """Read a ``.csv`` or ``.parquet`` file into a frame (CSV code columns kept as text)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise InvalidArgument(f"{p}: no such file: expected a .csv or .parquet file of bars")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(p)
        if suffix == ".csv":
            # codes such as 000001 must not lose their leading zeros
            head = pl.read_csv(p, n_rows=0)
            text = {c: pl.String for c in head.columns if c.lower() in COLUMN_NAMES["code"]}
            return pl.read_csv(p, schema_overrides=text, try_parse_dates=False)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise InvalidArgument(f"{p}: cannot be read as {suffix[1:]}: {e}") from None
    raise InvalidArgument(f"{p}: unknown file type {suffix!r}: expected .csv or .parquet")


def _code(value: object) -> str:
    try:
        return normalize_code(value)
    except InvalidCode:
        m = _LOOSE_CODE.match(str(value).strip().upper())
        if m is None:
            raise
        return normalize_code(f"{m.group(2)}.{m.group(1)}")


def resolve_columns(
    columns: Iterable[str], mapping: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Map target column names to the source columns that feed them (see the module table)."""
    cols = list(columns)
    lower = {c.lower().strip(): c for c in reversed(cols)}
    out: dict[str, str] = {}
    for target, names in COLUMN_NAMES.items():
        for n in names:
            if n in lower:
                out[target] = lower[n]
                break
    for target, source in (mapping or {}).items():
        if target not in COLUMN_NAMES:
            raise InvalidArgument(
                f"mapping names unknown target column {target!r}: expected one of "
                + ", ".join(COLUMN_NAMES)
            )
        if source not in cols:
            raise InvalidArgument(
                f"mapping {target!r} -> {source!r}: the source has no column {source!r} "
                f"(it has {', '.join(cols)})"
            )
        out[target] = source
    used: dict[str, str] = {}
    for target, source in out.items():
        if source in used:
            raise InvalidArgument(
                f"source column {source!r} would feed both {used[source]!r} and {target!r}: "
                "pass mapping= to say which"
            )
        used[source] = target
    missing = [t for t in REQUIRED if t not in out]
    if missing:
        raise InvalidArgument(
            f"missing column(s) {', '.join(missing)} (source has {', '.join(cols)}): "
            + "; ".join(f"{t} is read from one of {', '.join(COLUMN_NAMES[t])}" for t in missing)
            + "; or pass mapping={target: source}"
        )
    return out


def _digits_to_ms(v: npt.NDArray[np.int64], name: str) -> npt.NDArray[np.int64]:
    width = {len(str(int(x))) for x in (v.min(), v.max())} if v.size else {8}
    if len(width) != 1:
        raise InvalidArgument(
            f"time column {name!r} mixes integer widths ({sorted(width)} digits): expected one "
            "of YYYYMMDD, YYYYMMDDHHMM, YYYYMMDDHHMMSS, Unix ms"
        )
    w = width.pop()
    if w == 13:
        return v
    shift = {8: 0, 12: 4, 14: 6, 17: 9}.get(w)
    if shift is None:
        raise InvalidArgument(
            f"time column {name!r} holds {w}-digit integers such as {int(v[0])}: expected "
            "YYYYMMDD, YYYYMMDDHHMM, YYYYMMDDHHMMSS, YYYYMMDDHHMMSSfff or 13-digit Unix ms"
        )
    ymd = v // 10**shift
    rest = v % 10**shift
    hh, mm, ss, ms = np.zeros_like(v), np.zeros_like(v), np.zeros_like(v), np.zeros_like(v)
    if w >= 12:
        rest_s = rest // 10 ** (shift - 4)
        hh, mm = rest_s // 100, rest_s % 100
    if w >= 14:
        ss = rest // 10 ** (shift - 6) % 100
    if w == 17:
        ms = rest % 1000
    y, mo, d = ymd // 10000, ymd // 100 % 100, ymd % 100
    bad = (mo < 1) | (mo > 12) | (d < 1) | (d > 31) | (hh > 23) | (mm > 59) | (ss > 59)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidArgument(f"time column {name!r}: {int(v[i])} is not a valid date/time")
    months = (y - 1970).astype("datetime64[Y]").astype("datetime64[M]")
    months = months + (mo - 1).astype("timedelta64[M]")
    days = (months.astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")).astype(np.int64)
    out: npt.NDArray[np.int64] = (
        days * _DAY_MS - BEIJING_OFFSET_MS + ((hh * 60 + mm) * 60 + ss) * 1000 + ms
    )
    return out


def parse_times(series: pl.Series) -> npt.NDArray[np.int64]:
    """A time column (dates, date-times, digits or text) to Unix ms, Beijing wall time."""
    name = series.name
    if series.null_count():
        i = int(np.flatnonzero(series.is_null().to_numpy())[0])
        raise InvalidArgument(f"time column {name!r} is empty at row {i}: every bar needs a time")
    dt = series.dtype
    if dt == pl.Date:
        days = np.asarray(series.cast(pl.Int64).to_numpy(), dtype=np.int64)
        return days * _DAY_MS - BEIJING_OFFSET_MS
    if isinstance(dt, pl.Datetime):
        if dt.time_zone is None:
            return series.dt.epoch("ms").to_numpy().astype(np.int64) - BEIJING_OFFSET_MS
        return series.dt.epoch("ms").to_numpy().astype(np.int64)
    if dt.is_integer() or dt.is_float():
        v = series.to_numpy()
        if dt.is_float() and not np.all(v == np.floor(v)):
            raise InvalidArgument(f"time column {name!r} holds fractions: expected whole digits")
        return _digits_to_ms(v.astype(np.int64), name)
    if dt == pl.String:
        s = series.str.strip_chars()
        if bool(s.str.contains(r"^\d+$").all()):
            return _digits_to_ms(s.cast(pl.Int64).to_numpy(), name)
        for fmt in _STR_FORMATS:
            parsed = s.str.to_datetime(fmt, strict=False, time_unit="ms")
            if parsed.null_count() == 0:
                return parsed.dt.epoch("ms").to_numpy().astype(np.int64) - BEIJING_OFFSET_MS
        raise InvalidArgument(
            f"time column {name!r}: cannot parse values such as {s[0]!r}: expected "
            "'YYYY-MM-DD', 'YYYY-MM-DD HH:MM[:SS]', 'YYYY/MM/DD ...' or digits"
        )
    raise InvalidArgument(f"time column {name!r} has type {dt}: expected dates, datetimes or text")


def _numeric(df: pl.DataFrame, source: str, target: str) -> npt.NDArray[np.float64]:
    s = df[source]
    try:
        v = s.cast(pl.Float64, strict=True)
    except pl.exceptions.PolarsError:
        raise InvalidArgument(
            f"column {source!r} ({target}) is not numeric: e.g. {s[0]!r}"
        ) from None
    if v.null_count():
        i = int(np.flatnonzero(v.is_null().to_numpy())[0])
        raise InvalidArgument(f"column {source!r} ({target}) is empty at row {i}")
    return np.asarray(v.to_numpy(), dtype=np.float64)


def _dedupe(t: npt.NDArray[np.int64], code: str, duplicates: str) -> npt.NDArray[np.intp]:
    order = np.argsort(t, kind="stable")
    ts = t[order]
    same = np.flatnonzero(ts[1:] == ts[:-1])
    if same.size == 0:
        return order
    if duplicates == "error":
        when = np.datetime64(int(ts[same[0]]) + BEIJING_OFFSET_MS, "ms")
        raise InvalidArgument(
            f"{code}: {same.size} repeated bar time(s), first {int(ts[same[0]])} ({when} "
            "Beijing): remove them or pass duplicates='first' or 'last'"
        )
    if duplicates == "first":
        keep = np.r_[True, ts[1:] != ts[:-1]]
    else:
        keep = np.r_[ts[1:] != ts[:-1], True]
    out: npt.NDArray[np.intp] = order[keep]
    return out


def _one_code(
    df: pl.DataFrame,
    cols: dict[str, str],
    code: str,
    period: str,
    volume_unit: str,
    amount_scale: float,
    duplicates: str,
) -> Columns:
    t = parse_times(df[cols["time"]])
    if period == "1d":
        t = (t + BEIJING_OFFSET_MS) // _DAY_MS * _DAY_MS - BEIJING_OFFSET_MS
    else:
        minute_labels(t, "5m")  # refuses times that are not session-minute bar ends
    keep = _dedupe(t, code, duplicates)
    out: Columns = {"time": t[keep].astype(BAR_DTYPES["time"])}
    for p in _PRICES:
        out[p] = _numeric(df, cols[p], p)[keep]
    vol = _numeric(df, cols["volume"], "volume")[keep]
    if volume_unit == "shares":
        vol = vol / 100.0
    out["volume"] = np.rint(vol).astype(BAR_DTYPES["volume"])
    if "amount" in cols:
        out["amount"] = _numeric(df, cols["amount"], "amount")[keep] * amount_scale
    else:
        out["amount"] = np.full(keep.size, np.nan)
    if "preClose" in cols:
        out["preClose"] = _numeric(df, cols["preClose"], "preClose")[keep]
    else:
        out["preClose"] = np.r_[0.0, out["close"][:-1]] if keep.size else np.zeros(0)
    if "suspendFlag" in cols:
        flag = _numeric(df, cols["suspendFlag"], "suspendFlag")[keep]
        out["suspendFlag"] = flag.astype(BAR_DTYPES["suspendFlag"])
    else:
        out["suspendFlag"] = np.zeros(keep.size, dtype=BAR_DTYPES["suspendFlag"])
    bad = np.flatnonzero(out["high"] < out["low"])
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(
            f"{code}: bar at {int(out['time'][i])} has high {out['high'][i]} < low "
            f"{out['low'][i]}: check the column mapping"
        )
    return {k: out[k].astype(dt, copy=False) for k, dt in BAR_DTYPES.items()}


def import_bars(
    source: PathLike | pl.DataFrame,
    *,
    period: str = "1d",
    code: str | None = None,
    mapping: Mapping[str, str] | None = None,
    volume_unit: VolumeUnit = "lots",
    amount_scale: float = 1.0,
    duplicates: Duplicates = "error",
) -> dict[str, Columns]:
    """Import bars from a CSV/Parquet file or a frame: ``{code: columns}``, each sorted by time.

    A long file's code column splits it by code (``code=`` then keeps just that code). A file
    without one is a single code: ``code=``, or the file name (``600000.SH.csv``).
    Repeated times raise unless ``duplicates`` is ``'first'`` or ``'last'``.
    """
    if period not in ("1d", "1m"):
        raise InvalidArgument(f"bad period {period!r}: importers take '1d' or '1m' bars")
    if volume_unit not in ("lots", "shares"):
        raise InvalidArgument(f"bad volume_unit {volume_unit!r}: expected 'lots' or 'shares'")
    if duplicates not in ("error", "first", "last"):
        raise InvalidArgument(f"bad duplicates {duplicates!r}: expected 'error', 'first' or 'last'")
    positive_number("amount_scale", amount_scale)
    df = source if isinstance(source, pl.DataFrame) else read_table(source)
    cols = resolve_columns(df.columns, mapping)
    want = _code(code) if code is not None else None
    if "code" in cols:
        codes = [_code(c) for c in df[cols["code"]].cast(pl.String).to_list()]
        df = df.with_columns(pl.Series("__code", codes))
        if want is not None:
            df = df.filter(pl.col("__code") == want)
            if df.height == 0:
                raise InvalidArgument(f"code {want} does not occur in the source's code column")
        parts = df.partition_by("__code", as_dict=True, maintain_order=True)
        return {
            str(k[0]): _one_code(
                part, cols, str(k[0]), period, volume_unit, amount_scale, duplicates
            )
            for k, part in parts.items()
        }
    if want is None and not isinstance(source, pl.DataFrame):
        stem = Path(source).name.rsplit(".", 1)[0]
        try:
            want = _code(stem)
        except InvalidCode:
            want = None
    if want is None:
        raise InvalidArgument(
            "the source has no code column and no code was given: pass code='600000.SH', "
            "name the file like 600000.SH.csv, or add a code column"
        )
    return {want: _one_code(df, cols, want, period, volume_unit, amount_scale, duplicates)}


def import_files(paths: Iterable[PathLike], **options: Any) -> dict[str, Columns]:
    """:func:`import_bars` over several files (one code each, or long); codes must not repeat."""
    out: dict[str, Columns] = {}
    for p in paths:
        for code, cols in import_bars(p, **options).items():
            if code in out:
                raise InvalidArgument(f"{p}: code {code} was already imported from another file")
            out[code] = cols
    return out
