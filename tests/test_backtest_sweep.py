"""sweep(): one backtest per parameter set, in worker processes (or Ray), one frame back."""

from __future__ import annotations

import functools
import math
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from qmtkit.backtest.runner import run_backtest
from qmtkit.backtest.sweep import SweepError, parameter_sets, run_task, sweep
from qmtkit.data.cache import Cache
from qmtkit.errors import InvalidArgument
from qmtkit.risk import PRESETS
from support.history import FLAT, RISING, A, B
from support.history import daily_bars as _bars
from support.sweeps import burst, buy_once, buy_once_bars, drift_run, failing_run, not_a_result

URL = f"backtest://?start=20240102&end=20240109&codes={A},{B}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Cache(tmp_path).write_bars("1d", {A: _bars(RISING), B: _bars(FLAT)})
    return tmp_path


def test_a_dict_grid_runs_every_combination_with_the_first_name_slowest() -> None:
    sets = parameter_sets({"fast": [5, 10], "slow": [20, 30, 60]})
    assert sets == [
        {"fast": 5, "slow": 20},
        {"fast": 5, "slow": 30},
        {"fast": 5, "slow": 60},
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 30},
        {"fast": 10, "slow": 60},
    ]
    assert parameter_sets([{"a": 1}, {"a": 2, "b": "x"}]) == [{"a": 1}, {"a": 2, "b": "x"}]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"fast": []}, r"grid\['fast'\] is empty"),
        ({"fast": "5"}, r"grid\['fast'\] must be a list of values"),
        ({"not an id": [1]}, "must be a Python identifier"),
        ({"sharpe": [1]}, "'sharpe' is also a result column"),
        ({"digest": [1]}, "'digest' is also a result column"),
        ([], "holds no parameter set"),
        ([1], r"grid\[0\] must be a dict"),
        ({"a": range(1000), "b": range(1000)}, "1,000,000 parameter sets; at most 100,000"),
        ("fast=5", "grid must be a dict"),
    ],
)
def test_a_bad_grid_is_refused_naming_what_is_wrong(grid: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        sweep(drift_run, grid, executor="serial")  # type: ignore[arg-type]


def test_the_frame_holds_params_metrics_and_digest_in_grid_order() -> None:
    frame = sweep(drift_run, {"drift": [0.01, -0.01, 0.0]}, executor="serial")
    assert frame["drift"].to_list() == [0.01, -0.01, 0.0]
    assert frame["total_return"].to_list() == pytest.approx([1.01**5 - 1, 0.99**5 - 1, 0.0])
    assert frame["days"].to_list() == [5, 5, 5]
    expected = [drift_run({"drift": d}).digest() for d in (0.01, -0.01, 0.0)]
    assert frame["digest"].to_list() == expected
    assert frame["high_frequency"].to_list() == [False] * 3
    assert {"sharpe", "max_drawdown", "alpha", "win_rate"} <= set(frame.columns)


def test_worker_processes_run_the_sets_and_agree_with_a_serial_sweep(tmp_path: Path) -> None:
    grid = {"drift": [0.01, 0.02, -0.01, 0.0], "out": [str(tmp_path)]}
    parallel = sweep(drift_run, grid, processes=2)
    pids = {int(p.read_text()) for p in tmp_path.glob("*.pid")}
    assert pids and os.getpid() not in pids  # every set ran in a worker
    assert parallel.equals(sweep(drift_run, grid, executor="serial"))


def test_a_failing_run_names_its_parameters() -> None:
    with pytest.raises(SweepError, match=r"parameters \{'x': 2\} failed: ValueError"):
        sweep(failing_run, {"x": [1, 2]}, executor="serial")
    with pytest.raises(SweepError, match="returned dict, expected a BacktestResult"):
        sweep(not_a_result, {"x": [1]}, executor="serial")


def test_a_strategy_that_cannot_reach_a_worker_is_refused_before_any_run() -> None:
    def local(params: dict[str, object]) -> object:
        raise AssertionError("never runs")

    with pytest.raises(InvalidArgument, match="picklable"):
        sweep(local, {"x": [1]}, processes=1)


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="bad processes 0: expected a positive int"):
        sweep(drift_run, {"drift": [0.0]}, processes=0)
    with pytest.raises(InvalidArgument, match="executor must be"):
        sweep(drift_run, {"drift": [0.0]}, executor="threads")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="form must be"):
        sweep(buy_once, {"volume": [100]}, spec=URL, form="tick")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"spec=\.\.\.\) only"):
        sweep(drift_run, {"drift": [0.0]}, home="/tmp", executor="serial")
    with pytest.raises(InvalidArgument, match=r"spec=\.\.\.\) only"):
        sweep(drift_run, {"drift": [0.0]}, risk=PRESETS["regulatory"], executor="serial")
    with pytest.raises(InvalidArgument, match="risk must be a RiskConfig, RiskLimits"):
        sweep(buy_once, {"volume": [100]}, spec=URL, risk="regulatory")  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [math.nan, 2.0, True])
def test_a_sweep_refuses_the_risk_free_rates_a_single_run_refuses(rate: object) -> None:
    with pytest.raises(InvalidArgument, match="risk_free_rate"):
        sweep(drift_run, {"drift": [0.0]}, risk_free_rate=rate)  # type: ignore[arg-type]


def test_workers_get_a_path_and_parameters_never_the_data(home: Path) -> None:
    # What a worker receives: the strategy by reference, the URL, the cache's path, one set.
    task = functools.partial(
        run_task, buy_once, spec=URL, home=str(home), form="bar", account="bt", risk_free_rate=0.0
    )
    assert len(pickle.dumps((task, {"volume": 500}))) < 1_000


async def test_an_engine_sweep_in_processes_equals_single_runs_over_the_same_cache(
    home: Path,
) -> None:
    frame = sweep(buy_once, {"volume": [500, 1000]}, spec=URL, home=home, processes=2)
    singles = [
        await run_backtest(URL, functools.partial(buy_once, volume=v), home=home)
        for v in (500, 1000)
    ]
    assert frame["volume"].to_list() == [500, 1000]
    assert frame["digest"].to_list() == [r.digest() for r in singles]
    assert frame["turnover"].to_list() == pytest.approx([r.metrics().turnover for r in singles])
    assert frame["turnover"][1] > frame["turnover"][0] > 0


def test_the_cross_sectional_form_sweeps_on_bars_callbacks(home: Path) -> None:
    bars = sweep(
        buy_once_bars, {"volume": [500]}, spec=URL, home=home, form="bars", executor="serial"
    )
    per_bar = sweep(buy_once, {"volume": [500]}, spec=URL, home=home, executor="serial")
    assert bars["final_total"].to_list() == per_bar["final_total"].to_list()
    assert bars["round_trips"][0] == 0 and bars["turnover"][0] > 0


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is the optional qmtkit[ray] extra")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # no token file in the user's home
        tests_dir = str(Path(__file__).parent)
        # Ray's socket paths must stay under 108 bytes, so not pytest's long tmp_path.
        temp = tempfile.mkdtemp(prefix="qmtray")
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                runtime_env={"env_vars": {"PYTHONPATH": tests_dir}},
                _temp_dir=temp,
            )
            try:
                yield ray
            finally:
                ray.shutdown()
        finally:
            shutil.rmtree(temp, ignore_errors=True)


def test_the_same_sweep_runs_on_a_local_ray(local_ray: Any) -> None:
    frame = sweep(drift_run, {"drift": [0.01, -0.02]}, executor="ray")
    assert frame.equals(sweep(drift_run, {"drift": [0.01, -0.02]}, executor="serial"))


def test_a_sweep_with_the_regulatory_preset_refuses_what_single_runs_refuse(home: Path) -> None:
    # 250 orders in one virtual instant: the preset lets 200 actions a second through.
    regulatory = PRESETS["regulatory"]
    frame = sweep(burst, {"count": [150, 250]}, spec=URL, home=home, processes=2, risk=regulatory)
    singles = [
        anyio.run(
            functools.partial(
                run_backtest, URL, functools.partial(burst, count=n), home=home, risk=regulatory
            )
        )
        for n in (150, 250)
    ]
    assert [r.compliance().risk_refusals for r in singles] == [0, 50]
    assert frame["risk_refusals"].to_list() == [0, 50]
    assert frame["digest"].to_list() == [r.digest() for r in singles]  # the same refused orders
    unguarded = sweep(burst, {"count": [250]}, spec=URL, home=home, executor="serial", risk=False)
    assert unguarded["risk_refusals"].to_list() == [0]


def test_a_ray_sweep_passes_the_risk_chain_to_each_run(local_ray: Any, home: Path) -> None:
    grid = {"count": [250]}
    regulatory = PRESETS["regulatory"]
    on_ray = sweep(burst, grid, spec=URL, home=home, executor="ray", risk=regulatory)
    serial = sweep(burst, grid, spec=URL, home=home, executor="serial", risk=regulatory)
    assert on_ray["risk_refusals"].to_list() == [50]
    assert on_ray.equals(serial)
