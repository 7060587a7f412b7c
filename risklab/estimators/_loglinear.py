"""Poisson log-linear models for capture–recapture tables (the numerical core of ``mse.loglinear``).

The observed part of a ``2**L`` contingency table (all histories but the all-zero one) is fitted
by a Poisson GLM with a log link,

    log mu_h = beta_0 + sum_j beta_j h_j + sum_S gamma_S prod_{j in S} h_j,

and the unobserved cell is extrapolated as ``mu_0 = exp(beta_0)``, so ``N = n + mu_0``. The
standard error follows Rcapture (Baillargeon & Rivest 2007): ``var N = mu_0 + mu_0**2 var(beta_0)``,
which accounts for both the estimation of ``beta_0`` and the Poisson variation of the unobserved
count. The profile-likelihood interval is Cormack's (1992): the multinomial likelihood with ``N``
as a parameter, profiled by fitting the Poisson model to the completed table (observed cells plus
``N - n`` in the all-zero cell).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from risklab.estimators._validation import (
    CaptureTable,
    EstimatorWarning,
)
from risklab.estimators.results import PopulationEstimate


@dataclass
class GLMFit:
    """Result of a Poisson GLM fit by Newton–Raphson."""

    coef: np.ndarray
    cov: np.ndarray | None
    mu: np.ndarray
    converged: bool
    iterations: int
    loglik: float
    warnings: list[str] = field(default_factory=list)


def design_matrix(
    histories: np.ndarray, lists: tuple[str, ...], terms: tuple[tuple[str, ...], ...]
) -> tuple[np.ndarray, list[str]]:
    """Intercept, main effects and the given interactions for each history (row)."""
    index = {name: j for j, name in enumerate(lists)}
    cols = [np.ones(len(histories)), *[histories[:, j].astype(float) for j in range(len(lists))]]
    names = ["(Intercept)", *lists]
    for term in terms:
        cols.append(np.prod([histories[:, index[t]] for t in term], axis=0).astype(float))
        names.append(":".join(term))
    return np.column_stack(cols), names


def poisson_loglik(y: np.ndarray, mu: np.ndarray) -> float:
    """Full Poisson log-likelihood (with the ``log y!`` constants, as in R's ``glm``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogmu = np.where(y > 0, y * np.log(mu), 0.0)
    return float(np.sum(ylogmu - mu - special.gammaln(y + 1.0)))


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Poisson deviance ``2 sum [y log(y/mu) - (y - mu)]``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(term - (y - mu)))


def fit_poisson(
    X: np.ndarray,
    y: np.ndarray,
    *,
    start: np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-10,
    want_cov: bool = True,
) -> GLMFit:
    """Maximise the Poisson log-likelihood by damped Newton–Raphson (IRLS).

    A step is halved until the log-likelihood does not decrease. Convergence is declared when the
    relative change of the log-likelihood kernel and the largest step are both tiny.
    """
    y = np.asarray(y, dtype=float)
    if start is None:
        beta, *_ = np.linalg.lstsq(X, np.log(y + 0.5), rcond=None)
    else:
        beta = np.array(start, dtype=float)

    def kernel(b: np.ndarray) -> tuple[float, np.ndarray]:
        eta = np.clip(X @ b, -700.0, 700.0)
        mu = np.exp(eta)
        return float(y @ eta - mu.sum()), mu

    ll, mu = kernel(beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        score = X.T @ (y - mu)
        info = X.T @ (mu[:, None] * X)
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, score, rcond=None)[0]
        t = 1.0
        for _ in range(60):
            cand = beta + t * step
            ll_new, mu_new = kernel(cand)
            if ll_new >= ll - 1e-12 * (1.0 + abs(ll)):
                break
            t *= 0.5
        delta = np.max(np.abs(cand - beta))
        gain = ll_new - ll
        beta, ll, mu = cand, ll_new, mu_new
        # a vanishing gain with a large step means drifting along a flat direction (an MLE at
        # infinity): the log-likelihood has converged even though the parameters have not
        if delta < 1e-8 or abs(gain) < tol * 1e-3 * (1.0 + abs(ll)):
            converged = True
            break
    warnings: list[str] = []
    if not converged:
        warnings.append(f"Newton–Raphson did not converge in {max_iter} iterations.")
    cov = None
    if want_cov:
        info = X.T @ (mu[:, None] * X)
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov = np.linalg.pinv(info)
            warnings.append("The Fisher information is singular; standard errors are unreliable.")
    return GLMFit(
        coef=beta,
        cov=cov,
        mu=mu,
        converged=converged,
        iterations=it,
        loglik=poisson_loglik(y, mu) if want_cov else float("nan"),
        warnings=warnings,
    )


@dataclass(frozen=True)
class Existence:
    """Outcome of the linear-programming check for existence of the MLE."""

    exists: bool
    n_unbounded: bool
    n_at_observed: bool
    zero_cells_fitted_zero: tuple[int, ...]


def check_existence(X: np.ndarray, y: np.ndarray, *, tol: float = 1e-7) -> Existence:
    """Decide whether the Poisson MLE exists and whether ``N`` is bounded.

    The log-likelihood is non-decreasing along a direction ``d`` with ``(X d)_i = 0`` on positive
    cells and ``(X d)_i <= 0`` on zero cells. The MLE fails to exist iff such a ``d`` has some
    ``(X d)_i < 0`` (those zero cells are fitted as 0: the extended MLE). ``N`` is unbounded iff
    such a ``d`` has a positive intercept component: the likelihood then keeps increasing (or
    stays flat) as ``mu_0 = exp(beta_0)`` grows without limit.
    """
    pos = y > 0
    zero = ~pos
    p = X.shape[1]
    if pos.all() and np.linalg.matrix_rank(X) == p:
        # X d = 0 on every cell forces d = 0: the MLE exists and N is bounded
        return Existence(
            exists=True, n_unbounded=False, n_at_observed=False, zero_cells_fitted_zero=()
        )
    bounds = [(-1.0, 1.0)] * p
    A_eq = X[pos] if pos.any() else None
    b_eq = np.zeros(int(pos.sum())) if pos.any() else None
    A_ub = X[zero] if zero.any() else None
    b_ub = np.zeros(int(zero.sum())) if zero.any() else None

    def lp(c: np.ndarray) -> np.ndarray | None:
        res = optimize.linprog(
            c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs"
        )
        return res.x if res.status == 0 else None

    facial: tuple[int, ...] = ()
    if zero.any():
        # maximise -sum_{zero cells} (X d)_i
        d = lp(X[zero].sum(axis=0))
        if d is not None:
            xd = X @ d
            facial = tuple(int(i) for i in np.flatnonzero(zero & (xd < -tol)))
    e0 = np.zeros(p)
    e0[0] = 1.0
    d_up = lp(-e0)
    d_down = lp(e0)
    n_unbounded = d_up is not None and d_up[0] > tol
    n_at_observed = d_down is not None and d_down[0] < -tol
    return Existence(
        exists=not facial,
        n_unbounded=bool(n_unbounded),
        n_at_observed=bool(n_at_observed),
        zero_cells_fitted_zero=facial,
    )


@dataclass
class LoglinearMLE:
    """Everything ``mse.loglinear(method="mle")`` reports."""

    n_hat: float
    se: float
    mu0: float
    fit: GLMFit
    names: list[str]
    deviance: float
    df: int
    aic: float
    existence: Existence


def fit_mle(ct: CaptureTable, terms: tuple[tuple[str, ...], ...]) -> LoglinearMLE:
    """Fit the log-linear model and extrapolate the unobserved cell."""
    X, names = design_matrix(ct.histories, ct.lists, terms)
    y = ct.counts.astype(float)
    existence = check_existence(X, y)
    fit = fit_poisson(X, y)
    n = ct.n_observed
    b0 = fit.coef[0]
    if existence.n_unbounded:
        mu0 = np.inf
        n_hat = np.inf
        se = np.inf
    else:
        mu0 = float(np.exp(min(b0, 700.0)))
        n_hat = n + mu0
        var_b0 = float(fit.cov[0, 0]) if fit.cov is not None else np.nan
        se = float(np.sqrt(mu0 + mu0**2 * var_b0)) if np.isfinite(var_b0) else np.nan
        if not existence.exists:
            # Parameters heading to -inf inflate var(beta_0) numerically; the SE is not usable.
            se = float(se) if np.isfinite(se) and se < 1e6 * max(n_hat, 1.0) else np.nan
    deviance = max(poisson_deviance(y, fit.mu), 0.0)
    p = X.shape[1]
    aic = -2.0 * fit.loglik + 2.0 * p
    return LoglinearMLE(
        n_hat=float(n_hat),
        se=float(se),
        mu0=float(mu0),
        fit=fit,
        names=names,
        deviance=deviance,
        df=len(y) - p,
        aic=aic,
        existence=existence,
    )


class _Profile:
    """Multinomial profile log-likelihood of ``N`` (Cormack 1992), up to a constant.

    ``l(N) = log N! - log (N - n)! + max_theta sum_c y_c log p_c(theta)`` over the completed table
    (``y_0 = N - n``), computed by fitting the Poisson model to that table. By the envelope
    theorem its derivative is ``psi(N + 1) - psi(N - n + 1) + log(mu_0 / N)``.
    """

    def __init__(self, ct: CaptureTable, terms: tuple[tuple[str, ...], ...], start: np.ndarray):
        X, _ = design_matrix(ct.histories, ct.lists, terms)
        zero_row = np.zeros((1, X.shape[1]))
        zero_row[0, 0] = 1.0
        self.X = np.vstack([X, zero_row])
        self.y_obs = ct.counts.astype(float)
        self.n = float(ct.n_observed)
        self.start = np.asarray(start, dtype=float)
        self.cache: dict[float, tuple[float, float]] = {}

    def both(self, N: float) -> tuple[float, float]:
        """Profile log-likelihood and its derivative at ``N``."""
        if N in self.cache:
            return self.cache[N]
        n0 = max(N - self.n, 1e-9)
        N = self.n + n0
        y = np.append(self.y_obs, n0)
        fit = fit_poisson(self.X, y, start=self.start, want_cov=False)
        if fit.converged and np.all(np.abs(fit.coef) < 50):
            self.start = fit.coef
        mu = fit.mu
        with np.errstate(divide="ignore", invalid="ignore"):
            kern = np.where(y > 0, y * np.log(mu / N), 0.0).sum()
        value = float(special.gammaln(N + 1.0) - special.gammaln(n0 + 1.0) + kern)
        deriv = float(special.digamma(N + 1.0) - special.digamma(n0 + 1.0) + np.log(mu[-1] / N))
        self.cache[N] = (value, deriv)
        return value, deriv

    def __call__(self, N: float) -> float:
        return self.both(N)[0]

    def slope(self, N: float) -> float:
        return self.both(N)[1]


@dataclass(frozen=True)
class ProfileInterval:
    """Profile-likelihood interval for ``N`` and the multinomial MLE."""

    low: float
    high: float
    n_mle: float


_N_CEILING = 1e12


def profile_interval(
    ct: CaptureTable,
    terms: tuple[tuple[str, ...], ...],
    mle: LoglinearMLE,
    prob: float,
) -> ProfileInterval:
    """Profile-likelihood interval for ``N`` at probability ``prob``.

    The bounds solve ``2 [l(N_max) - l(N)] = chi2_1(prob)`` where ``N_max`` maximises the
    multinomial profile likelihood. The lower bound is the observed count when the whole range down
    to it is inside the interval; the upper bound is infinite when the likelihood never drops far
    enough (as for a non-existent MLE, where ``N_max`` is infinite too).
    """
    n = float(ct.n_observed)
    prof = _Profile(ct, terms, mle.fit.coef)
    crit = stats.chi2.ppf(prob, df=1) / 2.0
    guess = mle.n_hat if np.isfinite(mle.n_hat) else 10.0 * n
    scale = max(mle.se if np.isfinite(mle.se) else guess - n, 1.0)
    floor = n + 1e-9

    # the maximum: a root of the derivative, bracketed around the Poisson estimate
    N_max: float
    if prof.slope(guess) > 0:
        lo, step = guess, scale
        hi = guess + step
        while prof.slope(hi) > 0 and hi < _N_CEILING:
            lo, step = hi, step * 2.0
            hi = guess + step
        N_max = np.inf if hi >= _N_CEILING else optimize.brentq(prof.slope, lo, hi, rtol=1e-12)
    else:
        hi, lo = guess, n + 0.5 * (guess - n)
        while prof.slope(lo) < 0 and lo - n > 1e-6:
            hi, lo = lo, n + 0.5 * (lo - n)
        N_max = floor if lo - n <= 1e-6 else optimize.brentq(prof.slope, lo, hi, rtol=1e-12)
    top = N_max if np.isfinite(N_max) else _N_CEILING
    target = prof(top) - crit

    def f(N: float) -> float:
        return prof(N) - target

    low = n if f(floor) >= 0 else optimize.brentq(f, floor, top, xtol=1e-4, rtol=1e-9)
    high = np.inf
    if np.isfinite(N_max) and not mle.existence.n_unbounded:
        step, prev = max(scale, 1.0), N_max
        while N_max + step < _N_CEILING:
            hi = N_max + step
            if f(hi) < 0:
                high = optimize.brentq(f, prev, hi, xtol=1e-4, rtol=1e-9)
                break
            prev, step = hi, step * 2.0
    return ProfileInterval(low=float(low), high=float(high), n_mle=float(N_max))


def model_label(lists: Sequence[str], terms: Sequence[tuple[str, ...]]) -> str:
    parts = list(lists) + [":".join(t) for t in terms]
    return " + ".join(parts)


def history_labels(ct: CaptureTable) -> list[str]:
    return ["".join(str(v) for v in row) for row in ct.histories]


def mle_estimate(
    ct: CaptureTable, terms: tuple[tuple[str, ...], ...], prob: float
) -> PopulationEstimate:
    mle = fit_mle(ct, terms)
    notes: list[str] = list(mle.fit.warnings)
    ex = mle.existence
    labels = history_labels(ct)
    if ex.n_unbounded:
        notes.append(
            "The MLE does not exist: the likelihood keeps increasing as N grows without bound "
            "(the data cannot separate the unobserved cell from the interactions in this model). "
            "The estimate is reported as infinite; choose a model with fewer interactions."
        )
    elif not ex.exists:
        cells = [labels[i] for i in ex.zero_cells_fitted_zero]
        notes.append(
            f"The MLE does not exist in the usual sense: the zero cells {cells} are fitted as 0 "
            "(some parameters are -infinity). The estimate is the extended MLE, which is finite "
            "here, but its standard error and interval are less reliable."
        )
    if ex.n_at_observed:
        notes.append(
            "The likelihood is maximised with no unobserved units (N = observed count); the data "
            "give no evidence of missed units under this model."
        )
    if np.isfinite(mle.n_hat):
        pint = profile_interval(ct, terms, mle, prob)
        interval = (pint.low, pint.high)
        n_mult = pint.n_mle
        if not np.isfinite(pint.high):
            notes.append("The profile likelihood does not fall enough: no finite upper bound.")
    else:
        pint = profile_interval(ct, terms, mle, prob)
        interval = (pint.low, float("inf"))
        n_mult = float("inf")
    cov = mle.fit.cov
    ses = (
        np.sqrt(np.clip(np.diag(cov), 0, None))
        if cov is not None
        else np.full(len(mle.names), np.nan)
    )
    coefficients = {
        name: {"estimate": float(b), "se": float(s)}
        for name, b, s in zip(mle.names, mle.fit.coef, ses, strict=True)
    }
    fitted = ct.to_frame()
    fitted["fitted"] = mle.fit.mu
    from scipy import stats

    p_value = float(stats.chi2.sf(mle.deviance, mle.df)) if mle.df > 0 else float("nan")
    details: dict[str, Any] = {
        "method": "mle",
        "model": model_label(ct.lists, terms),
        "lists": list(ct.lists),
        "interactions": [list(t) for t in terms],
        "deviance": mle.deviance,
        "df": mle.df,
        "AIC": mle.aic,
        "p_value": p_value,
        "unobserved": mle.mu0,
        "multinomial_mle": n_mult,
        "interval_method": "profile likelihood (multinomial, Cormack 1992)",
        "se_method": "delta method: var N = mu0 + mu0^2 var(beta0) (Rcapture)",
        "coefficients": coefficients,
        "fitted": fitted,
        "mle_exists": bool(ex.exists),
        "n_unbounded": bool(ex.n_unbounded),
        "converged": bool(mle.fit.converged),
        "warnings": notes,
    }
    for note in notes:
        warnings.warn(note, EstimatorWarning, stacklevel=3)
    return PopulationEstimate(
        estimate=float(mle.n_hat),
        interval=(float(interval[0]), float(interval[1])),
        prob=prob,
        se=float(mle.se),
        observed=ct.n_observed,
        draws=None,
        details=details,
    )
