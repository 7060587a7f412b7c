"""risklab.attribution: Shapley split of log U, checked by identity, axioms and known truth."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from risklab.attribution import attribute, shapley_values
from risklab.counterfactual import Levers, PosteriorState, evaluate_arrays, saturation_intensity
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.plotting.attribution import plot_attribution_grid, plot_attribution_waterfall
from tests.conftest import small_marketplace
from tests.states import truth_state

REFERENCES = ("detections", "claimed_enforcement")


@pytest.fixture(scope="module")
def sim():
    return small_marketplace(seed=11, efficiency_log_sd=0.0, detection_ceiling=1.0, traders=True)


@pytest.fixture(scope="module")
def state(sim):
    return truth_state(sim)


def _perturbed(state: PosteriorState, *, chains: int = 2, draws: int = 20, seed: int = 5):
    """Many draws around a one-draw state: a stand-in for a posterior, with known inputs."""
    rng = np.random.default_rng(seed)
    s = chains * draws
    k = len(state.categories)

    def rep(a):
        return np.repeat(a, s, axis=0)

    kwargs = {}
    if state.has_offenders:
        kwargs = dict(
            enforcement=np.clip(rep(state.enforcement) + rng.normal(0, 0.1, s), 0.05, 0.95),
            after_threshold_share=rep(state.after_threshold_share),
        )
    return replace(
        state,
        amplitude=np.minimum(rep(state.amplitude) * np.exp(rng.normal(0, 0.1, (s, k))), 0.99),
        efficiency=rep(state.efficiency) * np.exp(rng.normal(0, 0.3, (s, 1))),
        logit_prevalence=rep(state.logit_prevalence) + rng.normal(0, 0.3, (s, k, 1)),
        other_rates=rep(state.other_rates) * np.exp(rng.normal(0, 0.2, (s, k, 1, 1))),
        false_positive_share=rng.uniform(0, 0.1, (s, k)),
        sample_shape=(chains, draws),
        **kwargs,
    )


@pytest.fixture(scope="module")
def many(state):
    return _perturbed(state)


# --- the identity --------------------------------------------------------------------------


@pytest.mark.parametrize("reference", REFERENCES)
def test_components_add_up_to_log_u_per_draw(many, reference):
    att = attribute(many, reference=reference)
    ds = att.draws
    log_u = np.log(evaluate_arrays(many, Levers())["underestimation_vs_claim"])
    np.testing.assert_allclose(ds["log_underestimation"].values.reshape(log_u.shape), log_u)
    np.testing.assert_allclose(
        ds["contribution"].sum("component").values,
        ds["log_underestimation"].values,
        atol=1e-10,
        rtol=0,
    )
    # Platform-wide: U of the listings-weighted prevalence against the listings-weighted claim.
    base = evaluate_arrays(many, Levers())
    n = many.listings.sum(axis=1)
    plat = np.log((base["prevalence"] * n).sum(1) / (many.claimed_prevalence * n).sum())
    np.testing.assert_allclose(ds["platform_log_underestimation"].values.ravel(), plat)
    np.testing.assert_allclose(
        ds["platform_contribution"].sum("component").values,
        ds["platform_log_underestimation"].values,
        atol=1e-10,
        rtol=0,
    )
    assert ds["contribution"].dims == ("chain", "draw", "category", "component")
    assert ds.sizes["chain"] == 2 and ds.sizes["draw"] == 20


def test_reporting_term_is_claim_against_own_detections(many):
    att = attribute(many, reference="detections")
    reported = evaluate_arrays(many, Levers())["reported_share"]
    expected = np.log(reported / many.claimed_prevalence[None, :])
    got = att.draws["contribution"].sel(component="reporting").values.reshape(expected.shape)
    np.testing.assert_allclose(got, expected)
    # By default the claim is compared with the detections under the claimed enforcement.
    default = attribute(many).draws["contribution"].sel(component="reporting").values
    enforced = evaluate_arrays(many, Levers(enforcement=many.claimed_enforcement))
    np.testing.assert_allclose(
        default.reshape(expected.shape),
        np.log(enforced["reported_share"] / many.claimed_prevalence[None, :]),
    )


# --- Shapley axioms on synthetic games ------------------------------------------------------


def _all_coalitions(players):
    return [frozenset(c) for n in range(len(players) + 1) for c in combinations(players, n)]


def test_shapley_efficiency_on_a_random_game():
    rng = np.random.default_rng(0)
    players = ["a", "b", "c"]
    game = {s: rng.normal(size=(5, 2)) for s in _all_coalitions(players)}
    phi = shapley_values(game, players)
    total = sum(phi.values())
    np.testing.assert_allclose(total, game[frozenset()] - game[frozenset(players)], atol=1e-12)


def test_shapley_symmetry_and_null_player():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(3, 4, 2))  # value depends on how many of a, b joined and on c

    def v(s):
        return base[len(s & {"a", "b"}), :, int("c" in s)]

    phi = shapley_values(v, ["a", "b", "c", "d"])  # d changes nothing
    np.testing.assert_allclose(phi["a"], phi["b"], atol=1e-12)
    assert not np.allclose(phi["a"], 0)
    np.testing.assert_allclose(phi["d"], 0, atol=1e-12)


def test_shapley_closed_forms():
    # Additive game: each player removes its own amount, whatever the order.
    w = {"a": 0.5, "b": 2.0, "c": -1.0}

    def additive(s):
        return np.array(3.0 - sum(w[p] for p in s))

    phi = shapley_values(additive, list(w))
    for p in w:
        np.testing.assert_allclose(phi[p], w[p])
    # Pure interaction of two players: the joint effect beyond the single ones is split evenly.
    game = {
        frozenset(): np.array(0.0),
        frozenset("a"): np.array(-1.0),
        frozenset("b"): np.array(-1.0),
        frozenset("ab"): np.array(-4.0),
    }
    phi = shapley_values(game, ["a", "b"])
    np.testing.assert_allclose([phi["a"], phi["b"]], [2.0, 2.0])
    with pytest.raises(ValueError, match="distinct"):
        shapley_values(game, ["a", "a"])


# --- known truth --------------------------------------------------------------------------


def _single_period_state(amplitude, intensity, efficiency, prevalence, claimed):
    """Proactive detection only, one period: ``log(π / R) = −log(A s(θ r))`` in closed form."""
    amplitude = np.asarray(amplitude, dtype=float)
    s, k = amplitude.shape
    listings = np.full((k, 1), 1e5)
    return PosteriorState(
        categories=[f"c{i}" for i in range(k)],
        periods=["p0"],
        channels=["proactive"],
        listings=listings,
        review_hours=np.asarray(intensity, dtype=float)[:, None] * listings / 1000,
        claimed_prevalence=np.asarray(claimed, dtype=float),
        thresholds=np.array([0.01]),
        labels=["low", "high"],
        amplitude=amplitude,
        efficiency=np.asarray(efficiency, dtype=float),
        logit_prevalence=np.log(prevalence / (1 - prevalence))[:, :, None],
        other_rates=np.zeros((s, k, 1, 0)),
        false_positive_share=np.zeros((s, k)),
    )


def test_closed_form_without_interactions():
    rng = np.random.default_rng(3)
    s, sigma = 12, 0.85
    theta = np.exp(rng.normal(0, 0.3, s))
    # c0: under-resourced, evasive; c1: above adequate review; c2: nothing hidden (A = 1).
    intensity = np.array([0.3, 8.0, 0.5])
    amplitude = np.column_stack([rng.uniform(0.5, 0.9, s), rng.uniform(0.5, 0.9, s), np.ones(s)])
    prevalence = rng.uniform(0.005, 0.05, (s, 3))
    claimed = np.array([0.002, 0.01, 0.003])
    state = _single_period_state(amplitude, intensity, theta, prevalence, claimed)
    att = attribute(state, adequate_saturation=sigma)
    got = {
        c: att.draws["contribution"].sel(component=c).values.reshape(s, 3) for c in att.components
    }
    sat = -np.expm1(-theta[:, None] * intensity[None, :])
    adequate = np.maximum(sat, sigma)
    np.testing.assert_allclose(got["resources"], np.log(adequate / sat), atol=1e-9)
    np.testing.assert_allclose(got["evasion"], -np.log(amplitude), atol=1e-9)
    np.testing.assert_allclose(got["residual"], -np.log(adequate), atol=1e-9)
    np.testing.assert_allclose(
        got["reporting"], np.log(prevalence * amplitude * sat / claimed), atol=1e-9
    )
    # Null players: review already adequate, nothing hidden.
    assert np.all(sat[:, 1] > sigma)
    np.testing.assert_array_equal(got["resources"][:, 1], 0.0)
    np.testing.assert_array_equal(got["evasion"][:, 2], 0.0)
    assert np.all(got["resources"][:, 0] > 0.1) and np.all(got["evasion"][:, 0] > 0.1)
    assert att.components == ("resources", "evasion", "residual", "reporting")


def test_hand_computed_shapley_for_one_category(state):
    """Three players, eight coalitions, from evaluate_arrays and the textbook weights."""
    sigma, q_claim = 0.9, state.claimed_enforcement
    toys = state.categories.index("toys")

    def v(res, eva, enf):
        out = evaluate_arrays(
            state,
            Levers(
                min_saturation=sigma if res else None,
                hidden_share_factor=0.0 if eva else 1.0,
                enforcement=q_claim if enf else None,
            ),
        )
        return float(np.log(out["prevalence"][0, toys] / out["reported_share"][0, toys]))

    third, sixth = 1 / 3, 1 / 6
    expected = {
        "resources": third * (v(0, 0, 0) - v(1, 0, 0))
        + sixth * (v(0, 1, 0) - v(1, 1, 0))
        + sixth * (v(0, 0, 1) - v(1, 0, 1))
        + third * (v(0, 1, 1) - v(1, 1, 1)),
        "evasion": third * (v(0, 0, 0) - v(0, 1, 0))
        + sixth * (v(1, 0, 0) - v(1, 1, 0))
        + sixth * (v(0, 0, 1) - v(0, 1, 1))
        + third * (v(1, 0, 1) - v(1, 1, 1)),
        "non_enforcement": third * (v(0, 0, 0) - v(0, 0, 1))
        + sixth * (v(1, 0, 0) - v(1, 0, 1))
        + sixth * (v(0, 1, 0) - v(0, 1, 1))
        + third * (v(1, 1, 0) - v(1, 1, 1)),
        "residual": v(1, 1, 1),
    }
    # The game as written above: v(S) = log(π_S / R_S) (the "detections" anchor).
    att = attribute(state, adequate_saturation=sigma, reference="detections")
    got = att.draws["contribution"].sel(category="toys")
    for comp, value in expected.items():
        np.testing.assert_allclose(got.sel(component=comp).item(), value, rtol=1e-12, atol=1e-14)
    # The simulated toys category is under-resourced and evasive: both contribute.
    assert expected["resources"] > 0.5 and expected["evasion"] > 0.05


def test_non_enforcement_is_the_simulators_excess_prevalence(sim, state):
    """Anchored at the claimed policy, non-enforcement is log(π / π if enforced as claimed)."""
    att = attribute(state, reference="claimed_enforcement")
    got = att.draws["contribution"].sel(component="non_enforcement").values.ravel()
    listings = state.listings
    for i, cat in enumerate(state.categories):
        enforced = (np.asarray(sim.truth["prevalence_if_enforced"][cat]) * listings[i]).sum()
        expected = np.log(sim.truth["prevalence_category"][cat] * listings[i].sum() / enforced)
        assert expected > 0.05  # the simulated platform under-enforces
        np.testing.assert_allclose(got[i], expected, rtol=1e-6)
    # Anchored at the fitted detections, non-enforcement moves prevalence and detections
    # together, so it explains next to nothing of log U; the reporting term absorbs the rest.
    plain = attribute(state, reference="detections")
    c_plain = plain.draws["contribution"].sel(component="non_enforcement").values.ravel()
    assert np.all(np.abs(c_plain) < 1e-3 * got)
    moved = plain.draws["contribution"] - att.draws["contribution"]
    np.testing.assert_allclose(
        moved.sel(component=["non_enforcement", "reporting"]).sum("component"), 0, atol=1e-4
    )


@pytest.mark.parametrize("reference", REFERENCES)
def test_non_enforcement_zero_when_enforced_as_claimed(many, reference):
    as_claimed = replace(many, enforcement=np.full(many.n_draws, many.claimed_enforcement))
    att = attribute(as_claimed, reference=reference)
    np.testing.assert_allclose(
        att.draws["contribution"].sel(component="non_enforcement"), 0.0, atol=1e-12
    )


def test_resources_zero_where_review_is_already_adequate(state):
    sigma = 0.9
    toys = state.categories.index("toys")
    r_star = float(saturation_intensity(state.efficiency[0, toys], sigma))
    hours = state.review_hours.copy()
    hours[toys] = 2 * r_star * state.listings[toys] / 1000  # well above adequate everywhere
    rich = replace(state, review_hours=hours)
    att = attribute(rich, adequate_saturation=sigma)
    base = attribute(state, adequate_saturation=sigma)
    res = att.draws["contribution"].sel(component="resources")
    np.testing.assert_array_equal(res.sel(category="toys"), 0.0)
    others = [c for c in state.categories if c != "toys"]
    np.testing.assert_allclose(
        att.draws["contribution"].sel(category=others),
        base.draws["contribution"].sel(category=others),
    )
    assert base.draws["contribution"].sel(category="toys", component="resources").item() > 0.5


def test_evasion_zero_without_hidden_share(state):
    amplitude = state.amplitude.copy()
    amplitude[0, state.categories.index("jewellery")] = 1.0
    att = attribute(replace(state, amplitude=amplitude))
    np.testing.assert_array_equal(
        att.draws["contribution"].sel(category="jewellery", component="evasion"), 0.0
    )
    assert att.draws["contribution"].sel(category="toys", component="evasion").item() > 0.05


def test_higher_adequacy_moves_the_gap_from_residual_to_resources(many):
    low = attribute(many, adequate_saturation=0.7).draws["contribution"]
    high = attribute(many, adequate_saturation=0.95).draws["contribution"]
    assert np.all(
        high.sel(component="resources").values >= low.sel(component="resources").values - 1e-12
    )
    assert np.all(
        high.sel(component="residual").values <= low.sel(component="residual").values + 1e-12
    )
    assert np.any(high.sel(component="resources").values > low.sel(component="resources").values)


def test_without_offenders_there_is_no_non_enforcement():
    state = truth_state(small_marketplace(seed=2, efficiency_log_sd=0.0, detection_ceiling=1.0))
    a = attribute(state, reference="detections")
    b = attribute(state)
    assert "non_enforcement" not in a.draws["component"].values
    np.testing.assert_array_equal(a.draws["contribution"], b.draws["contribution"])
    assert a.table["non_enforcement_median"].isna().all()
    np.testing.assert_allclose(
        a.draws["contribution"].sum("component"), a.draws["log_underestimation"], atol=1e-10
    )


# --- tables and shares ----------------------------------------------------------------------


def test_table_summarises_the_draws(many):
    att = attribute(many, prob=0.8)
    table = att.table.set_index("category")
    draws = att.draws["contribution"].sel(category="toys", component="resources").values.ravel()
    low, med, high = np.quantile(draws, [0.1, 0.5, 0.9])
    row = table.loc["toys"]
    np.testing.assert_allclose(
        [row["resources_low"], row["resources_median"], row["resources_high"]], [low, med, high]
    )
    assert list(table.index) == many.categories
    assert len(att.platform) == 1 and att.platform["category"].iloc[0] == "platform-wide"
    for comp in att.components:
        assert np.all(table[f"{comp}_low"] <= table[f"{comp}_median"])
        assert np.all(table[f"{comp}_median"] <= table[f"{comp}_high"])
    summary = att.summary("toys")
    assert list(summary["component"]) == [*att.components, "log_underestimation"]
    with pytest.raises(ValueError, match="unknown category"):
        att.summary("weapons")


def test_shares_are_signed_shares_of_the_gross_movement(many):
    att = attribute(many, reference="claimed_enforcement")
    contrib = att.draws["contribution"].values
    share = att.draws["share"].values
    np.testing.assert_allclose(np.abs(share).sum(-1), 1.0)
    np.testing.assert_array_equal(np.sign(share), np.sign(contrib))
    # Where every component pushes the same way, the share is the plain share of log U.
    same_sign = np.all(contrib >= 0, axis=-1)
    assert same_sign.any()
    log_u = att.draws["log_underestimation"].values[..., None]
    np.testing.assert_allclose(share[same_sign], (contrib / log_u)[same_sign], rtol=1e-12)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5, float("nan"), "0.9", None])
def test_adequate_saturation_out_of_range(state, bad):
    with pytest.raises(ValueError, match="adequate_saturation"):
        attribute(state, adequate_saturation=bad)


def test_other_validation(state):
    with pytest.raises(ValueError, match="prob"):
        attribute(state, prob=1.0)
    with pytest.raises(ValueError, match="reference"):
        attribute(state, reference="claims")
    with pytest.raises(ValueError, match="PosteriorState"):
        attribute({"posterior": None})
    zero_claim = replace(state, claimed_prevalence=np.array([0.001, 0.0, 0.001, 0.001]))
    with pytest.raises(ValueError, match=r"claimed_prevalence.*jewellery"):
        attribute(zero_claim)


# --- from a fitted model (mocked sampling: no MCMC) ------------------------------------------


def test_from_fitted_model(mocked_sampling):
    sub = small_marketplace(seed=4, traders=True).to_submission()
    model = PlatformRiskModel(sub, sampler_config=SamplerConfig(draws=30, chains=2))
    model.fit(random_seed=3)
    att = attribute(model)
    ds = att.draws
    assert ds.sizes == {"chain": 2, "draw": 30, "category": 4, "component": 5}
    np.testing.assert_allclose(
        ds["contribution"].sum("component"), ds["log_underestimation"], atol=1e-10
    )
    post_u = (
        (model.posterior["prevalence"] * sub.data["listings"]).sum("period")
        / sub.data["listings"].sum("period")
        / sub.data["claimed_prevalence"]
    )
    np.testing.assert_allclose(
        ds["log_underestimation"].transpose("chain", "draw", "category"),
        np.log(post_u.transpose("chain", "draw", "category")),
        rtol=1e-9,
    )
    assert att.converged is not None


# --- figures ---------------------------------------------------------------------------------


def test_waterfall_steps_end_at_mean_log_u(many):
    att = attribute(many, reference="claimed_enforcement")
    fig, ax = plt.subplots()
    try:
        out = plot_attribution_waterfall(att, category="toys", ax=ax)
        assert out is ax
        bars = ax.patches
        assert len(bars) == len(att.components) + 1
        steps = [b.get_y() + b.get_height() for b in bars[:-1]]
        log_u = att.draws["log_underestimation"].sel(category="toys").values.mean()
        np.testing.assert_allclose(steps[-1], log_u, rtol=1e-9)
        np.testing.assert_allclose(bars[-1].get_height(), log_u, rtol=1e-9)
        np.testing.assert_allclose(
            bars[0].get_height(),
            att.draws["contribution"].sel(category="toys", component="resources").values.mean(),
        )
        with pytest.raises(ValueError, match="unknown category"):
            plot_attribution_waterfall(att, category="weapons", ax=ax)
    finally:
        plt.close(fig)


def test_grid_has_one_panel_per_category_and_platform(many):
    att = attribute(many)
    fig = plot_attribution_grid(att, ncols=2)
    try:
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.patches]
        assert len(visible) == len(many.categories) + 1
        assert visible[0].get_title().startswith("platform-wide")
    finally:
        plt.close(fig)
