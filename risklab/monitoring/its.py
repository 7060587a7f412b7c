"""Interrupted time series of commitments: level and slope changes at each effective date.

For a commitment *j* effective from period ``t0_j`` on a quantity with link ``g`` (logit or log,
:mod:`risklab.monitoring.quantities`), the model adds to ``g(Q[k, t])`` in every covered category::

    shift_j[k, t] = level_j[k] · step_j(t) + slope_j · ramp_j(t)
    step_j(t) = 1{t ≥ t0_j},   ramp_j(t) = max(0, t − t0_j) / 12   (years since the date)

Level changes are hierarchical over categories: ``level_j[k] ~ Normal(μ_j, σ)`` with ``μ_j ~
commitment_level`` and the spread fixed, ``σ =`` :data:`LEVEL_SPREAD` (0.25); the slope change
``slope_j ~ commitment_slope`` is one per commitment (per-category slopes beside per-category
baseline trends are not identified well enough to sample: R-hat 1.03–1.08). Level changes are
sampled centred where the data after the date pin a category's change down and non-centred
elsewhere (the rule of :mod:`risklab.models.components._parametrisation`; review capacity, observed
directly, is always centred; ``InterruptedTimeSeries._centred_cells``); a commitment covering one
category, and an efficiency commitment (one change of ``log θ[k]`` for every covered category,
:data:`POOLED`), has ``level_j = μ_j``. Effects of several commitments on one quantity add up.
Before its first commitment a monitored quantity follows a baseline: prevalence its per-category
linear trend (the platform model's); the detection level (hidden share) and enforcement a
platform-wide linear trend (per year, from the window's middle); efficiency none (θ[k] is constant
before its first commitment, as in the platform model); review capacity a per-category log-linear
regression of the observed review intensity. So a change is measured against the pre-existing
trajectory, not against a flat line.

This component builds the shifts only; the platform model's components apply them
(``ctx.shared["its_shift_<quantity>"]``): prevalence adds its shift to ``logit π``, capacity to the
logit detection level (hidden share) and to ``log θ`` (efficiency), the repeat-offender component
to ``logit q`` per period. Review capacity is data (the observed hours), so its commitment enters
through its own likelihood, ``log r[k, t] ~ Normal(a_k + b_k · years + shift, σ_r)`` with the
per-category intercept ``a_k`` and trend ``b_k`` integrated out analytically.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from risklab.dims import CATEGORY, PERIOD
from risklab.models.components._parametrisation import (
    centred_where,
    partially_centred_normal,
)
from risklab.models.components.base import BuildContext, Component, shift_key
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
    "step",
]

#: Dim of commitments, and of the (commitment, category) pairs with their own change.
COMMITMENT = "commitment"
COMMITMENT_CELL = "commitment_cell"
#: Quantities whose change is one number for every covered category (no hierarchy): per-category
#: changes of review efficiency are not identified (R-hat 1.05–1.45 and divergences on a
#: 4-category recovery case, when θ was shared by all categories; θ[k] itself is only weakly
#: identified per category).
POOLED = frozenset({"efficiency"})
#: Spread (link scale) of a commitment's level change over its categories: each category's change
#: is ``Normal(μ_j, LEVEL_SPREAD)``. Fixed, not learnt: a commitment covers a handful of
#: categories, which say little about the spread, and a learnt spread put the sampler in the
#: funnel wherever the categories changed alike — worst for a commitment without any effect,
#: whose true spread is zero (HalfNormal(0.25): 37 divergences, R-hat 1.04; boundary-avoiding
#: Gamma(2, 8): still 9 divergences at σ ≈ 0.005 on the recovery case).
LEVEL_SPREAD = 0.25
#: Periods per year (periods are months).
PERIODS_PER_YEAR = 12.0


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
        # Change of the yearly slope after the date (link scale per year).
        "commitment_slope": Prior("Normal", mu=0.0, sigma=1.0),
        # Baseline yearly trends (platform-wide) of the monitored detection level and
        # enforcement. Per-category trends of the detection level were tried and left the
        # sampler stuck (R-hat 1.2, bulk ESS 8 for their mean on a 4-category recovery case):
        # between-category differences in a drift of detection are not identified beside the
        # commitments' own per-category changes. Efficiency has no baseline trend: θ is
        # identified only through how detection moves with review intensity, and a trend beside
        # the commitment's level and slope failed the gate (R-hat 1.03, bulk ESS 49).
        "detection_level_trend": Prior("Normal", mu=0.0, sigma=0.5),
        "enforcement_trend": Prior("Normal", mu=0.0, sigma=0.5),
        # Log review intensity regression (hours per 1000 listings), for review_capacity: the
        # intercept and trend per category are integrated out (Normal priors required).
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
        slope_mu = ctx.prior("commitment_slope", dims=[COMMITMENT])

        # Level changes per (commitment, category): the pooled mean plus a category deviation
        # where a commitment covers two or more categories; the mean alone where it covers one,
        # for efficiency (POOLED) and for the platform-wide enforcement. Slope changes are one
        # per commitment in every covered category: a slope is told apart from the baseline
        # trend only by the months before the date, and per-category slopes on top of
        # per-category trends failed the gate (R-hat 1.03–1.08, divergences).
        cells = [
            (j, categories.index(cat))
            for j, c in enumerate(self.commitments)
            if len(c.categories or ()) >= 2 and c.quantity not in POOLED
            for cat in c.categories
        ]
        level = pt.zeros((n_j, n_k))
        slope = pt.zeros((n_j, n_k))
        for j, c in enumerate(self.commitments):
            ks = (
                np.arange(n_k)
                if not quantity(c.quantity).per_category
                else np.array([categories.index(cat) for cat in c.categories])
            )
            slope = pt.set_subtensor(slope[j, ks], slope_mu[j])
            if len(ks) == 1 or c.quantity in POOLED or not quantity(c.quantity).per_category:
                level = pt.set_subtensor(level[j, ks], level_mu[j])
        if cells:
            model.add_coord(
                COMMITMENT_CELL,
                [f"{self.commitments[j].name}|{categories[k]}" for j, k in cells],
            )
            j_idx = np.array([j for j, _ in cells])
            k_idx = np.array([k for _, k in cells])
            level_cell = partially_centred_normal(
                "commitment_level_cell",
                level_mu[j_idx],
                LEVEL_SPREAD,
                self._centred_cells(ctx, cells),
                dims=(COMMITMENT_CELL,),
            )
            level = pt.set_subtensor(level[j_idx, k_idx], level_cell)
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
                total = total + ctx.prior("detection_level_trend") * years[None, :]
            elif name == "enforcement":
                trend = ctx.prior("enforcement_trend")
                total = total[0] + trend * years  # platform-wide: identical in every category
            elif name == "review_capacity":
                self._capacity_regression(ctx, total, years)
                continue
            ctx.shared[shift_key(name)] = total

    def _centred_cells(self, ctx: BuildContext, cells: list[tuple[int, int]]) -> np.ndarray:
        """Which (commitment, category) level changes to sample centred.

        The rule of :mod:`risklab.models.components._parametrisation` against
        :data:`LEVEL_SPREAD`, with the information after the effective date: review capacity
        — observed hours, precise: always centred; prevalence — detections and random audits'
        illegal finds; hidden share — planted listings (``planted · p̂ (1 − p̂)``). (Efficiency
        commitments have no per-category changes, :data:`POOLED`.)
        """
        periods = [str(p) for p in ctx.data[PERIOD].values]
        detected = ctx.data["detected"].sum("channel").transpose(CATEGORY, PERIOD).values
        found = ctx.values("audit_random_illegal")
        planted = ctx.values("planted").astype(float)
        share = (ctx.values("caught") + 0.5) / (planted + 1.0)
        planted_info = planted * share * (1.0 - share)
        reference = LEVEL_SPREAD
        info = np.zeros(len(cells))
        for i, (j, k) in enumerate(cells):
            c = self.commitments[j]
            after = slice(periods.index(c.effective), None)
            if c.quantity == "review_capacity":
                info[i] = np.inf
            elif c.quantity == "prevalence":
                info[i] = detected[k, after].sum() + found[k, after].sum()
            elif c.quantity == "hidden_share":
                info[i] = planted_info[k, after].sum()
        return centred_where(info, reference)

    def _capacity_regression(self, ctx: BuildContext, shift, years: np.ndarray) -> None:
        """``log r[k, t] = a_k + b_k · years_t + shift[k, t] + ε``, with ``a_k`` and ``b_k``
        integrated out.

        ``a_k ~ Normal(μ_a, σ_a)`` (``review_capacity_intercept``) and ``b_k ~ Normal(μ_b, σ_b)``
        (``review_capacity_trend``) are Gaussian and enter linearly, so each covered category's
        observed log intensities are jointly ``MvNormal(μ_a + μ_b · years + shift,
        σ_r² I + σ_a² 1 1ᵀ + σ_b² years yearsᵀ)`` — the exact marginal likelihood. Sampling the
        intercept and trend instead left them strongly correlated with the commitment's level
        and slope (the pre-period alone separates the trend from the slope change) and failed
        the gate (R-hat 1.06, bulk ESS 48).
        """
        categories = [str(c) for c in ctx.data[CATEGORY].values]
        covered = sorted(
            {
                categories.index(cat)
                for c in self.commitments
                if c.quantity == "review_capacity"
                for cat in c.categories
            }
        )
        intensity = review_intensity(ctx.values("review_hours"), ctx.values("listings"))
        (mu_a, sd_a), (mu_b, sd_b) = (
            _normal_parameters(ctx.priors[name], name)
            for name in ("review_capacity_intercept", "review_capacity_trend")
        )
        noise = ctx.prior("review_capacity_noise_sd")
        for i, k in enumerate(covered):  # one likelihood term per covered category, in order
            observed = np.flatnonzero(intensity[k] > 0)  # a month without hours says nothing
            y = years[observed]
            fixed_cov = sd_a**2 * np.ones((y.size, y.size)) + sd_b**2 * np.outer(y, y)
            pm.MvNormal(
                f"review_capacity_log_{i}",
                mu=mu_a + mu_b * y + shift[k, observed],
                cov=fixed_cov + noise**2 * pt.eye(y.size),
                observed=np.log(intensity[k, observed]),
            )


def _normal_parameters(spec: Prior, name: str) -> tuple[float, float]:
    """``(mu, sigma)`` of a Normal prior without dims (needed to integrate it out)."""
    params = getattr(spec, "parameters", {}) or {}
    if spec.distribution != "Normal" or not {"mu", "sigma"} <= set(params) or spec.dims:
        raise ValueError(
            f"prior {name!r} must be a Normal with numeric mu and sigma (it is integrated out "
            "of the review-capacity regression)"
        )
    try:
        return float(params["mu"]), float(params["sigma"])
    except (TypeError, ValueError):
        raise ValueError(f"prior {name!r} must have numeric mu and sigma") from None
