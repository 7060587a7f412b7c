"""Multiple-systems estimation (capture–recapture) of a hidden population's size.

Three estimators work on the same input, a capture-history table: a pandas DataFrame with one 0/1
column per list (column names are the list names) and a ``count`` column, one row per observed
history (histories not listed have count 0; the all-zero history is not allowed):

* :func:`loglinear` — Poisson log-linear models with chosen list interactions, by maximum
  likelihood (standard error, deviance, AIC, profile-likelihood interval) or Bayesian (PyMC);
* :func:`latent_class` — the non-parametric latent-class model of Manrique-Vallier (2016), which
  absorbs heterogeneous capture probabilities and the list dependence they induce;
* :func:`compare` — the model-dependence report: the same data through several models, side by
  side, because the estimate moves with the model and a user must see by how much.

The mathematics and a worked example are in ``docs/estimators-capture-recapture.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from risklab.estimators import _latent_class, _loglinear, _loglinear_bayes
from risklab.estimators._validation import (
    INTERVALS,
    SAMPLERS,
    CaptureTable,
    EstimatorInputError,
    EstimatorWarning,
    check_choice,
    check_count,
    check_mcmc_size,
    check_prob,
    normalise_interactions,
    resolve_seed,
    validate_capture_table,
)
from risklab.estimators.results import PopulationEstimate

__all__ = ["compare", "latent_class", "loglinear"]

Interactions = Iterable[Sequence[str] | str]


def _check_overlaps(ct: CaptureTable, terms: Sequence[tuple[str, ...]]) -> None:
    """Refuse interactions among lists that share no unit: their MLE is -inf."""
    for term in terms:
        if ct.overlap(term) == 0:
            names = " and ".join(repr(t) for t in term)
            raise EstimatorInputError(
                f"Lists {names} never overlap (no unit was captured by all of them), so the "
                f"{':'.join(term)} interaction is not identifiable: its maximum-likelihood value "
                "is -infinity and any population estimate built on it would be arbitrary. Drop "
                "this interaction, or merge the lists."
            )


def _prepare(
    table: pd.DataFrame, interactions: Interactions | None, hierarchical: bool
) -> tuple[CaptureTable, tuple[tuple[str, ...], ...]]:
    ct = validate_capture_table(table)
    terms = normalise_interactions(interactions, ct.lists, hierarchical=hierarchical)
    _check_overlaps(ct, terms)
    X, _ = _loglinear.design_matrix(ct.histories, ct.lists, terms)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise EstimatorInputError(
            f"The model {_loglinear.model_label(ct.lists, terms)} has more parameters "
            f"({X.shape[1]}) than the {X.shape[0]} observed cells can identify; remove "
            "interactions."
        )
    return ct, terms


def loglinear(
    table: pd.DataFrame,
    *,
    interactions: Interactions = (),
    method: str = "mle",
    prob: float = 0.95,
    hierarchical: bool = True,
    interval: str = "eti",
    prior_sigma: float = 5.0,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    random_seed: int | None = None,
) -> PopulationEstimate:
    """Estimate the population size with a Poisson log-linear model.

    The ``2**L - 1`` observed cells (zero counts included) are fitted with main effects for every
    list plus the requested interactions; the all-zero cell is extrapolated as ``exp(intercept)``.

    Parameters
    ----------
    table : pandas.DataFrame
        One 0/1 column per list and a ``count`` column (see the module docstring).
    interactions : iterable of tuple of str or str, default ()
        Interaction terms, e.g. ``[("A", "B")]`` or ``["A:B", "B:C"]``; ``()`` is the independence
        model. A term over all lists is refused (never identifiable), and so is a term whose lists
        never overlap (its MLE is minus infinity).
    method : {"mle", "bayes"}, default "mle"
        Maximum likelihood with a profile-likelihood interval, or a Bayesian fit with PyMC.
    prob : float, default 0.95
        Probability mass of the interval.
    hierarchical : bool, default True
        Add the lower-order interactions contained in each requested term.
    interval : {"eti", "hdi"}, default "eti"
        For ``method="bayes"``: equal-tailed or shortest posterior interval.
    prior_sigma : float, default 5.0
        For ``method="bayes"``: standard deviation of the Normal(0, ·) priors on the main effects
        and interactions (log scale). The mean log expected cell count has a Normal(log of the
        mean observed count, 10) prior.
    draws, tune, chains : int, default 1000, 1000, 4
        For ``method="bayes"``: MCMC draws and warm-up per chain, and number of chains.
    sampler : {"nutpie", "pymc"}, default "nutpie"
        For ``method="bayes"``: NUTS implementation.
    random_seed : int, optional
        For ``method="bayes"``: seed of the sampler and of the draws of the unobserved count; a
        fresh seed is drawn (and recorded in ``details``) when omitted.

    Returns
    -------
    PopulationEstimate
        ``estimate`` is the MLE ``n + exp(beta_0)`` (Poisson model) or the posterior median of
        ``N``; ``se`` the delta-method standard error or the posterior s.d.; ``details`` holds the
        deviance, ``df``, ``AIC``, coefficients, fitted values, the multinomial MLE and any
        warnings (MLE), or the priors, diagnostics and the ``xarray.DataTree`` (Bayes).

    Raises
    ------
    EstimatorInputError
        For an invalid table, an unknown list in ``interactions``, an interaction over all lists,
        lists that never overlap, or a non-identifiable design.

    Warns
    -----
    EstimatorWarning
        When the MLE does not exist (some cells fitted as zero; ``N`` may be unbounded) or the
        MCMC did not converge.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"A": [1, 1, 0], "B": [1, 0, 1], "count": [167, 781, 254]})
    >>> round(loglinear(t).estimate, 1)  # Lincoln-Petersen: 948 * 421 / 167
    2389.9
    """
    check_choice(method, "method", ("mle", "bayes"))
    prob = check_prob(prob)
    ct, terms = _prepare(table, interactions, hierarchical)
    if method == "mle":
        return _loglinear.mle_estimate(ct, terms, prob)
    check_choice(interval, "interval", INTERVALS)
    check_choice(sampler, "sampler", SAMPLERS)
    draws, tune, chains = check_mcmc_size(draws, tune, chains)
    if not prior_sigma > 0:
        raise EstimatorInputError(f"'prior_sigma' must be positive; got {prior_sigma!r}.")
    return _loglinear_bayes.bayes_estimate(
        ct,
        terms,
        prob=prob,
        interval=interval,
        prior_sigma=float(prior_sigma),
        draws=draws,
        tune=tune,
        chains=chains,
        sampler=sampler,
        seed=resolve_seed(random_seed),
    )


def latent_class(
    table: pd.DataFrame,
    *,
    prob: float = 0.95,
    random_seed: int | None = None,
    n_classes: int = 10,
    draws: int = 1000,
    burn: int = 5000,
    thin: int = 30,
    chains: int = 4,
    interval: str = "eti",
    alpha_prior: tuple[float, float] = (0.25, 0.25),
    capture_prior: tuple[float, float] = (1.0, 1.0),
    engine: str = "numba",
) -> PopulationEstimate:
    """Estimate the population size with the non-parametric latent-class model (LCMCR).

    Units belong to latent classes with a truncated Dirichlet-process (stick-breaking) prior; within
    a class the lists capture independently. Mixing over classes absorbs heterogeneous capture
    probabilities and the list dependence they induce (Manrique-Vallier 2016). The prior on ``N``
    is ``1/N``. The posterior is sampled with Manrique-Vallier's data-augmentation Gibbs sampler,
    plus Metropolis moves on the unobserved counts with the class weights and capture
    probabilities integrated out, which make ``N`` mix several times faster.

    Parameters
    ----------
    table : pandas.DataFrame
        One 0/1 column per list and a ``count`` column.
    prob : float, default 0.95
        Probability mass of the interval.
    random_seed : int, optional
        Seed of the sampler; a fresh one is drawn (and recorded in ``details``) when omitted.
    n_classes : int, default 10
        Truncation level ``K`` of the stick-breaking prior (the maximum number of classes).
    draws : int, default 1000
        Retained draws per chain.
    burn : int, default 5000
        Gibbs sweeps discarded at the start of each chain.
    thin : int, default 30
        Keep one sweep in ``thin`` (successive values of ``N`` are strongly autocorrelated).
    chains : int, default 4
        Independent chains, used for R-hat.
    interval : {"eti", "hdi"}, default "eti"
        Equal-tailed or shortest posterior interval.
    alpha_prior : tuple of float, default (0.25, 0.25)
        Shape and rate of the Gamma prior on the stick-breaking concentration ``alpha``.
    capture_prior : tuple of float, default (1.0, 1.0)
        Beta prior on every within-class capture probability.
    engine : {"numba", "numpy"}, default "numba"
        Compiled sampler, or the (much slower) pure-NumPy reference implementation.

    Returns
    -------
    PopulationEstimate
        ``estimate`` is the posterior median of ``N``, ``se`` its posterior s.d., ``draws`` all
        retained draws of ``N``; ``details`` has the posterior of ``alpha`` and of the number of
        occupied classes, R-hat and ESS of ``N``, ``converged`` and ``warnings``.

    Notes
    -----
    Class labels are not identified (label switching), but ``N``, ``alpha`` and the number of
    occupied classes do not depend on the labels, so they are summarised directly; class-specific
    parameters are not reported.

    The first call in a fresh installation compiles the sampler with numba (about 10–15 s); the
    compiled code is cached on disk for later sessions.
    """
    prob = check_prob(prob)
    check_choice(interval, "interval", INTERVALS)
    check_choice(engine, "engine", ("numba", "numpy"))
    ct = validate_capture_table(table)
    K = check_count(n_classes, "n_classes", allow_zero=False)
    draws, burn, chains = check_mcmc_size(draws, burn, chains)
    thin = check_count(thin, "thin", allow_zero=False)
    for name, pair in (("alpha_prior", alpha_prior), ("capture_prior", capture_prior)):
        if len(pair) != 2 or not all(float(v) > 0 for v in pair):
            raise EstimatorInputError(f"'{name}' must be two positive numbers; got {pair!r}.")
    return _latent_class.estimate(
        ct,
        prob=prob,
        random_seed=resolve_seed(random_seed),
        n_classes=K,
        draws=draws,
        burn=burn,
        thin=thin,
        chains=chains,
        interval=interval,
        alpha_prior=(float(alpha_prior[0]), float(alpha_prior[1])),
        capture_prior=(float(capture_prior[0]), float(capture_prior[1])),
        engine=engine,
    )


def _stepwise_aic(
    ct: CaptureTable, pairs: list[tuple[str, str]]
) -> tuple[tuple[tuple[str, ...], ...], float]:
    """Forward selection of two-list interactions by AIC, among identifiable bounded models."""
    current: list[tuple[str, str]] = []
    best = _loglinear.fit_mle(ct, ())
    best_aic = best.aic
    while True:
        candidates = []
        for pair in pairs:
            if pair in current:
                continue
            terms = normalise_interactions([*current, pair], ct.lists)
            X, _ = _loglinear.design_matrix(ct.histories, ct.lists, terms)
            if np.linalg.matrix_rank(X) < X.shape[1]:
                continue
            fit = _loglinear.fit_mle(ct, terms)
            if fit.existence.n_unbounded or not fit.existence.exists:
                continue
            candidates.append((fit.aic, pair))
        if not candidates:
            break
        aic, pair = min(candidates)
        if aic >= best_aic:
            break
        current.append(pair)
        best_aic = aic
    return normalise_interactions(current, ct.lists), best_aic


def compare(
    table: pd.DataFrame,
    *,
    prob: float = 0.95,
    models: dict[str, Interactions] | None = None,
    include_latent_class: bool = True,
    random_seed: int | None = None,
    latent_class_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit several capture–recapture models to the same table, side by side.

    Estimates on the same data can differ several-fold between models that fit about equally
    well; this report makes that model dependence visible instead of hiding it behind one number.

    Parameters
    ----------
    table : pandas.DataFrame
        One 0/1 column per list and a ``count`` column.
    prob : float, default 0.95
        Probability mass of the intervals.
    models : dict, optional
        ``{label: interactions}`` of log-linear models to fit. By default: independence; each
        two-list interaction alone; all two-list interactions (three or more lists); and the
        model chosen by forward AIC selection among two-list interactions.
    include_latent_class : bool, default True
        Add the latent-class (LCMCR) model (a few seconds of Gibbs sampling).
    random_seed : int, optional
        Seed of the latent-class sampler (recorded in its row's notes).
    latent_class_options : dict, optional
        Extra keyword arguments for :func:`latent_class` (e.g. ``{"thin": 50}``).

    Returns
    -------
    pandas.DataFrame
        One row per model with columns ``model``, ``estimate``, ``low``, ``high``, ``AIC``
        (log-linear MLEs only), ``notes``, then ``se``, ``deviance``, ``df`` and ``method``. A
        model that is refused (non-overlapping lists) or whose MLE does not exist keeps its row,
        with NaN or inf and the reason in ``notes``. ``delta_AIC`` is relative to the best
        log-linear model; ``attrs["spread"]`` summarises how far the estimates range.
    """
    prob = check_prob(prob)
    ct = validate_capture_table(table)
    if models is None:
        pairs = list(combinations(ct.lists, 2))
        models = {"independence": ()}
        for a, b in pairs:
            models[f"{a}:{b}"] = [(a, b)]
        if ct.n_lists >= 3:
            models["all two-list interactions"] = pairs
        step_terms, _ = _stepwise_aic(ct, pairs)
        label = "stepwise AIC: " + (" + ".join(":".join(t) for t in step_terms) or "independence")
        models[label] = step_terms
    rows: list[dict[str, Any]] = []
    for label, inter in models.items():
        row: dict[str, Any] = {"model": label, "method": "log-linear MLE"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EstimatorWarning)
                res = loglinear(table, interactions=inter, prob=prob)
        except EstimatorInputError as err:
            row.update(
                estimate=np.nan,
                low=np.nan,
                high=np.nan,
                AIC=np.nan,
                se=np.nan,
                deviance=np.nan,
                df=np.nan,
                notes=f"refused: {err}",
            )
            rows.append(row)
            continue
        d = res.details
        notes = list(d["warnings"])
        if d["df"] > 0 and d["p_value"] < 0.05:
            notes.append(
                f"poor fit (deviance {d['deviance']:.1f} on {d['df']} df, p = {d['p_value']:.3g})"
            )
        row.update(
            estimate=res.estimate,
            low=res.interval[0],
            high=res.interval[1],
            AIC=d["AIC"],
            se=res.se,
            deviance=d["deviance"],
            df=d["df"],
            notes="; ".join(notes),
        )
        rows.append(row)
    if include_latent_class:
        opts = dict(latent_class_options or {})
        opts.setdefault("random_seed", random_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimatorWarning)
            res = latent_class(table, prob=prob, **opts)
        d = res.details
        notes = list(d["warnings"])
        notes.append(f"posterior median and {prob:.0%} interval; seed {d['random_seed']}")
        rows.append(
            {
                "model": "latent class (LCMCR)",
                "method": "Bayesian latent class",
                "estimate": res.estimate,
                "low": res.interval[0],
                "high": res.interval[1],
                "AIC": np.nan,
                "se": res.se,
                "deviance": np.nan,
                "df": np.nan,
                "notes": "; ".join(notes),
            }
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "model",
            "estimate",
            "low",
            "high",
            "AIC",
            "notes",
            "se",
            "deviance",
            "df",
            "method",
        ],
    )
    finite_aic = out["AIC"].where(np.isfinite(out["estimate"]))
    out["delta_AIC"] = out["AIC"] - finite_aic.min()
    est = out["estimate"][np.isfinite(out["estimate"])]
    if len(est):
        out.attrs["spread"] = {
            "min": float(est.min()),
            "max": float(est.max()),
            "ratio": float(est.max() / est.min()),
            "observed": ct.n_observed,
        }
    return out
