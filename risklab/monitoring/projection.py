"""Carry a fitted monitoring model's posterior draws forward to periods after its window.

The interrupted time series is linear in time on each quantity's link scale, so every posterior
draw implies values at a later month: prevalence continues its category trend (plus the
commitments' level and slope changes, plus a fresh cell deviation ``ε ~ Normal(0, σ_cell)``), the
detection level, efficiency and enforcement their baseline trends and changes; review intensity
is the new period's observed one; secondary channels and the false-positive share keep their
fitted per-category values. Used by :mod:`risklab.monitoring.early_warning`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from risklab.dims import CATEGORY, PERIOD
from risklab.models.components.capacity import INTENSITY_FLOOR, MAX_RATE, review_intensity
from risklab.monitoring.its import COMMITMENT, centred_years, ramp, step
from risklab.monitoring.quantities import shifted_value

__all__ = ["Projection", "month_index", "project"]


def month_index(first: str, period: str) -> int:
    """Months from ``first`` to ``period`` (both ``YYYY-MM``)."""
    return (pd.Period(period, freq="M") - pd.Period(first, freq="M")).n


@dataclass
class Projection:
    """Per-draw model quantities at one later period (draws flattened: axis 0 has S draws).

    Attributes
    ----------
    period : str
    logit_prevalence : numpy.ndarray
        (S, K) structural logit prevalence (without the period's cell deviation).
    cell_sd : numpy.ndarray
        (S,) the cell deviation's spread.
    proactive : numpy.ndarray
        (S, K) proactive detection rate at the period's review intensity.
    secondary : dict of str to numpy.ndarray
        (S, K) rate of each other channel.
    false_positive_share : numpy.ndarray or None
        (S, K), when the fit has complaint reversals.
    uplift : dict of str to numpy.ndarray
        (S,) purposive selection uplift by category (categories with purposive audits in the fit).
    enforcement : numpy.ndarray or None
        (S,) suspension probability at the strike threshold, when monitored by period.
    values : dict of str to numpy.ndarray
        Per commitment: (S, K) value of its quantity at the period (structural).
    counterfactuals : dict of str to numpy.ndarray
        Per commitment: the same without that commitment.
    """

    period: str
    logit_prevalence: np.ndarray
    cell_sd: np.ndarray
    proactive: np.ndarray
    secondary: dict[str, np.ndarray]
    false_positive_share: np.ndarray | None
    uplift: dict[str, np.ndarray]
    enforcement: np.ndarray | None
    values: dict[str, np.ndarray]
    counterfactuals: dict[str, np.ndarray]


def _flat(post, name: str, *dims: str) -> np.ndarray:
    var = post[name].transpose("chain", "draw", *dims)
    return var.values.reshape(-1, *var.shape[2:])


def project(fitted, period: str, review_hours: np.ndarray, listings: np.ndarray) -> Projection:
    """Posterior draws of the model's quantities at ``period`` (after the fitted window).

    Parameters
    ----------
    fitted : MonitoringModel
        Fitted monitoring model.
    period : str
        A month after the fitted window (``YYYY-MM``).
    review_hours, listings : numpy.ndarray
        (K,) the new period's review hours and listings, in the fit's category order.

    Returns
    -------
    Projection
    """
    post = fitted.posterior
    data = fitted.submission.data
    periods = [str(p) for p in data[PERIOD].values]
    n_fit = len(periods)
    t = month_index(periods[0], period)
    if t < n_fit:
        raise ValueError(f"period {period} is not after the fitted window (ends {periods[-1]})")
    commitments = list(fitted.commitments)
    level = _flat(post, "commitment_level_change", COMMITMENT, CATEGORY)
    slope = _flat(post, "commitment_slope_change", COMMITMENT, CATEGORY)
    shifts = {}
    for j, c in enumerate(commitments):
        t0 = periods.index(c.effective)
        shifts[c.name] = level[:, j] * step(t0, t + 1)[t] + slope[:, j] * ramp(t0, t + 1)[t]
    years = centred_years(t + 1, n_fit)[t]

    def total(quantity_name: str) -> np.ndarray:
        out = 0.0
        for c in commitments:
            if c.quantity == quantity_name:
                out = out + shifts[c.name]
        return np.asarray(out)

    # Prevalence: category level + trend on the fitted window's position scale, extended.
    position = t / (n_fit - 1) - 0.5 if n_fit > 1 else 0.0
    logit_pi = (
        _flat(post, "prevalence_category_logit", CATEGORY)
        + _flat(post, "prevalence_trend", CATEGORY) * position
        + total("prevalence")
    )
    # Detection at the new period's review intensity.
    theta = _flat(post, "efficiency", CATEGORY)  # (S, K)
    hours_fit = data["review_hours"].transpose(CATEGORY, PERIOD).values
    listings_fit = data["listings"].transpose(CATEGORY, PERIOD).values
    mean_r = np.maximum(review_intensity(hours_fit, listings_fit), INTENSITY_FLOOR).mean(axis=1)
    saturation = -np.expm1(-theta * mean_r[None, :])
    level_logit = logit(_flat(post, "detection_level", CATEGORY)) + total("hidden_share")
    log_theta = np.log(theta) + total("efficiency")
    if "detection_level_trend" in post:
        level_logit = level_logit + _flat(post, "detection_level_trend")[:, None] * years
    r_new = np.maximum(review_intensity(review_hours, listings), INTENSITY_FLOOR)[None, :]
    reachable = expit(level_logit) / saturation
    proactive = np.minimum(reachable * -np.expm1(-np.exp(log_theta) * r_new), MAX_RATE)
    proactive = np.broadcast_to(proactive, logit_pi.shape)

    secondary = {}
    if "channel_ratio" in post:
        ratio = post["channel_ratio"]
        mean_d = _flat(post, "detection_rate", CATEGORY, PERIOD).mean(axis=2)
        for channel in ratio["secondary_channel"].values:
            r_c = _flat(post.sel(secondary_channel=channel), "channel_ratio", CATEGORY)
            secondary[str(channel)] = -np.expm1(-r_c * mean_d)
    phi = _flat(post, "false_positive_share", CATEGORY) if "false_positive_share" in post else None
    uplift = {}
    if "purposive_uplift" in post and "purposive_category" in post["purposive_uplift"].dims:
        for cat in post["purposive_category"].values:
            uplift[str(cat)] = _flat(post.sel(purposive_category=cat), "purposive_uplift")
    q = None
    if "enforcement_by_period" in post:
        q = expit(
            logit(_flat(post, "enforcement"))
            + total("enforcement")[:, 0]
            + _flat(post, "enforcement_trend") * years
        )

    values, counterfactuals = {}, {}
    for c in commitments:
        value, cf = _quantity_values(
            c.quantity, logit_pi, level_logit, saturation, log_theta, r_new, q, shifts[c.name]
        )
        values[c.name], counterfactuals[c.name] = value, cf
    return Projection(
        period=period,
        logit_prevalence=logit_pi,
        cell_sd=_flat(post, "prevalence_cell_sd"),
        proactive=proactive,
        secondary=secondary,
        false_positive_share=phi,
        uplift=uplift,
        enforcement=q,
        values=values,
        counterfactuals=counterfactuals,
    )


def _quantity_values(name, logit_pi, level_logit, saturation, log_theta, r_new, q, shift):
    """(value, counterfactual) of a quantity at the projected period, (S, K)."""
    if name == "prevalence":
        link = logit_pi
    elif name == "hidden_share":
        link = level_logit
    elif name == "efficiency":
        link = log_theta
    elif name == "review_capacity":
        link = np.log(np.broadcast_to(r_new, shift.shape))
    elif name == "enforcement":
        link = logit(np.broadcast_to(q[:, None], shift.shape))
    else:
        raise ValueError(f"unknown quantity {name!r}")
    sat = saturation if name == "hidden_share" else None
    return shifted_value(name, link, 0.0, sat), shifted_value(name, link, shift, sat)
