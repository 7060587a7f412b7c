"""Review capacity → proactive detection: the fitted curves, per category, with their uncertainty.

The capacity component's curve (``risklab.counterfactual`` has the equations) is
``d(r) = min(A · (1 − e^{−θ r}), 1 − 10⁻⁹)`` with review intensity ``r`` in hours per 1000
listings, amplitude ``A`` and efficiency ``θ`` (both per category). As review grows without
limit, detection tends to the reach ``1 − h = min(A, 1)`` (``h``: the hidden share, out of reach
of proactive review). At the platform's actual mean intensity ``r̄`` the curve passes through
the fitted detection level.

:func:`capacity_curves` evaluates the curve draw by draw on a grid of multiples of each
category's actual intensity (the same as :class:`~risklab.counterfactual.Levers` with
``review_hours_factor`` equal to the multiple) and summarises it; :func:`plot_capacity_curves`
draws the result, one panel per category.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes

from risklab.counterfactual import MAX_RATE, PosteriorState, saturation_intensity
from risklab.dims import CATEGORY, DEFAULT_PROB

__all__ = ["GRID", "capacity_curves", "plot_capacity_curve", "plot_capacity_curves"]

#: Dimension of the grid of review intensities (its coordinates differ per category).
GRID = "grid"


def capacity_curves(
    state: PosteriorState,
    *,
    factors: np.ndarray | None = None,
    prob: float = DEFAULT_PROB,
    claimed_detection_rate: np.ndarray | None = None,
) -> xr.Dataset:
    """Posterior summaries of proactive detection as a function of review intensity.

    Parameters
    ----------
    state : PosteriorState
        From :meth:`~risklab.counterfactual.PosteriorState.from_fitted`.
    factors : array, optional
        Multiples of each category's actual mean review intensity, the same for every
        category. Default: per category, 61 points from 0 to the larger of 3 and the multiple
        at which the median curve reaches 95% of its reach (at most 20).
    prob : float
        Mass of the equal-tailed intervals.
    claimed_detection_rate : array of shape (K,), optional
        The platform's claimed proactive detection rates (NaN where none), carried along.

    Returns
    -------
    xarray.Dataset
        Over ``(category, grid)``: ``detection_median``, ``detection_low``,
        ``detection_high`` and the coordinates ``review_factor`` (multiple of the actual
        intensity) and ``intensity`` (hours per 1000 listings). Per
        category: ``actual_intensity`` (mean over periods), ``reach_median``, ``reach_low``,
        ``reach_high`` (``1 − hidden share``), ``detection_at_actual_median`` and
        ``claimed_detection_rate``. ``attrs["prob"]`` holds ``prob``.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    actual = state.intensity.mean(axis=1)  # (K,)
    theta = state.efficiency  # (S, K)
    amplitude = state.amplitude  # (S, K)
    if factors is None:
        r95 = saturation_intensity(np.median(theta, axis=0), 0.95)  # (K,)
        top = np.clip(r95 / actual, 3.0, 20.0)  # (K,)
        factors_k = top[:, None] * np.linspace(0.0, 1.0, 61)[None, :]
    else:
        factors = np.asarray(factors, dtype=float)
        if factors.ndim != 1 or np.any(factors < 0) or not np.all(np.isfinite(factors)):
            raise ValueError("factors must be a 1-d array of non-negative numbers")
        factors_k = np.broadcast_to(factors, (len(actual), len(factors)))
    intensity = actual[:, None] * factors_k  # (K, F)
    curves = np.minimum(
        amplitude[:, :, None] * -np.expm1(-theta[:, :, None] * intensity[None]), MAX_RATE
    )  # (S, K, F)
    tail = (1.0 - prob) / 2.0
    low, med, high = np.quantile(curves, [tail, 0.5, 1.0 - tail], axis=0)
    reach = np.minimum(amplitude, 1.0)
    r_low, r_med, r_high = np.quantile(reach, [tail, 0.5, 1.0 - tail], axis=0)
    at_actual = np.minimum(amplitude * -np.expm1(-theta * actual[None]), MAX_RATE)
    claimed = (
        np.full(len(state.categories), np.nan)
        if claimed_detection_rate is None
        else np.asarray(claimed_detection_rate, dtype=float)
    )
    dims = (CATEGORY, GRID)
    return xr.Dataset(
        {
            "detection_median": (dims, med),
            "detection_low": (dims, low),
            "detection_high": (dims, high),
            "actual_intensity": (CATEGORY, actual),
            "reach_median": (CATEGORY, r_med),
            "reach_low": (CATEGORY, r_low),
            "reach_high": (CATEGORY, r_high),
            "detection_at_actual_median": (CATEGORY, np.median(at_actual, axis=0)),
            "claimed_detection_rate": (CATEGORY, claimed),
        },
        coords={
            CATEGORY: list(state.categories),
            "review_factor": (dims, factors_k),
            "intensity": (dims, intensity),
        },
        attrs={"prob": float(prob)},
    )


def plot_capacity_curve(curves: xr.Dataset, *, category: str, ax: Axes | None = None) -> Axes:
    """One category's capacity → detection curve.

    Draws the posterior median and interval of proactive detection against review intensity, a
    vertical line at the platform's actual mean intensity, the reach (``1 − hidden share``) as a
    dashed line with its interval shaded, and the claimed detection rate (if any) at the actual
    intensity.

    Parameters
    ----------
    curves : xarray.Dataset
        Output of :func:`capacity_curves`.
    category : str
        Which category.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if category not in curves[CATEGORY].values:
        raise ValueError(f"unknown category {category!r}; known: {list(curves[CATEGORY].values)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    c = curves.sel({CATEGORY: category})
    x = c["intensity"].values
    prob = curves.attrs.get("prob", DEFAULT_PROB)
    ax.fill_between(
        x,
        c["detection_low"],
        c["detection_high"],
        color="C0",
        alpha=0.25,
        lw=0,
        label=f"{prob:.0%} interval",
    )
    ax.plot(x, c["detection_median"], color="C0", lw=1.8, label="posterior median")
    ax.axhspan(float(c["reach_low"]), float(c["reach_high"]), color="0.5", alpha=0.08, lw=0)
    ax.axhline(
        float(c["reach_median"]), color="0.35", ls="--", lw=1, label="reach (1 − hidden share)"
    )
    actual = float(c["actual_intensity"])
    ax.axvline(actual, color="C1", lw=1.3, label="actual review intensity")
    claimed = float(c["claimed_detection_rate"])
    if np.isfinite(claimed):
        ax.plot([actual], [claimed], "D", color="C3", mfc="white", mew=1.5, label="claimed rate")
    ax.set_xlim(0, float(x.max()))
    ax.set_ylim(0, 1)
    ax.set_title(category, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.2)
    return ax


def _columns(axes: np.ndarray) -> int:
    """Columns of the grid the Axes sit in (from their subplot specs; 1 if unknown)."""
    spec = axes[0].get_subplotspec()
    return spec.get_gridspec().ncols if spec is not None else 1


def plot_capacity_curves(
    curves: xr.Dataset,
    *,
    axes: np.ndarray | None = None,
    ncols: int = 4,
    unconverged: bool = False,
) -> np.ndarray:
    """Capacity → detection curves of every category, one small panel each.

    Parameters
    ----------
    curves : xarray.Dataset
        Output of :func:`capacity_curves`.
    axes : array of matplotlib Axes, optional
        At least as many Axes as categories (extra ones are hidden); a new figure when omitted.
    ncols : int
        Columns of the new figure's grid.
    unconverged : bool
        Say in the title that the fit failed the convergence gate.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        Flat array, one Axes per panel.
    """
    categories = [str(c) for c in curves[CATEGORY].values]
    if axes is None:
        ncols = max(1, min(ncols, len(categories)))
        nrows = -(-len(categories) // ncols)
        _, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(2.6 * ncols + 0.6, 2.2 * nrows + 1.1),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
    axes = np.asarray(axes).ravel()
    if len(axes) < len(categories):
        raise ValueError(f"need {len(categories)} axes, got {len(axes)}")
    for ax, category in zip(axes, categories, strict=False):
        plot_capacity_curve(curves, category=category, ax=ax)
    for ax in axes[len(categories) :]:
        ax.set_visible(False)
    fig = axes[0].figure
    ncols_grid = _columns(axes[: len(categories)])
    for i, ax in enumerate(axes[: len(categories)]):
        below = i + ncols_grid
        if below >= len(categories):  # bottom panel of its column
            ax.set_xlabel("review hours per 1000 listings", fontsize=8)
        if i % ncols_grid == 0:
            ax.set_ylabel("proactive detection rate", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(5, len(labels)),
        fontsize=8,
        frameon=False,
    )
    title = "Review capacity → proactive detection"
    if unconverged:
        title += " — UNCONVERGED FIT, not a finding"
    fig.suptitle(title, fontsize=11)
    return axes
