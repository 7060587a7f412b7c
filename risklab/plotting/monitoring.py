"""Figures of the monitoring of binding commitments (:mod:`risklab.monitoring`).

Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned; nothing calls
``plt.show()``.

* :func:`plot_commitment_trend` — one commitment's aggregate quantity by period (posterior
  median and interval) against the counterfactual without the commitment, with the effective
  dates of every commitment on the same quantity and the target.
* :func:`plot_commitment_status` — one bar per commitment: P(target met), or P(improved) when no
  target was set, with the status label.
* :func:`plot_kpis` — each KPI the platform reported against the interval the model implies.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from risklab.monitoring.analysis import STATUS_CUTS
from risklab.monitoring.quantities import quantity

__all__ = ["STATUS_COLORS", "plot_commitment_status", "plot_commitment_trend", "plot_kpis"]

#: Bar colour of each status label (with and without a target).
STATUS_COLORS = {
    "met": "#1a7f37",
    "improved": "#1a7f37",
    "likely met": "#7cc47f",
    "likely improved": "#7cc47f",
    "uncertain": "#bfbfbf",
    "likely not met": "#f0a35e",
    "likely not improved": "#f0a35e",
    "not met": "#c82333",
    "not improved": "#c82333",
    "no estimate": "#ffffff",
}
_VALUE = "#0b5cad"
_COUNTERFACTUAL = "#6e7781"
_TARGET = "#c82333"
_MAX_TICKS = 12


def _commitment(result, commitment):
    """The :class:`Commitment` named ``commitment`` (or given) and its row of ``result.table``."""
    name = commitment if isinstance(commitment, str) else commitment.name
    matches = [c for c in result.commitments if c.name == name]
    if not matches:
        known = ", ".join(repr(c.name) for c in result.commitments)
        raise ValueError(f"no commitment {name!r} in the result; known: {known}")
    row = result.table.loc[result.table["commitment"] == name].iloc[0]
    return matches[0], row


def _periods(result) -> list[str]:
    return [str(p) for p in result.draws["period"].values]


def _period_axis(ax: Axes, periods: list[str]) -> None:
    step = max(1, int(np.ceil(len(periods) / _MAX_TICKS)))
    ticks = np.arange(0, len(periods), step)
    ax.set_xticks(ticks, [periods[i] for i in ticks], rotation=45, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(periods) - 0.5)


def _value_axis(ax: Axes, unit: str) -> None:
    if unit == "share":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.3g}"))


def _fmt(value: float, unit: str) -> str:
    return f"{100 * value:.3g}%" if unit == "share" else f"{value:.3g}"


def plot_commitment_trend(result, commitment, *, ax: Axes | None = None) -> Axes:
    """A commitment's quantity by period, with and without the commitment.

    The solid line and dark band are the posterior median and interval (``result.prob``) of the
    aggregate quantity over the commitment's categories (listings-weighted); the dashed line and
    light band the same without this commitment (its counterfactual, drawn from the period before
    it takes effect). Vertical lines mark the effective dates of every commitment on the same
    quantity (this one solid, others dotted), each labelled; a target is a horizontal dotted
    line with a star at the period it is due. Shares are shown as percentages.

    Parameters
    ----------
    result : MonitoringResult
        Output of :func:`risklab.monitoring.monitor`.
    commitment : str or Commitment
        The commitment (by name).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    c, row = _commitment(result, commitment)
    q = quantity(c.quantity)
    periods = _periods(result)
    traj = result.trajectory.loc[result.trajectory["commitment"] == c.name]
    traj = traj.set_index("period").loc[periods]
    x = np.arange(len(periods), dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    t0 = periods.index(c.effective)
    start = max(t0 - 1, 0)
    xs = x[start:]
    cf = traj.iloc[start:]
    ax.fill_between(
        xs,
        cf["counterfactual_low"],
        cf["counterfactual_high"],
        color=_COUNTERFACTUAL,
        alpha=0.15,
        linewidth=0,
    )
    ax.plot(
        xs,
        cf["counterfactual_median"],
        color=_COUNTERFACTUAL,
        linestyle="--",
        linewidth=1.6,
        label=f"without this commitment (median, {result.prob:.0%} interval)",
    )
    ax.fill_between(x, traj["value_low"], traj["value_high"], color=_VALUE, alpha=0.28, linewidth=0)
    ax.plot(
        x,
        traj["value_median"],
        color=_VALUE,
        linewidth=2.0,
        marker="o",
        markersize=3,
        label=f"{q.label} (median, {result.prob:.0%} interval)",
    )
    others = [o for o in result.commitments if o.quantity == c.quantity]
    for o in others:
        xo = periods.index(o.effective)
        own = o.name == c.name
        ax.axvline(
            xo,
            color="black" if own else "0.45",
            linestyle="-" if own else ":",
            linewidth=1.2 if own else 1.0,
            zorder=1,
        )
        ax.annotate(
            f"{o.name} ({o.effective})",
            xy=(xo, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            rotation=90,
            va="top",
            ha="left",
            fontsize=7.5,
            color="black" if own else "0.35",
        )
    target = float(row["target"])
    if np.isfinite(target):
        by = periods.index(str(row["target_by"]))
        ax.axhline(target, color=_TARGET, linestyle=":", linewidth=1.2)
        ax.plot(
            [by],
            [target],
            marker="*",
            markersize=12,
            color=_TARGET,
            linestyle="none",
            label=f"target {_fmt(target, q.unit)} by {periods[by]}",
        )
    _period_axis(ax, periods)
    _value_axis(ax, q.unit)
    ax.set_ylabel(q.label if len(q.label) < 40 else q.name.replace("_", " "))
    cats = row["categories"]
    title = f"{c.name}: {q.name.replace('_', ' ')} — {cats}"
    if not result.converged:
        title += "\n(UNCONVERGED fit: provisional)"
    ax.set_title(title, fontsize=10)
    # Below the axes: inside, it covered the curves and the effective-date labels.
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax


def _status_probability(row) -> tuple[float, str]:
    if np.isfinite(float(row["target"])):
        return float(row["p_target_met"]), "P(target met)"
    return float(row["p_improved"]), "P(improved)"


def plot_commitment_status(result, *, ax: Axes | None = None) -> Axes:
    """One horizontal bar per commitment: P(target met), or P(improved) without a target.

    Bars are coloured by the status label (:func:`risklab.monitoring.status_label`), which is
    printed beside each bar; dotted lines mark the label's cut points.

    Parameters
    ----------
    result : MonitoringResult
        Output of :func:`risklab.monitoring.monitor`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = result.table
    n = len(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * n), layout="constrained")
    y = np.arange(n)[::-1].astype(float)
    for yi, (_, row) in zip(y, table.iterrows(), strict=True):
        p, what = _status_probability(row)
        status = str(row["status"])
        ax.barh(
            yi,
            p if np.isfinite(p) else 0.0,
            height=0.6,
            color=STATUS_COLORS.get(status, "#bfbfbf"),
            edgecolor="0.3",
            linewidth=0.6,
        )
        text = f"{status} — {what} {p:.2f}" if np.isfinite(p) else status
        ax.annotate(
            text,
            xy=(1.0, yi),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=8,
            annotation_clip=False,
        )
    for cut in STATUS_CUTS:
        ax.axvline(cut, color="0.5", linestyle=":", linewidth=0.8)
    names = [n if len(n) <= 38 else n[:37] + "…" for n in table["commitment"].astype(str)]
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel("posterior probability (P(target met), or P(improved) without a target)")
    title = "Commitments: probability the target is met"
    if not result.converged:
        title += " (UNCONVERGED fit: provisional)"
    ax.set_title(title, fontsize=10)
    return ax


def _kpi_label(row) -> str:
    parts = [str(row["kpi"]).replace("_", " ")]
    parts.append(str(row["category"]) if row["category"] else "platform")
    parts.append(str(row["period"]) if row["period"] else "whole window")
    return " · ".join(parts)


def plot_kpis(kpi_table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Each reported KPI against the model-implied interval.

    A grey line is the implied equal-tailed interval with its median (dot); the diamond is the
    figure the platform reported: red when the discrepancy flatters the platform, orange when it
    lies outside the model otherwise, black when consistent. Values are shares, in percent.

    Parameters
    ----------
    kpi_table : pandas.DataFrame
        Output of :func:`risklab.monitoring.kpis.compare_kpis` (columns ``kpi``, ``period``,
        ``category``, ``reported``, ``implied_median``, ``implied_low``, ``implied_high``,
        ``verdict``, ``flatters``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = kpi_table.reset_index(drop=True)
    if table.empty:
        raise ValueError("kpi_table has no rows")
    n = len(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.3 + 0.38 * n), layout="constrained")
    y = np.arange(n)[::-1].astype(float)
    seen: set[str] = set()

    def once(label: str) -> str:
        if label in seen:
            return "_nolegend_"
        seen.add(label)
        return label

    for yi, (_, row) in zip(y, table.iterrows(), strict=True):
        ax.hlines(
            yi,
            row["implied_low"],
            row["implied_high"],
            color="0.45",
            linewidth=2.5,
            label=once("model-implied interval"),
        )
        ax.plot(
            [row["implied_median"]],
            [yi],
            "o",
            color="0.25",
            markersize=4,
            label=once("model-implied median"),
        )
        if bool(row["flatters"]):
            color, label = _TARGET, "reported, flatters the platform"
        elif row["verdict"] != "consistent":
            color, label = "#d4740f", "reported, outside the model"
        else:
            color, label = "black", "reported, consistent"
        ax.plot([row["reported"]], [yi], "D", color=color, markersize=6, label=once(label))
    ax.set_yticks(y, [_kpi_label(r) for _, r in table.iterrows()], fontsize=8)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    ax.set_xlabel("share")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_title("Reported KPIs against what the model implies", fontsize=10)
    ax.legend(fontsize=7.5, loc="best", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return ax
