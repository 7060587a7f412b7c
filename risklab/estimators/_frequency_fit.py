"""Fitting the zero-truncated models into a PopulationEstimate (private).

Shared by the four public model functions of :mod:`risklab.estimators.frequency`: resolves the
input, checks that N is identified, runs the MLE (:mod:`._frequency_regression`) or the Bayesian
fit (:mod:`._frequency_bayes`), and assembles the result with its warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import special

from risklab.estimators._frequency_data import (
    FrequencyEstimatorWarning,
    freq_dict,
    resolve_data,
    warn,
    warn_sparse,
)
from risklab.estimators._frequency_regression import (
    LOG_ALPHA_BOUNDS,
    CountData,
    ModelSpec,
    fit_mle,
    ht_variance,
    lognormal_interval,
    profile_interval,
    row_loglik,
)
from risklab.estimators._validation import (
    EstimatorInputError,
    check_mcmc_size,
    check_prob,
    resolve_seed,
)
from risklab.estimators.results import PopulationEstimate

__all__ = ["fit_population"]

#: A fit whose unseen-to-seen ratio exceeds this is reported as effectively unbounded.
_UNBOUNDED_RATIO = 1e3

#: An interval whose upper limit exceeds this multiple of n is reported as barely bounded.
_WEAK_RATIO = 100.0


def _identifiable(spec: ModelSpec, f: np.ndarray) -> None:
    needed = 3 if spec.one_inflated else 2
    if f.size < needed or f[needed - 1 :].sum() == 0:
        what = "three or more times" if spec.one_inflated else "more than once"
        raise EstimatorInputError(
            f"{spec.name}: no trader was detected {what}, so the number never detected is not "
            "identified (the estimate would be infinite)"
        )


def _expected(spec: ModelSpec, theta: np.ndarray, n: int, kmax: int) -> dict[int, float]:
    ks = np.arange(1, kmax + 1)
    grid = CountData(y=ks, w=np.ones(kmax), X=np.ones((kmax, 1)), names=("intercept",))
    return dict(
        zip(map(int, ks), map(float, n * np.exp(row_loglik(theta, spec, grid))), strict=True)
    )


def _parameters(spec: ModelSpec, theta: np.ndarray, data: CountData) -> dict[str, float]:
    out: dict[str, float] = {}
    p = data.X.shape[1]
    if data.intercept_only:
        out["lambda" if spec.family == "poisson" else "mu"] = float(np.exp(theta[0]))
    i = p
    if spec.family == "negbin":
        out["alpha"] = float(np.exp(theta[i]))
        i += 1
    if spec.one_inflated:
        out["omega"] = float(special.expit(theta[i]))
    return out


def fit_population(
    spec: ModelSpec,
    freq: Any,
    *,
    prob: float,
    method: str,
    covariates: Any,
    interval: str | None,
    random_seed: int | None,
    priors: Mapping[str, Any] | None,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
) -> PopulationEstimate:
    """Fit one zero-truncated model by MLE or Bayes; see :func:`~.frequency.ztpoisson`."""
    prob = check_prob(prob)
    if method not in ("mle", "bayes"):
        raise EstimatorInputError(f"method must be 'mle' or 'bayes', got {method!r}")
    if method == "bayes":
        if interval is not None:
            raise EstimatorInputError(
                "interval applies to method='mle'; a Bayesian interval is the equal-tailed "
                "posterior interval"
            )
        draws, tune, chains = check_mcmc_size(draws, tune, chains)
        random_seed = resolve_seed(random_seed)
    data = resolve_data(freq, covariates)
    f = data.frequency_array()
    _identifiable(spec, f)
    messages: list[str] = []
    if spec.one_inflated:
        warn_sparse(
            messages, f, (2, 3), f"{spec.name} (its base rests on counts >= 2)", stacklevel=5
        )
    details: dict[str, Any] = {
        "estimator": spec.name,
        "method": method,
        "frequencies": freq_dict(f),
        "covariates": list(data.names[1:]),
        "warnings": messages,
    }
    if method == "mle":
        if interval is None:
            interval = "profile" if data.intercept_only else "lognormal"
        if interval not in ("profile", "lognormal"):
            raise EstimatorInputError(
                f"interval must be 'profile' or 'lognormal', got {interval!r}"
            )
        if interval == "profile" and not data.intercept_only:
            raise EstimatorInputError(
                "interval='profile' needs the unconditional likelihood, which is not available "
                "with covariates (the covariates of undetected traders are unknown); use "
                "interval='lognormal'"
            )
        fit = fit_mle(spec, data)
        estimate, var = ht_variance(fit, data)
        problems = list(fit.problems)
        if spec.family == "negbin" and fit.theta[data.X.shape[1]] >= LOG_ALPHA_BOUNDS[1] - 1e-3:
            problems = [p for p in problems if not p.startswith("log_alpha")]
            problems.insert(
                0,
                "the likelihood increases without limit in the dispersion alpha (the log-series "
                "limit, where N is infinite): the MLE of N does not exist",
            )
            estimate, var = float("inf"), float("inf")
        se = float(np.sqrt(var)) if var >= 0 else float("nan")
        if not fit.converged:
            problems.append(f"optimiser did not converge ({fit.message})")
        if interval == "profile":
            bounds, profile_notes = profile_interval(fit, data, estimate, se, prob)
            problems.extend(profile_notes)
        else:
            bounds = lognormal_interval(estimate, var, data.n, prob)
        for problem in problems:
            warn(messages, f"{spec.name}: {problem}", FrequencyEstimatorWarning, stacklevel=4)
        details["notes"] = list(fit.notes)
        names = spec.param_names(data)
        details.update(
            {
                "f0": estimate - data.n,
                "variance": var,
                "interval_method": interval,
                "parameters": _parameters(spec, fit.theta, data),
                "theta": dict(zip(names, map(float, fit.theta), strict=True)),
                "theta_cov": fit.cov,
                "loglik": fit.loglik,
                "n_params": fit.n_params,
                "aic": fit.aic,
                "converged": fit.converged,
            }
        )
        if data.intercept_only:
            details["expected"] = _expected(spec, fit.theta, data.n, f.size)
        draws_out = None
    else:
        from risklab.estimators._frequency_bayes import sample_population

        res = sample_population(
            spec,
            data,
            prob=prob,
            priors=priors,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            target_accept=target_accept,
        )
        estimate, bounds, se, draws_out = res["estimate"], res["interval"], res["se"], res["draws"]
        for problem in res["problems"]:
            warn(messages, f"{spec.name}: {problem}", FrequencyEstimatorWarning, stacklevel=4)
        details.update(
            {
                "f0": estimate - data.n,
                "interval_method": "posterior_equal_tailed",
                "parameters": _parameters(spec, res["theta_median"], data),
                "priors": res["priors"],
                "diagnostics": res["diagnostics"],
                "converged": res["converged"],
                "random_seed": random_seed,
                "idata": res["idata"],
                "n_prior": "p(N) proportional to 1/N",
            }
        )
    if np.isfinite(estimate) and (estimate - data.n) > _UNBOUNDED_RATIO * data.n:
        warn(
            messages,
            f"{spec.name}: the estimate of never-detected traders is effectively unbounded "
            f"({estimate - data.n:.3g} for {data.n} observed); the model does not identify N",
            FrequencyEstimatorWarning,
            stacklevel=4,
        )
    elif np.isfinite(bounds[1]) and bounds[1] > _WEAK_RATIO * data.n:
        warn(
            messages,
            f"{spec.name}: the upper limit ({bounds[1]:.3g}) is over {_WEAK_RATIO:g} times the "
            f"{data.n} traders observed: the data barely bound N under this model",
            FrequencyEstimatorWarning,
            stacklevel=4,
        )
    details["detected_share"] = data.n / estimate if estimate > 0 else float("nan")
    return PopulationEstimate(
        estimate=float(estimate),
        interval=(float(bounds[0]), float(bounds[1])),
        prob=prob,
        se=float(se),
        observed=data.n,
        draws=draws_out,
        details=details,
    )
