"""Interrupted time series of commitments: level and slope changes at each effective date.

For a commitment *j* effective from period ``t0_j`` on a quantity with link ``g`` (logit or log,
:mod:`risklab.monitoring.quantities`), the model adds to ``g(Q[k, t])`` in every covered category::

    shift_j[k, t] = level_j[k] · step_j(t) + slope_j[k] · ramp_j(t)
    step_j(t) = 1{t ≥ t0_j},   ramp_j(t) = max(0, t − t0_j) / 12   (years since the date)

Changes are hierarchical over categories: ``level_j[k] = μ_j + σ_j z_jk`` (non-centred,
``μ_j ~ commitment_level``, ``σ_j ~ commitment_level_sd``; likewise the slope); a commitment
covering one category has ``level_j = μ_j``. Effects of several commitments on one quantity add
up. Before its first commitment a monitored quantity follows a baseline: prevalence its
per-category linear trend (the platform model's), the detection level (hidden share) and the
efficiency a hierarchical linear trend per category, enforcement a linear trend, and review
capacity a per-category log-linear regression of the observed review intensity. So a change is
measured against the pre-existing trajectory, not against a flat line.

This component builds the shifts only; the platform model's components apply them
(``ctx.shared["its_shift_<quantity>"]``): prevalence adds its shift to ``logit π``, capacity to the
logit detection level (hidden share) and to ``log θ`` (efficiency), the repeat-offender component
to ``logit q`` per period. Review capacity is data (the observed hours), so its commitment enters
through its own likelihood, ``log r[k, t] ~ Normal(a_k + b_k · years + shift, σ_r)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from risklab.dims import CATEGORY, PERIOD
from risklab.models.components.base import BuildContext, Component
from risklab.models.components.capacity import review_intensity
from risklab.monitoring.commitments import Commitment
from risklab.monitoring.quantities import quantity
from risklab.priors import Prior

__all__ = [
    "COMMITMENT",
    "COMMITMENT_CELL",
    "InterruptedTimeSeries",
    "centred_years",
    "ramp",
    "shift_key",
    "step",
]

#: Dim of commitments, and of the (commitment, category) pairs with their own change.
COMMITMENT = "commitment"
COMMITMENT_CELL = "commitment_cell"
#: Dim of the categories whose review capacity is modelled.
CAPACITY_CATEGORY = "capacity_category"
#: Periods per year (periods are months).
PERIODS_PER_YEAR = 12.0


def shift_key(quantity_name: str) -> str:
    """Key of ``ctx.shared`` holding the link-scale shift of a monitored quantity."""
    return f"its_shift_{quantity_name}"


def step(effective_index: int, n_periods: int) -> np.ndarray:
    """``1{t ≥ t0}`` over periods ``0..n_periods-1`` (periods beyond the window allowed)."""
    return (np.arange(n_periods) >= effective_index).astype(float)


def ramp(effective_index: int, n_periods: int) -> np.ndarray:
    """Years since the effective date, zero before it."""
    return np.maximum(0.0, np.arange(n_periods) - effective_index) / PERIODS_PER_YEAR


def centred_years(n_periods: int, n_fitted: int | None = None) -> np.ndarray:
    """Years from the middle of the fitted window (``n_fitted`` periods; default all)."""
    n_fitted = n_periods if n_fitted is None else n_fitted
    return (np.arange(n_periods) - (n_fitted - 1) / 2.0) / PERIODS_PER_YEAR


class InterruptedTimeSeries(Component):
    """Level and slope changes of the monitored quantities at each commitment's date.

    Parameters
    ----------
    commitments : sequence of Commitment
        Validated commitments (:func:`risklab.monitoring.validate_commitments`).
    """

    name = "commitments"
    provides = tuple(
        shift_key(q) for q in ("prevalence", "hidden_share", "efficiency", "enforcement")
    )
    default_priors = {
        # Change of the quantity on its link scale (logit or log) at the effective date: a
        # level change of ±2 (a factor ~7 in odds) is at the edge of the prior's 95%.
        "commitment_level": Prior("Normal", mu=0.0, sigma=1.0),
        "commitment_level_sd": Prior("HalfNormal", sigma=0.25),
        # Change of the yearly slope after the date (link scale per year).
        "commitment_slope": Prior("Normal", mu=0.0, sigma=1.0),
        "commitment_slope_sd": Prior("HalfNormal", sigma=0.25),
        # Baseline yearly trends of monitored detection levels, efficiency and enforcement.
        "detection_level_trend_mu": Prior("Normal", mu=0.0, sigma=0.5),
        "detection_level_trend_sd": Prior("HalfNormal", sigma=0.25),
        "efficiency_trend_mu": Prior("Normal", mu=0.0, sigma=0.5),
        "efficiency_trend_sd": Prior("HalfNormal", sigma=0.25),
        "enforcement_trend": Prior("Normal", mu=0.0, sigma=0.5),
        # Log review intensity regression (hours per 1000 listings), for review_capacity.
        "review_capacity_intercept": Prior("Normal", mu=0.0, sigma=3.0),
        "review_capacity_trend": Prior("Normal", mu=0.0, sigma=0.5),
        "review_capacity_noise_sd": Prior("HalfNormal", sigma=0.5),
    }

    def __init__(self, commitments: Sequence[Commitment] = ()) -> None:
        self.commitments = list(commitments)

    def is_active(self, data: xr.Dataset) -> bool:
        return bool(self.commitments)

    def __repr__(self) -> str:
        return f"InterruptedTimeSeries({[c.name for c in self.commitments]!r})"

    def build(self, ctx: BuildContext) -> None:
        model = pm.modelcontext(None)
        categories = [str(c) for c in ctx.data[CATEGORY].values]
        periods = [str(p) for p in ctx.data[PERIOD].values]
        n_k, n_t, n_j = len(categories), len(periods), len(self.commitments)
        model.add_coord(COMMITMENT, [c.name for c in self.commitments])
        level_mu = ctx.prior("commitment_level", dims=[COMMITMENT])
        level_sd = ctx.prior("commitment_level_sd", dims=[COMMITMENT])
        slope_mu = ctx.prior("commitment_slope", dims=[COMMITMENT])
        slope_sd = ctx.prior("commitment_slope_sd", dims=[COMMITMENT])

        # Changes per (commitment, category): pooled mean plus a non-centred category deviation
        # where a commitment covers two or more categories; the mean alone where it covers one;
        # the platform-wide mean in every category for platform-wide quantities.
        cells = [
            (j, categories.index(cat))
            for j, c in enumerate(self.commitments)
            if len(c.categories or ()) >= 2
            for cat in c.categories
        ]
        level = pt.zeros((n_j, n_k))
        slope = pt.zeros((n_j, n_k))
        for j, c in enumerate(self.commitments):
            if not quantity(c.quantity).per_category:
                level = pt.set_subtensor(level[j], pt.broadcast_to(level_mu[j], (n_k,)))
                slope = pt.set_subtensor(slope[j], pt.broadcast_to(slope_mu[j], (n_k,)))
            elif len(c.categories) == 1:
                k = categories.index(c.categories[0])
                level = pt.set_subtensor(level[j, k], level_mu[j])
                slope = pt.set_subtensor(slope[j, k], slope_mu[j])
        if cells:
            model.add_coord(
                COMMITMENT_CELL,
                [f"{self.commitments[j].name}|{categories[k]}" for j, k in cells],
            )
            j_idx = np.array([j for j, _ in cells])
            k_idx = np.array([k for _, k in cells])
            level_z = pm.Normal("commitment_level_offset", 0.0, 1.0, dims=COMMITMENT_CELL)
            slope_z = pm.Normal("commitment_slope_offset", 0.0, 1.0, dims=COMMITMENT_CELL)
            level = pt.set_subtensor(
                level[j_idx, k_idx], level_mu[j_idx] + level_sd[j_idx] * level_z
            )
            slope = pt.set_subtensor(
                slope[j_idx, k_idx], slope_mu[j_idx] + slope_sd[j_idx] * slope_z
            )
        level = pm.Deterministic("commitment_level_change", level, dims=(COMMITMENT, CATEGORY))
        slope = pm.Deterministic("commitment_slope_change", slope, dims=(COMMITMENT, CATEGORY))

        steps = np.stack([step(periods.index(c.effective), n_t) for c in self.commitments])
        ramps = np.stack([ramp(periods.index(c.effective), n_t) for c in self.commitments])
        shift = pm.Deterministic(
            "commitment_shift",
            level[:, :, None] * steps[:, None, :] + slope[:, :, None] * ramps[:, None, :],
            dims=(COMMITMENT, CATEGORY, PERIOD),
        )

        years = centred_years(n_t)
        for name in {c.quantity for c in self.commitments}:
            rows = [j for j, c in enumerate(self.commitments) if c.quantity == name]
            total = shift[rows].sum(axis=0)
            if name == "hidden_share":
                total = total + self._trend(ctx, "detection_level", years)
            elif name == "efficiency":
                total = total + self._trend(ctx, "efficiency", years)
            elif name == "enforcement":
                trend = ctx.prior("enforcement_trend")
                total = total[0] + trend * years  # platform-wide: identical in every category
            elif name == "review_capacity":
                self._capacity_regression(ctx, total, years)
                continue
            ctx.shared[shift_key(name)] = total

    @staticmethod
    def _trend(ctx: BuildContext, prefix: str, years: np.ndarray):
        mu = ctx.prior(f"{prefix}_trend_mu")
        sd = ctx.prior(f"{prefix}_trend_sd")
        offset = pm.Normal(f"{prefix}_trend_offset", 0.0, 1.0, dims=CATEGORY)
        trend = pm.Deterministic(f"{prefix}_trend", mu + sd * offset, dims=CATEGORY)
        return trend[:, None] * years[None, :]

    def _capacity_regression(self, ctx: BuildContext, shift, years: np.ndarray) -> None:
        categories = [str(c) for c in ctx.data[CATEGORY].values]
        covered = sorted(
            {
                categories.index(cat)
                for c in self.commitments
                if c.quantity == "review_capacity"
                for cat in c.categories
            }
        )
        model = pm.modelcontext(None)
        model.add_coord(CAPACITY_CATEGORY, [categories[k] for k in covered])
        intensity = review_intensity(ctx.values("review_hours"), ctx.values("listings"))[covered]
        intercept = ctx.prior("review_capacity_intercept", dims=[CAPACITY_CATEGORY])
        trend = ctx.prior("review_capacity_trend", dims=[CAPACITY_CATEGORY])
        noise = ctx.prior("review_capacity_noise_sd")
        mean = intercept[:, None] + trend[:, None] * years[None, :] + shift[covered]
        observed = intensity > 0  # a month without review hours says nothing about log hours
        rows, cols = np.nonzero(observed)
        pm.Normal(
            "review_capacity_log",
            mu=mean[rows, cols],
            sigma=noise,
            observed=np.log(intensity[rows, cols]),
        )
