"""Ratios to same-run baselines, handed from each benchmark to ``run_all.py --compare``.

A benchmark calls ``record(key, ratio)`` for each figure that has a baseline measured in the
same run (qmtkit / baseline: lower is better). ``run_all.py`` collects them from the
benchmark's stderr, keeps them in ``docs/benchmarks.md`` (an HTML comment under the tables)
and, with ``--compare``, sets each new ratio beside the recorded one. Ratios, not seconds:
these shared machines drift up to 2x between hours, a ratio to a baseline taken in the same
run much less.
"""

from __future__ import annotations

import json
import re
import sys

MARK = "@@ratio "
DOC_MARK = "<!-- ratios: "
#: A ratio this many times worse than the recorded one is flagged.
WORSE = 1.5


def record(key: str, value: float) -> None:
    """Report one qmtkit / baseline ratio (lower is better) for the regression guard."""
    if "|" in key:
        raise ValueError(f"a ratio key may not contain '|': {key!r}")
    print(f"{MARK}{key}|{value:.6g}", file=sys.stderr, flush=True)


def parse(stderr: str) -> dict[str, float]:
    """The ratios a benchmark printed on stderr."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        if line.startswith(MARK):
            key, _, value = line[len(MARK) :].rpartition("|")
            out[key] = float(value)
    return out


def from_doc(text: str) -> dict[str, float]:
    """The ratios recorded in ``docs/benchmarks.md`` (empty if none)."""
    m = re.search(re.escape(DOC_MARK) + r"(\{.*?\}) -->", text, re.S)
    return {k: float(v) for k, v in json.loads(m.group(1)).items()} if m else {}


def to_doc(ratios: dict[str, float]) -> str:
    """The comment that keeps ``ratios`` in the document."""
    return DOC_MARK + json.dumps(ratios, indent=1, sort_keys=True, ensure_ascii=False) + " -->\n"


def compare(old: dict[str, float], new: dict[str, float]) -> tuple[str, list[str]]:
    """A markdown table of every new ratio beside the recorded one, and the keys flagged."""
    rows = ["| figure | recorded ratio | this run | change | |", "|---|---|---|---|---|"]
    flagged: list[str] = []
    for key in sorted(new):
        now = new[key]
        was = old.get(key)
        if was is None or was <= 0:
            rows.append(f"| {key} | — | {now:.3g} | new | |")
            continue
        change = now / was
        flag = "**worse > 1.5×**" if change > WORSE else ""
        if flag:
            flagged.append(key)
        rows.append(f"| {key} | {was:.3g} | {now:.3g} | {change:.2f}× | {flag} |")
    return "\n".join(rows), flagged
