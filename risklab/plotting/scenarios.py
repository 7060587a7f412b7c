"""Figures of a stress test. Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned.

Nothing here calls ``plt.show()``; callers decide where figures go. Both figures read only
:attr:`~risklab.scenarios.StressTestResult.table`, so they work with ``keep_draws=False``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from risklab.scenarios import StressTestResult

__all__ = ["plot_scenario_bands", "plot_undetected_by_scenario"]

#: Most scenarios drawn in one figure (the first ones, baseline first); the tables hold all.
MAX_PLOTTED = 40


def _names(result: StressTestResult, max_scenarios: int) -> list[str]:
    return [s.name for s in result.scenarios][:max_scenarios]


def _truncation_note(result: StressTestResult, shown: int) -> str:
    total = len(result.scenarios)
    return f" (first {shown} of {total} scenarios)" if shown < total else ""


def plot_undetected_by_scenario(
    result: StressTestResult,
    *,
    ax: Axes | None = None,
    categories: list[str] | None = None,
    max_scenarios: int = MAX_PLOTTED,
) -> Axes:
    """Undetected illegal listings per category under each scenario, with intervals.

    Parameters
    ----------
    result : StressTestResult
        Output of :func:`risklab.stress_test`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    categories : list of str, optional
        Categories to show (default all), one colour each.
    max_scenarios : int, default 40
        Draw the first scenarios only (the baseline is first).

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = result.table
    names = _names(result, max_scenarios)
    cats = categories or list(dict.fromkeys(table["category"]))
    if ax is None:
        height = 1.6 + 0.22 * len(names) * max(1, min(len(cats), 4))
        _, ax = plt.subplots(figsize=(8.5, min(height, 40)), layout="constrained")
    y = np.arange(len(names))
    width = 0.8 / len(cats)
    indexed = table.set_index(["scenario", "category"])
    for j, cat in enumerate(cats):
        rows = indexed.loc[[(n, cat) for n in names]]
        offset = (j - (len(cats) - 1) / 2) * width
        ax.hlines(
            y + offset,
            rows["undetected_listings_low"],
            rows["undetected_listings_high"],
            color=f"C{j % 10}",
            lw=2,
        )
        ax.plot(rows["undetected_listings_median"], y + offset, "o", color=f"C{j % 10}", label=cat)
        baseline = rows["undetected_listings_median"].iloc[0]
        ax.axvline(baseline, color=f"C{j % 10}", lw=0.7, ls=":", zorder=0)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    positive = table["undetected_listings_low"] > 0
    if positive.all():
        ax.set_xscale("log")
    ax.set_xlabel(
        f"illegal listings no channel detects (median, {result.prob:.0%} interval; "
        "dotted: baseline)"
    )
    ax.set_title("Undetected illegal listings by scenario" + _truncation_note(result, len(names)))
    ax.legend(loc="best", fontsize="small", frameon=False)
    return ax


def plot_scenario_bands(
    result: StressTestResult,
    *,
    categories: list[str] | None = None,
    category: str | None = None,
    ax: Axes | None = None,
    max_scenarios: int = MAX_PLOTTED,
) -> Figure:
    """Posterior probability of each band of the platform's scale, stacked, per scenario.

    Parameters
    ----------
    result : StressTestResult
    categories : list of str, optional
        One panel per category (default all); ignored when ``category`` is given.
    category : str, optional
        Draw only this category, into ``ax``.
    ax : matplotlib Axes, optional
        With ``category``: where to draw.
    max_scenarios : int, default 40

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = result.table
    names = _names(result, max_scenarios)
    if category is not None:
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 1.4 + 0.3 * len(names)), layout="constrained")
        _band_panel(result, category, names, ax, legend=True)
        return ax.figure
    if ax is not None:
        raise ValueError("pass category= together with ax=; the grid makes its own figure")
    cats = categories or list(dict.fromkeys(table["category"]))
    ncols = min(2, len(cats))
    nrows = int(np.ceil(len(cats) / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(6.5 * ncols, min(1.4 + 0.3 * len(names), 12) * nrows),
        layout="constrained",
        squeeze=False,
    )
    for j, cat in enumerate(cats):
        panel = axes.flat[j]
        _band_panel(result, cat, names, panel, legend=False, ticks=j % ncols == 0)
    for panel in list(axes.flat)[len(cats) :]:
        panel.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))
    fig.suptitle(
        "Posterior probability of each band of the platform's scale (true prevalence)"
        + _truncation_note(result, len(names))
    )
    return fig


def _band_panel(
    result: StressTestResult,
    category: str,
    names: list[str],
    ax: Axes,
    *,
    legend: bool,
    ticks: bool = True,
) -> None:
    rows = result.table.set_index(["scenario", "category"]).loc[[(n, category) for n in names]]
    y = np.arange(len(names))
    left = np.zeros(len(names))
    cmap = plt.get_cmap("RdYlGn_r", max(len(result.labels), 2))
    for b, label in enumerate(result.labels):
        p = rows[f"p_band:{label}"].to_numpy()
        ax.barh(y, p, left=left, color=cmap(b), label=label, edgecolor="white", lw=0.5)
        left += p
    ax.set_yticks(y, names if ticks else [""] * len(names))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("posterior probability")
    ax.set_title(category)
    if legend:
        ax.legend(loc="lower right", fontsize="small", ncols=min(len(result.labels), 4))
