"""Bayesian zero-truncated count estimators in PyMC (private).

Construction
------------
The parameters ``theta`` of the zero-truncated model are sampled (nutpie) from their posterior
under the *conditional* likelihood ``prod_i q(y_i | theta)^{w_i}`` and the priors below. The
number of traders never detected then follows from its predictive distribution given theta and
the n traders observed::

    n0 | theta, n  ~  NegativeBinomial(n, 1 - p0(theta))        (failures before n successes)

which is the exact posterior of ``N - n`` under the full (binomial) likelihood and the
scale-invariant prior ``p(N) ∝ 1/N``: with that prior the marginal posterior of theta is the
conditional-likelihood posterior, and ``N - n | theta`` is negative binomial. With covariates the
same holds per covariate pattern (an independent ``1/N_x`` prior for each pattern), so
``n0 = sum_rows NegativeBinomial(w_i, 1 - p0_i)``. The draws of n0 are made with NumPy from a
seed derived from ``random_seed``, one per posterior draw.

Default priors (weakly informative; override by name with ``priors=``)
----------------------------------------------------------------------
``beta``       Normal(0, 2) on each coefficient of ``log E[Y]`` (the base count's mean; numeric
               covariates are standardised): the intercept alone allows mean detections per
               trader from about 0.02 to 50 (95%).
``log_alpha``  Normal(0, 1.5), NB dispersion ``Var = mu + alpha mu^2``: alpha from 0.05 (close
               to Poisson) to 19 (very heterogeneous), 95%. It keeps the notoriously flat ZTNB
               likelihood from running to alpha -> infinity, where N is unbounded.
``omega``      Beta(1, 1), the share of first-detected traders deterred from any further
               detection (one-inflation).
"""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from risklab.estimators._frequency_regression import CountData, ModelSpec, base_logprobs
from risklab.estimators._validation import chain_diagnostics, convergence_report, count_divergences
from risklab.models.numerics import strict_floating_point
from risklab.models.nutpie_cache import cached_nutpie_compilation
from risklab.priors import Prior, resolve_priors

__all__ = ["build_model", "default_priors", "sample_population"]

COEF_DIM = "coefficient"


def default_priors(spec: ModelSpec) -> dict[str, Prior]:
    """The default priors of a model (see the module docstring)."""
    out = {"beta": Prior("Normal", mu=0.0, sigma=2.0, dims=COEF_DIM)}
    if spec.family == "negbin":
        out["log_alpha"] = Prior("Normal", mu=0.0, sigma=1.5)
    if spec.one_inflated:
        out["omega"] = Prior("Beta", alpha=1.0, beta=1.0)
    return out


def build_model(
    spec: ModelSpec, data: CountData, priors: dict[str, Prior]
) -> tuple[pm.Model, pt.TensorVariable]:
    """PyMC model of the conditional likelihood; returns the model and its log-likelihood term."""
    X = np.asarray(data.X, dtype=float)
    y = np.asarray(data.y, dtype=float)
    w = np.asarray(data.w, dtype=float)
    with pm.Model(coords={COEF_DIM: list(data.names)}) as model:
        beta = priors["beta"].create_variable("beta")
        eta = pt.dot(X, beta)
        if spec.family == "poisson":
            lam = pt.exp(eta)
            log_p0 = -lam
            log_py = y * eta - lam - pt.gammaln(y + 1.0)
        else:
            log_alpha = priors["log_alpha"].create_variable("log_alpha")
            alpha = pt.exp(log_alpha)
            r = 1.0 / alpha
            amu = alpha * pt.exp(eta)
            l1p = pt.log1p(amu)
            log_p0 = -r * l1p
            log_py = (
                pt.gammaln(y + r)
                - pt.gammaln(r)
                - pt.gammaln(y + 1.0)
                - r * l1p
                + y * (pt.log(amu) - l1p)
            )
        log_trunc = log_py - pt.log(-pt.expm1(log_p0))
        if spec.one_inflated:
            omega = priors["omega"].create_variable("omega")
            inflated = pt.logaddexp(pt.log(omega), pt.log1p(-omega) + log_trunc)
            row = pt.switch(pt.eq(y, 1.0), inflated, pt.log1p(-omega) + log_trunc)
        else:
            row = log_trunc
        loglik = pt.sum(w * row)
        pm.Potential("loglik", loglik)
    return model, loglik


def _theta_draws(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """Stack posterior draws into the engine's ``theta`` layout: (chain, draw, params)."""
    parts = [np.asarray(posterior["beta"].transpose("chain", "draw", COEF_DIM))]
    if spec.family == "negbin":
        parts.append(np.asarray(posterior["log_alpha"].transpose("chain", "draw"))[..., None])
    if spec.one_inflated:
        omega = np.asarray(posterior["omega"].transpose("chain", "draw"))
        parts.append(np.log(omega / (1.0 - omega))[..., None])
    return np.concatenate(parts, axis=-1)


def sample_population(
    spec: ModelSpec,
    data: CountData,
    *,
    prob: float,
    priors: dict | None,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    target_accept: float,
) -> dict:
    """Sample the posterior and the number never detected; returns the pieces of a result."""
    resolved = resolve_priors(default_priors(spec), priors)
    if not resolved["beta"].dims:  # one prior for every coefficient
        resolved["beta"] = Prior.from_dict({**resolved["beta"].to_dict(), "dims": [COEF_DIM]})
    seeds = np.random.SeedSequence(random_seed).spawn(2)
    sampler_seed = int(seeds[0].generate_state(1)[0])
    model, _ = build_model(spec, data, resolved)
    n_params = data.X.shape[1] + (spec.family == "negbin") + spec.one_inflated
    adaptation = "low_rank" if n_params > 1 else "diag"
    with model, warnings.catch_warnings(), strict_floating_point(), cached_nutpie_compilation():
        warnings.filterwarnings("ignore", message=".*[Nn]umba.*")
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            nuts_sampler="nutpie",
            random_seed=sampler_seed,
            progressbar=False,
            target_accept=target_accept,
            # a low-rank mass matrix follows the (mean, dispersion) ridge of the truncated NB
            nuts={"adaptation": adaptation},
        )
    posterior = idata["posterior"].to_dataset()
    theta = _theta_draws(posterior, spec)  # (chain, draw, params)
    _, log_pos, _ = base_logprobs(theta, spec, data)  # (chain, draw, rows)
    p_obs = np.clip(np.exp(log_pos), 1e-12, 1.0)
    rng = np.random.default_rng(seeds[1])
    n0 = rng.negative_binomial(data.w.astype(np.int64), p_obs).sum(axis=-1)
    total = data.n + n0  # (chain, draw)
    idata["posterior"] = (
        idata["posterior"]
        .to_dataset()
        .assign(N=(("chain", "draw"), total), n0=(("chain", "draw"), n0))
    )

    names = spec.param_names(data)
    per_quantity = {name: chain_diagnostics(theta[..., j]) for j, name in enumerate(names)}
    per_quantity["N"] = chain_diagnostics(total.astype(float))
    divergences = count_divergences(idata)
    converged, problems = convergence_report(per_quantity, divergences)
    diagnostics = {
        "max_rhat": float(np.nanmax([d["rhat"] for d in per_quantity.values()])),
        "min_ess_bulk": float(np.nanmin([d["ess_bulk"] for d in per_quantity.values()])),
        "divergences": divergences,
        "per_quantity": per_quantity,
        "draws": int(draws),
        "tune": int(tune),
        "chains": int(chains),
        "sampler": "nutpie",
        "adaptation": adaptation,
        "sampler_seed": sampler_seed,
    }
    flat = total.ravel().astype(float)
    tail = (1.0 - prob) / 2.0
    low, high = np.quantile(flat, [tail, 1.0 - tail])
    return {
        "estimate": float(np.median(flat)),
        "interval": (float(low), float(high)),
        "se": float(np.std(flat, ddof=1)),
        "draws": total.ravel(),
        "idata": idata,
        "diagnostics": diagnostics,
        "converged": converged,
        "problems": problems,
        "priors": {name: prior.to_dict() for name, prior in resolved.items()},
        "theta_median": np.median(theta.reshape(-1, theta.shape[-1]), axis=0),
    }
