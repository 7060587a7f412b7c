"""risklab.mitigation: measures, review-hour allocation and hours to target, on known truth."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from risklab import allocation as al
from risklab import mitigation as mt
from risklab.counterfactual import Levers, PosteriorState, evaluate_arrays
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.plotting.mitigation import plot_allocation, plot_cost_effectiveness
from tests.conftest import small_marketplace
from tests.states import truth_state

THREE = ("medicines", "toys", "cosmetics")


@pytest.fixture(scope="module")
def sim():
    return small_marketplace(seed=11, efficiency_log_sd=0.0, detection_ceiling=1.0, traders=True)


@pytest.fixture(scope="module")
def state(sim):
    return truth_state(sim)


def perturbed(state: PosteriorState, n_draws: int, seed: int, sd: float = 0.3) -> PosteriorState:
    """A many-draw 'posterior' around a truth state (efficiency, reach and prevalence vary)."""
    rng = np.random.default_rng(seed)
    k_len = len(state.categories)
    return PosteriorState(
        categories=state.categories,
        periods=state.periods,
        channels=state.channels,
        listings=state.listings,
        review_hours=state.review_hours,
        claimed_prevalence=state.claimed_prevalence,
        thresholds=state.thresholds,
        labels=state.labels,
        amplitude=state.amplitude * np.exp(rng.normal(0, sd / 3, (n_draws, k_len))),
        efficiency=state.efficiency[0] * np.exp(rng.normal(0, sd, (n_draws, 1))),
        logit_prevalence=state.logit_prevalence + rng.normal(0, sd, (n_draws, k_len, 1)),
        other_rates=np.repeat(state.other_rates, n_draws, axis=0),
        false_positive_share=np.zeros((n_draws, k_len)),
        enforcement=np.repeat(state.enforcement, n_draws) if state.has_offenders else None,
        after_threshold_share=(
            np.repeat(state.after_threshold_share, n_draws) if state.has_offenders else None
        ),
        claimed_enforcement=state.claimed_enforcement,
    )


@pytest.fixture(scope="module")
def posterior(state):
    return perturbed(state, 41, seed=5)


@pytest.fixture(scope="module")
def three(sim):
    """Three categories, 25 draws: small enough for brute force."""
    base = truth_state(
        small_marketplace(
            seed=4, categories=THREE, efficiency_log_sd=0.0, detection_ceiling=1.0, traders=True
        )
    )
    return perturbed(base, 25, seed=9)


def weighted_undetected(state, extra, weights):
    """Independent objective: expected severity-weighted undetected listings."""
    out = evaluate_arrays(state, Levers(review_hours_add=np.asarray(extra, float)))
    return float((out["undetected_listings"] * weights).sum(-1).mean())


# ------------------------------------------------------------------------------- measures


def test_enforcing_as_claimed_gives_the_true_counterfactual(sim, state):
    result = mt.evaluate(state, mt.Measure.enforce_strike_policy(cost=1.0))
    draws = result.draws.sel(measure="enforce strike policy as claimed")
    for i, cat in enumerate(state.categories):
        listings = state.listings[i]
        expected = (np.asarray(sim.truth["prevalence_if_enforced"][cat]) * listings).sum()
        np.testing.assert_allclose(
            draws["prevalence"].sel(category=cat).item(), expected / listings.sum()
        )
        # Residual band: the band of the true counterfactual prevalence, from the thresholds.
        band = int(np.sum(expected / listings.sum() >= np.asarray(sim.toml["scale"]["thresholds"])))
        row = result.table.query("measure == @draws.measure.item() and category == @cat").iloc[0]
        assert row[f"p_band:{state.labels[band]}"] == 1.0
        assert row["most_likely_band"] == state.labels[band]
    # The truth's enforcement is below the claim, so enforcing avoids listings everywhere.
    assert np.all(draws["avoided"].values > 0)


def test_avoided_and_cost_per_avoided_are_defined_against_the_baseline(state):
    hours = {"toys": 300.0, "medicines": 100.0}
    measure = mt.Measure.extra_review_hours(hours, cost_per_hour=40.0)
    assert measure.cost == 400 * 40.0
    result = mt.evaluate(state, [measure, mt.Measure("nothing", cost=500.0), mt.Measure("free")])
    base = evaluate_arrays(state, Levers())["undetected_listings"][0]
    after = evaluate_arrays(state, Levers(review_hours_add=hours))["undetected_listings"][0]
    avoided = result.draws["avoided"].sel(measure=measure.name).values.ravel()
    np.testing.assert_allclose(avoided, base - after, rtol=1e-12)
    totals = result.totals.set_index("measure")
    np.testing.assert_allclose(
        totals.loc[measure.name, "cost_per_avoided"], 16000.0 / (base - after).sum()
    )
    # Only the categories given hours avoid anything.
    cats = state.categories
    untouched = [cats.index(c) for c in cats if c not in hours]
    assert np.all(avoided[untouched] == 0) and np.all(np.delete(avoided, untouched) > 0)
    assert totals.loc["nothing", "cost_per_avoided"] == np.inf
    assert np.isnan(totals.loc["free", "cost_per_avoided"])
    assert np.isnan(totals.loc[mt.BASELINE, "cost_per_avoided"])
    assert totals.loc[mt.BASELINE, "avoided_mean"] == 0
    assert mt.COMBINED in totals.index
    np.testing.assert_allclose(totals.loc[mt.COMBINED, "cost"], 16500.0)


def test_total_hours_are_spread_in_proportion_to_listings(state):
    total = 1200.0
    spread = mt.Measure.extra_review_hours(total, cost_per_hour=10.0)
    listings = state.listings.sum(axis=1)
    explicit = dict(zip(state.categories, total * listings / listings.sum(), strict=True))
    a = evaluate_arrays(state, spread.levers_for(state))
    b = evaluate_arrays(state, Levers(review_hours_add=explicit))
    np.testing.assert_allclose(a["undetected_listings"], b["undetected_listings"], rtol=1e-12)
    np.testing.assert_allclose(a["review_hours"].sum(), state.review_hours.sum() + total)


def test_package_composition_rules(state):
    half = mt.Measure.hidden_link_controls(0.5, cost=10.0, name="half")
    again = mt.Measure.hidden_link_controls(0.5, cost=20.0, name="again")
    hours_a = mt.Measure.extra_review_hours({"toys": 100.0}, cost_per_hour=1.0, name="a")
    hours_b = mt.Measure.extra_review_hours({"toys": 50.0}, cost_per_hour=1.0, name="b")
    lax = mt.Measure.enforce_strike_policy(0.5, cost=0.0, name="lax")
    strict = mt.Measure.enforce_strike_policy(0.9, cost=0.0, name="strict")
    package = mt.combine([half, again, hours_a, hours_b, lax, strict])
    assert package.cost == 30.0 + 150.0
    expected = Levers(hidden_share_factor=0.25, review_hours_add={"toys": 150.0}, enforcement=0.9)
    got = evaluate_arrays(state, package.levers_for(state))
    want = evaluate_arrays(state, expected)
    for key in ("prevalence", "undetected_listings", "reported_share"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12)
    # Packages of packages flatten; a claimed enforcement joins the max.
    claimed = mt.Measure.enforce_strike_policy(cost=0.0)
    nested = mt.combine([mt.combine([lax]), claimed])
    assert nested.levers_for(state).enforcement == max(0.5, state.claimed_enforcement)


def test_package_conflicts_are_errors():
    grow = mt.Measure("grow", levers=Levers(listings_factor=1.5))
    shrink = mt.Measure("shrink", levers=Levers(listings_factor=0.5))
    with pytest.raises(ValueError, match="conflicting listings_factor"):
        mt.combine([grow, shrink])
    mt.combine([grow, mt.Measure("same", levers=Levers(listings_factor=1.5))])  # agreeing: fine
    with pytest.raises(ValueError, match="duplicate"):
        mt.combine([grow, grow])
    with pytest.raises(ValueError, match="at least one"):
        mt.combine([])
    trend_a = mt.Measure("ta", levers=Levers(prevalence_trend=np.array([0.1, 0.0, 0.0, 0.0])))
    trend_b = mt.Measure("tb", levers=Levers(prevalence_trend=np.array([0.2, 0.0, 0.0, 0.0])))
    with pytest.raises(ValueError, match="conflicting prevalence_trend"):
        mt.combine([trend_a, trend_b])
    with pytest.raises(ValueError, match="package"):
        mt.Measure("p", levers=Levers(efficiency_factor=2.0), parts=(grow,))


def test_result_layout(posterior):
    measures = [
        mt.Measure.extra_review_hours(500.0, cost_per_hour=30.0),
        mt.Measure.hidden_link_controls({"toys": 0.5}, cost=1e4),
    ]
    result = mt.evaluate(posterior, measures, prob=0.8)
    names = [mt.BASELINE, *[m.name for m in measures], mt.COMBINED]
    assert list(result.draws["measure"].values) == names
    assert result.draws["avoided"].dims == ("measure", "chain", "draw", "category")
    assert "scenario" not in result.draws.dims
    assert len(result.table) == len(names) * len(posterior.categories)
    band_cols = [c for c in result.table if c.startswith("p_band:")]
    np.testing.assert_allclose(result.table[band_cols].sum(axis=1), 1.0)
    row = result.table.iloc[5]
    assert row["avoided_low"] <= row["avoided_median"] <= row["avoided_high"]
    assert list(result.draws["cost"].values) == [0.0, 15000.0, 1e4, 25000.0]
    assert mt.evaluate(posterior, measures, combined=False).totals["measure"].tolist() == names[:-1]


def test_cost_per_avoided_interval_matches_the_draws(posterior):
    # 41 draws: the median is an order statistic, so mapping it through cost / . is exact.
    result = mt.evaluate(posterior, mt.Measure.extra_review_hours(800.0, cost_per_hour=25.0))
    name = result.totals["measure"].iloc[1]
    per_draw = result.draws["cost_per_avoided"].sel(measure=name).values.ravel()
    assert np.all(np.isfinite(per_draw)) and np.all(per_draw > 0)
    row = result.totals.set_index("measure").loc[name]
    np.testing.assert_allclose(row["cost_per_avoided_median"], np.median(per_draw), rtol=1e-12)
    assert row["cost_per_avoided_low"] <= row["cost_per_avoided_median"]
    assert row["cost_per_avoided_median"] <= row["cost_per_avoided_high"]
    inside = np.mean(
        (per_draw >= row["cost_per_avoided_low"]) & (per_draw <= row["cost_per_avoided_high"])
    )
    assert 0.8 <= inside <= 0.95
    avoided = result.draws["total_avoided"].sel(measure=name).values.ravel()
    np.testing.assert_allclose(row["cost_per_avoided"], 20000.0 / avoided.mean())


@settings(max_examples=25, deadline=None)
@given(hours=st.lists(st.floats(0, 2e4), min_size=2, max_size=2))
def test_more_review_hours_never_raise_undetected_listings(posterior, hours):
    low, high = sorted(hours)
    measures = [
        mt.Measure.extra_review_hours(low, cost_per_hour=1.0, name="low"),
        mt.Measure.extra_review_hours(high, cost_per_hour=1.0, name="high"),
    ]
    draws = mt.evaluate(posterior, measures, combined=False).draws
    und = draws["undetected_listings"]
    assert np.all(und.sel(measure="high") <= und.sel(measure="low") * (1 + 1e-12))
    assert np.all(draws["avoided"].sel(measure="low") >= -1e-9)


def test_measure_validation(state):
    with pytest.raises(ValueError, match="cost"):
        mt.Measure("x", cost=-1.0)
    with pytest.raises(ValueError, match="name"):
        mt.Measure("  ")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mt.Measure.hidden_link_controls(1.5, cost=0.0)
    with pytest.raises(ValueError, match="claimed"):
        mt.Measure.enforce_strike_policy("always", cost=0.0)
    with pytest.raises(ValueError, match="cost_per_hour"):
        mt.Measure.extra_review_hours(10.0, cost_per_hour=float("nan"))
    with pytest.raises(ValueError, match="reserved"):
        mt.evaluate(state, mt.Measure(mt.BASELINE))
    with pytest.raises(ValueError, match="duplicate"):
        mt.evaluate(state, [mt.Measure("a"), mt.Measure("a")])
    with pytest.raises(ValueError, match="unknown categories"):
        mt.evaluate(state, mt.Measure.extra_review_hours({"weapons": 5.0}, cost_per_hour=1.0))
    no_traders = truth_state(small_marketplace(seed=2, efficiency_log_sd=0, detection_ceiling=1))
    with pytest.raises(ValueError, match="repeat-offender"):
        mt.evaluate(no_traders, mt.Measure.enforce_strike_policy(cost=1.0))
    with pytest.raises(ValueError, match="prob"):
        mt.evaluate(state, mt.Measure("a"), prob=1.0)


# ----------------------------------------------------------------------------- allocation


def test_greedy_matches_brute_force(three):
    weights = al.severity_weights(three.categories)
    budget, n_steps = 600.0, 24
    allocation = al.allocate_review_hours(three, budget, step=budget / n_steps, target=None)
    got = allocation.table["extra_hours"].to_numpy()
    step = budget / n_steps
    best, best_x = np.inf, None
    for i, j in itertools.product(range(n_steps + 1), repeat=2):
        if i + j <= n_steps:
            x = np.array([i, j, n_steps - i - j]) * step
            value = weighted_undetected(three, x, weights)
            if value < best:
                best, best_x = value, x
    np.testing.assert_allclose(got, best_x)
    np.testing.assert_allclose(
        allocation.totals["expected_weighted_undetected_optimal"], best, rtol=1e-12
    )


def test_greedy_matches_scipy_on_the_continuous_problem(three):
    weights = np.array([3.0, 1.0, 2.0])
    severity = dict(zip(three.categories, weights, strict=True))
    budget = 900.0
    allocation = al.allocate_review_hours(three, budget, severity=severity, step=0.5, target=None)
    got = allocation.table["extra_hours"].to_numpy()
    scale = weighted_undetected(three, np.zeros(3), weights)
    res = optimize.minimize(
        lambda x: weighted_undetected(three, x, weights) / scale,
        np.full(3, budget / 3),
        method="SLSQP",
        bounds=[(0, budget)] * 3,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - budget}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert res.success
    np.testing.assert_allclose(got, res.x, atol=3.0)
    ours = allocation.totals["expected_weighted_undetected_optimal"]
    assert ours <= res.fun * scale * (1 + 1e-6)


def test_uses_the_posterior_not_a_plug_in(three):
    # Brute force on the mean of the draws' objectives (above) is the criterion; the allocation
    # for the first draw alone differs, so the draws matter.
    weights = al.severity_weights(three.categories)
    full = al.allocate_review_hours(three, 600.0, step=25.0, target=None)
    one = al.allocate_review_hours(perturbed_first(three), 600.0, step=25.0, target=None)
    assert not np.allclose(full.table["extra_hours"], one.table["extra_hours"])
    x_full = full.table["extra_hours"].to_numpy()
    x_one = one.table["extra_hours"].to_numpy()
    assert weighted_undetected(three, x_full, weights) <= weighted_undetected(three, x_one, weights)


def perturbed_first(state):
    return PosteriorState(
        **{
            **state.__dict__,
            "amplitude": state.amplitude[:1],
            "efficiency": state.efficiency[:1],
            "logit_prevalence": state.logit_prevalence[:1],
            "other_rates": state.other_rates[:1],
            "false_positive_share": state.false_positive_share[:1],
            "enforcement": state.enforcement[:1],
            "after_threshold_share": state.after_threshold_share[:1],
            "sample_shape": (1, 1),
        }
    )


@settings(max_examples=20, deadline=None)
@given(
    steps=st.lists(st.integers(0, 60), min_size=2, max_size=2),
    toys=st.floats(0.0, 5.0),
)
def test_more_budget_never_raises_expected_harm(posterior, steps, toys):
    low, high = sorted(steps)
    step = 40.0
    kw = dict(severity={"toys": toys}, step=step, target=None)
    a = al.allocate_review_hours(posterior, low * step, **kw).totals
    b = al.allocate_review_hours(posterior, high * step, **kw).totals
    assert b["expected_weighted_undetected_optimal"] <= a[
        "expected_weighted_undetected_optimal"
    ] * (1 + 1e-12)


@settings(max_examples=20, deadline=None)
@given(budget=st.floats(1.0, 5e4), severity=st.lists(st.floats(0.0, 5.0), min_size=4, max_size=4))
def test_optimal_is_never_worse_than_proportional(posterior, budget, severity):
    if max(severity) == 0:
        severity[0] = 1.0
    weights = dict(zip(posterior.categories, severity, strict=True))
    allocation = al.allocate_review_hours(posterior, budget, severity=weights, target=None)
    totals = allocation.totals
    assert (
        totals["expected_weighted_undetected_optimal"]
        <= totals["expected_weighted_undetected_proportional"]
    )
    np.testing.assert_allclose(allocation.table["extra_hours"].sum(), budget, rtol=1e-9)
    np.testing.assert_allclose(allocation.table["extra_hours_proportional"].sum(), budget)
    assert np.all(allocation.table["extra_hours"] >= 0)


def test_zero_budget_allocates_nothing(posterior):
    allocation = al.allocate_review_hours(posterior, 0.0, target=None)
    assert np.all(allocation.table["extra_hours"] == 0)
    assert np.all(allocation.draws["reduction"].values == 0)
    assert allocation.totals["advantage_mean"] == 0


def test_zero_severity_gets_no_hours_until_the_others_saturate(posterior):
    allocation = al.allocate_review_hours(
        posterior, 3000.0, severity={"toys": 0.0}, step=10.0, target=None
    )
    table = allocation.table.set_index("category")
    assert table.loc["toys", "extra_hours"] == 0
    assert table["extra_hours"].sum() == pytest.approx(3000.0)
    # With a budget past saturation of the others, toys' hours cannot matter: the weighted
    # objective reaches its floor, the value with every category saturated.
    weights = al.severity_weights(posterior.categories, {"toys": 0.0})
    huge = al.allocate_review_hours(
        posterior, 1e8, severity={"toys": 0.0}, step=1e6, target=None
    ).totals
    saturated = evaluate_arrays(posterior, Levers(min_saturation=1 - 1e-15))
    floor = float((saturated["undetected_listings"] * weights).sum(-1).mean())
    np.testing.assert_allclose(huge["expected_weighted_undetected_optimal"], floor, rtol=1e-6)


def test_severity_defaults_and_overrides():
    cats = ["medicines", "fashion_counterfeits", "garden"]
    np.testing.assert_array_equal(al.severity_weights(cats), [3.0, 1.0, 1.0])
    np.testing.assert_array_equal(al.severity_weights(cats, {"garden": 0.5}), [3.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="unknown categories"):
        al.severity_weights(cats, {"weapons": 2.0})
    with pytest.raises(ValueError, match="severity of 'garden'"):
        al.severity_weights(cats, {"garden": -1.0})
    with pytest.raises(ValueError, match="positive weight"):
        al.severity_weights(cats, dict.fromkeys(cats, 0.0))


def test_allocation_validation(state):
    with pytest.raises(ValueError, match="budget_hours"):
        al.allocate_review_hours(state, -5.0)
    with pytest.raises(ValueError, match="step"):
        al.allocate_review_hours(state, 5.0, step=0.0)
    with pytest.raises(ValueError, match="unknown categories"):
        al.allocate_review_hours(state, 5.0, severity={"weapons": 1.0})


# --------------------------------------------------------------------------- hours to target


def reach_limit(state) -> np.ndarray:
    """Closed form: detected / true share with saturated review (other channels constant)."""
    return 1.0 - state.hidden_share[0] + state.other_rates[0, :, 0, :].sum(-1)


def test_hours_to_target_hits_the_target_or_is_infinite(state):
    limit = reach_limit(state)
    now = evaluate_arrays(state, Levers())
    ratio_now = now["reported_share"][0] / now["prevalence"][0]
    # A target floor between the categories' reach limits, above what each detects now.
    floor = float(np.median(limit))
    assert np.all(ratio_now < floor)
    needed = al.hours_to_target(state, target=1 - floor, prob=None)
    reachable = limit > floor
    assert reachable.any() and (~reachable).any()
    assert np.all(np.isinf(needed["extra_hours"].to_numpy()[~reachable]))
    assert set(needed["status"][~reachable]) == {"unreachable"}
    assert all("hidden share" in r for r in needed["reason"][~reachable])
    extra = np.where(reachable, needed["extra_hours"].to_numpy(), 0.0)
    after = evaluate_arrays(state, Levers(review_hours_add=extra))
    ratio = after["reported_share"][0] / after["prevalence"][0]
    np.testing.assert_allclose(ratio[reachable], floor, rtol=1e-6)
    # One-draw state: the probability criterion gives the same hours.
    with_prob = al.hours_to_target(state, target=1 - floor, prob=0.9)
    np.testing.assert_allclose(with_prob["extra_hours"], needed["extra_hours"], rtol=1e-6)


def test_hours_to_target_already_met(state):
    needed = al.hours_to_target(state, target=0.9)
    assert np.all(needed["extra_hours"] == 0) and set(needed["status"]) == {"met"}


def test_hours_to_target_probability_criterion_is_minimal(posterior):
    target, prob = 0.25, 0.7
    needed = al.hours_to_target(posterior, target=target, prob=prob)
    finite = np.isfinite(needed["extra_hours"].to_numpy()) & (needed["extra_hours"] > 0)
    assert finite.any()
    extra = needed["extra_hours"].to_numpy()

    def share_met(x):
        out = evaluate_arrays(posterior, Levers(review_hours_add=np.where(finite, x, 0.0)))
        return (out["reported_share"] >= (1 - target) * out["prevalence"]).mean(0)

    assert np.all(share_met(extra)[finite] >= prob)
    assert np.all(share_met(extra * (1 - 1e-4))[finite] < prob)


def test_hours_to_target_validation(state):
    with pytest.raises(ValueError, match="target"):
        al.hours_to_target(state, target=0.0)
    with pytest.raises(ValueError, match="prob"):
        al.hours_to_target(state, prob=1.5)


# ------------------------------------------------------------------- fitted model and figures


def test_from_a_fitted_model(small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=20, chains=2))
    model.fit(random_seed=3)
    result = mt.evaluate(model, mt.Measure.hidden_link_controls(0.5, cost=1e4))
    assert result.draws.sizes["chain"] == 2 and result.draws.sizes["draw"] == 20
    assert np.all(result.draws["avoided"].sel(measure=result.measures[1].name) >= -1e-9)
    allocation = al.allocate_review_hours(model, 1000.0, step=50.0)
    assert allocation.draws["reduction"].dims == ("plan", "chain", "draw", "category")
    assert {"hours_to_target", "target_status"} <= set(allocation.table)


def test_figures(posterior):
    result = mt.evaluate(
        posterior,
        [
            mt.Measure.extra_review_hours(800.0, cost_per_hour=25.0),
            mt.Measure("useless", cost=100.0),
        ],
    )
    ax = plot_cost_effectiveness(result)
    assert len(ax.patches) == 2  # the useless measure (infinite cost) gets no bar
    plt.close(ax.figure)
    allocation = al.allocate_review_hours(posterior, 2000.0, target=None)
    fig, ax = plt.subplots()
    assert plot_allocation(allocation, ax=ax) is ax
    assert len(ax.patches) == 2 * len(posterior.categories)
    plt.close(fig)
