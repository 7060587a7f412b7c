"""Audits: random samples and purposive test purchases checked for illegality.

Random audits are platform-wide samples: ``illegal ~ Binomial(sampled, π[k, t])``. They identify
prevalence directly. Purposive test purchases are drawn from risk-selected strata, so they are
never treated as platform-wide samples: ``illegal ~ Binomial(sampled, invlogit(logit π + δ[k]))``
with a selection uplift ``δ[k] ≥ 0``. With δ free they bound prevalence from above; they identify
it only through the prior on δ.
"""

from __future__ import annotations

import numpy as np
import pymc as pm

from risklab.models.components._cells import Cells
from risklab.models.components.base import BuildContext, Component
from risklab.priors import Prior

__all__ = ["PURPOSIVE_CATEGORY", "Audits"]

PURPOSIVE_CATEGORY = "purposive_category"


class Audits(Component):
    """Binomial likelihoods of random audits and purposive test purchases."""

    name = "audits"
    requires = ("logit_prevalence", "prevalence")
    default_priors = {
        # Selection uplift of purposive samples on the logit scale: median ×1.4 odds, 95% < ×7.
        "purposive_uplift": Prior("HalfNormal", sigma=1.0),
    }

    def is_active(self, data) -> bool:
        sampled = data["audit_random_sampled"].values.sum()
        return bool(sampled + data["audit_purposive_sampled"].values.sum() > 0)

    def build(self, ctx: BuildContext) -> None:
        random_cells = Cells.where_positive(ctx.data, "audit_random_sampled")
        if len(random_cells):
            random_cells.add_coord("audit_random_cell")
            pm.Binomial(
                "audit_random",
                n=random_cells.values(ctx.data, "audit_random_sampled"),
                p=random_cells.take(ctx.shared["prevalence"]),
                observed=random_cells.values(ctx.data, "audit_random_illegal"),
                dims="audit_random_cell",
            )
        purposive = Cells.where_positive(ctx.data, "audit_purposive_sampled")
        if len(purposive):
            categories = np.asarray(ctx.data["category"].values, dtype=str)
            used = np.unique(purposive.category_index)
            model = pm.modelcontext(None)
            model.add_coord(PURPOSIVE_CATEGORY, categories[used])
            uplift = ctx.prior("purposive_uplift", dims=[PURPOSIVE_CATEGORY])
            position = np.searchsorted(used, purposive.category_index)
            purposive.add_coord("audit_purposive_cell")
            logit_p = purposive.take(ctx.shared["logit_prevalence"]) + uplift[position]
            pm.Binomial(
                "audit_purposive",
                n=purposive.values(ctx.data, "audit_purposive_sampled"),
                logit_p=logit_p,
                observed=purposive.values(ctx.data, "audit_purposive_illegal"),
                dims="audit_purposive_cell",
            )
