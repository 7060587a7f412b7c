"""risklab.design: pre-posterior audit power against closed forms, and one check by refitting."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from risklab.design import (
    PLAN_COLUMNS,
    _reweighted,
    plan_audit,
    preposterior_power,
    updated_p_underestimated,
)
from risklab.models.diagnostics import ConvergenceReport
from risklab.plotting.design import plot_audit_power
from tests.conftest import small_marketplace

A, B = 12.0, 988.0  # a Beta "posterior" of prevalence: mean 1.2%
CLAIM = 0.009
THRESHOLD = 0.95


def exact(m: int, claim: float = CLAIM, a: float = A, b: float = B):
    """Closed forms for a Beta(a, b) posterior: predictive, updated P(π > claim), power."""
    z = np.arange(m + 1)
    pred = stats.betabinom.pmf(z, m, a, b)
    prob = stats.beta.sf(claim, a + z, b + m - z)
    return z, pred, prob, float(pred @ (prob >= THRESHOLD))


@pytest.fixture(scope="module")
def beta_draws():
    return np.random.default_rng(20251128).beta(A, B, 20_000)


# ------------------------------------------------------------------ closed-form checks
@pytest.mark.parametrize("m", [50, 200, 800, 3200])
def test_updated_probabilities_match_the_closed_form(beta_draws, m):
    z, pred, prob, _ = exact(m)
    keep = pred > 1e-4
    _, reweighted, ess = _reweighted(beta_draws, (beta_draws > CLAIM).astype(float), m, z[keep])
    assert ess.min() > 100  # no fallback needed for this check
    np.testing.assert_allclose(reweighted, prob[keep], atol=0.01)


def test_updated_probability_after_a_done_audit(beta_draws):
    prob, ess = updated_p_underestimated(beta_draws, CLAIM, 500, [3, 6, 12])
    np.testing.assert_allclose(
        prob,
        stats.beta.sf(CLAIM, A + np.array([3, 6, 12]), B + 500 - np.array([3, 6, 12])),
        atol=0.01,
    )
    assert prob[0] < prob[1] < prob[2] and (ess > 1000).all()
    with pytest.raises(ValueError, match="z must lie"):
        updated_p_underestimated(beta_draws, CLAIM, 10, 11)


@pytest.mark.parametrize("m", [75, 250, 2000, 5000])
def test_power_matches_the_beta_binomial_closed_form(beta_draws, m):
    _, pred, prob, power = exact(m)
    row = preposterior_power(beta_draws, CLAIM, [m], threshold=THRESHOLD).iloc[0]
    # The per-outcome probabilities agree within 0.01 (test above), so the powers can differ
    # only by the predictive mass of outcomes whose exact probability is that close to the
    # threshold (a step of the power curve); plus 0.01 for Monte Carlo error.
    ambiguous = float(pred[np.abs(prob - THRESHOLD) < 0.01].sum())
    assert ambiguous < 0.05, "choose m away from a step so that the comparison is informative"
    assert abs(row["power_reweighted"] - power) <= 0.01 + ambiguous
    assert abs(row["power_conjugate"] - power) <= 0.01 + ambiguous
    assert row["fallback_share"] < 0.01


def test_expected_posterior_probability_is_the_current_one_and_bounds_power(beta_draws):
    """Martingale: E_z P(U > 1 | z) = P(U > 1); hence power ≤ P(U > 1) / threshold."""
    sizes = [10, 100, 1000, 20_000]
    table = preposterior_power(beta_draws, CLAIM, sizes, threshold=THRESHOLD, min_ess=1.0)
    p_now = float(np.mean(beta_draws > CLAIM))
    np.testing.assert_allclose(table["expected_p_underestimated"], p_now, atol=1e-6)
    np.testing.assert_allclose(table["expected_p_conjugate"], stats.beta.sf(CLAIM, A, B), atol=0.01)
    assert (table["power_reweighted"] <= p_now / THRESHOLD + 1e-9).all()
    # Power grows towards the bound for large audits (the audit reveals the truth).
    assert table["power_reweighted"].is_monotonic_increasing
    assert table["power_reweighted"].iloc[-1] > 0.8 * p_now


def test_simulated_outcomes_agree_with_enumeration_and_are_seeded(beta_draws):
    sizes = [200, 800]
    exact_table = preposterior_power(beta_draws, CLAIM, sizes)
    sim = preposterior_power(
        beta_draws, CLAIM, sizes, outcomes=20_000, rng=np.random.default_rng(1)
    )
    # Binomial Monte Carlo error of a proportion from 20,000 outcomes: sd ≤ 0.0036.
    np.testing.assert_allclose(sim["power_reweighted"], exact_table["power_reweighted"], atol=0.02)
    again = preposterior_power(
        beta_draws, CLAIM, sizes, outcomes=20_000, rng=np.random.default_rng(1)
    )
    pd.testing.assert_frame_equal(sim, again)


def test_audit_of_other_periods_uses_the_paired_draws(beta_draws):
    """Assessed prevalence = 2 × audited: P(π > c) = P(π_A > c / 2), in closed form."""
    m = 400
    table = preposterior_power(beta_draws, 2 * CLAIM, [m], assessed=2 * beta_draws).iloc[0]
    _, pred, prob, power = exact(m, claim=CLAIM)
    ambiguous = float(pred[np.abs(prob - THRESHOLD) < 0.01].sum())
    assert abs(table["power_reweighted"] - power) <= 0.01 + ambiguous
    assert abs(table["power_conjugate"] - power) <= 0.01 + ambiguous
    # Without the pairing (the claim compared with the audited prevalence) the answer differs.
    wrong = preposterior_power(beta_draws, 2 * CLAIM, [m]).iloc[0]
    assert wrong["power_reweighted"] < table["power_reweighted"] - 0.1


def test_degenerate_weights_fall_back_to_the_conjugate_value():
    draws = np.random.default_rng(3).beta(A, B, 60)
    row = preposterior_power(draws, CLAIM, [20_000], min_ess=20).iloc[0]
    assert row["min_ess"] < 20
    assert row["fallback_share"] > 0.5
    # Most outcomes use the conjugate value, so the two powers nearly coincide; the exact one
    # (a Beta(12, 988) truth) is close to both.
    assert abs(row["power_reweighted"] - row["power_conjugate"]) < 0.1
    assert abs(row["power_conjugate"] - exact(20_000)[3]) < 0.1


@pytest.mark.parametrize(
    "sizes", [[], [0, 100], [100, 100], [50.5], ["a"]], ids=["empty", "zero", "dup", "frac", "str"]
)
def test_bad_sample_sizes_are_rejected(beta_draws, sizes):
    with pytest.raises(ValueError, match="sample_sizes"):
        preposterior_power(beta_draws, CLAIM, sizes)


# ---------------------------------------------------------------- plan_audit on a model
@pytest.fixture(scope="module")
def submission():
    return small_marketplace(seed=5).to_submission()


def fake_fit(submission, prevalence: np.ndarray, *, passed: bool = True, seed: int = 9):
    """A stand-in for a fitted model with the given prevalence draws (chain, draw, k, t)."""
    data = submission.data
    posterior = xr.Dataset(
        {
            "prevalence": (
                ("chain", "draw", "category", "period"),
                prevalence,
            )
        },
        coords={"category": data["category"].values, "period": data["period"].values},
    )
    convergence = ConvergenceReport(
        passed=passed,
        max_rhat=1.0,
        min_ess_bulk=1000.0,
        min_ess_tail=1000.0,
        divergences=0,
        chains=prevalence.shape[0],
        draws=prevalence.shape[1],
        problems=[] if passed else ["R-hat 1.2 > 1.01 (worst: x)"],
    )
    tree = SimpleNamespace(attrs={"random_seed": seed})
    return SimpleNamespace(
        posterior=posterior,
        submission=submission,
        convergence=convergence,
        require_fitted=lambda: tree,
    )


@pytest.fixture(scope="module")
def beta_fit(submission):
    """Prevalence ~ Beta(A, B) per category, the same in every period; 2 chains × 2000 draws."""
    k, t = len(submission.categories), len(submission.periods)
    p = np.random.default_rng(4).beta(A, B, (2, 2000, k))
    return fake_fit(submission, np.repeat(p[..., None], t, axis=-1))


def _with_claim(submission, category: str, claim: float):
    data = submission.data.copy(deep=True)
    data["claimed_prevalence"].loc[{"category": category}] = claim
    return SimpleNamespace(data=data, categories=submission.categories)


def test_plan_audit_matches_the_closed_form_and_recommends_the_smallest_size(beta_fit):
    sizes = [50, 200, 800, 3200, 12_800]
    fit = SimpleNamespace(**vars(beta_fit))
    fit.submission = _with_claim(beta_fit.submission, "toys", CLAIM)
    plan = plan_audit(fit, categories=["toys"], sample_sizes=sizes, target_power=0.4)
    table = plan.table
    assert list(table.columns) == list(PLAN_COLUMNS)
    assert list(table["sample_size"]) == sizes
    exact_power = np.array([exact(m)[3] for m in sizes])
    np.testing.assert_allclose(table["power_reweighted"], exact_power, atol=0.03)
    expected = sizes[int(np.argmax(exact_power >= 0.4))]
    assert plan.recommended == {"toys": expected}
    assert (table["recommended_size"] == expected).all()
    assert table["converged"].all() and plan.converged
    p_now = float(np.mean(beta_fit.posterior["prevalence"].sel(category="toys")[..., 0] > CLAIM))
    np.testing.assert_allclose(table["p_underestimated_now"], p_now)
    np.testing.assert_allclose(table["expected_p_underestimated"], p_now, atol=1e-3)


def test_unreachable_target_is_none_with_a_reason(beta_fit):
    fit = SimpleNamespace(**vars(beta_fit))
    fit.submission = _with_claim(beta_fit.submission, "toys", 0.0125)  # P(U > 1) ≈ 0.45
    plan = plan_audit(fit, categories=["toys"], sample_sizes=[100, 1000, 10_000])
    assert plan.recommended == {"toys": None}
    assert plan.table["recommended_size"].isna().all()
    assert any("cannot exceed" in w for w in plan.warnings)
    assert (plan.table["power"] <= plan.table["power_upper_bound"] + 1e-9).all()


def test_refine_bisects_to_the_smallest_size(beta_fit):
    fit = SimpleNamespace(**vars(beta_fit))
    fit.submission = _with_claim(beta_fit.submission, "toys", CLAIM)
    plan = plan_audit(
        fit, categories=["toys"], sample_sizes=[100, 3200], target_power=0.3, refine=True
    )
    best = plan.recommended["toys"]
    assert 100 < best <= 3200
    draws = beta_fit.posterior["prevalence"].sel(category="toys")[..., 0].values.ravel()
    power = preposterior_power(draws, CLAIM, [best - 1, best])["power_reweighted"].values
    assert power[1] >= 0.3 > power[0]


def test_last_period_audit_samples_the_last_period_only(submission):
    k, t = len(submission.categories), len(submission.periods)
    rng = np.random.default_rng(8)
    last = rng.beta(A, B, (2, 1000, k))
    earlier = np.repeat(2 * last[..., None], t - 1, axis=-1)  # twice as prevalent before
    prevalence = np.concatenate([earlier, last[..., None]], axis=-1)
    fit = fake_fit(submission, prevalence)
    fit.submission = _with_claim(submission, "toys", 0.018)  # P(U > 1) = 0.71
    plan = plan_audit(fit, categories=["toys"], sample_sizes=[400], periods="last")
    listings = submission.data["listings"].sel(category="toys").values.astype(float)
    weights = listings / listings.sum()
    i = submission.categories.index("toys")
    assessed = (prevalence[:, :, i, :] * weights).sum(-1).ravel()
    claim = 0.018
    direct = preposterior_power(last[:, :, i].ravel(), claim, [400], assessed=assessed).iloc[0]
    row = plan.table.iloc[0]
    assert row["power_reweighted"] == pytest.approx(direct["power_reweighted"])
    assert row["audit_periods"] == f"{submission.periods[-1]}..{submission.periods[-1]}"
    whole = plan_audit(fit, categories=["toys"], sample_sizes=[400]).table.iloc[0]
    assert whole["audit_periods"] == "all"
    assert 0.05 < row["power_reweighted"] < 0.95
    # π / π_A is the same in every draw here, so the conjugate approximation is exact too.
    assert row["power_conjugate"] == pytest.approx(row["power_reweighted"], abs=0.01)
    assert abs(whole["power_reweighted"] - row["power_reweighted"]) > 0.05


def test_seeded_and_unconverged_fits_are_marked(submission):
    k, t = len(submission.categories), len(submission.periods)
    p = np.random.default_rng(4).beta(A, B, (2, 500, k))
    fit = fake_fit(submission, np.repeat(p[..., None], t, axis=-1), passed=False)
    kwargs = dict(sample_sizes=[100, 400], outcomes=300, max_draws=400)
    one, two = plan_audit(fit, **kwargs), plan_audit(fit, **kwargs)
    pd.testing.assert_frame_equal(one.table, two.table)
    other = plan_audit(fit, **kwargs, random_seed=123)
    assert not one.table["power_reweighted"].equals(other.table["power_reweighted"])
    assert one.warnings[0].startswith("UNCONVERGED: the fit behind this audit plan failed")
    assert "R-hat 1.2 > 1.01" in one.warnings[0]
    assert one.warnings[0].endswith(fit.convergence.remedy())
    assert not one.table["converged"].any()
    # A category's numbers do not depend on which other categories are planned.
    alone = plan_audit(fit, categories=["toys"], **kwargs).table
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True),
        one.table[one.table["category"] == "toys"].reset_index(drop=True),
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"categories": ["toys", "nope"]}, "unknown"),
        ({"sample_sizes": [0]}, "sample_sizes"),
        ({"periods": ["1999-01"]}, "periods"),
        ({"threshold": 1.0}, "threshold"),
        ({"target_power": 0.0}, "target_power"),
        ({"design": "purposive"}, "bound prevalence from above"),
        ({"method": "magic"}, "method"),
    ],
)
def test_bad_input_is_a_clear_value_error(beta_fit, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_audit(beta_fit, **kwargs)


def test_csv_and_figure(beta_fit, tmp_path):
    plan = plan_audit(beta_fit, categories=["toys", "medicines"], sample_sizes=[100, 400])
    path = plan.to_csv(tmp_path / "audit_plan.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == list(PLAN_COLUMNS) and len(back) == 4
    ax = plot_audit_power(plan)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("toys") for label in labels)
    plt.close(ax.figure)
    _, ax2 = plt.subplots()
    assert plot_audit_power(plan, ax=ax2, categories=["toys"]) is ax2
    plt.close(ax2.figure)
    with pytest.raises(ValueError, match="not in the plan"):
        plot_audit_power(plan, categories=["cosmetics"])


# ------------------------------------------------------------------------ refit check
@pytest.mark.slow
@pytest.mark.extended
def test_predictions_agree_with_a_refit_after_the_audit():
    """Fit, predict P(U > 1) after a simulated audit two ways, append the audit, refit, compare.

    Tolerance 0.12: the refit's P(U > 1) from 600 draws has Monte Carlo sd ≤ 0.04 (effective
    sample size ≥ ~150), the reweighted prediction from 600 draws about as much.
    """
    from risklab.models import PlatformRiskModel, SamplerConfig

    sim = small_marketplace(seed=21, audited_categories=["medicines"], purposive={})
    category, m = "cosmetics", 300
    truth = sim.truth["prevalence_category"][category]
    for claim in sim.toml["claims"]:  # a claim close to the truth: P(U > 1) far from 0 and 1
        if claim["category"] == category:
            claim["prevalence"] = float(round(truth * 0.9, 8))
            thresholds = np.asarray(sim.toml["scale"]["thresholds"])
            band = int(np.searchsorted(thresholds, claim["prevalence"], side="right"))
            claim["band"] = sim.toml["scale"]["labels"][band]
    config = SamplerConfig(draws=300, tune=300, chains=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = PlatformRiskModel(sim.to_submission(), sampler_config=config)
        before.fit(random_seed=1)
    posterior = before.posterior["prevalence"]
    data = before.submission.data
    last = str(data["period"].values[-1])
    k = before.submission.categories.index(category)
    audited = posterior.sel(category=category, period=last).values.ravel()
    listings = data["listings"].sel(category=category).astype(float)
    assessed = (posterior.sel(category=category) * listings / listings.sum()).sum("period")
    assessed = assessed.values.ravel()
    claim = float(data["claimed_prevalence"].values[k])
    # One audit outcome: the truth of the last period, sampled.
    z = int(np.random.default_rng(2).binomial(m, sim.truth["prevalence"][category][-1]))
    reweighted, ess = updated_p_underestimated(audited, claim, m, z, assessed=assessed)
    mean, var = audited.mean(), audited.var()
    total = mean * (1 - mean) / var - 1
    ratio = float(np.mean(assessed / audited))
    conjugate = stats.beta.sf(claim / ratio, mean * total + z, (1 - mean) * total + m - z)

    audits = pd.concat(
        [
            sim.evidence["audits"],
            pd.DataFrame(
                [(category, last, "random", m, z)], columns=list(sim.evidence["audits"].columns)
            ),
        ],
        ignore_index=True,
    )
    sim.evidence["audits"] = audits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = PlatformRiskModel(sim.to_submission(), sampler_config=config)
        after.fit(random_seed=1)
    post = after.posterior["prevalence"].sel(category=category)
    refit = float(((post * listings / listings.sum()).sum("period") > claim).mean())
    p_before = float(np.mean(assessed > claim))
    report = f"before {p_before:.3f}, refit {refit:.3f}, reweighted {reweighted[0]:.3f}, "
    report += f"conjugate {conjugate:.3f}, ESS {ess[0]:.0f}, z = {z} of {m}"
    print(report)
    assert ess[0] > 50, report
    assert 0.05 < refit < 0.95 or abs(refit - p_before) > 0.1, report  # informative audit
    assert abs(reweighted[0] - refit) < 0.12, report
    assert abs(conjugate - refit) < 0.12, report
