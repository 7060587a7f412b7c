"""Figures of an audit plan. Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned.

Nothing here calls ``plt.show()``; callers decide where figures go.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from risklab.design import AuditPlan

__all__ = ["plot_audit_power"]


def plot_audit_power(
    plan: AuditPlan,
    *,
    ax: Axes | None = None,
    categories: list[str] | None = None,
    show_conjugate: bool = True,
) -> Axes:
    """Power curves of random audits: P(the audit would establish U > 1) against sample size.

    Parameters
    ----------
    plan : AuditPlan
        Output of :func:`risklab.design.plan_audit`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    categories : list of str, optional
        Categories to draw; default all in the plan.
    show_conjugate : bool, default True
        Also draw the conjugate approximation (dashed).

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = plan.table
    wanted = categories or plan.categories
    unknown = sorted(set(wanted) - set(plan.categories))
    if unknown:
        raise ValueError(f"categories not in the plan: {unknown}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    for i, cat in enumerate(wanted):
        rows = table[table["category"] == cat]
        color = f"C{i % 10}"
        ax.plot(
            rows["sample_size"],
            rows["power_reweighted"],
            "o-",
            color=color,
            label=f"{cat} (recommended: {plan.recommended.get(cat) or 'none in range'})",
        )
        if show_conjugate:
            ax.plot(rows["sample_size"], rows["power_conjugate"], "--", color=color, alpha=0.7)
        best = plan.recommended.get(cat)
        if best is not None and best in set(rows["sample_size"]):
            power = rows.loc[rows["sample_size"] == best, "power_reweighted"].iloc[0]
            ax.plot([best], [power], "*", color=color, markersize=14)
    if show_conjugate:
        ax.plot([], [], "--", color="0.4", label="conjugate approximation")
    ax.axhline(plan.target_power, color="0.3", lw=1, ls=":", label=f"target {plan.target_power}")
    ax.set_xscale("log")
    sizes = sorted(set(table["sample_size"]))
    ax.set_xticks(sizes, [str(m) for m in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("random audit checks in the category (log scale)")
    ax.set_ylabel(f"P(audit shows P(U > 1) ≥ {plan.threshold})")
    title = "Power of a random audit"
    if not plan.converged:
        title = "UNCONVERGED FIT — " + title
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    return ax
