"""The report's diagnostics: the convergence gate per headline variable, and rank plots.

The gate (:mod:`risklab.models.diagnostics`) checks every posterior variable; the report shows
the worst R-hat and the smallest bulk and tail effective sample sizes of the variables behind the
headline — category prevalence (listings-weighted, as in ``assess``), the detection level, the
hidden share, review efficiency and, with trader data, the enforcement probability — plus the
divergent transitions of the whole fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from risklab.assess import Findings
from risklab.dims import CATEGORY, SAMPLE_DIMS
from risklab.models.base import RiskModel
from risklab.models.convergence_stats import diagnostics_table, rhat_rank

__all__ = ["HEADLINE_VARIABLES", "convergence_table", "headline_posterior", "rank_variables"]

#: Posterior variables behind the headline (those present in a fit are used).
HEADLINE_VARIABLES = (
    "category_prevalence",
    "detection_level",
    "hidden_share",
    "efficiency",
    "enforcement",
    "non_enforcement_share",
)


def headline_posterior(findings: Findings, fitted: RiskModel) -> xr.Dataset:
    """The headline variables' draws (``category_prevalence`` from the findings)."""
    posterior = fitted.posterior
    ds = xr.Dataset({"category_prevalence": findings.draws["prevalence"]})
    for name in HEADLINE_VARIABLES[1:]:
        if name in posterior:
            ds[name] = posterior[name]
    return ds


def convergence_table(findings: Findings, fitted: RiskModel) -> pd.DataFrame:
    """Worst R-hat and smallest ESS per headline variable, against the gate's thresholds.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``passes``.
    """
    ds = headline_posterior(findings, fitted)
    summary = diagnostics_table(ds)
    variable = pd.Series([str(i).split("[", 1)[0] for i in summary.index], index=summary.index)
    thresholds = fitted.convergence.thresholds if fitted.convergence is not None else None
    rows = []
    for name in ds.data_vars:
        part = summary[variable == name]
        max_rhat = float(part["r_hat"].astype(float).max())
        bulk = float(part["ess_bulk"].astype(float).min())
        tail = float(part["ess_tail"].astype(float).min())
        passes = None
        if thresholds is not None:
            passes = bool(
                max_rhat <= thresholds.max_rhat
                and bulk >= thresholds.min_ess_bulk
                and tail >= thresholds.min_ess_tail
            )
        rows.append(
            {
                "variable": str(name),
                "max_rhat": max_rhat,
                "min_ess_bulk": bulk,
                "min_ess_tail": tail,
                "passes": passes,
            }
        )
    return pd.DataFrame(rows)


def rank_variables(findings: Findings, fitted: RiskModel, *, max_categories: int = 6) -> xr.Dataset:
    """A small set of draws for rank plots: the category prevalences with the worst R-hat (at
    most ``max_categories``), those categories' efficiency, and enforcement."""
    ds = headline_posterior(findings, fitted)
    prevalence = ds["category_prevalence"]
    if prevalence.sizes[CATEGORY] > max_categories:
        if prevalence.sizes["chain"] > 1:
            draws = prevalence.transpose(*SAMPLE_DIMS, CATEGORY).values
            order = np.argsort(-np.nan_to_num(rhat_rank(draws), nan=np.inf))
        else:
            order = np.arange(prevalence.sizes[CATEGORY])
        keep = sorted(order[:max_categories])
        prevalence = prevalence.isel({CATEGORY: keep})
    out = xr.Dataset({"category_prevalence": prevalence})
    for name in ("efficiency", "enforcement"):
        if name in ds:  # per-category efficiency: the same categories as the prevalences
            da = ds[name]
            if CATEGORY in da.dims:
                da = da.sel({CATEGORY: prevalence[CATEGORY].values})
            out[name] = da
    return out
