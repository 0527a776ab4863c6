"""xtquant's ``xtdata`` module for the compat shim: market data over ``qmtkit.client``.

Functions keep xtquant's names, parameters, defaults and return shapes; they translate onto
the async client (running in the shim's loop thread) and its ``MarketData`` API, and reshape
the answers (pandas frames indexed by Beijing-time strings, numpy tick arrays, plain dicts).
Subscription callbacks run on one dispatcher thread, one at a time, in order.

What differs from a MiniQMT terminal is listed in ``docs/compat.md``: notably, financial
statements are not served (the reference's empty shapes are returned) and functions for
futures, options, Level-2, formulas and quote servers raise ``qmtkit.errors.Unsupported``.
"""

# ruff: noqa: B006
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time as _time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    NoReturn,
    ParamSpec,
    TypeAlias,
    TypedDict,
    TypeVar,
    overload,
)

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from qmtkit.backends import backend_url
from qmtkit.checks import check_count, is_int
from qmtkit.clock import beijing, wall_ms
from qmtkit.codes import PERIODS, normalize_code, normalize_codes, parse_code, parse_period
from qmtkit.compat import _shapes
from qmtkit.compat._bridge import Dispatcher, bridge, ensure_not_in_loop
from qmtkit.compat._replay import run_replay, submit_held
from qmtkit.compat._shapes import BarDict, TickDict
from qmtkit.compat._unsupported import XTDATA as XTDATA_UNSUPPORTED
from qmtkit.compat._unsupported import unsupported_functions
from qmtkit.data.api import check_adjust, to_ms
from qmtkit.errors import InvalidArgument, InvalidCode, InvalidPeriod, QmtkitError, Unsupported
from qmtkit.models import Bar, InstrumentDetail, Tick

if TYPE_CHECKING:
    from qmtkit.client import Client

log = logging.getLogger("qmtkit.compat")

# xtquant's module-level settings, kept for scripts that read or set them.
debug_mode = 0
default_data_dir = "../userdata_mini/datadir"
#: Set to a directory to make ``get_data_dir``/``get_local_data`` use it.
data_dir: str | None = None
#: Print the connection banner on first use (xtquant does; set False to hide it).
enable_hello = True

_MARKETS = ("SH", "SZ", "BJ")
_FINANCIAL_TABLES = (
    "Balance", "Income", "CashFlow", "Capital", "Top10FlowHolder", "Top10Holder",
    "HolderNum", "PershareIndex",
)  # fmt: skip
T = TypeVar("T")
P = ParamSpec("P")
#: xtquant's instrument detail dict. ``Any``: its values are of a different type per key
#: (names, prices, dates, volumes, None), and ``iscomplete=True`` adds every field qmtkit knows.
DetailDict: TypeAlias = dict[str, Any]
#: The ports ``connect`` takes: a port, a (low, high) range, or ``xtdatacenter.listen``'s
#: (ip, port) pair.
Port: TypeAlias = "int | tuple[int, int] | tuple[str, int] | None"
#: Arrays of xtquant's structured tick dtype (``get_market_data(period='tick')`` values).
TickArray: TypeAlias = "npt.NDArray[np.void]"


#: A quote push record: a tick's dict for 'tick', a bar's for K-line periods.
QuoteRecord: TypeAlias = "TickDict | BarDict"


class Progress(TypedDict, total=False):
    """xtquant's download progress dict (the financial downloads send only the counts)."""

    finished: int
    total: int
    stockcode: str
    message: str


_KLINE_PERIODS = ("1m", "5m", "15m", "30m", "1h", "1d", "1w", "1mon")
_PERIOD_ALIASES = {"60m": "1h"}


# --------------------------------------------------------------------------- connection


class _Connection:
    """What ``connect()`` returns: the shim's handle on one client (xtquant returns its client)."""

    def __init__(self, url: str, client: Client) -> None:
        self.url = url
        self.client = client
        self._open = True

    def is_connected(self) -> bool:
        """True until ``disconnect()``."""
        return self._open and not bool(self.client.closed)

    def get_data_dir(self) -> str:
        """The local data directory (qmtkit's cache home)."""
        return _cache_dir(self.client)

    def shutdown(self) -> None:
        """Release the connection."""
        if self._open:
            self._open = False
            bridge().release(self.url)

    def __repr__(self) -> str:
        return f"<xtdata connection to {self.url}>"


_lock = threading.RLock()
_conn: _Connection | None = None
_last_spec: tuple[str, Port] = ("", None)
_dispatcher: Dispatcher | None = None
_subs: dict[int, Future[None]] = {}
_next_seq = [0]


def _url_for(ip: str, port: Port) -> str:
    """The backend a (ip, port) pair names: a local ``listen`` port, a gateway, or the default."""
    from qmtkit.compat import xtdatacenter

    if is_int(port):
        local = xtdatacenter.listened_url(port)
        if local is not None:
            return local
        return f"qmtkit://{ip or '127.0.0.1'}:{port}"
    if isinstance(port, tuple):
        # A (low, high) range, or the (ip, port) pair that xtdatacenter.listen() returned.
        ints = [p for p in port if is_int(p)]
        lo, hi = (min(ints), max(ints)) if ints else (0, -1)
        for candidate in range(lo, hi + 1):
            local = xtdatacenter.listened_url(candidate)
            if local is not None:
                return local
        if len(ints) == 1:
            return f"qmtkit://{ip or '127.0.0.1'}:{ints[0]}"
    return backend_url(None)


def connect(ip: str = "", port: Port = None, remember_if_success: bool = True) -> _Connection:
    """Connect to the data service (the qmtkit backend); returns the connection.

    With ``port`` an int: a port this process opened with ``xtdatacenter.listen`` means the
    local backend, any other port a qmtkit gateway at ``ip:port``. Otherwise the backend of
    ``$QMTKIT_BACKEND`` (default ``sim://``).
    """
    global _conn, _last_spec
    ensure_not_in_loop("connect")
    if not isinstance(ip, str):
        raise InvalidArgument(f"ip must be a str such as '127.0.0.1', got {ip!r}")
    if port is not None and (isinstance(port, bool) or not isinstance(port, (int, tuple))):
        raise InvalidArgument(f"port must be an int (or a (low, high) tuple), got {port!r}")
    if not port and ip not in ("", "127.0.0.1", "localhost"):
        raise InvalidArgument(f"a remote address needs a port as well as the ip {ip!r}")
    with _lock:
        if _conn is not None and _conn.is_connected():
            return _conn
        url = _url_for(ip, port)
        try:
            client = bridge().acquire(url)
        except QmtkitError as exc:
            raise QmtkitError(
                f"cannot connect to the data service at {url}: {exc} (check QMTKIT_BACKEND or "
                "the gateway address)"
            ) from exc
        _conn = _Connection(url, client)
        if remember_if_success:
            _last_spec = (ip, port)
    hello()
    return _conn


def reconnect(ip: str = "", port: Port = None, remember_if_success: bool = True) -> _Connection:
    """Drop the current connection and connect again."""
    disconnect()
    return connect(ip, port, remember_if_success)


def disconnect() -> None:
    """Close the connection and every quote subscription."""
    global _conn, _dispatcher
    with _lock:
        for fut in _subs.values():
            fut.cancel()
        _subs.clear()
        conn, _conn = _conn, None
        disp, _dispatcher = _dispatcher, None
    if conn is not None:
        conn.shutdown()
    if disp is not None:
        disp.close()


def get_client() -> _Connection:
    """The current connection, connecting with the last remembered address if needed."""
    with _lock:
        if _conn is not None and _conn.is_connected():
            return _conn
    ip, port = _last_spec
    return connect(ip, port, False)


def hello() -> None:
    """Print the connection banner (suppressed by ``enable_hello = False``)."""
    if not enable_hello or _conn is None:
        return
    info = _conn.client.info
    now = beijing(wall_ms()).strftime("%Y-%m-%d %H:%M:%S")
    print(
        f"***** qmtkit xtdata connected {now} *****\n"
        f"service: {info.kind} {info.version}\n"
        f"address: {info.url}\n"
        f"data dir: {get_data_dir()}\n"
        "set xtdata.enable_hello = False to hide this message\n"
    )


def _client() -> Client:
    return get_client().client


def _call(name: str, fn: Callable[..., Awaitable[T]], *args: object) -> T:
    return bridge().call(fn, *args, name=name)


def _cache_dir(client: Client) -> str:
    return str(client.data.cache.root)


def get_data_dir() -> str:
    """``xtdata.data_dir`` if set, else the local cache directory of the connection."""
    conn = get_client()
    return data_dir if data_dir is not None else conn.get_data_dir()


def _disp() -> Dispatcher:
    global _dispatcher
    with _lock:
        if _dispatcher is None or _dispatcher.closed:
            _dispatcher = Dispatcher("qmtkit-xtdata-callbacks")
        return _dispatcher


# --------------------------------------------------------------------------- arguments


def _codes(stock_list: object, name: str = "stock_list") -> list[str]:
    """Normalised codes; malformed ones raise InvalidCode naming them."""
    return normalize_codes(stock_list, name)


def _period(period: object) -> str:
    if isinstance(period, str):
        period = _PERIOD_ALIASES.get(period, period)
    try:
        return parse_period(period).name
    except InvalidPeriod:
        raise InvalidPeriod(
            f"period {period!r} is not served by qmtkit: expected one of {', '.join(PERIODS)}"
        ) from None


def _time_arg(value: object, name: str) -> object:
    """xtquant's '' (unbounded) or a time, checked by the data layer under the shim's name."""
    if value is None or value == "":
        return None
    to_ms(value, name=name)
    return value


def _adjust(dividend_type: object) -> str:
    """xtquant's '' means no adjustment; the modes are the data layer's."""
    return check_adjust(None if dividend_type == "" else dividend_type, "dividend_type")


def _fields(field_list: object) -> list[str]:
    if field_list is None or field_list == []:
        return []
    if isinstance(field_list, str):
        return [field_list]
    if not isinstance(field_list, (list, tuple)) or not all(isinstance(f, str) for f in field_list):
        raise InvalidArgument(f"field_list must be a list of field names, got {field_list!r}")
    return list(field_list)


def _count(count: object) -> int:
    return check_count(count)


# --------------------------------------------------------------------------- K-lines


def _read(
    field_list: object,
    stock_list: object,
    period: object,
    start_time: object,
    end_time: object,
    count: object,
    dividend_type: object,
) -> tuple[pl.DataFrame, list[str], str, list[str]]:
    """Read the cache (no backend call): (long frame, codes, period, output fields)."""
    codes = _codes(stock_list)
    p = _period(period)
    fields = _shapes.kline_fields(_fields(field_list))
    for f in fields:
        if f not in _shapes.KLINE_FIELDS:
            raise InvalidArgument(
                f"unknown field {f!r} for {p} data: expected any of {list(_shapes.KLINE_FIELDS)}"
            )
    start, end = _time_arg(start_time, "start_time"), _time_arg(end_time, "end_time")
    n, mode = _count(count), _adjust(dividend_type)
    client = _client()
    stored = _shapes.stored_fields(fields) or ["close"]
    if mode != "none":
        frame = _call("get_market_data", client.data.bars, codes, p, start, end, n, stored, mode)
    else:
        frame = client.data.read_bars(codes, p, start, end, n, stored, mode)
    return frame, codes, p, fields


# A literal 'tick' picks the first; a period in a plain str variable gets frames, as the
# fallbacks of typeshed's open() do (hence the overlap mypy names).
@overload
def get_market_data(  # type: ignore[overload-overlap]
    field_list: list[str],
    stock_list: list[str],
    period: Literal["tick"],
    start_time: str = "",
    end_time: str = "",
    count: int = -1,
    dividend_type: str = "none",
    fill_data: bool = True,
) -> dict[str, TickArray]: ...


@overload
def get_market_data(
    field_list: list[str] = [],
    stock_list: list[str] = [],
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = -1,
    dividend_type: str = "none",
    fill_data: bool = True,
) -> dict[str, pd.DataFrame]: ...


def get_market_data(
    field_list: list[str] = [],
    stock_list: list[str] = [],
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = -1,
    dividend_type: str = "none",
    fill_data: bool = True,
) -> dict[str, pd.DataFrame] | dict[str, TickArray]:
    """Field → DataFrame (index codes, columns time labels); tick: code → numpy tick array.

    Reads the local cache: download first (``download_history_data``), as with xtquant.
    """
    if period == "tick":
        ticks = _shapes.tick_fields(_fields(field_list))
        tf, tcodes = _cached_ticks(ticks, stock_list, start_time, end_time, count, dividend_type)
        return _shapes.tick_arrays(tf, tcodes, ticks)
    frame, codes, p, fields = _read(
        field_list, stock_list, period, start_time, end_time, count, dividend_type
    )
    return _shapes.field_frames(frame, codes, p, fields)


def get_market_data_ex(
    field_list: list[str] = [],
    stock_list: list[str] = [],
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = -1,
    dividend_type: str = "none",
    fill_data: bool = True,
) -> dict[str, pd.DataFrame]:
    """Code → DataFrame indexed by time labels ('20240102' daily, '20240102093100' intraday).

    Reads the local cache: download first (``download_history_data``), as with xtquant.
    """
    if period == "tick":
        ticks = _shapes.tick_fields(_fields(field_list))
        tf, tcodes = _cached_ticks(ticks, stock_list, start_time, end_time, count, dividend_type)
        return _tick_frames_of(tf, tcodes, ticks)
    frame, codes, p, fields = _read(
        field_list, stock_list, period, start_time, end_time, count, dividend_type
    )
    return _shapes.ex_frames(frame, codes, p, fields)


def _cached_ticks(
    fields: list[str],
    stock_list: object,
    start_time: object,
    end_time: object,
    count: object,
    dividend_type: object,
) -> tuple[pl.DataFrame, list[str]]:
    """The cached ticks of ``stock_list`` holding ``fields`` (no backend call), and the codes."""
    codes = _codes(stock_list)
    start, end = _time_arg(start_time, "start_time"), _time_arg(end_time, "end_time")
    n = _count(count)
    _adjust(dividend_type)  # checked, but ticks are never adjusted (as xtquant)
    stored = _shapes.tick_stored_fields(fields) or ["lastPrice"]
    return _client().data.read_bars(codes, "tick", start, end, n, stored), codes


def _tick_frames_of(
    frame: pl.DataFrame, codes: list[str], fields: list[str]
) -> dict[str, pd.DataFrame]:
    """A long tick frame as code → tick DataFrame indexed by time labels, columns ``fields``."""
    # The index needs the times even when ``time`` is not a requested column.
    wanted = fields if "time" in fields else ["time", *fields]
    arrays = _shapes.tick_arrays(frame, codes, wanted)
    return {code: _shapes.tick_frame(arr, fields) for code, arr in arrays.items()}


def get_local_data(
    field_list: list[str] = [],
    stock_list: list[str] = [],
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = -1,
    dividend_type: str = "none",
    fill_data: bool = True,
    data_dir: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Like ``get_market_data_ex`` from local files only (tick too: code → DataFrame).

    ``data_dir`` pointing at a MiniQMT ``datadir`` reads its ``.DAT`` files (1d, 1m, and the
    tick files of the days in range); otherwise the qmtkit cache is read. Tick fields the
    MiniQMT files do not hold in a known place (``pvolume``, ``openInt``,
    ``lastSettlementPrice``, ``transactionNum``) are 0.
    """
    if data_dir is None:
        return get_market_data_ex(
            field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
        )
    return _datadir_frames(
        data_dir, field_list, stock_list, period, start_time, end_time, count, dividend_type
    )


def _datadir_frames(
    data_dir: str | os.PathLike[str],
    field_list: object,
    stock_list: object,
    period: object,
    start_time: object,
    end_time: object,
    count: object,
    dividend_type: object,
) -> dict[str, pd.DataFrame]:
    """``get_local_data(data_dir=...)``: the data layer reads MiniQMT's files; this shapes them."""
    from qmtkit.data.datadir_frames import check_datadir, read_datadir

    root = check_datadir(data_dir)
    codes = _codes(stock_list)
    p = _period(period)
    frame = read_datadir(
        root, codes, p, _time_arg(start_time, "start_time"), _time_arg(end_time, "end_time"),
        _count(count), _adjust(dividend_type),
    )  # fmt: skip
    if p != "tick":
        return _shapes.ex_frames(frame, codes, p, _shapes.kline_fields(_fields(field_list)))
    return _tick_frames_of(frame, codes, _shapes.tick_fields(_fields(field_list)))


def get_full_kline(
    field_list: list[str] = [],
    stock_list: list[str] = [],
    period: str = "1m",
    start_time: str = "",
    end_time: str = "",
    count: int = 1,
    dividend_type: str = "none",
    fill_data: bool = True,
) -> dict[str, pd.DataFrame]:
    """The latest bars of ``stock_list`` in ``get_market_data``'s shape (field → frame)."""
    return get_market_data(
        field_list, stock_list, period, start_time, end_time, count, dividend_type, fill_data
    )


# --------------------------------------------------------------------------- downloads


def _download(
    name: str,
    codes: list[str],
    period: str,
    start_time: object,
    end_time: object,
    incrementally: object,
    progress: Callable[[int, int, str], object] | None,
) -> None:
    if incrementally is None:
        incrementally = not start_time
    if not isinstance(incrementally, bool):
        raise InvalidArgument(f"incrementally must be True, False or None, got {incrementally!r}")
    start, end = _time_arg(start_time, "start_time"), _time_arg(end_time, "end_time")
    client = _client()

    async def run() -> None:
        await client.data.download(
            codes, period, start, end, incrementally=incrementally, progress=progress
        )

    _call(name, run)


def download_history_data(
    stock_code: str,
    period: str,
    start_time: str = "",
    end_time: str = "",
    incrementally: bool | None = None,
) -> None:
    """Fetch one code's history into the local cache (incrementally by default)."""
    p = _period(period)
    _download("download_history_data", [normalize_code(stock_code)], p, start_time, end_time,
              incrementally, None)  # fmt: skip


supply_history_data = download_history_data


def download_history_data2(
    stock_list: list[str],
    period: str,
    start_time: str = "",
    end_time: str = "",
    callback: Callable[[Progress], object] | None = None,
    incrementally: bool | None = None,
) -> dict[str, object]:
    """Fetch the history of many codes; ``callback`` gets xtquant's progress dicts.

    Each progress dict has ``finished``, ``total``, ``stockcode`` and ``message``; callbacks run
    on the dispatcher thread and have all run when this returns. Returns ``{}``.
    """
    codes = _codes(stock_list)
    p = _period(period)
    if callback is not None and not callable(callback):
        raise InvalidArgument(f"callback must be callable(progress_dict), got {callback!r}")
    disp = _disp()

    def progress(done: int, total: int, code: str) -> None:
        if callback is not None:
            info: Progress = {"finished": done, "total": total, "stockcode": code, "message": ""}
            disp.submit(callback, info)

    _download("download_history_data2", codes, p, start_time, end_time, incrementally, progress)
    disp.flush()
    return {}


def download_financial_data(
    stock_list: list[str],
    table_list: list[str] = [],
    start_time: str = "",
    end_time: str = "",
    incrementally: bool | None = None,
) -> None:
    """Accepted and ignored: qmtkit backends serve no financial statements."""
    _codes(stock_list)
    log.info("download_financial_data: financial statements are not served by qmtkit")


def download_financial_data2(
    stock_list: list[str],
    table_list: list[str] = [],
    start_time: str = "",
    end_time: str = "",
    callback: Callable[[Progress], object] | None = None,
) -> None:
    """Like ``download_financial_data``; ``callback`` still gets one progress dict per item."""
    codes = _codes(stock_list)
    tables = list(table_list) or list(_FINANCIAL_TABLES)
    total = len(codes) * len(tables)
    if callback is None:
        return
    disp = _disp()
    for i in range(total):
        done: Progress = {"total": total, "finished": i + 1}
        disp.submit(callback, done)
    disp.flush()


def get_financial_data(
    stock_list: list[str],
    table_list: list[str] = [],
    start_time: str = "",
    end_time: str = "",
    report_type: str = "report_time",
) -> dict[str, dict[str, pd.DataFrame]]:
    """Code → table → DataFrame; always empty frames (qmtkit serves no statements)."""
    codes = _codes(stock_list)
    if report_type not in ("report_time", "announce_time"):
        raise InvalidArgument(
            f"report_type must be 'report_time' or 'announce_time', got {report_type!r}"
        )
    tables = list(table_list) or list(_FINANCIAL_TABLES)
    return {c: {t: pd.DataFrame() for t in tables} for c in codes}


def download_sector_data() -> None:
    """Nothing to do: the backend serves sectors directly."""
    _client()


def download_holiday_data(incrementally: bool = True) -> dict[str, object]:
    """Fetch the venue's trading calendar into the home (the simulator has none to give)."""
    _call("download_holiday_data", _client().data.sync_calendar)
    return {}


# --------------------------------------------------------------------------- quotes


def get_full_tick(code_list: list[str]) -> dict[str, TickDict]:
    """The latest tick of each code (``'SH'``/``'SZ'``/``'BJ'`` expand to the whole market)."""
    if isinstance(code_list, str) or not isinstance(code_list, (list, tuple, set)):
        raise InvalidArgument(f"code_list must be a list of codes or markets, got {code_list!r}")
    codes = _expand_markets(list(code_list), "get_full_tick")
    if not codes:
        return {}
    snaps = _call("get_full_tick", _client().snapshot, codes)
    return {c: _shapes.tick_dict(snaps[c]) for c in codes if c in snaps}


def _expand_markets(items: list[object], name: str) -> list[str]:
    markets = [m for m in items if isinstance(m, str) and m.upper() in _MARKETS]
    codes = _codes([c for c in items if c not in markets])
    if markets:
        everything = _call(name, _client().instruments)
        wanted = {m.upper() for m in markets}
        codes += [c for c in everything if c.rsplit(".", 1)[-1] in wanted and c not in codes]
    return codes


def _new_seq() -> int:
    with _lock:
        _next_seq[0] += 1
        return _next_seq[0]


def _start_subscription(
    name: str, codes: list[str], period: str, deliver: Callable[[list[Tick | Bar]], None]
) -> int:
    client = _client()
    ready: Future[None] = Future()

    async def pump() -> None:
        try:
            sub = client.subscribe(codes, period)
            async with sub:
                ready.set_result(None)
                async for batch in sub:
                    deliver(batch)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    fut = bridge().spawn(pump)
    try:
        ready.result()
    except QmtkitError as exc:
        log.error("%s() failed: %s", name, exc)
        return -1
    seq = _new_seq()
    with _lock:
        _subs[seq] = fut
    return seq


def subscribe_quote(
    stock_code: str,
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = 0,
    callback: Callable[[dict[str, list[QuoteRecord]]], object] | None = None,
) -> int:
    """Subscribe to one code's quotes; ``callback({code: [record, ...]})`` per push.

    With ``count`` != 0 the code's history is downloaded first (as MiniQMT does), so
    ``get_market_data_ex`` finds it. Returns the subscription number (> 0) or -1.
    """
    return subscribe_quote2(stock_code, period, start_time, end_time, count, None, callback)


def subscribe_quote2(
    stock_code: str,
    period: str = "1d",
    start_time: str = "",
    end_time: str = "",
    count: int = 0,
    dividend_type: str | None = None,
    callback: Callable[[dict[str, list[QuoteRecord]]], object] | None = None,
) -> int:
    """``subscribe_quote`` with a ``dividend_type`` (pushes are always unadjusted)."""
    ensure_not_in_loop("subscribe_quote")
    code = normalize_code(stock_code)
    p = _period(period)
    n = _count(count)
    _adjust(dividend_type)
    if callback is not None and not callable(callback):
        raise InvalidArgument(f"callback must be callable(datas), got {callback!r}")
    if n != 0:
        _download("subscribe_quote", [code], p, start_time, end_time, None, None)
    disp = _disp()
    client = _client()

    def deliver(batch: list[Tick | Bar]) -> None:
        if callback is not None and batch:
            records = [_shapes.quote_dict(r) for r in batch]
            submit_held(disp, client, callback, {code: records})

    return _start_subscription("subscribe_quote", [code], p, deliver)


def subscribe_whole_quote(
    code_list: list[str], callback: Callable[[dict[str, TickDict]], object] | None = None
) -> int:
    """Subscribe to ticks of markets (``['SH', 'SZ']``) or codes; ``callback({code: tick})``."""
    ensure_not_in_loop("subscribe_whole_quote")
    if isinstance(code_list, str) or not isinstance(code_list, (list, tuple, set)):
        raise InvalidArgument(f"code_list must be a list of markets or codes, got {code_list!r}")
    if callback is not None and not callable(callback):
        raise InvalidArgument(f"callback must be callable(datas), got {callback!r}")
    items = list(code_list)
    markets = {m.upper() for m in items if isinstance(m, str) and m.upper() in _MARKETS}
    codes = _codes([c for c in items if not (isinstance(c, str) and c.upper() in _MARKETS)])
    disp = _disp()
    client = _client()

    def deliver(batch: list[Tick | Bar]) -> None:
        if callback is None:
            return
        out: dict[str, TickDict] = {}
        for t in batch:
            if not isinstance(t, Tick):
                continue  # a tick subscription pushes ticks only
            if not markets or t.stock_code.rsplit(".", 1)[-1] in markets:
                out[t.stock_code] = _shapes.tick_dict(t)
        if out:
            submit_held(disp, client, callback, out)

    return _start_subscription("subscribe_whole_quote", [] if markets else codes, "tick", deliver)


def unsubscribe_quote(seq: int) -> None:
    """End a subscription made by ``subscribe_quote``/``subscribe_whole_quote``."""
    if not is_int(seq):
        raise InvalidArgument(f"seq must be the int a subscribe function returned, got {seq!r}")
    with _lock:
        fut = _subs.pop(seq, None)
    if fut is None:
        log.warning("unsubscribe_quote(%r): no such subscription", seq)
        return
    fut.cancel()


def run() -> None:
    """Block to keep receiving quote callbacks; Ctrl-C returns cleanly."""
    ensure_not_in_loop("run")
    conn = get_client()
    if run_replay(conn.client):  # a backtest: run() returns when the replay has ended
        _disp().flush()
        return
    try:
        log.info("xtdata.run(): receiving quote callbacks until Ctrl-C")
        while conn.is_connected():
            _time.sleep(0.5)
    except KeyboardInterrupt:
        log.info("xtdata.run() interrupted")
        return
    raise QmtkitError("the data service connection was closed")


# --------------------------------------------------------------------------- reference data


def get_instrument_detail(stock_code: str, iscomplete: bool = False) -> DetailDict | None:
    """Reference data of one code with xtquant's keys, or None for an unknown code."""
    try:
        code = normalize_code(stock_code)
    except InvalidCode:
        return None
    inst = _call("get_instrument_detail", _client().instrument, code)
    if inst is None:
        return None
    return _detail(inst, bool(iscomplete))


_DETAIL_KEYS = (
    "ExchangeID", "InstrumentID", "InstrumentName", "ProductID", "ProductName", "ProductType",
    "ExchangeCode", "UniCode", "CreateDate", "OpenDate", "ExpireDate", "TradingDay",
    "PreClose", "SettlementPrice", "UpStopPrice", "DownStopPrice", "FloatVolume",
    "TotalVolume", "LongMarginRatio", "ShortMarginRatio", "PriceTick", "VolumeMultiple",
    "MainContract", "LastVolume", "InstrumentStatus", "IsTrading", "IsRecent",
    "ProductTradeQuota", "ContractTradeQuota", "ProductOpenInterestQuota",
    "ContractOpenInterestQuota",
)  # fmt: skip


def _detail(inst: InstrumentDetail, complete: bool) -> DetailDict:
    import msgspec

    src = msgspec.structs.asdict(inst)
    out = {k: src.get(k) for k in _DETAIL_KEYS}
    if complete:
        out.update(src)
    return out


def get_instrument_detail_list(
    stock_list: list[str], iscomplete: bool = False
) -> dict[str, DetailDict | None]:
    """``get_instrument_detail`` of each code (None for unknown ones)."""
    if isinstance(stock_list, str) or not isinstance(stock_list, (list, tuple, set)):
        raise InvalidArgument(f"stock_list must be a list of codes, got {stock_list!r}")
    good = []
    for s in stock_list:
        with contextlib.suppress(InvalidCode):
            good.append(normalize_code(s))
    found = _call("get_instrument_detail_list", _client().instruments, good) if good else {}
    out: dict[str, DetailDict | None] = {}
    for s in stock_list:
        try:
            code = normalize_code(s)
        except InvalidCode:
            out[s] = None
            continue
        inst = found.get(code)
        out[s] = None if inst is None else _detail(inst, bool(iscomplete))
    return out


def get_instrument_type(stock_code: str, variety_list: list[str] | None = None) -> dict[str, bool]:
    """Which kinds ``stock_code`` is (``{'stock': True}``, ``{'index': True}``, ...)."""
    try:
        code = normalize_code(stock_code)
    except InvalidCode:
        return {}
    inst = _call("get_instrument_type", _client().instrument, code)
    if inst is None:
        return {}
    board = parse_code(code).board.value
    kinds = {
        "index": board == "index",
        "stock": board in ("main", "chinext", "star", "bj"),
        "fund": board == "etf",
        "etf": board == "etf",
    }
    if not variety_list:
        return {k: v for k, v in kinds.items() if v}
    return {k: kinds[k] for k in variety_list if k in kinds}


get_stock_type = get_instrument_type


def get_sector_list() -> list[str]:
    """The names of the sectors the backend knows."""
    return list(_call("get_sector_list", _client().sectors))


def get_stock_list_in_sector(sector_name: str, real_timetag: int | str = -1) -> list[str]:
    """The codes of a sector (current members; ``real_timetag`` is accepted and ignored)."""
    if not isinstance(sector_name, str):
        raise InvalidArgument(f"sector_name must be a str such as '沪深A股', got {sector_name!r}")
    for ch in '\\/:*?"<>|':
        sector_name = sector_name.replace(ch, "")
    try:
        return list(_call("get_stock_list_in_sector", _client().sector_members, sector_name))
    except InvalidArgument:
        return []


def get_divid_factors(stock_code: str, start_time: str = "", end_time: str = "") -> pd.DataFrame:
    """Ex-rights records of a code, one row per ex-date (index 'YYYYMMDD')."""
    code = normalize_code(stock_code)
    start, end = _time_arg(start_time, "start_time"), _time_arg(end_time, "end_time")
    items = _call("get_divid_factors", _client().data.dividends, code, start, end)
    cols = ["time", "interest", "stockBonus", "stockGift", "allotNum", "allotPrice", "gugai", "dr"]
    rows = [[getattr(d, c) for c in cols] for d in items]
    df: pd.DataFrame = pd.DataFrame(rows, columns=cols)
    df.index = pd.Index(list(_shapes.time_labels(df["time"].to_numpy(dtype="int64"), "1d")))
    return df


def get_trading_dates(
    market: str, start_time: str = "", end_time: str = "", count: int = -1
) -> list[int]:
    """Trading days of a market (SH/SZ/BJ) as Unix ms at 00:00 Beijing."""
    return list(
        _client().data.trading_dates(
            market, _time_arg(start_time, "start_time"), _time_arg(end_time, "end_time"),
            _count(count),
        )
    )  # fmt: skip


def get_trading_calendar(market: str, start_time: str = "", end_time: str = "") -> list[str]:
    """Trading days (future ones included, provisional past the known) as 'YYYYMMDD' strings."""
    if market not in ("SH", "SZ"):
        raise InvalidArgument(
            f"get_trading_calendar serves 'SH' and 'SZ' (as xtquant), got {market!r}"
        )
    return list(_client().data.trading_calendar(market, start_time or "", end_time or ""))


def get_market_last_trade_date(market: str) -> int:
    """The last trading day up to the venue's today (Unix ms at 00:00 Beijing; virtual in a
    backtest)."""
    today = beijing(_client().now()).strftime("%Y%m%d")
    days = get_trading_dates(market, "", today, 1)
    return days[-1] if days else 0


def get_holidays() -> list[str]:
    """Exchange holidays (weekdays the market is closed) as 'YYYYMMDD' strings."""
    return list(_client().data.holidays("SH"))


def get_period_list() -> list[dict[str, str]]:
    """The periods qmtkit serves, as ``{'name': ..., 'desc': ...}`` dicts."""
    desc = {
        "tick": "tick", "1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes",
        "30m": "30 minutes", "1h": "1 hour", "1d": "1 day", "1w": "1 week", "1mon": "1 month",
    }  # fmt: skip
    return [{"name": p, "desc": desc.get(p, p)} for p in PERIODS]


# --------------------------------------------------------------------------- time helpers


def datetime_to_timetag(datetime: str, format: str = "%Y%m%d%H%M%S") -> float:
    """Local-time string → Unix ms (an 8-character string is read as '%Y%m%d')."""
    if not isinstance(datetime, str):
        raise InvalidArgument(f"datetime must be a str like '20240102093000', got {datetime!r}")
    if len(datetime) == 8:
        format = "%Y%m%d"
    return _time.mktime(_time.strptime(datetime, format)) * 1000


def timetag_to_datetime(timetag: int, format: str) -> str | None:
    """Unix ms → local-time string in ``format`` (None if it cannot be converted)."""
    return timetagToDateTime(timetag, format)


def timetagToDateTime(timetag: int, format: str) -> str | None:
    """Unix ms → local-time string in ``format`` (None if it cannot be converted)."""
    try:
        return _time.strftime(format, _time.localtime(timetag / 1000))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# --------------------------------------------------------------------------- short aliases

gmd = get_market_data
gmd2 = get_market_data_ex
gld = get_local_data
t2d = timetag_to_datetime
gsl = get_stock_list_in_sector


# --------------------------------------------------------------------------- unsupported


def _unsupported(name: str) -> NoReturn:
    raise Unsupported(
        f"xtdata.{name}() is not supported by qmtkit's compat shim on backend "
        f"{backend_url(None)!r}: qmtkit serves A-share stocks, ETFs and indices "
        "(see docs/compat.md for what is)"
    )


# The ~90 xtdata functions qmtkit cannot serve, with xtquant's signatures (compat/_unsupported.py).
globals().update(unsupported_functions(XTDATA_UNSUPPORTED, _unsupported))
gmd3 = globals()["get_market_data3"]


def try_except(func: Callable[P, T]) -> Callable[P, T | None]:
    """xtquant's decorator: call ``func``, answering None instead of raising."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | None:
        try:
            return func(*args, **kwargs)
        except Exception:
            return None

    return wrapper


class QuoteServer:
    """xtquant's quote-server handle: not available on qmtkit backends."""

    def __init__(self, info: dict[str, object] = {}) -> None:
        _unsupported("QuoteServer")
