"""Claimed recall and precision against the posterior: does the platform's number hold?

Platforms publish figures such as "recall 79.4%" or "precision 98%" for their proactive
detection. In the platform model recall is the true proactive detection rate ``d[k, t]``
(``detection_rate``; averaged over periods with listings weights, as in the findings) and
precision is ``1 − φ[k]``, one minus the false-positive share of actioned detections
(``false_positive_share``, present when ``appeals.csv`` was modelled). For each category this
module returns the posterior median and equal-tailed interval of both and the posterior
probabilities ``P(true recall < claimed)`` and ``P(true precision < claimed)``. Everything is
computed on the posterior draws with xarray; nothing is refitted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from risklab.dims import CATEGORY, DEFAULT_PROB, PERIOD, SAMPLE_DIMS

__all__ = ["claimed_rate_tests"]


def _per_category(value, categories: xr.DataArray, name: str) -> xr.DataArray:
    """A claim as a float DataArray over ``category`` (NaN where not claimed)."""
    if value is None:
        return xr.DataArray(np.full(categories.size, np.nan), dims=CATEGORY,
                            coords={CATEGORY: categories})  # fmt: skip
    if isinstance(value, xr.DataArray):
        return value.astype(float).reindex({CATEGORY: categories})
    if isinstance(value, Mapping):
        vals = [value.get(str(c), np.nan) for c in categories.values]
    else:
        vals = [float(value)] * categories.size
    out = np.array([np.nan if v is None else float(v) for v in vals])
    bad = np.isfinite(out) & ((out < 0) | (out > 1))
    if bad.any():
        raise ValueError(f"claimed {name} must be in [0, 1]")
    return xr.DataArray(out, dims=CATEGORY, coords={CATEGORY: categories})


def _summary(draws: xr.DataArray, claimed: xr.DataArray, prob: float, name: str) -> xr.Dataset:
    tail = (1.0 - prob) / 2.0
    q = draws.quantile([tail, 0.5, 1.0 - tail], dim=SAMPLE_DIMS)
    below = (draws < claimed).mean(SAMPLE_DIMS).where(np.isfinite(claimed))
    return xr.Dataset(
        {
            f"{name}_median": q.sel(quantile=0.5, drop=True),
            f"{name}_low": q.sel(quantile=tail, drop=True),
            f"{name}_high": q.sel(quantile=1.0 - tail, drop=True),
            f"claimed_{name}": claimed,
            f"p_{name}_below_claimed": below,
        }
    )


def claimed_rate_tests(
    posterior: xr.Dataset,
    data: xr.Dataset,
    *,
    claimed_recall: float | Mapping[str, float] | xr.DataArray | None = None,
    claimed_precision: float | Mapping[str, float] | xr.DataArray | None = None,
    prob: float = DEFAULT_PROB,
) -> xr.Dataset:
    """Posterior of recall and precision per category, tested against the claimed values.

    Parameters
    ----------
    posterior : xarray.Dataset
        Posterior draws (dims ``chain, draw, ...``) with ``detection_rate`` (category × period)
        and, for precision, ``false_positive_share`` (category).
    data : xarray.Dataset
        The submission Dataset (``listings`` for the period weights, ``claimed_detection_rate``).
    claimed_recall : float, mapping or DataArray, optional
        Claimed recall per category; default the claims' ``detection_rate``.
    claimed_precision : float, mapping or DataArray, optional
        Claimed precision (one number for all categories, or per category).
    prob : float, default 0.90
        Mass of the equal-tailed intervals.

    Returns
    -------
    xarray.Dataset
        Over ``category``: ``recall_median``, ``recall_low``, ``recall_high``,
        ``claimed_recall``, ``p_recall_below_claimed`` and, when the posterior has
        ``false_positive_share``, the same for ``precision``. Probabilities are NaN where no
        claim was made.

    Examples
    --------
    >>> out = claimed_rate_tests(fit.posterior, sub.data, claimed_precision=0.98)  # doctest: +SKIP
    >>> out["p_recall_below_claimed"].to_series()                                # doctest: +SKIP
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    categories = data[CATEGORY]
    listings = data["listings"].astype(float)
    weights = listings / listings.sum(PERIOD)
    recall = (posterior["detection_rate"] * weights).sum(PERIOD)
    if claimed_recall is None:
        claimed_recall = data["claimed_detection_rate"]
    out = _summary(recall, _per_category(claimed_recall, categories, "recall"), prob, "recall")
    if "false_positive_share" in posterior:
        precision = 1.0 - posterior["false_positive_share"]
        claimed = _per_category(claimed_precision, categories, "precision")
        out = out.merge(_summary(precision, claimed, prob, "precision"))
    elif claimed_precision is not None:
        raise ValueError(
            "a claimed precision can only be tested on a model fitted with appeals.csv "
            "(the posterior has no false_positive_share)"
        )
    return out
