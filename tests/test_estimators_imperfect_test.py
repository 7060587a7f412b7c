"""Tests of risklab.estimators.imperfect_test (prevalence from an imperfect test).

Published numbers (Gelman & Carpenter 2020) are in tests/data/imperfect_gelman_carpenter_2020.json.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from risklab.estimators import (
    EstimatorInputError,
    EstimatorWarning,
    PrevalenceEstimate,
    imperfect_test,
)
from risklab.estimators._validation import posterior_interval

GC = json.loads(
    (Path(__file__).parent / "data" / "imperfect_gelman_carpenter_2020.json").read_text()
)


# ---------------------------------------------------------------------------------------------
# Rogan–Gladen


def test_rogan_gladen_gelman_carpenter_section2_example():
    ex = GC["rogan_gladen_section2"]
    r = imperfect_test.rogan_gladen(
        GC["survey"]["positives"],
        GC["survey"]["tested"],
        sensitivity=ex["sensitivity"],
        specificity=ex["specificity"],
    )
    a = 50 / 3330
    assert r.estimate == pytest.approx((a + 0.995 - 1) / (0.80 + 0.995 - 1), rel=1e-12)
    assert r.se == pytest.approx(math.sqrt(a * (1 - a) / 3330) / 0.795, rel=1e-12)
    assert round(r.estimate, 3) == ex["estimate"] and round(r.se, 3) == ex["se"]
    z = stats.norm.ppf(0.975)
    assert r.interval == pytest.approx((r.estimate - z * r.se, r.estimate + z * r.se))
    assert isinstance(r, PrevalenceEstimate) and r.draws is None and r.prob == 0.95
    assert not r.details["truncated"]


def test_rogan_gladen_propagates_validation_study_uncertainty():
    known = imperfect_test.rogan_gladen(120, 1000, sensitivity=0.9, specificity=0.95)
    est = imperfect_test.rogan_gladen(120, 1000, sensitivity=(180, 200), specificity=[(190, 200)])
    assert est.estimate == pytest.approx(known.estimate)
    a, pi, J = 0.12, known.estimate, 0.85
    var = (a * (1 - a) / 1000 + pi**2 * 0.9 * 0.1 / 200 + (1 - pi) ** 2 * 0.95 * 0.05 / 200) / J**2
    assert est.se == pytest.approx(math.sqrt(var), rel=1e-12)
    assert est.se > known.se
    pooled = imperfect_test.rogan_gladen(
        120, 1000, sensitivity=[(90, 100), (90, 100)], specificity=(190, 200)
    )
    assert (
        pooled.se == pytest.approx(est.se) and "2 studies" in pooled.details["sensitivity_source"]
    )


def test_rogan_gladen_truncates_below_false_positive_rate_with_a_note():
    with pytest.warns(EstimatorWarning, match="below the false-positive rate"):
        r = imperfect_test.rogan_gladen(8, 1000, sensitivity=0.9, specificity=0.99)
    assert r.estimate == 0.0 and r.details["truncated"]
    assert r.details["raw_estimate"] == pytest.approx((0.008 - 0.01) / 0.89)
    assert "truncated to [0, 1]" in r.details["note"]
    assert r.interval[0] == 0.0 and r.interval[1] > 0  # the data still allow some prevalence
    # far below: even the upper limit is negative, the interval collapses to 0 (the note says why)
    with pytest.warns(EstimatorWarning):
        far = imperfect_test.rogan_gladen(1, 1000, sensitivity=0.9, specificity=0.99)
    assert far.interval == (0.0, 0.0)
    with pytest.raises(EstimatorInputError, match="below the false-positive rate"):
        imperfect_test.rogan_gladen(8, 1000, sensitivity=0.9, specificity=0.99, truncate=False)


def test_rogan_gladen_truncates_above_sensitivity():
    with pytest.warns(EstimatorWarning, match="above the sensitivity"):
        r = imperfect_test.rogan_gladen(95, 100, sensitivity=0.9, specificity=0.99)
    assert r.estimate == 1.0 and r.interval[1] == 1.0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((11, 10, 0.9, 0.9), {}, "impossible"),
        ((-1, 10, 0.9, 0.9), {}, "non-negative"),
        ((1.5, 10, 0.9, 0.9), {}, "whole number"),
        ((1, 0, 0.9, 0.9), {}, "positive"),
        ((1, 10, 1.2, 0.9), {}, "in \\(0, 1\\]"),
        ((1, 10, 0.5, 0.5), {}, "no better than chance"),
        ((1, 10, (12, 10), 0.9), {}, "impossible"),
        ((1, 10, "0.9", 0.9), {}, "list of \\(correct, n\\) pairs"),
        ((1, 10, 0.9, 0.9), {"prob": 1.0}, "'prob'"),
        ((1, 10, (9, 10), 0.9), {"interval": "wilson"}, "known sensitivity"),
    ],
)
def test_rogan_gladen_rejects_bad_input(args, kwargs, message):
    with pytest.raises(EstimatorInputError, match=message):
        imperfect_test.rogan_gladen(*args, **kwargs)


def test_rogan_gladen_wald_coverage_known_accuracy():
    rng = np.random.default_rng(1)
    pi, se, sp, n, reps = 0.1, 0.9, 0.95, 2000, 1000
    a = pi * se + (1 - pi) * (1 - sp)
    y = rng.binomial(n, a, size=reps)
    hits = 0
    for k in y:
        lo, hi = imperfect_test.rogan_gladen(int(k), n, se, sp, prob=0.9).interval
        hits += lo <= pi <= hi
    assert 0.86 <= hits / reps <= 0.94, hits / reps


def test_rogan_gladen_wald_coverage_estimated_accuracy():
    rng = np.random.default_rng(2)
    pi, se, sp, n, n_se, n_sp, reps = 0.2, 0.85, 0.97, 1500, 150, 300, 1000
    a = pi * se + (1 - pi) * (1 - sp)
    hits = 0
    for _ in range(reps):
        k, kse, ksp = rng.binomial(n, a), rng.binomial(n_se, se), rng.binomial(n_sp, sp)
        lo, hi = imperfect_test.rogan_gladen(
            int(k), n, (int(kse), n_se), (int(ksp), n_sp), prob=0.9
        ).interval
        hits += lo <= pi <= hi
    assert 0.86 <= hits / reps <= 0.94, hits / reps


def test_rogan_gladen_wilson_interval_holds_coverage_at_low_prevalence():
    """At 0.5% prevalence the Wald interval undercovers; the corrected Wilson interval does not."""
    rng = np.random.default_rng(3)
    pi, se, sp, n, reps = 0.005, 0.9, 0.998, 1000, 2000
    a = pi * se + (1 - pi) * (1 - sp)
    y = rng.binomial(n, a, size=reps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimatorWarning)
        wilson = np.mean(
            [
                (lambda r: r[0] <= pi <= r[1])(
                    imperfect_test.rogan_gladen(
                        int(k), n, se, sp, prob=0.9, interval="wilson"
                    ).interval
                )
                for k in y
            ]
        )
        wald = np.mean(
            [
                (lambda r: r[0] <= pi <= r[1])(
                    imperfect_test.rogan_gladen(int(k), n, se, sp, prob=0.9).interval
                )
                for k in y
            ]
        )
    assert 0.86 <= wilson <= 0.97, wilson
    assert wald < wilson


# ---------------------------------------------------------------------------------------------
# Bayesian: model structure (fast)


def test_pooled_model_log_density_matches_closed_form():
    model = imperfect_test.build_model(50, 3330, [(103, 122)], [(399, 401)])
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    diffs = []
    for p, se, sp in [(0.01, 0.8, 0.99), (0.2, 0.6, 0.9), (0.05, 0.95, 0.999)]:
        point = {
            "prevalence_interval__": special.logit(p),
            "sensitivity_interval__": special.logit(se),
            "specificity_interval__": special.logit(sp),
        }
        ref = (
            stats.binom.logpmf(50, 3330, p * se + (1 - p) * (1 - sp))
            + stats.binom.logpmf(103, 122, se)
            + stats.binom.logpmf(399, 401, sp)
        )
        diffs.append(logp(point) - ref)
    assert np.ptp(diffs) < 1e-9  # uniform priors: equal up to a constant


def test_hierarchical_model_log_density_matches_closed_form():
    sens, spec = [(78, 85), (27, 37)], [(368, 371), (30, 30), (70, 70)]
    model = imperfect_test.build_model(
        50, 3330, sens, spec, hierarchical=True, hyper_sigma_scale=(0.5, 0.2)
    )
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(3):
        p = rng.uniform(0.001, 0.3)
        mu_sp, mu_se = rng.normal(4, 1), rng.normal(1.5, 0.5)
        s_sp, s_se = rng.uniform(0.1, 1), rng.uniform(0.1, 1)
        z_sp, z_se = rng.normal(size=4), rng.normal(size=3)
        point = {
            "prevalence_interval__": special.logit(p),
            "mu_logit_spec": mu_sp,
            "mu_logit_sens": mu_se,
            "sigma_logit_spec_log__": np.log(s_sp),
            "sigma_logit_sens_log__": np.log(s_se),
            "z_spec": z_sp,
            "z_sens": z_se,
        }
        spv = special.expit(mu_sp + s_sp * z_sp)
        sev = special.expit(mu_se + s_se * z_se)
        ref = (
            stats.binom.logpmf(50, 3330, p * sev[0] + (1 - p) * (1 - spv[0]))
            + stats.binom.logpmf([78, 27], [85, 37], sev[1:]).sum()
            + stats.binom.logpmf([368, 30, 70], [371, 30, 70], spv[1:]).sum()
            + stats.norm.logpdf([mu_sp, mu_se], 4, 2).sum()
            + stats.halfnorm.logpdf(s_sp, scale=0.5)
            + stats.halfnorm.logpdf(s_se, scale=0.2)
            + stats.norm.logpdf(z_sp).sum()
            + stats.norm.logpdf(z_se).sum()
        )
        diffs.append(logp(point) - ref)
    assert np.ptp(diffs) < 1e-8


def test_bayesian_rejects_bad_input():
    with pytest.raises(EstimatorInputError, match="specificity_studies is empty"):
        imperfect_test.bayesian(5, 100, [(9, 10)], [])
    with pytest.raises(EstimatorInputError, match=r"specificity_studies\[1\]"):
        imperfect_test.bayesian(5, 100, [(9, 10)], [(9, 10), (11, 10)])
    with pytest.raises(EstimatorInputError, match="'interval'"):
        imperfect_test.bayesian(5, 100, [(9, 10)], [(9, 10)], interval="central")
    with pytest.raises(EstimatorInputError, match="'hyper_sigma_scale'"):
        imperfect_test.bayesian(
            5, 100, [(9, 10)], [(9, 10)], hierarchical=True, hyper_sigma_scale=-1
        )
    with pytest.raises(EstimatorInputError, match="'random_seed'"):
        imperfect_test.bayesian(5, 100, [(9, 10)], [(9, 10)], random_seed=1.5)


def test_hdi_is_the_shortest_interval():
    x = np.random.default_rng(4).exponential(size=20000)
    lo, hi = posterior_interval(x, 0.9, "hdi")
    elo, ehi = posterior_interval(x, 0.9, "eti")
    assert lo == pytest.approx(0, abs=0.01) and hi == pytest.approx(-np.log(0.1), rel=0.03)
    assert hi - lo < ehi - elo
    assert np.mean((x >= lo) & (x <= hi)) == pytest.approx(0.9, abs=0.001)


# ---------------------------------------------------------------------------------------------
# Bayesian: fits (slow)


def _pooled_posterior_by_quadrature(y, n, sens, spec, grid):
    """Posterior of the prevalence under uniform priors, integrating Se and Sp numerically.

    With uniform priors the validation studies give Beta posteriors for Se and Sp; integrate the
    survey likelihood over them on equal-probability grids.
    """
    u = (np.arange(300) + 0.5) / 300
    se = stats.beta.ppf(u, 1 + sens[0], 1 + sens[1] - sens[0])[:, None]
    sp = stats.beta.ppf(u, 1 + spec[0], 1 + spec[1] - spec[0])[None, :]
    like = np.empty(len(grid))
    for i, p in enumerate(grid):
        q = p * se + (1 - p) * (1 - sp)
        like[i] = np.exp(y * np.log(q) + (n - y) * np.log1p(-q) + 250.0).mean()
    return like / like.sum()


@pytest.mark.slow
def test_bayesian_pooled_matches_quadrature_and_gelman_carpenter():
    ex = GC["pooled_april11"]
    y, n = GC["survey"]["positives"], GC["survey"]["tested"]
    res = imperfect_test.bayesian(
        y,
        n,
        ex["sensitivity_studies"],
        ex["specificity_studies"],
        random_seed=2020,
        sampler="pymc",
        chains=2,
    )
    grid = np.linspace(0, 0.06, 601)[1:]
    post = _pooled_posterior_by_quadrature(y, n, (103, 122), (399, 401), grid)
    cdf = np.cumsum(post)
    median = grid[np.searchsorted(cdf, 0.5)]
    # shortest 95% interval of the exact posterior (it starts at 0: the density decreases there)
    order = np.argsort(post)[::-1]
    inside = order[: np.searchsorted(np.cumsum(post[order]), 0.95) + 1]
    hdi_hi = grid[inside].max()
    assert res.estimate == pytest.approx(median, abs=0.0008)
    assert res.interval[1] == pytest.approx(hdi_hi, abs=0.0015)
    assert res.interval[0] < 0.003
    assert round(res.interval[1], 3) == pytest.approx(ex["hdi95_high"], abs=0.0015)
    assert res.details["converged"], res.details["warnings"]
    assert res.details["sampler"] == "pymc" and res.draws.shape == (2000,)
    se_post = res.details["sensitivity"]["median"]
    assert se_post == pytest.approx(stats.beta.median(104, 20), abs=0.01)


@pytest.mark.slow
def test_bayesian_hierarchical_reproduces_gelman_carpenter_strong_prior():
    ex = GC["hierarchical_april27"]
    ref = ex["tau_0.2"]
    res = imperfect_test.bayesian(
        GC["survey"]["positives"],
        GC["survey"]["tested"],
        [tuple(s) for s in ex["sensitivity_studies"]],
        [tuple(s) for s in ex["specificity_studies"]],
        hierarchical=True,
        hyper_sigma_scale=0.2,
        interval="eti",
        random_seed=2020,
    )
    d = res.details
    assert d["converged"], d["warnings"]
    lo, hi = res.interval
    assert [lo, res.estimate, hi] == pytest.approx(ref["prevalence"], abs=0.0012)
    for name in ("specificity", "sensitivity"):
        got = [d[name]["interval"][0], d[name]["median"], d[name]["interval"][1]]
        tol = 0.002 if name == "specificity" else 0.02
        assert got == pytest.approx(ref[name], abs=tol), name
    for name in ("mu_logit_spec", "mu_logit_sens", "sigma_logit_spec", "sigma_logit_sens"):
        h = d["hyperparameters"][name]
        got = [h["interval"][0], h["median"], h["interval"][1]]
        assert got == pytest.approx(ref[name], abs=0.12), name
