"""Observation channels: detected-and-actioned listings per detection channel.

``detected[k, t, c] ~ Binomial(listings[k, t], π[k, t] · d_c[k, t])``. The proactive rate is the
capacity curve. Every other channel (notices under Art. 16, trusted flaggers under Art. 22,
authority orders under Art. 9) is parametrised by its ratio to the category's mean proactive rate,
which is what the counts identify::

    d_c[k] = 1 - exp(-ρ[c, k] · mean_t d_pro[k, t]),   log ρ[c, k] ~ Normal(μ_c, σ_c)

(the ``1 - exp(-x)`` keeps it a probability; for small rates it equals ``ρ · d_pro``). A channel's
rate does not move with review hours: users and flaggers report what they see.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from risklab.dims import CATEGORY, CHANNEL, PERIOD
from risklab.models.components.appeals import actioned_probability
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["SECONDARY_CHANNEL", "DetectionChannels"]

#: Dim of the channels other than proactive detection.
SECONDARY_CHANNEL = "secondary_channel"


class DetectionChannels(Component):
    """Binomial likelihood of detections per channel."""

    name = "channels"
    requires = ("prevalence", "detection_rate")
    provides = ("channel_rate",)
    default_priors = {
        # Notices etc. typically find a fifth of what proactive detection finds (log 0.2 = -1.6).
        "channel_log_ratio_mu": Prior("Normal", mu=-1.6, sigma=1.5),
        # Spread of the ratios over categories. Boundary-avoiding (Gamma(2, ·), density zero at
        # zero; Chung et al. 2013): the counts pin each category's ratio down, and a HalfNormal
        # let the sampler into the funnel neck when ratios barely differ (R-hat 1.015 and a
        # divergence on a recovery case whose true spread is zero). Mean 0.2, 95% below 0.5.
        "channel_log_ratio_sd": Prior("Gamma", alpha=2.0, beta=10.0),
    }

    def build(self, ctx: BuildContext) -> None:
        channels = [str(c) for c in ctx.data[CHANNEL].values]
        secondary = [c for c in channels if c != "proactive"]
        d_pro = ctx.shared["detection_rate"]
        rates = {"proactive": d_pro}
        if secondary:
            model = pm.modelcontext(None)
            model.add_coord(SECONDARY_CHANNEL, secondary)
            mu = ctx.prior("channel_log_ratio_mu", dims=[SECONDARY_CHANNEL])
            sd = ctx.prior("channel_log_ratio_sd", dims=[SECONDARY_CHANNEL])
            offset = pm.Normal(
                "channel_log_ratio_offset", 0.0, 1.0, dims=(SECONDARY_CHANNEL, CATEGORY)
            )
            ratio = pm.Deterministic(
                "channel_ratio",
                pt.exp(mu[:, None] + sd[:, None] * offset),
                dims=(SECONDARY_CHANNEL, CATEGORY),
            )
            mean_d_pro = d_pro.mean(axis=1)
            for i, channel in enumerate(secondary):
                rate_k = -pt.expm1(-ratio[i] * mean_d_pro)
                rates[channel] = pt.broadcast_to(rate_k[:, None], d_pro.shape)
        rate = pt.stack([rates[c] for c in channels], axis=-1)
        ctx.shared["channel_rate"] = rate
        prevalence = ctx.shared["prevalence"]
        listings = ctx.values("listings").astype(np.int64)
        detected = ctx.data["detected"].transpose(CATEGORY, PERIOD, CHANNEL).values
        p = prevalence[:, :, None] * rate
        if "false_positive_share" in ctx.shared:  # actioned = true + false positives (appeals)
            p = actioned_probability(p, ctx.shared["false_positive_share"][:, None, None])
        pm.Binomial(
            "detected",
            n=listings[:, :, None],
            p=p,
            observed=detected,
            dims=(CATEGORY, PERIOD, CHANNEL),
        )
