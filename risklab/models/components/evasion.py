"""Evasion: the share of illegal listings out of reach of proactive detection.

Malicious traders hide illegal offers behind hidden links, affiliate programmes or obfuscated
titles. ``hidden_share[k]`` is the fraction of category *k*'s illegal listings that proactive
detection cannot reach whatever the review effort, so it caps proactive detection at
``(1 - hidden_share) * detection_ceiling``. Categories share a logit-normal population
(non-centred), so a category without direct evidence borrows strength from the others.
"""

from __future__ import annotations

import pymc as pm

from risklab.dims import CATEGORY
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["Evasion"]


class Evasion(Component):
    """Hierarchical hidden share per category (scenario lever: ``hidden_share``)."""

    name = "evasion"
    provides = ("hidden_share",)
    default_priors = {
        # Typical hidden share about 18% (logit -1.5), plausible range roughly 3%-60%.
        "hidden_share_logit_mu": Prior("Normal", mu=-1.5, sigma=1.0),
        "hidden_share_logit_sd": Prior("HalfNormal", sigma=0.5),
    }

    def build(self, ctx: BuildContext) -> None:
        mu = ctx.prior("hidden_share_logit_mu")
        sd = ctx.prior("hidden_share_logit_sd")
        offset = pm.Normal("hidden_share_offset", 0.0, 1.0, dims=CATEGORY)
        hidden = pm.Deterministic("hidden_share", pm.math.sigmoid(mu + sd * offset), dims=CATEGORY)
        ctx.shared["hidden_share"] = hidden
