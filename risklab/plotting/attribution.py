"""Waterfall figures of the attribution of ``log U`` (:mod:`risklab.attribution`).

Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned; nothing calls
``plt.show()``.

The bars step from 0 to ``log U`` through the components at their posterior **means** (means
add up, medians do not, so the steps end exactly at the mean of ``log U``); each whisker is the
component's equal-tailed interval drawn from the bar's start, and the last bar is ``log U``
itself with its interval. The right-hand axis reads the same heights as ``U = e^{log U}``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from risklab.attribution import COMPONENT, PLATFORM, Attribution
from risklab.dims import CATEGORY, SAMPLE_DIMS

__all__ = ["plot_attribution_grid", "plot_attribution_waterfall"]

_LABELS = {
    "resources": "limited\nresources",
    "evasion": "evasion\n(hidden share)",
    "non_enforcement": "non-\nenforcement",
    "residual": "residual\ndetection gap",
    "reporting": "reporting\n(claim vs.\ndetections)",
}

_U_TICKS = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16, 32, 64, 128, 256]


def _safe_log(u):
    return np.log(np.maximum(u, 1e-300))


def _draws(attribution: Attribution, category: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Contributions (S, J) and log U (S,) of one category, or platform-wide for ``None``."""
    ds = attribution.draws
    if category is None:
        contrib = ds["platform_contribution"]
        log_u = ds["platform_log_underestimation"]
    else:
        if category not in ds[CATEGORY].values:
            known = [str(c) for c in ds[CATEGORY].values]
            raise ValueError(f"unknown category {category!r}; known: {known}")
        contrib = ds["contribution"].sel({CATEGORY: category})
        log_u = ds["log_underestimation"].sel({CATEGORY: category})
    contrib = contrib.stack(sample=SAMPLE_DIMS).transpose("sample", COMPONENT)
    return np.asarray(contrib.values), np.asarray(log_u.values).ravel()


def plot_attribution_waterfall(
    attribution: Attribution,
    *,
    category: str | None = None,
    ax: Axes | None = None,
    show_shares: bool = True,
    title: str | None = None,
) -> Axes:
    """Waterfall of ``log U`` for one category (or platform-wide) through its components.

    Parameters
    ----------
    attribution : Attribution
        Output of :func:`risklab.attribution.attribute`.
    category : str, optional
        The category to draw; platform-wide when omitted.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    show_shares : bool, default True
        Write each component's median share (``φ / Σ|φ|``) above its bar.
    title : str, optional
        Defaults to the category name.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For an unknown category.
    """
    contrib, log_u = _draws(attribution, category)
    components = list(attribution.components)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * (len(components) + 1) + 1.5, 4.2), layout="constrained")
    tail = (1.0 - attribution.prob) / 2.0
    means = contrib.mean(axis=0)
    low, high = np.quantile(contrib, [tail, 1.0 - tail], axis=0)
    starts = np.concatenate([[0.0], np.cumsum(means)[:-1]])
    x = np.arange(len(components))
    colors = ["C3" if m > 0 else "C2" for m in means]
    ax.bar(x, means, bottom=starts, color=colors, alpha=0.75, width=0.6, edgecolor="0.3", lw=0.6)
    ax.vlines(x, starts + low, starts + high, color="0.15", lw=1.2)
    for i in range(len(components)):
        end = starts[i] + means[i]
        ax.hlines(end, x[i] + 0.3, x[i] + 0.7, color="0.5", lw=0.8, ls=":")
    total = len(components)
    u_mean = log_u.mean()
    u_low, u_high = np.quantile(log_u, [tail, 1.0 - tail])
    ax.bar(total, u_mean, color="C0", alpha=0.8, width=0.6, edgecolor="0.3", lw=0.6)
    ax.vlines(total, u_low, u_high, color="0.15", lw=1.2)
    ax.axhline(0.0, color="0.3", lw=0.8)
    if show_shares:
        shares = _median_shares(attribution, category)
        for i, comp in enumerate(components):
            top = max(starts[i], starts[i] + means[i], starts[i] + high[i])
            ax.annotate(
                f"{100 * shares[comp]:+.0f}%",
                (x[i], top),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                color="0.25",
            )
    labels = [_LABELS.get(c, c) for c in components]
    if attribution.reference == "claimed_enforcement" and "reporting" in components:
        labels[components.index("reporting")] = "reporting\n(claim vs.\ndetections if\nenforced)"
    ax.set_xticks([*x, total], [*labels, "log U"], fontsize=7)
    ax.set_ylabel("log U  (contribution, posterior mean)")
    secondary = ax.secondary_yaxis("right", functions=(np.exp, _safe_log))
    secondary.yaxis.set_major_locator(FixedLocator(_U_TICKS))
    secondary.yaxis.set_major_formatter(FuncFormatter(lambda u, _: f"{u:g}×"))
    secondary.yaxis.set_minor_locator(NullLocator())
    secondary.set_ylabel("U = prevalence / claim")
    ax.grid(axis="y", alpha=0.2)
    if title is None:
        title = PLATFORM if category is None else str(category)
        title += f" — adequate = {attribution.adequate_saturation:.0%} saturation"
    if attribution.converged is False:
        title += "\nUNCONVERGED FIT — not a finding"
    ax.set_title(title, fontsize=9)
    return ax


def _median_shares(attribution: Attribution, category: str | None) -> dict[str, float]:
    if category is None:
        row = attribution.platform.iloc[0]
    else:
        row = attribution.table.set_index(CATEGORY).loc[category]
    return {c: float(row[f"{c}_share_median"]) for c in attribution.components}


def plot_attribution_grid(
    attribution: Attribution,
    *,
    categories: list[str] | None = None,
    include_platform: bool = True,
    ncols: int = 3,
    sharey: bool = True,
    show_shares: bool = True,
) -> Figure:
    """Waterfalls of every category (and platform-wide) on one figure.

    Parameters
    ----------
    attribution : Attribution
        Output of :func:`risklab.attribution.attribute`.
    categories : list of str, optional
        Which categories, in order; all by default.
    include_platform : bool, default True
        Add a platform-wide panel first.
    ncols : int, default 3
        Panels per row.
    sharey : bool, default True
        One ``log U`` scale for all panels.
    show_shares : bool, default True
        Passed to :func:`plot_attribution_waterfall`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    cats: list[str | None] = list(attribution.categories if categories is None else categories)
    if include_platform:
        cats = [None, *cats]
    if not cats:
        raise ValueError("nothing to draw: no categories and include_platform=False")
    ncols = min(ncols, len(cats))
    nrows = -(-len(cats) // ncols)
    width = (1.3 * (len(attribution.components) + 1) + 1.5) * ncols
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, 4.0 * nrows),
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    flat = axes.ravel()
    for ax, cat in zip(flat, cats, strict=False):
        plot_attribution_waterfall(attribution, category=cat, ax=ax, show_shares=show_shares)
    for ax in flat[len(cats) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"Attribution of the underestimation log U (bars: posterior means; whiskers: "
        f"{attribution.prob:.0%} intervals)",
        fontsize=10,
    )
    return fig
