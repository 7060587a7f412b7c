"""Known-truth checks of the submission-consistency report (risklab.consistency)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from risklab import PlatformRiskModel
from risklab.consistency import (
    CONSISTENCY_COLUMNS,
    check_consistency,
    consistency_table,
    predictive_p_value,
)
from risklab.models import SamplerConfig
from risklab.models.diagnostics import ConvergenceReport

from .conftest import small_marketplace


def _truth_posterior(sim, data, *, chains=2, draws=400, jitter=0.0, seed=0, phi=None):
    """Posterior draws at (``jitter=0``) or around (logit-normal noise) the simulator's truth."""
    truth = sim.truth
    cats = [str(c) for c in data["category"].values]
    secondary = [str(c) for c in data["channel"].values if c != "proactive"]
    pi = np.array([truth["prevalence"][c] for c in cats])
    d = np.array([truth["detection_rate"][c] for c in cats])
    rng = np.random.default_rng(seed)
    shape = (chains, draws, len(cats), 1)

    def perturb(x):
        logit = np.log(x) - np.log1p(-x) + rng.normal(0.0, jitter, shape)
        return 1.0 / (1.0 + np.exp(-logit))

    ratio = np.array([[truth["channel_ratio"][ch]] * len(cats) for ch in secondary])
    ratio = np.broadcast_to(ratio, (chains, draws, *ratio.shape))
    ratio = ratio * np.exp(rng.normal(0.0, jitter, ratio.shape))
    posterior = xr.Dataset(
        {
            "prevalence": (("chain", "draw", "category", "period"), perturb(pi[None, None])),
            "detection_rate": (("chain", "draw", "category", "period"), perturb(d[None, None])),
            "channel_ratio": (("chain", "draw", "secondary_channel", "category"), ratio),
        },
        coords={
            "category": cats,
            "period": data["period"].values,
            "secondary_channel": secondary,
        },
    )
    if phi is not None:
        posterior["false_positive_share"] = (
            ("chain", "draw", "category"),
            np.full((chains, draws, len(cats)), phi),
        )
    return posterior


def _fitted_like(submission, posterior, seed=5):
    model = PlatformRiskModel(submission)
    model.idata = xr.DataTree.from_dict({"posterior": posterior})
    model.idata.attrs["random_seed"] = seed
    model.convergence = ConvergenceReport(
        passed=True, max_rhat=1.0, min_ess_bulk=1000, min_ess_tail=1000, divergences=0,
        chains=posterior.sizes["chain"], draws=posterior.sizes["draw"], problems=[],
    )  # fmt: skip
    return model


def _plausible_rate_claims(sim, factor=0.8):
    """Claim a detection rate below the true listings-weighted one (a plausible claim)."""
    listings = sim.tables["listings"]
    for claim in sim.toml["claims"]:
        cat = claim["category"]
        n = listings.loc[listings["category"] == cat, "listings"].to_numpy(float)
        d = np.asarray(sim.truth["detection_rate"][cat])
        claim["detection_rate"] = float(factor * (n * d).sum() / n.sum())


def test_predictive_p_value_closed_form():
    reps = np.repeat(np.arange(10), 7)[:, None]  # uniform on 0..9
    p = predictive_p_value(reps, np.array([0, 9, 4, 20]))
    np.testing.assert_allclose(p, [0.1, 0.1, 0.9, 0.0])


def test_count_p_values_match_the_exact_binomial():
    """Constant rates over periods: the summed replicate is Binomial(Σ N, p) exactly."""
    sim = small_marketplace(seed=11)
    sub = sim.to_submission()
    data = sub.data
    post = _truth_posterior(sim, data, chains=4, draws=2000, phi=0.2)
    post["prevalence"] = post["prevalence"].mean("period") + 0 * post["prevalence"]
    post["detection_rate"] = post["detection_rate"].mean("period") + 0 * post["detection_rate"]
    table, reps = consistency_table(post, data, rng=np.random.default_rng(1), prob=0.8)
    rows = table[table["kind"] == "detections"]
    assert len(rows) == data.sizes["category"] * data.sizes["channel"]
    one = post.isel(chain=0, draw=0, period=0)
    d = one["detection_rate"].values
    for row in rows.itertuples():
        k = list(data["category"].values).index(row.category)
        rate = d[k]
        if row.channel != "proactive":
            ratio = float(one["channel_ratio"].sel(secondary_channel=row.channel)[k])
            rate = -np.expm1(-ratio * d[k])
        p = float(one["prevalence"].values[k]) * rate / (1 - 0.2)
        n = int(data["listings"].sel(category=row.category).sum())
        y = row.observed
        assert y == int(data["detected"].sel(category=row.category, channel=row.channel).sum())
        upper = stats.binom.sf(y, n, p) + 0.5 * stats.binom.pmf(y, n, p)
        lower = stats.binom.cdf(y - 1, n, p) + 0.5 * stats.binom.pmf(y, n, p)
        assert row.p_value == pytest.approx(min(1.0, 2 * min(upper, lower)), abs=0.025)
        assert row.predictive_median == pytest.approx(stats.binom.median(n, p), abs=2)
        assert row.predictive_low == pytest.approx(stats.binom.ppf(0.1, n, p), abs=3)
    # Replicated detected share = Σ replicated detections / Σ listings, per draw.
    total = data["listings"].sum("period")
    np.testing.assert_allclose(
        reps["detected_share"].values, (reps["detections"].sum("channel") / total).values
    )


def test_claimed_detection_rate_tail_matches_the_draws():
    sim = small_marketplace(seed=11)
    _plausible_rate_claims(sim)
    sub = sim.to_submission()
    post = _truth_posterior(sim, sub.data, jitter=0.3, seed=2)
    table, _ = consistency_table(post, sub.data, rng=np.random.default_rng(0))
    rows = table[table["kind"] == "detection_rate"].set_index("category")
    w = sub.data["listings"] / sub.data["listings"].sum("period")
    d = (post["detection_rate"] * w).sum("period")
    for cat in sub.categories:
        claim = float(sub.data["claimed_detection_rate"].sel(category=cat))
        expected = float((d.sel(category=cat) >= claim).mean())
        assert rows.loc[cat, "p_value"] == pytest.approx(expected)
        assert rows.loc[cat, "predictive_median"] == pytest.approx(
            float(d.sel(category=cat).median())
        )


def test_consistent_figures_pass_and_each_tampered_figure_is_flagged():
    sim = small_marketplace(seed=11)
    _plausible_rate_claims(sim)
    honest = sim.to_submission()
    post = _truth_posterior(sim, honest.data, jitter=0.02, seed=3)
    report = check_consistency(_fitted_like(honest, post), alpha=0.001)
    assert tuple(report.table.columns) == CONSISTENCY_COLUMNS
    kinds = report.table["kind"].value_counts()
    assert kinds["detections"] == 16 and kinds["detected_share"] == 4
    assert kinds["detection_rate"] == 4
    assert not report.table["flagged"].any(), report.flagged
    assert report.flags == []

    # Tamper with three figures: one count, one claimed prevalence, one claimed detection rate.
    det = sim.tables["detections"]
    hit = (det["category"] == "toys") & (det["channel"] == "notice")
    det.loc[hit, "detected"] *= 3
    claims = {c["category"]: c for c in sim.toml["claims"]}
    claims["cosmetics"]["prevalence"] /= 3
    claims["medicines"]["detection_rate"] = 0.99
    tampered = sim.to_submission()
    report = check_consistency(_fitted_like(tampered, post), alpha=0.001)
    flagged = {
        (r.kind, r.category, r.channel if isinstance(r.channel, str) else None)
        for r in report.flagged.itertuples()
    }
    assert flagged == {
        ("detections", "toys", "notice"),
        ("detected_share", "cosmetics", None),
        ("detection_rate", "medicines", None),
    }
    assert len(report.flags) == 3
    assert "notice detections in toys" in report.flags[0] and "more than" in report.flags[0]
    assert "cosmetics" in report.flags[1] and "understates" in report.flags[1]
    assert "medicines (99%)" in report.flags[2]


def test_p_values_are_calibrated_under_the_truth():
    """Datasets drawn from the truth, posterior at the truth: p-values uniform, flag rate ≈ α."""
    sim = small_marketplace(seed=11)
    sub = sim.to_submission()
    data = sub.data
    post = _truth_posterior(sim, data, chains=1, draws=400)
    cats = [str(c) for c in data["category"].values]
    pi = np.array([sim.truth["prevalence"][c] for c in cats])
    d = np.array([sim.truth["detection_rate"][c] for c in cats])
    rates = [d] + [
        np.broadcast_to(-np.expm1(-sim.truth["channel_ratio"][str(ch)] * d.mean(axis=1))[:, None],
                        d.shape)
        for ch in data["channel"].values[1:]
    ]  # fmt: skip
    p_true = pi[:, :, None] * np.stack(rates, axis=-1)
    listings = data["listings"].values[:, :, None]
    rng = np.random.default_rng(2024)
    p_values = []
    for _ in range(150):
        detected = rng.binomial(listings, p_true)
        claimed = detected.sum(axis=(1, 2)) / listings.sum(axis=(1, 2))
        ds = data.assign(
            detected=(data["detected"].dims, detected),
            claimed_prevalence=(("category",), claimed),
        )
        table, _ = consistency_table(post, ds, rng=np.random.default_rng(rng.integers(2**32)))
        p_values.append(table.loc[table["kind"] != "detection_rate", "p_value"].to_numpy())
    p_values = np.concatenate(p_values)
    assert 0.035 <= (p_values < 0.05).mean() <= 0.065
    assert 0.17 <= (p_values < 0.2).mean() <= 0.23
    assert stats.kstest(p_values, "uniform").statistic < 0.04


def test_report_is_reproducible_from_the_fit_seed(small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=40, chains=2))
    model.fit(random_seed=3)
    first = check_consistency(model, per_cell=True)
    again = check_consistency(model, per_cell=True)
    xr.testing.assert_equal(first.replicates, again.replicates)
    assert first.table.equals(again.table)
    other = check_consistency(model, random_seed=99)
    assert not np.array_equal(
        other.replicates["detections"].values, first.replicates["detections"].values
    )
    data = small_submission.data
    cells = first.table[first.table["kind"] == "detections_cell"]
    assert len(cells) == data.sizes["category"] * data.sizes["period"] * data.sizes["channel"]
    assert first.notes[0].startswith(f"{int(first.table['flagged'].sum())} of ")


def test_bad_arguments_are_clear_errors(small_submission):
    sim = small_marketplace()
    post = _truth_posterior(sim, small_submission.data, draws=5)
    with pytest.raises(ValueError, match="prob"):
        consistency_table(post, small_submission.data, rng=np.random.default_rng(0), prob=1.5)
    with pytest.raises(ValueError, match="alpha"):
        consistency_table(post, small_submission.data, rng=np.random.default_rng(0), alpha=0)
    with pytest.raises(ValueError, match="channel_ratio"):
        consistency_table(
            post.drop_vars("channel_ratio"), small_submission.data, rng=np.random.default_rng(0)
        )
