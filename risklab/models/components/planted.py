"""Planted test listings: regulator-placed illegal offers, counted when the platform catches them.

``caught ~ Binomial(planted, d_pro[k, t])`` measures proactive detection directly — including the
evasion techniques the test listings use — and, with the detected counts, identifies prevalence.
"""

from __future__ import annotations

import pymc as pm

from risklab.models.components._cells import Cells
from risklab.models.components.base import BuildContext, Component

__all__ = ["PlantedListings"]


class PlantedListings(Component):
    """Binomial likelihood of planted listings caught by proactive detection."""

    name = "planted"
    requires = ("detection_rate",)

    def is_active(self, data) -> bool:
        return bool(data["planted"].values.sum() > 0)

    def build(self, ctx: BuildContext) -> None:
        cells = Cells.where_positive(ctx.data, "planted")
        cells.add_coord("planted_cell")
        pm.Binomial(
            "planted_caught",
            n=cells.values(ctx.data, "planted"),
            p=cells.take(ctx.shared["detection_rate"]),
            observed=cells.values(ctx.data, "caught"),
            dims="planted_cell",
        )
