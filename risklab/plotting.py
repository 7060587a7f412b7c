"""Figures of an assessment. Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned.

Nothing here calls ``plt.show()``; callers decide where figures go.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from risklab.assess import Findings

__all__ = ["plot_prevalence_vs_claimed"]


def plot_prevalence_vs_claimed(
    findings: Findings,
    *,
    ax: Axes | None = None,
    show_bands: bool = True,
    thresholds: tuple[float, ...] | None = None,
) -> Axes:
    """Forest plot of the posterior prevalence per category against the platform's claim.

    Parameters
    ----------
    findings : Findings
        Output of :func:`risklab.assess`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    show_bands : bool
        Shade the platform's own scale (needs ``thresholds``).
    thresholds : tuple of float, optional
        Cut points of the platform's scale, drawn as vertical lines.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = findings.table.sort_values("prevalence_median")
    if ax is None:
        height = 1.2 + 0.42 * len(table)
        _, ax = plt.subplots(figsize=(8, height), layout="constrained")
    y = np.arange(len(table))
    pct = 100.0
    ax.hlines(
        y,
        table["prevalence_low"] * pct,
        table["prevalence_high"] * pct,
        color="C0",
        lw=2.5,
        label=f"true prevalence, {findings.prob:.0%} interval",
    )
    ax.plot(table["prevalence_median"] * pct, y, "o", color="C0", label="posterior median")
    ax.plot(
        table["claimed_prevalence"] * pct,
        y,
        "D",
        color="C3",
        mfc="white",
        mew=1.5,
        label="platform's claim",
    )
    if show_bands and thresholds:
        for cut in thresholds:
            ax.axvline(cut * pct, color="0.6", lw=0.8, ls="--", zorder=0)
    ax.set_yticks(y, table["category"])
    ax.set_xlabel("share of listings that are illegal (%)")
    ax.set_xscale("log")
    title = "Prevalence of illegal listings: posterior vs. platform's claim"
    if not findings.converged:
        title += "\nUNCONVERGED FIT — not a finding"
    ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", which="both", alpha=0.2)
    return ax
