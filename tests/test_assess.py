"""assess(): findings computed from known posterior draws, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from risklab.assess import FINDINGS_COLUMNS, assess, identification_sources
from risklab.models import PlatformRiskModel
from risklab.models.diagnostics import ConvergenceReport


def _with_posterior(submission, prevalence: np.ndarray, detection: np.ndarray, passed=True):
    """A model whose 'posterior' holds the given draws (chain, draw, category, period)."""
    model = PlatformRiskModel(submission)
    data = submission.data
    dims = ("chain", "draw", "category", "period")
    coords = {"category": data["category"].values, "period": data["period"].values}
    posterior = xr.Dataset(
        {"prevalence": (dims, prevalence), "detection_rate": (dims, detection)}, coords=coords
    )
    model.idata = xr.DataTree.from_dict({"posterior": posterior})
    model.convergence = ConvergenceReport(
        passed=passed, max_rhat=1.0, min_ess_bulk=1000, min_ess_tail=1000, divergences=0,
        chains=prevalence.shape[0], draws=prevalence.shape[1],
        problems=[] if passed else ["R-hat 1.2 > 1.01 (worst: x)"],
    )  # fmt: skip
    return model


def test_findings_match_hand_computation(small_submission):
    data = small_submission.data
    k, t = data.sizes["category"], data.sizes["period"]
    rng = np.random.default_rng(0)
    prevalence = rng.uniform(0.001, 0.02, size=(2, 250, k, t))
    detection = rng.uniform(0.1, 0.9, size=(2, 250, k, t))
    findings = assess(_with_posterior(small_submission, prevalence, detection), prob=0.8)
    table = findings.table

    assert tuple(table.columns[: len(FINDINGS_COLUMNS)]) == FINDINGS_COLUMNS
    labels = small_submission.scale.labels
    band_cols = [f"p_band:{label}" for label in labels]
    assert list(table.columns[len(FINDINGS_COLUMNS) : len(FINDINGS_COLUMNS) + len(labels)]) == (
        band_cols
    )

    listings = data["listings"].values.astype(float)
    weights = listings / listings.sum(axis=1, keepdims=True)
    cat_prev = (prevalence * weights).sum(axis=-1).reshape(-1, k)  # (sample, category)
    thresholds = np.array(small_submission.scale.thresholds)
    for i, cat in enumerate(data["category"].values):
        row = table.iloc[i]
        draws = cat_prev[:, i]
        claim = small_submission.claims[str(cat)]
        assert row["category"] == cat
        np.testing.assert_allclose(row["prevalence_median"], np.quantile(draws, 0.5))
        np.testing.assert_allclose(row["prevalence_low"], np.quantile(draws, 0.1))
        np.testing.assert_allclose(row["prevalence_high"], np.quantile(draws, 0.9))
        u = draws / claim.prevalence
        np.testing.assert_allclose(row["underestimation_median"], np.median(u))
        np.testing.assert_allclose(row["underestimation_low"], np.quantile(u, 0.1))
        np.testing.assert_allclose(row["p_underestimated"], (u > 1).mean())
        bands = np.searchsorted(thresholds, draws, side="right")
        probs = np.bincount(bands, minlength=len(labels)) / len(draws)
        np.testing.assert_allclose(row[band_cols].to_numpy(dtype=float), probs)
        assert row["most_likely_band"] == labels[int(np.argmax(probs))]
        claimed_index = labels.index(claim.band)
        np.testing.assert_allclose(row["p_band_above_claimed"], (bands > claimed_index).mean())
        assert row["claimed_prevalence"] == claim.prevalence
        assert row["converged"]
    assert findings.converged


def test_band_edges_follow_the_declared_scale(small_submission):
    """A share exactly on a cut point belongs to the band above it."""
    data = small_submission.data
    k, t = data.sizes["category"], data.sizes["period"]
    cut = small_submission.scale.thresholds[1]
    prevalence = np.full((1, 4, k, t), cut)
    findings = assess(_with_posterior(small_submission, prevalence, prevalence))
    label = small_submission.scale.labels[2]
    assert (findings.table[f"p_band:{label}"] == 1.0).all()


def test_unconverged_fit_is_flagged_everywhere(small_submission):
    data = small_submission.data
    shape = (2, 10, data.sizes["category"], data.sizes["period"])
    model = _with_posterior(small_submission, np.full(shape, 0.01), np.full(shape, 0.5), False)
    findings = assess(model)
    assert not findings.table["converged"].any()
    assert findings.warnings[0].startswith("UNCONVERGED")
    assert not findings.converged


def test_identification_sources(small_submission):
    sources = identification_sources(small_submission.data)
    # small marketplace: random audits in medicines, planted in toys and cosmetics,
    # purposive test purchases (which do not identify) in toys
    assert sources.to_dict() == {
        "cosmetics": "planted", "jewellery": "prior", "medicines": "audit", "toys": "planted",
    }  # fmt: skip
    overlaps = pd.DataFrame({"category": ["jewellery", "medicines"]})
    sources = identification_sources(small_submission.data, overlaps)
    assert sources["jewellery"] == "overlap"
    assert sources["medicines"] == "audit+overlap"


def test_prior_only_submission_warns_for_every_category(small_sim):
    small_sim.evidence.clear()
    sub = small_sim.to_submission()
    data = sub.data
    shape = (2, 10, data.sizes["category"], data.sizes["period"])
    findings = assess(_with_posterior(sub, np.full(shape, 0.01), np.full(shape, 0.5)))
    assert (findings.table["identified_by"] == "prior").all()
    prior_warnings = [w for w in findings.warnings if "prior-driven" in w]
    assert len(prior_warnings) == data.sizes["category"]


def test_csv_is_deterministic_and_escapes_formulas(tmp_path, small_submission):
    data = small_submission.data
    shape = (2, 10, data.sizes["category"], data.sizes["period"])
    findings = assess(_with_posterior(small_submission, np.full(shape, 0.01), np.full(shape, 0.5)))
    findings.table.loc[0, "category"] = '=HYPERLINK("http://x")'
    a = findings.to_csv(tmp_path / "a.csv").read_bytes()
    b = findings.to_csv(tmp_path / "b.csv").read_bytes()
    assert a == b
    assert b"'=HYPERLINK" in a
    back = pd.read_csv(tmp_path / "a.csv")
    assert list(back.columns[: len(FINDINGS_COLUMNS)]) == list(FINDINGS_COLUMNS)


def test_prob_must_be_a_probability(small_submission):
    with pytest.raises(ValueError, match="prob"):
        assess(PlatformRiskModel(small_submission), prob=1.5)


def test_a_hidden_share_at_its_floor_is_reported_as_a_floor(small_submission):
    data = small_submission.data
    k, t = data.sizes["category"], data.sizes["period"]
    shape = (2, 10, k, t)
    model = _with_posterior(small_submission, np.full(shape, 0.01), np.full(shape, 0.5))
    hidden = np.full((2, 10, k), 0.2)
    hidden[:, :6, 0] = 0.0  # 60% of draws at the floor: reported
    hidden[:, :4, 1] = 0.0  # 40%: not reported
    posterior = model.idata["posterior"].to_dataset()
    posterior["hidden_share"] = (("chain", "draw", "category"), hidden)
    model.idata = xr.DataTree.from_dict({"posterior": posterior})
    cats = [str(c) for c in data["category"].values]
    floors = [w for w in assess(model).warnings if "floor of zero" in w]
    assert len(floors) == 1
    assert repr(cats[0]) in floors[0] and "60%" in floors[0]
