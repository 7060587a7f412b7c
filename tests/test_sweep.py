"""risklab.sweep: serial and Dask runs give identical results; failures are captured per task."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from pymc.testing import mock_sample

from risklab.counterfactual import Levers, evaluate
from risklab.design import plan_audit
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.priors import Prior
from risklab.sweep import (
    LeversAnalysis,
    SweepResult,
    SweepTask,
    grid,
    keep_posterior,
    run_task,
    sweep,
)
from tests.conftest import small_marketplace
from tests.states import truth_state

SCENARIOS = {
    "baseline": Levers(),
    "double_review": Levers(review_hours_factor=2.0),
    "half_evasion": Levers(hidden_share_factor=0.5),
}


@pytest.fixture(scope="module")
def results_files(tmp_path_factory):
    """Two posterior.nc files from mocked fits (prior draws: no MCMC) with different seeds."""
    root = tmp_path_factory.mktemp("fits")
    fake = partial(mock_sample, sample_stats={"diverging": lambda size: np.zeros(size, bool)})
    paths = []
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(pm, "sample", fake)
        submission = small_marketplace().to_submission()
        for seed in (3, 4):
            model = PlatformRiskModel(submission, sampler_config=SamplerConfig(draws=60, chains=2))
            model.fit(random_seed=seed)
            paths.append(model.save(root / f"posterior-{seed}.nc"))
    return paths


def _tasks(paths):
    levers = LeversAnalysis(SCENARIOS)
    # A seeded random analysis: simulated audit outcomes, seed derived from the fit's seed.
    audit = partial(plan_audit, sample_sizes=[50, 400], outcomes=200)
    return [
        SweepTask(paths[0], analyse=levers, name="a/levers"),
        SweepTask(paths[1], analyse=levers, name="b/levers"),
        SweepTask(paths[1], analyse=audit, name="b/audit"),
        SweepTask(paths[0], name="a/default"),
        SweepTask(str(paths[0]) + ".missing.nc", analyse=levers, name="missing"),
        SweepTask(paths[0], analyse=LeversAnalysis({"bad": Levers(enforcement=0.5)}), name="bad"),
    ]


@pytest.fixture(scope="module")
def serial_results(results_files):
    return sweep(_tasks(results_files))


def _assert_same(serial: list[SweepResult], other: list[SweepResult]) -> None:
    assert len(serial) == len(other)
    for s, o in zip(serial, other, strict=True):
        assert (s.index, s.name, s.ok, s.error_type, s.error, s.converged, s.convergence) == (
            o.index, o.name, o.ok, o.error_type, o.error, o.converged, o.convergence
        )  # fmt: skip
        if isinstance(s.result, xr.Dataset):
            xr.testing.assert_identical(s.result, o.result)
        elif isinstance(s.result, pd.DataFrame):
            pd.testing.assert_frame_equal(s.result, o.result)
        elif s.result is not None:
            pd.testing.assert_frame_equal(s.result.table, o.result.table)
            assert s.result.recommended == o.result.recommended


def test_serial_sweep_runs_in_order_and_captures_failures(results_files, serial_results):
    from risklab.assess import assess
    from risklab.counterfactual import PosteriorState

    results = serial_results
    assert [r.index for r in results] == list(range(6))
    names = ["a/levers", "b/levers", "b/audit", "a/default", "missing", "bad"]
    assert [r.name for r in results] == names
    assert [r.ok for r in results] == [True] * 4 + [False, False]
    missing, bad = results[4], results[5]
    assert missing.error_type == "ModelFileError" and "missing" in missing.error
    assert missing.converged is None
    # The fit loaded, so convergence is known, then the analysis failed (no trader data).
    assert bad.error_type == "ValueError" and "repeat-offender" in bad.error
    assert bad.converged is False
    assert all(r.converged is False for r in results[:4])  # prior draws fail the gate
    assert all("convergence FAILED" in r.convergence for r in results[:4])
    # The levers analysis is the counterfactual evaluation, summarised; the default analysis
    # is the assessment table.
    fitted = PlatformRiskModel.load(results_files[0])
    state = PosteriorState.from_fitted(fitted)
    doubled = evaluate(state, SCENARIOS["double_review"])["prevalence"].median(("chain", "draw"))
    np.testing.assert_allclose(
        results[0].result["prevalence_median"].sel(scenario="double_review"), doubled
    )
    pd.testing.assert_frame_equal(results[3].result, assess(fitted).table)
    # Different fits give different results (the comparison with Dask is not vacuous).
    assert not results[0].result.identical(results[1].result)
    assert results[2].result.table["power_reweighted"].between(0, 1).all()


def test_dask_local_cluster_gives_identical_results(results_files, serial_results):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = sweep(_tasks(results_files), client=client)
        workers = set(client.run(lambda: 1))
    assert len(workers) == 2
    _assert_same(serial_results, on_dask)


def test_levers_analysis_on_the_truth_reproduces_the_simulator():
    sim = small_marketplace(seed=11, efficiency_log_sd=0.0, detection_ceiling=1.0)
    state = truth_state(sim)
    out = LeversAnalysis(SCENARIOS, outcomes=("prevalence", "detection_rate")).on_state(state)
    assert out["prevalence_median"].dims == ("scenario", "category")
    assert list(out["scenario"].values) == list(SCENARIOS)
    truth = [sim.truth["prevalence_category"][c] for c in state.categories]
    np.testing.assert_allclose(out["prevalence_median"].sel(scenario="baseline"), truth)
    # More review hours raise proactive detection in every category; evasion halved too.
    base = out["detection_rate_median"].sel(scenario="baseline")
    assert (out["detection_rate_median"].sel(scenario="double_review") > base).all()
    assert (out["detection_rate_median"].sel(scenario="half_evasion") > base).all()
    with pytest.raises(ValueError, match="unknown outcomes"):
        LeversAnalysis(SCENARIOS, outcomes=("nope",))


def test_grid_and_task_validation(small_submission):
    priors = {"default": None, "wide": {"prevalence_category_sd": Prior("HalfNormal", sigma=2.0)}}
    tasks = grid([small_submission, "other/"], priors, seeds=[1, 2])
    assert len(tasks) == 2 * 2 * 2
    assert tasks[0].name == "0/default/1" and tasks[-1].name == "1/wide/2"
    assert {t.random_seed for t in tasks} == {1, 2}
    with pytest.raises(TypeError, match="tasks\\[1\\]"):
        sweep([tasks[0], "not a task"])
    failed = run_task(SweepTask(submission=42), index=7)
    assert (failed.index, failed.ok, failed.error_type) == (7, False, "TypeError")


def test_results_compare_without_timings():
    a = SweepResult(index=0, name="x", ok=True, result=1, seconds=1.0)
    b = SweepResult(index=0, name="x", ok=True, result=1, seconds=2.0)
    assert a == b


@pytest.mark.slow
@pytest.mark.extended
def test_a_real_fit_is_identical_serially_and_on_dask():
    """One tiny real fit (2 chains × 300 draws) run in this process and on a Dask worker."""
    distributed = pytest.importorskip("distributed")
    sim = small_marketplace(seed=2, n_periods=4)
    task = SweepTask(
        sim.to_submission(),
        sampler_config=SamplerConfig(draws=300, tune=300, chains=2),
        random_seed=17,
        analyse=keep_posterior,
        name="tiny",
    )
    (serial,) = sweep([task])
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        (on_dask,) = sweep([task], client=client)
    assert serial.ok and on_dask.ok, (serial.error, on_dask.error)
    assert (serial.converged, serial.convergence) == (on_dask.converged, on_dask.convergence)
    # Same draws, coordinates and variables; only the run's timestamps (attrs) differ.
    xr.testing.assert_equal(serial.result, on_dask.result)
