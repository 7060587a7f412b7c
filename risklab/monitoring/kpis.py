"""The KPIs a platform reports, set against what the fitted model says they imply.

``kpis.csv`` has columns ``kpi, period, category, value``; an empty period means the whole
fitted window, an empty category the whole platform. Each supported KPI has a model counterpart,
computed on every posterior draw (:data:`KPI_DEFINITIONS`); aggregates over categories and periods
are weighted by listings, or by illegal listings for rates *of illegal listings* (the proactive
control rate and the detection rate). The comparison says whether the reported figure lies
outside the model's posterior (at 95% one-sided) and whether the discrepancy flatters the
platform.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from risklab._analysis import check_prob, summarise
from risklab.dims import CATEGORY, DEFAULT_PROB, PERIOD
from risklab.monitoring.commitments import CommitmentError

__all__ = [
    "KPI_COLUMNS",
    "KPI_DEFINITIONS",
    "compare_kpis",
    "load_kpis",
    "reappearance_probability",
]

KPI_COLUMNS = ("kpi", "period", "category", "value")
#: Supported KPIs: (definition, higher is better, weighting, needs).
KPI_DEFINITIONS: dict[str, tuple[str, bool, str, str | None]] = {
    "proactive_control_rate": (
        "share of illegal listings caught by proactive detection",
        True,
        "illegal",
        None,
    ),
    "detection_rate": ("share of illegal listings actioned by any channel", True, "illegal", None),
    "prevalence": ("share of listings that are illegal", False, "listings", None),
    "hidden_share": (
        "share of illegal listings out of reach of proactive detection",
        False,
        "listings",
        None,
    ),
    "enforcement_rate": (
        "share of traders past the strike threshold who are suspended",
        True,
        "platform",
        "enforcement",
    ),
    "reappearance_rate": (
        "share of traders with a removed listing who post another illegal listing",
        False,
        "platform",
        "offender_mean_strikes",
    ),
}
#: One-sided posterior probability beyond which a reported figure is called outside the model.
OUTSIDE = 0.95
MAX_KPI_ROWS = 100_000


def load_kpis(path: str | os.PathLike, fitted) -> pd.DataFrame:
    """Read and validate ``kpis.csv`` against a fitted model.

    Parameters
    ----------
    path : path
    fitted : MonitoringModel or PlatformRiskModel
        Its categories, periods and components decide what is valid.

    Returns
    -------
    pandas.DataFrame
        Columns ``kpi, period, category, value`` (period/category ``""`` for the whole).

    Raises
    ------
    CommitmentError
        The message names the file, the row (line number) and the column.
    """
    source = str(path)
    try:
        frame = pd.read_csv(Path(path), dtype=str, keep_default_na=False, nrows=MAX_KPI_ROWS + 1)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CommitmentError(f"{source}: cannot be read as CSV ({exc})") from exc
    if tuple(frame.columns) != KPI_COLUMNS:
        raise CommitmentError(
            f"{source}: columns are {list(frame.columns)}; expected exactly {list(KPI_COLUMNS)}"
        )
    if len(frame) > MAX_KPI_ROWS:
        raise CommitmentError(f"{source}: more than {MAX_KPI_ROWS} rows")
    if frame.empty:
        raise CommitmentError(f"{source}: has no rows")
    data = fitted.submission.data
    periods = {str(p) for p in data[PERIOD].values}
    categories = {str(c) for c in data[CATEGORY].values}
    post_vars = set(fitted.posterior.data_vars)
    values, seen = [], set()
    for i, row in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        where = f"{source}: line {i}"
        kpi, period, category = row.kpi.strip(), row.period.strip(), row.category.strip()
        if kpi not in KPI_DEFINITIONS:
            raise CommitmentError(
                f"{where}, column 'kpi': {kpi!r} is not a supported KPI "
                f"({', '.join(KPI_DEFINITIONS)})"
            )
        needs = KPI_DEFINITIONS[kpi][3]
        if needs is not None and needs not in post_vars:
            raise CommitmentError(
                f"{where}, column 'kpi': {kpi} needs the repeat-offender part of the model "
                "(traders.csv and a [policy])"
            )
        if period and period not in periods:
            raise CommitmentError(f"{where}, column 'period': {period!r} is not a fitted period")
        if category and category not in categories:
            raise CommitmentError(f"{where}, column 'category': {category!r} is not a category")
        if category and KPI_DEFINITIONS[kpi][2] == "platform":
            raise CommitmentError(
                f"{where}, column 'category': {kpi} is platform-wide; leave category empty"
            )
        try:
            value = float(row.value)
        except ValueError:
            raise CommitmentError(
                f"{where}, column 'value': {row.value!r} is not a number"
            ) from None
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise CommitmentError(f"{where}, column 'value': {value} is not a share in [0, 1]")
        key = (kpi, period, category)
        if key in seen:
            raise CommitmentError(f"{where}: repeats kpi {kpi!r} for period/category {key[1:]}")
        seen.add(key)
        values.append((kpi, period, category, value))
    return pd.DataFrame(values, columns=list(KPI_COLUMNS))


def reappearance_probability(mean_strikes, shape, detection_rate):
    """P(a trader posts at least two illegal listings | at least one was detected).

    Under the offender model a trader's illegal listings are ``L ~ NegBin(mean μ = m / d̄,
    shape a)`` and each is detected with probability ``d̄``, so its strikes are
    ``X ~ NegBin(m, a)``. Then ``P(L ≥ 2 | X ≥ 1) = 1 − P(L = 1) · d̄ / P(X ≥ 1)`` with
    ``P(L = 1) = a · μ / (a + μ) · (a / (a + μ))^a`` and ``P(X ≥ 1) = 1 − (a / (a + m))^a``
    (before any suspension).
    """
    m = np.asarray(mean_strikes, dtype=float)
    a = np.asarray(shape, dtype=float)
    d = np.asarray(detection_rate, dtype=float)
    mu = m / d
    log_p1 = np.log(a) + np.log(mu) - np.log(a + mu) + a * (np.log(a) - np.log(a + mu))
    log_p0_strikes = a * (np.log(a) - np.log(a + m))
    return 1.0 - np.exp(log_p1 + np.log(d)) / -np.expm1(log_p0_strikes)


def _platform_units(kpi: str, data, t_idx: list[int]) -> np.ndarray | None:
    """Units behind a platform-wide KPI: traders reaching the threshold by month (enforcement
    rate, when ``enforcement.csv`` is given) or detected traders (reappearance rate)."""
    if kpi == "enforcement_rate" and "enforcement_reached" in data:
        return np.asarray(data["enforcement_reached"].values, dtype=float)[t_idx]
    if kpi == "reappearance_rate" and "traders_count" in data:
        return np.array([float(np.asarray(data["traders_count"].values).sum())])
    return None


def _kt(post, name: str) -> np.ndarray:
    var = post[name]
    dims = [d for d in (CATEGORY, PERIOD) if d in var.dims]
    arr = var.transpose("chain", "draw", *dims).values
    return arr.reshape(-1, *arr.shape[2:])


def _implied(fitted) -> dict[str, np.ndarray]:
    """Per-draw model counterparts, (S, K, T) or (S, T) for platform-wide ones."""
    post = fitted.posterior
    data = fitted.submission.data
    pi = _kt(post, "prevalence")
    d_pro = _kt(post, "detection_rate")
    out = {"prevalence": pi, "proactive_control_rate": d_pro}
    miss = 1.0 - d_pro
    if "channel_ratio" in post:
        mean_d = d_pro.mean(axis=2)
        for channel in post["secondary_channel"].values:
            ratio = _kt(post.sel(secondary_channel=channel), "channel_ratio")
            miss = miss * np.exp(-ratio * mean_d)[:, :, None]
    out["detection_rate"] = 1.0 - miss
    if "hidden_share_by_period" in post:
        out["hidden_share"] = _kt(post, "hidden_share_by_period")
    else:
        out["hidden_share"] = np.broadcast_to(_kt(post, "hidden_share")[:, :, None], pi.shape)
    n_t = data.sizes[PERIOD]
    if "enforcement_by_period" in post:
        out["enforcement_rate"] = _kt(post, "enforcement_by_period")
    elif "enforcement" in post:
        out["enforcement_rate"] = np.repeat(_kt(post, "enforcement")[:, None], n_t, axis=1)
    if "offender_mean_strikes" in post:
        rate = reappearance_probability(
            _kt(post, "offender_mean_strikes"),
            _kt(post, "offender_shape"),
            _kt(post, "offender_detection_rate"),
        )
        out["reappearance_rate"] = np.repeat(rate[:, None], n_t, axis=1)
    return out


def compare_kpis(
    fitted, kpis: pd.DataFrame, *, prob: float = DEFAULT_PROB, random_seed: int = 0
) -> pd.DataFrame:
    """Set each reported KPI against its posterior predictive under the model.

    A reported rate is a realised share of finitely many units, so the model's counterpart is
    the posterior predictive of that share, not the expected rate: each draw's rate plus binomial
    noise over the units behind the figure — listings for prevalence, illegal listings
    (``π · listings``) for the proactive control and detection rates, traders reaching the
    threshold for the enforcement rate (which is also weighted by them over months, when
    ``enforcement.csv`` is given), detected traders for the reappearance rate. The hidden share
    has no realised counterpart and is compared with its posterior.

    Parameters
    ----------
    fitted : MonitoringModel or PlatformRiskModel
        Fitted model.
    kpis : pandas.DataFrame
        From :func:`load_kpis`.
    prob : float
        Mass of the equal-tailed intervals.
    random_seed : int
        Seed of the binomial noise.

    Returns
    -------
    pandas.DataFrame
        Columns ``kpi, period, category, reported, implied_median, implied_low, implied_high,
        p_implied_below_reported, verdict, flatters``.
    """
    prob = check_prob(prob)
    rng = np.random.default_rng([random_seed, 17])
    data = fitted.submission.data
    periods = [str(p) for p in data[PERIOD].values]
    categories = [str(c) for c in data[CATEGORY].values]
    listings = data["listings"].transpose(CATEGORY, PERIOD).values.astype(float)
    implied = _implied(fitted)
    pi = implied["prevalence"]
    rows = []
    for row in kpis.itertuples(index=False):
        _, higher_better, weighting, _ = KPI_DEFINITIONS[row.kpi]
        t_idx = [periods.index(row.period)] if row.period else list(range(len(periods)))
        values = implied[row.kpi]
        if weighting == "platform":
            units = _platform_units(row.kpi, data, t_idx)
            if row.kpi == "enforcement_rate" and units is not None and units.sum() > 0:
                draws = (values[:, t_idx] * units).sum(axis=1) / units.sum()
            else:
                draws = values[:, t_idx].mean(axis=1)
            n = None if units is None else np.full(draws.shape, float(units.sum()))
        else:
            k_idx = (
                [categories.index(row.category)] if row.category else list(range(len(categories)))
            )
            sub = values[:, k_idx][:, :, t_idx]
            weights = listings[np.ix_(k_idx, t_idx)][None, :, :]
            if weighting == "illegal":
                weights = weights * pi[:, k_idx][:, :, t_idx]
            draws = (sub * weights).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
            n = (
                None
                if row.kpi == "hidden_share"
                else weights.sum(axis=(1, 2)) * np.ones(len(draws))
            )
        if n is not None:  # the realised share of finitely many units
            trials = np.maximum(np.round(n), 1).astype(np.int64)
            draws = rng.binomial(trials, np.clip(draws, 0.0, 1.0)) / trials
        s = summarise(draws, prob)
        p_below = float(np.mean(draws < row.value))
        if p_below >= OUTSIDE:
            verdict = "reported above the model"
        elif p_below <= 1.0 - OUTSIDE:
            verdict = "reported below the model"
        else:
            verdict = "consistent"
        flatters = (verdict == "reported above the model" and higher_better) or (
            verdict == "reported below the model" and not higher_better
        )
        rows.append(
            {
                "kpi": row.kpi,
                "period": row.period,
                "category": row.category,
                "reported": float(row.value),
                "implied_median": float(s["median"]),
                "implied_low": float(s["low"]),
                "implied_high": float(s["high"]),
                "p_implied_below_reported": p_below,
                "verdict": verdict,
                "flatters": bool(flatters),
            }
        )
    return pd.DataFrame(rows)
