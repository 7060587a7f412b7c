"""Prevalence: the share of active listings that are illegal.

``logit π[k, t] = α[k] + β[k] · s[t] + ε[k, t]`` with category levels α ~ Normal(μ, σ_α), a
linear trend β[k] = β_μ + σ_β z[k] on the period index scaled to [-½, ½], and cell deviations
ε ~ Normal(0, σ_cell).

Detections pin down the detected rate π·d, not π and d separately, so the free cell variable is
``ω[k, t] = logit π[k, t] + log d[k, t]`` — the log detected rate — with ``logit π = ω − log d``
and the same prior shifted by ``log d`` (the Jacobian of ω ↦ logit π given d is one). The
category level is treated alike: its free variable is κ[k] = α[k] + mean_t log d[k, t]. This
turns the long curved ridge between π and d into a well-conditioned posterior (DESIGN.md §3).

Cells and category levels are centred where their detections pin them down and non-centred where
they do not (:mod:`risklab.models.components._parametrisation`): a cell with ``n`` detections
(all channels) knows its log detected rate to about ``1/√n``, so it is sampled centred when
``n · σ_ref² ≥ 4`` with ``σ_ref`` the prior scale of ``prevalence_cell_sd`` (and a category level
likewise from its total detections against ``prevalence_category_sd``). Data-rich submissions
(millions of listings) are then fully centred, data-poor ones (tens of listings a month) largely
non-centred, and mixed ones per element; the posterior is the same either way. The trends are
non-centred (they are weakly identified relative to their spread).
"""

from __future__ import annotations

import numpy as np
import pymc as pm

from risklab.dims import CATEGORY, PERIOD
from risklab.models.components._parametrisation import (
    centred_where,
    partially_centred_normal,
    prior_scale,
)
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["Prevalence", "period_position"]


def period_position(n_periods: int) -> np.ndarray:
    """Period index scaled to [-½, ½] (all zeros for a single period)."""
    if n_periods == 1:
        return np.zeros(1)
    return np.arange(n_periods) / (n_periods - 1) - 0.5


class Prevalence(Component):
    """Hierarchical prevalence with a per-category linear trend (lever: ``prevalence_trend``)."""

    name = "prevalence"
    requires = ("log_detection_rate",)
    provides = ("logit_prevalence", "prevalence")
    default_priors = {
        # Typical prevalence 1% (logit -4.6); 95% prior range about 0.14%-6.6%.
        "prevalence_intercept": Prior("Normal", mu=-4.6, sigma=1.0),
        "prevalence_category_sd": Prior("HalfNormal", sigma=0.75),
        # Change of logit prevalence over the whole submission period.
        "prevalence_trend_mu": Prior("Normal", mu=0.0, sigma=0.5),
        "prevalence_trend_sd": Prior("HalfNormal", sigma=0.25),
        "prevalence_cell_sd": Prior("HalfNormal", sigma=0.25),
    }

    def build(self, ctx: BuildContext) -> None:
        n_periods = ctx.data.sizes[PERIOD]
        position = pm.Data("period_position", period_position(n_periods), dims=PERIOD)
        intercept = ctx.prior("prevalence_intercept")
        category_sd = ctx.prior("prevalence_category_sd")
        trend_mu = ctx.prior("prevalence_trend_mu")
        trend_sd = ctx.prior("prevalence_trend_sd")
        cell_sd = ctx.prior("prevalence_cell_sd")
        log_d = ctx.shared["log_detection_rate"]
        # Category level, parametrised along what detections identify: the free variable is the
        # category's log detected-rate level κ = α + mean_t log d; α = κ − mean_t log d keeps
        # α ~ Normal(intercept, category_sd) (unit Jacobian given d).
        detections = ctx.data["detected"].sum("channel").transpose(CATEGORY, PERIOD).values
        mean_log_d = log_d.mean(axis=1)
        level = partially_centred_normal(
            "log_detected_level",
            intercept + mean_log_d,
            category_sd,
            centred_where(
                detections.sum(axis=1), prior_scale(ctx.priors["prevalence_category_sd"], 0.75)
            ),
            dims=(CATEGORY,),
        )
        category_logit = pm.Deterministic(
            "prevalence_category_logit", level - mean_log_d, dims=CATEGORY
        )
        trend_offset = pm.Normal("prevalence_trend_offset", 0.0, 1.0, dims=CATEGORY)
        trend = pm.Deterministic(
            "prevalence_trend", trend_mu + trend_sd * trend_offset, dims=CATEGORY
        )
        expected_logit = category_logit[:, None] + trend[:, None] * position[None, :]
        shift = ctx.monitoring_shift("prevalence")
        if shift is not None:  # commitments' level/slope changes (monitoring)
            expected_logit = expected_logit + shift
        # Cell level: ω = logit π + log d is the free variable (the log detected rate).
        log_detected_rate = partially_centred_normal(
            "log_detected_rate",
            expected_logit + log_d,
            cell_sd,
            centred_where(detections, prior_scale(ctx.priors["prevalence_cell_sd"], 0.25)),
            dims=(CATEGORY, PERIOD),
        )
        logit_pi = log_detected_rate - log_d
        prevalence = pm.Deterministic(
            "prevalence", pm.math.sigmoid(logit_pi), dims=(CATEGORY, PERIOD)
        )
        ctx.shared.update(logit_prevalence=logit_pi, prevalence=prevalence)
