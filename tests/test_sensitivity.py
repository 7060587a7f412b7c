"""Prior sensitivity: power-scaling diagnostics and refits under alternative prior sets."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from arviz_stats import psense_summary
from matplotlib.axes import Axes
from pymc.testing import mock_sample
from scipy import stats

from risklab import PlatformRiskModel
from risklab.assess import Findings
from risklab.models import SamplerConfig
from risklab.models.diagnostics import ConvergenceReport
from risklab.plotting.sensitivity import plot_prior_sets
from risklab.priors import Prior, PriorError
from risklab.sensitivity import (
    PriorSetComparison,
    _comparison_table,
    _summary_sentences,
    compare_prior_sets,
    default_alternative_prior_sets,
    diagnose,
    prior_sensitivity,
    prior_variables,
)

from .conftest import small_marketplace

# ------------------------------------------------------------------------------- helpers


def _passed(chains=2, draws=10):
    return ConvergenceReport(
        passed=True, max_rhat=1.0, min_ess_bulk=1000, min_ess_tail=1000, divergences=0,
        chains=chains, draws=draws, problems=[],
    )  # fmt: skip


def _findings(rows: dict[str, tuple[float, str, float]], labels=("low", "mid", "high")):
    """Findings whose table holds, per category, (P(U>1), most likely band, P(claimed band))."""
    table = pd.DataFrame(
        {
            "category": list(rows),
            "claimed_band": ["low"] * len(rows),
            "claimed_prevalence": [0.001] * len(rows),
            "prevalence_median": [0.002] * len(rows),
            "prevalence_low": [0.001] * len(rows),
            "prevalence_high": [0.003] * len(rows),
            "p_underestimated": [v[0] for v in rows.values()],
            "most_likely_band": [v[1] for v in rows.values()],
        }
    )
    for label in labels:
        table[f"p_band:{label}"] = [v[2] if label == "low" else np.nan for v in rows.values()]
    return Findings(table=table, draws=xr.Dataset(), convergence=_passed())


@pytest.fixture
def crafted():
    return {
        "default": _findings(
            {"a": (0.99, "high", 0.01), "b": (0.99, "mid", 0.01), "c": (0.10, "low", 0.60)}
        ),
        "alt": _findings(
            {"a": (0.97, "high", 0.02), "b": (0.50, "high", 0.30), "c": (0.20, "low", 0.70)}
        ),
        "alt2": _findings(
            {"a": (0.96, "high", 0.04), "b": (0.99, "mid", 0.01), "c": (0.96, "low", 0.01)}
        ),
    }


# ------------------------------------------------------------------------------- fast tests


def test_prior_variables_follow_create_variable():
    nested = Prior("Normal", mu=0, sigma=Prior("HalfNormal", sigma=1), centered=False, dims="x")
    assert sorted(prior_variables("a", nested)) == ["a_offset", "a_sigma"]
    assert prior_variables("b", Prior("Normal", mu=0, sigma=1, transform="exp")) == ["b_raw"]
    assert prior_variables("c", Prior("Beta", alpha=1, beta=1)) == ["c"]


def test_diagnosis_rule():
    assert diagnose(0.06, 0.06) == "prior-data conflict"
    assert diagnose(0.06, 0.01) == "strong prior / weak likelihood"
    assert diagnose(0.01, 0.5) == "ok"
    assert diagnose(0.04, 0.04, threshold=0.03) == "prior-data conflict"


def test_comparison_table_says_which_conclusions_survive(crafted):
    table = _comparison_table(crafted, "default", level=0.95).set_index("category")
    assert table["underestimated_in_all"].to_dict() == {"a": True, "b": False, "c": False}
    assert table["underestimated_in_any"].to_dict() == {"a": True, "b": True, "c": True}
    assert table["same_most_likely_band"].to_dict() == {"a": True, "b": False, "c": True}
    assert table["claimed_band_contradicted_in_all"].to_dict() == {
        "a": True,
        "b": False,
        "c": False,
    }
    assert table.loc["a", "robust_conclusions"] == (
        "underestimated; most likely band 'high'; claimed band contradicted"
    )
    assert table.loc["b", "robust_conclusions"] == "none"
    # c is underestimated only under alt2, not under the baseline: not a baseline conclusion.
    assert table.loc["c", "robust_conclusions"] == "most likely band 'low'"
    assert table.loc["b", "p_claimed_band:alt"] == 0.30
    assert table.loc["b", "most_likely_band:alt"] == "high"
    # A stricter level drops 'a' (P(U>1) = 0.96 under alt2).
    strict = _comparison_table(crafted, "default", level=0.97).set_index("category")
    assert not strict.loc["a", "underestimated_in_all"]
    text = _summary_sentences(table.reset_index(), list(crafted), 0.95)
    assert text[0].startswith("a: underestimated under all 3 prior sets")
    assert "depends on the prior" in text[1] and "default, alt2" in text[1]
    assert "most likely band changes" in text[1]


def test_plot_prior_sets(crafted):
    table = _comparison_table(crafted, "default", level=0.95)
    comparison = PriorSetComparison(
        table=table, findings=crafted, fits={}, prior_sets={}, baseline_name="default", level=0.95
    )
    for quantity in ("prevalence", "p_underestimated"):
        ax = plot_prior_sets(comparison, quantity=quantity)
        assert isinstance(ax, Axes)
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
        labels = ax.get_legend_handles_labels()[1]
        assert labels[:3] == ["default", "alt", "alt2"]
    with pytest.raises(ValueError, match="quantity"):
        plot_prior_sets(comparison, quantity="band")


def test_default_alternative_sets(small_submission):
    model = PlatformRiskModel(
        small_submission, priors={"prevalence_intercept": Prior("Normal", mu=-5.0, sigma=0.8)}
    )
    sets = default_alternative_prior_sets(model)
    assert list(sets) == ["default", "wide_prevalence", "low_detection", "high_detection"]
    assert sets["default"] == model.priors
    wide = sets["wide_prevalence"]
    assert wide["prevalence_intercept"] == Prior("Normal", mu=-5.0, sigma=1.6)
    sd = model.priors["prevalence_category_sd"].parameters["sigma"]
    assert wide["prevalence_category_sd"] == Prior("HalfNormal", sigma=2 * sd)
    mu = model.priors["detection_level_logit_mu"].parameters["mu"]
    assert sets["low_detection"]["detection_level_logit_mu"].parameters["mu"] == mu - 1
    assert sets["high_detection"]["detection_level_logit_mu"].parameters["mu"] == mu + 1
    for name, overrides in sets.items():
        changed = {k for k in overrides if overrides[k] != model.priors[k]}
        assert (
            changed
            == {
                "default": set(),
                "wide_prevalence": {"prevalence_intercept", "prevalence_category_sd"},
                "low_detection": {"detection_level_logit_mu"},
                "high_detection": {"detection_level_logit_mu"},
            }[name]
        )
        PlatformRiskModel(small_submission, priors=overrides)  # every name is known


def test_bad_prior_sets_fail_before_any_fit(small_submission, monkeypatch):
    calls = []
    monkeypatch.setattr(PlatformRiskModel, "fit", lambda self, **kw: calls.append(kw))
    good = {"prevalence_intercept": Prior("Normal", mu=-4.0, sigma=1.0)}
    with pytest.raises(PriorError, match=r"'typo'.*unknown prior 'nope'"):
        typo = {"nope": Prior("Normal", mu=0, sigma=1)}
        compare_prior_sets(small_submission, {"good": good, "typo": typo})
    with pytest.raises(ValueError, match="at least one prior set"):
        compare_prior_sets(small_submission, {"default": {}})
    with pytest.raises(ValueError, match="level"):
        compare_prior_sets(small_submission, {"good": good}, level=0.4)
    assert calls == []


def test_compare_prior_sets_with_mocked_sampling(small_submission, mocked_sampling):
    wide = {"prevalence_intercept": Prior("Normal", mu=-3.0, sigma=0.3)}
    comparison = compare_prior_sets(
        small_submission,
        {"high_prevalence": wide},
        sampler_config=SamplerConfig(draws=40, chains=2),
        random_seed=4,
    )
    assert comparison.set_names == ["default", "high_prevalence"]
    assert (
        comparison.prior_sets["high_prevalence"]["prevalence_intercept"]
        == wide["prevalence_intercept"]
    )
    fit = comparison.fits["high_prevalence"]
    assert fit.priors["prevalence_intercept"] == wide["prevalence_intercept"]
    table = comparison.table.set_index("category")
    for name, findings in comparison.findings.items():
        own = findings.table.set_index("category")
        np.testing.assert_allclose(table[f"p_underestimated:{name}"], own["p_underestimated"])
        assert (table[f"most_likely_band:{name}"] == own["most_likely_band"]).all()
    p_u = table[[f"p_underestimated:{n}" for n in comparison.set_names]]
    assert (table["underestimated_in_all"] == (p_u >= 0.95).all(axis=1)).all()
    # The prior on the prevalence intercept moved the prevalence (posterior = prior draws here).
    assert (table["prevalence_median:high_prevalence"] > table["prevalence_median:default"]).all()
    assert [line.split(":")[0] for line in comparison.summary[: len(table)]] == list(table.index)
    # Prior draws fail the convergence gate: the table and the summary say so.
    assert not table["converged_in_all"].any()
    assert comparison.summary[-1].startswith("UNCONVERGED")


@pytest.fixture(scope="module")
def sensitivity_fit():
    """A mocked fit (posterior = prior draws; no MCMC) with traders, and its power-scaling."""
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fake = partial(
            mock_sample, sample_stats={"diverging": lambda size: np.zeros(size, dtype=bool)}
        )
        mp.setattr(pm, "sample", fake)
        sub = small_marketplace(traders=True).to_submission()
        model = PlatformRiskModel(sub, sampler_config=SamplerConfig(draws=150, chains=2))
        model.fit(random_seed=2)
        before = model.idata.copy()
        report = prior_sensitivity(
            model,
            quantities=("prevalence", "underestimation", "enforcement"),
            priors=("prevalence_intercept", "channel_log_ratio_mu", "enforcement"),
        )
    return model, before, report


def test_power_scaling_scales_the_named_priors_and_all_likelihood_terms(sensitivity_fit):
    model, _, report = sensitivity_fit
    assert report.scaled_priors == ["prevalence_intercept", "channel_log_ratio_mu", "enforcement"]
    assert set(report.tree["log_prior"].data_vars) == set(report.scaled_priors)
    # The log prior of the intercept is its Normal density at the draws.
    spec = model.priors["prevalence_intercept"].parameters
    np.testing.assert_allclose(
        report.tree["log_prior"]["prevalence_intercept"].values,
        stats.norm.logpdf(
            model.posterior["prevalence_intercept"].values, spec["mu"], spec["sigma"]
        ),
    )
    # The strike likelihood (a pm.Potential) is power-scaled with the observed terms.
    assert "offender_strikes" in report.likelihood_terms
    assert {"detected", "enforcement_suspended"} <= set(report.likelihood_terms)
    strikes = report.tree["log_likelihood"]["offender_strikes"]
    assert strikes.dims == ("chain", "draw") and np.isfinite(strikes.values).all()
    assert strikes.std() > 0


def test_sensitivity_table_matches_arviz_and_is_scale_invariant(sensitivity_fit):
    model, _, report = sensitivity_fit
    table = report.table
    cats = [str(c) for c in model.submission.data["category"].values]
    assert list(table["quantity"]) == ["prevalence"] * 4 + ["underestimation"] * 4 + ["enforcement"]
    assert list(table["category"]) == cats + cats + [""]
    summary = psense_summary(report.tree, round_to=12)
    for row in table.itertuples():
        label = f"{row.quantity}[{row.category}]" if row.category else row.quantity
        assert row.prior == pytest.approx(summary.loc[label, "prior"], abs=1e-9)
        assert row.likelihood == pytest.approx(summary.loc[label, "likelihood"], abs=1e-9)
        assert row.diagnosis == diagnose(row.prior, row.likelihood)
    # U = prevalence / a fixed claim: the same sensitivity.
    prev = table[table["quantity"] == "prevalence"][["prior", "likelihood"]].to_numpy()
    u = table[table["quantity"] == "underestimation"][["prior", "likelihood"]].to_numpy()
    np.testing.assert_allclose(u, prev, rtol=1e-8)


def test_power_scaling_leaves_the_results_intact(sensitivity_fit, tmp_path):
    model, before, _ = sensitivity_fit
    assert set(model.idata.children) == set(before.children)
    assert model.idata.identical(before)
    path = model.save(tmp_path / "fit.nc")
    again = PlatformRiskModel.load(path)
    xr.testing.assert_identical(again.posterior, model.posterior)


def test_prior_sensitivity_rejects_unknown_names(sensitivity_fit):
    model, _, _ = sensitivity_fit
    with pytest.raises(ValueError, match="unknown quantities"):
        prior_sensitivity(model, quantities=("prevalence", "band"))
    with pytest.raises(ValueError, match="unknown priors"):
        prior_sensitivity(model, priors=("prevalence",))


# ------------------------------------------------------------------------------- slow test


@pytest.mark.slow
@pytest.mark.extended
def test_refits_and_power_scaling_on_a_small_marketplace():
    """Real fits: the prior-driven category is the most prior-sensitive; the table is coherent."""
    sub = small_marketplace(seed=7).to_submission()
    sets = default_alternative_prior_sets(PlatformRiskModel(sub))
    comparison = compare_prior_sets(
        sub,
        {name: sets[name] for name in ("default", "low_detection")},
        sampler_config=SamplerConfig(draws=300, tune=300, chains=2),
        random_seed=1,
    )
    table = comparison.table.set_index("category")
    base = comparison.findings["default"].table.set_index("category")
    assert list(comparison.findings) == ["default", "low_detection"]
    # Pessimistic detection prior: prevalence up where nothing but the prior pins detection down.
    prior_driven = base.index[base["identified_by"] == "prior"]
    assert len(prior_driven) == 1
    cat = prior_driven[0]
    assert (
        table.loc[cat, "prevalence_median:low_detection"]
        > table.loc[cat, "prevalence_median:default"]
    )
    report = prior_sensitivity(comparison.fits["default"], quantities=("prevalence",))
    sens = report.table.set_index("category")["prior"]
    audited = base.index[base["identified_by"].str.contains("audit")]
    assert sens[cat] > sens[audited].max()
