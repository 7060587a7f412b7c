"""Attribution of the underestimation to its causes, by Shapley values on the posterior draws.

The platform's claim understates prevalence by ``U = π / π_claim`` (DESIGN.md §3 item 7). This
module splits ``log U``, draw by draw and per category, into

* **resources** — review below an "adequately resourced" level: the gain from raising review
  intensity, where it is lower, to the intensity at which proactive detection reaches a share
  ``σ`` of what unlimited review would find (``Levers(min_saturation=σ)``; ``σ`` is the
  ``adequate_saturation`` parameter, default 0.9);
* **evasion** — the hidden share: listings that proactive review cannot reach however hard it
  looks (``Levers(hidden_share_factor=0)``);
* **non-enforcement** — the repeat-offender policy enforced less than claimed
  (``Levers(enforcement=claimed enforcement)``; only when the fit has the repeat-offender
  component);
* **residual** — what stays undetected when all three are fixed (the rest of the saturation
  curve, the other channels' limits);
* **reporting** — the claim against what the platform's own detections show.

With ``R`` the model's reported share (the detected share the platform's detections show,
:func:`risklab.counterfactual.evaluate_arrays`), ``S`` a coalition of fixes and ``π_S``, ``R_S``
the prevalence and reported share with the fixes in ``S`` applied, and an anchor coalition ``B``
(see ``reference``)::

    log U = log(R_B / π_claim) + v(∅),        v(S) = log(π_S / R_{S ∪ B}),
    φ_j = Σ_{S ⊆ N∖j} |S|! (n − |S| − 1)! / n! · (v(S) − v(S ∪ j)),
    Σ_j φ_j = v(∅) − v(N),

so ``log U = reporting + Σ_j φ_j + residual`` exactly, with ``reporting = log(R_B / π_claim)``
and ``residual = v(N)``. The Shapley value ``φ_j`` is factor ``j``'s marginal reduction of the
detection gap averaged over every order of applying the fixes, so the split does not depend on
an arbitrary order. ``docs/attribution.md`` discusses the two anchors; in short:

* ``reference="detections"`` (``B = ∅``): the claim is compared with the detections of
  the fitted world. Non-enforcement raises prevalence and the detections in proportion, so its
  share of ``log U`` is close to zero: it makes *more* illegal content, not a *larger
  underestimation*.
* ``reference="claimed_enforcement"`` (default, ``B = {non-enforcement}``): the claim is read as a
  statement about the world the platform's stated policy would produce, and compared with the
  detections of that world. Then ``φ_non-enforcement = log(π / π_enforced)`` exactly (the excess
  prevalence due to non-enforcement) and the reporting term is correspondingly smaller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import factorial
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from risklab._analysis import state_and_convergence
from risklab.counterfactual import Levers, PosteriorState, evaluate_arrays
from risklab.dims import CATEGORY, DEFAULT_PROB, SAMPLE_DIMS

__all__ = [
    "COMPONENTS",
    "DEFAULT_ADEQUATE_SATURATION",
    "PLAYERS",
    "Attribution",
    "attribute",
    "shapley_values",
]

#: The factors split by Shapley values (non-enforcement only with the repeat-offender component).
PLAYERS: tuple[str, ...] = ("resources", "evasion", "non_enforcement")
#: All components of ``log U``, in the order of the waterfall.
COMPONENTS: tuple[str, ...] = (*PLAYERS, "residual", "reporting")
#: Default adequacy: review reaching 90 % of what unlimited review would detect.
DEFAULT_ADEQUATE_SATURATION = 0.9
#: Name of the component dimension of :attr:`Attribution.draws`.
COMPONENT = "component"
#: Label of the platform-wide row.
PLATFORM = "platform-wide"

Reference = Literal["detections", "claimed_enforcement"]
REFERENCES: tuple[str, ...] = ("detections", "claimed_enforcement")


def shapley_values(
    value: Callable[[frozenset[str]], np.ndarray] | Mapping[frozenset[str], np.ndarray],
    players: Sequence[str],
) -> dict[str, np.ndarray]:
    """Exact Shapley values of a cooperative game, vectorised over the values' array shape.

    The contribution of player ``j`` is its marginal *reduction* of the value, averaged over
    all orders in which the players could join::

        φ_j = Σ_{S ⊆ N∖j} |S|! (n − |S| − 1)! / n! · (v(S) − v(S ∪ {j}))

    so that ``Σ_j φ_j = v(∅) − v(N)`` (efficiency).

    Parameters
    ----------
    value : callable or mapping
        ``v(S)`` for every coalition ``S`` (a ``frozenset`` of player names), as arrays of one
        common shape (e.g. draws × categories).
    players : sequence of str
        The ``n`` players; ``2ⁿ`` coalitions are evaluated, so keep ``n`` small.

    Returns
    -------
    dict of str to numpy.ndarray
        ``φ_j`` per player, each of the values' shape.
    """
    players = list(players)
    if len(set(players)) != len(players):
        raise ValueError(f"players must be distinct, got {players}")
    n = len(players)
    get = value.__getitem__ if isinstance(value, Mapping) else value
    cache: dict[frozenset[str], np.ndarray] = {}

    def v(coalition: frozenset[str]) -> np.ndarray:
        if coalition not in cache:
            cache[coalition] = np.asarray(get(coalition), dtype=float)
        return cache[coalition]

    out = {}
    for j in players:
        others = [p for p in players if p != j]
        total = 0.0
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for members in combinations(others, size):
                coalition = frozenset(members)
                total = total + weight * (v(coalition) - v(coalition | {j}))
        out[j] = np.asarray(total, dtype=float)
    return out


@dataclass
class Attribution:
    """Shapley attribution of ``log U`` per category and platform-wide.

    Attributes
    ----------
    draws : xarray.Dataset
        ``log_underestimation`` over ``(chain, draw, category)``; ``contribution`` and ``share``
        over ``(chain, draw, category, component)``; ``platform_log_underestimation``,
        ``platform_contribution`` and ``platform_share`` (the same, platform-wide). The
        ``component`` coordinate lists the components assessed (no ``non_enforcement`` without
        the repeat-offender component); contributions sum exactly to ``log U``.
    table : pandas.DataFrame
        One row per category: ``log_underestimation_{median,low,high}`` and, per component
        ``c``, ``c_{median,low,high}`` and ``c_share_{median,low,high}`` (NaN for a component
        not assessed).
    platform : pandas.DataFrame
        The same columns for the platform-wide ``U`` (one row, category ``"platform-wide"``).
    adequate_saturation : float
        The adequacy parameter ``σ``.
    reference : str
        ``"detections"`` or ``"claimed_enforcement"`` (the anchor of the reporting term).
    prob : float
        Mass of the equal-tailed intervals.
    components : tuple of str
        The components assessed, in waterfall order.
    converged : bool, optional
        Whether the fit passed the convergence gate (``None`` for a state built from arrays).
    """

    draws: xr.Dataset
    table: pd.DataFrame
    platform: pd.DataFrame
    adequate_saturation: float
    reference: str
    prob: float
    components: tuple[str, ...]
    converged: bool | None = None
    categories: list[str] = field(default_factory=list)

    def summary(self, category: str | None = None) -> pd.DataFrame:
        """Long table (component × statistic) for one category, or platform-wide when ``None``."""
        if category is None:
            row = self.platform.iloc[0]
        else:
            if category not in self.categories:
                raise ValueError(f"unknown category {category!r}; known: {self.categories}")
            row = self.table.set_index(CATEGORY).loc[category]
        rows = []
        for comp in (*self.components, "log_underestimation"):
            entry = {
                COMPONENT: comp,
                "median": row[f"{comp}_median"],
                "low": row[f"{comp}_low"],
                "high": row[f"{comp}_high"],
            }
            if comp != "log_underestimation":
                entry |= {
                    "share_median": row[f"{comp}_share_median"],
                    "share_low": row[f"{comp}_share_low"],
                    "share_high": row[f"{comp}_share_high"],
                }
            rows.append(entry)
        return pd.DataFrame(rows)


def attribute(
    fitted_or_state,
    *,
    adequate_saturation: float = DEFAULT_ADEQUATE_SATURATION,
    reference: Reference = "claimed_enforcement",
    prob: float = DEFAULT_PROB,
) -> Attribution:
    """Split ``log U`` into reporting, resources, evasion, non-enforcement and a residual.

    Parameters
    ----------
    fitted_or_state : PlatformRiskModel or PosteriorState
        A fitted model (its posterior draws are used) or a
        :class:`~risklab.counterfactual.PosteriorState`.
    adequate_saturation : float, default 0.9
        Definition of "adequately resourced" review: intensity high enough that proactive
        detection reaches this share of what unlimited review would find
        (``1 − e^{−θ r} ≥ σ``, i.e. ``r ≥ −log(1 − σ)/θ`` hours per 1000 listings, per draw
        and period). Categories already above it get a resources contribution of zero.
    reference : {"detections", "claimed_enforcement"}
        Anchor of the reporting term: the detections of the world where the repeat-offender
        policy is enforced as claimed (default), or those of the fitted world (see the module
        docstring and ``docs/attribution.md``). Identical without the repeat-offender component.
    prob : float, default 0.90
        Mass of the equal-tailed intervals in the tables.

    Returns
    -------
    Attribution

    Raises
    ------
    ValueError
        For ``adequate_saturation`` or ``prob`` outside (0, 1), an unknown ``reference``, or
        non-positive claimed prevalence (``log U`` undefined).
    """
    if not (
        isinstance(adequate_saturation, int | float) and 0.0 < float(adequate_saturation) < 1.0
    ):
        raise ValueError(
            f"adequate_saturation must be in (0, 1) (the share of unlimited-review detection "
            f"that counts as adequately resourced), got {adequate_saturation!r}"
        )
    if not (isinstance(prob, int | float) and 0.0 < float(prob) < 1.0):
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
    if not isinstance(fitted_or_state, PosteriorState) and not (
        hasattr(fitted_or_state, "posterior") and hasattr(fitted_or_state, "submission")
    ):
        raise ValueError(
            "attribute() needs a fitted PlatformRiskModel or a PosteriorState, got "
            f"{type(fitted_or_state).__name__}"
        )
    state, converged = state_and_convergence(fitted_or_state)
    claimed = np.asarray(state.claimed_prevalence, dtype=float)
    if not np.all(np.isfinite(claimed) & (claimed > 0)):
        bad = [c for c, p in zip(state.categories, claimed, strict=True) if not p > 0]
        raise ValueError(
            f"claimed_prevalence must be positive to attribute log U; not so for {bad}"
        )
    players = _players(state)
    sigma = float(adequate_saturation)
    anchor = (
        frozenset({"non_enforcement"})
        if (reference == "claimed_enforcement" and "non_enforcement" in players)
        else frozenset()
    )

    outcomes = {
        coalition: evaluate_arrays(state, _levers(coalition, sigma, state))
        for coalition in _coalitions(players)
    }
    per_cat = _decompose(
        prevalence={c: o["prevalence"] for c, o in outcomes.items()},
        reported={c: o["reported_share"] for c, o in outcomes.items()},
        claimed=claimed[None, :],
        players=players,
        anchor=anchor,
    )
    weights = state.listings.sum(axis=1)  # (K,): the levers never change listings here
    platform = _decompose(
        prevalence={c: _pool(o["prevalence"], weights) for c, o in outcomes.items()},
        reported={c: _pool(o["reported_share"], weights) for c, o in outcomes.items()},
        claimed=_pool(claimed[None, :], weights),
        players=players,
        anchor=anchor,
    )
    components = tuple(c for c in COMPONENTS if c in players or c not in PLAYERS)
    draws = _to_dataset(state, per_cat, platform, components)
    draws.attrs.update(adequate_saturation=sigma, reference=reference, components=list(components))
    table = _table(draws, "", components, float(prob))
    table.insert(0, CATEGORY, state.categories)
    platform_table = _table(draws, "platform_", components, float(prob))
    platform_table.insert(0, CATEGORY, [PLATFORM])
    return Attribution(
        draws=draws,
        table=table,
        platform=platform_table,
        adequate_saturation=sigma,
        reference=reference,
        prob=float(prob),
        components=components,
        converged=converged,
        categories=list(state.categories),
    )


def _players(state: PosteriorState) -> tuple[str, ...]:
    if state.has_offenders and state.claimed_enforcement is not None:
        return PLAYERS
    return tuple(p for p in PLAYERS if p != "non_enforcement")


def _coalitions(players: Sequence[str]) -> list[frozenset[str]]:
    return [
        frozenset(members)
        for size in range(len(players) + 1)
        for members in combinations(players, size)
    ]


def _levers(coalition: frozenset[str], sigma: float, state: PosteriorState) -> Levers:
    """The fixes of ``coalition`` as levers."""
    return Levers(
        min_saturation=sigma if "resources" in coalition else None,
        hidden_share_factor=0.0 if "evasion" in coalition else 1.0,
        enforcement=state.claimed_enforcement if "non_enforcement" in coalition else None,
    )


def _pool(share: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Listings-weighted platform-wide share, shape (S, 1)."""
    return (share * weights[None, :]).sum(axis=1, keepdims=True) / weights.sum()


def _decompose(
    *,
    prevalence: Mapping[frozenset[str], np.ndarray],
    reported: Mapping[frozenset[str], np.ndarray],
    claimed: np.ndarray,
    players: tuple[str, ...],
    anchor: frozenset[str],
) -> dict[str, np.ndarray]:
    """``log U`` and its components from the outcomes of every coalition (arrays (S, K))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pi = {c: np.log(p) for c, p in prevalence.items()}
        log_r = {c: np.log(r) for c, r in reported.items()}

        def value(coalition: frozenset[str]) -> np.ndarray:
            return log_pi[coalition] - log_r[coalition | anchor]

        phi = shapley_values(value, players)
        everything = frozenset(players)
        out = {
            "log_underestimation": log_pi[frozenset()] - np.log(claimed),
            "reporting": log_r[anchor] - np.log(claimed),
            "residual": value(everything),
            **phi,
        }
    for name, arr in out.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"the attribution's {name} is not finite for some draws (a zero prevalence or "
                "a zero reported share: nothing detected by any channel)"
            )
    return out


def _shares(contrib: np.ndarray) -> np.ndarray:
    """``φ_c / Σ_j |φ_j|`` along the last axis (NaN where every component is zero)."""
    gross = np.abs(contrib).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gross > 0, contrib / gross, np.nan)


def _to_dataset(
    state: PosteriorState,
    per_cat: dict[str, np.ndarray],
    platform: dict[str, np.ndarray],
    components: tuple[str, ...],
) -> xr.Dataset:
    shape = state.sample_shape
    k = len(state.categories)
    contrib = np.stack([per_cat[c] for c in components], axis=-1)  # (S, K, J)
    plat = np.stack([platform[c] for c in components], axis=-1)[:, 0, :]  # (S, J)
    dims = (*SAMPLE_DIMS, CATEGORY)
    return xr.Dataset(
        {
            "log_underestimation": (dims, per_cat["log_underestimation"].reshape(*shape, k)),
            "contribution": ((*dims, COMPONENT), contrib.reshape(*shape, k, len(components))),
            "share": ((*dims, COMPONENT), _shares(contrib).reshape(*shape, k, len(components))),
            "platform_log_underestimation": (
                SAMPLE_DIMS,
                platform["log_underestimation"][:, 0].reshape(shape),
            ),
            "platform_contribution": (
                (*SAMPLE_DIMS, COMPONENT),
                plat.reshape(*shape, len(components)),
            ),
            "platform_share": (
                (*SAMPLE_DIMS, COMPONENT),
                _shares(plat).reshape(*shape, len(components)),
            ),
        },
        coords={CATEGORY: list(state.categories), COMPONENT: list(components)},
    )


def _quantiles(da: xr.DataArray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tail = (1.0 - prob) / 2.0
    q = da.quantile([0.5, tail, 1.0 - tail], dim=list(SAMPLE_DIMS), skipna=True)
    return tuple(np.atleast_1d(q.isel(quantile=i).values) for i in range(3))


def _table(
    draws: xr.Dataset, prefix: str, components: tuple[str, ...], prob: float
) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    med, low, high = _quantiles(draws[f"{prefix}log_underestimation"], prob)
    columns |= {
        "log_underestimation_median": med,
        "log_underestimation_low": low,
        "log_underestimation_high": high,
    }
    n_rows = len(med)
    for comp in COMPONENTS:
        for stat, var in (("", "contribution"), ("_share", "share")):
            if comp in components:
                da = draws[f"{prefix}{var}"].sel({COMPONENT: comp})
                med, low, high = _quantiles(da, prob)
            else:
                med = low = high = np.full(n_rows, np.nan)
            columns[f"{comp}{stat}_median"] = med
            columns[f"{comp}{stat}_low"] = low
            columns[f"{comp}{stat}_high"] = high
    return pd.DataFrame(columns)
