"""Posterior states built from a simulator's truth: known-truth checks of the lever analyses."""

from __future__ import annotations

import numpy as np

from risklab.counterfactual import PosteriorState

__all__ = ["truth_state"]


def truth_state(sim) -> PosteriorState:
    """A one-draw state holding the simulator's true parameters (θ per category, ceiling one)."""
    truth = sim.truth
    sub = sim.to_submission()
    data = sub.data
    cats = [str(c) for c in data["category"].values]
    channels = [str(c) for c in data["channel"].values]
    listings = data["listings"].transpose("category", "period").values.astype(float)
    hours = data["review_hours"].transpose("category", "period").values.astype(float)
    theta = np.array([[truth["efficiency"][c] for c in cats]])
    assert truth["detection_ceiling"] == 1
    amplitude = np.array([[1.0 - truth["hidden_share"][c] for c in cats]])
    pi = np.array([truth["prevalence"][c] for c in cats])[None]
    d_pro = np.array([truth["detection_rate"][c] for c in cats])
    secondary = [c for c in channels if c != "proactive"]
    other = np.stack(
        [
            np.broadcast_to(
                -np.expm1(-truth["channel_ratio"][ch] * d_pro.mean(axis=1))[:, None], d_pro.shape
            )
            for ch in secondary
        ],
        axis=-1,
    )[None]
    kwargs = {}
    if "enforcement" in truth:
        kwargs = dict(
            enforcement=np.array([truth["enforcement"]]),
            after_threshold_share=np.array([truth["listings_after_threshold_share"]]),
            claimed_enforcement=truth["claimed_enforcement"],
        )
    return PosteriorState(
        categories=cats,
        periods=[str(p) for p in data["period"].values],
        channels=["proactive", *secondary],
        listings=listings,
        review_hours=hours,
        claimed_prevalence=data["claimed_prevalence"].values.astype(float),
        thresholds=np.asarray(sub.scale.thresholds),
        labels=list(sub.scale.labels),
        amplitude=amplitude,
        efficiency=theta,
        logit_prevalence=np.log(pi) - np.log1p(-pi),
        other_rates=other,
        false_positive_share=np.zeros_like(amplitude),
        **kwargs,
    )
