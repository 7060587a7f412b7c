"""Figures of the assessment report that :mod:`risklab.plotting.findings` does not draw.

Keyword-only arguments, ``ax=`` accepted (single-panel figures), matplotlib objects returned;
nothing calls ``plt.show()``.

* :func:`plot_band_probabilities` — the posterior probability of each band of the platform's own
  scale, per category, as stacked horizontal bars, with the claimed band marked.
* :func:`plot_prior_posterior` — per category, the prior interval of prevalence against the
  posterior interval (how much the data narrowed it).
* :func:`plot_convergence` — ArviZ 1.x rank plots of a few headline variables (a
  :class:`arviz_plots.PlotCollection`; it makes its own figure).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullFormatter, PercentFormatter
from matplotlib.transforms import ScaledTranslation, Transform

__all__ = ["band_labels", "plot_band_probabilities", "plot_convergence", "plot_prior_posterior"]

_BAND_PREFIX = "p_band:"


def band_labels(table: pd.DataFrame) -> list[str]:
    """Labels of the platform's scale, in order, from the ``p_band:<label>`` columns."""
    return [c.removeprefix(_BAND_PREFIX) for c in table.columns if c.startswith(_BAND_PREFIX)]


def _below(ax: Axes, points: float) -> Transform:
    """Axes coordinates shifted down by ``points`` (room for the x label above a legend)."""
    return ax.transAxes + ScaledTranslation(0, -points / 72.0, ax.figure.dpi_scale_trans)


def _band_colors(n: int) -> list:
    cmap = plt.get_cmap("RdYlGn_r")
    return [cmap(0.08 + 0.84 * i / max(n - 1, 1)) for i in range(n)]


def plot_band_probabilities(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    unconverged: bool = False,
    min_label: float = 0.07,
) -> Axes:
    """Posterior probability of each band of the platform's scale, per category.

    Each category is a bar of total length one, split into the bands of the platform's own scale
    (lowest band left, green, to highest right, red). The band the platform claimed is outlined
    in black and named to the right of the bar with ``P(true band higher)``.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`Findings.table <risklab.assess.Findings.table>` (needs ``category``,
        ``claimed_band``, ``p_band_above_claimed`` and the ``p_band:<label>`` columns).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    unconverged : bool
        Say in the title that the fit failed the convergence gate.
    min_label : float
        Segments at least this wide get their probability printed inside.

    Returns
    -------
    matplotlib.axes.Axes
    """
    labels = band_labels(table)
    if not labels:
        raise ValueError("table has no 'p_band:<label>' columns")
    table = table.iloc[::-1].reset_index(drop=True)  # first category on top
    n = len(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 1.4 + 0.42 * n), layout="constrained")
    colors = _band_colors(len(labels))
    y = np.arange(n)
    left = np.zeros(n)
    for j, label in enumerate(labels):
        width = table[_BAND_PREFIX + label].to_numpy(dtype=float)
        ax.barh(
            y, width, left=left, color=colors[j], height=0.7, label=label, edgecolor="white", lw=0.5
        )
        for i in np.flatnonzero(width >= min_label):
            dark = j in (0, len(labels) - 1)
            ax.text(
                left[i] + width[i] / 2,
                y[i],
                f"{width[i]:.0%}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
        left = left + width
    for i, row in enumerate(table.itertuples(index=False)):
        claimed = row.claimed_band
        j = labels.index(claimed)
        start = float(table.loc[i, [_BAND_PREFIX + lab for lab in labels[:j]]].sum())
        width = float(table.loc[i, _BAND_PREFIX + claimed])
        ax.add_patch(
            Rectangle(
                (start, y[i] - 0.38),
                max(width, 0.004),
                0.76,
                fill=False,
                ec="black",
                lw=1.6,
                zorder=5,
            )
        )
        p_above = float(table.loc[i, "p_band_above_claimed"])
        ax.text(
            1.015,
            y[i],
            f"claimed '{claimed}'; P(higher) = {p_above:.2f}",
            va="center",
            ha="left",
            fontsize=7.5,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(y, table["category"])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, n - 0.4)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("posterior probability that the true prevalence lies in each band")
    ax.legend(
        title="band of the platform's scale (black outline: claimed)",
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=_below(ax, 34),
        ncols=len(labels),
        fontsize=8,
        title_fontsize=8,
        frameon=False,
    )
    title = "Where the true prevalence lies on the platform's own scale"
    if unconverged:
        title += "\nUNCONVERGED FIT — not a finding"
    ax.set_title(title, fontsize=11)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def plot_prior_posterior(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    prob: float = 0.9,
    unconverged: bool = False,
) -> Axes:
    """Prior against posterior interval of prevalence, per category.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per category with ``category``, ``prior_low``, ``prior_high``,
        ``posterior_low``, ``posterior_median``, ``posterior_high`` and ``verdict`` (as made
        by :func:`risklab.report.identification.prior_posterior_table`).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    prob : float
        Mass of the intervals (for the legend).
    unconverged : bool
        Say in the title that the fit failed the convergence gate.

    Returns
    -------
    matplotlib.axes.Axes
    """
    n = len(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.3 + 0.45 * n), layout="constrained")
    table = table.iloc[::-1].reset_index(drop=True)
    y = np.arange(n)
    pct = 100.0
    ax.hlines(
        y + 0.15,
        table["prior_low"] * pct,
        table["prior_high"] * pct,
        color="0.55",
        lw=5,
        alpha=0.6,
        label=f"prior, {prob:.0%} interval",
    )
    ax.hlines(
        y - 0.15,
        table["posterior_low"] * pct,
        table["posterior_high"] * pct,
        color="C0",
        lw=2.5,
        label=f"posterior, {prob:.0%} interval",
    )
    ax.plot(table["posterior_median"] * pct, y - 0.15, "o", color="C0", ms=4)
    labels = [
        f"{row.category} ({row.verdict})" if row.verdict == "prior-driven" else row.category
        for row in table.itertuples(index=False)
    ]
    ax.set_yticks(y, labels)
    for tick, verdict in zip(ax.get_yticklabels(), table["verdict"], strict=True):
        if verdict == "prior-driven":
            tick.set_color("C3")
    ax.set_xscale("log")
    low = float(np.nanmin(np.r_[table["prior_low"], table["posterior_low"]])) * pct
    high = float(np.nanmax(np.r_[table["prior_high"], table["posterior_high"]])) * pct
    nice = np.array(
        [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    )
    ticks = nice[(nice >= low / 1.5) & (nice <= high * 1.5)]
    if len(ticks) > 8:
        ticks = ticks[np.isin(ticks, [0.001, 0.01, 0.1, 1, 10, 100]) | (np.log10(ticks) % 1 > 0.6)]
    if len(ticks) >= 2:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("share of listings that are illegal (%)")
    title = "What the data added: prior vs. posterior prevalence"
    if unconverged:
        title += "\nUNCONVERGED FIT — not a finding"
    ax.set_title(title, fontsize=11)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=_below(ax, 32),
        ncols=2,
        fontsize=8,
        frameon=False,
    )
    ax.grid(axis="x", which="major", alpha=0.2)
    return ax


def plot_convergence(
    posterior: xr.Dataset, *, var_names: list[str] | None = None, figsize=(11.0, 2.2)
):
    """ArviZ rank plots (one panel per variable and coordinate) of a few headline variables.

    Each panel shows, per chain, the ECDF of the draws' fractional ranks among all chains minus
    the uniform ECDF, and the p-value of a simultaneous uniformity test: chains that explore the
    same distribution stay near zero; a small p-value flags a chain that has not mixed.

    Parameters
    ----------
    posterior : xarray.Dataset
        Posterior draws over ``chain, draw`` (and any other dims).
    var_names : list of str, optional
        Variables to show (default all; keep it short: each coordinate gets its own panel).
    figsize : (float, float)
        Width and height per row of panels, in inches.

    Returns
    -------
    arviz_plots.PlotCollection
        Its matplotlib figure is ``pc.viz["figure"].item()``.
    """
    import arviz_plots as azp

    var_names = list(posterior.data_vars) if var_names is None else list(var_names)
    missing = [v for v in var_names if v not in posterior]
    if missing:
        raise ValueError(f"posterior lacks {missing}")
    tree = xr.DataTree.from_dict({"posterior": posterior[var_names]})
    panels = sum(
        int(
            np.prod(
                [posterior[v].sizes[d] for d in posterior[v].dims if d not in ("chain", "draw")]
            )
        )
        for v in var_names
    )
    cols = min(4, panels)
    rows = -(-panels // cols)
    return azp.plot_rank(
        tree,
        var_names=var_names,
        backend="matplotlib",
        col_wrap=cols,
        figure_kwargs={"figsize": (figsize[0], figsize[1] * rows + 0.4), "layout": "constrained"},
    )
