"""Audit design: how many random audit checks would establish that a claim understates risk?

For each proposed number ``m`` of random audit checks in a category, :func:`plan_audit` computes
the pre-posterior *power*: the probability, under the current posterior, that after the audit
the posterior would show ``P(U > 1) ≥ threshold`` (default 0.95), and the smallest ``m``
reaching a target power (default 0.8). ``docs/audit-design.md`` has the derivation.

With the claim fixed, ``U = π / π_claim``, so ``P(U > 1) = P(π > π_claim)`` with ``π`` the
category's listings-weighted prevalence over the submission period (as in :func:`risklab.assess`).
A random audit of ``m`` listings drawn uniformly from the listings of the audited periods gives
``z ~ Binomial(m, π_A)``, ``π_A`` the listings-weighted prevalence over those periods (exactly:
each checked listing comes from period ``t`` with probability ``w_t``, so it is illegal with
probability ``Σ_t w_t π_t``). By default the audit samples the whole submission period
(``π_A = π``); ``periods="last"`` models an audit of the most recent period only.

Two computations, both vectorised over posterior draws, outcomes and sample sizes:

* **reweighted** (the default and the one behind the recommendation): the posterior after
  observing ``z`` is the current posterior reweighted by the binomial likelihood,
  ``w_i ∝ π_A,i^z (1 − π_A,i)^(m − z)``, so ``P(π > claim | z) = Σ_i w_i 1[π_i > claim]`` — exact
  up to Monte Carlo error in the draws. Outcomes are summed over exactly with the posterior
  predictive ``p(z) = mean_i Binomial(z; m, π_A,i)`` (the limit of simulating one ``z`` per draw;
  ``outcomes=n`` simulates ``n`` instead). Where the weights degenerate (effective sample size
  below ``min_ess``) the conjugate value is used for that outcome and the predictive mass
  concerned is reported (``fallback_share``).
* **conjugate**: a Beta fitted to the draws of ``π_A`` by moments, updated to
  ``Beta(a + z, b + m − z)``, outcomes weighted by the beta-binomial predictive. When the audit
  does not sample the whole period, ``π`` is approximated by ``ρ π_A`` with ``ρ`` the posterior
  mean of ``π / π_A``.

Purposive test purchases (risk-selected strata with a free selection uplift) bound prevalence from
above only, so they cannot establish ``U > 1``: :func:`plan_audit` refuses ``design="purposive"``.

By the martingale property of posterior probabilities, ``E_z[P(U > 1 | z)] = P(U > 1)`` now, so
power can never exceed ``P(U > 1) / threshold`` (``power_upper_bound``): an audit cannot show an
understatement the current evidence says is unlikely. ``expected_p_underestimated`` (which equals
the current value up to rounding) is reported as a check of the computation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

from risklab._atomic import atomic_path
from risklab.dims import CATEGORY, PERIOD, SAMPLE_DIMS
from risklab.models.config import derive_seeds
from risklab.models.diagnostics import ConvergenceReport, unconverged_warning

__all__ = [
    "DEFAULT_SAMPLE_SIZES",
    "PLAN_COLUMNS",
    "AuditPlan",
    "plan_audit",
    "preposterior_power",
    "updated_p_underestimated",
]

#: Sample sizes tried when none are given.
DEFAULT_SAMPLE_SIZES = (50, 100, 200, 400, 800, 1600)

#: Columns of ``audit_plan.csv``, in order (a contract other tools read).
PLAN_COLUMNS = (
    "category",
    "sample_size",
    "power",
    "power_reweighted",
    "power_conjugate",
    "expected_p_underestimated",
    "p_underestimated_now",
    "power_upper_bound",
    "min_ess",
    "fallback_share",
    "recommended_size",
    "claimed_prevalence",
    "audit_periods",
    "converged",
)

#: Sub-stream (of the fit's posterior-predictive seed) of audit design.
_AUDIT_STREAM = 2
#: Predictive mass left out on each side when outcomes are enumerated.
_TAIL = 1e-10
#: Largest (outcomes × draws) block held in memory at once.
_BLOCK = 4_000_000
_METHODS = ("reweighted", "conjugate")


# ------------------------------------------------------------------------------- array core
def _beta_moments(p: np.ndarray) -> tuple[float, float]:
    """Beta(a, b) with the mean and variance of the draws ``p`` (a flat Beta if degenerate)."""
    mean = float(np.mean(p))
    var = float(np.var(p))
    if not 0.0 < mean < 1.0:
        raise ValueError("prevalence draws must lie strictly between 0 and 1")
    total = mean * (1.0 - mean) / var - 1.0 if var > 0 else 1e12
    total = max(total, 1e-6)
    return mean * total, (1.0 - mean) * total


def _outcome_grid(m: int, lo: float, hi: float) -> np.ndarray:
    """Outcomes ``z`` holding all but ~2·_TAIL of the mass of Binomial(m, p), lo ≤ p ≤ hi."""
    z_lo = int(stats.binom.ppf(_TAIL, m, lo))
    z_hi = int(stats.binom.isf(_TAIL, m, hi))
    return np.arange(max(z_lo, 0), min(z_hi, m) + 1)


def _reweighted(
    audited: np.ndarray,
    above: np.ndarray,
    m: int,
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per outcome ``z``: log predictive (up to the binomial coefficient), P(above | z), ESS."""
    log_p, log_q = np.log(audited), np.log1p(-audited)
    log_pred = np.empty(z.size)
    prob = np.empty(z.size)
    ess = np.empty(z.size)
    step = max(1, _BLOCK // audited.size)
    for start in range(0, z.size, step):
        zz = z[start : start + step, None].astype(float)
        loglik = zz * log_p[None, :] + (m - zz) * log_q[None, :]  # (U, S)
        norm = special.logsumexp(loglik, axis=1, keepdims=True)
        w = np.exp(loglik - norm)
        log_pred[start : start + step] = norm[:, 0] - np.log(audited.size)
        prob[start : start + step] = w @ above
        ess[start : start + step] = 1.0 / np.sum(w * w, axis=1)
    return log_pred, prob, ess


def _log_choose(m: int, z: np.ndarray) -> np.ndarray:
    return special.gammaln(m + 1.0) - special.gammaln(z + 1.0) - special.gammaln(m - z + 1.0)


def preposterior_power(
    audited: np.ndarray,
    claim: float,
    sample_sizes: Sequence[int],
    *,
    assessed: np.ndarray | None = None,
    threshold: float = 0.95,
    min_ess: float = 100.0,
    outcomes: int | None = None,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Pre-posterior power of random audits for one category, from posterior draws.

    Parameters
    ----------
    audited : numpy.ndarray, shape (S,)
        Posterior draws of the prevalence the audit samples (``π_A``).
    claim : float
        The claimed prevalence; "underestimated" means ``π > claim``.
    sample_sizes : sequence of int
        Numbers of audit checks ``m`` to evaluate.
    assessed : numpy.ndarray, shape (S,), optional
        Draws of the prevalence the claim is about (``π``), paired with ``audited``; default
        ``audited`` (an audit of the whole submission period).
    threshold : float, default 0.95
        An audit "establishes" underestimation when ``P(π > claim | z) ≥ threshold``.
    min_ess : float, default 100
        Outcomes whose importance weights have a smaller effective sample size use the
        conjugate value instead.
    outcomes : int, optional
        Simulate this many audit outcomes (draw ``i`` at random, ``z ~ Binomial(m, π_A,i)``)
        instead of summing over every outcome with its predictive probability.
    rng : numpy.random.Generator, optional
        Needed with ``outcomes``.

    Returns
    -------
    pandas.DataFrame
        One row per sample size: ``sample_size``, ``power_reweighted``, ``power_conjugate``,
        ``expected_p_underestimated`` (reweighted), ``expected_p_conjugate``, ``min_ess`` (over
        outcomes with predictive probability ≥ 0.001), ``fallback_share`` (predictive mass of the
        outcomes that fell back to the conjugate value).
    """
    audited = np.asarray(audited, dtype=float).ravel()
    assessed = audited if assessed is None else np.asarray(assessed, dtype=float).ravel()
    if audited.shape != assessed.shape or audited.size < 2:
        raise ValueError("audited and assessed need the same number (≥ 2) of draws")
    if np.any(audited <= 0) or np.any(audited >= 1) or np.any(assessed < 0):
        raise ValueError("prevalence draws must lie strictly between 0 and 1")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    sizes = _check_sizes(sample_sizes)
    if outcomes is not None and (outcomes < 1 or rng is None):
        raise ValueError("outcomes must be a positive integer and needs rng")
    above = (assessed > claim).astype(float)
    a, b = _beta_moments(audited)
    ratio = 1.0 if assessed is audited else float(np.mean(assessed / audited))
    claim_audited = claim / ratio
    p_lo, p_hi = float(audited.min()), float(audited.max())
    beta_lo, beta_hi = stats.beta.ppf(_TAIL, a, b), stats.beta.isf(_TAIL, a, b)
    rows = []
    for m in sizes:
        # Conjugate: Beta(a, b) prior, beta-binomial predictive, closed-form update.
        zc = _outcome_grid(m, min(beta_lo, p_lo), max(beta_hi, p_hi))
        pred_c = stats.betabinom.pmf(zc, m, a, b)
        pred_c = pred_c / pred_c.sum()
        prob_c = stats.beta.sf(claim_audited, a + zc, b + m - zc)
        # Reweighted: the draws themselves, exact predictive (or simulated outcomes).
        if outcomes is None:
            z = _outcome_grid(m, p_lo, p_hi)
            log_pred, prob, ess = _reweighted(audited, above, m, z)
            pred = np.exp(log_pred + _log_choose(m, z))
        else:
            draw = rng.integers(audited.size, size=outcomes)
            sim = rng.binomial(m, audited[draw])
            z, counts = np.unique(sim, return_counts=True)
            _, prob, ess = _reweighted(audited, above, m, z)
            pred = counts.astype(float)
        pred = pred / pred.sum()
        degenerate = ess < min_ess
        if np.any(degenerate):
            prob = np.where(degenerate, stats.beta.sf(claim_audited, a + z, b + m - z), prob)
        relevant = pred >= 1e-3
        rows.append(
            {
                "sample_size": m,
                "power_reweighted": float(pred @ (prob >= threshold)),
                "power_conjugate": float(pred_c @ (prob_c >= threshold)),
                "expected_p_underestimated": float(pred @ prob),
                "expected_p_conjugate": float(pred_c @ prob_c),
                "min_ess": float(ess[relevant].min()) if relevant.any() else float(ess.min()),
                "fallback_share": float(pred[degenerate].sum()),
            }
        )
    return pd.DataFrame(rows)


def updated_p_underestimated(
    audited: np.ndarray,
    claim: float,
    m: int,
    z: int | np.ndarray,
    *,
    assessed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``P(π > claim)`` after an audit finding ``z`` illegal in ``m``, by reweighting the draws.

    Parameters
    ----------
    audited, assessed : numpy.ndarray, shape (S,)
        Paired posterior draws of the audited and the assessed prevalence (as in
        :func:`preposterior_power`; ``assessed`` defaults to ``audited``).
    claim : float
    m : int
        Listings checked.
    z : int or array of int
        Illegal listings found.

    Returns
    -------
    prob, ess : numpy.ndarray
        The updated probability per ``z`` and the effective sample size of the importance
        weights behind it (below ~100 the value is unreliable: more draws are needed).
    """
    audited = np.asarray(audited, dtype=float).ravel()
    assessed = audited if assessed is None else np.asarray(assessed, dtype=float).ravel()
    z = np.atleast_1d(np.asarray(z, dtype=int))
    if np.any(z < 0) or np.any(z > m):
        raise ValueError(f"z must lie in [0, m={m}], got {z.tolist()}")
    _, prob, ess = _reweighted(audited, (assessed > claim).astype(float), int(m), z)
    return prob, ess


def _check_sizes(sample_sizes: Sequence[int]) -> list[int]:
    values = list(sample_sizes)
    try:
        sizes = [int(m) for m in values]
        whole = all(float(m) == float(v) for m, v in zip(sizes, values, strict=True))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_sizes must be positive integers, got {values!r}") from exc
    if not sizes:
        raise ValueError("sample_sizes is empty")
    if not whole or any(m < 1 for m in sizes):
        raise ValueError(f"sample_sizes must be positive integers, got {values!r}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sample_sizes has duplicates: {sizes}")
    return sorted(sizes)


# ----------------------------------------------------------------------------- the plan
@dataclass
class AuditPlan:
    """Power of random audits per category and sample size, and the sample size to use.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per category × sample size; columns :data:`PLAN_COLUMNS`. ``power`` is the
        power of the method that drives the recommendation.
    recommended : dict of str to int or None
        Smallest sample size reaching ``target_power`` per category (``None`` when no size in
        the range reaches it).
    target_power, threshold : float
    method : str
        ``"reweighted"`` or ``"conjugate"``: the power behind :attr:`recommended`.
    periods : list of str
        The periods the audit samples (listings-weighted).
    warnings : list of str
        Plain-language caveats (unreachable targets, unconverged fit, weight degeneracy).
    convergence : ConvergenceReport or None
        The convergence gate of the fit behind the plan.
    random_seed : int
        Seed of the random steps (draw subsampling, simulated outcomes).
    """

    table: pd.DataFrame
    recommended: dict[str, int | None]
    target_power: float
    threshold: float
    method: str
    periods: list[str]
    warnings: list[str] = field(default_factory=list)
    convergence: ConvergenceReport | None = None
    random_seed: int = 0

    @property
    def converged(self) -> bool:
        """Whether the fit behind the plan passed the convergence gate."""
        return bool(self.convergence is not None and self.convergence.passed)

    @property
    def categories(self) -> list[str]:
        """Categories in the plan, in table order."""
        return list(dict.fromkeys(self.table["category"]))

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :attr:`table` as CSV, atomically and deterministically."""
        path = Path(path)
        with atomic_path(path, suffix=".csv") as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
        return path


def _select_periods(periods: str | Sequence[str], known: list[str]) -> list[str]:
    if isinstance(periods, str):
        if periods == "all":
            return list(known)
        if periods == "last":
            return [known[-1]]
        periods = [periods]
    chosen = [str(p) for p in periods]
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        raise ValueError(
            f"periods: unknown periods {unknown}; use 'all', 'last' or periods of the submission "
            f"({known[0]}..{known[-1]})"
        )
    return [p for p in known if p in chosen]


def _draws(fitted, periods: list[str]) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Draws (S, K) of the assessed and audited prevalence, the categories and the claims."""
    posterior = fitted.posterior
    data = fitted.submission.data
    listings = data["listings"].astype(float)
    weights = listings / listings.sum(PERIOD)
    assessed = (posterior["prevalence"] * weights).sum(PERIOD)
    sub = listings.sel({PERIOD: periods})
    audited = (posterior["prevalence"].sel({PERIOD: periods}) * sub / sub.sum(PERIOD)).sum(PERIOD)

    def flat(da):
        return np.asarray(da.transpose(*SAMPLE_DIMS, CATEGORY).values, dtype=float).reshape(
            -1, da.sizes[CATEGORY]
        )

    categories = [str(c) for c in data[CATEGORY].values]
    return flat(assessed), flat(audited), categories, data["claimed_prevalence"].values


def _smallest(sizes: np.ndarray, power: np.ndarray, target: float) -> int | None:
    hits = np.flatnonzero(power >= target)
    return int(sizes[hits[0]]) if hits.size else None


def plan_audit(
    fitted,
    *,
    categories: Sequence[str] | None = None,
    sample_sizes: Sequence[int] = DEFAULT_SAMPLE_SIZES,
    target_power: float = 0.8,
    threshold: float = 0.95,
    periods: str | Sequence[str] = "all",
    design: str = "random",
    method: str = "reweighted",
    refine: bool = False,
    min_ess: float = 100.0,
    outcomes: int | None = None,
    max_draws: int | None = None,
    random_seed: int | None = None,
) -> AuditPlan:
    """Plan a random audit: power per sample size and the smallest size reaching a target.

    Parameters
    ----------
    fitted : PlatformRiskModel
        A fitted model (or one loaded with :meth:`~risklab.PlatformRiskModel.load`).
    categories : sequence of str, optional
        Categories to plan for; default all.
    sample_sizes : sequence of int
        Numbers of random audit checks per category to evaluate.
    target_power : float, default 0.8
        Power the recommended sample size must reach.
    threshold : float, default 0.95
        The audit establishes underestimation when the updated ``P(U > 1) ≥ threshold``.
    periods : "all", "last" or sequence of str, default "all"
        Periods the audit samples, listings-weighted: ``"all"`` the whole submission period
        (the audit's binomial probability is then exactly the prevalence ``U`` is about),
        ``"last"`` the most recent period.
    design : {"random"}
        Only random audits can establish ``U > 1``; ``"purposive"`` (test purchases in
        risk-selected strata) is refused with an explanation.
    method : {"reweighted", "conjugate"}
        Which power drives :attr:`AuditPlan.recommended` (both are always in the table).
    refine : bool, default False
        Bisect between the largest size that misses the target and the smallest that reaches it
        (or between 0 and the first size), assuming power rises with ``m``.
    min_ess : float, default 100
        Smallest effective sample size of the importance weights before falling back to the
        conjugate value for an outcome.
    outcomes : int, optional
        Simulate this many outcomes per sample size instead of summing over all of them.
    max_draws : int, optional
        Use a random subset of this many posterior draws (speed).
    random_seed : int, optional
        Seed of the random steps; default derived from the fit's seed.

    Returns
    -------
    AuditPlan

    Raises
    ------
    ValueError
        Unknown categories or periods, bad sample sizes, parameters out of range, or a
        purposive design.
    """
    if design == "purposive":
        raise ValueError(
            "purposive test purchases cannot establish that a claim understates prevalence: "
            "they sample risk-selected strata with an unknown selection uplift, so they bound "
            "prevalence from above only. Plan random audits (design='random') instead."
        )
    if design != "random":
        raise ValueError(f"design must be 'random', got {design!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    for name, value in (("target_power", target_power), ("threshold", threshold)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    sizes = _check_sizes(sample_sizes)
    data = fitted.submission.data
    chosen_periods = _select_periods(periods, [str(p) for p in data[PERIOD].values])
    assessed, audited, all_categories, claims = _draws(fitted, chosen_periods)
    wanted = all_categories if categories is None else [str(c) for c in categories]
    wanted = list(dict.fromkeys(wanted))
    unknown = [c for c in wanted if c not in all_categories]
    if unknown or not wanted:
        raise ValueError(f"categories: unknown {unknown}; known: {all_categories}")
    if random_seed is None:
        fit_seed = int(fitted.require_fitted().attrs.get("random_seed", 0))
        random_seed = derive_seeds(fit_seed)["posterior_predictive"]
    whole = chosen_periods == [str(p) for p in data[PERIOD].values]

    frames, recommended, warnings = [], {}, []
    for cat in wanted:
        k = all_categories.index(cat)
        rng = np.random.default_rng([random_seed, _AUDIT_STREAM, k])
        a_k, q_k = audited[:, k], assessed[:, k]
        if max_draws is not None and max_draws < a_k.size:
            pick = np.sort(rng.choice(a_k.size, size=max_draws, replace=False))
            a_k, q_k = a_k[pick], q_k[pick]
        kwargs = dict(
            assessed=None if whole else q_k,
            threshold=threshold,
            min_ess=min_ess,
            outcomes=outcomes,
            rng=rng,
        )
        frame = preposterior_power(a_k, float(claims[k]), sizes, **kwargs)
        power_col = f"power_{method}"
        best = _smallest(frame["sample_size"].values, frame[power_col].values, target_power)
        if refine:
            best = _bisect(a_k, float(claims[k]), sizes, frame, best, target_power, method, kwargs)
        recommended[cat] = best
        p_now = float(np.mean(q_k > claims[k]))
        frame.insert(0, "category", cat)
        frame.insert(2, "power", frame[power_col])
        frame["p_underestimated_now"] = p_now
        frame["power_upper_bound"] = min(1.0, p_now / threshold)
        frame["recommended_size"] = pd.array([best] * len(frame), dtype="Int64")
        frame["claimed_prevalence"] = float(claims[k])
        frames.append(frame)
        if p_now >= threshold:
            warnings.append(
                f"{cat!r}: P(U > 1) is already {p_now:.2f} ≥ {threshold} without a new audit; "
                "an audit would only confirm (or, if large, possibly overturn) it."
            )
        if best is None:
            if target_power > p_now / threshold:
                warnings.append(
                    f"{cat!r}: no audit of any size can reach power {target_power:.2f}: the "
                    f"current P(U > 1) is {p_now:.2f}, and power cannot exceed "
                    f"P(U > 1) / {threshold} = {p_now / threshold:.2f}."
                )
            else:
                warnings.append(
                    f"{cat!r}: power {target_power:.2f} is not reached within sample sizes up "
                    f"to {sizes[-1]}; try larger sizes."
                )
        if frame["fallback_share"].max() > 0.01:
            warnings.append(
                f"{cat!r}: importance weights degenerate for some outcomes (effective sample "
                "size below min_ess); the conjugate approximation was used there (see "
                "fallback_share). More posterior draws make the reweighted power exact."
            )
    table = pd.concat(frames, ignore_index=True)
    table["audit_periods"] = "all" if whole else f"{chosen_periods[0]}..{chosen_periods[-1]}"
    convergence = getattr(fitted, "convergence", None)
    table["converged"] = bool(convergence is not None and convergence.passed)
    table = table.drop(columns=["expected_p_conjugate"])[list(PLAN_COLUMNS)]
    if convergence is not None and not convergence.passed:
        warnings.insert(0, unconverged_warning(convergence, "this audit plan"))
    return AuditPlan(
        table=table,
        recommended=recommended,
        target_power=target_power,
        threshold=threshold,
        method=method,
        periods=chosen_periods,
        warnings=warnings,
        convergence=convergence,
        random_seed=int(random_seed),
    )


def _bisect(audited, claim, sizes, frame, best, target, method, kwargs) -> int | None:
    """Smallest integer m in (previous size, best] with power ≥ target (power assumed monotone)."""
    if best is None:
        return None
    position = sizes.index(best)
    lo, hi = (sizes[position - 1] if position else 0), best
    while hi - lo > 1:
        mid = (lo + hi) // 2
        power = preposterior_power(audited, claim, [mid], **kwargs)[f"power_{method}"].iloc[0]
        if power >= target:
            hi = mid
        else:
            lo = mid
    return hi
