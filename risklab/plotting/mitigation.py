"""Figures of Art. 35 mitigation. Keyword-only arguments, ``ax=`` accepted, Axes returned.

Nothing here calls ``plt.show()``; callers decide where figures go.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from risklab.allocation import Allocation
from risklab.mitigation import BASELINE, MitigationResult

__all__ = ["plot_allocation", "plot_cost_effectiveness"]


def plot_cost_effectiveness(
    result: MitigationResult, *, ax: Axes | None = None, currency: str = "€"
) -> Axes:
    """Cost per avoided undetected illegal listing, per measure, with its interval.

    Bars are the cost divided by the expected avoided listings (platform-wide); whiskers the
    equal-tailed interval from the posterior draws. A measure that avoids nothing (infinite
    cost per listing) gets no bar and a note; free measures show zero.

    Parameters
    ----------
    result : MitigationResult
        Output of :func:`risklab.mitigation.evaluate`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    currency : str
        Currency symbol for the axis label.

    Returns
    -------
    matplotlib.axes.Axes
    """
    totals = result.totals[result.totals["measure"] != BASELINE].reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * len(totals)), layout="constrained")
    y = np.arange(len(totals))[::-1]
    value = totals["cost_per_avoided"].to_numpy(float)
    low = totals["cost_per_avoided_low"].to_numpy(float)
    high = totals["cost_per_avoided_high"].to_numpy(float)
    finite = np.isfinite(value)
    ax.barh(y[finite], value[finite], color="C0", alpha=0.75, label="cost / expected avoided")
    right = np.nanmax(np.where(np.isfinite(high), high, value)[finite], initial=1.0)
    for yi, lo, hi in zip(y[finite], low[finite], high[finite], strict=True):
        top = hi if np.isfinite(hi) else right * 1.15
        ax.plot([lo, top], [yi, yi], color="k", lw=1.2)
        if not np.isfinite(hi):
            ax.annotate("→ ∞", (top, yi), xytext=(2, -3), textcoords="offset points", fontsize=8)
    for yi in y[~finite]:
        ax.text(0, yi, " avoids no undetected listing (∞)", va="center", fontsize=8, color="C3")
    ax.set_yticks(y, totals["measure"])
    ax.set_xlabel(f"cost per avoided undetected illegal listing ({currency})")
    ax.set_xlim(0, right * 1.3)
    ax.set_title(
        f"Cost-effectiveness of mitigation measures ({result.prob:.0%} intervals)", fontsize=11
    )
    ax.grid(axis="x", alpha=0.2)
    return ax


def plot_allocation(allocation: Allocation, *, ax: Axes | None = None) -> Axes:
    """Extra review hours per category: the optimal split against the proportional one.

    Parameters
    ----------
    allocation : Allocation
        Output of :func:`risklab.allocation.allocate_review_hours`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = allocation.table
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.4 + 0.55 * len(table)), layout="constrained")
    y = np.arange(len(table))[::-1]
    height = 0.38
    ax.barh(
        y + height / 2,
        table["extra_hours"],
        height,
        color="C0",
        label="optimal (severity-weighted)",
    )
    ax.barh(
        y - height / 2,
        table["extra_hours_proportional"],
        height,
        color="0.6",
        label="proportional to listings",
    )
    labels = [
        f"{c}  (severity {w:g})" for c, w in zip(table["category"], table["severity"], strict=True)
    ]
    ax.set_yticks(y, labels)
    ax.set_xlabel("extra review hours over the submission period")
    totals = allocation.totals
    optimal = totals["expected_weighted_undetected_optimal"]
    proportional = totals["expected_weighted_undetected_proportional"]
    ax.set_title(
        f"Allocation of {totals['budget_hours']:,.0f} extra review hours\n"
        f"expected severity-weighted undetected listings: {optimal:,.0f} optimal, "
        f"{proportional:,.0f} proportional",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.2)
    return ax
