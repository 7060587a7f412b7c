"""Likelihood engine of the zero-truncated count estimators (private).

The zero-truncated Poisson (ZTP) and negative binomial (ZTNB) models and their one-inflated
variants are fitted here by maximum likelihood on grouped data: one row per distinct
(count, covariate pattern) with the number of traders in that row as weight, so the cost does not
grow with the number of traders. An intercept-only design is the plain frequency-table model.
The public functions and documentation live in :mod:`risklab.estimators.frequency`, input
parsing in ``_frequency_data``, the assembly of results in ``_frequency_fit`` and the PyMC
versions in ``_frequency_bayes``.

Parametrisation (vector ``theta``): ``beta`` (log mean of the *untruncated* base count, one per
design column), then ``log_alpha`` (negative binomial dispersion, ``Var = mu + alpha mu^2``) for
the NB family, then ``logit_omega`` (one-inflation) for one-inflated models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "CountData",
    "MLEFit",
    "ModelSpec",
    "fit_logistic",
    "fit_mle",
    "horvitz_thompson",
    "lognormal_interval",
    "profile_interval",
]

#: Box constraints of the nuisance parameters; a fit on a bound is snapped to it and reported
#: (log alpha = -12: the NB is Poisson; = 8: the log-series limit, N unbounded).
LOG_ALPHA_BOUNDS = (-12.0, 8.0)
LOGIT_OMEGA_BOUNDS = (-18.0, 18.0)
#: Nominal range of the regression coefficients (not enforced: the optimiser leaves beta free).
BETA_BOUNDS = (-30.0, 30.0)


@dataclass(frozen=True)
class CountData:
    """Grouped zero-truncated counts.

    Attributes
    ----------
    y : numpy.ndarray
        Detection count of each row (integers >= 1).
    w : numpy.ndarray
        Number of traders in each row (integers >= 1).
    X : numpy.ndarray
        Design matrix, one row per row of ``y``; the first column is the intercept.
    names : tuple of str
        Names of the design columns.
    """

    y: np.ndarray
    w: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of distinct traders observed."""
        return int(self.w.sum())

    @property
    def intercept_only(self) -> bool:
        """True when the design is a single constant column (a plain frequency table)."""
        return self.X.shape[1] == 1

    def frequencies(self) -> dict[int, int]:
        """Frequency table ``{k: f_k}`` aggregated over covariate patterns."""
        ks, inverse = np.unique(self.y, return_inverse=True)
        sums = np.bincount(inverse, weights=self.w)
        return {int(k): round(s) for k, s in zip(ks, sums, strict=True)}

    def frequency_array(self) -> np.ndarray:
        """Frequency table as an array ``f`` with ``f[k - 1] = f_k``."""
        table = self.frequencies()
        f = np.zeros(max(table), dtype=np.int64)
        for k, v in table.items():
            f[k - 1] = v
        return f


@dataclass(frozen=True)
class ModelSpec:
    """Which zero-truncated model: base family and whether counts of one are inflated."""

    family: str  # "poisson" or "negbin"
    one_inflated: bool = False

    @property
    def name(self) -> str:
        base = "ztpoisson" if self.family == "poisson" else "ztnb"
        return f"one_inflated_{base}" if self.one_inflated else base

    def param_names(self, data: CountData) -> list[str]:
        names = [f"beta[{name}]" for name in data.names]
        if self.family == "negbin":
            names.append("log_alpha")
        if self.one_inflated:
            names.append("logit_omega")
        return names

    def bounds(self, data: CountData) -> list[tuple[float, float]]:
        """Per-parameter (low, high) bounds in the order of :meth:`param_names`."""
        out = [BETA_BOUNDS] * data.X.shape[1]
        if self.family == "negbin":
            out.append(LOG_ALPHA_BOUNDS)
        if self.one_inflated:
            out.append(LOGIT_OMEGA_BOUNDS)
        return out


# --------------------------------------------------------------------------- log-probabilities
def _split(theta: np.ndarray, spec: ModelSpec, p: int):
    beta = theta[..., :p]
    i = p
    log_alpha = None
    if spec.family == "negbin":
        log_alpha = theta[..., i]
        i += 1
    logit_omega = theta[..., i] if spec.one_inflated else None
    return beta, log_alpha, logit_omega


def base_logprobs(
    theta: np.ndarray, spec: ModelSpec, data: CountData
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row log P(Y = 0), log P(Y > 0) and log P(Y = y) of the untruncated base model.

    ``theta`` may carry leading batch dims (posterior draws); results then have shape
    ``batch + (rows,)``.
    """
    theta = np.asarray(theta, dtype=float)
    beta, log_alpha, _ = _split(theta, spec, data.X.shape[1])
    eta = beta @ data.X.T
    y = data.y
    if spec.family == "poisson":
        lam = np.exp(eta)
        log_p0 = -lam
        log_py = y * eta - lam - special.gammaln(y + 1.0)
    else:
        alpha = np.exp(log_alpha)[..., None]
        r = 1.0 / alpha
        amu = alpha * np.exp(eta)
        l1p = np.log1p(amu)
        log_p0 = -r * l1p
        log_py = (
            special.gammaln(y + r)
            - special.gammaln(r)
            - special.gammaln(y + 1.0)
            - r * l1p
            + y * (np.log(amu) - l1p)
        )
    log_pos = np.log(-np.expm1(log_p0))
    return log_p0, log_pos, log_py


def row_loglik(theta: np.ndarray, spec: ModelSpec, data: CountData) -> np.ndarray:
    """Per-row log-probability of the observed count under the zero-truncated model."""
    _, log_pos, log_py = base_logprobs(theta, spec, data)
    return _truncated(theta, spec, data, log_pos, log_py)


def _truncated(
    theta: np.ndarray, spec: ModelSpec, data: CountData, log_pos: np.ndarray, log_py: np.ndarray
) -> np.ndarray:
    log_trunc = log_py - log_pos
    if not spec.one_inflated:
        return log_trunc
    _, _, d = _split(np.asarray(theta, dtype=float), spec, data.X.shape[1])
    d = np.asarray(d)[..., None]
    log_omega = -np.logaddexp(0.0, -d)
    log_1m_omega = -np.logaddexp(0.0, d)
    inflated = np.logaddexp(log_omega, log_1m_omega + log_trunc)
    return np.where(data.y == 1, inflated, log_1m_omega + log_trunc)


def cond_loglik(theta: np.ndarray, spec: ModelSpec, data: CountData) -> np.ndarray:
    """Conditional (zero-truncated) log-likelihood ``sum_i w_i log q(y_i)`` (batched in theta)."""
    return np.sum(data.w * row_loglik(theta, spec, data), axis=-1)


def horvitz_thompson(
    theta: np.ndarray, spec: ModelSpec, data: CountData
) -> tuple[np.ndarray, np.ndarray]:
    """Horvitz–Thompson total ``sum w_i / (1 - p0_i)`` and its conditional variance term.

    The second value is ``sum w_i p0_i / (1 - p0_i)^2``, the variance of the estimator that
    comes from the binomial sampling of who is observed (the known-parameters part).
    """
    log_p0, log_pos, _ = base_logprobs(theta, spec, data)
    total = np.sum(data.w * np.exp(-log_pos), axis=-1)
    var_sampling = np.sum(data.w * np.exp(log_p0 - 2.0 * log_pos), axis=-1)
    return total, var_sampling


# --------------------------------------------------------------------------- numerics
def _central_grad(fun, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a *batched* function ``fun((m, k)) -> (m,)``."""
    k = x.size
    steps = h * np.maximum(1.0, np.abs(x))
    E = np.diag(steps)
    values = fun(np.concatenate([x + E, x - E]))
    return (values[:k] - values[k:]) / (2.0 * steps)


def _central_hessian(fun, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a batched function (one call for all points)."""
    k = x.size
    steps = h * np.maximum(1.0, np.abs(x))
    E = np.diag(steps)
    pairs = [(i, j) for i in range(k) for j in range(i)]
    points = [x[None, :], x + E, x - E]
    for i, j in pairs:
        points.append(
            np.stack([x + E[i] + E[j], x + E[i] - E[j], x - E[i] + E[j], x - E[i] - E[j]])
        )
    values = fun(np.concatenate(points))
    f0, plus, minus = values[0], values[1 : k + 1], values[k + 1 : 2 * k + 1]
    H = np.diag((plus - 2.0 * f0 + minus) / steps**2)
    for m, (i, j) in enumerate(pairs):
        a, b, c, d = values[2 * k + 1 + 4 * m : 2 * k + 5 + 4 * m]
        H[i, j] = H[j, i] = (a - b - c + d) / (4.0 * steps[i] * steps[j])
    return H


def ztp_lambda(mean: float) -> float:
    """Solve ``lambda / (1 - exp(-lambda)) = mean`` (the ZTP likelihood equation)."""
    if mean <= 1.0:
        return 0.0
    return float(optimize.brentq(lambda lam: lam / -np.expm1(-lam) - mean, 1e-12, mean + 1.0))


@dataclass
class MLEFit:
    """Result of :func:`fit_mle`."""

    spec: ModelSpec
    theta: np.ndarray
    cov: np.ndarray
    loglik: float
    free: np.ndarray
    converged: bool
    message: str
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def n_params(self) -> int:
        return int(self.theta.size)

    @property
    def aic(self) -> float:
        return 2.0 * self.n_params - 2.0 * self.loglik


def _start_values(spec: ModelSpec, data: CountData) -> list[np.ndarray]:
    p = data.X.shape[1]
    if spec.one_inflated:  # the base parameters are identified by the counts >= 2 only
        mask = data.y >= 2
        mean = float(np.sum(data.w[mask] * data.y[mask]) / max(np.sum(data.w[mask]), 1))
        lam0 = max(mean - 1.5, 0.2)
    else:
        lam0 = ztp_lambda(float(np.sum(data.w * data.y) / data.n))
    beta0 = np.zeros(p)
    beta0[0] = np.log(max(lam0, 0.05))
    extra_sets: list[list[float]] = [[]]
    if spec.family == "negbin":
        extra_sets = [[*e, la] for e in extra_sets for la in (-2.0, 0.0, 1.5)]
    if spec.one_inflated:
        extra_sets = [[*e, lo] for e in extra_sets for lo in (-2.0, 0.5)]
    return [np.concatenate([beta0, np.asarray(e, dtype=float)]) for e in extra_sets]


class _Box:
    """Unconstrained reparametrisation: bounded entries of theta are ``lo + (hi - lo) expit(z)``.

    (scipy's L-BFGS-B is an order of magnitude slower than BFGS on these tiny problems, so the
    box constraints of the nuisance parameters are enforced by this smooth map instead.)
    """

    def __init__(self, spec: ModelSpec, data: CountData) -> None:
        bounds = spec.bounds(data)
        self.lo = np.array([b[0] for b in bounds])
        self.hi = np.array([b[1] for b in bounds])
        self.bounded = np.arange(len(bounds)) >= data.X.shape[1]  # nuisance parameters only

    def theta(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        mapped = self.lo + (self.hi - self.lo) * special.expit(z)
        return np.where(self.bounded, mapped, z)

    def z(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        frac = np.clip((theta - self.lo) / (self.hi - self.lo), 1e-9, 1.0 - 1e-9)
        return np.where(self.bounded, special.logit(frac), theta)


def minimize_box(
    fun, starts: list[np.ndarray], box: _Box, gtol: float = 1e-8
) -> tuple[np.ndarray, float, bool, str]:
    """Minimise a batched ``fun(theta)`` from several starts (BFGS, unconstrained coordinates)."""

    def fz_batch(z: np.ndarray) -> np.ndarray:
        values = fun(box.theta(z))
        return np.where(np.isfinite(values), values, 1e10)

    def fz(z: np.ndarray) -> float:
        return float(fz_batch(z[None, :])[0])

    def run(z0: np.ndarray):
        return optimize.minimize(
            fz,
            z0,
            jac=lambda z: _central_grad(fz_batch, z),
            method="BFGS",
            options={"maxiter": 1000, "gtol": gtol},
        )

    best = None
    for start in starts:
        res = run(box.z(np.asarray(start, dtype=float)))
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    if not best.success:  # a restart resets the Hessian approximation ("precision loss")
        again = run(best.x)
        if again.fun <= best.fun:
            best = again
    # a stop for precision loss on a flat ridge is still a maximum when the gradient vanishes
    grad_ok = bool(np.max(np.abs(_central_grad(fz_batch, best.x))) < 1e-5)
    return box.theta(best.x), float(best.fun), bool(best.success) or grad_ok, str(best.message)


def fit_mle(spec: ModelSpec, data: CountData) -> MLEFit:
    """Maximise the conditional likelihood; covariance from the observed information.

    Parameters that end on a box bound (``alpha -> 0``: the NB has become Poisson;
    ``alpha -> infinity``: the log-series limit, N unbounded; ``omega -> 0``: no one-inflation)
    are snapped to the bound and held fixed when the covariance is computed.
    """
    scale = float(data.n)
    box = _Box(spec, data)

    def objective(theta: np.ndarray) -> np.ndarray:
        return -cond_loglik(theta, spec, data) / scale

    theta, fun, converged, message = minimize_box(objective, _start_values(spec, data), box)
    on_bound = np.zeros(theta.size, dtype=bool)
    for i in np.flatnonzero(box.bounded):  # snap to a bound that fits at least as well
        for bound in (box.lo[i], box.hi[i]):
            trial = theta.copy()
            trial[i] = bound
            value = float(objective(trial))
            if value <= fun + 1e-10:
                theta, fun, on_bound[i] = trial, min(fun, value), True
    free = ~on_bound
    notes: list[str] = []
    names = spec.param_names(data)
    problems: list[str] = []
    for i in np.flatnonzero(on_bound):
        at_lower = theta[i] <= box.lo[i]
        if names[i] == "log_alpha" and at_lower:
            notes.append("alpha -> 0: no overdispersion, the NB has reduced to the Poisson")
        elif names[i] == "logit_omega" and at_lower:
            notes.append("omega -> 0: no one-inflation, the model has reduced to its base")
        else:
            problems.append(f"{names[i]} is on its bound ({theta[i]:.3g}); held fixed for the SE")
    cov = np.zeros((theta.size, theta.size))
    if free.any():
        idx = np.flatnonzero(free)

        def sub(x: np.ndarray) -> np.ndarray:
            full = np.broadcast_to(theta, x.shape[:-1] + theta.shape).copy()
            full[..., idx] = x
            return -cond_loglik(full, spec, data)

        H = _central_hessian(sub, theta[idx])
        H = 0.5 * (H + H.T)
        eig = np.linalg.eigvalsh(H)
        if np.all(np.isfinite(eig)) and eig.min() > 0:
            sub_cov = np.linalg.inv(H)
        else:
            problems.append("observed information is not positive definite; SE is unreliable")
            sub_cov = np.linalg.pinv(H) if np.all(np.isfinite(H)) else np.full(H.shape, np.nan)
        cov[np.ix_(idx, idx)] = sub_cov
    return MLEFit(
        spec=spec,
        theta=theta,
        cov=cov,
        loglik=-fun * scale,
        free=free,
        converged=converged,
        message=message,
        notes=notes,
        problems=problems,
    )


def ht_variance(fit: MLEFit, data: CountData) -> tuple[float, float]:
    """Horvitz–Thompson estimate and its variance by conditioning (sampling + delta terms)."""
    estimate, var_sampling = (float(v) for v in horvitz_thompson(fit.theta, fit.spec, data))
    idx = np.flatnonzero(fit.free)
    var_param = 0.0
    if idx.size:

        def total(x: np.ndarray) -> np.ndarray:
            full = np.broadcast_to(fit.theta, x.shape[:-1] + fit.theta.shape).copy()
            full[..., idx] = x
            return horvitz_thompson(full, fit.spec, data)[0]

        g = _central_grad(total, fit.theta[idx])
        var_param = float(g @ fit.cov[np.ix_(idx, idx)] @ g)
    return estimate, var_sampling + var_param


# --------------------------------------------------------------------------- intervals
def lognormal_interval(estimate: float, var: float, n: int, prob: float) -> tuple[float, float]:
    """Chao's (1987) log-normal interval ``(n + f0 / C, n + f0 C)`` for the total.

    ``f0 = estimate - n`` is assumed log-normal, so the interval never goes below the number
    observed: ``C = exp(z sqrt(log(1 + var / f0^2)))`` with ``z`` the normal quantile.
    """
    f0 = estimate - n
    if not np.isfinite(estimate) or not np.isfinite(var):
        return float(n), float("inf")
    if f0 <= 0.0 or var <= 0.0:
        return float(n), float(estimate)
    z = stats.norm.ppf(0.5 + prob / 2.0)
    c = np.exp(z * np.sqrt(np.log1p(var / f0**2)))
    return float(n + f0 / c), float(n + f0 * c)


def _full_loglik(total: float, theta: np.ndarray, spec: ModelSpec, data: CountData) -> np.ndarray:
    """Unconditional log-likelihood of (N, theta), intercept-only model, up to a constant."""
    n = data.n
    log_p0, log_pos, log_py = base_logprobs(theta, spec, data)
    cond = np.sum(data.w * _truncated(theta, spec, data, log_pos, log_py), axis=-1)
    return (
        special.gammaln(total + 1.0)
        - special.gammaln(total - n + 1.0)
        + (total - n) * log_p0[..., 0]
        + n * log_pos[..., 0]
        + cond
    )


def profile_interval(
    fit: MLEFit, data: CountData, estimate: float, se: float, prob: float
) -> tuple[tuple[float, float], list[str]]:
    """Profile-likelihood interval for N from the unconditional (binomial) likelihood.

    ``L(N, theta) = N! / (N - n)! p0^(N - n) (1 - p0)^n prod q_k^f_k``, profiled over theta; the
    interval is ``{N >= n : 2 (max log L - log L_p(N)) <= chi2_1(prob)}``. Only valid without
    covariates (the covariates of unseen traders are unknown). The profile is followed outward
    from the estimate (each inner fit warm-started from its neighbour) and each limit is then
    bisected. Returns the interval and notes.
    """
    spec = fit.spec
    n = data.n
    box = _Box(spec, data)
    crit = stats.chi2.ppf(prob, 1)
    s_total = float(np.sum(data.w * data.y))
    notes: list[str] = []
    closed_form = spec.family == "poisson" and not spec.one_inflated
    state = {"l_max": -np.inf}

    def profile(total: float, start: np.ndarray, first: bool = False) -> tuple[float, np.ndarray]:
        if closed_form:  # Poisson with N units: lambda_hat(N) = S / N
            theta = np.array([np.log(s_total / total)])
            value = float(_full_loglik(total, theta, spec, data))
        else:

            def neg(theta: np.ndarray) -> np.ndarray:
                return -_full_loglik(total, theta, spec, data) / n

            starts = [start, fit.theta] if start is fit.theta or first else [start]
            theta, fun, _, _ = minimize_box(neg, starts, box, gtol=1e-7)
            value = -fun * n
        state["l_max"] = max(state["l_max"], value)
        return value, theta

    cap = max(1e7, 1e4 * n)
    if not np.isfinite(estimate) or estimate > cap:
        notes.append("no finite estimate of N: the profile interval is (n, infinity)")
        return (float(n), float("inf")), notes
    top = float(estimate)
    _, theta_top = profile(top, fit.theta, first=True)
    step0 = max(se if np.isfinite(se) else 0.0, 1.0, 0.01 * n)

    def limit(direction: int) -> float:
        """Walk from the top in ``direction`` until the profile drops by crit/2, then bisect."""
        inside, theta_in = top, theta_top
        step = step0
        while True:
            candidate = top + direction * step
            if direction < 0 and candidate <= n:
                candidate = float(n)
            if direction > 0 and candidate > cap:
                return float("inf")
            value, theta_c = profile(candidate, theta_in)
            if 2.0 * (state["l_max"] - value) > crit:
                outside = candidate
                break
            if candidate == n:
                return float(n)
            inside, theta_in = candidate, theta_c
            step *= 2.0
        while abs(outside - inside) > max(0.01, 1e-6 * abs(outside)):
            mid = 0.5 * (inside + outside)
            value, theta_m = profile(mid, theta_in)
            if 2.0 * (state["l_max"] - value) > crit:
                outside = mid
            else:
                inside, theta_in = mid, theta_m
        return 0.5 * (inside + outside)

    high = limit(+1)
    low = limit(-1)
    if not np.isfinite(high):
        notes.append(
            "the profile likelihood does not fall off in N: there is no finite upper limit"
        )
    return (float(low), float(high)), notes


# --------------------------------------------------------------------------- Zelterman regression
def fit_logistic(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Weighted logistic regression by Newton–Raphson; returns (beta, covariance, converged)."""
    beta = np.zeros(X.shape[1])
    converged = False
    for _ in range(max_iter):
        p = special.expit(X @ beta)
        info = X.T @ (X * (w * p * (1.0 - p))[:, None])
        score = X.T @ (w * (y - p))
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            break
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            converged = True
            break
    p = special.expit(X @ beta)
    info = X.T @ (X * (w * p * (1.0 - p))[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full(info.shape, np.nan)
        converged = False
    return beta, cov, converged and bool(np.all(np.abs(beta) < 25.0))
