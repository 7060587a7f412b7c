"""The model quantities a binding commitment can move, and how each is read.

Each quantity has a link scale on which a commitment's level and slope changes are additive (the
interrupted time series of :mod:`risklab.monitoring.its`), a direction of improvement, and whether
it varies by category. The aggregate of a quantity over a commitment's categories at one period is
the listings-weighted mean (for ``review_capacity`` this is total review hours per thousand
listings); ``enforcement`` is platform-wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

__all__ = ["QUANTITIES", "Quantity", "quantity", "shifted_value"]


@dataclass(frozen=True)
class Quantity:
    """A model quantity a commitment can move.

    Attributes
    ----------
    name : str
        Identifier used in commitment files (``quantity = "hidden_share"``).
    label : str
        Human-readable name for reports.
    link : str
        ``"logit"`` or ``"log"``: the scale on which changes are additive.
    improves : str
        ``"decrease"`` or ``"increase"``.
    per_category : bool
        Whether the quantity (and a commitment's effect) varies by category.
    unit : str
        How values are shown: ``"share"`` (percent) or ``"number"``.
    """

    name: str
    label: str
    link: str
    improves: str
    per_category: bool
    unit: str

    def to_link(self, value):
        """Map values to the link scale."""
        value = np.asarray(value, dtype=float)
        if self.link == "logit":
            return logit(np.clip(value, 1e-12, 1 - 1e-12))
        return np.log(np.maximum(value, 1e-300))

    def from_link(self, value):
        """Map link-scale values back."""
        value = np.asarray(value, dtype=float)
        return expit(value) if self.link == "logit" else np.exp(value)

    def improved(self, change):
        """Boolean array: whether ``change`` (new minus counterfactual) is an improvement."""
        change = np.asarray(change, dtype=float)
        return change < 0 if self.improves == "decrease" else change > 0

    def meets(self, value, target: float):
        """Boolean array: whether ``value`` is on the improving side of ``target`` (inclusive)."""
        value = np.asarray(value, dtype=float)
        return value <= target if self.improves == "decrease" else value >= target


#: The quantities, by name (see docs/monitoring.md for what each means in the model).
QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity(
            "prevalence", "prevalence of illegal listings", "logit", "decrease", True, "share"
        ),
        Quantity(
            "hidden_share",
            "hidden share (out of reach of proactive detection)",
            "logit",
            "decrease",
            True,
            "share",
        ),
        Quantity(
            "efficiency", "review efficiency θ (per review hour)", "log", "increase", True, "number"
        ),
        Quantity(
            "review_capacity",
            "review capacity (hours per 1000 listings)",
            "log",
            "increase",
            True,
            "number",
        ),
        Quantity(
            "enforcement",
            "enforcement (suspension probability past the strike threshold)",
            "logit",
            "increase",
            False,
            "share",
        ),
    )
}


def quantity(name: str) -> Quantity:
    """The :class:`Quantity` called ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return QUANTITIES[name]
    except KeyError:
        raise KeyError(
            f"unknown quantity {name!r}; known: {', '.join(sorted(QUANTITIES))}"
        ) from None


def shifted_value(name: str, link_value, shift=0.0, saturation=None):
    """A quantity's value after adding ``-shift`` on its link scale (the counterfactual without
    a commitment whose change is ``shift``; ``shift=0`` gives the value itself).

    Parameters
    ----------
    name : str
        The quantity.
    link_value : array
        The quantity on the scale where commitments act: ``logit π`` (prevalence), the logit of
        the detection level (hidden share), ``log θ`` (efficiency), ``log r`` (review capacity),
        ``logit q`` (enforcement).
    shift : array
        Link-scale change to remove.
    saturation : array, optional
        Saturation at the category's mean review intensity (hidden share only): the hidden
        share is ``1 − min(level / saturation, 1)``.
    """
    moved = np.asarray(link_value, dtype=float) - shift
    if name == "hidden_share":
        return 1.0 - np.minimum(expit(moved) / saturation, 1.0)
    return quantity(name).from_link(moved)
