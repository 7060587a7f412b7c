"""Simulated marketplaces under binding commitments: hooks, truth, data and errors (no MCMC)."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from risklab.data.synthetic import simulate_marketplace
from risklab.data.synthetic_channels import true_channel_rates
from risklab.data.synthetic_commitments import (
    SimulatedCommitment as C,
)
from risklab.data.synthetic_commitments import (
    simulate_monitored_marketplace,
)

CATS = ("medicines", "toys", "cosmetics", "electronics", "jewellery")
T = 24
#: Default spread of evidence of simulate_monitored_marketplace for T = 24.
EVIDENCE = [0, 3, 6, 9, 12, 15, 18, 21, 23]


def s(x):
    return -np.expm1(-x)


def wide(truth, key):
    return np.array([truth[key][c] for c in truth["categories"]], dtype=float)


def listings_of(sim):
    wide_df = sim.tables["listings"].pivot(index="category", columns="period", values="listings")
    return wide_df.loc[sim.truth["categories"], sim.truth["periods"]].to_numpy(dtype=float)


def terms_of(c: C, categories, periods):
    """level·step + slope·ramp of one commitment, (K, T) (or (T,) for enforcement)."""
    t0 = periods.index(c.effective) if isinstance(c.effective, str) else c.effective
    t = np.arange(len(periods))
    out = c.level_change * (t >= t0) + c.slope_change * np.maximum(0, t - t0) / 12
    if c.quantity == "enforcement":
        return out
    covered = categories if c.categories is None else c.categories
    return np.array([out if k in covered else np.zeros(len(periods)) for k in categories])


def assert_same_marketplace(a, b, *, skip_truth=()):
    assert a.toml == b.toml
    assert list(a.tables) == list(b.tables)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)
    assert list(a.evidence) == list(b.evidence)
    for name in a.evidence:
        pd.testing.assert_frame_equal(a.evidence[name], b.evidence[name], check_exact=True)
    keys = (set(a.truth) | set(b.truth)) - set(skip_truth)
    for key in keys:
        assert a.truth[key] == b.truth[key], key


# --- hooks of simulate_marketplace -------------------------------------------------------------


def test_zero_shifts_and_explicit_defaults_change_nothing():
    base = simulate_marketplace(4, categories=CATS, n_periods=T, traders=True)
    zero = np.zeros((len(CATS), T))
    shifted = simulate_marketplace(
        4,
        categories=CATS,
        n_periods=T,
        traders=True,
        prevalence_shift=zero,
        detection_level_shift=zero,
        efficiency_shift=zero,
        review_intensity_shift=zero,
        evidence_periods=[21, 22, 23],  # the default audit periods; planted in 22, 23 by default
        planted_periods=3,
    )
    default3 = simulate_marketplace(
        4, categories=CATS, n_periods=T, traders=True, planted_periods=3
    )
    new_keys = {
        "hidden_share_by_period",
        "efficiency_by_period",
        "detection_level_by_period",
        "evidence_periods",
    }
    assert new_keys <= set(shifted.truth)
    assert_same_marketplace(default3, shifted, skip_truth=new_keys)
    # Detection is bit-identical to the default curve; the by-period truth is the baseline.
    assert shifted.truth["detection_rate"] == base.truth["detection_rate"]
    h = wide(base.truth, "hidden_share")
    reach = (1 - h) * base.truth["detection_ceiling"]
    np.testing.assert_array_equal(
        wide(shifted.truth, "hidden_share_by_period"), np.repeat((1 - reach)[:, None], T, 1)
    )


def test_trader_periods_keep_the_traders_table_and_add_a_consistent_enforcement_table():
    plain = simulate_marketplace(9, categories=CATS, n_periods=T, traders=True)
    timed = simulate_marketplace(9, categories=CATS, n_periods=T, traders=True, trader_periods=True)
    zero = simulate_marketplace(
        9, categories=CATS, n_periods=T, traders=True, enforcement_shift=np.zeros(T)
    )
    assert_same_marketplace(timed, zero)
    assert list(timed.tables) == ["listings", "detections", "traders", "enforcement"]
    pd.testing.assert_frame_equal(plain.tables["traders"], timed.tables["traders"])
    assert timed.truth["enforcement_by_period"] == [0.4] * T
    enf = timed.tables["enforcement"]
    assert enf["period"].tolist() == timed.truth["periods"]
    assert (enf["suspended"] <= enf["reached"]).all()
    # Listings are in time order: a third strike early in the window is rare (the third of
    # several uniform times), late it is common; unsorted times would spread it evenly.
    reached = enf["reached"].to_numpy()
    assert reached[:3].sum() < 0.4 * reached[-3:].sum()


@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_enforcement_table_sums_match_the_traders_table(shift):
    sim = simulate_marketplace(
        2,
        categories=CATS,
        n_periods=12,
        traders=True,
        strike_threshold=2,
        enforcement_shift=np.where(np.arange(12) >= 6, shift, 0.0),
    )
    traders, enf = sim.tables["traders"], sim.tables["enforcement"]
    past = traders[traders["strikes"] >= 2]
    assert enf["reached"].sum() == past["traders"].sum() == sim.truth["traders_past_threshold"]
    assert enf["suspended"].sum() == past["suspended"].sum() == traders["suspended"].sum()
    assert enf["reached"].sum() > 1000


def test_hook_errors():
    with pytest.raises(ValueError, match="prevalence_shift must have shape"):
        simulate_marketplace(0, categories=CATS, n_periods=T, prevalence_shift=np.zeros((2, T)))
    with pytest.raises(ValueError, match="efficiency_shift must be finite"):
        simulate_marketplace(
            0, categories=CATS, n_periods=T, efficiency_shift=np.full((len(CATS), T), np.nan)
        )
    with pytest.raises(ValueError, match="traders=True"):
        simulate_marketplace(0, n_periods=T, enforcement_shift=np.zeros(T))
    with pytest.raises(ValueError, match="traders=True"):
        simulate_marketplace(0, n_periods=T, trader_periods=True)
    with pytest.raises(ValueError, match="evidence_periods"):
        simulate_marketplace(0, n_periods=T, evidence_periods=[3, T])


# --- simulate_monitored_marketplace -----------------------------------------------------------


def test_zero_effect_commitments_reproduce_simulate_marketplace():
    zero = [
        C("a", "prevalence", 5),
        C("b", "hidden_share", "2024-08", categories=["toys"]),
        C("c", "efficiency", 9),
        C("d", "review_capacity", 12, categories=["medicines", "toys"]),
        C("e", "enforcement", 20),
    ]
    sim = simulate_monitored_marketplace(3, zero, categories=CATS, traders=True)
    ref = simulate_marketplace(
        3, categories=CATS, traders=True, trader_periods=True, evidence_periods=EVIDENCE
    )
    assert_same_marketplace(ref, sim, skip_truth={"monitoring"})
    for entry in sim.truth["monitoring"].values():
        assert entry["effect"] == [0.0] * T
        assert entry["value"] == entry["counterfactual"]
    # The tables without evidence are those of a plain call (hooks draw no random numbers).
    plain = simulate_marketplace(3, categories=CATS, traders=True)
    for name in ("listings", "detections", "traders"):
        pd.testing.assert_frame_equal(plain.tables[name], sim.tables[name], check_exact=True)
    assert plain.toml == sim.toml
    # Evidence before and after every effective date.
    audited = set(sim.evidence["audits"]["period"])
    assert audited == {sim.truth["periods"][j] for j in EVIDENCE}


COMMITMENTS = [
    C("prev all", "prevalence", "2024-07", -0.4, -0.3),
    C("prev toys", "prevalence", 12, -0.5, 0.2, categories=["toys", "cosmetics"]),
    C("links", "hidden_share", 8, 0.6, 0.3, categories=["cosmetics", "electronics"]),
    C("links more", "hidden_share", 14, 0.2, categories=["electronics", "medicines"]),
    C("tools", "efficiency", 10, 0.3, 0.4, categories=["toys", "jewellery"]),
    C("staff", "review_capacity", 6, 0.5, -0.2, categories=["medicines"]),
    C("suspend", "enforcement", 15, 1.0, 0.5, target=0.6, target_by="2025-10"),
]


@pytest.fixture(scope="module")
def monitored():
    kwargs = dict(categories=CATS, traders=True)
    sim = simulate_monitored_marketplace(5, COMMITMENTS, **kwargs)
    base = simulate_marketplace(5, trader_periods=True, evidence_periods=EVIDENCE, **kwargs)
    return sim, base


def test_truth_arrays_follow_the_spec(monitored):
    sim, base = monitored
    cats, periods = list(CATS), sim.truth["periods"]
    total = {}
    for c in COMMITMENTS:
        total[c.quantity] = total.get(c.quantity, 0.0) + terms_of(c, cats, periods)
    tr = sim.truth
    # Prevalence: same noise, logit shifted by the sum of the prevalence commitments.
    np.testing.assert_allclose(
        logit(wide(tr, "prevalence")) - logit(wide(base.truth, "prevalence")),
        total["prevalence"],
        atol=1e-9,
    )
    # Review capacity: observed intensity × exp(shift), up to rounding hours to 0.1.
    np.testing.assert_allclose(
        wide(tr, "review_intensity") / wide(base.truth, "review_intensity"),
        np.exp(total["review_capacity"]),
        rtol=2e-3,
    )
    # Detection, from the category parameters and the observed intensity.
    theta = np.array([tr["efficiency"][c] for c in cats])
    h = np.array([tr["hidden_share"][c] for c in cats])
    r = wide(tr, "review_intensity")
    at_mean = s(theta * r.mean(axis=1))
    level = expit(
        logit((1 - h) * tr["detection_ceiling"] * at_mean)[:, None] + total["hidden_share"]
    )
    reachable = np.minimum(1.0, level / at_mean[:, None])
    theta_kt = theta[:, None] * np.exp(total["efficiency"])
    np.testing.assert_allclose(wide(tr, "detection_level_by_period"), level, rtol=1e-12)
    np.testing.assert_allclose(wide(tr, "hidden_share_by_period"), 1 - reachable, atol=1e-12)
    np.testing.assert_allclose(wide(tr, "efficiency_by_period"), theta_kt, rtol=1e-12)
    # The rate uses the uncapped ratio level / s(θ r̄), as the model does (only the hidden share
    # is floored at zero).
    rate = np.minimum(level / at_mean[:, None] * s(theta_kt * r), 1 - 1e-9)
    assert (level / at_mean[:, None] > 1).any()  # the case where the two readings differ
    np.testing.assert_allclose(wide(tr, "detection_rate"), rate, rtol=1e-12, atol=1e-15)
    q_t = expit(logit(0.4) + total["enforcement"])
    np.testing.assert_allclose(tr["enforcement_by_period"], q_t, rtol=1e-12)


def test_monitoring_truth_follows_the_spec(monitored):
    sim, base = monitored
    cats, periods = list(CATS), sim.truth["periods"]
    tr = sim.truth
    listings = listings_of(sim)
    theta = np.array([tr["efficiency"][c] for c in cats])
    h = np.array([tr["hidden_share"][c] for c in cats])
    r = wide(tr, "review_intensity")
    at_mean = s(theta * r.mean(axis=1))
    level0 = (1 - h) * tr["detection_ceiling"] * at_mean
    for j, c in enumerate(COMMITMENTS):
        # Per-cell quantity with all commitments, and without commitment j, from the baseline.
        cells = {}
        for label, keep in (("value", COMMITMENTS), ("cf", COMMITMENTS[:j] + COMMITMENTS[j + 1 :])):
            shift = sum(
                (terms_of(o, cats, periods) for o in keep if o.quantity == c.quantity),
                start=0.0 * terms_of(c, cats, periods),
            )
            if c.quantity == "prevalence":
                q = expit(logit(wide(base.truth, "prevalence")) + shift)
            elif c.quantity == "hidden_share":
                q = 1 - np.minimum(1, expit(logit(level0)[:, None] + shift) / at_mean[:, None])
            elif c.quantity == "efficiency":
                q = theta[:, None] * np.exp(shift)
            elif c.quantity == "review_capacity":
                q = wide(base.truth, "review_intensity") * np.exp(shift)
            else:
                q = expit(logit(0.4) + shift)
            cells[label] = q
        entry = tr["monitoring"][c.name]
        assert entry["quantity"] == c.quantity
        assert entry["effective"] == (
            c.effective if isinstance(c.effective, str) else periods[c.effective]
        )
        if c.quantity == "enforcement":
            agg, agg_cf = cells["value"], cells["cf"]
            assert entry["categories"] is None and entry["by_category"] is None
        else:
            rows = [cats.index(x) for x in (c.categories or cats)]
            w = listings[rows]
            agg = (cells["value"][rows] * w).sum(0) / w.sum(0)
            agg_cf = (cells["cf"][rows] * w).sum(0) / w.sum(0)
            assert entry["categories"] == list(c.categories or cats)
            for x in entry["categories"]:
                k = cats.index(x)
                np.testing.assert_allclose(
                    entry["by_category"]["counterfactual"][x], cells["cf"][k], rtol=3e-3
                )
        np.testing.assert_allclose(entry["value"], agg, rtol=3e-3)
        np.testing.assert_allclose(entry["counterfactual"], agg_cf, rtol=3e-3)
        np.testing.assert_allclose(entry["effect"], agg - agg_cf, rtol=3e-3, atol=1e-12)
        t0 = periods.index(entry["effective"])
        assert entry["effect"][:t0] == [0.0] * t0
        assert all(e != 0 for e in entry["effect"][t0:])
    # review_capacity's aggregate is total hours / total listings × 1000.
    staff = sim.tables["listings"].query("category == 'medicines'")
    np.testing.assert_allclose(
        tr["monitoring"]["staff"]["value"], staff["review_hours"] / staff["listings"] * 1000
    )
    target = tr["monitoring"]["suspend"]
    assert target["target_by"] == "2025-10"
    assert target["target_met"] == (target["value"][periods.index("2025-10")] >= 0.6)


def test_commitments_toml_and_write(monitored, tmp_path):
    from risklab.data import load_submission

    sim, _ = monitored
    entries = sim.commitments_toml["commitment"]
    assert [e["name"] for e in entries] == [c.name for c in COMMITMENTS]
    assert entries[0] == {"name": "prev all", "effective": "2024-07", "quantity": "prevalence"}
    assert entries[1]["categories"] == ["toys", "cosmetics"]
    assert entries[1]["effective"] == "2025-01"
    assert entries[-1]["target"] == {"value": 0.6, "by": "2025-10"}
    sim.write(tmp_path / "sub")
    mon = tmp_path / "sub-monitoring"
    assert tomllib.loads((mon / "commitments.toml").read_text()) == sim.commitments_toml
    kpis = pd.read_csv(mon / "kpis.csv", keep_default_na=False)
    assert list(kpis.columns) == ["kpi", "period", "category", "value"]
    assert len(kpis) == len(sim.kpis)
    sub = load_submission(tmp_path / "sub", tmp_path / "sub-evidence")
    np.testing.assert_array_equal(
        sub.data["enforcement_reached"].values, sim.tables["enforcement"]["reached"]
    )
    # A marketplace without commitments writes no monitoring directory.
    simulate_marketplace(0, categories=CATS, n_periods=3).write(tmp_path / "plain")
    assert not (tmp_path / "plain-monitoring").exists()


def test_to_submission_carries_the_enforcement_table(monitored):
    sim, _ = monitored
    data = sim.to_submission().data
    enf = sim.tables["enforcement"]
    np.testing.assert_array_equal(data["enforcement_reached"].values, enf["reached"])
    np.testing.assert_array_equal(data["enforcement_suspended"].values, enf["suspended"])


def test_kpis(monitored):
    sim, _ = monitored
    kpis = sim.kpis
    assert set(kpis["kpi"]) == {"proactive_control_rate", "prevalence", "enforcement_rate"}
    assert (kpis["category"] == "").all()
    pcr = kpis[kpis["kpi"] == "proactive_control_rate"].set_index("period")["value"]
    # Optimistic: above the true proactive detection rate of illegal listings in every period.
    illegal = wide(sim.truth, "prevalence") * listings_of(sim)
    d_true = (wide(sim.truth, "detection_rate") * illegal).sum(0) / illegal.sum(0)
    assert (pcr.loc[sim.truth["periods"]].to_numpy() > d_true + 0.2).all()
    enf = sim.tables["enforcement"].query("reached > 0")
    rate = kpis[kpis["kpi"] == "enforcement_rate"]
    assert rate["period"].tolist() == enf["period"].tolist()
    np.testing.assert_allclose(rate["value"], enf["suspended"] / enf["reached"])


# --- effects show in the data ------------------------------------------------------------------


def detected_share(sim, periods):
    det = sim.tables["detections"].query("period in @periods")["detected"].sum()
    lst = sim.tables["listings"].query("period in @periods")["listings"].sum()
    return det / lst


def expected_detected_share(sim, periods):
    rates = sum(true_channel_rates(sim).values())
    cells = wide(sim.truth, "prevalence") * rates * listings_of(sim)
    idx = [sim.truth["periods"].index(p) for p in periods]
    return cells[:, idx].sum() / listings_of(sim)[:, idx].sum()


def test_prevalence_commitment_lowers_the_detected_share():
    kwargs = dict(categories=CATS, total_listings=4e8)
    sim = simulate_monitored_marketplace(11, [C("p", "prevalence", 12, -1.0)], **kwargs)
    base = simulate_monitored_marketplace(11, [], **kwargs)
    periods = sim.truth["periods"]
    before, after = periods[:12], periods[12:]
    ratio_before = detected_share(sim, before) / detected_share(base, before)
    ratio_after = detected_share(sim, after) / detected_share(base, after)
    assert abs(ratio_before - 1) < 0.01
    assert 0.3 < ratio_after < 0.45  # expit(logit π − 1) / π ≈ e^−1 for small π
    for m in (sim, base):
        for part in (before, after):
            assert detected_share(m, part) == pytest.approx(
                expected_detected_share(m, part), rel=0.01
            )


def caught(sim, categories, periods):
    planted = sim.evidence["planted"].query("category in @categories and period in @periods")
    return planted["caught"].sum(), planted["planted"].sum()


def test_hidden_share_commitment_raises_the_planted_caught_share():
    covered = ["cosmetics", "electronics"]
    kwargs = dict(categories=CATS, planted_size=3000, evidence_every=2)
    sim = simulate_monitored_marketplace(
        13, [C("links", "hidden_share", 12, 1.0, categories=covered)], **kwargs
    )
    base = simulate_monitored_marketplace(13, [], **kwargs)
    periods = sim.truth["periods"]
    d = wide(sim.truth, "detection_rate")
    for part in (periods[:12], periods[12:]):
        for cats in (covered, ["toys"]):
            got, _ = caught(sim, cats, part)
            rows = sim.evidence["planted"].query("category in @cats and period in @part")
            p = np.array(
                [
                    d[CATS.index(c), periods.index(t)]
                    for c, t in zip(rows["category"], rows["period"], strict=True)
                ]
            )
            expected = (p * rows["planted"]).sum()
            assert abs(got - expected) < 4 * np.sqrt((rows["planted"] * p * (1 - p)).sum())
    # Covered categories: caught share up after t0 against the same marketplace without it.
    got_after, n_after = caught(sim, covered, periods[12:])
    base_after, _ = caught(base, covered, periods[12:])
    got_before, n_before = caught(sim, covered, periods[:12])
    base_before, _ = caught(base, covered, periods[:12])
    assert got_after / n_after - base_after / n_after > 0.1
    assert abs(got_before - base_before) / n_before < 0.02
    # Not covered: toys unchanged.
    assert (
        wide(sim.truth, "detection_rate")[CATS.index("toys")].tolist()
        == wide(base.truth, "detection_rate")[CATS.index("toys")].tolist()
    )


def test_enforcement_commitment_raises_the_suspended_share():
    sim = simulate_monitored_marketplace(
        17, [C("suspend", "enforcement", 12, 2.0)], categories=CATS, traders=True
    )
    enf = sim.tables["enforcement"]
    q_after = expit(logit(0.4) + 2.0)
    for part, q in ((slice(0, 12), 0.4), (slice(12, T), q_after)):
        reached, suspended = enf["reached"][part].sum(), enf["suspended"][part].sum()
        assert reached > 500
        assert abs(suspended / reached - q) < 4 * np.sqrt(q * (1 - q) / reached)
    assert sim.truth["monitoring"]["suspend"]["effect"][12] == pytest.approx(q_after - 0.4)


# --- argument errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commitments", "kwargs", "match"),
    [
        ([C("x", "speed", 3)], {}, "unknown quantity 'speed'"),
        ([C("x", "prevalence", "2023-05")], {}, "not a period of the marketplace"),
        ([C("x", "prevalence", T)], {}, "outside the periods"),
        ([C("x", "prevalence", 0)], {}, "after the first period"),
        ([C("x", "prevalence", "2024-01")], {}, "after the first period"),
        ([C("x", "enforcement", 3, 1.0)], {}, "needs traders=True"),
        (
            [C("x", "efficiency", 3, categories=["toys", "boats"])],
            {},
            r"unknown categories \['boats'\]",
        ),
        ([C("x", "efficiency", 3, categories="toys")], {}, "non-empty list"),
        ([C("x", "prevalence", 3), C("x", "efficiency", 4)], {}, "duplicate name"),
        ([C("", "prevalence", 3)], {}, "non-empty string"),
        ([C("x", "prevalence", 3, float("nan"))], {}, "level_change must be a finite"),
        ([C("x", "prevalence", 3, target_by=5)], {}, "without a target"),
        ([C("x", "prevalence", 3, target=0.1, target_by="2030-01")], {}, "by '2030-01'"),
        ([], {"prevalence_shift": np.zeros((5, T))}, "set from the commitments"),
        ([], {"evidence_every": 0}, "evidence_every"),
        ([], {"n_periods": 1}, "at least two periods"),
    ],
)
def test_argument_errors(commitments, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_monitored_marketplace(0, commitments, categories=CATS, **kwargs)


def test_level_change_spread_over_categories():
    """``level_change_sd`` gives each covered category its own level change, drawn per seed."""
    spec = [C("p", "prevalence", 12, level_change=-0.5, level_change_sd=0.3)]
    sim = simulate_monitored_marketplace(4, spec, categories=CATS)
    levels = sim.truth["monitoring"]["p"]["level_change_by_category"]
    assert set(levels) == set(CATS)
    values = np.array(list(levels.values()))
    assert np.std(values) > 0.05  # they differ
    z = np.random.default_rng([4, 7, 0]).standard_normal(len(CATS))
    np.testing.assert_allclose(values, -0.5 + 0.3 * z[[CATS.index(c) for c in levels]])
    # The truth's prevalence moves by each category's own level at the date.
    tr = sim.truth
    for cat, level in levels.items():
        before = logit(np.array(tr["prevalence"][cat]))
        ref = simulate_monitored_marketplace(4, [C("p", "prevalence", 12)], categories=CATS)
        base = logit(np.array(ref.truth["prevalence"][cat]))
        np.testing.assert_allclose((before - base)[12:], level, atol=1e-9)
        np.testing.assert_allclose((before - base)[:12], 0.0, atol=1e-12)
    # Without a spread every category gets the mean.
    plain = simulate_monitored_marketplace(
        4, [C("p", "prevalence", 12, level_change=-0.5)], categories=CATS
    )
    assert set(plain.truth["monitoring"]["p"]["level_change_by_category"].values()) == {-0.5}
    with pytest.raises(ValueError, match="level_change_sd"):
        simulate_monitored_marketplace(4, [C("p", "prevalence", 12, level_change_sd=-1.0)])
