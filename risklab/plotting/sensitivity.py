"""Figures of prior sensitivity: the findings under each prior set, side by side.

Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned; nothing calls
``plt.show()``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from risklab.sensitivity import PriorSetComparison

__all__ = ["plot_prior_sets"]

_QUANTITIES = ("prevalence", "p_underestimated")


def plot_prior_sets(
    comparison: PriorSetComparison,
    *,
    quantity: str = "prevalence",
    ax: Axes | None = None,
) -> Axes:
    """Per category, a finding under each prior set (dodged rows, one colour per set).

    Parameters
    ----------
    comparison : PriorSetComparison
        Output of :func:`risklab.sensitivity.compare_prior_sets`.
    quantity : {"prevalence", "p_underestimated"}
        ``"prevalence"``: posterior median and interval per set, with the platform's claim
        (log scale, percent). ``"p_underestimated"``: ``P(U > 1)`` per set, with the decision
        level of the comparison.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if quantity not in _QUANTITIES:
        raise ValueError(f"quantity must be one of {_QUANTITIES}, got {quantity!r}")
    table = comparison.table
    names = comparison.set_names
    if ax is None:
        height = 1.4 + 0.25 * len(table) * len(names)
        _, ax = plt.subplots(figsize=(8, height), layout="constrained")
    y = np.arange(len(table))[::-1].astype(float)
    step = 0.7 / max(len(names), 1)
    offsets = (np.arange(len(names)) - (len(names) - 1) / 2) * step
    pct = 100.0
    for i, name in enumerate(names):
        yy = y - offsets[i]
        color = f"C{i}"
        if quantity == "prevalence":
            ax.hlines(
                yy,
                table[f"prevalence_low:{name}"] * pct,
                table[f"prevalence_high:{name}"] * pct,
                color=color,
                lw=2.2,
            )
            ax.plot(table[f"prevalence_median:{name}"] * pct, yy, "o", color=color, label=name)
        else:
            ax.plot(table[f"p_underestimated:{name}"], yy, "o", color=color, label=name)
    if quantity == "prevalence":
        claimed = np.array(
            [comparison.findings[names[0]].table.set_index("category").loc[c, "claimed_prevalence"]
             for c in table["category"]]
        )  # fmt: skip
        ax.plot(claimed * pct, y, "D", color="k", mfc="white", mew=1.3, label="platform's claim")
        ax.set_xscale("log")
        ax.set_xlabel(
            f"share of listings that are illegal (%), median and "
            f"{comparison.findings[names[0]].prob:.0%} interval"
        )
    else:
        ax.axvline(
            comparison.level, color="0.5", ls="--", lw=0.9, label=f"level {comparison.level:g}"
        )
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("P(true prevalence > claimed), i.e. P(U > 1)")
    ax.set_yticks(y, table["category"])
    ax.set_title("Findings under alternative prior sets")
    ax.legend(loc="best", fontsize="small", frameon=False)
    return ax
