"""Capacity → detection: what the platform's review resources can buy.

Moderation intensity is ``r[k, t] = review_hours / listings × 1000`` (review hours per thousand
active listings). The proactive detection rate saturates in it::

    d_pro[k, t] = (1 - h[k]) · d_max · (1 - exp(-θ[k] · r[k, t]))

with ``d_max`` the best detection any amount of review achieves, ``θ[k]`` the category's review
efficiency (log-normal across categories, non-centred) and ``h[k]`` the hidden share of
:mod:`~risklab.models.components.evasion`. This is where "limited resources" becomes a number:
the detection rate the resources buy, set against the rate the platform claims.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from risklab.dims import CATEGORY, PERIOD
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["CapacityDetection", "review_intensity"]


def review_intensity(review_hours, listings) -> np.ndarray:
    """Review hours per thousand listings (``r`` in the methodology)."""
    return np.asarray(review_hours, dtype=float) / np.asarray(listings, dtype=float) * 1000.0


class CapacityDetection(Component):
    """Saturating detection curve in review intensity (scenario lever: ``review_hours``)."""

    name = "capacity"
    requires = ("hidden_share",)
    provides = ("detection_rate", "log_detection_rate", "review_intensity")
    default_priors = {
        # Best achievable proactive detection: mean 0.8, most mass in 0.55-0.97.
        "detection_ceiling": Prior("Beta", alpha=8.0, beta=2.0),
        # log θ: θ = 1 means one review hour per 1000 listings buys 63% of the ceiling.
        "efficiency_log_mu": Prior("Normal", mu=0.0, sigma=1.0),
        "efficiency_log_sd": Prior("HalfNormal", sigma=0.5),
    }

    def build(self, ctx: BuildContext) -> None:
        intensity = review_intensity(ctx.values("review_hours"), ctx.values("listings"))
        r = pm.Data("review_intensity", intensity, dims=(CATEGORY, PERIOD))
        ceiling = ctx.prior("detection_ceiling")
        log_mu = ctx.prior("efficiency_log_mu")
        log_sd = ctx.prior("efficiency_log_sd")
        offset = pm.Normal("efficiency_offset", 0.0, 1.0, dims=CATEGORY)
        efficiency = pm.Deterministic("efficiency", pt.exp(log_mu + log_sd * offset), dims=CATEGORY)
        reachable = 1.0 - ctx.shared["hidden_share"]
        saturation = -pt.expm1(-efficiency[:, None] * r)
        log_rate = pt.log(reachable)[:, None] + pt.log(ceiling) + pt.log(saturation)
        rate = pm.Deterministic("detection_rate", pt.exp(log_rate), dims=(CATEGORY, PERIOD))
        ctx.shared.update(detection_rate=rate, log_detection_rate=log_rate, review_intensity=r)
