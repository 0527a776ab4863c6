"""``qmtkit backtest SCRIPT``: run a strategy file over cached history and print its digest.

The script defines ``async def strategy(qk, account)`` (per-bar async code) and/or
``def on_bars(frame, ctx)`` (the cross-sectional form); see ``qmtkit.backtest.runner``. A
progress line on stderr shows the virtual date and bars per second; stdout gets a summary and
the result's digest (identical inputs, identical digest).
"""

from __future__ import annotations

import argparse
import runpy
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import anyio

from qmtkit.errors import QmtkitError


def add_subcommands(subparsers: Any) -> None:
    """Mount ``backtest`` on the ``qmtkit`` command."""
    p = subparsers.add_parser("backtest", help="backtest a strategy file on cached history")
    p.add_argument("script", help="a .py file defining strategy(qk, account) and/or on_bars")
    p.add_argument("--start", required=True, help="first day, YYYYMMDD")
    p.add_argument("--end", default=None, help="last day, YYYYMMDD (default: all cached)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--codes", default="", help="comma-separated codes (default: all cached)")
    group.add_argument("--sector", default="", help="a sector name, or 'all'")
    p.add_argument(
        "--period", default="1d", choices=("1d", "1m", "tick"), help="bars replayed: 1d, 1m or tick"
    )
    p.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash (CNY)")
    p.add_argument("--fill", default=None, help="next_open (default), close, qmt or tick")
    p.add_argument("--benchmark", default="", help="benchmark code, e.g. 000300.SH")
    p.add_argument("--participation", type=float, default=None, help="share of bar volume")
    p.add_argument("--slippage", type=int, default=0, help="slippage in price ticks")
    p.add_argument(
        "--dividend-tax",
        action="store_true",
        help="collect the individual dividend tax when shares are sold (20/10/0 %% by holding)",
    )
    p.add_argument("--account", default="backtest", help="the account id the result is for")
    p.add_argument("--home", default=None, help="cache directory (default: $QMTKIT_HOME)")
    p.add_argument("--report", default=None, help="write an HTML report to this path")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(handler=cmd_backtest)


class Progress:
    """A one-line progress display: virtual date, steps and bars per second."""

    def __init__(self, backend: Any, stream: TextIO, every: float = 0.25) -> None:
        self.backend = backend
        self.stream = stream
        self.every = every
        self.t0 = time.perf_counter()
        self.last = 0.0

    def rate(self) -> float:
        """Bars published per second of wall time so far."""
        elapsed = time.perf_counter() - self.t0
        return float(self.backend.bars_published) / elapsed if elapsed > 0 else 0.0

    def __call__(self, step: int, steps: int, day: int) -> None:
        now = time.perf_counter()
        if step < steps and now - self.last < self.every:
            return
        self.last = now
        d = f"{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}"
        end = "\n" if step >= steps else ""
        self.stream.write(
            f"\r{d}  step {step}/{steps}  {self.backend.bars_published:,} bars  "
            f"{self.rate():,.0f} bars/s{end}"
        )
        self.stream.flush()


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the backtest the arguments describe; exit 0, or 2 on a bad argument or script."""
    from qmtkit.backends.replay import BacktestSpec, ReplayBackend
    from qmtkit.backtest.runner import run_backtest

    script = Path(args.script)
    if not script.is_file():
        print(f"qmtkit backtest: no such script {args.script!r}", file=sys.stderr)
        return 2
    try:
        spec = BacktestSpec(
            start=_day(args.start, "start"),
            end=_day(args.end, "end") if args.end else 29_991_231,
            period=args.period,
            codes=[c for c in args.codes.split(",") if c.strip()],
            sector=args.sector,
            cash=args.cash,
            fill=args.fill or ("tick" if args.period == "tick" else "next_open"),
            benchmark=args.benchmark,
            participation=args.participation if args.participation is not None else 0.25,
            slippage=args.slippage,
            home=args.home,
            dividend_tax=args.dividend_tax,
        ).check()
    except QmtkitError as exc:
        print(f"qmtkit backtest: {exc}", file=sys.stderr)
        return 2
    namespace = runpy.run_path(str(script), run_name="__qmtkit_backtest__")
    strategy = namespace.get("strategy")
    on_bars = namespace.get("on_bars")
    if strategy is None and on_bars is None:
        print(
            f"qmtkit backtest: {script} defines neither strategy(qk, account) nor "
            "on_bars(frame, ctx); for an xtquant script use "
            "`qmtkit run --backend backtest://?start=... SCRIPT`",
            file=sys.stderr,
        )
        return 2
    made: list[ReplayBackend] = []
    progress = None if args.quiet else _LazyProgress(made, sys.stderr)

    async def main() -> Any:
        return await run_backtest(
            spec,
            strategy,
            on_bars=on_bars,
            account=args.account,
            progress=progress,
            backend_hook=made.append,
        )

    try:
        result = anyio.run(main)
    except QmtkitError as exc:
        print(f"\nqmtkit backtest: {exc}", file=sys.stderr)
        return 2
    equity = result.equity
    if equity.height:
        last = float(equity["total"][-1])
        print(
            f"{equity['date'][0]} .. {equity['date'][-1]}: {equity.height} days, "
            f"{result.trades.height} trades, final {last:,.2f} "
            f"({(last / result.initial_cash - 1) * 100:+.2f} %)"
        )
    else:
        print("no trading day in range")
    if "dividend_tax_paid" in result.meta:
        print(f"dividend tax paid: {result.meta['dividend_tax_paid']}")
    if args.report:
        report = getattr(result, "report", None)
        if report is None:
            print("qmtkit backtest: HTML reports are not available in this build", file=sys.stderr)
            return 2
        report(args.report)
        print(f"report: {args.report}")
    print(f"digest: {result.digest()}")
    return 0


class _LazyProgress:
    """A ``Progress`` bound to the backend once the runner has made it."""

    def __init__(self, made: list[Any], stream: TextIO) -> None:
        self.made = made
        self.stream = stream
        self.inner: Progress | None = None

    def __call__(self, step: int, steps: int, day: int) -> None:
        if self.inner is None:
            if not self.made:
                return
            self.inner = Progress(self.made[0], self.stream)
        self.inner(step, steps, day)


def _day(text: str, name: str) -> int:
    from qmtkit.errors import InvalidArgument

    if not (isinstance(text, str) and text.isdigit() and len(text) == 8):
        raise InvalidArgument(f"bad --{name} {text!r}: expected YYYYMMDD")
    return int(text)
