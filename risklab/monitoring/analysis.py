"""Per commitment: the change, P(improved), P(target met) and the counterfactual without it.

:func:`monitor` reads a fitted :class:`~risklab.monitoring.MonitoringModel`. For commitment *j*
and every posterior draw it computes the aggregate quantity over the commitment's categories
(listings-weighted; :mod:`risklab.monitoring.quantities`) by period, and the same with *j*'s
level and slope changes removed (other commitments kept) — the counterfactual without the
commitment. The effect is their difference; P(improved) is the posterior probability that the
effect at the target period lies in the improving direction, P(target met) that the quantity
there is on the improving side of the promised value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logit

from risklab._analysis import check_prob, summarise
from risklab.dims import CATEGORY, DEFAULT_PROB, PERIOD
from risklab.models.components.capacity import review_intensity
from risklab.monitoring.commitments import Commitment
from risklab.monitoring.its import COMMITMENT
from risklab.monitoring.quantities import quantity, shifted_value

__all__ = ["MonitoringResult", "commitment_draws", "monitor", "status_label"]

#: Probability cut points of the status labels (see :func:`status_label`).
STATUS_CUTS = (0.05, 0.25, 0.75, 0.95)


@dataclass
class MonitoringResult:
    """What :func:`monitor` found.

    Attributes
    ----------
    commitments : list of Commitment
    table : pandas.DataFrame
        One row per commitment: the quantity at the target period (``value_*``), without the
        commitment (``counterfactual_*``), the effect (``effect_*``), ``p_improved``,
        ``p_target_met`` (NaN without a target), ``status``, the pooled link-scale level and
        slope changes, ``identified_by`` and ``converged``.
    by_category : pandas.DataFrame
        One row per (commitment, covered category): level and slope change, value,
        counterfactual and effect at the target period, ``p_improved``.
    trajectory : pandas.DataFrame
        One row per (commitment, period): value, counterfactual and effect with intervals.
    draws : xarray.Dataset
        ``value``, ``counterfactual`` and ``effect`` over (chain, draw, commitment, period).
    prob : float
        Mass of the equal-tailed intervals.
    converged : bool
        Whether the fit passed the convergence gate.
    """

    commitments: list[Commitment]
    table: pd.DataFrame
    by_category: pd.DataFrame
    trajectory: pd.DataFrame
    draws: xr.Dataset
    prob: float
    converged: bool


def status_label(probability: float, *, target: bool) -> str:
    """Plain-language status from P(target met) (``target=True``) or P(improved)."""
    if not np.isfinite(probability):
        return "no estimate"
    met, improved = ("met", "improved")
    word = met if target else improved
    if probability >= STATUS_CUTS[3]:
        return word
    if probability >= STATUS_CUTS[2]:
        return f"likely {word}"
    if probability > STATUS_CUTS[1]:
        return "uncertain"
    if probability > STATUS_CUTS[0]:
        return f"likely not {word}"
    return f"not {word}"


def commitment_draws(fitted, commitment: Commitment) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw quantity by (category, period) with and without ``commitment``.

    Parameters
    ----------
    fitted : MonitoringModel
        A fitted monitoring model holding ``commitment``.
    commitment : Commitment

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``value`` and ``counterfactual``, each (chain, draw, category, period).
    """
    post = fitted.posterior
    data = fitted.submission.data
    names = [str(n) for n in post[COMMITMENT].values]
    shift = post["commitment_shift"].sel({COMMITMENT: commitment.name})
    shift = shift.transpose("chain", "draw", CATEGORY, PERIOD).values
    name = commitment.quantity
    if name == "prevalence":
        value = _kt(post["prevalence"])
        return value, shifted_value(name, logit(value), shift)
    if name == "hidden_share":
        level = _kt(post["detection_level_by_period"])
        saturation = post["saturation_at_mean"].transpose("chain", "draw", CATEGORY).values
        value = _kt(post["hidden_share_by_period"])
        return value, shifted_value(name, logit(level), shift, saturation[..., None])
    if name == "efficiency":
        value = _kt(post["efficiency_by_period"])
        return value, shifted_value(name, np.log(value), shift)
    if name == "review_capacity":
        r = review_intensity(
            data["review_hours"].transpose(CATEGORY, PERIOD).values,
            data["listings"].transpose(CATEGORY, PERIOD).values,
        )
        value = np.broadcast_to(r, shift.shape)
        return value, shifted_value(name, np.log(value), shift)
    if name == "enforcement":
        q = post["enforcement_by_period"].transpose("chain", "draw", PERIOD).values
        value = np.broadcast_to(q[:, :, None, :], shift.shape)
        return value, shifted_value(name, logit(value), shift)
    raise ValueError(f"commitment {commitment.name!r}: unknown quantity {name!r} ({names})")


def _kt(var: xr.DataArray) -> np.ndarray:
    return var.transpose("chain", "draw", CATEGORY, PERIOD).values


def _aggregate(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the category axis (-2) of (chain, draw, category, period) draws."""
    return (values * weights).sum(axis=-2) / weights.sum(axis=0)


def monitor(fitted, *, prob: float = DEFAULT_PROB) -> MonitoringResult:
    """Report every commitment of a fitted monitoring model.

    Parameters
    ----------
    fitted : MonitoringModel
        Fitted (or loaded with :meth:`MonitoringModel.load`).
    prob : float
        Mass of the equal-tailed credible intervals (default 0.90).

    Returns
    -------
    MonitoringResult
    """
    prob = check_prob(prob)
    post = fitted.posterior
    data = fitted.submission.data
    periods = [str(p) for p in data[PERIOD].values]
    categories = [str(c) for c in data[CATEGORY].values]
    listings = data["listings"].transpose(CATEGORY, PERIOD).values.astype(float)
    converged = bool(fitted.convergence.passed) if fitted.convergence is not None else False
    rows, cat_rows, traj_rows = [], [], []
    values, counterfactuals = [], []
    for c in fitted.commitments:
        q = quantity(c.quantity)
        value_kt, cf_kt = commitment_draws(fitted, c)
        covered = [categories.index(k) for k in c.categories] if q.per_category else [0]
        weights = listings[covered] if q.per_category else np.ones((1, len(periods)))
        value = _aggregate(value_kt[:, :, covered], weights)
        cf = _aggregate(cf_kt[:, :, covered], weights)
        values.append(value)
        counterfactuals.append(cf)
        by = periods.index(c.target.by) if c.target and c.target.by else len(periods) - 1
        flat = lambda a: a.reshape(-1, *a.shape[2:])  # noqa: E731 - (chain·draw, ...)
        v, f = flat(value)[:, by], flat(cf)[:, by]
        p_improved = float(q.improved(v - f).mean())
        p_met = float(q.meets(v, c.target.value).mean()) if c.target else float("nan")
        level = flat(post["commitment_level"].sel({COMMITMENT: c.name}).values)
        slope = flat(post["commitment_slope"].sel({COMMITMENT: c.name}).values)
        row = {
            "commitment": c.name,
            "quantity": c.quantity,
            "effective": c.effective,
            "categories": ", ".join(c.categories) if q.per_category else "platform-wide",
            "target": c.target.value if c.target else float("nan"),
            "target_by": periods[by],
        }
        for key, draws in (("value", v), ("counterfactual", f), ("effect", v - f)):
            _put(row, key, draws, prob)
        row.update(
            p_improved=p_improved,
            p_target_met=p_met,
            status=status_label(p_met if c.target else p_improved, target=c.target is not None),
        )
        _put(row, "level_change", level, prob)
        _put(row, "slope_change", slope, prob)
        row["identified_by"] = identified_by(c, data)
        row["converged"] = converged
        rows.append(row)
        change_level = post["commitment_level_change"].sel({COMMITMENT: c.name})
        change_slope = post["commitment_slope_change"].sel({COMMITMENT: c.name})
        for k in covered if q.per_category else []:
            cat_row = {"commitment": c.name, "category": categories[k]}
            _put(cat_row, "level_change", flat(change_level.isel({CATEGORY: k}).values), prob)
            _put(cat_row, "slope_change", flat(change_slope.isel({CATEGORY: k}).values), prob)
            vk, fk = flat(value_kt[:, :, k, by]), flat(cf_kt[:, :, k, by])
            for key, draws in (("value", vk), ("counterfactual", fk), ("effect", vk - fk)):
                _put(cat_row, key, draws, prob)
            cat_row["p_improved"] = float(q.improved(vk - fk).mean())
            cat_rows.append(cat_row)
        for t, period in enumerate(periods):
            traj = {
                "commitment": c.name,
                "period": period,
                "in_force": t >= periods.index(c.effective),
            }
            vt, ft = flat(value)[:, t], flat(cf)[:, t]
            for key, draws in (("value", vt), ("counterfactual", ft), ("effect", vt - ft)):
                _put(traj, key, draws, prob)
            traj_rows.append(traj)
    dims = ("chain", "draw", COMMITMENT, PERIOD)
    coords = {
        "chain": post["chain"].values,
        "draw": post["draw"].values,
        COMMITMENT: [c.name for c in fitted.commitments],
        PERIOD: periods,
    }
    value_arr = np.stack(values, axis=2)
    cf_arr = np.stack(counterfactuals, axis=2)
    draws = xr.Dataset(
        {
            "value": (dims, value_arr),
            "counterfactual": (dims, cf_arr),
            "effect": (dims, value_arr - cf_arr),
        },
        coords=coords,
    )
    return MonitoringResult(
        commitments=list(fitted.commitments),
        table=pd.DataFrame(rows),
        by_category=pd.DataFrame(cat_rows),
        trajectory=pd.DataFrame(traj_rows),
        draws=draws,
        prob=prob,
        converged=converged,
    )


def _put(row: dict, key: str, draws: np.ndarray, prob: float) -> None:
    s = summarise(np.asarray(draws, dtype=float), prob)
    row[f"{key}_median"] = float(s["median"])
    row[f"{key}_low"] = float(s["low"])
    row[f"{key}_high"] = float(s["high"])


def identified_by(commitment: Commitment, data: xr.Dataset) -> str:
    """Which evidence separates the commitment's change from the others (plain words).

    A change in prevalence and a change in detection both move the detected counts; only
    evidence on one of them on both sides of the effective date tells them apart: random audits
    (prevalence), planted listings (proactive detection).
    """
    name = commitment.quantity
    if name == "review_capacity":
        return "observed review hours"
    if name == "enforcement":
        return "suspensions per period (enforcement.csv)"
    periods = [str(p) for p in data[PERIOD].values]
    t0 = periods.index(commitment.effective)
    cats = list(commitment.categories)

    def both_sides(var: str) -> bool:
        if var not in data:
            return False
        counts = data[var].sel({CATEGORY: cats}).sum(CATEGORY).values
        return bool(counts[:t0].sum() > 0 and counts[t0:].sum() > 0)

    audits = both_sides("audit_random_sampled")
    planted = both_sides("planted")
    if name == "prevalence":
        if audits:
            return "random audits before and after"
        if planted:
            return "planted listings before and after (detection), with detections"
    else:
        if planted:
            return "planted listings before and after"
        if audits:
            return "random audits before and after (prevalence), with detections"
    return (
        "detections only: a change in prevalence and a change in detection are not told apart "
        "(prior-driven)"
    )
