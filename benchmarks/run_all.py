"""Run every benchmark and rewrite ``docs/benchmarks.md`` with what they printed.

Each ``bench_*.py`` prints markdown (its figures beside a baseline measured in the same run);
this script runs each in a fresh process, so cold figures are really cold, and collects the
output under one heading per benchmark. ``--quick`` is passed through (small sizes, for smoke).

``--compare`` is the regression guard (not a timed test): every ratio a benchmark reports
(qmtkit / its same-run baseline, see ``ratios.py``) is printed beside the ratio recorded in
``docs/benchmarks.md``, and any that got more than 1.5x worse is flagged (exit status 3).
With ``--compare`` the document is left as it was unless ``--write`` is given too.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import ratios

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
ORDER = [
    "bench_core.py",
    "bench_broker.py",
    "bench_data.py",
    "bench_export.py",
    "bench_compat.py",
    "bench_gateway.py",
    "bench_risk.py",
    "bench_backtest.py",
    "bench_terminal.py",
]
TITLES = {
    "bench_core.py": "Async core: quote fan-out and in-process order round trip",
    "bench_broker.py": "Paper broker at backtest scale: 1,000,000 orders on a virtual clock",
    "bench_data.py": "Data layer: K-line reads (W1-W5)",
    "bench_export.py": "Parquet export of the cache beside DuckDB",
    "bench_compat.py": "xtquant shim overhead",
    "bench_gateway.py": "Gateway over loopback",
    "bench_risk.py": "Risk chain: order round trip with every rule on",
    "bench_backtest.py": "Backtest: SMA(5)/SMA(20) crossover through the paper broker",
    "bench_terminal.py": "Shared terminal: attached programs on the local channel",
}


def machine() -> str:
    """One line naming the machine the figures come from."""
    return (
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


HEADER = (
    "# Benchmarks\n\n"
    "Every figure is printed beside a baseline measured in the same run, on the same "
    "machine. Regenerate with `nox -s bench` (or `python benchmarks/run_all.py`; name "
    "benchmark files to rerun only those sections).\n\n"
    "These machines are shared virtual machines: the same code measures up to 2x apart "
    "from one hour to the next (compare the memcpy floors and the bare-asyncio and bare "
    "TCP baselines between runs before comparing qmtkit figures), and each section says when "
    "it ran and how loaded the machine was. Ratios to the baseline of the same run are the "
    "stable part.\n\n"
    "Like with like: a result is compared with its floor only once it has been read as "
    "a user would read it (a frame returned over mapped memory has read nothing, so it "
    "gets no ratio to a copy). `nox -s bench -- --compare` sets every ratio beside the "
    "one recorded at the bottom of this page and flags any that got more than 1.5x "
    "worse.\n\n"
)


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), to read each figure against."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def sections_of(text: str) -> dict[str, str]:
    """The ``## `` sections of the document by title (the ratio comment left out)."""
    body = text.split(ratios.DOC_MARK)[0]
    out: dict[str, str] = {}
    for chunk in body.split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0].strip()
        out[title] = "## " + chunk.rstrip("\n") + "\n"
    return out


def main() -> int:
    """Run the benchmarks named (default: all) and write their sections of the document."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep the doc")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="set each ratio beside the one recorded in docs/benchmarks.md; flag > 1.5x worse",
    )
    parser.add_argument("--write", action="store_true", help="with --compare: rewrite the doc")
    parser.add_argument("only", nargs="*", help="benchmark files to run (default: all)")
    args = parser.parse_args()
    unknown = [n for n in args.only if not (HERE / n).exists()]
    if unknown:
        parser.error(f"no such benchmark file(s) in {HERE}: {unknown}; known: {ORDER}")
    names = args.only or [n for n in ORDER if (HERE / n).exists()]
    mode = "quick (smoke sizes)" if args.quick else "full"
    fresh: dict[str, str] = {}
    failed = 0
    found: dict[str, float] = {}
    for name in names:
        cmd = [sys.executable, str(HERE / name)] + (["--quick"] if args.quick else [])
        print(f"== {name}", file=sys.stderr, flush=True)
        started = f"{machine()}; {load()} at the start; mode: {mode}"
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sys.stderr.write(proc.stderr[-4000:])
        found.update({f"{name}: {k}": v for k, v in ratios.parse(proc.stderr).items()})
        print(proc.stdout, flush=True)
        body = proc.stdout.strip() or "(no output)"
        if proc.returncode != 0:
            failed += 1
            body += f"\n\n**This benchmark failed (exit {proc.returncode}).**"
        title = TITLES.get(name, name)
        fresh[title] = f"## {title}\n\n`python benchmarks/{name}` — {started}.\n\n{body}\n"
    old_text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    flagged: list[str] = []
    if args.compare:
        table, flagged = ratios.compare(ratios.from_doc(old_text), found)
        print("## Ratios beside the recorded ones (lower is better)\n\n" + table, flush=True)
        for key in flagged:
            print(f"FLAGGED: {key} is more than {ratios.WORSE}x worse", file=sys.stderr)
    if not args.no_write and (args.write or not args.compare):
        # Sections and ratios of benchmarks not run this time stay as recorded.
        kept = {k: v for k, v in ratios.from_doc(old_text).items() if k.split(":")[0] not in names}
        sections = {**sections_of(old_text), **fresh}
        known = [TITLES.get(n, n) for n in ORDER]
        ordered = sorted(sections, key=lambda t: known.index(t) if t in known else len(known))
        DOC.write_text(
            HEADER
            + "\n".join(sections[t] for t in ordered)
            + "\n"
            + ratios.to_doc({**kept, **found}),
            encoding="utf-8",
        )
        print(f"wrote {DOC}", file=sys.stderr)
    if failed:
        return 1
    return 3 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
