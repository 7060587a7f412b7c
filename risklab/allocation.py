"""Where extra review hours do the most good (Art. 35): allocation and hours to a target.

* :func:`allocate_review_hours` — the split of a budget of extra review hours across categories
  that minimises the posterior expectation of the severity-weighted undetected illegal listings
  (greedy marginal allocation; optimal for this separable convex problem), against the naive
  split in proportion to listings.
* :func:`hours_to_target` — per category, the extra review hours needed for the detected share
  to come within a target of the true prevalence (infinite when the hidden share puts the target
  out of reach of review alone).

Both move the review-hour levers of :mod:`risklab.counterfactual` on the posterior draws;
``docs/mitigation.md`` gives the definitions and the optimality argument.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from risklab._analysis import as_state, check_non_negative, check_prob, summarise
from risklab.counterfactual import Levers, PosteriorState, evaluate_arrays
from risklab.dims import CATEGORY, DEFAULT_PROB, SAMPLE_DIMS

__all__ = [
    "DEFAULT_SEVERITY",
    "PLAN",
    "Allocation",
    "allocate_review_hours",
    "hours_to_target",
    "severity_weights",
]

#: Dimension of :attr:`Allocation.draws` labelling allocation plans.
PLAN = "plan"

#: Default severity weights (harm of one undetected illegal listing, relative to 1.0 for a
#: category not listed). Illustrative, not normative: 3 — direct risk to health or to children
#: (falsified medicines, supplements with undeclared substances, unsafe toys and baby products);
#: 2 — chemical, electrical or minors'-access hazards; 1.5 — contact-allergen and animal-health
#: hazards; 1 — mainly economic harm (counterfeits). A regulator should set its own.
DEFAULT_SEVERITY: dict[str, float] = {
    "medicines": 3.0,
    "dietary_supplements": 3.0,
    "toys": 3.0,
    "baby_products": 3.0,
    "adult_products": 2.0,
    "cosmetics": 2.0,
    "electronics": 2.0,
    "jewellery": 1.5,
    "pet_products": 1.5,
    "fashion_counterfeits": 1.0,
}

#: The "unlimited review" saturation used to decide whether a target is reachable.
_SATURATED = 1.0 - 1e-9


def severity_weights(
    categories: Sequence[str], severity: Mapping[str, float] | None = None
) -> np.ndarray:
    """Severity weight per category: :data:`DEFAULT_SEVERITY`, 1.0 if unlisted, then overrides.

    Raises
    ------
    ValueError
        When ``severity`` names a category not in ``categories``, a weight is negative or not
        finite, or every weight is zero.
    """
    categories = [str(c) for c in categories]
    weights = {c: DEFAULT_SEVERITY.get(c, 1.0) for c in categories}
    if severity is not None:
        if not isinstance(severity, Mapping):
            raise ValueError("severity must be a mapping category -> weight")
        unknown = sorted(set(map(str, severity)) - set(categories))
        if unknown:
            raise ValueError(f"severity: unknown categories {unknown}; known: {categories}")
        for cat, value in severity.items():
            weights[str(cat)] = check_non_negative(f"severity of {cat!r}", value)
    out = np.array([weights[c] for c in categories])
    if not np.any(out > 0):
        raise ValueError("severity: at least one category needs a positive weight")
    return out


def _replicate(state: PosteriorState, index: np.ndarray) -> PosteriorState:
    """A state whose categories are ``state``'s categories ``index`` (repeats allowed).

    Categories are separable under review-hour levers, so evaluating one category at many
    added-hour values is one call on a state holding that category many times.
    """
    index = np.asarray(index, dtype=int)
    return PosteriorState(
        categories=[f"{state.categories[k]}#{j}" for j, k in enumerate(index)],
        periods=state.periods,
        channels=state.channels,
        listings=state.listings[index],
        review_hours=state.review_hours[index],
        claimed_prevalence=state.claimed_prevalence[index],
        thresholds=state.thresholds,
        labels=state.labels,
        amplitude=state.amplitude[:, index],
        efficiency=state.efficiency[:, index],
        logit_prevalence=state.logit_prevalence[:, index],
        other_rates=state.other_rates[:, index],
        false_positive_share=state.false_positive_share[:, index],
        enforcement=state.enforcement,
        after_threshold_share=state.after_threshold_share,
        claimed_enforcement=state.claimed_enforcement,
        sample_shape=state.sample_shape,
    )


def _undetected(state: PosteriorState, extra: np.ndarray) -> np.ndarray:
    """Undetected illegal listings per draw and category with ``extra`` hours added, (S, K)."""
    return evaluate_arrays(state, Levers(review_hours_add=np.asarray(extra, float)))[
        "undetected_listings"
    ]


class _Curves:
    """Posterior-mean undetected listings of each category on the grid ``j · step``, lazily."""

    def __init__(self, state: PosteriorState, step: float, n_steps: int) -> None:
        self.state, self.step = state, step
        cells = state.n_draws * state.listings.shape[1] * max(len(state.channels), 1)
        self.chunk = int(np.clip(4_000_000 // max(cells, 1), 4, min(256, n_steps + 2)))
        self.values: list[list[float]] = [[] for _ in state.categories]

    def __call__(self, k: int, j: int) -> float:
        values = self.values[k]
        if j >= len(values):
            grid = np.arange(len(values), j + self.chunk) * self.step
            sub = _replicate(self.state, np.full(len(grid), k))
            values.extend(_undetected(sub, grid).mean(axis=0).tolist())
        return values[j]


def _greedy(state: PosteriorState, weights: np.ndarray, budget: float, n_steps: int) -> np.ndarray:
    """Greedy marginal allocation of ``n_steps`` increments of ``budget / n_steps`` hours."""
    k_len = len(state.categories)
    steps = np.zeros(k_len, dtype=int)
    if n_steps == 0:
        return steps.astype(float)
    step = budget / n_steps
    curve = _Curves(state, step, n_steps)
    heap = [(-weights[k] * (curve(k, 0) - curve(k, 1)), k) for k in range(k_len)]
    heapq.heapify(heap)
    for _ in range(n_steps):
        _, k = heapq.heappop(heap)
        steps[k] += 1
        j = steps[k]
        heapq.heappush(heap, (-weights[k] * (curve(k, j) - curve(k, j + 1)), k))
    return steps * step


@dataclass
class Allocation:
    """Extra review hours per category: the optimal split against the proportional one.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per category: ``severity``, ``listings``, ``review_hours`` (current),
        ``extra_hours`` (optimal), ``extra_hours_proportional``, ``undetected_baseline_mean``,
        ``undetected_optimal_mean``, ``undetected_proportional_mean``, ``reduction_*`` and
        ``reduction_proportional_*`` (``mean``, ``low``, ``high``: undetected illegal listings
        avoided), and, when a target is given, ``hours_to_target`` and ``target_status``
        (:func:`hours_to_target`).
    totals : pandas.Series
        ``budget_hours``, ``step_hours``, ``expected_weighted_undetected_baseline``,
        ``..._optimal``, ``..._proportional``, ``weighted_reduction_*`` and
        ``weighted_reduction_proportional_*`` (``mean``, ``low``, ``high``),
        ``advantage_mean``/``_low``/``_high`` (proportional minus optimal severity-weighted
        undetected listings) and ``p_optimal_better`` (share of draws).
    draws : xarray.Dataset
        Over ``(plan, chain, draw, category)``: ``undetected_listings`` and ``reduction``;
        over ``(plan, chain, draw)``: ``weighted_undetected``; ``plan`` is ``optimal``,
        ``proportional``.
    prob : float
    warnings : list of str
    """

    table: pd.DataFrame
    totals: pd.Series
    draws: xr.Dataset
    prob: float = DEFAULT_PROB
    warnings: list[str] = field(default_factory=list)


def allocate_review_hours(
    fitted_or_state,
    budget_hours: float,
    *,
    severity: Mapping[str, float] | None = None,
    step: float | None = None,
    target: float | None = 0.2,
    target_prob: float | None = 0.9,
    prob: float = DEFAULT_PROB,
) -> Allocation:
    """Split extra review hours across categories to minimise expected harm left undetected.

    Minimises ``E_posterior[Σ_k w_k · undetected_k(x_k)]`` subject to ``Σ_k x_k = budget`` and
    ``x_k ≥ 0``, where ``undetected_k(x)`` is the undetected illegal listings of category ``k``
    over the submission period with ``x`` extra hours (spread over periods in proportion to
    listings) and ``w_k`` the severity weights. The expectation is over the posterior draws, not
    at a plug-in point.

    Parameters
    ----------
    fitted_or_state : PlatformRiskModel or PosteriorState
    budget_hours : float
        Extra review hours over the submission period (≥ 0).
    severity : mapping, optional
        Overrides of :data:`DEFAULT_SEVERITY` (1.0 for categories not listed there).
    step : float, optional
        Increment of the greedy allocation, hours; default ``budget / 200``. It is shrunk so that
        the budget is a whole number of increments.
    target, target_prob : float or None
        Passed to :func:`hours_to_target` for the ``hours_to_target`` column; ``target=None``
        skips it.
    prob : float, default 0.90
        Probability mass of the equal-tailed intervals.

    Returns
    -------
    Allocation

    Notes
    -----
    Each ``undetected_k`` is convex and decreasing in ``x`` (detection is concave and
    saturating in review intensity), so the problem is separable and convex and the greedy rule —
    give each increment to the category with the largest severity-weighted marginal reduction —
    is optimal on the grid of increments (``docs/mitigation.md``). If the proportional split
    were better (possible only within the grid's discretisation error), it is returned as the
    optimum and a warning says so.
    """
    prob = check_prob(prob)
    state, warnings = as_state(fitted_or_state)
    budget = float(budget_hours)
    if not math.isfinite(budget) or budget < 0:
        raise ValueError(f"budget_hours must be a finite non-negative number, got {budget_hours!r}")
    weights = severity_weights(state.categories, severity)
    if step is None:
        n_steps = 200 if budget > 0 else 0
    else:
        step = float(step)
        if not math.isfinite(step) or step <= 0:
            raise ValueError(f"step must be a positive number of hours, got {step!r}")
        n_steps = math.ceil(budget / step - 1e-9) if budget > 0 else 0
    optimal = _greedy(state, weights, budget, n_steps)
    listings_k = state.listings.sum(axis=1)
    proportional = budget * listings_k / listings_k.sum()

    base = _undetected(state, np.zeros(len(weights)))
    und = np.stack([_undetected(state, optimal), _undetected(state, proportional)])
    weighted = (und * weights).sum(-1)  # (2, S)
    if weighted[1].mean() < weighted[0].mean():
        warnings.append(
            "the proportional split beat the greedy grid optimum by a discretisation error; it "
            "is reported as the optimum (use a smaller step)"
        )
        optimal = proportional.copy()
        und[0], weighted[0] = und[1], weighted[1]
    reduction = base[None] - und
    weighted_base = (base * weights).sum(-1)

    table = pd.DataFrame(
        {
            CATEGORY: state.categories,
            "severity": weights,
            "listings": listings_k,
            "review_hours": state.review_hours.sum(axis=1),
            "extra_hours": optimal,
            "extra_hours_proportional": proportional,
            "undetected_baseline_mean": base.mean(0),
            "undetected_optimal_mean": und[0].mean(0),
            "undetected_proportional_mean": und[1].mean(0),
        }
    )
    for plan, suffix in ((0, ""), (1, "_proportional")):
        summary = summarise(reduction[plan], prob)
        for s in ("mean", "low", "high"):
            table[f"reduction{suffix}_{s}"] = summary[s]
    if target is not None:
        needed = hours_to_target(state, target=target, prob=target_prob)
        table["hours_to_target"] = needed["extra_hours"].values
        table["target_status"] = needed["status"].values

    totals = {
        "budget_hours": budget,
        "step_hours": budget / n_steps if n_steps else 0.0,
        "expected_weighted_undetected_baseline": weighted_base.mean(),
        "expected_weighted_undetected_optimal": weighted[0].mean(),
        "expected_weighted_undetected_proportional": weighted[1].mean(),
    }
    for plan, suffix in ((0, ""), (1, "_proportional")):
        summary = summarise(weighted_base - weighted[plan], prob)
        totals |= {f"weighted_reduction{suffix}_{s}": summary[s] for s in ("mean", "low", "high")}
    advantage = summarise(weighted[1] - weighted[0], prob)
    totals |= {f"advantage_{s}": advantage[s] for s in ("mean", "low", "high")}
    totals["p_optimal_better"] = float((weighted[0] < weighted[1]).mean())

    shape = (2, *state.sample_shape)
    k_len = len(weights)
    dims = (PLAN, *SAMPLE_DIMS)
    draws = xr.Dataset(
        {
            "undetected_listings": ((*dims, CATEGORY), und.reshape(*shape, k_len)),
            "reduction": ((*dims, CATEGORY), reduction.reshape(*shape, k_len)),
            "weighted_undetected": (dims, weighted.reshape(shape)),
        },
        coords={
            PLAN: ["optimal", "proportional"],
            CATEGORY: state.categories,
            "extra_hours": ((PLAN, CATEGORY), np.stack([optimal, proportional])),
            "severity": (CATEGORY, weights),
        },
        attrs={"prob": prob, "budget_hours": budget},
    )
    return Allocation(
        table=table, totals=pd.Series(totals), draws=draws, prob=prob, warnings=warnings
    )


def hours_to_target(
    fitted_or_state,
    *,
    target: float = 0.2,
    prob: float | None = 0.9,
    rtol: float = 1e-6,
) -> pd.DataFrame:
    """Extra review hours per category for the detected share to come within ``target``.

    The criterion is ``reported_share ≥ (1 − target) · prevalence`` (equivalently, the reported
    underestimation ``prevalence / reported share ≤ 1 / (1 − target)``), where the reported share
    is what the platform would report (all channels, actioned detections; see
    :mod:`risklab.counterfactual`). With ``prob`` it must hold with posterior probability at
    least ``prob``; with ``prob=None``, in posterior expectation: ``E[reported share] ≥
    (1 − target) · E[prevalence]``.

    Parameters
    ----------
    fitted_or_state : PlatformRiskModel or PosteriorState
    target : float, default 0.2
        Allowed relative shortfall of the detected share, in (0, 1).
    prob : float or None, default 0.9
        Posterior probability the criterion must reach; ``None`` for the expectation criterion.
    rtol : float
        Relative tolerance of the bisection on hours.

    Returns
    -------
    pandas.DataFrame
        One row per category: ``review_hours`` (current), ``extra_hours`` (0 if already met,
        ``inf`` if unreachable), ``criterion_now`` and ``criterion_unlimited`` (posterior
        probability, or expected detected/true ratio with ``prob=None``, now and with unlimited
        review), ``status`` (``met``, ``reachable``, ``unreachable``) and ``reason``.

    Notes
    -----
    Review hours raise only proactive detection, and only up to its reach ``1 − hidden share``;
    the other channels do not respond to review effort. When the criterion fails even with
    proactive detection saturated, no amount of review reaches the target: the hours are
    ``inf`` and the reason names the hidden share. Found by vectorised bisection over categories
    (the criterion is monotone in hours: more hours never lower the reported share).
    """
    if not 0.0 < float(target) < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target!r}")
    if prob is not None:
        prob = check_prob(prob)
    state, _ = as_state(fitted_or_state)
    k_len = len(state.categories)
    floor = 1.0 - float(target)

    def score(out) -> np.ndarray:
        if prob is None:
            return out["reported_share"].mean(0) / out["prevalence"].mean(0)
        return (out["reported_share"] >= floor * out["prevalence"]).mean(0)

    def met(values: np.ndarray) -> np.ndarray:
        return values >= (floor if prob is None else prob)

    substates: dict[tuple[int, ...], PosteriorState] = {}

    def check(extra: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Whether the criterion holds with ``extra`` hours, for the categories in ``mask``."""
        index = tuple(np.flatnonzero(mask).tolist())
        ok = np.zeros(k_len, dtype=bool)
        if index:
            if index not in substates:  # categories are separable: evaluate only those needed
                substates[index] = _replicate(state, np.array(index))
            levers = Levers(review_hours_add=extra[list(index)])
            ok[list(index)] = met(score(evaluate_arrays(substates[index], levers)))
        return ok

    now = score(evaluate_arrays(state, Levers()))
    unlimited = score(evaluate_arrays(state, Levers(min_saturation=_SATURATED)))
    hours = state.review_hours.sum(axis=1)
    extra = np.where(met(now), 0.0, np.inf)
    todo = ~met(now) & met(unlimited)
    hi = np.where(todo, np.maximum(hours, 1.0), 0.0)
    pending = todo.copy()
    for _ in range(200):
        pending &= ~check(hi, pending)
        if not pending.any():
            break
        hi = np.where(pending, hi * 2.0, hi)
    todo &= ~pending  # unmet after 200 doublings: the reach limit sits at the target itself
    lo = np.zeros(k_len)
    for _ in range(200):
        active = todo & (hi - lo > rtol * hi)
        if not active.any():
            break
        mid = np.where(active, 0.5 * (lo + hi), 0.0)
        ok = check(mid, active)
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid, lo)
    extra = np.where(todo, hi, extra)
    status = np.where(met(now), "met", np.where(np.isfinite(extra), "reachable", "unreachable"))
    reason = [
        ""
        if s != "unreachable"
        else "even unlimited review (proactive detection saturated at its reach, 1 - hidden "
        "share) plus the other channels leaves the detected share short of the target"
        for s in status
    ]
    return pd.DataFrame(
        {
            CATEGORY: state.categories,
            "review_hours": hours,
            "extra_hours": extra,
            "criterion_now": now,
            "criterion_unlimited": unlimited,
            "status": status,
            "reason": reason,
        }
    )
