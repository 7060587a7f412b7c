"""Tests of risklab.estimators.frequency: frequency-of-detection population estimators.

Published numbers and closed forms (data and sources in tests/data/FREQUENCY_SOURCES.md),
identities between models, recovery and coverage on simulated populations of known size, input
validation, warnings, and (slow) the Bayesian fits.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from risklab.estimators import EstimatorInputError
from risklab.estimators import frequency as fr
from risklab.estimators._frequency_data import resolve_data, table_data
from risklab.estimators._frequency_regression import (
    ModelSpec,
    base_logprobs,
    cond_loglik,
    row_loglik,
)
from risklab.estimators.frequency import FrequencyEstimatorWarning, SparseFrequencyWarning
from risklab.priors import PriorError

DATA = Path(__file__).parent / "data"


def _load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


NL = _load("frequency_netherlands_immigrants.json")
NL_FREQ = {int(k): v for k, v in NL["frequencies"].items()}
RABBITS = _load("frequency_cottontail_rabbits.json")
RABBIT_FREQ = {int(k): v for k, v in RABBITS["frequencies"].items()}


def simulate(
    rng: np.random.Generator,
    n_total: int,
    *,
    lam: float | None = None,
    shape: float | None = None,
    mean: float | None = None,
    omega: float = 0.0,
) -> np.ndarray:
    """Frequency table of a simulated population of ``n_total`` offending traders.

    Poisson(lam) detections, or gamma(shape)-Poisson with the given mean; with ``omega`` a share
    of the traders detected at least once is deterred after the first takedown (count set to 1).
    """
    if shape is not None:
        y = rng.poisson(rng.gamma(shape, mean / shape, n_total))
    else:
        y = rng.poisson(lam, n_total)
    if omega:
        deterred = (y >= 2) & (rng.random(n_total) < omega)
        y[deterred] = 1
    return np.bincount(y)[1:]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrequencyEstimatorWarning)
        return fn(*args, **kwargs)


# =========================================================================== published numbers
def test_netherlands_table_is_the_published_one():
    assert sum(NL_FREQ.values()) == NL["observed"] == 1880
    assert sum(k * v for k, v in NL_FREQ.items()) / 1880 == pytest.approx(1.162, abs=5e-4)


def test_ztpoisson_reproduces_van_der_heijden_2003():
    est = fr.ztpoisson(NL_FREQ)
    pub = NL["published"]["ztpoisson_no_covariates"]
    assert round(est.estimate) == pub["estimate"]
    normal = (est.estimate - 1.959964 * est.se, est.estimate + 1.959964 * est.se)
    assert [round(x) for x in normal] == pub["ci95_normal"]
    assert est.details["parameters"]["lambda"] == pytest.approx(0.30862, abs=1e-5)
    # the profile interval is a little wider on the right: the estimate is skewed
    low, high = est.interval
    assert est.details["interval_method"] == "profile"
    assert 1880 < low < est.estimate < high
    assert high - est.estimate > est.estimate - low


def test_chao_closed_form_netherlands():
    f1, f2, n = 1645, 183, 1880
    classic = fr.chao_lower_bound(NL_FREQ, bias_corrected=False)
    assert classic.estimate == pytest.approx(NL["closed_form"]["chao"]["value"], rel=1e-12)
    assert classic.estimate == pytest.approx(n + f1**2 / (2 * f2), rel=1e-12)
    r = f1 / f2
    var = f2 * (r**4 / 4 + r**3 + r**2 / 2)  # Chao (1987)
    assert classic.se == pytest.approx(np.sqrt(var), rel=1e-12)
    f0 = f1**2 / (2 * f2)
    c = np.exp(1.959964 * np.sqrt(np.log(1 + var / f0**2)))
    assert classic.interval == pytest.approx((n + f0 / c, n + f0 * c), rel=1e-6)
    bc = fr.chao_lower_bound(NL_FREQ)
    assert bc.estimate == pytest.approx(NL["closed_form"]["chao_bias_corrected"]["value"])
    assert bc.estimate == pytest.approx(n + f1 * (f1 - 1) / (2 * (f2 + 1)))
    var_bc = (
        f1 * (f1 - 1) / (2 * (f2 + 1))
        + f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2)
        + f1**2 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4)
    )
    assert bc.se == pytest.approx(np.sqrt(var_bc))
    assert bc.details["lower_bound"] is True
    assert bc.observed == n


def test_zelterman_closed_form_netherlands():
    f1, f2, n = 1645, 183, 1880
    est = fr.zelterman(NL_FREQ)
    lam = 2 * f2 / f1
    assert est.details["lambda"] == pytest.approx(lam, rel=1e-10)
    assert est.estimate == pytest.approx(NL["closed_form"]["zelterman"]["value"], rel=1e-10)
    g = 1 - np.exp(-lam)
    var = n * np.exp(-lam) / g**2 + n**2 * lam**2 * np.exp(-2 * lam) / g**4 * (1 / f1 + 1 / f2)
    assert est.se == pytest.approx(np.sqrt(var), rel=1e-8)  # Böhning (2008) conditioning


def test_cottontail_rabbits_known_size():
    truth = RABBITS["known_population"]
    chao = fr.chao_lower_bound(RABBIT_FREQ, bias_corrected=False)
    assert chao.estimate == pytest.approx(RABBITS["closed_form"]["chao"]["value"])
    assert chao.interval[0] < truth < chao.interval[1]
    # Edwards & Eberhardt (1967): the Poisson estimator underestimates this heterogeneous population
    ztp = fr.ztpoisson(RABBIT_FREQ)
    assert ztp.interval[1] < truth
    assert ztp.estimate < chao.estimate


def test_one_inflated_ztpoisson_identities():
    """lambda-hat is the zero-one-truncated Poisson MLE; omega-hat reproduces f1."""
    f = NL_FREQ
    n = sum(f.values())
    ge2 = {k: v for k, v in f.items() if k >= 2}
    mean2 = sum(k * v for k, v in ge2.items()) / sum(ge2.values())

    def zot_mean(lam):
        return lam * -np.expm1(-lam) / (-np.expm1(-lam) - lam * np.exp(-lam)) - mean2

    lam = optimize.brentq(zot_mean, 1e-6, 20)
    est = fr.one_inflated_ztpoisson(f)
    assert est.details["parameters"]["lambda"] == pytest.approx(lam, rel=1e-5)
    q1 = lam * np.exp(-lam) / -np.expm1(-lam)
    omega = (f[1] / n - q1) / (1 - q1)
    assert est.details["parameters"]["omega"] == pytest.approx(omega, rel=1e-5)
    assert est.estimate == pytest.approx(n / -np.expm1(-lam), rel=1e-5)
    assert est.details["expected"][1] == pytest.approx(f[1], rel=1e-5)


def test_log_probabilities_match_scipy():
    data = table_data(np.array([5, 4, 3, 2, 1]))
    y = data.y
    lp0, lpos, lpy = base_logprobs(np.array([np.log(1.7)]), ModelSpec("poisson"), data)
    assert lpy == pytest.approx(stats.poisson.logpmf(y, 1.7))
    assert lp0 == pytest.approx(np.full(5, -1.7))
    mu, alpha = 1.3, 0.6
    r = 1 / alpha
    theta = np.array([np.log(mu), np.log(alpha)])
    lp0, lpos, lpy = base_logprobs(theta, ModelSpec("negbin"), data)
    p = r / (r + mu)
    assert lpy == pytest.approx(stats.nbinom.logpmf(y, r, p))
    assert np.exp(lp0) == pytest.approx(stats.nbinom.pmf(0, r, p))
    assert np.exp(lpos) == pytest.approx(stats.nbinom.sf(0, r, p))
    # one-inflated: the truncated probabilities sum to one over k >= 1
    grid = table_data(np.ones(80, dtype=int))
    spec = ModelSpec("negbin", one_inflated=True)
    theta = np.array([np.log(mu), np.log(alpha), special.logit(0.3)])
    assert np.exp(row_loglik(theta, spec, grid)).sum() == pytest.approx(1.0, abs=1e-10)


def test_ztp_profile_interval_matches_brute_force():
    f = np.array([60, 25, 9, 3, 1])
    n, s = f.sum(), (np.arange(1, 6) * f).sum()
    est = fr.ztpoisson(f, prob=0.9)
    grid = np.linspace(n, 600, 200001)
    lam = s / grid  # Poisson full likelihood: lambda_hat(N) = S / N
    loglik = (
        special.gammaln(grid + 1) - special.gammaln(grid - n + 1) - grid * lam + s * np.log(lam)
    )
    inside = grid[2 * (loglik.max() - loglik) <= stats.chi2.ppf(0.9, 1)]
    assert est.interval == pytest.approx((inside.min(), inside.max()), abs=0.05)


def test_ztnb_profile_interval_matches_independent_likelihood():
    """The numerical profile (inner maximisation over mu, alpha) against scipy's nbinom."""
    f = simulate(np.random.default_rng(8), 1000, shape=2.0, mean=1.5)
    ks = np.arange(1, f.size + 1)
    n = f.sum()
    est = fr.ztnb(f)

    def profile(total: float) -> float:
        def neg(par):
            r, p = 1 / np.exp(par[1]), 1 / (1 + np.exp(par[0] + par[1]))
            return -(
                special.gammaln(total + 1)
                - special.gammaln(total - n + 1)
                + (total - n) * stats.nbinom.logpmf(0, r, p)
                + np.sum(f * stats.nbinom.logpmf(ks, r, p))
            )

        starts = [(np.log(1.5), np.log(a)) for a in (0.3, 1.0)]
        return -min(optimize.minimize(neg, x0, method="Nelder-Mead",
                                      options={"xatol": 1e-9, "fatol": 1e-10}).fun
                    for x0 in starts)  # fmt: skip

    top = max(profile(t) for t in np.linspace(est.estimate - 4, est.estimate + 4, 5))
    crit = stats.chi2.ppf(0.95, 1)
    for limit in est.interval:
        assert 2 * (top - profile(limit)) == pytest.approx(crit, abs=0.05)


# =========================================================================== recovery / coverage
def test_ztpoisson_interval_coverage():
    rng = np.random.default_rng(20240611)
    n_total, reps = 400, 300
    hits_profile = hits_lognormal = 0
    for _ in range(reps):
        f = simulate(rng, n_total, lam=0.8)
        p = fr.ztpoisson(f, prob=0.9).interval
        ln = fr.ztpoisson(f, prob=0.9, interval="lognormal").interval
        hits_profile += p[0] <= n_total <= p[1]
        hits_lognormal += ln[0] <= n_total <= ln[1]
    assert abs(hits_profile / reps - 0.9) < 0.035
    assert abs(hits_lognormal / reps - 0.9) < 0.04


def test_ztnb_recovers_gamma_poisson_population_where_ztp_underestimates():
    rng = np.random.default_rng(7)
    n_total = 3000
    ztnb_est, ztp_est, ztnb_hits = [], [], 0
    for _ in range(8):
        f = simulate(rng, n_total, shape=1.0, mean=1.5)
        a = _quiet(fr.ztnb, f, interval="lognormal")
        b = fr.ztpoisson(f, interval="lognormal")
        ztnb_est.append(a.estimate)
        ztp_est.append(b.estimate)
        ztnb_hits += a.interval[0] <= n_total <= a.interval[1]
        assert b.interval[1] < n_total  # the homogeneous model is confidently wrong
    assert np.mean(ztnb_est) == pytest.approx(n_total, rel=0.05)
    assert np.mean(ztp_est) < 0.8 * n_total
    assert ztnb_hits >= 6


def test_chao_is_a_lower_bound_under_heterogeneity_and_unbiased_without():
    rng = np.random.default_rng(3)
    n_total = 2000
    hetero = [fr.chao_lower_bound(simulate(rng, n_total, shape=0.8, mean=1.0)).estimate
              for _ in range(30)]  # fmt: skip
    homo = [fr.chao_lower_bound(simulate(rng, n_total, lam=1.0)).estimate for _ in range(30)]
    assert np.mean(hetero) < 0.9 * n_total
    assert np.mean(homo) == pytest.approx(n_total, rel=0.02)


def test_one_inflated_models_recover_population_under_deterrence():
    rng = np.random.default_rng(11)
    n_total = 3000
    oi, base, chao, robust = [], [], [], []
    for _ in range(8):
        f = simulate(rng, n_total, lam=1.2, omega=0.4)
        oi.append(fr.one_inflated_ztpoisson(f, interval="lognormal"))
        base.append(fr.ztpoisson(f, interval="lognormal").estimate)
        chao.append(fr.chao_lower_bound(f).estimate)
        robust.append(fr.chao_lower_bound(f, one_inflation_robust=True).estimate)
    assert np.mean([e.estimate for e in oi]) == pytest.approx(n_total, rel=0.03)
    assert np.mean([e.details["parameters"]["omega"] for e in oi]) == pytest.approx(0.4, abs=0.03)
    assert sum(e.interval[0] <= n_total <= e.interval[1] for e in oi) >= 6
    assert np.mean(base) > 1.15 * n_total  # excess ones make the base model overestimate
    assert np.mean(chao) > 1.3 * n_total  # and Chao's bound even more
    assert np.mean(robust) < n_total  # the f2/f3 bound stays a lower bound


def test_one_inflated_models_agree_with_base_without_inflation():
    rng = np.random.default_rng(12)
    for _ in range(5):
        f = simulate(rng, 3000, lam=1.2)
        a = fr.one_inflated_ztpoisson(f, interval="lognormal")
        b = fr.ztpoisson(f, interval="lognormal")
        assert a.estimate == pytest.approx(b.estimate, rel=0.03)
        assert a.details["parameters"]["omega"] < 0.05


def test_one_inflated_ztnb_recovers_heterogeneous_deterred_population():
    rng = np.random.default_rng(13)
    n_total = 4000
    estimates = []
    for _ in range(4):
        f = simulate(rng, n_total, shape=2.0, mean=2.0, omega=0.4)
        estimates.append(_quiet(fr.one_inflated_ztnb, f, interval="lognormal").estimate)
    assert np.median(estimates) == pytest.approx(n_total, rel=0.08)


def test_ztnb_reduces_to_ztpoisson_on_poisson_data():
    f = simulate(np.random.default_rng(6), 2000, lam=1.0)
    a = fr.ztnb(f)
    b = fr.ztpoisson(f)
    assert "alpha -> 0: no overdispersion, the NB has reduced to the Poisson" in a.details["notes"]
    assert a.estimate == pytest.approx(b.estimate, rel=1e-3)
    assert a.interval == pytest.approx(b.interval, rel=1e-3)
    # with some sampling overdispersion the NB stays close and its interval covers the ZTP's
    f = simulate(np.random.default_rng(5), 2000, lam=1.0)
    a, b = fr.ztnb(f), fr.ztpoisson(f)
    assert a.details["parameters"]["alpha"] < 0.1
    assert a.estimate == pytest.approx(b.estimate, rel=0.05)
    assert a.interval[0] < b.estimate < a.interval[1]


# =========================================================================== covariates
def _tier_data(seed: int = 0, n_total: int = 3000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    tier = rng.choice(["small", "medium", "large"], size=n_total, p=[0.5, 0.3, 0.2])
    lam = np.select([tier == "small", tier == "medium"], [0.3, 0.8], 2.0)
    y = rng.poisson(lam)
    return pd.DataFrame({"count": y, "tier": tier})[y > 0].reset_index(drop=True), tier


def test_saturated_covariate_equals_sum_over_strata():
    df, _ = _tier_data()
    strata = {g: sub["count"].value_counts().to_dict() for g, sub in df.groupby("tier")}
    ztp = fr.ztpoisson(covariates=df)
    assert ztp.estimate == pytest.approx(sum(fr.ztpoisson(t).estimate for t in strata.values()))
    assert ztp.details["interval_method"] == "lognormal"
    zelt = fr.zelterman(covariates=df)
    assert zelt.estimate == pytest.approx(sum(fr.zelterman(t).estimate for t in strata.values()))
    assert set(zelt.details["coefficients"]) == {"intercept", "tier[medium]", "tier[small]"}


def test_covariate_input_forms_agree():
    df, _ = _tier_data(1)
    grouped = df.groupby(["count", "tier"]).size().rename("traders").reset_index()
    a = fr.ztpoisson(covariates=df).estimate
    b = fr.ztpoisson(df, covariates=["tier"]).estimate
    c = fr.ztpoisson(covariates=grouped).estimate
    d = fr.ztpoisson(df["count"].value_counts().to_dict(), covariates=df).estimate
    assert a == pytest.approx(b) == pytest.approx(c) == pytest.approx(d)
    # a trader DataFrame without covariates is just its frequency table
    assert fr.ztpoisson(df).estimate == pytest.approx(
        fr.ztpoisson(df["count"].value_counts()).estimate
    )


def test_numeric_covariate_explains_heterogeneity():
    rng = np.random.default_rng(4)
    n_total = 3000
    size = rng.normal(50, 10, n_total)
    y = rng.poisson(np.exp(-0.5 + 0.07 * (size - 50)))
    df = pd.DataFrame({"count": y, "size": size})[y > 0]
    with_cov = fr.ztpoisson(covariates=df)
    without = fr.ztpoisson(df)
    assert with_cov.interval[0] <= n_total <= with_cov.interval[1]
    assert abs(with_cov.estimate - n_total) < abs(without.estimate - n_total)
    assert with_cov.details["theta"]["beta[size (standardised)]"] == pytest.approx(0.7, abs=0.15)
    zelt = fr.zelterman(covariates=df)
    assert zelt.interval[0] <= n_total <= zelt.interval[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"covariates": pd.DataFrame({"count": [1, 2, 1], "x": [1, 1, 1]})}, "constant"),
        ({"covariates": pd.DataFrame({"count": [1, 2, 1], "x": [1.0, np.nan, 2]})}, "missing"),
        ({"covariates": pd.DataFrame({"k": [1, 2], "x": [1, 2]})}, "'count' column"),
        ({"covariates": pd.DataFrame({"count": [0, 2], "x": [1, 2]})}, ">= 1"),
        (
            {
                "covariates": pd.DataFrame(
                    {"count": [1, 2, 3, 1], "a": [0, 1, 0, 1.0], "b": [0, 2, 0, 2.0]}
                )
            },
            "collinear",
        ),
        ({"covariates": "tier"}, "covariates must be"),
    ],
)
def test_covariate_errors(kwargs, match):
    with pytest.raises(EstimatorInputError, match=match):
        fr.ztpoisson(**kwargs)


def test_profile_interval_needs_no_covariates_and_freq_must_match():
    df, _ = _tier_data(2)
    with pytest.raises(EstimatorInputError, match="profile"):
        fr.ztpoisson(covariates=df, interval="profile")
    with pytest.raises(EstimatorInputError, match="disagree"):
        fr.ztpoisson({1: 5, 2: 3}, covariates=df)
    with pytest.raises(EstimatorInputError, match="not in the trader data"):
        fr.ztpoisson(df, covariates=["nope"])


# =========================================================================== input handling
@pytest.mark.parametrize(
    "freq",
    [
        {1: 43, 2: 16, 3: 8, 4: 6, 6: 2, 7: 1},
        {1: 43, 2: 16, 3: 8, 4: 6, 5: 0, 6: 2, 7: 1},
        [43, 16, 8, 6, 0, 2, 1],
        np.array([43, 16, 8, 6, 0, 2, 1]),
        np.array([43.0, 16, 8, 6, 0, 2, 1]),
        pd.Series([43, 16, 8, 6, 2, 1], index=[1, 2, 3, 4, 6, 7]),
        pd.DataFrame({"count": [1, 2, 3, 4, 6, 7], "traders": [43, 16, 8, 6, 2, 1]}),
        pd.DataFrame({"strikes": np.repeat([1, 2, 3, 4, 6, 7], [43, 16, 8, 6, 2, 1])}),
    ],
)
def test_frequency_input_forms_are_equivalent(freq):
    est = fr.chao_lower_bound(freq)
    assert est.estimate == pytest.approx(fr.chao_lower_bound(RABBIT_FREQ).estimate)
    assert est.details["frequencies"] == {k: v for k, v in RABBIT_FREQ.items() if v}
    assert est.observed == 76


@pytest.mark.parametrize(
    ("freq", "match"),
    [
        ({1: -3, 2: 1}, "non-negative"),
        ({1: 2.5, 2: 1}, "whole numbers"),
        ({0: 4, 1: 3, 2: 1}, "k >= 1"),
        ({"1": 4, 2: 1}, "detection counts"),
        ({True: 4}, "detection counts"),
        ({}, "empty"),
        ([0, 0, 0], "no trader"),
        ([[1, 2], [3, 4]], "1-D"),
        ([3, np.nan, 1], "finite"),
        ("1645,183", "dict"),
        (None, "dict"),
    ],
)
def test_invalid_frequency_tables(freq, match):
    with pytest.raises(EstimatorInputError, match=match):
        fr.chao_lower_bound(freq)
    assert issubclass(EstimatorInputError, ValueError)


def test_not_identified_and_invalid_arguments():
    with pytest.raises(EstimatorInputError, match="more than once"):
        fr.ztpoisson({1: 10})
    with pytest.raises(EstimatorInputError, match="three or more"):
        fr.one_inflated_ztpoisson({1: 10, 2: 5})
    with pytest.raises(EstimatorInputError, match="once and twice"):
        _quiet(fr.zelterman, {1: 10, 3: 5})
    with pytest.raises(EstimatorInputError, match="bias_corrected"):
        _quiet(fr.chao_lower_bound, {1: 10, 3: 2}, bias_corrected=False)
    with pytest.raises(EstimatorInputError, match="prob"):
        fr.ztpoisson(NL_FREQ, prob=1.5)
    with pytest.raises(EstimatorInputError, match="method"):
        fr.ztpoisson(NL_FREQ, method="em")
    with pytest.raises(EstimatorInputError, match="interval"):
        fr.ztpoisson(NL_FREQ, interval="wald")
    # the bias-corrected Chao is defined with f2 = 0
    with pytest.warns(SparseFrequencyWarning):
        est = fr.chao_lower_bound({1: 10, 3: 2})
    assert est.estimate == pytest.approx(12 + 10 * 9 / 2)


# =========================================================================== warnings
def test_sparse_frequencies_warn():
    f = {1: 30, 2: 4, 3: 1}

    def sparse_messages(fn, *args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = fn(*args, **kwargs)
        sparse = [str(w.message) for w in caught if w.category is SparseFrequencyWarning]
        assert sparse == [m for m in est.details["warnings"] if "unstable" in m]
        return sparse

    assert [m[:6] for m in sparse_messages(fr.chao_lower_bound, f)] == ["f2 = 4"]
    robust = sparse_messages(fr.chao_lower_bound, f, one_inflation_robust=True)
    assert [m[:6] for m in robust] == ["f2 = 4", "f3 = 1"]
    assert [m[:6] for m in sparse_messages(fr.zelterman, f)] == ["f2 = 4"]
    oi = sparse_messages(fr.one_inflated_ztpoisson, f)
    assert [m[:6] for m in oi] == ["f2 = 4", "f3 = 1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fr.chao_lower_bound(NL_FREQ).details["warnings"] == []


def test_ztnb_log_series_limit_has_no_finite_estimate():
    """On the Dutch table the ZTNB likelihood rises towards alpha -> infinity (excess ones)."""
    with pytest.warns(FrequencyEstimatorWarning) as caught:
        est = fr.ztnb(NL_FREQ)
    assert any("MLE of N does not exist" in str(w.message) for w in caught)
    assert est.estimate == np.inf
    assert est.interval == (1880.0, np.inf)
    # allowing for one-inflation gives a finite (if very uncertain) answer
    oi = _quiet(fr.one_inflated_ztnb, NL_FREQ)
    assert np.isfinite(oi.estimate)
    assert oi.estimate > fr.one_inflated_ztpoisson(NL_FREQ).estimate


# =========================================================================== compare
def test_compare_table():
    table = fr.compare(NL_FREQ)
    assert list(table.columns) == ["estimator", "estimate", "low", "high", "se", "AIC", "notes"]
    assert list(table["estimator"]) == [
        "chao",
        "chao_one_inflation_robust",
        "zelterman",
        "ztpoisson",
        "ztnb",
        "one_inflated_ztpoisson",
        "one_inflated_ztnb",
    ]
    rows = table.set_index("estimator")
    assert rows.loc[["chao", "zelterman"], "AIC"].isna().all()
    assert rows.loc["ztpoisson", "estimate"] == pytest.approx(7079.93, abs=0.01)
    assert "lower bound" in rows.loc["chao", "notes"]
    assert "does not exist" in rows.loc["ztnb", "notes"]
    # one-inflation is what these data show: both one-inflated models beat the ZTP by far
    assert rows.loc["one_inflated_ztpoisson", "AIC"] < rows.loc["ztpoisson", "AIC"] - 40
    # an estimator that cannot run on a table is reported, not raised
    small = fr.compare({1: 20, 2: 6})
    assert np.isnan(small.set_index("estimator").loc["one_inflated_ztpoisson", "estimate"])
    assert "three or more" in small.set_index("estimator").loc["one_inflated_ztpoisson", "notes"]


# =========================================================================== Bayesian
def test_bayesian_arguments_are_checked_before_sampling():
    with pytest.raises(PriorError, match="unknown prior"):
        fr.ztpoisson(NL_FREQ, method="bayes", priors={"log_alpha": {"dist": "Normal"}})
    with pytest.raises(EstimatorInputError, match="interval applies"):
        fr.ztpoisson(NL_FREQ, method="bayes", interval="profile")
    with pytest.raises(EstimatorInputError, match="draws"):
        fr.ztnb(NL_FREQ, method="bayes", draws=0)


@pytest.mark.slow
def test_pymc_likelihood_equals_numpy_likelihood():
    import pytensor

    from risklab.estimators._frequency_bayes import build_model, default_priors

    df, _ = _tier_data(3, 400)
    data = resolve_data(None, df)
    for spec in [
        ModelSpec("poisson"),
        ModelSpec("negbin"),
        ModelSpec("poisson", one_inflated=True),
        ModelSpec("negbin", one_inflated=True),
    ]:
        model, loglik = build_model(spec, data, default_priors(spec))
        inputs = [model["beta"]]
        args = [np.array([0.3, -0.2, 0.1])]
        theta = list(args[0])
        if spec.family == "negbin":
            inputs.append(model["log_alpha"])
            args.append(np.array(0.4))
            theta.append(0.4)
        if spec.one_inflated:
            inputs.append(model["omega"])
            args.append(np.array(0.25))
            theta.append(special.logit(0.25))
        fn = pytensor.function(inputs, loglik)
        assert float(fn(*args)) == pytest.approx(
            float(cond_loglik(np.array(theta), spec, data)), rel=1e-10
        )


@pytest.mark.slow
def test_bayes_ztpoisson_matches_mle_and_is_reproducible():
    kwargs = {"method": "bayes", "random_seed": 42, "draws": 1000, "tune": 1000}
    est = fr.ztpoisson(NL_FREQ, **kwargs)
    mle = fr.ztpoisson(NL_FREQ)
    assert est.details["converged"], est.details["warnings"]
    assert est.draws.shape == (2000,)
    assert est.draws.min() >= 1880
    assert est.estimate == pytest.approx(mle.estimate, rel=0.015)
    assert est.interval == pytest.approx(mle.interval, rel=0.03)
    assert est.se == pytest.approx(mle.se, rel=0.15)
    idata = est.details["idata"]
    assert set(idata["posterior"].data_vars) >= {"beta", "N", "n0"}
    again = fr.ztpoisson(NL_FREQ, **kwargs)
    np.testing.assert_array_equal(est.draws, again.draws)


@pytest.mark.slow
def test_bayes_one_inflated_ztnb_recovers_simulated_population():
    n_total = 3000
    f = simulate(np.random.default_rng(21), n_total, shape=2.0, mean=2.0, omega=0.4)
    est = _quiet(fr.one_inflated_ztnb, f, method="bayes", random_seed=1, draws=1000, tune=1000)
    assert est.interval[0] <= n_total <= est.interval[1]
    assert est.details["parameters"]["omega"] == pytest.approx(0.4, abs=0.1)
    assert est.details["diagnostics"]["divergences"] == 0
    assert est.details["priors"]["omega"]["dist"] == "Beta"


@pytest.mark.slow
def test_bayes_ztpoisson_with_covariates():
    df, tier = _tier_data(6, 2000)
    est = fr.ztpoisson(covariates=df, method="bayes", random_seed=3, draws=1000, tune=1000)
    mle = fr.ztpoisson(covariates=df)
    assert est.estimate == pytest.approx(mle.estimate, rel=0.03)
    assert est.interval[0] <= len(tier) <= est.interval[1]
