"""Complaint reversals: the false-positive share of actioned detections.

A detection the platform actioned is either a true illegal listing or a false positive (a lawful
listing wrongly removed). Per category ``k`` the false-positive share ``φ[k]`` of actioned
detections has a logit-normal hierarchy::

    logit φ[k] ~ Normal(μ_φ, σ_φ)

Complaints against removals (``appeals.csv``, Art. 20) inform it::

    overturned[k, t] ~ Binomial(appeals[k, t], invlogit(logit φ[k] + δ))

``δ`` is the *appeal-selection factor*: sellers of wrongly removed listings are more likely to
complain than sellers of rightly removed ones, so the appealed decisions over-represent false
positives (δ > 0); a platform that reverses generously on appeal also pushes δ up, one that
rubber-stamps pushes it down. Its prior ``Normal(0, 0.5)`` (``appeal_selection``) centres on
representative appeals and keeps the odds within ×/÷ 2.7 (95%); set it to ``Normal(0, 0.01)`` to
assume appeals are representative of actioned decisions, or shift it if evidence about who
appeals is available. φ is identified only up to this prior: appeals bound the false-positive
share, they do not measure it exactly. The sampler's free variable is the overturn logit
``η[k] = logit φ[k] + δ`` (centred), which the appeals identify; ``logit φ = η − δ`` has the
stated prior (unit Jacobian).

Detections then count true and false positives: with the true detected probability
``π · d_c`` of a listing, the actioned probability is ``π · d_c / (1 − φ[k])``
(:func:`actioned_probability`). This component publishes ``ctx.shared["false_positive_share"]``
(dims ``category``); it must build **before** :class:`DetectionChannels`, which applies the
adjustment when the share is present, so :class:`PlatformRiskModel` orders its components
``[CapacityDetection, Prevalence, ComplaintReversals, DetectionChannels, ...]``.

Precision, in the sense platforms publish it, is ``1 − φ`` (see :mod:`risklab.claims_tests`).
"""

from __future__ import annotations

import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from risklab.dims import CATEGORY
from risklab.models.components._cells import Cells
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["ComplaintReversals", "actioned_probability"]


def actioned_probability(true_rate, phi):
    """Probability that a listing is actioned, given its true detected probability.

    Parameters
    ----------
    true_rate : array or tensor
        Probability that a listing is illegal *and* detected (e.g. ``π · d_c``).
    phi : array or tensor
        False-positive share of actioned detections (broadcast against ``true_rate``).

    Returns
    -------
    array or tensor
        ``true_rate / (1 − φ)``: the actioned detections are the true ones plus false positives
        making up the share ``φ`` of them.
    """
    return true_rate / (1.0 - phi)


class ComplaintReversals(Component):
    """False-positive share of actioned detections, informed by complaint reversals."""

    name = "appeals"
    provides = ("false_positive_share",)
    default_priors = {
        # Typical false-positive share 5% (logit -3); 95% prior range about 0.7%-28%.
        "false_positive_logit_mu": Prior("Normal", mu=-3.0, sigma=1.0),
        "false_positive_logit_sd": Prior("HalfNormal", sigma=0.5),
        # Appeal selection on the logit scale: 0 = appealed decisions are representative.
        "appeal_selection": Prior("Normal", mu=0.0, sigma=0.5),
    }

    def is_active(self, data: xr.Dataset) -> bool:
        return "appeals" in data and bool(data["appeals"].values.sum() > 0)

    def build(self, ctx: BuildContext) -> None:
        mu = ctx.prior("false_positive_logit_mu")
        sd = ctx.prior("false_positive_logit_sd")
        selection = ctx.prior("appeal_selection")
        # Parametrised along what appeals identify: the free variable is the overturn logit
        # η[k] = logit φ[k] + δ, centred; logit φ = η − δ keeps logit φ[k] ~ Normal(μ_φ, σ_φ)
        # (unit Jacobian given δ). Sampling φ and δ separately leaves a ridge along
        # logit φ + δ = const and a funnel between μ_φ, σ_φ and well-identified categories.
        overturn_logit = pm.Normal(
            "appeal_overturn_logit", mu=mu + selection, sigma=sd, dims=CATEGORY
        )
        logit_phi = overturn_logit - selection
        phi = pm.Deterministic("false_positive_share", pt.sigmoid(logit_phi), dims=CATEGORY)
        pm.Deterministic("precision", 1.0 - phi, dims=CATEGORY)
        cells = Cells.where_positive(ctx.data, "appeals")
        cells.add_coord("appeal_cell")
        pm.Binomial(
            "appeals_overturned",
            n=cells.values(ctx.data, "appeals"),
            logit_p=overturn_logit[cells.category_index],
            observed=cells.values(ctx.data, "overturned"),
            dims="appeal_cell",
        )
        ctx.shared["false_positive_share"] = phi
