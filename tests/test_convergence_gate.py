"""The convergence gate's check for chains stuck in different modes (log density apart)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from risklab.models.diagnostics import check_convergence, separated_chains


def _fit(lp: np.ndarray | None, *, stat: str = "logp", seed: int = 0) -> xr.DataTree:
    """A well-mixed posterior (iid draws) with the given per-draw log density."""
    rng = np.random.default_rng(seed)
    chains, draws = (4, 1000) if lp is None else lp.shape
    posterior = xr.Dataset(
        {"x": (("chain", "draw"), rng.normal(size=(chains, draws)))},
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    groups = {"posterior": posterior}
    if lp is not None:
        groups["sample_stats"] = xr.Dataset(
            {
                stat: (("chain", "draw"), lp),
                "diverging": (("chain", "draw"), np.zeros(lp.shape, dtype=bool)),
            },
            coords=posterior.coords,
        )
    return xr.DataTree.from_dict(groups)


def _lp(shifts, draws: int = 1000, sd: float = 10.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (
        -500.0
        + np.asarray(shifts, dtype=float)[:, None]
        + sd * rng.normal(size=(len(shifts), draws))
    )


def test_well_mixed_chains_are_not_separated():
    fit = _fit(_lp([0, 0, 0, 0]))
    apart, gap, pooled = separated_chains(fit)
    assert apart == []
    assert gap < 1.0 and pooled == pytest.approx(10.0, rel=0.05)
    assert check_convergence(fit).passed


@pytest.mark.parametrize("stat", ["logp", "lp", "model_logp"])
def test_a_chain_in_an_inferior_mode_fails_the_gate_by_name(stat):
    # The x draws mix perfectly, so only the log density shows the stuck chain.
    fit = _fit(_lp([0, 0, -950, 0]), stat=stat)
    apart, gap, _ = separated_chains(fit)
    assert apart == [2]
    assert gap == pytest.approx(950, abs=2)
    report = check_convergence(fit)
    assert not report.passed
    assert report.max_rhat <= 1.01 and report.min_ess_bulk >= 400
    (problem,) = report.problems
    assert "different modes" in problem and "chain 2 " in problem and "up to 9" in problem


def test_the_threshold_is_in_within_chain_standard_deviations():
    # 4 sd apart passes, 6 sd apart fails (SEPARATION_SD = 5).
    assert separated_chains(_fit(_lp([0, 0, 0, 40])))[0] == []
    assert separated_chains(_fit(_lp([0, 0, 0, 60])))[0] == [3]
    assert separated_chains(_fit(_lp([0, 0, 0, 40])), separation_sd=3.0)[0] == [3]


def test_two_separated_chains_are_both_named():
    assert separated_chains(_fit(_lp([0, 300])))[0] == [0, 1]


def test_the_check_needs_a_log_density_and_the_whole_posterior():
    apart, gap, pooled = separated_chains(_fit(None))
    assert apart == [] and np.isnan(gap) and np.isnan(pooled)
    assert check_convergence(_fit(None)).passed
    # A subset of variables is a question about those variables only.
    assert check_convergence(_fit(_lp([0, 0, -950, 0])), var_names=["x"]).passed
    # Non-finite log densities (a sampler that failed) are left to the other checks.
    lp = _lp([0, 0, -950, 0])
    lp[0, 3] = np.nan
    assert separated_chains(_fit(lp))[0] == []


def test_the_remedy_follows_the_failure_and_survives_json():
    from risklab.models.diagnostics import ConvergenceReport

    stuck = check_convergence(_fit(_lp([0, 0, -950, 0])))
    assert stuck.separated_chains == [2]
    assert "not mended by more draws" in stuck.remedy()
    again = ConvergenceReport.from_json(stuck.to_json())
    assert again == stuck
    # Results written before the field existed still load (no separated chains).
    data = json.loads(stuck.to_json())
    del data["separated_chains"]
    old = ConvergenceReport.from_json(json.dumps(data))
    assert old.separated_chains == [] and old.remedy() == "Refit with more draws or tuning."
    assert check_convergence(_fit(_lp([0, 0, 0, 0]))).remedy() == ""


def test_the_unconverged_warning_names_problems_and_remedy():
    from risklab.models.diagnostics import DEFAULT_REMEDY, unconverged_warning

    stuck = check_convergence(_fit(_lp([0, 0, -950, 0])))
    text = unconverged_warning(stuck)
    assert text.startswith("UNCONVERGED") and stuck.problems[0] in text
    assert text.endswith(stuck.remedy())
    assert "(not checked)" in unconverged_warning(None)
    assert unconverged_warning(None).endswith(DEFAULT_REMEDY)
    plan = unconverged_warning(stuck, "this audit plan")
    assert "the fit behind this audit plan failed" in plan and stuck.problems[0] in plan
