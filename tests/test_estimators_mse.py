"""Tests of risklab.estimators.mse (capture–recapture / multiple-systems estimation).

Published numbers and their sources are in tests/data/README.md.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from risklab.estimators import (
    EstimatorInputError,
    EstimatorWarning,
    PopulationEstimate,
    mse,
)
from risklab.estimators._loglinear_bayes import build_bayes_model
from risklab.estimators._validation import (
    all_histories,
    normalise_interactions,
    validate_capture_table,
)

DATA = Path(__file__).parent / "data"


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"mse_{name}.csv")


def table_from_units(X: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Aggregate a units x lists 0/1 matrix into an estimator table (observed histories only)."""
    L = X.shape[1]
    codes = X @ (1 << np.arange(L - 1, -1, -1))
    counts = np.bincount(codes, minlength=2**L)[1:]
    H = all_histories(L)
    keep = counts > 0
    frame = pd.DataFrame(H[keep], columns=names)
    frame["count"] = counts[keep]
    return frame


def simulate_units(rng: np.random.Generator, sizes, probs) -> np.ndarray:
    """Units of several strata, each with its own list capture probabilities."""
    blocks = [
        (rng.uniform(size=(n, len(p))) < np.asarray(p)).astype(np.int64)
        for n, p in zip(sizes, probs, strict=True)
    ]
    return np.vstack(blocks)


# ---------------------------------------------------------------------------------------------
# input validation


def test_rejects_non_dataframe():
    with pytest.raises(EstimatorInputError, match="pandas DataFrame"):
        mse.loglinear({"A": [1], "B": [0], "count": [3]})


def test_rejects_missing_count_column():
    with pytest.raises(EstimatorInputError, match="no 'count' column"):
        mse.loglinear(pd.DataFrame({"A": [1, 0], "B": [0, 1], "n": [3, 4]}))


def test_rejects_single_list():
    with pytest.raises(EstimatorInputError, match="at least 2 lists"):
        mse.loglinear(pd.DataFrame({"A": [1], "count": [3]}))


def test_rejects_non_binary_entry_and_names_row_and_column():
    t = pd.DataFrame({"A": [1, 2, 0], "B": [1, 0, 1], "count": [5, 3, 4]}, index=["r1", "r2", "r3"])
    with pytest.raises(EstimatorInputError, match=r"'A'.*'r2'"):
        mse.loglinear(t)


@pytest.mark.parametrize(
    ("count", "message"),
    [(-1, "non-negative"), (2.5, "whole numbers"), (np.nan, "non-negative integers")],
)
def test_rejects_bad_counts(count, message):
    t = pd.DataFrame({"A": [1, 1, 0], "B": [1, 0, 1], "count": [5.0, count, 4.0]})
    with pytest.raises(EstimatorInputError, match=message):
        mse.loglinear(t)


def test_rejects_all_zero_history():
    t = pd.DataFrame({"A": [1, 0, 0], "B": [1, 1, 0], "count": [5, 3, 9]})
    with pytest.raises(EstimatorInputError, match="all-zero capture history"):
        mse.loglinear(t)


def test_rejects_duplicate_histories():
    t = pd.DataFrame({"A": [1, 1, 0], "B": [0, 0, 1], "count": [5, 3, 9]})
    with pytest.raises(EstimatorInputError, match="appears in several rows"):
        mse.loglinear(t)


def test_rejects_list_with_no_capture():
    t = pd.DataFrame({"A": [1, 0], "B": [1, 1], "C": [0, 0], "count": [5, 3]})
    with pytest.raises(EstimatorInputError, match=r"\['C'\] captured nobody"):
        mse.loglinear(t)


def test_missing_histories_count_as_zero():
    ct = validate_capture_table(pd.DataFrame({"A": [1], "B": [1], "count": [7]}).iloc[:, :])
    assert ct.counts.tolist() == [0, 0, 7]  # histories 01, 10, 11


@pytest.mark.parametrize(
    ("interactions", "message"),
    [
        ([("A", "Z")], "unknown list"),
        ([("A",)], "single list"),
        ([("A", "A")], "repeats a list"),
        ([("A", "B", "C")], "highest-order interaction is never identifiable"),
    ],
)
def test_rejects_bad_interactions(interactions, message):
    with pytest.raises(EstimatorInputError, match=message):
        mse.loglinear(
            load("darroch1993_r3").rename(columns={"c1": "A", "c2": "B", "c3": "C"}),
            interactions=interactions,
        )


def test_refuses_interaction_between_lists_that_never_overlap():
    t = pd.DataFrame(
        {
            "A": [1, 0, 0, 1, 0],
            "B": [0, 1, 0, 1, 1],
            "C": [0, 0, 1, 0, 1],
            "count": [40, 30, 20, 10, 5],
        }
    )  # nobody is on both A and C
    with pytest.raises(EstimatorInputError, match=r"Lists 'A' and 'C' never overlap"):
        mse.loglinear(t, interactions=[("A", "C")])
    with pytest.raises(EstimatorInputError, match="never overlap"):
        mse.loglinear(t, interactions=[("A", "C")], method="bayes")
    # the same table is fine with an interaction between overlapping lists
    assert np.isfinite(mse.loglinear(t, interactions=[("A", "B")]).estimate)


def test_rejects_bad_options():
    t = load("seber1982_p107")
    with pytest.raises(EstimatorInputError, match="'method'"):
        mse.loglinear(t, method="em")
    with pytest.raises(EstimatorInputError, match="'prob'"):
        mse.loglinear(t, prob=95)
    with pytest.raises(EstimatorInputError, match="'sampler'"):
        mse.loglinear(t, method="bayes", sampler="stan")
    with pytest.raises(EstimatorInputError, match="'n_classes'"):
        mse.latent_class(t, n_classes=0)


def test_hierarchical_closure_and_string_terms():
    lists = ("A", "B", "C", "D")
    assert normalise_interactions([("C", "A", "B")], lists) == (
        ("A", "B"),
        ("A", "C"),
        ("B", "C"),
        ("A", "B", "C"),
    )
    assert normalise_interactions([("A", "B", "C")], lists, hierarchical=False) == (
        ("A", "B", "C"),
    )
    assert normalise_interactions(["B:A", ("A", "B")], lists) == (("A", "B"),)


# ---------------------------------------------------------------------------------------------
# closed forms


def test_two_lists_independence_equals_lincoln_petersen():
    rng = np.random.default_rng(7)
    for _ in range(25):
        n11, n10, n01 = rng.integers(1, 500, size=3)
        t = pd.DataFrame({"A": [1, 1, 0], "B": [1, 0, 1], "count": [n11, n10, n01]})
        res = mse.loglinear(t)
        n1, n2 = n11 + n10, n11 + n01
        assert res.estimate == pytest.approx(n1 * n2 / n11, rel=1e-10)
        assert res.unobserved == pytest.approx(n10 * n01 / n11, rel=1e-10)
        # var(beta_0) = 1/n10 + 1/n01 + 1/n11 for the saturated 2 x 2 model
        mu0 = n10 * n01 / n11
        se = math.sqrt(mu0 + mu0**2 * (1 / n10 + 1 / n01 + 1 / n11))
        assert res.se == pytest.approx(se, rel=1e-8)
        assert res.details["df"] == 0 and res.details["deviance"] == pytest.approx(0, abs=1e-8)


def test_seber_example_against_chapman_and_rcapture():
    res = mse.loglinear(load("seber1982_p107"))
    n1, n2, m = 948, 421, 167
    chapman = (n1 + 1) * (n2 + 1) / (m + 1) - 1
    assert round(chapman, 1) == 2382.8  # Rcapture closedp.bc(X, m="Mt")
    assert abs(res.estimate - chapman) < 0.1 * res.se  # the two agree to a fraction of an SE
    assert res.observed == 1202


def test_two_list_profile_interval_matches_direct_computation():
    """Cormack's multinomial profile for two lists has p_j = n_j / N in closed form."""
    t = load("seber1982_p107")
    res = mse.loglinear(t, prob=0.9)
    n, n1, n2 = 1202, 948, 421

    def prof(N):
        out = special.gammaln(N + 1) - special.gammaln(N - n + 1)
        for k in (n1, n2):
            out += k * np.log(k / N) + (N - k) * np.log1p(-k / N)
        return out

    opt = optimize.minimize_scalar(
        lambda N: -prof(N), bounds=(n + 1, 10 * n), method="bounded", options={"xatol": 1e-8}
    )
    target = -opt.fun - stats.chi2.ppf(0.9, 1) / 2
    low = optimize.brentq(lambda N: prof(N) - target, n + 1, opt.x)
    high = optimize.brentq(lambda N: prof(N) - target, opt.x, 10 * n)
    assert res.interval[0] == pytest.approx(low, rel=1e-6)
    assert res.interval[1] == pytest.approx(high, rel=1e-6)
    assert res.details["multinomial_mle"] == pytest.approx(opt.x, rel=1e-5)  # flat at the top
    assert res.prob == 0.9


# ---------------------------------------------------------------------------------------------
# published results


def _published_rows():
    frame = pd.read_csv(DATA / "mse_published_results.csv", keep_default_na=True)
    frame["interactions"] = frame["interactions"].fillna("")
    return [row for _, row in frame.iterrows()]


@pytest.mark.parametrize(
    "row", _published_rows(), ids=lambda r: f"{r['dataset']}[{r['interactions'] or 'indep'}]"
)
def test_loglinear_reproduces_published_results(row):
    terms = [t.split(":") for t in row["interactions"].split(";") if t]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimatorWarning)
        res = mse.loglinear(load(row["dataset"]), interactions=terms)
    d = res.details

    def check(value, published, digits):
        if pd.isna(published):
            return
        if np.isinf(published):
            assert np.isinf(value)
            return
        assert round(value, int(digits)) == pytest.approx(published, abs=1e-9), (value, published)

    check(res.estimate, row["N"], row["N_digits"] if not pd.isna(row["N_digits"]) else 0)
    check(res.se, row["se"], row["se_digits"])
    check(max(d["deviance"], 0.0), row["deviance"], row["deviance_digits"])
    check(d["AIC"], row["AIC"], row["AIC_digits"])
    check(res.interval[0], row["low"], row["ci_digits"])
    check(res.interval[1], row["high"], row["ci_digits"])
    if not pd.isna(row["df"]):
        assert d["df"] == int(row["df"])


def test_non_existent_mle_is_flagged_not_reported_as_a_number():
    t = load("cormack2000_4lists")
    pairs = [f"c{i}:c{j}" for i in range(1, 5) for j in range(i + 1, 5)]
    with pytest.warns(EstimatorWarning, match="does not exist"):
        res = mse.loglinear(t, interactions=pairs)
    assert math.isinf(res.estimate) and math.isinf(res.interval[1]) and math.isinf(res.se)
    assert res.details["n_unbounded"] and not res.details["mle_exists"]
    assert any("infinite" in w for w in res.details["warnings"])


def test_extended_mle_is_finite_but_flagged():
    t = load("cormack2000_4lists")
    with pytest.warns(EstimatorWarning, match="extended MLE"):
        res = mse.loglinear(t, interactions=["c1:c2", "c1:c3", "c3:c4"])
    assert round(res.estimate) == 218 and not res.details["mle_exists"]
    assert not res.details["n_unbounded"]


def test_well_posed_fit_has_no_warnings_and_reports_fit_statistics():
    with warnings.catch_warnings():
        warnings.simplefilter("error", EstimatorWarning)
        res = mse.loglinear(load("bruno1994_diabetes"), interactions=["c1:c3", "c2:c4", "c3:c4"])
    d = res.details
    assert isinstance(res, PopulationEstimate) and res.draws is None
    assert d["warnings"] == [] and d["mle_exists"]
    assert set(d["coefficients"]) == {
        "(Intercept)",
        "c1",
        "c2",
        "c3",
        "c4",
        "c1:c3",
        "c2:c4",
        "c3:c4",
    }
    assert d["fitted"]["fitted"].sum() == pytest.approx(res.observed, rel=1e-8)
    assert res.interval[0] < res.estimate < res.interval[1]
    assert d["p_value"] == pytest.approx(stats.chi2.sf(d["deviance"], 7))


def test_hierarchical_kosovo_model_matches_sparsemse():
    kos = load("kosovo_ball2002")
    full = mse.loglinear(
        kos, interactions=[("EXH", "OSCE", "HRW"), ("EXH", "ABA"), ("ABA", "OSCE")]
    )
    assert round(full.estimate, 2) == 18393.31
    # without the hierarchical closure only the three-way term is added: a different model
    bare = mse.loglinear(kos, interactions=[("EXH", "OSCE", "HRW")], hierarchical=False)
    assert bare.details["interactions"] == [["EXH", "OSCE", "HRW"]]
    assert bare.estimate != pytest.approx(full.estimate, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# coverage by simulation


def _coverage(rng, reps, sizes, probs, interactions, prob):
    N = sum(sizes)
    hits = 0
    for _ in range(reps):
        X = simulate_units(rng, sizes, probs)
        X = X[X.sum(axis=1) > 0]
        res = mse.loglinear(
            table_from_units(X, ["A", "B", "C"]), interactions=interactions, prob=prob
        )
        hits += res.interval[0] <= N <= res.interval[1]
    return hits / reps


def test_profile_interval_coverage_independent_lists():
    rng = np.random.default_rng(20240601)
    cover = _coverage(rng, 400, [400], [[0.3, 0.25, 0.35]], (), 0.9)
    assert 0.86 <= cover <= 0.94, cover


@pytest.mark.slow
def test_profile_interval_coverage_with_dependence():
    """Two strata make A and B positively dependent; the A:B model is then correct."""
    rng = np.random.default_rng(99)
    # within a stratum lists are independent; strata differ only in A and B jointly,
    # with C the same in both, so the A:B interaction model holds exactly
    cover = _coverage(rng, 250, [300, 200], [[0.15, 0.2, 0.3], [0.6, 0.5, 0.3]], [("A", "B")], 0.9)
    assert 0.85 <= cover <= 0.95, cover


# ---------------------------------------------------------------------------------------------
# compare


def test_compare_lists_models_side_by_side():
    t = load("darroch1993_r3")
    out = mse.compare(t, include_latent_class=False)
    assert list(out.columns[:6]) == ["model", "estimate", "low", "high", "AIC", "notes"]
    assert out["model"].iloc[0] == "independence"
    assert {"c1:c2", "c1:c3", "c2:c3", "all two-list interactions"} <= set(out["model"])
    row = out.set_index("model").loc["c1:c2"]
    single = mse.loglinear(t, interactions=[("c1", "c2")])
    assert row["estimate"] == pytest.approx(single.estimate)
    assert row["AIC"] == pytest.approx(single.details["AIC"])
    assert out["delta_AIC"].min() == 0
    assert "poor fit" in out.set_index("model").loc["independence", "notes"]
    spread = out.attrs["spread"]
    assert spread["ratio"] == pytest.approx(spread["max"] / spread["min"]) and spread["ratio"] > 2


def test_compare_keeps_refused_and_unbounded_models_with_reasons():
    t = pd.DataFrame(
        {
            "A": [1, 0, 0, 1, 0],
            "B": [0, 1, 0, 1, 1],
            "C": [0, 0, 1, 0, 1],
            "count": [40, 30, 20, 10, 5],
        }
    )  # nobody is on both A and C
    out = mse.compare(t, include_latent_class=False).set_index("model")
    assert np.isnan(out.loc["A:C", "estimate"])
    assert (
        out.loc["A:C", "notes"].startswith("refused") and "never overlap" in out.loc["A:C", "notes"]
    )
    assert np.isfinite(out.loc["independence", "estimate"])
    custom = mse.compare(t, models={"mine": ["A:B"]}, include_latent_class=False)
    assert custom["model"].tolist() == ["mine"]


# ---------------------------------------------------------------------------------------------
# Bayesian log-linear: the model (fast) and its fit (slow)


def test_bayes_model_log_density_matches_closed_form():
    """The whitened PyMC model must equal Poisson likelihood x Normal priors (up to a constant)."""
    t = load("darroch1993_r3")
    ct = validate_capture_table(t)
    terms = normalise_interactions([("c1", "c2")], ct.lists)
    model = build_bayes_model(ct, terms, prior_sigma=5.0)
    logp = model.compile_logp(mode="FAST_COMPILE")
    det = model.compile_fn(
        [model["mean_log_cell"], model["beta"]],
        inputs=[model["z"]],
        point_fn=False,
        mode="FAST_COMPILE",
    )
    y = ct.counts
    X = np.column_stack([ct.histories, ct.histories[:, 0] * ct.histories[:, 1]]).astype(float)
    Zc = X - X.mean(axis=0)
    diffs = []
    rng = np.random.default_rng(3)
    for _ in range(3):
        point = {"z": rng.normal(size=5)}
        a, beta = det(point["z"])
        eta = a + Zc @ beta
        ref = (
            stats.poisson.logpmf(y, np.exp(eta)).sum()
            + stats.norm.logpdf(a, np.log(y.mean() + 0.5), 10)
            + stats.norm.logpdf(beta, 0, 5).sum()
        )
        diffs.append(logp(point) - ref)
    assert np.ptp(diffs) < 1e-8


@pytest.mark.slow
def test_bayes_loglinear_agrees_with_likelihood_under_weak_priors():
    t = load("darroch1993_r3")
    inter = [("c1", "c2"), ("c2", "c3")]
    mle = mse.loglinear(t, interactions=inter)
    res = mse.loglinear(t, interactions=inter, method="bayes", random_seed=11, draws=1000, tune=800)
    d = res.details
    assert d["converged"], d["warnings"]
    assert res.draws is not None and res.draws.shape == (4000,)
    assert res.estimate == pytest.approx(mle.details["multinomial_mle"], rel=0.06)
    assert res.interval[0] == pytest.approx(mle.interval[0], rel=0.08)
    assert res.interval[1] == pytest.approx(mle.interval[1], rel=0.12)
    assert res.se == pytest.approx(np.std(res.draws, ddof=1))
    assert d["random_seed"] == 11 and d["sampler"] == "nutpie"
    # the unobserved count is drawn per posterior draw: N is an integer above the observed count
    assert np.all(res.draws >= res.observed) and np.all(res.draws == np.round(res.draws))


# ---------------------------------------------------------------------------------------------
# latent class


def _exact_mt_posterior(ct):
    """Posterior of N under independent lists, uniform capture priors and p(N) ∝ 1/N."""
    n = ct.n_observed
    Ns = np.arange(n, 30 * n)
    logp = -np.log(Ns) + special.gammaln(Ns + 1) - special.gammaln(Ns - n + 1)
    for k in ct.list_totals():
        logp += special.betaln(k + 1, Ns - k + 1)
    p = np.exp(logp - logp.max())
    return Ns, p / p.sum()


def _exact_quantiles(Ns, p, qs):
    c = np.cumsum(p)
    return np.array([Ns[np.searchsorted(c, q)] for q in qs])


def test_latent_class_with_one_class_matches_exact_posterior_numpy_engine():
    t = load("darroch1993_r3")
    ct = validate_capture_table(t)
    Ns, p = _exact_mt_posterior(ct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimatorWarning)
        res = mse.latent_class(
            t, n_classes=1, draws=1500, burn=100, thin=1, chains=2, random_seed=5, engine="numpy"
        )
    q = _exact_quantiles(Ns, p, [0.025, 0.5, 0.975])
    lo, med, hi = np.quantile(res.draws, [0.025, 0.5, 0.975])
    assert med == pytest.approx(q[1], abs=2)
    assert lo == pytest.approx(q[0], abs=3) and hi == pytest.approx(q[2], abs=3)
    assert res.draws.mean() == pytest.approx((Ns * p).sum(), abs=1.0)


@pytest.mark.slow
def test_latent_class_with_one_class_matches_exact_posterior_numba_engine():
    t = load("bruno1994_diabetes")
    ct = validate_capture_table(t)
    Ns, p = _exact_mt_posterior(ct)
    res = mse.latent_class(t, n_classes=1, draws=5000, burn=500, thin=2, chains=2, random_seed=8)
    q = _exact_quantiles(Ns, p, [0.025, 0.5, 0.975])
    assert np.quantile(res.draws, 0.5) == pytest.approx(q[1], abs=2)
    assert np.quantile(res.draws, [0.025, 0.975]) == pytest.approx(q[[0, 2]], abs=4)
    assert res.details["converged"]


@pytest.mark.slow
def test_latent_class_recovers_heterogeneous_population_where_independence_fails():
    """Manrique-Vallier (2016) design: 90% hard-to-catch units, 10% caught on most lists."""
    ref = json.loads((DATA / "mse_lcmcr_reference.json").read_text())["manrique_vallier_2016_sim1"]
    rng = np.random.default_rng(2016)
    X = simulate_units(rng, [s["size"] for s in ref["strata"]], [s["probs"] for s in ref["strata"]])
    X = X[X.sum(axis=1) > 0]
    t = table_from_units(X, list("ABCDE"))
    res = mse.latent_class(t, random_seed=2016, draws=500)
    assert res.interval[0] < 2000 < res.interval[1]
    assert res.details["converged"], res.details["warnings"]
    indep = mse.loglinear(t)
    assert indep.interval[1] < 2000 * 0.6  # heterogeneity: independence badly underestimates
    assert res.details["occupied_classes"]["mean"] >= 2


@pytest.mark.slow
def test_latent_class_kosovo_covers_the_census_count():
    truth = json.loads((DATA / "mse_lcmcr_reference.json").read_text())["kosovo_truth"]["value"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimatorWarning)  # ESS of N is below 400 at this length
        res = mse.latent_class(load("kosovo_ball2002"), random_seed=7)
    assert res.interval[0] < truth < res.interval[1]
    assert 8500 < res.estimate < 13000
    assert res.details["diagnostics"]["N"]["rhat"] < 1.05
    assert res.details["sampler"] == "Gibbs (numba)"


def test_latent_class_is_reproducible_from_its_seed_and_reports_label_invariants():
    t = load("darroch1993_r3")
    kwargs = dict(n_classes=3, draws=50, burn=20, thin=2, chains=2, engine="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimatorWarning)
        a = mse.latent_class(t, random_seed=42, **kwargs)
        b = mse.latent_class(t, random_seed=42, **kwargs)
        c = mse.latent_class(t, random_seed=43, **kwargs)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert not np.array_equal(a.draws, c.draws)
    d = a.details
    assert d["random_seed"] == 42 and a.draws.shape == (100,)
    assert set(d["occupied_classes"]["distribution"]) <= {1, 2, 3}
    assert "label" in d["label_switching"] and d["alpha"]["mean"] > 0
    assert a.estimate == np.median(a.draws)
