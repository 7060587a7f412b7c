"""Simulate a marketplace under binding commitments with known effects (monitoring, issue #9).

A :class:`SimulatedCommitment` moves one quantity (prevalence, hidden share, efficiency, review
capacity or enforcement) from its effective period on, additively on the quantity's link scale
(``docs/monitoring.md``)::

    g(Q[k, t]) = g(Q_baseline[k, t])
                 + Σ_j 1{k covered by j} (level_j · step_j(t) + slope_j · ramp_j(t))

with ``step(t) = 1{t >= t0}`` and ``ramp(t) = max(0, t − t0) / 12`` (years since ``t0``).
:func:`simulate_monitored_marketplace` turns the commitments into the shift hooks of
:func:`risklab.data.synthetic.simulate_marketplace`, spreads the regulator's evidence over the
whole window (so there is evidence before and after every effective date), and records the truth
a monitoring analysis should recover: for every commitment the aggregate of its quantity per
period, the same without that commitment (its counterfactual) and their difference (its effect).
It also writes the commitments file and the KPIs the platform would report.

Aggregates over a commitment's categories are listings-weighted; enforcement is the
platform-wide suspension probability ``q[t]``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from risklab.data.synthetic import SimulatedMarketplace, _periods, simulate_marketplace

__all__ = [
    "COMMITMENT_QUANTITIES",
    "SimulatedCommitment",
    "hold_out_last_periods",
    "simulate_monitored_marketplace",
]

#: Quantities a commitment can move, with the ``simulate_marketplace`` hook that shifts each.
COMMITMENT_QUANTITIES: dict[str, str] = {
    "prevalence": "prevalence_shift",
    "hidden_share": "detection_level_shift",
    "efficiency": "efficiency_shift",
    "review_capacity": "review_intensity_shift",
    "enforcement": "enforcement_shift",
}
_HOOKS = (*COMMITMENT_QUANTITIES.values(), "trader_periods")


@dataclass(frozen=True)
class SimulatedCommitment:
    """A binding commitment with a known effect, for :func:`simulate_monitored_marketplace`.

    Attributes
    ----------
    name : str
        Unique, non-empty name.
    quantity : str
        One of :data:`COMMITMENT_QUANTITIES`.
    effective : str or int
        First period in force: a ``"YYYY-MM"`` label or a period index (not the first period).
    level_change : float
        Immediate change on the link scale (logit for prevalence, the detection level behind
        the hidden share, and enforcement; log for efficiency and review capacity). For
        ``hidden_share`` a positive change raises the detection level (lowers the hidden share).
    slope_change : float
        Change of slope on the link scale, per year since ``effective``.
    categories : sequence of str, optional
        Covered categories; default all (ignored for ``enforcement``, which is platform-wide).
    target : float, optional
        The promised value of the aggregate quantity (written to the commitments file).
    target_by : str or int, optional
        Period by which the target is promised; default the last period.
    description : str, optional
        Free text for the commitments file.
    level_change_sd : float
        Spread of the level change over the covered categories: category *k* gets
        ``level_change + level_change_sd · z_k``, ``z_k ~ Normal(0, 1)`` from the stream
        ``numpy.random.default_rng([seed, 7, j])`` (*j* the commitment's position). Zero (the
        default) moves every category alike.
    """

    name: str
    quantity: str
    effective: str | int
    level_change: float = 0.0
    slope_change: float = 0.0
    categories: Sequence[str] | None = None
    target: float | None = None
    target_by: str | int | None = None
    description: str | None = None
    level_change_sd: float = 0.0


def _period_index(value: str | int, periods: list[str], what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        index = int(value)
        if not 0 <= index < len(periods):
            raise ValueError(f"{what} {index} is outside the periods 0..{len(periods) - 1}")
        return index
    if isinstance(value, str):
        if value not in periods:
            raise ValueError(
                f"{what} {value!r} is not a period of the marketplace "
                f"({periods[0]} to {periods[-1]})"
            )
        return periods.index(value)
    raise ValueError(f"{what} must be a period label 'YYYY-MM' or an index, got {value!r}")


@dataclass(frozen=True)
class _Resolved:
    spec: SimulatedCommitment
    t0: int
    categories: list[str] | None  # None for enforcement
    terms: np.ndarray  # (K, T), or (T,) for enforcement: level·step + slope·ramp
    by: int | None


def _resolve(
    commitments: Sequence[SimulatedCommitment],
    categories: list[str],
    periods: list[str],
    traders: bool,
    seed: int = 0,
) -> list[_Resolved]:
    t = len(periods)
    names: set[str] = set()
    out = []
    for c in commitments:
        if not isinstance(c, SimulatedCommitment):
            raise ValueError(f"commitments must be SimulatedCommitment objects, got {c!r}")
        where = f"commitment {c.name!r}"
        if not isinstance(c.name, str) or not c.name.strip():
            raise ValueError("commitment name must be a non-empty string")
        if c.name in names:
            raise ValueError(f"{where}: duplicate name")
        names.add(c.name)
        if c.quantity not in COMMITMENT_QUANTITIES:
            raise ValueError(
                f"{where}: unknown quantity {c.quantity!r}; "
                f"known: {', '.join(COMMITMENT_QUANTITIES)}"
            )
        t0 = _period_index(c.effective, periods, f"{where}: effective")
        if t0 == 0:
            raise ValueError(
                f"{where}: effective must come after the first period {periods[0]} "
                "(the effect needs a period before it)"
            )
        for label, value in (("level_change", c.level_change), ("slope_change", c.slope_change)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{where}: {label} must be a finite number, got {value!r}")
        if c.target is not None and (
            not isinstance(c.target, (int, float)) or not math.isfinite(c.target)
        ):
            raise ValueError(f"{where}: target must be a finite number, got {c.target!r}")
        by = None if c.target_by is None else _period_index(c.target_by, periods, f"{where}: by")
        if by is not None and c.target is None:
            raise ValueError(f"{where}: target_by given without a target")
        step = (np.arange(t) >= t0).astype(float)
        ramp = np.maximum(0, np.arange(t) - t0) / 12.0
        terms = float(c.level_change) * step + float(c.slope_change) * ramp
        if c.quantity == "enforcement":
            if not traders:
                raise ValueError(f"{where}: an enforcement commitment needs traders=True")
            out.append(_Resolved(c, t0, None, terms, by))
            continue
        covered = list(categories) if c.categories is None else [str(x) for x in c.categories]
        if isinstance(c.categories, str) or not covered:
            raise ValueError(f"{where}: categories must be a non-empty list of categories")
        unknown = [x for x in covered if x not in categories]
        if unknown:
            raise ValueError(
                f"{where}: unknown categories {unknown}; known: {', '.join(categories)}"
            )
        mask = np.isin(categories, covered).astype(float)
        cell_terms = mask[:, None] * terms[None, :]
        if c.level_change_sd:
            if not math.isfinite(c.level_change_sd) or c.level_change_sd < 0:
                raise ValueError(f"{where}: level_change_sd must be finite and >= 0")
            j = list(commitments).index(c)
            z = np.random.default_rng([int(seed), 7, j]).standard_normal(len(categories))
            cell_terms = cell_terms + (mask * c.level_change_sd * z)[:, None] * step[None, :]
        out.append(_Resolved(c, t0, covered, cell_terms, by))
    return out


def _wide(truth: dict[str, Any], key: str) -> np.ndarray:
    return np.array([truth[key][c] for c in truth["categories"]], dtype=float)


def _remove(value: np.ndarray, terms: np.ndarray, link: str) -> np.ndarray:
    """``value`` with ``terms`` taken off its link scale (cells without terms kept exactly)."""
    moved = expit(logit(value) - terms) if link == "logit" else value * np.exp(-terms)
    return np.where(terms == 0, value, moved)


def _values(c: _Resolved, truth: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The quantity per cell (or per period) with and without commitment ``c``."""
    q = c.spec.quantity
    if q == "enforcement":
        value = np.asarray(truth["enforcement_by_period"], dtype=float)
        return value, _remove(value, c.terms, "logit")
    if q == "prevalence":
        value = _wide(truth, "prevalence")
        return value, _remove(value, c.terms, "logit")
    if q == "efficiency":
        value = _wide(truth, "efficiency_by_period")
        return value, _remove(value, c.terms, "log")
    if q == "review_capacity":
        value = _wide(truth, "review_intensity")
        return value, _remove(value, c.terms, "log")
    # hidden_share: through the detection level at the category's mean observed intensity.
    value = _wide(truth, "hidden_share_by_period")
    level = _wide(truth, "detection_level_by_period")
    theta = np.array([truth["efficiency"][x] for x in truth["categories"]], dtype=float)
    at_mean = -np.expm1(-theta * _wide(truth, "review_intensity").mean(axis=1))
    reachable = np.minimum(1.0, _remove(level, c.terms, "logit") / at_mean[:, None])
    return value, np.where(c.terms == 0, value, 1.0 - reachable)


def _monitoring_truth(
    resolved: list[_Resolved], truth: dict[str, Any], listings: np.ndarray
) -> dict[str, Any]:
    categories, periods = truth["categories"], truth["periods"]
    out = {}
    for c in resolved:
        value, counterfactual = _values(c, truth)
        if c.categories is None:
            by_category = None
            agg, agg_cf = value, counterfactual
        else:
            rows = [categories.index(x) for x in c.categories]
            weights = listings[rows]
            agg = (value[rows] * weights).sum(axis=0) / weights.sum(axis=0)
            agg_cf = (counterfactual[rows] * weights).sum(axis=0) / weights.sum(axis=0)
            by_category = {
                "value": {x: value[i].tolist() for x, i in zip(c.categories, rows, strict=True)},
                "counterfactual": {
                    x: counterfactual[i].tolist() for x, i in zip(c.categories, rows, strict=True)
                },
            }
        entry = {
            "quantity": c.spec.quantity,
            "effective": periods[c.t0],
            "categories": c.categories,
            "level_change": float(c.spec.level_change),
            "slope_change": float(c.spec.slope_change),
            "level_change_sd": float(c.spec.level_change_sd),
            # Realised level change per covered category (mean plus the category's deviation).
            "level_change_by_category": (
                None
                if c.categories is None
                else {cat: float(c.terms[categories.index(cat), c.t0]) for cat in c.categories}
            ),
            "value": agg.tolist(),
            "counterfactual": agg_cf.tolist(),
            "effect": (agg - agg_cf).tolist(),
            "by_category": by_category,
        }
        if c.spec.target is not None:
            by = len(periods) - 1 if c.by is None else c.by
            decrease = c.spec.quantity in ("prevalence", "hidden_share")
            met = agg[by] <= c.spec.target if decrease else agg[by] >= c.spec.target
            entry.update(target=float(c.spec.target), target_by=periods[by], target_met=bool(met))
        out[c.spec.name] = entry
    return out


def _commitments_toml(resolved: list[_Resolved], periods: list[str]) -> dict[str, Any]:
    entries = []
    for c in resolved:
        entry: dict[str, Any] = {
            "name": c.spec.name,
            "effective": periods[c.t0],
            "quantity": c.spec.quantity,
        }
        if c.categories is not None and c.spec.categories is not None:
            entry["categories"] = list(c.categories)
        if c.spec.description:
            entry["description"] = str(c.spec.description)
        if c.spec.target is not None:
            target: dict[str, Any] = {"value": float(c.spec.target)}
            if c.by is not None:
                target["by"] = periods[c.by]
            entry["target"] = target
        entries.append(entry)
    return {"commitment": entries}


def _kpis(sim: SimulatedMarketplace) -> pd.DataFrame:
    """KPIs as a platform reports them, platform-wide per period.

    ``proactive_control_rate``: proactive detections / all detections (blind to the illegal
    listings no channel finds, hence optimistic against the true ``d_pro``); ``prevalence``:
    detected share of listings (how platforms score prevalence); ``enforcement_rate`` (with
    traders): suspended / reached in the periods where some trader reached the threshold.
    """
    det = sim.tables["detections"]
    total = det.groupby("period", sort=False)["detected"].sum()
    proactive = det[det["channel"] == "proactive"].groupby("period", sort=False)["detected"].sum()
    listings = sim.tables["listings"].groupby("period", sort=False)["listings"].sum()
    rows = []
    for period in sim.truth["periods"]:
        if total[period] > 0:
            rows.append(("proactive_control_rate", period, "", proactive[period] / total[period]))
    for period in sim.truth["periods"]:
        rows.append(("prevalence", period, "", total[period] / listings[period]))
    if "enforcement" in sim.tables:
        for row in sim.tables["enforcement"].itertuples(index=False):
            if row.reached > 0:
                rows.append(("enforcement_rate", row.period, "", row.suspended / row.reached))
    table = pd.DataFrame(rows, columns=["kpi", "period", "category", "value"])
    table["value"] = table["value"].astype(float)
    return table


def simulate_monitored_marketplace(
    seed: int,
    commitments: Sequence[SimulatedCommitment],
    *,
    evidence_every: int = 3,
    **simulate_marketplace_kwargs: Any,
) -> SimulatedMarketplace:
    """Simulate a marketplace under binding commitments with known effects.

    Parameters
    ----------
    seed : int
        Seed of :func:`~risklab.data.synthetic.simulate_marketplace`.
    commitments : sequence of SimulatedCommitment
        The commitments and their true effects (an empty sequence is allowed).
    evidence_every : int, default 3
        Audits, purposive purchases and planted listings happen every ``evidence_every``-th
        period from the first, and in the last period (so there is evidence before and after
        every effective date); an ``evidence_periods`` keyword overrides this.
    **simulate_marketplace_kwargs
        Passed on (``categories``, ``n_periods``, ``start``, ``traders``, ...). The shift hooks
        and ``trader_periods`` are set from the commitments and may not be given.

    Returns
    -------
    SimulatedMarketplace
        With ``truth["monitoring"][name]``: ``quantity``, ``effective`` (label),
        ``categories`` (None for enforcement), ``level_change``, ``slope_change``, ``value``
        (aggregate per period), ``counterfactual`` (the same without this commitment),
        ``effect`` (their difference), ``by_category`` (``{"value": {category: [...]},
        "counterfactual": {...}}``; None for enforcement) and, with a target, ``target``,
        ``target_by`` and ``target_met``; ``commitments_toml`` (the commitments file) and
        ``kpis`` (the platform's reported KPIs). With ``traders=True`` the traders' listings
        are placed in time and the ``enforcement`` table is added.

    Raises
    ------
    ValueError
        For an unknown quantity or category, an effective period outside the window or equal
        to its first period, an enforcement commitment without traders, a duplicate name, or a
        hook keyword given directly.
    """
    given = sorted(set(_HOOKS) & set(simulate_marketplace_kwargs))
    if given:
        raise ValueError(f"{', '.join(given)} are set from the commitments; do not pass them")
    if (
        isinstance(evidence_every, bool)
        or not isinstance(evidence_every, int)
        or evidence_every < 1
    ):
        raise ValueError(f"evidence_every must be a positive integer, got {evidence_every!r}")
    defaults = {
        name: p.default
        for name, p in inspect.signature(simulate_marketplace).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    args = {**defaults, **simulate_marketplace_kwargs}
    categories = [str(c) for c in args["categories"]]
    n_periods = int(args["n_periods"])
    if n_periods < 2:
        raise ValueError("a monitored marketplace needs at least two periods")
    periods = _periods(args["start"], n_periods)
    traders = bool(args["traders"])
    resolved = _resolve(list(commitments), categories, periods, traders, seed)

    shifts: dict[str, np.ndarray] = {}
    for c in resolved:
        hook = COMMITMENT_QUANTITIES[c.spec.quantity]
        shifts[hook] = shifts.get(hook, 0.0) + c.terms
    if "evidence_periods" not in simulate_marketplace_kwargs:
        evidence = sorted({*range(0, n_periods, evidence_every), n_periods - 1})
        simulate_marketplace_kwargs = {**simulate_marketplace_kwargs, "evidence_periods": evidence}
    sim = simulate_marketplace(
        seed, **simulate_marketplace_kwargs, **shifts, trader_periods=traders
    )
    listings = (
        sim.tables["listings"]
        .pivot(index="category", columns="period", values="listings")
        .loc[categories, periods]
        .to_numpy(dtype=float)
    )
    sim.truth["monitoring"] = _monitoring_truth(resolved, sim.truth, listings)
    sim.commitments_toml = _commitments_toml(resolved, periods)
    sim.kpis = _kpis(sim)
    return sim


def hold_out_last_periods(sim: SimulatedMarketplace, n: int = 1):
    """Split a simulated marketplace into the submission to fit and the last ``n`` month(s).

    The held-out months play the part of a new reporting period (for
    :func:`risklab.monitoring.early_warning.early_warning`): their listings, detections and
    evidence form a submission of their own, with the same scale, claims and policy.

    Parameters
    ----------
    sim : SimulatedMarketplace
        Without traders: the ``traders`` table summarises the whole window and cannot be cut.
    n : int
        Months to hold out (at least one, fewer than the window).

    Returns
    -------
    (risklab.data.Submission, risklab.data.Submission)
        The fitted window and the held-out months.
    """
    from risklab.data.submission import Submission

    if "traders" in sim.tables:
        raise ValueError(
            "cannot hold out months of a marketplace with traders: traders.csv covers the whole "
            "window; simulate with traders=False"
        )
    periods = list(sim.truth["periods"])
    if not 1 <= n < len(periods):
        raise ValueError(f"n must be between 1 and {len(periods) - 1}, got {n}")
    cut = periods[-n]

    def part(frames: dict[str, pd.DataFrame], new: bool) -> dict[str, pd.DataFrame]:
        out = {}
        for name, frame in frames.items():
            keep = frame[(frame["period"] >= cut) == new] if "period" in frame else frame
            if len(keep):
                out[name] = keep.reset_index(drop=True)
        return out

    def build(new: bool):
        platform = dict(sim.toml["platform"])
        if new:
            platform["period_start"] = cut
        else:
            platform["period_end"] = periods[-n - 1]
        evidence = part(sim.evidence, new)
        return Submission.from_dataframes(
            platform=platform,
            scale=sim.toml["scale"],
            claims=sim.toml["claims"],
            policy=sim.toml.get("policy"),
            evidence=evidence or None,
            **part(sim.tables, new),
        )

    return build(False), build(True)
