"""Capacity → detection: what the platform's review resources buy, and what they cannot.

Moderation intensity is ``r[k, t] = review_hours / listings × 1000`` (review hours per thousand
active listings). Proactive detection follows a saturating curve in it, scaled per category::

    d_pro[k, t] = d̄[k] · s(θ[k] · r[k, t]) / s(θ[k] · r̄[k]),      s(x) = 1 - exp(-x)

``d̄[k]`` is the category's proactive detection rate at its mean review intensity ``r̄[k]`` (over
the submission's periods) and ``θ[k]`` the category's review efficiency, partially pooled:
``log θ[k] = μ_θ + σ_θ z[k]``. Two derived quantities carry the Art. 34 reading:

* ``reachable[k] = min(1, d̄[k] / s(θ[k] · r̄[k]))`` — the detection unlimited review would reach;
* ``hidden_share[k] = 1 - reachable[k]`` — the share of illegal listings out of reach of
  proactive detection (hidden links, affiliate programmes, obfuscated titles), whatever the
  review effort.

Why this parametrisation (DESIGN.md §3 writes ``(1 - h[k]) · d_max · s(θ[k] · r)`` with each
factor free): the evidence (planted listings, or detections once audits pin down prevalence)
identifies the detection *level* ``d̄[k]`` of each category; ``h``, ``d_max`` and ``θ[k]`` only
enter through their product, so with each free the posterior has curved ridges and the sampler
failed the convergence gate (R-hat 1.03–1.08, bulk ESS 37–145 on a 6-category recovery case).
Here the identified level is the free variable, with a logit-normal hierarchy over categories;
``θ[k]`` shapes only how detection moves with review intensity (identified by its variation over
time, pooled over categories by the hierarchy) and is the lever of review-hour scenarios.

Why per category (an earlier version shared one θ): review efficiency differs by category (a
fake medicine takes longer to recognise than an unsafe toy), and with one θ a category whose
detection rises faster with review than the others' was forced to ``reachable > 1`` (hidden
share floored at zero). With large counts the misfit also made a local mode in which the rate
is clipped at one: on the 10¹⁰-listings benchmark one chain sat there, 950 log-density units
below the others. θ[k] is identified only by how a category's proactive detections move with
its review intensity over time, which is weak for most submissions, so ``log θ[k]`` is sampled
non-centred. Centring it where a Fisher-information proxy of that movement was large (the rule
of :mod:`risklab.models.components._parametrisation`) helped the 10¹⁰-listings benchmark
(R-hat 1.22 → 1.19) but gave 10–97 divergences on the recovery cases of the test suite.

A category's level is sampled centred when its evidence pins it down and non-centred when only
the hierarchy does (:func:`evidence_information`; the rule of
:mod:`risklab.models.components._parametrisation`): a category without planted listings, random
audits or channel overlaps learns its level from the other categories alone, and a centred
level would meet the funnel of ``detection_level_logit_sd``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from risklab.dims import CATEGORY, PERIOD
from risklab.models.components._parametrisation import (
    centred_where,
    partially_centred_normal,
    prior_scale,
)
from risklab.models.components.base import BuildContext, Component
from risklab.models.components.overlaps import overlap_table
from risklab.priors import Prior

__all__ = ["CapacityDetection", "evidence_information", "review_intensity"]

#: Typical detection rate used to convert audit information on log prevalence into information on
#: the logit detection level (``(1 - d)²``); the prior's typical 35%.
_TYPICAL_DETECTION = 0.35

#: Largest detection probability the curve may reach (keeps binomial probabilities below one).
MAX_RATE = 1.0 - 1e-9
#: Review intensity floor (hours per 1000 listings). A cell with zero review hours keeps a tiny
#: positive detection rate (1e-6 relative to the category's mean intensity) rather than log(0);
#: a category with no review hours at all has its detection level identified by its detections.
INTENSITY_FLOOR = 1e-6


def review_intensity(review_hours, listings) -> np.ndarray:
    """Review hours per thousand listings (``r`` in the methodology)."""
    return np.asarray(review_hours, dtype=float) / np.asarray(listings, dtype=float) * 1000.0


def evidence_information(data) -> np.ndarray:
    """Rough Fisher information on each category's logit detection level from its evidence.

    Planted listings measure detection directly (``Σ planted · p̂ (1 − p̂)``, ``p̂`` the smoothed
    caught share); random audits and channel overlaps identify prevalence, hence detection through
    the detected rate (``illegal found`` and the listings seen by two or more channels, times
    ``(1 − d)²`` at a typical detection rate). Used only to choose the parametrisation.
    """
    planted = data["planted"].sum(PERIOD).values.astype(float)
    caught = data["caught"].sum(PERIOD).values.astype(float)
    share = (caught + 0.5) / (planted + 1.0)
    info = planted * share * (1.0 - share)
    found = data["audit_random_illegal"].sum(PERIOD).values.astype(float)
    info = info + found * (1.0 - _TYPICAL_DETECTION) ** 2
    table = overlap_table(data)
    if table is not None:
        multiple = table.histories.sum(axis=1) >= 2
        categories = [str(c) for c in data[CATEGORY].values]
        for i, cat in enumerate(table.categories):
            info[categories.index(cat)] += (
                table.counts[i, multiple].sum() * (1.0 - _TYPICAL_DETECTION) ** 2
            )
    return info


class CapacityDetection(Component):
    """Saturating detection curve in review intensity (scenario lever: ``review_hours``)."""

    name = "capacity"
    provides = (
        "detection_rate",
        "log_detection_rate",
        "review_intensity",
        "efficiency",
        "detection_level",
        "hidden_share",
    )
    default_priors = {
        # Category detection rates at current capacity: typical 35% (logit -0.6), 95% in 8%-80%.
        "detection_level_logit_mu": Prior("Normal", mu=-0.6, sigma=1.0),
        "detection_level_logit_sd": Prior("HalfNormal", sigma=0.75),
        # Mean of log θ[k]: θ = 1 means one review hour per 1000 listings buys 63% of what
        # unlimited review would find; 95% prior range of the typical θ in 0.14-7.
        "efficiency_log_mu": Prior("Normal", mu=0.0, sigma=1.0),
        # Spread of log θ[k] over categories: median 0.34 (a factor 1.4), 95% below 1.
        "efficiency_log_sd": Prior("HalfNormal", sigma=0.5),
    }

    def build(self, ctx: BuildContext) -> None:
        intensity = np.maximum(
            review_intensity(ctx.values("review_hours"), ctx.values("listings")), INTENSITY_FLOOR
        )
        r = pm.Data("review_intensity", intensity, dims=(CATEGORY, PERIOD))
        mean_r = pm.Data("mean_review_intensity", intensity.mean(axis=1), dims=CATEGORY)
        mu = ctx.prior("detection_level_logit_mu")
        sd = ctx.prior("detection_level_logit_sd")
        centred = centred_where(
            evidence_information(ctx.data),
            prior_scale(ctx.priors["detection_level_logit_sd"], 0.75),
        )
        level_logit = partially_centred_normal(
            "detection_level_logit", mu, sd, centred, dims=(CATEGORY,)
        )
        level = pm.Deterministic("detection_level", pm.math.sigmoid(level_logit), dims=CATEGORY)
        offset = pm.Normal("efficiency_log_offset", 0.0, 1.0, dims=CATEGORY)
        efficiency_log = ctx.prior("efficiency_log_mu") + ctx.prior("efficiency_log_sd") * offset
        efficiency = pm.Deterministic("efficiency", pt.exp(efficiency_log), dims=CATEGORY)
        saturation_at_mean = -pt.expm1(-efficiency * mean_r)
        shift_level = ctx.monitoring_shift("hidden_share")
        shift_efficiency = ctx.monitoring_shift("efficiency")
        if shift_level is None and shift_efficiency is None:
            relative = -pt.expm1(-efficiency[:, None] * r) / saturation_at_mean[:, None]
            rate = pt.minimum(level[:, None] * relative, MAX_RATE)
        else:  # commitments move the level (hidden share) or θ by period (risklab.monitoring)
            rate = _monitored_rate(
                level_logit, efficiency, saturation_at_mean, r, shift_level, shift_efficiency
            )
        rate = pm.Deterministic("detection_rate", rate, dims=(CATEGORY, PERIOD))
        reachable = pt.minimum(level / saturation_at_mean, 1.0)
        hidden = pm.Deterministic("hidden_share", 1.0 - reachable, dims=CATEGORY)
        ctx.shared.update(
            detection_rate=rate,
            log_detection_rate=pt.log(rate),
            review_intensity=r,
            efficiency=efficiency,
            detection_level=level,
            hidden_share=hidden,
        )


def _monitored_rate(level_logit, efficiency, saturation_at_mean, r, shift_level, shift_efficiency):
    """Proactive rate when commitments shift the detection level or θ by period.

    ``level[k, t] = expit(logit level[k] + shift)``, ``reachable[k, t] = level[k, t] / s(θ[k]
    r̄[k])`` (θ[k] the baseline efficiency), ``θ[k, t] = θ[k] · exp(shift)``, ``d[k, t] =
    reachable[k, t] · s(θ[k, t] · r[k, t])``; with zero shifts this is the unmonitored curve.
    Records ``detection_level_by_period``, ``hidden_share_by_period``, ``efficiency_by_period`` and
    ``saturation_at_mean`` for :mod:`risklab.monitoring`.
    """
    level_logit = level_logit[:, None]
    if shift_level is not None:
        level_logit = level_logit + shift_level
    level_kt = pm.Deterministic(
        "detection_level_by_period",
        pt.sigmoid(pt.broadcast_to(level_logit, r.shape)),
        dims=(CATEGORY, PERIOD),
    )
    log_theta = pt.log(efficiency)[:, None] + (
        0.0 if shift_efficiency is None else shift_efficiency
    )
    theta_kt = pm.Deterministic(
        "efficiency_by_period",
        pt.broadcast_to(pt.exp(log_theta), r.shape),
        dims=(CATEGORY, PERIOD),
    )
    saturation = pm.Deterministic("saturation_at_mean", saturation_at_mean, dims=CATEGORY)
    reachable = level_kt / saturation[:, None]
    pm.Deterministic(
        "hidden_share_by_period", 1.0 - pt.minimum(reachable, 1.0), dims=(CATEGORY, PERIOD)
    )
    return pt.minimum(reachable * -pt.expm1(-theta_kt * r), MAX_RATE)
