"""Bayesian Poisson log-linear model for capture–recapture (``mse.loglinear(method="bayes")``).

The likelihood is that of :mod:`risklab.estimators._loglinear`; PyMC samples the coefficients
under weak Normal priors and the unobserved count is drawn per posterior draw, so the posterior of
``N`` includes the Poisson variation of the never-observed units.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from risklab.estimators._loglinear import (
    check_existence,
    design_matrix,
    model_label,
)
from risklab.estimators._validation import (
    CaptureTable,
    EstimatorWarning,
    chain_diagnostics,
    convergence_report,
    count_divergences,
    posterior_interval,
    run_pymc,
)
from risklab.estimators.results import PopulationEstimate


def build_bayes_model(
    ct: CaptureTable, terms: tuple[tuple[str, ...], ...], *, prior_sigma: float
) -> object:
    """PyMC model of the observed cells: Poisson counts with a log-linear mean.

    Priors (on the design centred over the observed cells, so that the intercept ``a`` is the mean
    log expected count): ``a ~ Normal(log mean count, 10)`` and every main effect and interaction
    ``beta ~ Normal(0, prior_sigma)``. The log expected count of the unobserved cell,
    ``log_mu0 = a - mean(X) @ beta``, is the intercept of the uncentred model.

    The sampler does not see ``(a, beta)`` directly: they are written ``theta_hat + chol @ z`` where
    ``theta_hat`` is the posterior mode and ``chol`` the Cholesky factor of the inverse Hessian
    there, and ``z`` (flat, with the priors added as a potential) is sampled. The posterior is the
    same; its geometry is close to a standard normal, which removes the strong correlation between
    the unobserved cell and the interactions that otherwise slows NUTS down.
    """
    import pymc as pm
    import pytensor.tensor as pt

    X, names = design_matrix(ct.histories, ct.lists, terms)
    Z = X[:, 1:]
    zbar = Z.mean(axis=0)
    D = np.column_stack([np.ones(len(Z)), Z - zbar])
    y = ct.counts.astype(float)
    prior_mean = np.zeros(D.shape[1])
    prior_mean[0] = float(np.log(y.mean() + 0.5))
    prior_sd = np.full(D.shape[1], float(prior_sigma))
    prior_sd[0] = 10.0
    theta_hat, cov = _posterior_mode(D, y, prior_mean, prior_sd)
    chol = np.linalg.cholesky(cov)
    coords = {
        "coefficient": names[1:],
        "parameter": ["mean_log_cell", *names[1:]],
        "history": ["".join(str(v) for v in row) for row in ct.histories],
    }
    with pm.Model(coords=coords) as model:
        z = pm.Flat("z", dims="parameter")
        theta = pt.as_tensor_variable(theta_hat) + pt.dot(pt.as_tensor_variable(chol), z)
        a = pm.Deterministic("mean_log_cell", theta[0])
        beta = pm.Deterministic("beta", theta[1:], dims="coefficient")
        pm.Potential(
            "priors",
            pm.logp(pm.Normal.dist(mu=prior_mean, sigma=prior_sd), theta).sum(),
        )
        eta = pt.dot(pt.as_tensor_variable(D), theta)
        pm.Poisson("counts", mu=pt.exp(eta), observed=ct.counts.astype(np.int64), dims="history")
        pm.Deterministic("log_mu0", a - pt.dot(pt.as_tensor_variable(zbar), beta))
    return model


def _posterior_mode(
    D: np.ndarray, y: np.ndarray, prior_mean: np.ndarray, prior_sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mode and inverse Hessian of Poisson log-linear likelihood times Normal priors (Newton)."""
    prec = 1.0 / prior_sd**2
    theta, *_ = np.linalg.lstsq(D, np.log(y + 0.5), rcond=None)

    def objective(t: np.ndarray) -> float:
        eta = np.clip(D @ t, -700.0, 700.0)
        return float(y @ eta - np.exp(eta).sum() - 0.5 * np.sum(prec * (t - prior_mean) ** 2))

    value = objective(theta)
    for _ in range(200):
        mu = np.exp(np.clip(D @ theta, -700.0, 700.0))
        grad = D.T @ (y - mu) - prec * (theta - prior_mean)
        hess = D.T @ (mu[:, None] * D) + np.diag(prec)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:
            cand = theta + t * step
            new = objective(cand)
            if new >= value - 1e-12 * (1 + abs(value)) or t < 1e-10:
                break
            t *= 0.5
        done = np.max(np.abs(cand - theta)) < 1e-10
        theta, value = cand, new
        if done:
            break
    mu = np.exp(np.clip(D @ theta, -700.0, 700.0))
    hess = D.T @ (mu[:, None] * D) + np.diag(prec)
    return theta, np.linalg.inv(hess)


def bayes_estimate(
    ct: CaptureTable,
    terms: tuple[tuple[str, ...], ...],
    *,
    prob: float,
    interval: str,
    prior_sigma: float,
    draws: int,
    tune: int,
    chains: int,
    sampler: str,
    seed: int,
) -> PopulationEstimate:
    model = build_bayes_model(ct, terms, prior_sigma=prior_sigma)
    idata = run_pymc(
        model,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        target_accept=0.9,
    )
    post = idata["posterior"]
    log_mu0 = np.asarray(post["log_mu0"].values, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    mu0 = np.exp(np.clip(log_mu0, None, 700.0))
    n0 = rng.poisson(np.minimum(mu0, 1e15)).astype(float)
    N = ct.n_observed + n0
    diags = {"N": chain_diagnostics(N), "log_mu0": chain_diagnostics(log_mu0)}
    divergences = count_divergences(idata)
    converged, notes = convergence_report(diags, divergences)
    ex = check_existence(design_matrix(ct.histories, ct.lists, terms)[0], ct.counts.astype(float))
    if ex.n_unbounded:
        notes.append(
            "The MLE of N does not exist for this model: the posterior of N is driven by the "
            f"Normal(0, {prior_sigma:g}) priors, not the data."
        )
    flat = N.ravel()
    low, high = posterior_interval(flat, prob, interval)
    beta = np.asarray(post["beta"].values).reshape(-1, len(terms) + ct.n_lists)
    names = list(ct.lists) + [":".join(t) for t in terms]
    details: dict[str, Any] = {
        "method": "bayes",
        "model": model_label(ct.lists, terms),
        "lists": list(ct.lists),
        "interactions": [list(t) for t in terms],
        "priors": {
            "mean_log_cell": "Normal(log(mean observed count), 10)",
            "coefficients": f"Normal(0, {prior_sigma:g})",
            "N": "N = n_observed + Poisson(exp(beta_0)) per posterior draw",
        },
        "coefficients": {
            name: {"mean": float(beta[:, i].mean()), "sd": float(beta[:, i].std())}
            for i, name in enumerate(names)
        },
        "log_mu0": {"mean": float(log_mu0.mean()), "sd": float(log_mu0.std())},
        "interval_kind": interval,
        "diagnostics": diags,
        "divergences": divergences,
        "converged": converged,
        "warnings": notes,
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": seed,
        "idata": idata,
    }
    for note in notes:
        warnings.warn(note, EstimatorWarning, stacklevel=3)
    return PopulationEstimate(
        estimate=float(np.median(flat)),
        interval=(low, high),
        prob=prob,
        se=float(flat.std(ddof=1)),
        observed=ct.n_observed,
        draws=flat,
        details=details,
    )
