"""risklab.counterfactual: levers on posterior draws, checked against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risklab.counterfactual import (
    Levers,
    PosteriorState,
    evaluate,
    evaluate_arrays,
    saturation_intensity,
)
from risklab.models import PlatformRiskModel, SamplerConfig
from tests.conftest import small_marketplace
from tests.states import truth_state


@pytest.fixture(scope="module")
def sim():
    return small_marketplace(seed=11, efficiency_log_sd=0.0, detection_ceiling=1.0, traders=True)


@pytest.fixture(scope="module")
def state(sim):
    return truth_state(sim)


def test_baseline_reproduces_the_simulated_world(sim, state):
    out = evaluate_arrays(state, Levers())
    cats = state.categories
    d_true = np.array([sim.truth["detection_rate"][c] for c in cats])
    weights = state.listings / state.listings.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out["detection_rate"][0], (d_true * weights).sum(axis=1))
    np.testing.assert_allclose(
        out["prevalence"][0], [sim.truth["prevalence_category"][c] for c in cats]
    )
    # The reported share is the expected detected share: the simulated detections (what the
    # claims were computed from) lie within binomial noise of it.
    detected = sim.tables["detections"].groupby("category")["detected"].sum()
    expected = out["reported_share"][0] * state.listings.sum(axis=1)
    observed = detected.loc[cats].values
    assert np.all(np.abs(observed - expected) < 5 * np.sqrt(expected))
    np.testing.assert_allclose(
        out["underestimation_vs_claim"][0],
        [sim.truth["underestimation"][c] for c in cats],
        rtol=1e-5,  # the claims are written rounded to 8 decimals
    )
    np.testing.assert_allclose(out["review_hours"][0], state.review_hours.sum(axis=1))


def test_undetected_listings_closed_form(state):
    out = evaluate_arrays(state, Levers())
    pi = 1 / (1 + np.exp(-state.logit_prevalence[0]))
    d_pro = state.amplitude[0][:, None] * -np.expm1(-state.efficiency[0][:, None] * state.intensity)
    missed = (1 - d_pro) * np.prod(1 - state.other_rates[0], axis=-1)
    np.testing.assert_allclose(
        out["undetected_listings"][0], (state.listings * pi * missed).sum(axis=1)
    )


def test_enforcement_as_claimed_gives_the_true_counterfactual(sim, state):
    out = evaluate_arrays(state, Levers(enforcement=sim.truth["claimed_enforcement"]))
    listings = state.listings
    for i, cat in enumerate(state.categories):
        expected = (np.asarray(sim.truth["prevalence_if_enforced"][cat]) * listings[i]).sum()
        np.testing.assert_allclose(out["prevalence"][0, i], expected / listings[i].sum())


def test_enforcement_at_fitted_value_is_neutral(state):
    base = evaluate_arrays(state, Levers())
    same = evaluate_arrays(state, Levers(enforcement=float(state.enforcement[0])))
    np.testing.assert_allclose(same["prevalence"], base["prevalence"])


def test_no_evasion_and_full_saturation_reach_the_ceiling(state):
    out = evaluate_arrays(state, Levers(hidden_share_factor=0.0, min_saturation=1 - 1e-9))
    np.testing.assert_allclose(out["detection_rate"], 1.0, rtol=1e-6)
    assert np.all(out["undetected_listings"] < 1e-3 * out["illegal_listings"])


def test_min_saturation_sets_intensity_where_too_low(state):
    sigma = 0.9
    out = evaluate_arrays(state, Levers(min_saturation=sigma))
    r_star = saturation_intensity(state.efficiency[0], sigma)[:, None]
    expected_hours = np.maximum(state.intensity, r_star) * state.listings / 1000
    np.testing.assert_allclose(out["review_hours"][0], expected_hours.sum(axis=1))
    # Never fewer hours than the platform had.
    assert np.all(out["review_hours"][0] >= state.review_hours.sum(axis=1) - 1e-9)


def test_listing_growth_thins_review(state):
    base = evaluate_arrays(state, Levers())
    grown = evaluate_arrays(state, Levers(listings_factor=2.0))
    assert np.all(grown["detection_rate"] < base["detection_rate"])
    np.testing.assert_allclose(grown["prevalence"], base["prevalence"])
    np.testing.assert_allclose(grown["illegal_listings"], 2 * base["illegal_listings"])


def test_efficiency_decay_lowers_detection_over_time(state):
    decayed = evaluate_arrays(state, Levers(efficiency_decay=0.1))
    base = evaluate_arrays(state, Levers())
    assert np.all(decayed["detection_rate"] < base["detection_rate"])


def test_prevalence_odds_and_trend(state):
    doubled = evaluate_arrays(state, Levers(prevalence_odds=2.0))
    base = evaluate_arrays(state, Levers())
    ratio = doubled["prevalence"] / base["prevalence"]
    assert np.all((ratio > 1.9) & (ratio < 2.0))  # odds ×2 is slightly less than prevalence ×2
    trend = evaluate_arrays(state, Levers(prevalence_trend={"toys": 1.0}))
    toys = state.categories.index("toys")
    assert not np.allclose(trend["prevalence"][0, toys], base["prevalence"][0, toys])
    others = [i for i in range(len(state.categories)) if i != toys]
    np.testing.assert_allclose(trend["prevalence"][0, others], base["prevalence"][0, others])


@settings(max_examples=40, deadline=None)
@given(
    extra=st.lists(st.floats(0, 1e4), min_size=2, max_size=2),
    factor=st.floats(1.0, 5.0),
)
def test_more_review_hours_never_raise_undetected_listings(state, extra, factor):
    low, high = sorted(extra)
    a = evaluate_arrays(state, Levers(review_hours_add=low))
    b = evaluate_arrays(state, Levers(review_hours_add=high, review_hours_factor=factor))
    assert np.all(b["undetected_listings"] <= a["undetected_listings"] * (1 + 1e-12))
    assert np.all(b["reported_share"] >= a["reported_share"] * (1 - 1e-12))


def test_lever_validation(state):
    with pytest.raises(ValueError, match="unknown categories"):
        evaluate_arrays(state, Levers(review_hours_factor={"weapons": 2.0}))
    with pytest.raises(ValueError, match="efficiency_decay"):
        Levers(efficiency_decay=1.5)
    with pytest.raises(ValueError, match="listings_factor"):
        evaluate_arrays(state, Levers(listings_factor=0.0))
    no_traders = truth_state(small_marketplace(seed=2, efficiency_log_sd=0, detection_ceiling=1))
    with pytest.raises(ValueError, match="repeat-offender"):
        evaluate_arrays(no_traders, Levers(enforcement=0.9))


def test_from_fitted_matches_the_posterior(small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=30, chains=2))
    model.fit(random_seed=3)
    state = PosteriorState.from_fitted(model)
    ds = evaluate(state)
    post = model.posterior
    listings = small_submission.data["listings"].astype(float)
    weights = listings / listings.sum("period")
    np.testing.assert_allclose(
        ds["prevalence"].values, (post["prevalence"] * weights).sum("period").values, rtol=1e-9
    )
    np.testing.assert_allclose(
        ds["detection_rate"].values,
        (post["detection_rate"] * weights).sum("period").values,
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        state.hidden_share, post["hidden_share"].values.reshape(-1, 4), rtol=1e-9, atol=1e-12
    )
    assert ds["band"].dims == ("chain", "draw", "category")
    assert ds.attrs["labels"] == list(small_submission.scale.labels)
