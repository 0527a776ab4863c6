"""Data-layer benchmarks: K-line reads from the memory-mapped cache (W1-W5).

Run ``python benchmarks/bench_data.py`` (``--quick`` for a small smoke run, ``--write-docs``
to put the table into ``docs/benchmarks.md`` under "Data layer"). Synthetic data (numpy,
seeded) is generated once into a temporary directory and deleted afterwards.

Workloads, each beside baselines measured in the same run:

* W1 one code's full daily history (2,500 bars); W2 its last 100 daily bars;
* W3 5,000 codes x 2,500 days into one Polars DataFrame;
* W4 300 codes x one year of 1-minute bars into one DataFrame;
* W5 W3 in xtquant's ``get_market_data_ex`` shape (code -> pandas frame indexed 'YYYYMMDD').

Baselines: (a) DIY: one Parquet file per code read with pandas into a dict of DataFrames
(W5: with the 'YYYYMMDD' index built as xtquant users do); (b) the physical floor: a memcpy
of the same bytes into a fresh allocation; W5 also beside the bare cost of building the
pandas frames from numpy views. "warm" = median of repeated calls in one process right after
a first call; "cold" = the first call in a fresh process (OS page cache as left by the
previous step, i.e. usually warm: these machines cannot drop it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ratios import record

DAY = 86_400_000
FIRST_DAY = 1_420_041_600_000  # 2015-01-01 00:00 Beijing
BJ = 8 * 3_600_000


def sizes(quick: bool) -> dict[str, int]:
    """Workload sizes: full as the brief says, quick for CI smoke runs."""
    if quick:
        return {"d_codes": 400, "d_days": 500, "m_codes": 20, "m_days": 20}
    return {"d_codes": 5000, "d_days": 2500, "m_codes": 300, "m_days": 242}


def _numbers(prefixes: tuple[int, ...], exchange: str, n: int) -> list[str]:
    return [f"{p * 1000 + i:06d}.{exchange}" for p in prefixes for i in range(1000)][:n]


def daily_codes(n: int) -> list[str]:
    """Half SH, half SZ main-board codes, sorted by exchange then number."""
    half = n // 2
    return _numbers((600, 601, 603, 605), "SH", n - half) + _numbers((0, 1, 2, 3), "SZ", half)


def minute_codes(n: int) -> list[str]:
    return [f"{600000 + i:06d}.SH" for i in range(n)]


def weekdays(n: int) -> np.ndarray:
    days = np.arange(FIRST_DAY, FIRST_DAY + n * 2 * DAY, DAY, dtype=np.int64)
    dow = ((days + BJ) // DAY + 3) % 7  # 0 = Monday
    return days[dow < 5][:n]


def minute_times(n_days: int) -> np.ndarray:
    mins = np.array(
        [9 * 60 + 30, *range(9 * 60 + 31, 11 * 60 + 31), *range(13 * 60 + 1, 15 * 60 + 1)],
        dtype=np.int64,
    )
    days = weekdays(n_days)
    return (days[:, None] + mins[None, :] * 60_000).ravel()


def synth(times: np.ndarray, n_codes: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = len(times)
    out = []
    for _ in range(n_codes):
        close = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
        pre = np.r_[close[0], close[:-1]]
        out.append(
            {
                "time": times,
                "open": pre,
                "high": np.maximum(pre, close) + 0.01,
                "low": np.minimum(pre, close) - 0.01,
                "close": close,
                "volume": rng.integers(100, 100_000, n),
                "amount": close * 1e4,
                "preClose": pre,
                "suspendFlag": np.zeros(n, dtype=np.int8),
            }
        )
    return out


def generate(root: Path, sz: dict[str, int]) -> None:
    """Write the synthetic cache and the per-code Parquet baseline files."""
    import pandas as pd

    from qmtkit.data.cache import Cache

    cache = Cache(root / "home")
    t0 = time.perf_counter()
    dcodes = daily_codes(sz["d_codes"])
    dtimes = weekdays(sz["d_days"])
    (root / "pq1d").mkdir()
    (root / "pq1m").mkdir()
    for lo in range(0, len(dcodes), 1000):
        chunk = dcodes[lo : lo + 1000]
        cols = synth(dtimes, len(chunk), seed=lo)
        cache.write_bars("1d", dict(zip(chunk, cols, strict=True)))
        for code, c in zip(chunk, cols, strict=True):
            pd.DataFrame(c).to_parquet(root / "pq1d" / f"{code}.parquet", index=False)
    mcodes = minute_codes(sz["m_codes"])
    mtimes = minute_times(sz["m_days"])
    for lo in range(0, len(mcodes), 50):
        chunk = mcodes[lo : lo + 50]
        cols = synth(mtimes, len(chunk), seed=10_000 + lo)
        cache.write_bars("1m", dict(zip(chunk, cols, strict=True)))
        for code, c in zip(chunk, cols, strict=True):
            pd.DataFrame(c).to_parquet(root / "pq1m" / f"{code}.parquet", index=False)
    print(f"generated data in {time.perf_counter() - t0:.1f} s under {root}", file=sys.stderr)


# --------------------------------------------------------------------------- workloads


def qmtkit_workload(root: Path, name: str, sz: dict[str, int]) -> Callable[[], Any]:
    """The qmtkit call of a workload (a fresh MarketData over the cache)."""
    from qmtkit.data.api import MarketData

    async def no_backend(req: Any) -> Any:
        raise RuntimeError("benchmarks read the cache only")

    dcodes = daily_codes(sz["d_codes"])
    mcodes = minute_codes(sz["m_codes"])
    code = dcodes[len(dcodes) // 3]
    if name == "W5":
        return shim_workload(root, dcodes)
    data = MarketData(no_backend, root / "home")
    base, _, read = name.partition(":")
    if base == "W1":
        return lambda: data.read_bars(code, "1d")
    if base == "W2":
        return lambda: data.read_bars(code, "1d", count=100)
    if base in ("W3", "W4"):
        codes, period = (dcodes, "1d") if base == "W3" else (mcodes, "1m")
        if read == "one":
            return lambda: read_one_column(data.read_bars(codes, period))
        if read == "all":
            return lambda: read_every_column(data.read_bars(codes, period))
        return lambda: data.read_bars(codes, period)
    raise ValueError(name)


def read_one_column(frame: Any) -> float:
    """What a user reading one column pays: every value of ``close`` visited."""
    return float(frame.get_column("close").sum())


def read_every_column(frame: Any) -> float:
    """Every byte of every column visited (codes and times by their physical values)."""
    total = 0.0
    for name in frame.columns:
        total += float(frame.get_column(name).to_physical().sum())
    return total


def shim_workload(root: Path, codes: list[str]) -> Callable[[], Any]:
    """W5 as xtquant users call it: ``xtdata.get_market_data_ex`` over the cache."""
    os.environ["QMTKIT_HOME"] = str(root / "home")
    os.environ.pop("QMTKIT_BACKEND", None)
    from qmtkit.compat import xtdata

    xtdata.enable_hello = False
    xtdata.connect()
    return lambda: xtdata.get_market_data_ex([], codes, "1d")


def baseline_workload(root: Path, name: str, sz: dict[str, int]) -> Callable[[], Any]:
    """The DIY baseline: one Parquet file per code, read with pandas into a dict."""
    import pandas as pd

    dcodes = daily_codes(sz["d_codes"])
    mcodes = minute_codes(sz["m_codes"])
    code = dcodes[len(dcodes) // 3]

    def read(codes: list[str], folder: str) -> dict[str, Any]:
        return {c: pd.read_parquet(root / folder / f"{c}.parquet") for c in codes}

    def xt_shape(codes: list[str]) -> dict[str, Any]:
        out = {}
        for c in codes:
            df = pd.read_parquet(root / "pq1d" / f"{c}.parquet")
            idx = pd.to_datetime(df["time"] + BJ, unit="ms").dt.strftime("%Y%m%d")
            df.index = pd.Index(idx)
            out[c] = df
        return out

    if name == "W1":
        return lambda: read([code], "pq1d")
    if name == "W2":
        return lambda: read([code], "pq1d")[code].tail(100)
    if name == "W3":
        return lambda: read(dcodes, "pq1d")
    if name == "W4":
        return lambda: read(mcodes, "pq1m")
    if name == "W5":
        return lambda: xt_shape(dcodes)
    raise ValueError(name)


def floor_workload(root: Path, name: str, sz: dict[str, int]) -> Callable[[], Any] | None:
    """memcpy of the workload's bytes into a fresh allocation (W5: bare pandas frames)."""
    from qmtkit.data.cache import Cache

    cache = Cache(root / "home")
    dcodes = daily_codes(sz["d_codes"])
    code = dcodes[len(dcodes) // 3]
    if name in ("W1", "W2"):
        arrs = list(cache.arrays("1d", code).values())
        if name == "W2":
            arrs = [a[-100:] for a in arrs]
    elif name.split(":")[0] in ("W3", "W4"):
        base, _, read = name.partition(":")
        period = "1d" if base == "W3" else "1m"
        state = cache._state(period)  # the mapped shard columns hold exactly these bytes
        arrs = []
        for key in state.manifest.shards:
            shard = cache._shard(period, state, key)
            assert shard is not None
            cols = shard.columns
            arrs.extend([cols["close"]] if read == "one" else cols.values())
    else:
        return pandas_floor(root, dcodes)

    def memcpy() -> list[np.ndarray]:
        return [np.array(a, copy=True) for a in arrs]

    return memcpy


def pandas_floor(root: Path, codes: list[str]) -> Callable[[], Any]:
    """W5's floor: the cheapest way to build xtquant's shape from the mapped table.

    One pandas frame over the table's columns (numeric columns zero-copy, the two columns
    xtquant has and the cache does not as zeros, like the shim's), then one row-slice view
    per code labelled by a slice of one shared index of 'YYYYMMDD' strings.
    """
    import gc

    import pandas as pd

    from qmtkit.compat._shapes import KLINE_FIELDS
    from qmtkit.data.api import MarketData
    from qmtkit.data.frames import time_strings

    async def no_backend(req: Any) -> Any:
        raise RuntimeError("benchmarks read the cache only")

    data = MarketData(no_backend, root / "home")

    def build() -> dict[str, Any]:
        frame = data.read_bars(codes, "1d")
        ms = frame.get_column("time").to_physical().to_numpy()
        n = len(ms)
        cols: dict[str, Any] = {}
        for f in KLINE_FIELDS:
            if f == "time":
                cols[f] = ms
            elif f in frame.columns:
                cols[f] = frame.get_column(f).to_numpy()
            else:
                cols[f] = np.zeros(n, dtype=np.float64 if f == "settelementPrice" else np.int64)
        big = pd.DataFrame(cols, copy=False)
        uniq = np.unique(ms)
        labels = pd.Index(time_strings(uniq, False))
        ids = frame.get_column("code").to_physical().to_numpy()
        starts = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1, [n]))
        first = np.searchsorted(uniq, ms[starts[:-1]])
        gc.disable()
        try:
            out = {}
            for i, code in enumerate(codes):
                a, b = int(starts[i]), int(starts[i + 1])
                part = big.iloc[a:b]
                part.index = labels[int(first[i]) : int(first[i]) + (b - a)]
                out[code] = part
            return out
        finally:
            gc.enable()

    return build


def make(kind: str, root: Path, name: str, sz: dict[str, int]) -> Callable[[], Any]:
    if kind == "qmtkit":
        return qmtkit_workload(root, name, sz)
    if kind == "baseline":
        return baseline_workload(root, name, sz)
    fn = floor_workload(root, name, sz)
    assert fn is not None
    return fn


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    del out
    return dt


def warm(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # touch
    return statistics.median(timed(fn) for _ in range(repeats))


def memory_kb() -> dict[str, int]:
    """This process's resident and peak resident set (kB), and its private bytes (kB)."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    private = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    out["private"] = private
    return out


def child(kind: str, name: str, root: Path, sz: dict[str, int]) -> dict[str, float]:
    """One call in this (fresh) process: its time, and its memory held at the end."""
    fn = make(kind, root, name, sz)
    before = memory_kb()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    after = memory_kb()
    del out
    return {
        "seconds": seconds,
        "peak_mb": after["VmHWM"] / 1024,
        "peak_delta_mb": (after["VmHWM"] - before["VmRSS"]) / 1024,
        "private_delta_mb": (after["private"] - before["private"]) / 1024,
    }


def cold(root: Path, kind: str, name: str, quick: bool) -> dict[str, float]:
    """The first call of a workload in a fresh interpreter (time and memory)."""
    cmd = [sys.executable, __file__, "--child", kind, name, "--dir", str(root)]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def usable(root: Path, sz: dict[str, int]) -> str:
    """Check that the zero-copy frames are complete and computable (not lazily broken)."""
    fn = qmtkit_workload(root, "W3", sz)
    df = fn()
    expect = sz["d_codes"] * sz["d_days"]
    assert df.height == expect, (df.height, expect)
    mean = float(df["close"].mean())  # type: ignore[arg-type]
    assert np.isfinite(mean)
    shim = qmtkit_workload(root, "W5", sz)()
    floor = pandas_floor(root, daily_codes(sz["d_codes"]))()
    assert len(shim) == len(floor) == sz["d_codes"]
    code = next(iter(floor))
    a, b = shim[code], floor[code]
    assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes)
    assert a.index.equals(b.index) and a.equals(b), "the W5 floor must build the shim's shape"
    return (
        f"W3 frame: {df.height:,} rows, mean close {mean:.3f}; W5: {len(shim)} frames, the "
        "floor's frames equal the shim's (columns, dtypes, index, values)"
    )


def ratio(x: float) -> str:
    return f"{x:.2f}×"


def fmt(sec: float) -> str:
    if sec < 1e-3:
        return f"{sec * 1e6:.0f} µs"
    if sec < 1:
        return f"{sec * 1e3:.1f} ms"
    return f"{sec:.2f} s"


def run(root: Path, quick: bool) -> str:
    sz = sizes(quick)
    w3 = f"W3 {sz['d_codes']:,} codes × {sz['d_days']:,} days"
    w4 = f"W4 {sz['m_codes']} codes × {sz['m_days']} days of 1m bars"
    small = ["| workload | qmtkit warm | qmtkit cold | DIY Parquet→pandas warm | DIY cold "
             "| floor: fresh copy (warm) | qmtkit vs DIY | qmtkit / floor |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, label in (
        ("W1", f"W1 one code, {sz['d_days']:,} daily bars"),
        ("W2", "W2 one code, last 100 daily bars"),
    ):
        q_cold = cold(root, "qmtkit", name, quick)["seconds"]
        q_warm = warm(make("qmtkit", root, name, sz), 200)
        b_cold = cold(root, "baseline", name, quick)["seconds"]
        b_warm = warm(make("baseline", root, name, sz), 50)
        f_warm = warm(make("floor", root, name, sz), 50)
        record(f"{name} qmtkit/floor", q_warm / f_warm)
        small.append(
            f"| {label} | {fmt(q_warm)} | {fmt(q_cold)} | {fmt(b_warm)} | {fmt(b_cold)} "
            f"| {fmt(f_warm)} | {b_warm / q_warm:.0f}× | {ratio(q_warm / f_warm)} |"
        )
        print(small[-1], file=sys.stderr)
    big = ["| workload | qmtkit warm | qmtkit cold | DIY Parquet→pandas warm (reads all) "
           "| floor: fresh copy of the bytes read (warm) | qmtkit / floor | qmtkit vs DIY |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    rss = ["| workload (each in a fresh process) | time | peak RSS | peak RSS over the process "
           "before the call | private memory added | floor's peak RSS over before | ratio |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for base, label in (("W3", w3), ("W4", w4)):
        b_warm = warm(make("baseline", root, base, sz), 1)
        for read, what in (
            ("", "returned"),
            ("one", "one column read"),
            ("all", "every column read"),
        ):
            name = f"{base}:{read}" if read else base
            q_cold = cold(root, "qmtkit", name, quick)
            q_warm = warm(make("qmtkit", root, name, sz), 5)
            if read:
                f_warm = warm(make("floor", root, name, sz), 3)
                record(f"{name} qmtkit/floor", q_warm / f_warm)
                floor_cells = f"{fmt(f_warm)} | {ratio(q_warm / f_warm)}"
            else:
                floor_cells = "— (nothing read yet) | —"
            big.append(
                f"| {label}, {what} | {fmt(q_warm)} | {fmt(q_cold['seconds'])} | {fmt(b_warm)} "
                f"| {floor_cells} | {b_warm / q_warm:.0f}× |"
            )
            print(big[-1], file=sys.stderr)
            if base == "W3" and read == "all":
                f_cold = cold(root, "floor", name, quick)
                rss.append(memory_row(f"{label}, every column read", q_cold, f_cold))
    s_cold = cold(root, "qmtkit", "W5", quick)
    s_warm = warm(make("qmtkit", root, "W5", sz), 3)
    f_cold = cold(root, "floor", "W5", quick)
    f_warm = warm(make("floor", root, "W5", sz), 3)
    b_cold = cold(root, "baseline", "W5", quick)["seconds"]
    b_warm = warm(make("baseline", root, "W5", sz), 1)
    record("W5 shim/floor", s_warm / f_warm)
    record("W5 shim/floor peak RSS", s_cold["peak_delta_mb"] / f_cold["peak_delta_mb"])
    w5 = ["| workload | shim warm | shim cold | pandas floor warm | pandas floor cold "
          "| shim / floor | DIY Parquet→pandas warm | DIY cold | shim vs DIY |",
          "|---|---|---|---|---|---|---|---|---|",
          f"| W5 {w3} as xtquant's dict of pandas frames (`get_market_data_ex`) "
          f"| {fmt(s_warm)} | {fmt(s_cold['seconds'])} | {fmt(f_warm)} "
          f"| {fmt(f_cold['seconds'])} | {ratio(s_warm / f_warm)} | {fmt(b_warm)} "
          f"| {fmt(b_cold)} | {b_warm / s_warm:.0f}× |"]  # fmt: skip
    rss.append(memory_row(f"W5 {w3} through the shim", s_cold, f_cold))
    note = usable(root, sz)
    parts = [
        "Small reads:", "\n".join(small),
        "Whole-market reads (a Polars frame is returned without reading the mapped bytes; the "
        "read rows add what a user pays to visit the values):", "\n".join(big),
        "xtquant's shape:", "\n".join(w5),
        "Memory, each figure from a fresh process:", "\n".join(rss),
        f"Checked after timing: {note}.",
    ]  # fmt: skip
    return "\n\n".join(parts) + "\n"


def memory_row(label: str, q: dict[str, float], f: dict[str, float]) -> str:
    """One row of the memory table: a workload beside its floor, both from fresh processes."""
    return (
        f"| {label} | {fmt(q['seconds'])} | {q['peak_mb']:,.0f} MB "
        f"| {q['peak_delta_mb']:,.0f} MB | {q['private_delta_mb']:,.0f} MB "
        f"| {f['peak_delta_mb']:,.0f} MB | {ratio(q['peak_delta_mb'] / f['peak_delta_mb'])} |"
    )


def write_docs(table: str, quick: bool) -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    heading = "## Data layer"
    body = (
        f"{heading}\n\n"
        f"`python benchmarks/bench_data.py{' --quick' if quick else ''}` on "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. Warm = median of repeated calls "
        "after a first call in the same process; cold = first call in a fresh process (OS page "
        "cache not dropped). Floor: memcpy of the same bytes into fresh memory (W5: building "
        "the pandas frames from numpy views). Warm W3/W4 reuse the shard frames a process "
        "builds on its first read (the files are mapped once, a read is zero-copy slices); the "
        "cold column includes mapping, header checks and building those frames, and for W4 "
        "reading pages the OS had evicted. The machine was shared with other work, so the "
        "baselines run slower than in `/work/shared/notes/kline-measurements.md`.\n\n" + table
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + body + (text[nxt + 1 :] if nxt >= 0 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--dir", default=None, help="reuse/keep synthetic data in this directory")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sz = sizes(args.quick)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], Path(args.dir), sz)))
        return 0
    own = args.dir is None
    root = Path(tempfile.mkdtemp(prefix="qmtkit-bench-data-")) if own else Path(args.dir)
    try:
        if not (root / "home").exists():
            root.mkdir(parents=True, exist_ok=True)
            generate(root, sz)
        table = run(root, args.quick)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    print(table)
    if args.write_docs:
        write_docs(table, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
