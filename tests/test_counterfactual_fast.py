"""The compiled lever evaluation equals the NumPy reference; evaluate_many equals a loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risklab import _counterfactual_kernel as kernel
from risklab.counterfactual import (
    OUTCOMES,
    Levers,
    PosteriorState,
    _evaluate_arrays_reference,
    evaluate,
    evaluate_arrays,
    evaluate_many,
)

RTOL = 1e-12


def random_state(
    seed: int,
    *,
    n_draws: int = 5,
    n_categories: int = 3,
    n_periods: int = 7,
    n_secondary: int = 2,
    offenders: bool = True,
    appeals: bool = True,
    zero_hours: bool = False,
    amplitude: tuple[float, float] = (0.05, 1.4),
) -> PosteriorState:
    """A random many-draw state (amplitudes above one included: no hidden share)."""
    rng = np.random.default_rng(seed)
    s, k, t = n_draws, n_categories, n_periods
    listings = rng.uniform(50.0, 1e6, (k, t)).round()
    hours = listings * rng.uniform(0.0, 3.0, (k, 1)) / 1000.0 * rng.uniform(0.5, 1.5, (k, t))
    if zero_hours:
        hours[rng.random((k, t)) < 0.5] = 0.0
    extra = {}
    if offenders:
        extra = dict(
            enforcement=rng.uniform(0.0, 1.0, s),
            after_threshold_share=rng.uniform(0.0, 0.6, s),
            claimed_enforcement=0.9,
        )
    return PosteriorState(
        categories=[f"cat{i}" for i in range(k)],
        periods=[f"p{i}" for i in range(t)],
        channels=["proactive", *[f"ch{i}" for i in range(n_secondary)]],
        listings=listings,
        review_hours=hours,
        claimed_prevalence=rng.uniform(1e-4, 0.05, k),
        thresholds=np.array([0.001, 0.01, 0.05]),
        labels=["low", "medium", "high", "very high"],
        amplitude=rng.uniform(*amplitude, (s, k)),
        efficiency=rng.lognormal(0.0, 1.0, (s, k)),
        logit_prevalence=rng.normal(-4.0, 2.0, (s, k, t)),
        other_rates=rng.uniform(0.0, 0.6, (s, k, t, n_secondary)),
        false_positive_share=rng.uniform(0.0, 0.3, (s, k)) if appeals else np.zeros((s, k)),
        **extra,
    )


def per_category(draw, values, categories, neutral):
    """A lever value: a number, or a mapping over some categories."""
    if draw(st.booleans()):
        return draw(values)
    chosen = draw(st.lists(st.sampled_from(categories), max_size=len(categories), unique=True))
    return {c: draw(values) for c in chosen} or neutral


@st.composite
def levers(draw, categories: list[str], offenders: bool = True) -> Levers:
    """Random levers, each left neutral half of the time."""
    kw = {}

    def maybe(name, value):
        if draw(st.booleans()):
            kw[name] = value

    maybe("review_hours_factor", per_category(draw, st.floats(0.0, 5.0), categories, 1.0))
    maybe("review_hours_add", per_category(draw, st.floats(-1e4, 1e5), categories, 0.0))
    maybe("listings_factor", per_category(draw, st.floats(0.1, 10.0), categories, 1.0))
    maybe("hidden_share_factor", per_category(draw, st.floats(0.0, 3.0), categories, 1.0))
    maybe("hidden_share_add", per_category(draw, st.floats(-1.0, 1.0), categories, 0.0))
    maybe("efficiency_factor", draw(st.floats(0.01, 20.0)))
    maybe("efficiency_decay", draw(st.floats(0.0, 0.5)))
    maybe("prevalence_odds", per_category(draw, st.floats(0.01, 50.0), categories, 1.0))
    maybe("prevalence_trend", per_category(draw, st.floats(-5.0, 5.0), categories, 0.0))
    maybe("min_saturation", draw(st.floats(1e-6, 1.0 - 1e-9)))
    if offenders:
        maybe("enforcement", draw(st.floats(0.0, 1.0)))
    return Levers(**kw)


def assert_matches_reference(state: PosteriorState, lv: Levers) -> None:
    with np.errstate(all="ignore"):
        expected = _evaluate_arrays_reference(state, lv)
    got = evaluate_arrays(state, lv)
    assert set(got) == set(OUTCOMES)
    for name in OUTCOMES:
        assert got[name].shape == expected[name].shape
        np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=0, err_msg=name)


shapes = st.fixed_dictionaries(
    {
        "n_draws": st.integers(1, 6),
        "n_categories": st.integers(1, 4),
        "n_periods": st.sampled_from([1, 2, 5, 8, 13, 24]),
        "n_secondary": st.integers(0, 3),
        "offenders": st.booleans(),
        "appeals": st.booleans(),
        "zero_hours": st.booleans(),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), shape=shapes, data=st.data())
def test_kernel_equals_the_numpy_reference(seed, shape, data):
    state = random_state(seed, **shape)
    lv = data.draw(levers(state.categories, offenders=shape["offenders"]))
    assert_matches_reference(state, lv)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sigma=st.floats(0.9, 1.0 - 1e-12),
    hidden=st.floats(0.0, 0.05),
    amp_high=st.floats(0.99, 1.2),
)
def test_saturated_detection_matches_where_one_minus_d_cancels(seed, sigma, hidden, amp_high):
    # Detection close to one: the miss probability 1 − d (undetected listings) is
    # ill-conditioned, so the kernel must reproduce the reference's detection bit for bit there.
    state = random_state(seed, amplitude=(0.97, amp_high), n_periods=24)
    for lv in (
        Levers(min_saturation=sigma, hidden_share_factor=hidden),
        Levers(min_saturation=sigma),
        Levers(review_hours_factor=1e4, hidden_share_factor=0.0),
    ):
        assert_matches_reference(state, lv)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), shape=shapes, data=st.data())
def test_kernel_is_bit_identical_to_the_reference(seed, shape, data):
    # Callers difference scenarios (avoided listings, shares of log U, P(below baseline)):
    # anything short of identical outcomes would move those by far more than 1e-12. Both sides
    # use risklab._exp, so this holds on every machine (it used to need NumPy to call libm).
    state = random_state(seed, **shape)
    lv = data.draw(levers(state.categories, offenders=shape["offenders"]))
    with np.errstate(all="ignore"):
        expected = _evaluate_arrays_reference(state, lv)
    got = evaluate_arrays(state, lv)
    for name in OUTCOMES:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_pairwise_sum_is_numpys():
    rng = np.random.default_rng(1)
    for n in [*range(0, 40), 127, 128]:
        for lo in (0, 3, 8, 13):  # the kernel sums slices of longer arrays
            x = rng.uniform(0.0, 1.0, lo + n + 5) * 10.0 ** rng.uniform(-8.0, 8.0, lo + n + 5)
            assert kernel._pairwise_sum(x, lo, n) == x[lo : lo + n].sum(), (n, lo)


def test_four_pairwise_sums_are_numpys():
    rng = np.random.default_rng(2)
    for n in [*range(0, 40), 127, 128]:
        arrays = [
            rng.uniform(-1.0, 1.0, n + 5) * 10.0 ** rng.uniform(-8.0, 8.0, n + 5) for _ in range(4)
        ]
        got = kernel._four_pairwise_sums(*arrays, n)
        assert got == tuple(x[:n].sum() for x in arrays), n


def test_distinct_rows_are_numbered_in_order_of_first_occurrence():
    keys = np.array([[2.0, 1.0], [1.0, 5.0], [2.0, 1.0], [np.nan, 0.0], [1.0, 5.0], [np.nan, 0.0]])
    number, first = kernel._first_occurrences(keys)
    assert number.tolist() == [0, 1, 0, 2, 1, 2]
    assert first.tolist() == [0, 1, 3]


def test_repeated_scenarios_share_rows():
    state = random_state(4, n_categories=3)
    many = [Levers(), Levers(review_hours_factor=2.0), Levers(), Levers(review_hours_factor=2.0)]
    batch = kernel._resolve(state, many)
    assert batch["rid"].tolist() == [[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4, 5]]
    assert batch["r_uid"].tolist() == [0, 1, 2, 3, 4, 5]
    assert batch["u_category"].tolist() == [0, 1, 2, 0, 1, 2]
    # Enforcement leaves the saturation rows as they are: new scenario rows, shared saturation.
    batch = kernel._resolve(state, [Levers(), Levers(enforcement=0.5)])
    assert batch["rid"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert batch["r_uid"].tolist() == [0, 1, 2, 0, 1, 2]


def test_long_submissions_fall_back_to_the_reference():
    state = random_state(2, n_draws=2, n_categories=2, n_periods=kernel.PAIRWISE_BLOCK + 3)
    lv = Levers(min_saturation=0.8, prevalence_trend=1.0)
    got = evaluate_many(state, [lv, Levers()], outcomes=["undetected_listings"])
    expected = _evaluate_arrays_reference(state, lv)["undetected_listings"]
    np.testing.assert_array_equal(got["undetected_listings"][0], expected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), shape=shapes, data=st.data())
def test_evaluate_many_equals_a_loop_over_evaluate_arrays(seed, shape, data):
    state = random_state(seed, **shape)
    many = data.draw(
        st.lists(levers(state.categories, offenders=shape["offenders"]), min_size=1, max_size=6)
    )
    many = [*many, Levers(), many[0]]  # repeats share the cached saturation rows
    out = evaluate_many(state, many)
    assert list(out) == list(OUTCOMES)
    for i, lv in enumerate(many):
        one = evaluate_arrays(state, lv)
        for name in OUTCOMES:
            assert out[name].shape == (len(many), state.n_draws, len(state.categories))
            np.testing.assert_array_equal(out[name][i], one[name], err_msg=name)


def test_every_draw_is_written_when_draws_are_written_in_blocks():
    # 323 draws in at most 8 parallel chunks of about 40 draws: each chunk writes full blocks of
    # kernel.MAX_DRAW_BLOCK draws and then a partial block.
    state = random_state(5, n_draws=323)
    many = [
        Levers(),
        Levers(review_hours_factor=2.0, prevalence_odds=1.5),
        Levers(enforcement=0.9),
        Levers(review_hours_factor={"cat1": 3.0}),  # shares cat0 and cat2's rows with Levers()
    ]
    # Scenarios whose rows are consecutive are copied as runs, the last one row by row.
    assert kernel._resolve(state, many)["rid_runs"].tolist() == [True, True, True, False]
    out = evaluate_many(state, many)
    for i, lv in enumerate(many):
        with np.errstate(all="ignore"):
            expected = _evaluate_arrays_reference(state, lv)
        for name in OUTCOMES:
            np.testing.assert_array_equal(out[name][i], expected[name], err_msg=name)


def test_outcome_subset_and_empty_batch():
    state = random_state(3)
    many = [Levers(), Levers(review_hours_factor=2.0), Levers(prevalence_odds=3.0)]
    full = evaluate_many(state, many)
    part = evaluate_many(state, many, outcomes=["undetected_listings", "prevalence"])
    assert list(part) == ["undetected_listings", "prevalence"]
    for name in part:
        np.testing.assert_array_equal(part[name], full[name])
    empty = evaluate_many(state, [])
    assert empty["prevalence"].shape == (0, state.n_draws, len(state.categories))
    with pytest.raises(ValueError, match=r"outcomes: unknown \['band'\]"):
        evaluate_many(state, many, outcomes=["band"])


def test_none_means_the_fitted_world():
    state = random_state(4)
    out = evaluate_many(state, [None, Levers()])
    for name in OUTCOMES:
        np.testing.assert_array_equal(out[name][0], out[name][1])


def test_lever_errors_name_the_scenario():
    state = random_state(5, offenders=False)
    with pytest.raises(ValueError, match=r"levers_list\[1\]: .*repeat-offender"):
        evaluate_many(state, [Levers(), Levers(enforcement=0.5)])
    with pytest.raises(ValueError, match=r"levers_list\[2\]: listings_factor must be positive"):
        evaluate_many(state, [Levers(), Levers(), Levers(listings_factor=-1.0)])
    with pytest.raises(ValueError, match=r"^review_hours_factor: unknown categories"):
        evaluate_arrays(state, Levers(review_hours_factor={"nope": 2.0}))


def test_read_only_and_non_contiguous_arrays():
    state = random_state(6, n_draws=4)
    expected = evaluate_arrays(state, Levers(min_saturation=0.5))
    state.logit_prevalence = np.asfortranarray(state.logit_prevalence)
    state.amplitude = state.amplitude.copy()
    state.amplitude.flags.writeable = False
    state.other_rates = np.broadcast_to(state.other_rates[:, :, :1], state.other_rates.shape)
    with np.errstate(all="ignore"):
        reference = _evaluate_arrays_reference(state, Levers(min_saturation=0.5))
    got = evaluate_arrays(state, Levers(min_saturation=0.5))
    for name in OUTCOMES:
        np.testing.assert_allclose(got[name], reference[name], rtol=RTOL)
    assert not np.allclose(got["undetected_listings"], expected["undetected_listings"])


def test_reassigned_fields_take_effect():
    # No stale per-state cache: a field assigned after an evaluation is used by the next one.
    state = random_state(7)
    before = evaluate_arrays(state, Levers())["prevalence"]
    state.logit_prevalence = state.logit_prevalence + 1.0
    after = evaluate_arrays(state, Levers())["prevalence"]
    assert np.all(after > before)
    np.testing.assert_allclose(
        after, _evaluate_arrays_reference(state, Levers())["prevalence"], rtol=RTOL
    )


def test_evaluate_dataset_labels_and_shape():
    state = random_state(8, n_draws=6)
    state.sample_shape = (2, 3)
    ds = evaluate(state, Levers(review_hours_add=100.0))
    assert ds["prevalence"].dims == ("chain", "draw", "category")
    assert ds["prevalence"].shape == (2, 3, 3)
    np.testing.assert_allclose(
        ds["undetected_listings"].values.reshape(6, 3),
        _evaluate_arrays_reference(state, Levers(review_hours_add=100.0))["undetected_listings"],
        rtol=RTOL,
    )


def test_bad_state_shapes_are_reported():
    state = random_state(9)
    state.amplitude = state.amplitude[:, :2]
    with pytest.raises(ValueError, match=r"PosteriorState\.amplitude: expected shape"):
        evaluate_arrays(state, Levers())
