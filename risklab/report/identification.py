"""What identified prevalence: the evidence per category, and the prior against the posterior.

A posterior interval that is barely narrower than the prior interval means the data said little:
the number is the prior's. Widths are compared on the log scale (prevalence spans orders of
magnitude) as the ratio ``w_post / w_prior`` of the equal-tailed intervals' log-widths:

* ``ratio ≥`` :data:`PRIOR_DRIVEN_RATIO` → ``"prior-driven"``;
* a narrower posterior in a category without evidence of its own (identified by ``prior``) →
  ``"borrowed from other categories"`` (the hierarchical prior pools the categories);
* ``ratio ≥`` :data:`PARTLY_RATIO` → ``"partly data-driven"``;
* otherwise ``"data-driven"``.

The prior draws come from the fitted model's prior (:meth:`RiskModel.sample_prior_predictive
<risklab.models.base.RiskModel.sample_prior_predictive>`, seeded from the fit's seed) when the
results hold no ``prior`` group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from risklab.assess import Findings
from risklab.dims import CATEGORY, PERIOD, SAMPLE_DIMS
from risklab.models.base import RiskModel

__all__ = [
    "PARTLY_RATIO",
    "PRIOR_DRAWS",
    "PRIOR_DRIVEN_RATIO",
    "findings_prior_posterior",
    "prior_category_prevalence",
    "prior_posterior_table",
]

#: Prior draws made for the comparison when the results hold none.
PRIOR_DRAWS = 500
#: Posterior-to-prior log-width ratio from which a category is called prior-driven.
PRIOR_DRIVEN_RATIO = 0.75
#: Ratio from which a category is called partly data-driven.
PARTLY_RATIO = 0.4


def prior_category_prevalence(
    fitted: RiskModel, *, prior: xr.DataTree | xr.Dataset | None = None, draws: int = PRIOR_DRAWS
) -> xr.DataArray:
    """Prior draws of category prevalence (listings-weighted over periods, as in ``assess``).

    Parameters
    ----------
    fitted : RiskModel
        The fitted model.
    prior : DataTree or Dataset, optional
        Prior draws (a tree with a ``prior`` group, or that group); default the results'
        ``prior`` group if present, else ``draws`` fresh draws seeded from the fit's seed.
    draws : int
        Number of prior draws to make when none are given.

    Returns
    -------
    xarray.DataArray
        Over ``(chain, draw, category)``.
    """
    if prior is None:
        idata = fitted.require_fitted()
        if "prior" in idata.children:
            prior = idata["prior"].to_dataset()
        else:
            seed = int(idata.attrs.get("random_seed", 0))
            prior = fitted.sample_prior_predictive(
                draws=draws, random_seed=seed, var_names=["prevalence"]
            )
    if isinstance(prior, xr.DataTree):
        prior = prior["prior"].to_dataset() if "prior" in prior.children else prior.to_dataset()
    if "prevalence" not in prior:
        raise ValueError("the prior draws hold no 'prevalence'")
    listings = fitted.submission.data["listings"].astype(float)
    weights = listings / listings.sum(PERIOD)
    prevalence = prior["prevalence"]
    if PERIOD in prevalence.dims:
        prevalence = (prevalence * weights).sum(PERIOD)
    return prevalence.transpose(*SAMPLE_DIMS, CATEGORY)


def _verdict(ratio: float, source: str) -> str:
    if not np.isfinite(ratio):
        return "unknown"
    if ratio >= PRIOR_DRIVEN_RATIO:
        return "prior-driven"
    if source == "prior":
        return "borrowed from other categories"
    if ratio >= PARTLY_RATIO:
        return "partly data-driven"
    return "data-driven"


def prior_posterior_table(
    prior: xr.DataArray,
    posterior: xr.DataArray,
    *,
    prob: float,
    identified_by: pd.Series | None = None,
) -> pd.DataFrame:
    """Prior against posterior interval of a per-category quantity.

    Parameters
    ----------
    prior, posterior : xarray.DataArray
        Draws over ``(chain, draw, category)`` of a positive quantity (prevalence).
    prob : float
        Mass of the equal-tailed intervals.
    identified_by : pandas.Series, optional
        Evidence per category (index: category), carried into the table.

    Returns
    -------
    pandas.DataFrame
        One row per category: ``category``, ``identified_by``, ``prior_low``, ``prior_high``,
        ``posterior_low``, ``posterior_median``, ``posterior_high``, ``width_ratio`` (posterior
        over prior log-width) and ``verdict``.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    tail = (1.0 - prob) / 2.0
    qs = [tail, 0.5, 1.0 - tail]
    pq = prior.quantile(qs, dim=list(SAMPLE_DIMS)).transpose("quantile", CATEGORY).values
    sq = posterior.quantile(qs, dim=list(SAMPLE_DIMS)).transpose("quantile", CATEGORY).values
    categories = [str(c) for c in posterior[CATEGORY].values]
    prior_cats = [str(c) for c in prior[CATEGORY].values]
    if prior_cats != categories:
        raise ValueError(f"prior categories {prior_cats} differ from posterior {categories}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(sq[2] / sq[0]) / np.log(pq[2] / pq[0])
    sources = (
        [str(identified_by.get(c, "")) for c in categories]
        if identified_by is not None
        else [""] * len(categories)
    )
    return pd.DataFrame(
        {
            "category": categories,
            "identified_by": sources,
            "prior_low": pq[0],
            "prior_high": pq[2],
            "posterior_low": sq[0],
            "posterior_median": sq[1],
            "posterior_high": sq[2],
            "width_ratio": ratio,
            "verdict": [_verdict(r, src) for r, src in zip(ratio, sources, strict=True)],
        }
    )


def findings_prior_posterior(
    findings: Findings, fitted: RiskModel, *, prior: xr.DataTree | xr.Dataset | None = None
) -> pd.DataFrame:
    """:func:`prior_posterior_table` of category prevalence for an assessment."""
    identified = findings.table.set_index("category")["identified_by"]
    return prior_posterior_table(
        prior_category_prevalence(fitted, prior=prior),
        findings.draws["prevalence"],
        prob=findings.prob,
        identified_by=identified,
    )
