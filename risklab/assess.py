"""Art. 34 assessment: how much does the platform's own assessment understate the risk?

:func:`assess` turns a fitted :class:`~risklab.PlatformRiskModel` into per-category findings:
true prevalence (listings-weighted over the submission's periods), the underestimation ratio
``U = π / π_claim``, ``P(U > 1)``, the posterior probability of each band of the platform's own
scale, ``P(true band > claimed band)``, which evidence identified prevalence, and whether the fit
passed the convergence gate. With a trader table and a repeat-offender policy it adds the
enforcement findings (``docs/repeat-offenders.md``): the enforcement probability against the
claim, the offending traders never detected, the share of illegal listings attributable to
non-enforcement and the prevalence had enforcement been as claimed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from risklab._atomic import atomic_path
from risklab.dims import CATEGORY, DEFAULT_PROB, PERIOD, SAMPLE_DIMS
from risklab.models.base import RiskModel
from risklab.models.components.offenders import trader_table
from risklab.models.config import derive_seeds
from risklab.models.diagnostics import ConvergenceReport, unconverged_warning

__all__ = [
    "ENFORCEMENT_COLUMNS",
    "FINDINGS_COLUMNS",
    "Findings",
    "assess",
    "identification_sources",
]

#: Leading columns of ``findings.csv``, in order (a contract other tools read).
FINDINGS_COLUMNS = (
    "category",
    "prevalence_median",
    "prevalence_low",
    "prevalence_high",
    "claimed_prevalence",
    "claimed_band",
    "underestimation_median",
    "underestimation_low",
    "underestimation_high",
    "p_underestimated",
    "p_band_above_claimed",
    "most_likely_band",
    "identified_by",
    "converged",
)

#: Repeat-offender columns, last in ``findings.csv`` (NaN without traders.csv and a policy). The
#: platform-wide quantities are repeated on every row; ``prevalence_if_enforced_median`` is per
#: category (listings-weighted over periods, like ``prevalence_median``).
ENFORCEMENT_COLUMNS = (
    "enforcement_median",
    "enforcement_low",
    "enforcement_high",
    "claimed_enforcement",
    "p_enforcement_below_claim",
    "undetected_traders_median",
    "undetected_traders_low",
    "undetected_traders_high",
    "non_enforcement_share_median",
    "non_enforcement_share_low",
    "non_enforcement_share_high",
    "prevalence_if_enforced_median",
)

#: Sub-stream (of the fit's posterior-predictive seed) of the draws of never-detected traders.
_TRADER_STREAM = 1

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Findings:
    """Per-category findings of an assessment.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per category; columns :data:`FINDINGS_COLUMNS`, then ``p_band:<label>`` per band
        of the platform's scale, then the detection-rate columns, then
        :data:`ENFORCEMENT_COLUMNS`.
    draws : xarray.Dataset
        Posterior draws behind the table: ``prevalence``, ``underestimation``, ``band``
        (index into the scale's labels) and ``detection_rate``, each over ``chain, draw,
        category``; with trader data also ``prevalence_if_enforced`` (same dims) and the
        platform-wide ``enforcement``, ``offending_traders``, ``undetected_traders`` and
        ``non_enforcement_share`` over ``chain, draw`` (``claimed_enforcement`` in its attrs).
    warnings : list of str
        Plain-language caveats (prior-driven categories, failed convergence).
    convergence : ConvergenceReport
        The convergence gate of the fit.
    prob : float
        Probability mass of the equal-tailed intervals.
    """

    table: pd.DataFrame
    draws: xr.Dataset
    warnings: list[str] = field(default_factory=list)
    convergence: ConvergenceReport | None = None
    prob: float = DEFAULT_PROB

    @property
    def converged(self) -> bool:
        """Whether the fit behind these findings passed the convergence gate."""
        return bool(self.convergence is not None and self.convergence.passed)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as ``findings.csv``, atomically and deterministically.

        Text cells that a spreadsheet would evaluate as a formula (starting with ``=``, ``+``,
        ``-``, ``@``) are prefixed with a single quote.
        """
        table = self.table.copy()
        for column in table.columns:
            if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
                table[column] = table[column].map(_escape_formula)
        path = Path(path)
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
        return path


def _escape_formula(value):
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def identification_sources(data: xr.Dataset, overlaps: pd.DataFrame | None = None) -> pd.Series:
    """Evidence that identifies prevalence, per category.

    ``audit`` (random audits), ``planted`` (planted test listings), ``overlap`` (channel capture
    histories), joined by ``+``; ``prior`` when none is present. Purposive test purchases do not
    count: with a free selection uplift they bound prevalence from above only.
    """
    categories = [str(c) for c in data[CATEGORY].values]
    random_audits = data["audit_random_sampled"].sum(PERIOD).values > 0
    planted = data["planted"].sum(PERIOD).values > 0
    overlap_categories = set()
    if overlaps is not None and len(overlaps):
        overlap_categories = {str(c) for c in overlaps["category"].unique()}
    sources = []
    for i, cat in enumerate(categories):
        parts = [
            name
            for name, present in (
                ("audit", random_audits[i]),
                ("planted", planted[i]),
                ("overlap", cat in overlap_categories),
            )
            if present
        ]
        sources.append("+".join(parts) if parts else "prior")
    return pd.Series(sources, index=categories, name="identified_by")


def _interval(da: xr.DataArray, prob: float) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    tail = (1.0 - prob) / 2.0
    q = da.quantile([tail, 0.5, 1.0 - tail], dim=list(SAMPLE_DIMS))
    return q.isel(quantile=1), q.isel(quantile=0), q.isel(quantile=2)


def assess(fitted: RiskModel, *, prob: float = DEFAULT_PROB) -> Findings:
    """Assess a fitted platform model against the platform's own claims.

    Parameters
    ----------
    fitted : PlatformRiskModel
        A fitted model (its submission carries the claims and the scale).
    prob : float, default 0.90
        Probability mass of the equal-tailed intervals.

    Returns
    -------
    Findings

    Notes
    -----
    Category prevalence is the listings-weighted mean of the cell prevalences over the
    submission's periods, computed per posterior draw. The band of a draw is its position on the
    platform's declared scale (``share < t_0`` is the first band, ``t_0 ≤ share < t_1`` the
    second, ...), so ``p_band:<label>`` is the posterior probability that the true prevalence
    lies in that band.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    posterior = fitted.posterior
    submission = fitted.submission
    data = submission.data
    scale = submission.scale
    listings = data["listings"].astype(float)
    weights = listings / listings.sum(PERIOD)

    prevalence = (posterior["prevalence"] * weights).sum(PERIOD)
    detection = (posterior["detection_rate"] * weights).sum(PERIOD)
    claimed = data["claimed_prevalence"]
    underestimation = prevalence / claimed
    band = xr.apply_ufunc(scale.band_index, prevalence)
    claimed_band_index = xr.DataArray(
        [scale.labels.index(submission.claims[str(c)].band) for c in data[CATEGORY].values],
        dims=CATEGORY,
        coords={CATEGORY: data[CATEGORY]},
    )

    prev_med, prev_low, prev_high = _interval(prevalence, prob)
    u_med, u_low, u_high = _interval(underestimation, prob)
    band_probs = np.stack(
        [(band == i).mean(SAMPLE_DIMS).values for i in range(len(scale.labels))], axis=-1
    )
    identified = identification_sources(data, submission.tables.get("overlaps"))
    converged = fitted.convergence is not None and fitted.convergence.passed

    categories = [str(c) for c in data[CATEGORY].values]
    table = pd.DataFrame(
        {
            "category": categories,
            "prevalence_median": prev_med.values,
            "prevalence_low": prev_low.values,
            "prevalence_high": prev_high.values,
            "claimed_prevalence": claimed.values.astype(float),
            "claimed_band": [submission.claims[c].band for c in categories],
            "underestimation_median": u_med.values,
            "underestimation_low": u_low.values,
            "underestimation_high": u_high.values,
            "p_underestimated": (underestimation > 1).mean(SAMPLE_DIMS).values,
            "p_band_above_claimed": (band > claimed_band_index).mean(SAMPLE_DIMS).values,
            "most_likely_band": [scale.labels[i] for i in band_probs.argmax(axis=-1)],
            "identified_by": identified.loc[categories].values,
            "converged": converged,
        }
    )
    for i, label in enumerate(scale.labels):
        table[f"p_band:{label}"] = band_probs[:, i]
    det_med, det_low, det_high = _interval(detection, prob)
    claimed_rate = data["claimed_detection_rate"].values.astype(float)
    table["detection_rate_median"] = det_med.values
    table["detection_rate_low"] = det_low.values
    table["detection_rate_high"] = det_high.values
    table["claimed_detection_rate"] = claimed_rate
    p_below = (detection < data["claimed_detection_rate"]).mean(SAMPLE_DIMS).values
    table["p_detection_below_claim"] = np.where(np.isnan(claimed_rate), np.nan, p_below)

    seed = int(fitted.require_fitted().attrs.get("random_seed", 0))
    enforcement_draws = _add_enforcement(table, posterior, submission, weights, prob, seed)

    warnings = []
    if fitted.convergence is not None and not fitted.convergence.passed:
        warnings.append(unconverged_warning(fitted.convergence))
    for cat in categories:
        if identified[cat] == "prior":
            warnings.append(
                f"Prevalence in {cat!r} is prior-driven: no random audit, planted listing or "
                "channel overlap identifies it, so its posterior rests on the priors and on the "
                "other categories (detections alone identify only prevalence × detection rate). "
                "Gather random audits or planted listings before relying on it."
            )
    warnings.extend(_hidden_share_caveats(posterior, categories))
    warnings.extend(_enforcement_caveats(data))
    draws = xr.Dataset(
        {
            "prevalence": prevalence,
            "underestimation": underestimation,
            "band": band,
            "detection_rate": detection,
            **enforcement_draws,
        }
    )
    if enforcement_draws:
        draws["enforcement"].attrs["claimed_enforcement"] = float(data.attrs["claimed_enforcement"])
    return Findings(
        table=table,
        draws=draws,
        warnings=warnings,
        convergence=fitted.convergence,
        prob=prob,
    )


#: Share of draws with the hidden share at its floor (reachable ≥ 1) above which it is reported.
HIDDEN_SHARE_FLOOR_WARNING = 0.5


def _hidden_share_caveats(posterior: xr.Dataset, categories: list[str]) -> list[str]:
    """Categories whose hidden share sits at its floor of zero in most posterior draws.

    The capacity curve lets a category's detection reach at most ``s(θ[k] r)`` at review
    intensity ``r``, with the efficiency θ[k] pooled over categories; where the detections need
    more, the fit takes ``reachable ≥ 1`` and the hidden share is floored at zero. Zero is then
    a boundary of the model, not an estimate.
    """
    if "hidden_share" not in posterior:
        return []
    at_floor = (posterior["hidden_share"] <= 0.0).mean(SAMPLE_DIMS)
    out = []
    for cat in categories:
        share = float(at_floor.sel({CATEGORY: cat}))
        if share > HIDDEN_SHARE_FLOOR_WARNING:
            out.append(
                f"In {cat!r} the hidden share is at its floor of zero in {share:.0%} of posterior "
                "draws: its proactive detection is as high as its capacity curve allows at its "
                "review hours. Read its hidden share (and the evasion part of the attribution) "
                "as a floor of the model, not as evidence that nothing evades detection."
            )
    return out


def _add_enforcement(
    table: pd.DataFrame,
    posterior: xr.Dataset,
    submission,
    weights: xr.DataArray,
    prob: float,
    seed: int,
) -> dict[str, xr.DataArray]:
    """Append :data:`ENFORCEMENT_COLUMNS` to ``table``; return the draws behind them."""
    policy = submission.policy
    claimed = float(policy.claimed_enforcement) if policy is not None else np.nan
    if "enforcement" not in posterior:
        for column in ENFORCEMENT_COLUMNS:
            table[column] = claimed if column == "claimed_enforcement" else np.nan
        return {}
    q = posterior["enforcement"]
    offending, undetected = _trader_totals(posterior, submission.data, seed)
    share = posterior["non_enforcement_share"]
    if_enforced = (posterior["prevalence_if_enforced"] * weights).sum(PERIOD)
    for name, da in (("enforcement", q), ("undetected_traders", undetected)):
        med, low, high = _interval(da, prob)
        table[f"{name}_median"] = float(med)
        table[f"{name}_low"] = float(low)
        table[f"{name}_high"] = float(high)
        if name == "enforcement":
            table["claimed_enforcement"] = claimed
            table["p_enforcement_below_claim"] = float((q < claimed).mean(SAMPLE_DIMS))
    med, low, high = _interval(share, prob)
    table["non_enforcement_share_median"] = float(med)
    table["non_enforcement_share_low"] = float(low)
    table["non_enforcement_share_high"] = float(high)
    table["prevalence_if_enforced_median"] = _interval(if_enforced, prob)[0].values
    return {
        "enforcement": q,
        "offending_traders": offending,
        "undetected_traders": undetected,
        "non_enforcement_share": share,
        "prevalence_if_enforced": if_enforced,
    }


def _trader_totals(
    posterior: xr.Dataset, data: xr.Dataset, seed: int
) -> tuple[xr.DataArray, xr.DataArray]:
    """Posterior draws of the offending traders and of those never detected.

    Given the trader model's parameters, the ``N - n`` traders never detected follow
    ``NegativeBinomial(n, 1 - p0)`` (the exact posterior under the scale-invariant prior
    ``p(N) ∝ 1/N``; see ``docs/estimators-frequency.md``), so each posterior draw of ``p0`` gets
    one draw of ``N - n``. The draws are reproducible: their seed derives from the fit's seed.
    """
    n = trader_table(data).detected
    expected = posterior["undetected_traders_expected"]
    p0 = expected / posterior["offending_traders_expected"]
    stream = derive_seeds(seed)["posterior_predictive"]
    rng = np.random.default_rng([stream, _TRADER_STREAM])
    draws = rng.negative_binomial(n, np.clip(1.0 - p0.values, 1e-12, 1.0))
    undetected = expected.copy(data=draws.astype(float))
    return undetected + n, undetected


def _enforcement_caveats(data: xr.Dataset) -> list[str]:
    """Caveats on the repeat-offender findings when the trader table cannot support them."""
    table = trader_table(data)
    if table is None:
        return []
    out = []
    if table.past_threshold == 0:
        out.append(
            f"No trader reached the policy's strike threshold ({table.threshold}): the "
            "enforcement probability rests on its prior and the non-enforcement share is not "
            "identified."
        )
    if not (table.strikes >= 2).any():
        out.append(
            "No trader was detected more than once: the number of offending traders never "
            "detected rests on the priors of the trader model."
        )
    return out
