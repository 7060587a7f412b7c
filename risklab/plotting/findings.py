"""Figures of an assessment. Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned.

Nothing here calls ``plt.show()``; callers decide where figures go.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from risklab.assess import Findings

__all__ = ["plot_enforcement", "plot_prevalence_vs_claimed"]


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
        label=f"posterior prevalence, {findings.prob:.0%} interval",
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
        for i, cut in enumerate(thresholds):
            label = "cut points of the platform's scale" if i == 0 else None
            ax.axvline(cut * pct, color="0.6", lw=0.8, ls="--", zorder=0, label=label)
    ax.set_yticks(y, table["category"])
    ax.set_xlabel("share of listings that are illegal (%)")
    ax.set_xscale("log")
    low = min(table["prevalence_low"].min(), table["claimed_prevalence"].min()) * pct
    high = max(table["prevalence_high"].max(), table["claimed_prevalence"].max()) * pct
    nice = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100])
    ticks = nice[(nice >= low / 1.5) & (nice <= high * 1.5)]
    if len(ticks) >= 2:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    title = "Prevalence of illegal listings: posterior vs. platform's claim"
    if not findings.converged:
        title += "\nUNCONVERGED FIT — not a finding"
    ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", which="both", alpha=0.2)
    return ax


def plot_enforcement(findings: Findings, *, ax: Axes | None = None, bins: int = 60) -> Axes:
    """Posterior of the enforcement probability against the claim, with the unseen traders.

    The main panel is the posterior density of the probability ``q`` that a trader past the
    policy's strike threshold is suspended, its equal-tailed interval, and the platform's
    claimed enforcement. An inset shows the posterior of the offending traders never detected;
    a text box gives ``P(q < claimed)`` and the share of illegal listings attributable to
    non-enforcement.

    Parameters
    ----------
    findings : Findings
        Output of :func:`risklab.assess` on a model fitted with a trader table and a policy.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    bins : int
        Histogram bins of the posteriors.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        When the findings hold no enforcement draws (no traders.csv or no ``[policy]``).
    """
    draws = findings.draws
    if "enforcement" not in draws:
        raise ValueError(
            "these findings have no enforcement draws: the submission had no traders.csv or "
            "no [policy]"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    q = np.asarray(draws["enforcement"].values).ravel()
    claimed = float(draws["enforcement"].attrs.get("claimed_enforcement", np.nan))
    tail = (1.0 - findings.prob) / 2.0
    low, med, high = np.quantile(q, [tail, 0.5, 1.0 - tail])
    ax.hist(q, bins=bins, density=True, color="C0", alpha=0.45, label="posterior of q")
    ax.axvspan(low, high, color="C0", alpha=0.12, label=f"{findings.prob:.0%} interval")
    ax.axvline(med, color="C0", lw=1.5)
    if np.isfinite(claimed):
        ax.axvline(claimed, color="C3", ls="--", lw=2, label=f"claimed ({claimed:.0%})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability that a trader past the strike threshold is suspended (q)")
    ax.set_ylabel("posterior density")
    left_side = med > 0.5
    undetected = np.asarray(draws["undetected_traders"].values).ravel()
    share = np.asarray(draws["non_enforcement_share"].values).ravel()
    u_low, u_med, u_high = np.quantile(undetected, [tail, 0.5, 1.0 - tail])
    s_low, s_med, s_high = np.quantile(share, [tail, 0.5, 1.0 - tail])
    p_below = float(np.mean(q < claimed))
    p_text = {0.0: "< 0.001", 1.0: "> 0.999"}.get(p_below, f"= {p_below:.3f}")
    lines = [
        f"P(q < claimed) {p_text}" if np.isfinite(claimed) else "",
        f"q = {med:.2f} ({low:.2f}–{high:.2f})",
        f"illegal listings due to non-enforcement: {100 * s_med:.1f}% "
        f"({100 * s_low:.1f}–{100 * s_high:.1f}%)",
        f"offending traders never detected: {u_med:,.0f} ({u_low:,.0f}–{u_high:,.0f})",
    ]
    ax.text(
        0.02 if left_side else 0.98,
        0.97,
        "\n".join(line for line in lines if line),
        transform=ax.transAxes,
        ha="left" if left_side else "right",
        va="top",
        fontsize=8,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9},
    )
    inset = ax.inset_axes([0.06 if left_side else 0.5, 0.3, 0.36, 0.32])
    inset.hist(undetected, bins=bins // 2, color="C2", alpha=0.6)
    inset.axvline(u_med, color="C2", lw=1.2)
    inset.set_yticks([])
    inset.set_title("offending traders never detected", fontsize=7)
    inset.tick_params(labelsize=6)
    title = "Repeat-offender policy: enforcement probability vs. the platform's claim"
    if not findings.converged:
        title += "\nUNCONVERGED FIT — not a finding"
    ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right" if left_side else "lower left", fontsize=8, frameon=False)
    return ax
