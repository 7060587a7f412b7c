"""Monitoring commitments: files, validation, the interrupted time series, monitor(), KPIs.

Fast: no MCMC (mocked sampling draws from the prior). Recovery on simulated marketplaces with
known commitment effects is in tests/test_monitoring_recovery.py (slow).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy.special import expit, logit

from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.monitoring import (
    Commitment,
    CommitmentError,
    MonitoringModel,
    Target,
    load_commitments,
    monitor,
    status_label,
    validate_commitments,
)
from risklab.monitoring.analysis import commitment_draws
from risklab.monitoring.early_warning import _flag
from risklab.monitoring.its import ramp, step
from risklab.monitoring.kpis import compare_kpis, load_kpis, reappearance_probability
from risklab.priors import Prior
from tests.conftest import small_marketplace

COMMITMENTS = [
    Commitment("links", "2024-07", "hidden_share", target=Target(0.2)),
    Commitment("toys prevalence", "2024-05", "prevalence", categories=("toys",)),
    Commitment(
        "efficiency", "2024-08", "efficiency", categories=("toys", "cosmetics"), target=Target(2.0)
    ),
    Commitment("moderators", "2024-06", "review_capacity", target=Target(0.5, by="2024-10")),
]


@pytest.fixture(scope="module")
def sim12():
    return small_marketplace(seed=3, n_periods=12, traders=True)


@pytest.fixture
def fitted(sim12, mocked_sampling):
    model = MonitoringModel(
        sim12.to_submission(), COMMITMENTS, sampler_config=SamplerConfig(draws=40, chains=2)
    )
    model.fit(random_seed=5)
    return model


# ----------------------------------------------------------------------------- commitments file
def write(tmp_path, text: str):
    path = tmp_path / "commitments.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_commitments_reads_every_key(tmp_path):
    path = write(
        tmp_path,
        """
[[commitment]]
name = "link controls"
effective = "2024-07"
quantity = "hidden_share"
categories = ["toys", "medicines"]
description = "third-party controls on hidden links"
[commitment.target]
value = 0.2
by = "2024-12"

[[commitment]]
name = "penalties"
effective = "2024-05"
quantity = "enforcement"
""",
    )
    first, second = load_commitments(path)
    assert first == Commitment(
        "link controls",
        "2024-07",
        "hidden_share",
        ("toys", "medicines"),
        Target(0.2, "2024-12"),
        "third-party controls on hidden links",
    )
    assert second.quantity == "enforcement" and second.target is None
    assert Commitment.from_dict(first.to_dict()) == first


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[commitment]]\nname = 'a'\neffective = '2024-07'\n", ["'a'", "'quantity'", "required"]),
        (
            "[[commitment]]\nname='a'\neffective='2024-07'\nquantity='x'\ncolour='red'\n",
            ["'a'", "colour"],
        ),
        ("[[commitment]]\nname = 'a'\neffective = \n", ["not valid TOML"]),
        ("[commitments]\nname = 'a'\n", ["unknown top-level", "commitments"]),
        (
            "[[commitment]]\nname='a'\neffective='2024-07'\nquantity='prevalence'\n"
            "[commitment.target]\nvalue='low'\n",
            ["'a'", "target.value"],
        ),
        (
            "[[commitment]]\nname='a'\neffective='2024-07'\nquantity='prevalence'\n"
            "categories = []\n",
            ["'a'", "categories"],
        ),
    ],
)
def test_bad_commitment_files_name_file_commitment_and_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(CommitmentError) as err:
        load_commitments(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("commitment", "words"),
    [
        (Commitment("a", "2024-01", "prevalence"), ["first period", "'effective'"]),
        (Commitment("a", "2026-01", "prevalence"), ["outside", "'effective'"]),
        (Commitment("a", "2024-7", "prevalence"), ["YYYY-MM"]),
        (Commitment("a", "2024-05", "risk"), ["'quantity'", "hidden_share"]),
        (Commitment("a", "2024-05", "prevalence", ("bikes",)), ["bikes", "'categories'"]),
        (Commitment("a", "2024-05", "prevalence", target=Target(1.5)), ["target.value", "[0, 1]"]),
        (Commitment("a", "2024-05", "efficiency", target=Target(-1.0)), ["positive"]),
        (
            Commitment("a", "2024-05", "prevalence", target=Target(0.1, "2024-03")),
            ["target.by", "before"],
        ),
        (Commitment("a|b", "2024-05", "prevalence"), ["'name'"]),
    ],
)
def test_validation_against_the_submission(sim12, commitment, words):
    with pytest.raises(CommitmentError) as err:
        validate_commitments([commitment], sim12.to_submission().data, source="c.toml")
    assert "c.toml" in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_validation_rejects_duplicates_and_inseparable_commitments(sim12):
    data = sim12.to_submission().data
    with pytest.raises(CommitmentError, match="used twice"):
        validate_commitments([COMMITMENTS[0], COMMITMENTS[0]], data)
    same_slot = Commitment("again", "2024-05", "prevalence", categories=("toys", "medicines"))
    with pytest.raises(CommitmentError, match="told apart"):
        validate_commitments([COMMITMENTS[1], same_slot], data)
    # Same quantity, another date: separable, accepted.
    later = Commitment("later", "2024-09", "prevalence", categories=("toys",))
    assert len(validate_commitments([COMMITMENTS[1], later], data)) == 2


def test_enforcement_needs_suspensions_per_period(sim12):
    with pytest.raises(CommitmentError, match=r"enforcement\.csv"):
        validate_commitments(
            [Commitment("p", "2024-05", "enforcement")], sim12.to_submission().data
        )


def test_categories_default_to_all(sim12):
    data = sim12.to_submission().data
    (resolved,) = validate_commitments([Commitment("a", "2024-05", "hidden_share")], data)
    assert resolved.categories == tuple(str(c) for c in data["category"].values)


# ----------------------------------------------------------------------------- time structure
def test_step_and_ramp():
    np.testing.assert_array_equal(step(2, 5), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(ramp(2, 5), [0, 0, 0, 1 / 12, 2 / 12])


def test_status_labels():
    assert status_label(0.97, target=True) == "met"
    assert status_label(0.8, target=True) == "likely met"
    assert status_label(0.5, target=False) == "uncertain"
    assert status_label(0.1, target=False) == "likely not improved"
    assert status_label(0.01, target=True) == "not met"
    assert status_label(float("nan"), target=True) == "no estimate"


# ----------------------------------------------------------------------------- the model
def _deterministics(model: pm.Model, names, point):
    """Evaluate named model variables at a point of value variables (RVs replaced by values)."""
    outputs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore")
    return dict(zip(names, fn(point), strict=True))


def test_zero_changes_reproduce_the_platform_model(sim12):
    """With every change and trend at zero the monitored model is the platform model."""
    sub = sim12.to_submission()
    platform = PlatformRiskModel(sub).build()
    monitored_model = MonitoringModel(sub, COMMITMENTS)
    monitored = monitored_model.build()
    point = monitored.initial_point(random_seed=2)
    for name in point:
        trend = name.endswith("_trend") and not name.startswith("prevalence")
        if name.startswith(("commitment_level", "commitment_slope")) or trend:
            if name.endswith("_log__"):
                continue  # scale parameters: irrelevant once the offsets and means are zero
            point[name] = np.zeros_like(point[name])
    names = ["prevalence", "detection_rate", "hidden_share", "prevalence_if_enforced"]
    ours = _deterministics(monitored, names, point)
    base_point = {k: v for k, v in point.items() if k in {v.name for v in platform.value_vars}}
    theirs = _deterministics(platform, names, base_point)
    for name in names:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, err_msg=name)


def test_platform_model_has_no_monitoring_variables(sim12):
    model = PlatformRiskModel(sim12.to_submission()).build()
    assert not [v for v in model.named_vars if "by_period" in v or "commitment" in v]


def test_counterfactual_equals_the_model_without_the_commitment(fitted):
    """monitor()'s counterfactual = the model's own quantity with that commitment's changes at 0."""
    model = fitted.build()
    post = fitted.posterior
    point = {}
    for v in model.value_vars:
        rv = model.values_to_rvs[v]
        raw = post[rv.name].isel(chain=1, draw=7).values
        transform = model.rvs_to_transforms.get(rv)
        point[v.name] = (
            raw if transform is None else transform.forward(raw, *rv.owner.inputs).eval()
        )
    level_key, slope_key = "commitment_level", "commitment_slope"
    var_of = {
        "prevalence": "prevalence",
        "hidden_share": "hidden_share_by_period",
        "efficiency": "efficiency_by_period",
    }
    names = [c.name for c in fitted.commitments]
    for c in fitted.commitments:
        if c.quantity not in var_of:
            continue
        j = names.index(c.name)
        zeroed = dict(point)
        for key in (level_key, slope_key):
            zeroed[key] = point[key].copy()
            zeroed[key][j] = 0.0
        offsets = [f"{c.name}|{k}" for k in c.categories]
        for prefix in ("commitment_level_cell", "commitment_slope_cell"):
            for kind in ("centred", "offset"):
                key = f"{prefix}_{kind}"
                if key not in point:
                    continue
                elements = list(post[f"{key}_element"].values)
                zeroed[key] = point[key].copy()
                for label in offsets:
                    if label in elements:
                        zeroed[key][elements.index(label)] = 0.0
        expected = _deterministics(model, [var_of[c.quantity]], zeroed)[var_of[c.quantity]]
        _, counterfactual = commitment_draws(fitted, c)
        mask = np.ones(expected.shape, dtype=bool)
        if c.quantity == "prevalence":
            # The counterfactual holds each cell's deviation ε fixed. Holding the free variables
            # fixed does the same only in cells sampled non-centred (free ε/σ); a centred cell's
            # free variable is logit π + log d itself, so compare where the cell is non-centred.
            labels = set(post["log_detected_rate_offset_element"].values)
            cats = [str(k) for k in post["category"].values]
            pers = [str(t) for t in post["period"].values]
            mask = np.array([[f"{k}|{t}" in labels for t in pers] for k in cats])
            assert mask[cats.index("toys")].any()
        np.testing.assert_allclose(
            counterfactual[1, 7][mask], expected[mask], rtol=1e-9, err_msg=c.name
        )


def test_monitor_table_and_effects(fitted, sim12):
    result = monitor(fitted, prob=0.8)
    table = result.table.set_index("commitment")
    assert list(table.index) == [c.name for c in COMMITMENTS]
    assert table.loc["moderators", "target_by"] == "2024-10"
    assert table.loc["links", "target_by"] == "2024-12"
    assert np.isnan(table.loc["toys prevalence", "p_target_met"])
    # Effects are exactly zero before the effective date, and the draws agree with the table.
    traj = result.trajectory
    before = traj[~traj["in_force"]]
    assert np.all(before[["effect_low", "effect_high"]].abs().to_numpy() < 1e-12)
    effect = result.draws["effect"].sel(commitment="links", period="2024-12").values.ravel()
    assert table.loc["links", "p_improved"] == pytest.approx(np.mean(effect < 0))
    value = result.draws["value"].sel(commitment="links", period="2024-12").values.ravel()
    assert table.loc["links", "p_target_met"] == pytest.approx(np.mean(value <= 0.2))
    # Review capacity is observed: its value is the observed aggregate intensity.
    data = fitted.submission.data.sel(period="2024-10")
    observed = float(data["review_hours"].sum() / data["listings"].sum() * 1000)
    assert table.loc["moderators", "value_median"] == pytest.approx(observed)
    assert set(result.by_category["commitment"]) == {c.name for c in COMMITMENTS}
    assert table["identified_by"].str.len().min() > 0


def test_save_and_load_keep_the_commitments(fitted, tmp_path):
    path = fitted.save(tmp_path / "fit.nc")
    loaded = MonitoringModel.load(path)
    assert loaded.commitments == fitted.commitments
    pd.testing.assert_frame_equal(monitor(loaded).table, monitor(fitted).table)


def test_priors_of_commitments_can_be_overridden(sim12):
    model = MonitoringModel(
        sim12.to_submission(),
        COMMITMENTS,
        priors={"commitment_level": Prior("Normal", mu=0.0, sigma=0.3)},
    )
    assert model.priors["commitment_level"].parameters["sigma"] == 0.3


# ----------------------------------------------------------------------------- KPIs
def test_reappearance_probability_matches_simulation():
    rng = np.random.default_rng(0)
    a, mu, d = 0.7, 3.0, 0.3
    lam = rng.gamma(a, mu / a, 400_000)
    listings = rng.poisson(lam)
    strikes = rng.binomial(listings, d)
    seen = strikes >= 1
    empirical = np.mean(listings[seen] >= 2)
    assert reappearance_probability(d * mu, a, d) == pytest.approx(empirical, abs=0.004)


def test_kpis_load_and_compare(fitted, tmp_path):
    path = tmp_path / "kpis.csv"
    path.write_text(
        "kpi,period,category,value\n"
        "proactive_control_rate,,,0.99\n"
        "prevalence,2024-03,toys,0.0000001\n"
        "enforcement_rate,,,0.5\n"
        "reappearance_rate,,,0.5\n",
        encoding="utf-8",
    )
    kpis = load_kpis(path, fitted)
    table = compare_kpis(fitted, kpis, prob=0.9)
    assert list(table["kpi"]) == list(kpis["kpi"])
    # Independent check of the proactive control rate: illegal-listings-weighted d over all cells.
    post = fitted.posterior
    pi = post["prevalence"].transpose("chain", "draw", "category", "period").values
    d = post["detection_rate"].transpose("chain", "draw", "category", "period").values
    n = fitted.submission.data["listings"].transpose("category", "period").values
    expected = (pi * d * n).sum(axis=(2, 3)) / (pi * n).sum(axis=(2, 3))
    # ... as a realised share of the illegal listings behind it (binomial noise, same stream).
    expected = expected.ravel()
    trials = np.maximum(np.round((pi * n).sum(axis=(2, 3)).ravel()), 1).astype(np.int64)
    realised = np.random.default_rng([0, 17]).binomial(trials, expected) / trials
    row = table.iloc[0]
    assert row["implied_median"] == pytest.approx(np.median(realised))
    assert row["p_implied_below_reported"] == pytest.approx(np.mean(realised < 0.99))
    # A reported prevalence of ~0 is below the model and flatters the platform.
    assert table.iloc[1]["verdict"] == "reported below the model" and table.iloc[1]["flatters"]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("risk_score,,,0.5", ["line 2", "'kpi'", "risk_score"]),
        ("prevalence,2030-01,,0.5", ["line 2", "'period'"]),
        ("prevalence,,bikes,0.5", ["line 2", "'category'"]),
        ("prevalence,,,1.5", ["line 2", "'value'"]),
        ("prevalence,,,abc", ["line 2", "'value'"]),
        ("enforcement_rate,,toys,0.5", ["line 2", "platform-wide"]),
    ],
)
def test_bad_kpi_rows(fitted, tmp_path, line, words):
    path = tmp_path / "kpis.csv"
    path.write_text("kpi,period,category,value\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CommitmentError) as err:
        load_kpis(path, fitted)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_early_warning_flags():
    assert _flag(0.8, 0.8, 0.5, 1000, 0.05) == "on track"
    assert _flag(0.8, 0.8, 0.01, 1000, 0.05) == "deterioration"
    assert _flag(0.8, 0.2, 0.5, 1000, 0.05) == "deterioration"
    assert _flag(0.8, 0.6, 0.5, 1000, 0.05) == "watch"
    assert _flag(0.8, 0.8, 0.5, 20, 0.05) == "refit needed"
    assert _flag(0.8, 0.8, 0.5, 40, 0.05) == "on track"
    assert _flag(0.01, 0.0, float("nan"), 1000, 0.05) == "off track"
    assert _flag(0.3, 0.0, 0.5, 1000, 0.05) == "deterioration"


def test_link_helpers_roundtrip():
    from risklab.monitoring import QUANTITIES

    for q in QUANTITIES.values():
        x = np.array([0.01, 0.3, 0.9])
        np.testing.assert_allclose(q.from_link(q.to_link(x)), x)
    assert QUANTITIES["prevalence"].improved(-0.1) and QUANTITIES["enforcement"].improved(0.1)
    assert expit(logit(0.3)) == pytest.approx(0.3)


def test_joint_predictive_p_value_is_calibrated():
    """Figures drawn from the same predictive as the replicates give uniform p-values.

    The toy has the structure of the early warning: 25 binomial counts of 20,000 trials whose
    logit rates share an uncertain level (sd 0.15) — precise counts, uncertain parameters.
    """
    from risklab.monitoring.early_warning import mahalanobis_p_value

    rng = np.random.default_rng(4)
    n_fig, trials = 25, 20_000

    def draw(size):
        level = rng.normal(0.0, 0.15, (size, 1)) + rng.normal(0.0, 0.05, (size, n_fig))
        return np.log1p(rng.binomial(trials, expit(-3.0 + level)))

    p_values = np.array([mahalanobis_p_value(draw(1000), draw(1)[0]) for _ in range(300)])
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.09
    assert 0.4 <= np.mean(p_values < 0.5) <= 0.6
    # Many figures against few replicates (75 and 800, as in examples/monitoring.py): still
    # calibrated, because the distances are taken out of sample (in sample: 8.5% below 0.05).
    n_fig = 75
    p_values = np.array([mahalanobis_p_value(draw(800), draw(1)[0]) for _ in range(200)])
    assert 0.01 <= np.mean(p_values < 0.05) <= 0.1
    assert 0.38 <= np.mean(p_values < 0.5) <= 0.62
    # A shifted observation (the level 0.5 lower: 40% fewer detections) is flagged.
    shifted = np.log1p(rng.binomial(trials, expit(-3.5 + rng.normal(0, 0.05, n_fig))))
    assert mahalanobis_p_value(draw(1000), shifted) < 0.01


def test_review_capacity_intercept_and_trend_are_integrated_out_exactly(sim12):
    """The MvNormal term equals ∫∫ Π_t Normal(log r_t | a + b·y_t + shift_t, σ) p(a) p(b) da db."""
    from scipy import integrate, stats

    from risklab.monitoring.its import centred_years

    sub = sim12.to_submission()
    commitment = Commitment("hours", "2024-06", "review_capacity", categories=("toys",))
    model = MonitoringModel(sub, [commitment]).build()
    point = model.initial_point(random_seed=1)
    point["commitment_level"] = np.array([0.3])
    point["commitment_slope"] = np.array([-0.2])
    point["review_capacity_noise_sd_log__"] = np.array(np.log(0.15))
    logp = model.compile_logp(vars=[model["review_capacity_log_0"]], sum=True)(point)

    data = sub.data.sel(category="toys")
    log_r = np.log(data["review_hours"].values / data["listings"].values * 1000)
    years = centred_years(log_r.size)
    shift = 0.3 * step(5, 12) - 0.2 * ramp(5, 12)
    # Adaptive quadrature around the least-squares fit (± 12 standard errors holds all the mass).
    design = np.column_stack([np.ones_like(years), years])
    coef, *_ = np.linalg.lstsq(design, log_r - shift, rcond=None)
    se = 0.15 * np.sqrt(np.diag(np.linalg.inv(design.T @ design)))

    def log_joint(b, a):
        return (
            stats.norm.logpdf(log_r, a + b * years + shift, 0.15).sum()
            + stats.norm.logpdf(a, 0.0, 3.0)
            + stats.norm.logpdf(b, 0.0, 0.5)
        )

    peak = log_joint(coef[1], coef[0])
    total, _ = integrate.dblquad(
        lambda b, a: np.exp(log_joint(b, a) - peak),
        coef[0] - 12 * se[0],
        coef[0] + 12 * se[0],
        coef[1] - 12 * se[1],
        coef[1] + 12 * se[1],
        epsabs=0.0,
        epsrel=1e-10,
    )
    total = np.exp(peak) * total
    assert logp == pytest.approx(np.log(total), rel=1e-6)


def test_low_rank_adaptation_is_the_monitoring_default(sim12):
    from risklab.models.config import SamplerConfig as Config

    model = MonitoringModel(sim12.to_submission(), COMMITMENTS[:1])
    assert model.sampler_config.adaptation == "low_rank"
    chosen = MonitoringModel(
        sim12.to_submission(), COMMITMENTS[:1], sampler_config=Config(adaptation="diag")
    )
    assert chosen.sampler_config.adaptation == "diag"
    assert (
        MonitoringModel(
            sim12.to_submission(), COMMITMENTS[:1], sampler_config=Config(sampler="pymc")
        ).sampler_config.adaptation
        is None
    )
    # The platform model's provenance is unchanged by the new field.
    assert "adaptation" not in Config().to_json()
    assert Config.from_json(Config(adaptation="low_rank").to_json()).adaptation == "low_rank"
    with pytest.raises(ValueError, match="nutpie"):
        Config(sampler="pymc", adaptation="low_rank")
    with pytest.raises(ValueError, match="adaptation"):
        Config(adaptation="dense")


def test_projected_values_and_counterfactuals_need_only_their_own_inputs():
    """Each quantity reads only its own link-scale draws (the others may be None), and the
    counterfactual removes the shift on that scale."""
    from scipy.special import expit as _expit

    from risklab.monitoring.projection import _quantity_values
    from risklab.monitoring.quantities import shifted_value

    rng = np.random.default_rng(0)
    shift = rng.normal(0, 0.3, (5, 2))
    base = dict(
        logit_pi=None, level_logit=None, saturation=None, log_theta=None, r_new=None, q=None
    )
    cases = {
        "prevalence": (
            {"logit_pi": rng.normal(-4, 0.5, (5, 2))},
            lambda k: _expit(k["logit_pi"] - shift),
        ),
        "hidden_share": (
            {"level_logit": rng.normal(0, 0.5, (5, 2)), "saturation": np.full((5, 2), 0.8)},
            lambda k: 1 - np.minimum(_expit(k["level_logit"] - shift) / 0.8, 1),
        ),
        "efficiency": (
            {"log_theta": rng.normal(0, 0.2, (5, 2))},
            lambda k: np.exp(k["log_theta"] - shift),
        ),
        "review_capacity": ({"r_new": np.array([1.5, 3.0])}, lambda k: k["r_new"] * np.exp(-shift)),
        "enforcement": (
            {"q": rng.uniform(0.2, 0.8, 5)},
            lambda k: _expit(np.log(k["q"][:, None] / (1 - k["q"][:, None])) - shift),
        ),
    }
    for name, (inputs, expected_cf) in cases.items():
        value, cf = _quantity_values(name, **{**base, **inputs}, shift=shift)
        np.testing.assert_allclose(cf, expected_cf(inputs), rtol=1e-12)
        assert value.shape == cf.shape == shift.shape
    zero = shifted_value("prevalence", np.array([-3.0]), 0.0)
    np.testing.assert_allclose(zero, _expit(-3.0))
    with pytest.raises(ValueError, match="unknown quantity"):
        _quantity_values("price", **base, shift=shift)
