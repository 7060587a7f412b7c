"""How many offending traders were never detected: frequency-of-detection estimators.

Input is the frequency table of detections per trader, ``f_k`` = number of traders detected
exactly ``k`` times (k >= 1); the traders detected zero times, ``f_0``, are unseen and the total
``N = n + f_0`` (``n = sum_k f_k``) is what every function here estimates. The table may be a
dict ``{k: f_k}``, a 1-D array whose entry ``i`` is ``f_{i+1}``, a :class:`pandas.Series` indexed
by ``k``, or a DataFrame of traders (a ``count`` column, optional ``traders`` weights).

Estimators (math and a worked example in ``docs/estimators-frequency.md``):

- :func:`chao_lower_bound` — ``n + f1^2 / (2 f2)`` (bias-corrected ``n + f1 (f1-1) / (2 (f2+1))``),
  a lower bound under heterogeneity; optionally the one-inflation-robust ``n + 2 f2^3 / (9 f3^2)``.
- :func:`zelterman` — ``lambda = 2 f2 / f1``, ``N = n / (1 - exp(-lambda))``; with covariates the
  Zelterman regression (logistic regression of f2 vs f1).
- :func:`ztpoisson`, :func:`ztnb` — zero-truncated Poisson / negative binomial, MLE or Bayesian,
  Horvitz–Thompson ``N = sum_i 1 / (1 - p0_i)``.
- :func:`one_inflated_ztpoisson`, :func:`one_inflated_ztnb` — the same with extra mass at one
  (a first takedown deters re-offending; Godwin & Böhning 2017), ``N = n / (1 - p0)`` with p0 of
  the base distribution.
- :func:`compare` — all of the above side by side.

Every function returns a :class:`~risklab.estimators.results.PopulationEstimate`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from risklab.estimators._frequency_data import (
    FreqLike,
    FrequencyEstimatorWarning,
    SparseFrequencyWarning,
    freq_dict,
    parse_table,
    resolve_data,
    warn,
    warn_sparse,
)
from risklab.estimators._frequency_fit import fit_population
from risklab.estimators._frequency_regression import (
    ModelSpec,
    fit_logistic,
    lognormal_interval,
)
from risklab.estimators._validation import EstimatorInputError, check_prob
from risklab.estimators.results import PopulationEstimate

__all__ = [
    "FrequencyEstimatorWarning",
    "SparseFrequencyWarning",
    "chao_lower_bound",
    "compare",
    "one_inflated_ztnb",
    "one_inflated_ztpoisson",
    "zelterman",
    "ztnb",
    "ztpoisson",
]

#: Default interval probability of this module (capture–recapture results are conventionally
#: reported at 95%); pass ``prob=risklab.dims.DEFAULT_PROB`` for the library-wide 90%.
DEFAULT_FREQUENCY_PROB = 0.95

Method = Literal["mle", "bayes"]


# =========================================================================== Chao
def chao_lower_bound(
    freq: FreqLike,
    *,
    prob: float = DEFAULT_FREQUENCY_PROB,
    bias_corrected: bool = True,
    one_inflation_robust: bool = False,
) -> PopulationEstimate:
    """Chao's (1987) lower bound for the number of offending traders.

    ``N = n + f1^2 / (2 f2)``, or bias-corrected ``n + f1 (f1 - 1) / (2 (f2 + 1))`` (Chao 2005),
    unbiased for homogeneous Poisson detection and a lower bound in expectation under any
    mixture of Poissons (heterogeneous traders). With ``one_inflation_robust=True`` the singletons
    are not used: ``N = n + 2 f2^3 / (9 f3^2)`` (Böhning, Kaskasamkul & van der Heijden 2019),
    bias-corrected ``n + 2 f2 (f2-1) (f2-2) / (9 (f3+1) (f3+2))``, which stays a lower bound when
    a first takedown deters re-offending (inflated f1).

    Parameters
    ----------
    freq : dict, array-like, Series or DataFrame
        Frequency table ``f_k`` of traders detected exactly k >= 1 times (see module docstring).
    prob : float, default 0.95
        Probability of the interval.
    bias_corrected : bool, default True
        Use the bias-corrected form (defined also when f2 = 0, resp. f3 = 0).
    one_inflation_robust : bool, default False
        Estimate the unseen from f2 and f3 instead of f1 and f2.

    Returns
    -------
    PopulationEstimate
        ``se`` is Chao's (1987) variance (the delta method on Poisson frequency counts plus the
        unseen count, which reproduces Chao's formulas exactly); ``interval`` is Chao's
        log-normal interval ``(n + f0 / C, n + f0 C)``. ``details`` holds ``f0``, the formula
        used, the frequencies and ``warnings``.

    Raises
    ------
    EstimatorInputError
        Invalid table, or f2 = 0 (f3 = 0) for the uncorrected estimator.

    Warns
    -----
    SparseFrequencyWarning
        When f2 (and f3 for the robust variant) is below 5.

    Examples
    --------
    >>> est = chao_lower_bound({1: 1645, 2: 183, 3: 37, 4: 13, 5: 1, 6: 1}, bias_corrected=False)
    >>> round(est.estimate, 1)
    9273.5
    """
    prob = check_prob(prob)
    f = parse_table(freq)
    n = int(f.sum())
    f1, f2, f3 = (int(f[i]) if i < f.size else 0 for i in range(3))
    messages: list[str] = []
    if one_inflation_robust:
        warn_sparse(messages, f, (2, 3), "the one-inflation-robust Chao estimator")
        if bias_corrected:
            den = (f3 + 1.0) * (f3 + 2.0)
            f0 = 2.0 * f2 * (f2 - 1.0) * (f2 - 2.0) / (9.0 * den)
            d2 = 2.0 * (3.0 * f2**2 - 6.0 * f2 + 2.0) / (9.0 * den)
            d3 = -f0 * (2.0 * f3 + 3.0) / den
            formula = "n + 2 f2 (f2-1) (f2-2) / (9 (f3+1) (f3+2))"
        else:
            if f3 == 0:
                raise EstimatorInputError(
                    "f3 = 0: the uncorrected one-inflation-robust Chao estimator is undefined; "
                    "use bias_corrected=True"
                )
            f0 = 2.0 * f2**3 / (9.0 * f3**2)
            d2 = 2.0 * f2**2 / (3.0 * f3**2)
            d3 = -4.0 * f2**3 / (9.0 * f3**3)
            formula = "n + 2 f2^3 / (9 f3^2)"
        var = f0 + d2**2 * f2 + d3**2 * f3
        name = "chao_one_inflation_robust"
    else:
        warn_sparse(messages, f, (2,), "the Chao estimator")
        if bias_corrected:
            f0 = f1 * (f1 - 1.0) / (2.0 * (f2 + 1.0))
            var = (
                f0
                + f1 * (2.0 * f1 - 1.0) ** 2 / (4.0 * (f2 + 1.0) ** 2)
                + f1**2 * f2 * (f1 - 1.0) ** 2 / (4.0 * (f2 + 1.0) ** 4)
            )
            formula = "n + f1 (f1-1) / (2 (f2+1))"
        else:
            if f2 == 0:
                raise EstimatorInputError(
                    "f2 = 0: the uncorrected Chao estimator is undefined; use bias_corrected=True"
                )
            ratio = f1 / f2
            var = f2 * (ratio**4 / 4.0 + ratio**3 + ratio**2 / 2.0)
            f0 = f1**2 / (2.0 * f2)
            formula = "n + f1^2 / (2 f2)"
        name = "chao"
    if f0 <= 0.0:
        warn(
            messages,
            "the estimated number of unseen traders is 0: the interval collapses to n",
            FrequencyEstimatorWarning,
        )
    estimate = n + f0
    return PopulationEstimate(
        estimate=float(estimate),
        interval=lognormal_interval(estimate, var, n, prob),
        prob=prob,
        se=float(np.sqrt(var)),
        observed=n,
        details={
            "estimator": name,
            "method": "closed_form",
            "formula": formula,
            "bias_corrected": bool(bias_corrected),
            "f0": float(f0),
            "variance": float(var),
            "interval_method": "lognormal",
            "lower_bound": True,
            "frequencies": freq_dict(f),
            "warnings": messages,
        },
    )


# =========================================================================== Zelterman
def zelterman(
    freq: FreqLike | None = None,
    *,
    prob: float = DEFAULT_FREQUENCY_PROB,
    covariates: pd.DataFrame | Sequence[str] | None = None,
) -> PopulationEstimate:
    """Zelterman's (1988) estimator, and Böhning & van der Heijden's (2009) Zelterman regression.

    Without covariates ``lambda = 2 f2 / f1`` and ``N = n / (1 - exp(-lambda))``: robust to
    heterogeneity in the larger counts because only f1 and f2 inform lambda. With covariates,
    ``log(lambda_i / 2) = x_i' beta`` is fitted by the logistic regression of "detected twice"
    against "detected once" among traders with one or two detections, and
    ``N = sum_i 1 / (1 - exp(-lambda_i))`` over all observed traders.

    Parameters
    ----------
    freq : dict, array-like, Series or DataFrame, optional
        Frequency table, or a trader DataFrame (``count``, optional ``traders``) when
        ``covariates`` names its columns. May be None when ``covariates`` is a DataFrame.
    prob : float, default 0.95
        Probability of the interval.
    covariates : DataFrame or list of str, optional
        Trader-level data: a DataFrame with a ``count`` column (detections, k >= 1), optional
        ``traders`` weights, and covariate columns (categorical columns are dummy-coded against
        their first sorted level, numeric ones standardised); or the names of covariate columns
        of the DataFrame passed as ``freq``.

    Returns
    -------
    PopulationEstimate
        ``se`` from the conditioning variance (Böhning 2008):
        ``sum p0_i / (1 - p0_i)^2 + g' Cov(beta) g``, with ``g`` the gradient of N in beta;
        log-normal interval. ``details`` has ``lambda`` (no covariates) or ``coefficients``.

    Warns
    -----
    SparseFrequencyWarning
        When f1 or f2 is below 5.

    Examples
    --------
    >>> round(zelterman({1: 1645, 2: 183, 3: 37, 4: 13, 5: 1, 6: 1}).estimate, 1)
    9424.6
    """
    prob = check_prob(prob)
    data = resolve_data(freq, covariates)
    f = data.frequency_array()
    messages: list[str] = []
    warn_sparse(messages, f, (1, 2), "the Zelterman estimator")
    f1, f2 = int(f[0]), int(f[1]) if f.size > 1 else 0
    if f1 == 0 or f2 == 0:
        raise EstimatorInputError(
            f"the Zelterman estimator needs traders detected once and twice (f1 = {f1}, f2 = {f2})"
        )
    sub = data.y <= 2
    beta, cov, converged = fit_logistic(
        data.X[sub], (data.y[sub] == 2).astype(float), data.w[sub].astype(float)
    )
    if not converged:
        warn(
            messages,
            "the Zelterman logistic regression did not converge (a covariate pattern has no "
            "trader detected twice, or once); the estimate is unreliable",
            FrequencyEstimatorWarning,
        )
    lam = 2.0 * np.exp(data.X @ beta)
    p_obs = -np.expm1(-lam)
    p0 = np.exp(-lam)
    estimate = float(np.sum(data.w / p_obs))
    var_sampling = float(np.sum(data.w * p0 / p_obs**2))
    grad = -(data.w * p0 * lam / p_obs**2) @ data.X
    var = var_sampling + float(grad @ cov @ grad)
    details: dict[str, Any] = {
        "estimator": "zelterman",
        "method": "logistic_regression" if not data.intercept_only else "closed_form",
        "f0": estimate - data.n,
        "variance": var,
        "interval_method": "lognormal",
        "frequencies": freq_dict(f),
        "coefficients": dict(zip(data.names, map(float, beta), strict=True)),
        "coefficient_cov": cov,
        "warnings": messages,
    }
    if data.intercept_only:
        details["lambda"] = float(lam[0])
    return PopulationEstimate(
        estimate=estimate,
        interval=lognormal_interval(estimate, var, data.n, prob),
        prob=prob,
        se=float(np.sqrt(var)),
        observed=data.n,
        details=details,
    )


# =========================================================================== likelihood models
def ztpoisson(
    freq: FreqLike | None = None,
    *,
    prob: float = DEFAULT_FREQUENCY_PROB,
    method: Method = "mle",
    covariates: pd.DataFrame | Sequence[str] | None = None,
    interval: Literal["profile", "lognormal"] | None = None,
    random_seed: int | None = None,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    target_accept: float = 0.9,
) -> PopulationEstimate:
    """Zero-truncated Poisson estimator (van der Heijden et al. 2003).

    Every offending trader is detected a Poisson(lambda) number of times (``log lambda_i =
    x_i' beta`` with covariates), so the detected counts are zero-truncated Poisson and
    ``N = sum_i 1 / (1 - exp(-lambda_i))`` (``n / (1 - exp(-lambda))`` without covariates).
    Homogeneity is a strong assumption: under heterogeneity the ZTP underestimates N (use
    :func:`ztnb`, and :func:`chao_lower_bound` as a floor).

    Parameters
    ----------
    freq : dict, array-like, Series or DataFrame, optional
        Frequency table ``f_k`` (k >= 1), or a trader DataFrame (``count``, optional
        ``traders``); None when ``covariates`` is a DataFrame.
    prob : float, default 0.95
        Probability of the interval.
    method : {"mle", "bayes"}, default "mle"
        Maximum likelihood, or the PyMC/nutpie posterior with ``N - n | theta ~ NegBin(n,
        1 - p0)``, the exact posterior under the prior ``p(N) ∝ 1/N`` (see
        ``docs/estimators-frequency.md``).
    covariates : DataFrame or list of str, optional
        Trader-level covariates of the detection rate, as in :func:`zelterman`.
    interval : {"profile", "lognormal"}, optional
        MLE only. ``"profile"`` (the default without covariates): profile likelihood of N under
        the unconditional binomial likelihood. ``"lognormal"`` (the default, and the only choice,
        with covariates): Chao's log-normal interval from the conditioning variance.
    random_seed : int, optional
        Seed of the Bayesian fit (sampler and the draws of the never-detected count).
    priors : mapping, optional
        Bayesian prior overrides by name (``"beta"``; plus ``"log_alpha"`` for the NB and
        ``"omega"`` for one-inflated models) as ``risklab.priors.Prior`` or its dict form.
    draws, tune, chains : int, default 1000, 1000, 2
        Sampler settings of the Bayesian fit.
    target_accept : float, default 0.9
        NUTS target acceptance of the Bayesian fit.

    Returns
    -------
    PopulationEstimate
        MLE: ``estimate`` is the Horvitz–Thompson total at the conditional MLE, ``se`` its
        conditioning standard error (sampling term ``sum p0_i / (1 - p0_i)^2`` plus the delta-
        method term). Bayes: posterior median, equal-tailed interval, posterior s.d. and the
        ``draws`` of N. ``details`` holds ``parameters``, ``aic`` (MLE; conditional likelihood,
        comparable across the four models), ``expected`` frequencies (no covariates),
        ``diagnostics``, ``priors`` and ``idata`` (Bayes), ``notes`` and ``warnings``.

    Raises
    ------
    EstimatorInputError
        Invalid input, or no trader detected more than once (N is not identified).

    Warns
    -----
    FrequencyEstimatorWarning
        Boundary fits, an unbounded interval, or an unconverged sampler.

    Examples
    --------
    >>> est = ztpoisson({1: 1645, 2: 183, 3: 37, 4: 13, 5: 1, 6: 1})
    >>> round(est.estimate), round(est.se)
    (7080, 366)
    """
    return fit_population(
        ModelSpec("poisson"), freq, prob=prob, method=method, covariates=covariates,
        interval=interval, random_seed=random_seed, priors=priors, draws=draws, tune=tune,
        chains=chains, target_accept=target_accept,
    )  # fmt: skip


def ztnb(
    freq: FreqLike | None = None,
    *,
    prob: float = DEFAULT_FREQUENCY_PROB,
    method: Method = "mle",
    covariates: pd.DataFrame | Sequence[str] | None = None,
    interval: Literal["profile", "lognormal"] | None = None,
    random_seed: int | None = None,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    target_accept: float = 0.9,
) -> PopulationEstimate:
    """Zero-truncated negative binomial estimator (gamma-distributed detection rates).

    Detection rates vary over traders as a gamma distribution (mean mu, ``Var(Y) = mu +
    alpha mu^2``), so detected counts are zero-truncated NB and ``N = n / (1 - p0)`` with
    ``p0 = (1 + alpha mu)^(-1/alpha)``. The likelihood is often flat in alpha and N then very
    uncertain: the profile interval may be unbounded above, and when the likelihood keeps
    rising towards the log-series limit (alpha -> infinity) the MLE of N does not exist — the
    estimate is then ``inf`` with a warning. The Bayesian fit's prior on ``log_alpha`` keeps N
    finite and says so. Parameters and returns are those of :func:`ztpoisson`.

    Examples
    --------
    >>> est = ztnb([43, 16, 8, 6, 0, 2, 1])  # cottontail rabbits: heterogeneous, N = 135
    >>> round(est.estimate)
    225
    """
    return fit_population(
        ModelSpec("negbin"), freq, prob=prob, method=method, covariates=covariates,
        interval=interval, random_seed=random_seed, priors=priors, draws=draws, tune=tune,
        chains=chains, target_accept=target_accept,
    )  # fmt: skip


def one_inflated_ztpoisson(
    freq: FreqLike | None = None,
    *,
    prob: float = DEFAULT_FREQUENCY_PROB,
    method: Method = "mle",
    covariates: pd.DataFrame | Sequence[str] | None = None,
    interval: Literal["profile", "lognormal"] | None = None,
    random_seed: int | None = None,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    target_accept: float = 0.9,
) -> PopulationEstimate:
    """One-inflated zero-truncated Poisson estimator (Godwin & Böhning 2017).

    A share omega of the traders detected at least once is deterred by the first takedown and
    never detected again, which inflates f1: ``q(1) = omega + (1 - omega) q_P(1)`` and
    ``q(k) = (1 - omega) q_P(k)`` for k >= 2, with q_P the zero-truncated Poisson. Deterrence
    does not touch the traders never detected, so ``N = n / (1 - exp(-lambda))`` with lambda of
    the base Poisson, which the counts >= 2 alone identify (its likelihood is the
    zero-one-truncated one; Böhning & van der Heijden 2019). Parameters and returns are those
    of :func:`ztpoisson`; ``details["parameters"]["omega"]`` is the deterred share.

    Raises
    ------
    EstimatorInputError
        Also when no trader was detected three or more times.
    """
    return fit_population(
        ModelSpec("poisson", one_inflated=True), freq, prob=prob, method=method,
        covariates=covariates, interval=interval, random_seed=random_seed, priors=priors,
        draws=draws, tune=tune, chains=chains, target_accept=target_accept,
    )  # fmt: skip


def one_inflated_ztnb(
    freq: FreqLike | None = None,
    *,
    prob: float = DEFAULT_FREQUENCY_PROB,
    method: Method = "mle",
    covariates: pd.DataFrame | Sequence[str] | None = None,
    interval: Literal["profile", "lognormal"] | None = None,
    random_seed: int | None = None,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    target_accept: float = 0.9,
) -> PopulationEstimate:
    """One-inflated zero-truncated negative binomial estimator.

    :func:`one_inflated_ztpoisson` with a gamma-Poisson (NB) base: ``N = n / (1 - p0)`` with
    ``p0 = (1 + alpha mu)^(-1/alpha)``; mu and alpha are identified by the counts >= 2 only, so
    it needs well-populated f2, f3, ... and is the least stable of the four models. Parameters
    and returns are those of :func:`ztpoisson`.
    """
    return fit_population(
        ModelSpec("negbin", one_inflated=True), freq, prob=prob, method=method,
        covariates=covariates, interval=interval, random_seed=random_seed, priors=priors,
        draws=draws, tune=tune, chains=chains, target_accept=target_accept,
    )  # fmt: skip


# =========================================================================== compare
def compare(freq: FreqLike, *, prob: float = DEFAULT_FREQUENCY_PROB) -> pd.DataFrame:
    """All frequency estimators (closed forms and MLEs) on one table, side by side.

    Parameters
    ----------
    freq : dict, array-like, Series or DataFrame
        Frequency table ``f_k`` (k >= 1).
    prob : float, default 0.95
        Probability of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per estimator with columns ``estimator, estimate, low, high, se, AIC, notes``.
        AIC (conditional likelihood, comparable across the four likelihood models) is NaN for
        the closed forms. An estimator that cannot be computed on this table has NaN numbers
        and the reason in ``notes``; warnings go to ``notes`` too instead of being raised.
    """
    prob = check_prob(prob)
    f = parse_table(freq)
    runs = [
        ("chao", lambda: chao_lower_bound(f, prob=prob), "lower bound"),
        (
            "chao_one_inflation_robust",
            lambda: chao_lower_bound(f, prob=prob, one_inflation_robust=True),
            "lower bound robust to one-inflation",
        ),
        ("zelterman", lambda: zelterman(f, prob=prob), ""),
        ("ztpoisson", lambda: ztpoisson(f, prob=prob), ""),
        ("ztnb", lambda: ztnb(f, prob=prob), ""),
        ("one_inflated_ztpoisson", lambda: one_inflated_ztpoisson(f, prob=prob), ""),
        ("one_inflated_ztnb", lambda: one_inflated_ztnb(f, prob=prob), ""),
    ]
    rows = []
    for name, run, note in runs:
        notes = [note] if note else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FrequencyEstimatorWarning)
            try:
                est = run()
            except EstimatorInputError as exc:
                rows.append(
                    {"estimator": name, "estimate": np.nan, "low": np.nan, "high": np.nan,
                     "se": np.nan, "AIC": np.nan, "notes": "; ".join([*notes, str(exc)])}
                )  # fmt: skip
                continue
        params = est.details.get("parameters", {})
        if params:
            notes.append(", ".join(f"{k}={v:.3g}" for k, v in params.items()))
        notes.extend(est.details.get("notes", []))
        notes.extend(est.details.get("warnings", []))
        rows.append(
            {
                "estimator": name,
                "estimate": est.estimate,
                "low": est.interval[0],
                "high": est.interval[1],
                "se": est.se,
                "AIC": est.details.get("aic", np.nan),
                "notes": "; ".join(notes),
            }
        )
    return pd.DataFrame(
        rows, columns=["estimator", "estimate", "low", "high", "se", "AIC", "notes"]
    )
