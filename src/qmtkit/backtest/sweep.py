"""Parameter sweeps: one backtest per parameter set, in parallel processes or on Ray.

Two ways to say what one run is:

* ``sweep(run_one, grid)`` — ``run_one(params) -> BacktestResult`` is any engine entry point;
* ``sweep(strategy, grid, spec=URL)`` — ``strategy(qk, account, **params)`` (or, with
  ``form="bars"``, ``on_bars(frame, ctx, **params)``) is replayed by `run_backtest` over the
  ``backtest://`` spec.

Workers receive the parameters and the spec (a few hundred bytes), never data: each opens the
K-line cache itself by its path, and the cache's columns are memory-mapped, so every worker
shares the same pages of the operating system's page cache instead of holding a copy. Each
worker sends back one row of figures and the result's digest, not the frames.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl

from qmtkit.backtest.metrics import check_risk_free_rate
from qmtkit.backtest.results import BacktestResult
from qmtkit.checks import positive_int
from qmtkit.errors import InvalidArgument, QmtkitError
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.limits import RiskLimits

Executor = Literal["process", "serial", "ray"]
Form = Literal["bar", "bars"]
Row = dict[str, Any]
Risk = RiskConfig | RiskLimits | bool | None

#: Most parameter sets one sweep accepts (a grid larger than this is a mistake, not a plan).
MAX_SETS: Final = 100_000
#: Columns every row carries besides the parameters and the metrics.
RESULT_COLUMNS: Final = ("digest", "high_frequency", "risk_refusals")


class SweepError(QmtkitError):
    """One parameter set's run failed; the message names the parameters."""


def sweep(
    strategy: Callable[..., Any],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    spec: Any = None,
    home: str | os.PathLike[str] | None = None,
    form: Form = "bar",
    account: str = "backtest",
    processes: int | None = None,
    executor: Executor = "process",
    risk_free_rate: float = 0.0,
    risk: Risk = None,
) -> pl.DataFrame:
    """Run every parameter set of ``grid`` and return one row per set, in grid order.

    ``grid`` is a mapping of names to values (every combination runs; the first name varies
    slowest) or a sequence of parameter dicts. The frame holds the parameters, every metric of
    `Metrics.as_dict`, ``high_frequency`` (the compliance verdict), ``risk_refusals`` (orders
    the risk chain refused) and ``digest``.
    ``executor`` is ``"process"`` (``processes`` workers, default one per CPU), ``"serial"``
    (in this process) or ``"ray"`` (the ``qmtkit[ray]`` extra; ``ray.init()`` first to choose
    the cluster, else a local one starts). ``home`` is the cache folder each worker opens.
    ``risk`` is `run_backtest`'s (and ``connect``'s): every run gets the same risk chain
    (``None``: ``<home>/risk.toml`` if any, ``False``: none).
    """
    if not callable(strategy):
        raise InvalidArgument(f"strategy must be callable, got {strategy!r}")
    sets = parameter_sets(grid)
    if form not in ("bar", "bars"):
        raise InvalidArgument(f"form must be 'bar' (strategy(qk, account)) or 'bars', got {form!r}")
    if executor not in ("process", "serial", "ray"):
        raise InvalidArgument(f"executor must be 'process', 'serial' or 'ray', got {executor!r}")
    if processes is not None:
        positive_int("processes", processes)
    check_risk_free_rate(risk_free_rate)
    if risk is not None and not isinstance(risk, (RiskConfig, RiskLimits, bool)):
        raise InvalidArgument(
            f"risk must be a RiskConfig, RiskLimits, True/False or None, got {risk!r}"
        )
    home_path = None if home is None else str(Path(home))
    if spec is None and (home is not None or form != "bar" or risk is not None):
        raise InvalidArgument("home, form and risk apply to sweep(strategy, grid, spec=...) only")
    task = functools.partial(
        run_task,
        strategy,
        spec=spec,
        home=home_path,
        form=form,
        account=account,
        risk_free_rate=float(risk_free_rate),
        risk=risk,
    )
    _check_picklable(task, executor)
    if executor == "serial":
        rows = [task(p) for p in sets]
    elif executor == "ray":
        rows = _run_on_ray(task, sets)
    else:
        workers = min(len(sets), processes or os.cpu_count() or 1)
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            rows = list(pool.map(task, sets))
    return _frame(sets, rows)


def parameter_sets(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The parameter dicts of ``grid``, checked: names are identifiers, sets are not empty."""
    if isinstance(grid, Mapping):
        names = list(grid)
        values = []
        for name in names:
            options = grid[name]
            if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
                raise InvalidArgument(
                    f"grid[{name!r}] must be a list of values to try, got {options!r}"
                )
            options = list(options)
            if not options:
                raise InvalidArgument(f"grid[{name!r}] is empty; give at least one value")
            values.append(options)
        size = math.prod(len(v) for v in values)
        if size > MAX_SETS:
            raise InvalidArgument(f"the grid makes {size:,} parameter sets; at most {MAX_SETS:,}")
        sets = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        if len(grid) > MAX_SETS:
            raise InvalidArgument(f"{len(grid):,} parameter sets given; at most {MAX_SETS:,}")
        sets = []
        for i, item in enumerate(grid):
            if not isinstance(item, Mapping):
                raise InvalidArgument(f"grid[{i}] must be a dict of parameters, got {item!r}")
            sets.append(dict(item))
    else:
        raise InvalidArgument(
            f"grid must be a dict of name -> values or a list of parameter dicts, got {grid!r}"
        )
    if not sets:
        raise InvalidArgument("the grid holds no parameter set")
    reserved = set(_metric_names()) | set(RESULT_COLUMNS)
    for params in sets:
        for name in params:
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidArgument(f"parameter name {name!r} must be a Python identifier")
            if name in reserved:
                raise InvalidArgument(
                    f"parameter name {name!r} is also a result column; rename the parameter"
                )
    return sets


def run_task(
    strategy: Callable[..., Any],
    params: dict[str, Any],
    *,
    spec: Any,
    home: str | None,
    form: Form,
    account: str,
    risk_free_rate: float,
    risk: Risk = None,
) -> Row:
    """One parameter set's run, reduced to its figures (runs inside a worker)."""
    try:
        if spec is None:
            result = strategy(params)
        else:
            result = _run_engine(strategy, params, spec, home, form, account, risk)
    except Exception as exc:
        raise SweepError(f"the run with parameters {params!r} failed: {exc!r}") from exc
    if not isinstance(result, BacktestResult):
        raise SweepError(
            f"the run with parameters {params!r} returned {type(result).__name__}, "
            "expected a BacktestResult"
        )
    row: Row = dict(result.metrics(risk_free_rate=risk_free_rate).as_dict())
    profile = result.compliance()
    row["high_frequency"] = profile.high_frequency
    row["risk_refusals"] = profile.risk_refusals
    row["digest"] = result.digest()
    return row


def _run_engine(
    strategy: Callable[..., Any],
    params: dict[str, Any],
    spec: Any,
    home: str | None,
    form: Form,
    account: str,
    risk: Risk,
) -> BacktestResult:
    import anyio

    from qmtkit.backtest.runner import run_backtest

    bound = functools.partial(strategy, **params)
    options: dict[str, Any] = {"account": account, "home": home, "risk": risk}
    if form == "bars":
        run = functools.partial(run_backtest, spec, on_bars=bound, **options)
    else:
        run = functools.partial(run_backtest, spec, bound, **options)
    return anyio.run(run)


def _run_on_ray(task: Callable[[dict[str, Any]], Row], sets: list[dict[str, Any]]) -> list[Row]:
    try:
        # Imported by name: Ray is optional and untyped, and mypy runs with or without it.
        ray: Any = importlib.import_module("ray")
    except ImportError:
        raise InvalidArgument("executor='ray' needs Ray: pip install 'qmtkit[ray]'") from None
    if not ray.is_initialized():
        ray.init()
    remote = ray.remote(_call)
    rows: list[Row] = ray.get([remote.remote(task, p) for p in sets])
    return rows


def _call(task: Callable[[dict[str, Any]], Row], params: dict[str, Any]) -> Row:
    """A Ray task: Ray wants a plain function, the partial travels as an argument."""
    return task(params)


def _check_picklable(task: Callable[..., Any], executor: Executor) -> None:
    if executor == "serial":
        return
    try:
        pickle.dumps(task)
    except Exception as exc:
        raise InvalidArgument(
            "the strategy and spec must be picklable to reach worker processes (define the "
            f"strategy at module level, not inside a function): {exc}"
        ) from None


@functools.cache
def _metric_names() -> tuple[str, ...]:
    from dataclasses import fields

    from qmtkit.backtest.metrics import Metrics

    return tuple(f.name for f in fields(Metrics) if f.name != "reasons")


def _frame(sets: list[dict[str, Any]], rows: list[Row]) -> pl.DataFrame:
    names = list(dict.fromkeys(name for params in sets for name in params))
    params = {name: [p.get(name) for p in sets] for name in names}
    try:
        left = pl.DataFrame(params)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        shown = {n: [None if v is None else repr(v) for v in vs] for n, vs in params.items()}
        left = pl.DataFrame(shown)
    right = pl.DataFrame(rows, schema_overrides=_row_schema(), infer_schema_length=None)
    return pl.concat([left, right], how="horizontal")


def _row_schema() -> dict[str, pl.DataType]:
    ints = {"days", "max_drawdown_days", "round_trips"}
    schema: dict[str, pl.DataType] = {}
    for name in _metric_names():
        if name == "benchmark":
            schema[name] = pl.String()
        elif name in ints:
            schema[name] = pl.Int64()
        else:
            schema[name] = pl.Float64()
    schema["high_frequency"] = pl.Boolean()
    schema["risk_refusals"] = pl.Int64()
    schema["digest"] = pl.String()
    return schema
