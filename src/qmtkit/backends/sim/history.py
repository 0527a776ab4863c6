"""Deterministic synthetic K-line history for the simulator (daily and 1-minute bars).

Every random number is a pure function of ``(seed, code, purpose, day, position)`` (a
counter-based hash, not a stateful generator), so any code, any range and any single day can be
produced alone and always comes out the same. Prices are kept in integer cents internally, so
limit checks and the aggregation of minutes into days are exact.

The model, per code:

* a mean-reverting geometric random walk around the listing's base price, with rare jumps;
* each close stays inside the day's limits, computed from that day's published preClose with
  the board's ratio, rounded half-up to 0.01 (consecutive limit-ups appear after big jumps);
* a cash dividend most years (ex-date in June/July) and now and then a bonus/transfer of
  shares; the raw (unadjusted) price drops on the ex-date and the ex-date's preClose is the
  exchanges' reference price ``(prev_close - interest) / (1 + stockBonus + stockGift)``;
* a daily volume driven by the float's turnover and the size of the move; the daily amount is
  ``volume * (open + high + low + close) / 4`` (volumes are lots of 100 shares, as MiniQMT);
* minute bars (241 per day, labelled by their end: the 09:30 auction bar, 09:31..11:30,
  13:01..15:00) drawn *inside* the daily bar: they open at its open, close at its close, touch
  its high and low and their volumes and amounts add up to its volume and amount exactly.

Not modelled: suspensions (``suspendFlag`` is always 0), rights issues (``allotNum`` is 0).
"""

from __future__ import annotations

import datetime as dt
from functools import cache, lru_cache
from typing import Final, TypeAlias

import msgspec
import numpy as np
import numpy.typing as npt

from qmtkit.backends.base import Dividend
from qmtkit.backends.sim.universe import HISTORY_START, Listing, Universe, history_start
from qmtkit.checks import is_whole
from qmtkit.clock import BEIJING_OFFSET_MS
from qmtkit.codes import Board, normalize_code, parse_code
from qmtkit.data import calendar
from qmtkit.data.holidays import KNOWN_LAST
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import InvalidArgument
from qmtkit.models import InstrumentDetail

I64: TypeAlias = npt.NDArray[np.int64]
F64: TypeAlias = npt.NDArray[np.float64]
U64: TypeAlias = npt.NDArray[np.uint64]
Columns: TypeAlias = dict[str, npt.NDArray[np.generic]]

DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
#: Minutes in a full trading day: the auction bar plus 120 + 120 continuous minutes.
MINUTES_PER_DAY: Final = 241
#: Offsets of the minute labels (bar ends) from 00:00 Beijing, ms.
MINUTE_LABELS_MS: Final[I64] = np.concatenate(
    [
        np.array([(9 * 60 + 30) * MINUTE_MS], dtype=np.int64),
        (9 * 60 + 30 + np.arange(1, 121, dtype=np.int64)) * MINUTE_MS,
        (13 * 60 + np.arange(1, 121, dtype=np.int64)) * MINUTE_MS,
    ]
)
MINUTE_LABELS_MS.setflags(write=False)

# The synthetic history's calendar ends here (the provisional rule reaches further).
_CAL_END: Final = 20351231
_M64: Final = (1 << 64) - 1
_KNOWN_LAST: Final = (
    dt.date(KNOWN_LAST // 10000, KNOWN_LAST // 100 % 100, KNOWN_LAST % 100) - dt.date(1970, 1, 1)
).days

# Purposes: each stream of randomness has its own salt so streams never overlap.
_RET, _JUMP, _GAP, _HIW, _LOW, _VOL, _DIV, _DIV2, _DIV3 = range(1, 10)
_MPATH, _MPOS, _MWICK, _MWICK2, _MAUC = range(20, 25)


# --------------------------------------------------------------------------- randomness


def mix64(x: U64) -> U64:
    """The splitmix64 finaliser on an array: a bijective scramble of 64-bit words."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        out: U64 = x ^ (x >> np.uint64(31))
    return out


def _mix_int(x: int) -> int:
    x &= _M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def stream_key(seed: int, code_key: int, purpose: int) -> int:
    """A 64-bit key naming one stream of randomness."""
    return _mix_int(_mix_int(_mix_int(seed) ^ code_key) + purpose * 0x9E3779B97F4A7C15)


def uniforms(key: int | U64, counter: npt.ArrayLike) -> F64:
    """Uniform numbers in (0, 1), one per counter value, from stream ``key``.

    ``key`` may be an array of keys broadcasting against ``counter`` (one stream per row).
    """
    c = np.asarray(counter, dtype=np.int64).astype(np.uint64)
    k = np.asarray(key, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = mix64(c * np.uint64(0x9E3779B97F4A7C15) + k)
    out: F64 = ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return out


def _rekey(key: int | U64) -> int | U64:
    if isinstance(key, np.ndarray):
        return mix64(key ^ np.uint64(0x5DEECE66D))
    return _mix_int(key ^ 0x5DEECE66D)


def normals(key: int | U64, counter: npt.ArrayLike) -> F64:
    """Standard normal numbers, one per counter value (Box-Muller on two streams)."""
    u1 = uniforms(key, counter)
    u2 = uniforms(_rekey(key), counter)
    out: F64 = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return out


def code_key(code: str) -> int:
    """A stable integer for a code (Python's ``hash`` is salted per process, this is not)."""
    sc = parse_code(code)
    return int(sc.symbol) * 4 + ("SH", "SZ", "BJ").index(sc.exchange) + 1


# --------------------------------------------------------------------------- calendar


def _daynum(ymd: int) -> int:
    return (dt.date(ymd // 10000, ymd // 100 % 100, ymd % 100) - dt.date(1970, 1, 1)).days


@cache
def calendar_days(market: str) -> I64:
    """Trading days (days since 1970-01-01) of ``market`` through 2035, read-only.

    The bundled table, then the provisional calendar's rule (never a stored layer, so a seed's
    history is the same in every home).
    """
    days = calendar.base_open_days(market)
    days = days[(days >= _daynum(20050104)) & (days <= _daynum(_CAL_END))]
    days.setflags(write=False)
    return days


def day_ms(daynum: npt.ArrayLike) -> I64:
    """Unix ms of 00:00 Beijing of day numbers (days since 1970-01-01)."""
    return np.asarray(daynum, dtype=np.int64) * DAY_MS - BEIJING_OFFSET_MS


def daynum_of_ms(ms: int) -> int:
    """The Beijing day number of a Unix-ms timestamp."""
    return (int(ms) + BEIJING_OFFSET_MS) // DAY_MS


def ymd_of_daynum(n: int) -> int:
    """``YYYYMMDD`` of a day number."""
    d = dt.date(1970, 1, 1) + dt.timedelta(days=int(n))
    return d.year * 10000 + d.month * 100 + d.day


def market_of(code: str) -> str:
    """The calendar a code trades on."""
    return "BJ" if code.endswith(".BJ") else "SH"


# --------------------------------------------------------------------------- daily path


class DailyPath(msgspec.Struct, frozen=True):
    """A code's daily history from its first day through ``days[-1]``, prices in cents."""

    code: str
    days: I64  # day numbers
    open: I64
    high: I64
    low: I64
    close: I64
    pre_close: I64
    up: I64  # limit prices of each day, cents (a huge number where there is none)
    down: I64
    volume: I64  # lots
    amount: I64  # cents
    dividends: list[Dividend]
    #: Yuan traded per lot and per cent of price: 1 for stocks and ETFs; for an index, whose
    #: level is not a share price, the amount is scaled to about 12 yuan a share at its base.
    money_scale: float = 1.0


def _limits(pre: I64, pct: int | None) -> tuple[I64, I64]:
    if pct is None:
        return np.full_like(pre, 1 << 50), np.ones_like(pre)
    up = (pre * (100 + pct) + 50) // 100
    down = np.maximum((pre * (100 - pct) + 50) // 100, 1)
    return up, down


def _round_half_up(x: F64) -> I64:
    return np.floor(x + 0.5 + 1e-9).astype(np.int64)


class _Event(msgspec.Struct):
    index: int
    interest: float  # yuan per share
    bonus: float
    gift: float


def _events(lst: Listing, seed: int, days: I64, x: F64) -> list[_Event]:
    """The ex-rights events of a stock, one draw per calendar year."""
    if lst.kind != "stock" or len(days) < 2:
        return []
    ck = code_key(lst.code)
    first_year = ymd_of_daynum(int(days[0])) // 10000
    last_year = ymd_of_daynum(int(days[-1])) // 10000
    years = np.arange(first_year, last_year + 1, dtype=np.int64)
    u_cash = uniforms(stream_key(seed, ck, _DIV), years)
    u_when = uniforms(stream_key(seed, ck, _DIV2), years)
    u_gift = uniforms(stream_key(seed, ck, _DIV3), years)
    out: list[_Event] = []
    for y, uc, uw, ug in zip(
        years.tolist(), u_cash.tolist(), u_when.tolist(), u_gift.tolist(), strict=True
    ):
        pays = uc < (0.25 if lst.is_st else 0.7)
        gift = float((0.2, 0.3, 0.4, 0.5, 1.0)[int(ug * 5 / 0.07)]) if ug < 0.07 else 0.0
        if not pays and not gift:
            continue
        target = _daynum(y * 10000 + 601) + int(uw * 50)
        i = int(np.searchsorted(days, target))
        if i <= 0 or i >= len(days):
            continue
        price = float(np.exp(x[i - 1]))
        if price < 8.0:
            gift = 0.0  # cheap shares are not split further
            if not pays:
                continue
        interest = round(price * (0.004 + 0.025 * float(uc) / 0.7), 3) if pays else 0.0
        bonus = 0.1 if gift and ug < 0.02 else 0.0
        out.append(_Event(i, max(interest, 0.01) if pays else 0.0, bonus, gift))
    return out


def daily_path(lst: Listing, seed: int, last_daynum: int) -> DailyPath:
    """Generate the daily path of ``lst`` from its first day through ``last_daynum``."""
    cal = calendar_days(market_of(lst.code))
    lo = int(np.searchsorted(cal, _daynum(history_start(lst))))
    hi = int(np.searchsorted(cal, last_daynum, "right"))
    days = cal[lo : max(lo, hi)]
    n = len(days)
    ck = code_key(lst.code)
    sigma = lst.volatility
    pct = None if lst.board is Board.INDEX else round((lst.limit_ratio or 0.1) * 100)

    # Innovations of a mean-reverting log price, with rare jumps of about a limit move.
    e = normals(stream_key(seed, ck, _RET), days) * sigma
    uj = uniforms(stream_key(seed, ck, _JUMP), days)
    jump = 0.04 if pct is None else 0.011 * pct
    e = e + np.where(uj < 0.005, jump, 0.0) - np.where(uj > 0.996, jump, 0.0)
    # y_t = phi * y_{t-1} + e_t, solved in closed form in chunks to keep phi**-k small.
    phi = 0.996
    y = np.empty(n)
    carry = 0.0
    for s in range(0, n, 2048):
        chunk = e[s : s + 2048]
        k = np.arange(len(chunk), dtype=np.float64)
        grow = phi ** (k + 1)
        y[s : s + len(chunk)] = grow * (carry + np.cumsum(chunk / grow))
        if len(chunk):
            carry = float(y[s + len(chunk) - 1])
    x = np.log(lst.base_price) + y

    events = _events(lst, seed, days, x)
    factor = np.ones(n)
    f = 1.0
    for ev in events:
        prev = float(np.exp(x[ev.index - 1])) / f
        ref = (prev - ev.interest) / (1.0 + ev.bonus + ev.gift)
        if ref <= 0.01:
            ev.interest = 0.0
            ref = prev / (1.0 + ev.bonus + ev.gift)
        f *= prev / ref
        factor[ev.index :] = f
    target = np.maximum(np.rint(np.exp(x) / factor * 100.0).astype(np.int64), 1)

    ex_idx = np.array([ev.index for ev in events], dtype=np.int64)
    ex_interest = np.array([ev.interest * 100.0 for ev in events])
    ex_div = np.array([1.0 + ev.bonus + ev.gift for ev in events])
    first_pre = max(1, round(float(np.exp(x[0] - e[0])) * 100.0)) if n else 1

    close = target.copy()
    for _ in range(n + 1):
        pre = np.empty(n, dtype=np.int64)
        if n:
            pre[0] = first_pre
            pre[1:] = close[:-1]
        if len(ex_idx):
            adj = _round_half_up((close[ex_idx - 1] - ex_interest) / ex_div)
            pre[ex_idx] = np.maximum(adj, 1)
        up, down = _limits(pre, pct)
        clipped = np.clip(target, down, up)
        if np.array_equal(clipped, close):
            break
        close = clipped

    # Open, high and low around the close, all inside the day's limits.
    gap = normals(stream_key(seed, ck, _GAP), days) * (0.35 * sigma)
    opn = np.clip(np.rint(pre * np.exp(gap)).astype(np.int64), down, up)
    wick_h = np.abs(normals(stream_key(seed, ck, _HIW), days)) * (0.6 * sigma)
    wick_l = np.abs(normals(stream_key(seed, ck, _LOW), days)) * (0.6 * sigma)
    top = np.maximum(opn, close)
    bottom = np.minimum(opn, close)
    high = np.clip(np.ceil(top * np.exp(wick_h) - 1e-9).astype(np.int64), top, up)
    low = np.clip(np.floor(bottom * np.exp(-wick_l) + 1e-9).astype(np.int64), down, bottom)

    move = np.abs(np.log(close / pre.astype(np.float64))) / sigma
    vol_noise = np.exp(0.35 * normals(stream_key(seed, ck, _VOL), days))
    if lst.kind == "index":
        lots = 2.0e8 * vol_noise * (1.0 + 0.3 * np.minimum(move, 4.0))
    else:
        lots = lst.float_shares * lst.turnover / 100.0 * vol_noise
        lots = lots * (1.0 + 0.5 * np.minimum(move, 4.0))
        lots = np.where(high == low, lots * 0.2, lots)
    volume = np.maximum(np.rint(lots).astype(np.int64), 2)
    # amount in cents: lots * 100 shares * (cents / 100) yuan * 100 cents = lots * cents * 100
    money_scale = 12.0 / lst.base_price if lst.kind == "index" else 1.0
    amount = np.rint(volume * (opn + high + low + close) * (25.0 * money_scale)).astype(np.int64)

    dividends = [
        Dividend(
            time=int(day_ms(days[ev.index])),
            interest=ev.interest,
            stockBonus=ev.bonus,
            stockGift=ev.gift,
            dr=float(close[ev.index - 1] / pre[ev.index]),
        )
        for ev in events
    ]
    return DailyPath(
        lst.code,
        days,
        opn,
        high,
        low,
        close,
        pre,
        up,
        down,
        volume,
        amount,
        dividends,
        money_scale,
    )


# --------------------------------------------------------------------------- inside a day


def cumulative_split(total: I64, weights: F64) -> I64:
    """Split integer totals (one per row) over columns in proportion to ``weights``, exactly.

    Each row of the result is non-negative and sums to its ``total``.
    """
    cw = np.cumsum(weights, axis=1)
    cw = cw / cw[:, -1:]
    cum = np.rint(cw * total[:, None]).astype(np.int64)
    cum[:, -1] = total
    out: I64 = np.diff(cum, axis=1, prepend=0)
    return out


def anchored_path(start: I64, end: I64, high: I64, low: I64, noise: F64, u_a: F64, u_b: F64) -> I64:
    """Integer paths, one per row, from ``start`` to ``end`` whose max is ``high`` and min ``low``.

    ``noise`` (rows x points) drives a Brownian bridge; ``u_a``/``u_b`` pick the interior points
    that reach the high and the low. Needs at least four points and ``low <= start, end <= high``.
    """
    rows, npts = noise.shape
    if npts < 4 or u_a.shape != (rows,) or u_b.shape != (rows,) or start.shape != (rows,):
        raise InvalidArgument(
            f"anchored_path needs rows x (>= 4) noise and one start/end/u per row, got noise "
            f"{noise.shape}, start {start.shape}, u {u_a.shape}/{u_b.shape}"
        )
    steps = np.cumsum(noise, axis=1)
    t = np.linspace(0.0, 1.0, npts)
    bridge = steps - steps[:, :1] - (steps[:, -1:] - steps[:, :1]) * t
    spread = np.maximum(high - low, 1).astype(np.float64)[:, None]
    scale = spread / np.maximum(np.ptp(bridge, axis=1, keepdims=True), 1e-9) * 0.8
    s = start.astype(np.float64)[:, None]
    e_ = end.astype(np.float64)[:, None]
    y = s + (e_ - s) * t + bridge * scale
    y[:, 0] = s[:, 0]
    y[:, -1] = e_[:, 0]
    lo_e = np.minimum(s, e_)
    hi_e = np.maximum(s, e_)
    lo_p = np.minimum(start, end)[:, None]
    hi_p = np.maximum(start, end)[:, None]
    interior = npts - 2
    ia = 1 + (u_a * interior).astype(np.int64)
    ib = 1 + (ia - 1 + 1 + (u_b * (interior - 1)).astype(np.int64)) % interior
    r = np.arange(rows)
    need_hi = high[:, None] > hi_p
    need_lo = low[:, None] < lo_p
    ymax = np.max(y, axis=1, keepdims=True)
    ymin = np.min(y, axis=1, keepdims=True)
    y[r, ia] = np.where(need_hi[:, 0], np.maximum(ymax[:, 0], hi_e[:, 0]) + 1.0, y[r, ia])
    y[r, ib] = np.where(need_lo[:, 0], np.minimum(ymin[:, 0], lo_e[:, 0]) - 1.0, y[r, ib])
    ymax = np.max(y, axis=1, keepdims=True)
    ymin = np.min(y, axis=1, keepdims=True)
    f = y.copy()
    below = y < lo_e
    above = y > hi_e
    lo_f = lo_p.astype(np.float64)
    hi_f = hi_p.astype(np.float64)
    low_f = low.astype(np.float64)[:, None]
    high_f = high.astype(np.float64)[:, None]
    f = np.where(below, low_f + (y - ymin) * (lo_f - low_f) / np.maximum(lo_e - ymin, 1e-12), f)
    f = np.where(above, hi_f + (y - hi_e) * (high_f - hi_f) / np.maximum(ymax - hi_e, 1e-12), f)
    out: I64 = np.clip(np.rint(f).astype(np.int64), low[:, None], high[:, None])
    out[:, 0] = start
    out[:, -1] = end
    return out


class MinuteTable(msgspec.Struct, frozen=True):
    """The 241 minute bars of some days (rows), prices in cents, amounts in cents."""

    days: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    amount: I64


def minute_table(seed: int, code: str, path: DailyPath, rows: I64) -> MinuteTable:
    """Minute bars of the days ``path.days[rows]`` drawn inside their daily bars."""
    return minute_rows(seed, [path] * len(rows), rows)


def minute_rows(seed: int, paths: list[DailyPath], rows: I64) -> MinuteTable:
    """Minute bars of day ``rows[i]`` of ``paths[i]``, many codes and days in one pass.

    Row ``i`` depends only on its own code and day, so batching never changes a result.
    """
    nd = len(rows)
    one = all(p is paths[0] for p in paths)
    cks = [code_key(paths[0].code)] if one and nd else [code_key(p.code) for p in paths]

    def keys(purpose: int) -> U64:
        k = np.array([stream_key(seed, ck, purpose) for ck in cks], dtype=np.uint64)
        return np.repeat(k, nd) if one else k

    def col(name: str) -> I64:
        if one:
            return np.asarray(getattr(paths[0], name)[rows], dtype=np.int64) if nd else rows[:0]
        pairs = zip(paths, rows.tolist(), strict=True)
        return np.array([getattr(p, name)[r] for p, r in pairs], dtype=np.int64)

    days = col("days")
    op, hi, lo, cl = col("open"), col("high"), col("low"), col("close")
    V, A = col("volume"), col("amount")
    scale = np.array([p.money_scale for p in paths], dtype=np.float64).reshape(nd)
    counter = days[:, None] * 256 + np.arange(MINUTES_PER_DAY, dtype=np.int64)[None, :]
    noise = normals(keys(_MPATH)[:, None], counter)
    k_pos = keys(_MPOS)
    c = anchored_path(
        op, cl, hi, lo, noise, uniforms(k_pos, days * 2), uniforms(k_pos, days * 2 + 1)
    )

    o = np.empty_like(c)
    o[:, 0] = op
    o[:, 1:] = c[:, :-1]
    uw = uniforms(keys(_MWICK)[:, None], counter)
    reach = np.maximum(np.rint((hi - lo) * 0.04), 1).astype(np.int64)[:, None]
    wick = np.floor(uw * uw * (reach + 1)).astype(np.int64)
    h = np.minimum(np.maximum(o, c) + wick, hi[:, None])
    uw2 = uniforms(keys(_MWICK2)[:, None], counter)
    wick2 = np.floor(uw2 * uw2 * (reach + 1)).astype(np.int64)
    low = np.maximum(np.minimum(o, c) - wick2, lo[:, None])
    h[:, 0] = op
    low[:, 0] = op

    # Volumes: an auction share, then a U-shaped profile tilted so that the day's money adds up.
    u_auc = uniforms(keys(_MAUC), days)
    v0 = np.minimum(np.rint(V * (0.01 + 0.03 * u_auc)).astype(np.int64), V - 1)
    rest = V - v0
    m = np.arange(1, MINUTES_PER_DAY, dtype=np.float64)
    profile = 1.0 + 1.5 * np.exp(-(m - 1) / 20.0) + 1.0 * np.exp(-(240 - m) / 15.0)
    profile += 0.5 * np.exp(-np.abs(m - 121) / 10.0)
    w = profile[None, :] * np.exp(0.5 * noise[:, 1:])
    mid = (h[:, 1:] + low[:, 1:]) * 0.5
    money = A.astype(np.float64) / 100.0 / scale  # in lots * cents, the unit of price * volume
    want = (money - v0 * op) / np.maximum(rest, 1)
    z = (mid - want[:, None]) / np.maximum(hi - lo, 1)[:, None]
    lam_lo = np.full(nd, -60.0)
    lam_hi = np.full(nd, 60.0)
    for _ in range(30):
        lam = (lam_lo + lam_hi) * 0.5
        ww = w * np.exp(np.clip(lam[:, None] * z, -60.0, 60.0))
        mean = (ww * z).sum(axis=1) / ww.sum(axis=1)
        up = mean < 0
        lam_lo = np.where(up, lam, lam_lo)
        lam_hi = np.where(up, lam_hi, lam)
    ww = w * np.exp(np.clip(((lam_lo + lam_hi) * 0.5)[:, None] * z, -60.0, 60.0))
    vol = np.empty_like(c)
    vol[:, 0] = v0
    vol[:, 1:] = cumulative_split(rest, ww)

    # Amounts: one common position inside each bar's range per day, then exact cents.
    lo_sum = (vol[:, 1:] * low[:, 1:]).sum(axis=1).astype(np.float64)
    hi_sum = (vol[:, 1:] * h[:, 1:]).sum(axis=1).astype(np.float64)
    want_money = money - v0 * op
    theta = np.clip((want_money - lo_sum) / np.maximum(hi_sum - lo_sum, 1e-9), 0.0, 1.0)
    price = low[:, 1:] + theta[:, None] * (h[:, 1:] - low[:, 1:])
    weight = vol[:, 1:] * price + 1e-12
    amt = np.empty_like(c)
    amt[:, 0] = np.rint(v0 * op * (100.0 * scale)).astype(np.int64)
    amt[:, 1:] = cumulative_split(A - amt[:, 0], weight)
    return MinuteTable(days, o, h, low, c, vol, amt)


# --------------------------------------------------------------------------- the API


def _check_ms(name: str, value: object) -> int:
    if not is_whole(value) or int(value) < 0:
        raise InvalidArgument(
            f"{name} must be Unix milliseconds as a non-negative int (0: unbounded), got {value!r}"
        )
    return int(value)


class SyntheticHistory:
    """Deterministic history of every code for one seed: daily and minute bars, dividends.

    ``start_ms``/``end_ms`` bound the bar times inclusively; 0 means unbounded (the end then is
    the last day of the holiday table, 2026-12-31: history is pure and knows no "now", so a
    caller that means "until now" must say so; later ends are served on the provisional calendar).
    """

    def __init__(self, universe: Universe | None = None, seed: int | None = None) -> None:
        if universe is not None and not isinstance(universe, Universe):
            raise InvalidArgument(f"universe must be a Universe, got {universe!r}")
        self.universe = (
            universe if universe is not None else Universe(seed if seed is not None else 20240101)
        )
        self.seed = self.universe.seed if seed is None else seed
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidArgument(f"seed must be a non-negative int, got {self.seed!r}")
        # Larger than the universe, so a pass over every listed code stays cached.
        self._path = lru_cache(maxsize=1024)(self._make_path)

    def _make_path(self, code: str, last_daynum: int) -> DailyPath:
        return daily_path(self.universe.get(code), self.seed, last_daynum)

    def listing(self, code: str) -> Listing:
        """The listing used for ``code`` (the universe's, or a synthetic one)."""
        return self.universe.get(code)

    def path(self, code: str, end_ms: int = 0) -> DailyPath:
        """The daily path of ``code`` through at least the day of ``end_ms``.

        Paths are generated through the end of the holiday table (2026-12-31) or a later
        ``end_ms``, and cached per code: a shorter range is a slice of the same path.
        """
        code = normalize_code(code)
        end_ms = _check_ms("end_ms", end_ms)
        last = max(daynum_of_ms(end_ms), _KNOWN_LAST) if end_ms else _KNOWN_LAST
        return self._path(code, last)

    def _range(self, code: str, start_ms: object, end_ms: object) -> tuple[DailyPath, int, int]:
        start = _check_ms("start_ms", start_ms)
        end = _check_ms("end_ms", end_ms)
        if end and start > end:
            raise InvalidArgument(
                f"start_ms {start} is after end_ms {end}: expected start_ms <= end_ms"
            )
        p = self.path(code, end)
        times = day_ms(p.days)
        lo = int(np.searchsorted(times, start - DAY_MS + 1)) if start else 0
        hi = int(np.searchsorted(times, end, "right")) if end else len(times)
        return p, lo, max(lo, hi)

    def daily_bars(self, code: str, start_ms: int = 0, end_ms: int = 0) -> Columns:
        """Daily bars with ``start_ms <= time <= end_ms`` as ``BAR_DTYPES`` columns.

        A day is included when its 00:00 Beijing label is in range or the range starts inside
        the day (so a start at 09:00 of a day includes that day).
        """
        p, lo, hi = self._range(code, start_ms, end_ms)
        return bar_columns(
            day_ms(p.days[lo:hi]),
            p.open[lo:hi],
            p.high[lo:hi],
            p.low[lo:hi],
            p.close[lo:hi],
            p.volume[lo:hi],
            p.amount[lo:hi],
            p.pre_close[lo:hi],
        )

    def minute_bars(self, code: str, start_ms: int = 0, end_ms: int = 0) -> Columns:
        """1-minute bars (241 per trading day, labelled by their end) in ``[start_ms, end_ms]``."""
        p, lo, hi = self._range(code, start_ms, end_ms)
        rows = np.arange(lo, hi, dtype=np.int64)
        t = minute_table(self.seed, p.code, p, rows)
        times = (day_ms(t.days)[:, None] + MINUTE_LABELS_MS[None, :]).ravel()
        pre = np.empty_like(t.close)
        pre[:, 0] = p.pre_close[rows]
        pre[:, 1:] = t.close[:, :-1]
        cols = bar_columns(
            times,
            t.open.ravel(),
            t.high.ravel(),
            t.low.ravel(),
            t.close.ravel(),
            t.volume.ravel(),
            t.amount.ravel(),
            pre.ravel(),
        )
        start = _check_ms("start_ms", start_ms)
        end = _check_ms("end_ms", end_ms)
        keep = (times >= start) & ((times <= end) if end else True)
        if not keep.all():
            cols = {k: v[keep] for k, v in cols.items()}
        return cols

    def dividends(self, code: str, end_ms: int = 0) -> list[Dividend]:
        """Ex-rights records of ``code`` (ex-dates up to ``end_ms``; 0: all), oldest first."""
        end = _check_ms("end_ms", end_ms)
        return [d for d in self.path(code, end).dividends if not end or d.time <= end]

    def day_index(self, code: str, day: int) -> tuple[DailyPath, int]:
        """The daily path of ``code`` and the row of trading day ``day`` (``YYYYMMDD``) in it."""
        n = _parse_day(day)
        p = self.path(code, int(day_ms(n)))
        i = int(np.searchsorted(p.days, n))
        if i == len(p.days) or int(p.days[i]) != n:
            first = ymd_of_daynum(int(p.days[0])) if len(p.days) else "none"
            raise InvalidArgument(
                f"{day!r} is not a trading day of {code}: a holiday or weekend, or before its "
                f"first bar ({first})"
            )
        return p, i

    def instrument(self, code: str, day: int) -> InstrumentDetail:
        """Reference data of ``code`` on trading day ``day`` with its PreClose and limits."""
        p, i = self.day_index(code, day)
        # A path that starts on the listing day numbers the listing's days (new-listing limits).
        nth = i + 1 if self.listing(code).list_date >= HISTORY_START else 0
        return self.universe.instrument(code, float(p.pre_close[i]) / 100.0, int(day), nth)


def _parse_day(day: object) -> int:
    if not is_whole(day):
        raise InvalidArgument(f"day must be a YYYYMMDD int such as 20240102, got {day!r}")
    return calendar.day_number(int(day))


def bar_columns(time: I64, o: I64, h: I64, low: I64, c: I64, v: I64, a: I64, pre: I64) -> Columns:
    """Bar columns with ``BAR_DTYPES`` from integer cents (prices, amount) and lots."""
    return {
        "time": np.ascontiguousarray(time, dtype=BAR_DTYPES["time"]),
        "open": o / 100.0,
        "high": h / 100.0,
        "low": low / 100.0,
        "close": c / 100.0,
        "volume": np.array(v, dtype=BAR_DTYPES["volume"]),  # a copy: never expose the cache
        "amount": a / 100.0,
        "preClose": pre / 100.0,
        "suspendFlag": np.zeros(len(time), dtype=BAR_DTYPES["suspendFlag"]),
    }


@cache
def default_history() -> SyntheticHistory:
    """The history of the default universe (seed 20240101)."""
    return SyntheticHistory()


def daily_bars(code: str, start_ms: int = 0, end_ms: int = 0) -> Columns:
    """Daily bars of the default seed; see :meth:`SyntheticHistory.daily_bars`."""
    return default_history().daily_bars(code, start_ms, end_ms)


def minute_bars(code: str, start_ms: int = 0, end_ms: int = 0) -> Columns:
    """Minute bars of the default seed; see :meth:`SyntheticHistory.minute_bars`."""
    return default_history().minute_bars(code, start_ms, end_ms)


def dividends(code: str, end_ms: int = 0) -> list[Dividend]:
    """Ex-rights records of the default seed; see :meth:`SyntheticHistory.dividends`."""
    return default_history().dividends(code, end_ms)
