"""Simulate a marketplace with known truth, in the submission format.

The generative process is the one :class:`risklab.PlatformRiskModel` assumes (DESIGN.md §3), so a
fit on simulated data can be checked against the truth: prevalence per category and period,
review capacity → proactive detection, the hidden share out of reach of proactive detection,
secondary channels, random audits, purposive test purchases with a selection uplift, and planted
test listings. The platform's claims mimic how platforms score risk: the claimed prevalence is
the detected share.

With ``traders=True`` the marketplace also has repeat offenders (``traders.csv`` and a
``[policy]`` section): offending traders with gamma-distributed rates post illegal listings, each
detected with the platform-wide detection probability; a trader reaching the policy's strike
threshold is suspended with the enforcement probability and then posts nothing more. Trader
randomness comes from its own stream (``numpy.random.default_rng([seed, 1])``), so switching it
on leaves every other table of the same seed unchanged (:mod:`risklab.data.synthetic_traders`).

Keyword hooks impose known per-cell effects (the truth behind binding commitments, see
:mod:`risklab.data.synthetic_commitments`): shifts of logit prevalence, of the logit detection
level, of log efficiency, of log review intensity and of logit enforcement, and the periods with
regulator evidence. They draw no random numbers, so a call that leaves them unset gives exactly
the marketplace it gave before they existed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w
from scipy.special import expit, logit

from risklab.data.synthetic_traders import simulate_traders, simulate_traders_by_period
from risklab.dims import CHANNELS

__all__ = [
    "DEFAULT_CATEGORIES",
    "DEFAULT_SCALE",
    "SimulatedMarketplace",
    "simulate_marketplace",
    "simulate_traders",
]

#: Product categories of the default simulated marketplace.
DEFAULT_CATEGORIES = (
    "medicines",
    "dietary_supplements",
    "adult_products",
    "toys",
    "cosmetics",
    "electronics",
    "fashion_counterfeits",
    "baby_products",
    "jewellery",
    "pet_products",
)

#: A five-band scale on the share of checked listings found non-compliant (as published by one
#: marketplace): below 0.2% "very unlikely", ..., 0.6% or more "almost certain".
DEFAULT_SCALE: dict[str, Any] = {
    "name": "likelihood of non-compliance",
    "thresholds": [0.002, 0.003, 0.004, 0.006],
    "labels": ["very unlikely", "unlikely", "possible", "likely", "almost certain"],
}


@dataclass
class SimulatedMarketplace:
    """A simulated submission, the regulator's evidence, and the truth behind both.

    Attributes
    ----------
    toml : dict
        Contents of ``submission.toml``.
    tables : dict of str to DataFrame
        The platform's tables (``listings``, ``detections``, ...).
    evidence : dict of str to DataFrame
        The regulator's tables (``audits``, ``planted``), kept apart as an evidence directory.
    truth : dict
        Every true parameter, JSON-safe (see :func:`simulate_marketplace`).
    commitments_toml : dict, optional
        Contents of a commitments file (``{"commitment": [...]}``), for a marketplace simulated
        under binding commitments (:mod:`risklab.data.synthetic_commitments`).
    kpis : DataFrame, optional
        KPIs the platform reports (``kpi, period, category, value``).
    """

    toml: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    evidence: dict[str, pd.DataFrame] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)
    commitments_toml: dict[str, Any] | None = None
    kpis: pd.DataFrame | None = None

    def to_submission(self, *, include_evidence: bool = True):
        """Validate and return a :class:`risklab.data.Submission` (evidence rows added)."""
        from risklab.data.submission import Submission

        frames = {name: df for name, df in self.tables.items()}
        return Submission.from_dataframes(
            platform=self.toml["platform"],
            scale=self.toml["scale"],
            claims=self.toml["claims"],
            policy=self.toml.get("policy"),
            evidence=dict(self.evidence) if include_evidence and self.evidence else None,
            **frames,
        )

    def write(
        self,
        directory: str | os.PathLike,
        *,
        evidence_directory: str | os.PathLike | None = None,
        truth: bool = True,
        monitoring_directory: str | os.PathLike | None = None,
    ) -> Path:
        """Write ``submission.toml`` and the CSV tables (plus evidence and ``truth.json``).

        Parameters
        ----------
        directory : path
            The submission directory (created if needed).
        evidence_directory : path, optional
            Where to write the regulator's evidence tables; default ``<directory>-evidence``.
        truth : bool
            Also write ``truth.json`` into the submission directory.
        monitoring_directory : path, optional
            Where to write ``commitments.toml`` and ``kpis.csv`` when the marketplace has them
            (they are not submission files); default ``<directory>-monitoring``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "submission.toml").write_text(tomli_w.dumps(self.toml), encoding="utf-8")
        for name, table in self.tables.items():
            table.to_csv(directory / f"{name}.csv", index=False, lineterminator="\n")
        if self.evidence:
            evidence_dir = Path(evidence_directory or f"{directory}-evidence")
            evidence_dir.mkdir(parents=True, exist_ok=True)
            for name, table in self.evidence.items():
                table.to_csv(evidence_dir / f"{name}.csv", index=False, lineterminator="\n")
        if truth:
            (directory / "truth.json").write_text(
                json.dumps(self.truth, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
        if self.commitments_toml is not None or self.kpis is not None:
            monitoring_dir = Path(monitoring_directory or f"{directory}-monitoring")
            monitoring_dir.mkdir(parents=True, exist_ok=True)
            if self.commitments_toml is not None:
                (monitoring_dir / "commitments.toml").write_text(
                    tomli_w.dumps(self.commitments_toml), encoding="utf-8"
                )
            if self.kpis is not None:
                self.kpis.to_csv(monitoring_dir / "kpis.csv", index=False, lineterminator="\n")
        return directory


def _periods(start: str, n: int) -> list[str]:
    first = pd.Period(start, freq="M")
    return [str(first + i) for i in range(n)]


def _shift(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """A validated float array of ``shape`` (None stays None)."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=float)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _saturation(x):
    return -np.expm1(-x)


#: Largest proactive detection probability under detection hooks (as in the capacity component).
_MAX_RATE = 1.0 - 1e-9


def _detection_by_period(
    reachable0: np.ndarray,
    efficiency: np.ndarray,
    r: np.ndarray,
    level_shift: np.ndarray | None,
    efficiency_shift: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The monitoring spec's detection equations, per category and period.

    ``level_k = reachable0_k · s(θ_k r̄_k)`` is the baseline detection level at the category's
    mean observed intensity; ``level = expit(logit(level_k) + level_shift)``, ``reachable =
    level / s(θ_k r̄_k)``, ``θ[k, t] = θ_k · exp(efficiency_shift)`` and ``d_pro =
    min(reachable · s(θ[k, t] r), 1 − 10⁻⁹)`` — as the model computes it (risklab.models
    components capacity): the hidden share ``1 − min(1, reachable)`` is floored at zero but the
    rate is not capped at ``s(θ r)``. Cells without a shift keep the baseline values
    exactly (no round trip through the link), so zero shifts leave ``d_pro`` bit-identical.
    """
    shape = r.shape
    at_mean = _saturation(efficiency * r.mean(axis=1))
    level0 = reachable0 * at_mean
    level = np.broadcast_to(level0[:, None], shape).copy()
    reachable = np.broadcast_to(reachable0[:, None], shape).copy()
    if level_shift is not None:
        moved = level_shift != 0
        shifted = expit(logit(level0)[:, None] + level_shift)
        level[moved] = shifted[moved]
        reach = shifted / at_mean[:, None]
        reachable[moved] = reach[moved]
    theta = np.broadcast_to(efficiency[:, None], shape).copy()
    if efficiency_shift is not None:
        theta = theta * np.exp(efficiency_shift)
    d_pro = np.minimum(reachable * _saturation(theta * r), _MAX_RATE)
    return {"d_pro": d_pro, "level": level, "reachable": reachable, "efficiency": theta}


def simulate_marketplace(
    seed: int = 0,
    *,
    categories: tuple[str, ...] | list[str] = DEFAULT_CATEGORIES,
    n_periods: int = 24,
    start: str = "2024-01",
    total_listings: float = 1e8,
    channels: tuple[str, ...] | list[str] = CHANNELS,
    prevalence_mean: float = 0.008,
    prevalence_category_sd: float = 0.6,
    prevalence_trend_mu: float = 0.2,
    prevalence_trend_sd: float = 0.2,
    prevalence_cell_sd: float = 0.15,
    detection_ceiling: float = 0.85,
    efficiency_log_mu: float = 0.0,
    efficiency_log_sd: float = 0.4,
    hidden_share_logit_mu: float = -1.5,
    hidden_share_logit_sd: float = 0.5,
    review_intensity: float = 1.0,
    thin_capacity: dict[str, float] | None = None,
    channel_ratio: dict[str, float] | None = None,
    audited_categories: list[str] | None = None,
    audit_periods: int = 3,
    audit_size: int = 400,
    purposive: dict[str, int] | None = None,
    purposive_uplift: float = 0.8,
    planted_categories: list[str] | None = None,
    planted_periods: int = 2,
    planted_size: int = 100,
    scale: dict[str, Any] | None = None,
    claimed_detection_rate: float | None = 0.9,
    platform_name: str = "Simulated Marketplace",
    traders: bool = False,
    n_offending_traders: int = 20_000,
    offender_shape: float = 0.6,
    offender_mean_listings: float = 4.0,
    enforcement: float = 0.4,
    strike_threshold: int = 3,
    claimed_enforcement: float = 0.95,
    prevalence_shift: Any = None,
    detection_level_shift: Any = None,
    efficiency_shift: Any = None,
    review_intensity_shift: Any = None,
    enforcement_shift: Any = None,
    evidence_periods: Sequence[int] | None = None,
    trader_periods: bool = False,
) -> SimulatedMarketplace:
    """Simulate a marketplace with known truth.

    Parameters
    ----------
    seed : int
        Seed of every random draw; the same seed gives the same marketplace.
    categories : sequence of str
        Product categories.
    n_periods, start : int, str
        Number of monthly periods and the first month (``"YYYY-MM"``).
    total_listings : float
        Active listings summed over all categories and periods.
    channels : sequence of str
        Detection channels to report (``proactive`` should be among them).
    prevalence_mean, prevalence_category_sd : float
        Prevalence: typical level, and spread of categories (logit sd).
    prevalence_trend_mu, prevalence_trend_sd, prevalence_cell_sd : float
        Mean and sd of the trend over the whole period (logit), and cell-level noise (logit sd).
    detection_ceiling, efficiency_log_mu, efficiency_log_sd : float
        Capacity curve ``d = (1 - h) · ceiling · (1 - exp(-θ r))``, ``log θ ~ N(mu, sd)``.
    hidden_share_logit_mu, hidden_share_logit_sd : float
        Hidden share ``h`` per category, logit-normal.
    review_intensity : float
        Typical review hours per 1000 listings.
    thin_capacity : dict, optional
        Categories with their (lower) review intensity; default medicines 0.15, dietary
        supplements 0.2, toys 0.25 when those categories exist.
    channel_ratio : dict, optional
        Rate of each secondary channel relative to the category's mean proactive rate.
    audited_categories : list of str, optional
        Categories with random audits (in ``audit_periods`` periods of ``audit_size`` checks);
        default: the first three categories.
    purposive : dict, optional
        Purposive test purchases per period, by category; default toys and cosmetics, 60 each,
        in the last ``audit_periods`` periods.
    purposive_uplift : float
        True selection uplift (logit) of purposive samples.
    planted_categories : list of str, optional
        Categories with planted test listings (``planted_size`` in each of the last
        ``planted_periods`` periods); default toys, cosmetics and electronics when present.
    scale : dict, optional
        The platform's declared risk scale; default :data:`DEFAULT_SCALE`.
    claimed_detection_rate : float or None
        The proactive detection rate the platform claims.
    platform_name : str
        Name written into ``submission.toml``.
    traders : bool, default False
        Also simulate repeat offenders: a ``traders`` table and a ``[policy]`` section.
    n_offending_traders : int
        Traders who post illegal listings during the submission period (detected or not).
    offender_shape : float
        Shape ``a`` of the gamma distribution of offending rates across traders (smaller is
        more heterogeneous).
    offender_mean_listings : float
        Mean number of illegal listings a trader would post over the whole period if never
        suspended (``μ_L``).
    enforcement : float
        Probability ``q`` that a trader reaching the strike threshold is suspended.
    strike_threshold : int
        The policy's strike threshold ``s`` (written to ``[policy]``).
    claimed_enforcement : float
        The enforcement probability the platform claims (written to ``[policy]``).
    prevalence_shift : array-like (category × period), optional
        Added to logit prevalence.
    detection_level_shift : array-like (category × period), optional
        Added to the logit detection level (the hidden-share lever). With this or
        ``efficiency_shift`` proactive detection follows the monitoring spec:
        ``level_k = (1 − h_k) · ceiling · s(θ_k r̄_k)`` (``r̄_k`` the category's mean observed
        intensity), ``level = expit(logit level_k + shift)``, ``reachable = level /
        s(θ_k r̄_k)``, ``d_pro = reachable · s(θ_k e^{efficiency_shift} r)`` (equal to the
        default curve when the shifts are zero).
    efficiency_shift : array-like (category × period), optional
        Added to log efficiency θ.
    review_intensity_shift : array-like (category × period), optional
        Review intensity (hence review hours) is multiplied by ``exp(shift)``.
    enforcement_shift : array-like (period), optional
        Added to logit enforcement: ``q[t] = expit(logit q + shift[t])`` for traders reaching the
        strike threshold in period ``t`` (needs ``traders=True``; implies ``trader_periods``).
    evidence_periods : sequence of int, optional
        Period indices with random audits, purposive purchases and planted listings; default
        the last ``audit_periods`` (audits and purposive) and ``planted_periods`` (planted).
    trader_periods : bool, default False
        Place the traders' listings in time and add the ``enforcement`` table (``period,
        reached, suspended``; see
        :func:`risklab.data.synthetic_traders.simulate_traders_by_period`). Needs ``traders``.

    Returns
    -------
    SimulatedMarketplace
        Tables and claims, evidence, and ``truth`` with keys ``prevalence`` (category × period),
        ``prevalence_category`` (listings-weighted), ``detection_rate``, ``hidden_share``,
        ``efficiency``, ``detection_ceiling``, ``channel_ratio``, ``claimed_prevalence``,
        ``claimed_band``, ``true_band``, ``underestimation`` and the generating arguments. With
        ``traders=True`` also ``offending_traders``, ``detected_traders``,
        ``undetected_traders``, ``enforcement``, ``enforcement_realised``,
        ``offender_detection_rate``, ``offender_mean_strikes``, ``offender_shape``,
        ``offender_mean_listings``, ``listings_after_threshold_share``,
        ``non_enforcement_share`` (and ``..._realised``), ``unenforced_listings_share``,
        ``repeat_offender_share`` and ``prevalence_if_enforced`` (category × period); the
        expected values under the true parameters are the plain keys (what the model
        estimates), the outcomes of this draw carry ``_realised``. When any hook above is
        set, also the truth by period: ``hidden_share_by_period`` (``1 − reachable``, which is
        ``h`` when ``detection_ceiling`` is one), ``efficiency_by_period``,
        ``detection_level_by_period`` and (with traders) ``enforcement_by_period``.
    """
    rng = np.random.default_rng(seed)
    categories = list(categories)
    channels = [c for c in CHANNELS if c in channels]
    k, t = len(categories), n_periods
    prevalence_shift = _shift(prevalence_shift, (k, t), "prevalence_shift")
    level_shift = _shift(detection_level_shift, (k, t), "detection_level_shift")
    efficiency_shift = _shift(efficiency_shift, (k, t), "efficiency_shift")
    review_shift = _shift(review_intensity_shift, (k, t), "review_intensity_shift")
    enforcement_shift = _shift(enforcement_shift, (t,), "enforcement_shift")
    trader_periods = bool(trader_periods) or enforcement_shift is not None
    if trader_periods and not traders:
        raise ValueError("enforcement_shift and trader_periods need traders=True")
    if evidence_periods is not None:
        evidence_periods = [int(j) for j in evidence_periods]
        if any(not 0 <= j < t for j in evidence_periods):
            raise ValueError(f"evidence_periods must be period indices in 0..{t - 1}")
        evidence_periods = sorted(set(evidence_periods))
    monitored = trader_periods or any(
        x is not None
        for x in (prevalence_shift, level_shift, efficiency_shift, review_shift, evidence_periods)
    )
    periods = _periods(start, t)
    scale = dict(scale or DEFAULT_SCALE)
    defaults_thin = {"medicines": 0.15, "dietary_supplements": 0.2, "toys": 0.25}
    thin = thin_capacity if thin_capacity is not None else defaults_thin
    ratios = {"notice": 0.25, "trusted_flagger": 0.08, "authority": 0.02}
    ratios.update(channel_ratio or {})
    audited = categories[:3] if audited_categories is None else audited_categories
    purposive = (
        {c: 60 for c in ("toys", "cosmetics") if c in categories}
        if purposive is None
        else purposive
    )
    if planted_categories is None:
        planted_categories = [c for c in ("toys", "cosmetics", "electronics") if c in categories]

    # Listings: category weights × mild growth over time.
    weights = rng.dirichlet(np.full(k, 4.0))
    growth = np.linspace(0.9, 1.1, t)
    share = weights[:, None] * growth[None, :]
    listings = np.maximum(1, np.round(share / share.sum() * total_listings)).astype(np.int64)

    # Capacity and detection.
    intensity = np.full(k, review_intensity) * np.exp(rng.normal(0, 0.2, k))
    for cat, value in thin.items():
        if cat in categories:
            intensity[categories.index(cat)] = value
    r = intensity[:, None] * np.exp(rng.normal(0, 0.1, (k, t)))
    if review_shift is not None:
        r = r * np.exp(review_shift)
    review_hours = np.round(r * listings / 1000.0, 1)
    r = review_hours / listings * 1000.0
    efficiency = np.exp(rng.normal(efficiency_log_mu, efficiency_log_sd, k))
    hidden = expit(rng.normal(hidden_share_logit_mu, hidden_share_logit_sd, k))
    if monitored:
        by_period = _detection_by_period(
            (1 - hidden) * detection_ceiling, efficiency, r, level_shift, efficiency_shift
        )
    if level_shift is None and efficiency_shift is None:
        d_pro = (1 - hidden)[:, None] * detection_ceiling * -np.expm1(-efficiency[:, None] * r)
    else:
        d_pro = by_period["d_pro"]

    # Prevalence.
    position = np.zeros(t) if t == 1 else np.arange(t) / (t - 1) - 0.5
    alpha = rng.normal(0, prevalence_category_sd, k)
    trend = rng.normal(prevalence_trend_mu, prevalence_trend_sd, k)
    logit_pi = (
        logit(prevalence_mean)
        + alpha[:, None]
        + trend[:, None] * position[None, :]
        + rng.normal(0, prevalence_cell_sd, (k, t))
    )
    if prevalence_shift is not None:
        logit_pi = logit_pi + prevalence_shift
    pi = expit(logit_pi)

    # Detections per channel.
    rates = {"proactive": d_pro}
    for channel in channels:
        if channel != "proactive":
            rate_k = -np.expm1(-ratios[channel] * d_pro.mean(axis=1))
            rates[channel] = np.broadcast_to(rate_k[:, None], (k, t))
    rows = []
    detected_total = np.zeros((k, t), dtype=np.int64)
    for i, cat in enumerate(categories):
        for j, per in enumerate(periods):
            for channel in channels:
                y = int(rng.binomial(listings[i, j], pi[i, j] * rates[channel][i, j]))
                detected_total[i, j] += y
                rows.append((cat, per, channel, y))
    detections = pd.DataFrame(rows, columns=["category", "period", "channel", "detected"])
    listings_df = pd.DataFrame(
        [
            (cat, per, int(listings[i, j]), float(review_hours[i, j]))
            for i, cat in enumerate(categories)
            for j, per in enumerate(periods)
        ],
        columns=["category", "period", "listings", "review_hours"],
    )

    # Regulator evidence.
    audit_rows = []
    last = range(max(0, t - audit_periods), t) if evidence_periods is None else evidence_periods
    for cat in audited:
        i = categories.index(cat)
        for j in last:
            z = int(rng.binomial(audit_size, pi[i, j]))
            audit_rows.append((cat, periods[j], "random", audit_size, z))
    for cat, size in purposive.items():
        i = categories.index(cat)
        for j in last:
            z = int(rng.binomial(size, expit(logit_pi[i, j] + purposive_uplift)))
            audit_rows.append((cat, periods[j], "purposive", int(size), z))
    planted_rows = []
    for cat in planted_categories:
        i = categories.index(cat)
        for j in range(max(0, t - planted_periods), t) if evidence_periods is None else last:
            caught = int(rng.binomial(planted_size, d_pro[i, j]))
            planted_rows.append((cat, periods[j], planted_size, caught))
    evidence = {}
    if audit_rows:
        evidence["audits"] = pd.DataFrame(
            audit_rows, columns=["category", "period", "design", "sampled", "illegal"]
        )
    if planted_rows:
        evidence["planted"] = pd.DataFrame(
            planted_rows, columns=["category", "period", "planted", "caught"]
        )

    # Claims: the detected share, banded on the platform's own scale.
    thresholds = np.asarray(scale["thresholds"], dtype=float)
    labels = list(scale["labels"])
    claimed = detected_total.sum(axis=1) / listings.sum(axis=1)
    claimed = np.maximum(claimed, 1e-6)
    claimed_band = [labels[int(b)] for b in np.searchsorted(thresholds, claimed, side="right")]
    true_prev = (pi * listings).sum(axis=1) / listings.sum(axis=1)
    true_band = [labels[int(b)] for b in np.searchsorted(thresholds, true_prev, side="right")]
    claims = []
    for i, cat in enumerate(categories):
        claim = {
            "category": cat,
            "prevalence": float(round(claimed[i], 8)),
            "band": claimed_band[i],
        }
        if claimed_detection_rate is not None:
            claim["detection_rate"] = float(claimed_detection_rate)
        claims.append(claim)
    toml = {
        "platform": {"name": platform_name, "period_start": periods[0], "period_end": periods[-1]},
        "scale": {
            "name": scale["name"],
            "thresholds": [float(x) for x in thresholds],
            "labels": labels,
        },
        "claims": claims,
    }

    def by_category(values) -> dict[str, Any]:
        return {cat: np.asarray(values[i]).tolist() for i, cat in enumerate(categories)}

    truth = {
        "seed": int(seed),
        "categories": categories,
        "periods": periods,
        "prevalence": by_category(pi),
        "prevalence_category": by_category(true_prev),
        "detection_rate": by_category(d_pro),
        "review_intensity": by_category(r),
        "hidden_share": by_category(hidden),
        "efficiency": by_category(efficiency),
        "detection_ceiling": detection_ceiling,
        "channel_ratio": {c: ratios[c] for c in channels if c != "proactive"},
        "purposive_uplift": purposive_uplift,
        "claimed_prevalence": by_category(claimed),
        "claimed_band": dict(zip(categories, claimed_band, strict=True)),
        "true_band": dict(zip(categories, true_band, strict=True)),
        "underestimation": by_category(true_prev / claimed),
    }
    if monitored:
        truth["hidden_share_by_period"] = by_category(1.0 - np.minimum(by_period["reachable"], 1.0))
        truth["efficiency_by_period"] = by_category(by_period["efficiency"])
        truth["detection_level_by_period"] = by_category(by_period["level"])
    if evidence_periods is not None:
        truth["evidence_periods"] = [periods[j] for j in evidence_periods]
    tables = {"listings": listings_df, "detections": detections}
    if traders:
        # Platform-wide probability that an illegal listing is detected by at least one channel
        # (channels independent), weighted by the illegal listings of each cell.
        union = 1.0 - np.prod([1.0 - np.asarray(rates[c]) for c in channels], axis=0)
        illegal = pi * listings
        d_bar = float((illegal * union).sum() / illegal.sum())
        trader_args = dict(
            n_offending_traders=n_offending_traders,
            offender_shape=offender_shape,
            offender_mean_listings=offender_mean_listings,
            detection_rate=d_bar,
            enforcement=enforcement,
            strike_threshold=strike_threshold,
            claimed_enforcement=claimed_enforcement,
        )
        trader_rng = np.random.default_rng([seed, 1])
        if trader_periods:
            q_t = np.full(t, float(enforcement))
            if enforcement_shift is not None:
                moved = enforcement_shift != 0
                q_t[moved] = expit(logit(enforcement) + enforcement_shift[moved])
            table, enforcement_table, trader_truth = simulate_traders_by_period(
                trader_rng, periods=periods, enforcement_by_period=q_t, **trader_args
            )
            tables["traders"] = table
            tables["enforcement"] = enforcement_table
        else:
            table, trader_truth = simulate_traders(trader_rng, **trader_args)
            tables["traders"] = table
        toml["policy"] = {
            "strike_threshold": int(strike_threshold),
            "claimed_enforcement": float(claimed_enforcement),
        }
        share = trader_truth["non_enforcement_share"]
        trader_truth["prevalence_if_enforced"] = by_category(pi * (1 - share) / (1 - pi * share))
        truth.update(trader_truth)
    return SimulatedMarketplace(toml=toml, tables=tables, evidence=evidence, truth=truth)
