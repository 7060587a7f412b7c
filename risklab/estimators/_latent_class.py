"""Gibbs sampler for the non-parametric latent-class capture–recapture model (LCMCR).

The model is that of Manrique-Vallier (2016, *Biometrics* 72:1246–1254):

* each of the ``N`` units belongs to a latent class ``z_i ~ Categorical(pi)``; within a class the
  lists capture independently, ``x_ij | z_i = k ~ Bernoulli(lambda_jk)``;
* ``pi`` follows a truncated stick-breaking (Dirichlet-process) prior with ``K`` sticks,
  ``V_k ~ Beta(1, alpha)``, ``pi_k = V_k prod_{l<k} (1 - V_l)``, ``V_K = 1``;
* ``alpha ~ Gamma(a_alpha, b_alpha)`` (shape, rate), ``lambda_jk ~ Beta(a_lambda, b_lambda)``;
* ``p(N) ∝ 1/N``.

Mixing over classes lets capture probabilities vary between units (heterogeneity) and, because
the mixture is over whole histories, induces dependence between lists.

The sampler uses the data augmentation of Manrique-Vallier's LCMCR: with the ``1/N`` prior the
number of unobserved units has full conditional ``n0 | rest ~ NegativeBinomial(n, 1 - p0)`` where
``p0 = sum_k pi_k prod_j (1 - lambda_jk)`` is the probability of the all-zero history; the
``n0`` unobserved units are allocated to classes and all class-level parameters are then drawn
from their conjugate Beta / Gamma full conditionals. Between the two, Metropolis moves change the
unobserved count of each class with the class weights and capture probabilities integrated out
(:func:`_collapsed_unobserved_moves`); without them ``N`` mixes very slowly, because the
unobserved count and the capture probabilities of the hard-to-catch class condition each other.
Because the table is aggregated by history,
class allocations are multinomial draws per history, so one sweep costs ``O(2**L * K)``
regardless of ``N``.

``N``, ``alpha`` and the number of occupied classes are invariant to permutations of the class
labels, so label switching does not affect them; class-specific parameters are not reported.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from risklab.estimators._validation import (
    CaptureTable,
    EstimatorWarning,
    chain_diagnostics,
    convergence_report,
    posterior_interval,
)
from risklab.estimators.results import PopulationEstimate

_EPS = 1e-12


@dataclass(frozen=True)
class GibbsDraws:
    """Retained draws, shaped ``(chain, draw)``."""

    N: np.ndarray
    alpha: np.ndarray
    occupied: np.ndarray
    p0: np.ndarray
    last_share: np.ndarray


def _stick_weights(V: np.ndarray) -> np.ndarray:
    """Stick-breaking weights from break proportions (last proportion is 1)."""
    rest = np.concatenate(([1.0], np.cumprod(1.0 - V[:-1])))
    return V * rest


def _collapsed_unobserved_moves(m0, s, c, n, alpha, a_lambda, b_lambda, scales, rng):
    """Metropolis moves on the unobserved count of each class, ``pi`` and ``lambda`` integrated out.

    Given the class allocation of the observed units (``s`` units in class ``k``, ``c[k, j]`` of
    them on list ``j``) and ``alpha``, the unobserved counts ``m0`` have the collapsed density

        p(m0) ∝ (N - 1)! / prod_k m0_k! * prod_{k,j} B(a + c_kj, b + s_k - c_kj + m0_k)
                * prod_{k<K} B(1 + M_k, alpha + M_{>k}),    N = n + sum m0, M = s + m0,

    (the ``1/N`` prior, the multinomial coefficient, the Beta-integrated capture probabilities and
    the stick-breaking marginal). Symmetric random-walk proposals on each ``m0_k`` at several
    fixed scales move ``N`` by large steps that the plain Gibbs sweep, where ``n0`` and the
    capture probabilities of the hard-to-catch class condition each other, takes a long time to
    make. ``lambda`` and ``pi`` are redrawn from their full conditionals right after, so the
    sweep remains a valid (partially collapsed) MCMC kernel. Written for numba and plain Python.
    """
    lg = math.lgamma
    K, L = c.shape
    for k in range(K):
        for sc in scales:
            delta = int(np.rint(rng.normal(0.0, sc)))
            old = m0[k]
            new = old + delta
            if delta == 0 or new < 0:
                continue
            total = n + m0.sum()
            diff = lg(total + delta) - lg(total) - lg(new + 1.0) + lg(old + 1.0)
            for j in range(L):
                a = a_lambda + c[k, j]
                b = b_lambda + s[k] - c[k, j]
                # B(a, b + new) / B(a, b + old)
                diff += lg(b + new) - lg(a + b + new) - lg(b + old) + lg(a + b + old)
            # stick-breaking terms B(1 + M_l, alpha + M_{>l}), l < K - 1, change for l <= k
            after = 0.0
            for ll in range(K - 1, -1, -1):
                M_l = s[ll] + m0[ll]
                if ll < K - 1 and ll <= k:
                    x0 = 1.0 + M_l
                    y0 = alpha + after
                    x1 = x0 + delta if ll == k else x0
                    y1 = y0 if ll == k else y0 + delta
                    diff += lg(x1) + lg(y1) - lg(x1 + y1) - lg(x0) - lg(y0) + lg(x0 + y0)
                after += M_l
            if math.log(rng.random()) < diff:
                m0[k] = new
    return m0


def _move_scales(n: int) -> np.ndarray:
    """Proposal scales of the collapsed moves: small, medium and large steps in ``N``."""
    return np.array([1.0 + math.sqrt(n), 1.0 + 0.05 * n, 1.0 + 0.25 * n])


def _one_chain(
    histories: np.ndarray,
    counts: np.ndarray,
    *,
    n_classes: int,
    n_keep: int,
    burn: int,
    thin: int,
    a_alpha: float,
    b_alpha: float,
    a_lambda: float,
    b_lambda: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    K = n_classes
    H = histories.astype(float)
    notH = 1.0 - H
    n = int(counts.sum())
    L = H.shape[1]
    keep_rows = counts > 0
    H_obs, notH_obs, c_obs = H[keep_rows], notH[keep_rows], counts[keep_rows]

    # start: list-specific rates jittered around n_j / (2 n), prior draws for the sticks
    base = np.clip(H.T @ counts / (2.0 * n), 0.02, 0.98)
    lam = np.clip(base[None, :] * rng.uniform(0.5, 1.5, size=(K, L)), 0.01, 0.99)
    alpha = 1.0
    V = rng.beta(1.0, alpha, size=K)
    V[-1] = 1.0
    pi = _stick_weights(V)

    total = burn + n_keep * thin
    out_N = np.empty(n_keep)
    out_alpha = np.empty(n_keep)
    out_occ = np.empty(n_keep)
    out_p0 = np.empty(n_keep)
    out_last = np.empty(n_keep)
    scales = _move_scales(n)
    j = 0
    for it in range(total):
        log_lam = np.log(np.clip(lam, _EPS, 1.0))
        log_1m = np.log(np.clip(1.0 - lam, _EPS, 1.0))
        log_pi = np.log(np.clip(pi, 1e-300, 1.0))
        # 1. allocate observed units of each history to classes
        logp = H_obs @ log_lam.T + notH_obs @ log_1m.T + log_pi[None, :]
        logp -= logp.max(axis=1, keepdims=True)
        prob = np.exp(logp)
        prob /= prob.sum(axis=1, keepdims=True)
        alloc = rng.multinomial(c_obs, prob)  # (C_obs, K)
        # 2. unobserved units: n0 ~ NegBin(n, 1 - p0), then allocate them
        w0 = pi * np.exp(log_1m.sum(axis=1))
        p0 = float(min(w0.sum(), 1.0 - _EPS))
        n0 = int(rng.negative_binomial(n, 1.0 - p0))
        alloc0 = rng.multinomial(n0, w0 / w0.sum()) if n0 > 0 else np.zeros(K, dtype=np.int64)
        # 3. class sizes and captures; collapsed moves on the unobserved counts
        s_obs = alloc.sum(axis=0)
        caught = alloc.T @ H_obs  # (K, L)
        alloc0 = _collapsed_unobserved_moves(
            alloc0.astype(np.int64), s_obs, caught, n, alpha, a_lambda, b_lambda, scales, rng
        )
        n0 = int(alloc0.sum())
        size = s_obs + alloc0
        lam = rng.beta(a_lambda + caught, b_lambda + size[:, None] - caught)
        # 4. stick-breaking weights and concentration
        after = np.concatenate((np.cumsum(size[::-1])[::-1][1:], [0]))
        V = rng.beta(1.0 + size, alpha + after)
        V[-1] = 1.0
        V[:-1] = np.clip(V[:-1], _EPS, 1.0 - 1e-10)
        pi = _stick_weights(V)
        rate = b_alpha - np.log1p(-V[:-1]).sum()
        alpha = float(rng.gamma(a_alpha + K - 1, 1.0 / rate))
        if it >= burn and (it - burn) % thin == 0:
            out_N[j] = n + n0
            out_alpha[j] = alpha
            out_occ[j] = np.count_nonzero(size)
            out_p0[j] = p0
            out_last[j] = size[-1] / (n + n0)
            j += 1
    return out_N, out_alpha, out_occ, out_p0, out_last


def _chain_kernel(H, counts, K, n_keep, burn, thin, a_alpha, b_alpha, a_lambda, b_lambda, rng, lam):
    """One chain of the sampler in loop form (compiled by numba as ``_CHAIN``)."""
    C, L = H.shape
    n = 0
    for c in range(C):
        n += counts[c]
    scales = np.array([1.0 + np.sqrt(n), 1.0 + 0.05 * n, 1.0 + 0.25 * n])
    m0 = np.zeros(K, dtype=np.int64)
    V = np.empty(K)
    pi = np.empty(K)
    alpha = 1.0
    rest = 1.0
    for k in range(K):
        V[k] = rng.beta(1.0, alpha) if k < K - 1 else 1.0
        pi[k] = V[k] * rest
        rest *= 1.0 - V[k]
    out_N = np.empty(n_keep)
    out_alpha = np.empty(n_keep)
    out_occ = np.empty(n_keep)
    out_p0 = np.empty(n_keep)
    out_last = np.empty(n_keep)
    logp = np.empty(K)
    prob = np.empty(K)
    size = np.zeros(K, dtype=np.int64)
    caught = np.zeros((K, L), dtype=np.int64)
    log_lam = np.empty((K, L))
    log_1m = np.empty((K, L))
    w0 = np.empty(K)
    j = 0
    total = burn + n_keep * thin
    for it in range(total):
        for k in range(K):
            for ll in range(L):
                x = min(max(lam[k, ll], 1e-12), 1.0 - 1e-12)
                log_lam[k, ll] = np.log(x)
                log_1m[k, ll] = np.log1p(-x)
        size[:] = 0
        caught[:, :] = 0
        # 1. allocate observed units of each history
        for c in range(C):
            m = counts[c]
            if m == 0:
                continue
            mx = -np.inf
            for k in range(K):
                v = np.log(max(pi[k], 1e-300))
                for ll in range(L):
                    v += log_lam[k, ll] if H[c, ll] > 0.5 else log_1m[k, ll]
                logp[k] = v
                if v > mx:
                    mx = v
            tot = 0.0
            for k in range(K):
                prob[k] = np.exp(logp[k] - mx)
                tot += prob[k]
            remaining = m
            mass = 1.0
            for k in range(K):
                if remaining == 0:
                    break
                q = prob[k] / tot
                if k == K - 1 or q >= mass:
                    draw = remaining
                else:
                    draw = rng.binomial(remaining, min(q / mass, 1.0))
                mass -= q
                remaining -= draw
                size[k] += draw
                for ll in range(L):
                    if H[c, ll] > 0.5:
                        caught[k, ll] += draw
        # 2. unobserved units
        p0 = 0.0
        for k in range(K):
            v = 0.0
            for ll in range(L):
                v += log_1m[k, ll]
            w0[k] = pi[k] * np.exp(v)
            p0 += w0[k]
        p0c = min(p0, 1.0 - 1e-12)
        n0 = rng.negative_binomial(n, 1.0 - p0c)
        remaining = n0
        mass = 1.0
        m0[:] = 0
        for k in range(K):
            if remaining == 0:
                break
            q = w0[k] / p0
            if k == K - 1 or q >= mass:
                draw = remaining
            else:
                draw = rng.binomial(remaining, min(q / mass, 1.0))
            mass -= q
            remaining -= draw
            m0[k] += draw
        # collapsed moves on the unobserved counts (pi, lambda integrated out)
        m0 = _MOVES(m0, size, caught, n, alpha, a_lambda, b_lambda, scales, rng)
        n0 = 0
        for k in range(K):
            n0 += m0[k]
            size[k] += m0[k]
        # 3. list capture probabilities
        for k in range(K):
            for ll in range(L):
                lam[k, ll] = rng.beta(a_lambda + caught[k, ll], b_lambda + size[k] - caught[k, ll])
        # 4. sticks and concentration
        after = 0
        for k in range(K):
            after += size[k]
        rest = 1.0
        slog = 0.0
        occ = 0
        for k in range(K):
            after -= size[k]
            if size[k] > 0:
                occ += 1
            if k < K - 1:
                v = rng.beta(1.0 + size[k], alpha + after)
                v = min(max(v, 1e-12), 1.0 - 1e-10)
                slog += np.log1p(-v)
            else:
                v = 1.0
            V[k] = v
            pi[k] = v * rest
            rest *= 1.0 - v
        alpha = rng.gamma(a_alpha + K - 1, 1.0 / (b_alpha - slog))
        if it >= burn and (it - burn) % thin == 0:
            out_N[j] = n + n0
            out_alpha[j] = alpha
            out_occ[j] = occ
            out_p0[j] = p0
            out_last[j] = size[K - 1] / (n + n0)
            j += 1
    return out_N, out_alpha, out_occ, out_p0, out_last


# Compiled versions (numba comes with pytensor, hence with PyMC). Module-level dispatchers so
# that numba's on-disk cache is reused across sessions; compilation happens on first use.
try:
    import numba as _numba
except ImportError:  # pragma: no cover - numba is a dependency of pytensor
    _numba = None
_MOVES = _numba.njit(cache=True)(_collapsed_unobserved_moves) if _numba is not None else None
_CHAIN = _numba.njit(cache=True)(_chain_kernel) if _numba is not None else None


def sample_lcmcr(
    histories: np.ndarray,
    counts: np.ndarray,
    *,
    n_classes: int,
    draws: int,
    burn: int,
    thin: int,
    chains: int,
    seed: int,
    a_alpha: float = 0.25,
    b_alpha: float = 0.25,
    a_lambda: float = 1.0,
    b_lambda: float = 1.0,
    engine: str = "numba",
) -> GibbsDraws:
    """Run ``chains`` independent Gibbs chains and return the retained draws.

    ``engine="numba"`` runs the compiled sweep (about a hundred times faster); ``"numpy"`` is the
    pure-NumPy reference implementation of the same sampler.
    """
    children = np.random.SeedSequence(seed).spawn(chains)
    if engine == "numba":
        if _CHAIN is None:  # pragma: no cover
            raise RuntimeError("engine='numba' needs numba; use engine='numpy'.")
        chain = _CHAIN
        results = []
        H = np.ascontiguousarray(histories, dtype=np.float64)
        cnt = np.ascontiguousarray(counts, dtype=np.int64)
        n = int(cnt.sum())
        base = np.clip(H.T @ cnt / (2.0 * n), 0.02, 0.98)
        for child in children:
            init_rng = np.random.default_rng(child)
            lam0 = np.clip(
                base[None, :] * init_rng.uniform(0.5, 1.5, size=(n_classes, H.shape[1])), 0.01, 0.99
            )
            results.append(
                chain(
                    H,
                    cnt,
                    n_classes,
                    draws,
                    burn,
                    thin,
                    float(a_alpha),
                    float(b_alpha),
                    float(a_lambda),
                    float(b_lambda),
                    init_rng,
                    lam0,
                )
            )
        N, alpha, occ, p0, last = (np.vstack([r[i] for r in results]) for i in range(5))
        return GibbsDraws(N=N, alpha=alpha, occupied=occ, p0=p0, last_share=last)
    results = [
        _one_chain(
            histories,
            counts,
            n_classes=n_classes,
            n_keep=draws,
            burn=burn,
            thin=thin,
            a_alpha=a_alpha,
            b_alpha=b_alpha,
            a_lambda=a_lambda,
            b_lambda=b_lambda,
            rng=np.random.default_rng(child),
        )
        for child in children
    ]
    N, alpha, occ, p0, last = (np.vstack([r[i] for r in results]) for i in range(5))
    return GibbsDraws(N=N, alpha=alpha, occupied=occ, p0=p0, last_share=last)


def estimate(
    ct: CaptureTable,
    *,
    prob: float,
    random_seed: int,
    n_classes: int,
    draws: int,
    burn: int,
    thin: int,
    chains: int,
    interval: str,
    alpha_prior: tuple[float, float],
    capture_prior: tuple[float, float],
    engine: str,
) -> PopulationEstimate:
    """Run the sampler and summarise the posterior of ``N`` (see ``mse.latent_class``)."""
    K = n_classes
    seed = random_seed
    used_engine = engine
    if engine == "numba":
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba comes with pytensor
            used_engine = "numpy"
    out = sample_lcmcr(
        ct.histories,
        ct.counts,
        n_classes=K,
        draws=draws,
        burn=burn,
        thin=thin,
        chains=chains,
        seed=seed,
        a_alpha=float(alpha_prior[0]),
        b_alpha=float(alpha_prior[1]),
        a_lambda=float(capture_prior[0]),
        b_lambda=float(capture_prior[1]),
        engine=used_engine,
    )
    diags = {"N": chain_diagnostics(out.N), "alpha": chain_diagnostics(out.alpha)}
    converged, notes = convergence_report({"N": diags["N"]})
    if not converged:
        notes.append(
            "Increase 'thin' or 'draws' (the latent-class Gibbs sampler mixes slowly in N when "
            "many units are unobserved)."
        )
    occupied = out.occupied.ravel()
    last_share = float(out.last_share.mean())
    if K > 1 and last_share > 0.01:
        notes.append(
            f"The last of the {K} classes holds {last_share:.1%} of the population on average: "
            "the truncation may be binding; increase 'n_classes'."
        )
    flat = out.N.ravel()
    low, high = posterior_interval(flat, prob, interval)
    alpha = out.alpha.ravel()
    details: dict[str, Any] = {
        "method": "latent class (LCMCR, Manrique-Vallier 2016)",
        "lists": list(ct.lists),
        "n_classes": K,
        "alpha": {
            "mean": float(alpha.mean()),
            "median": float(np.median(alpha)),
            "interval": posterior_interval(alpha, prob, "eti"),
        },
        "occupied_classes": {
            "mean": float(occupied.mean()),
            "distribution": {int(k): float(np.mean(occupied == k)) for k in np.unique(occupied)},
        },
        "last_class_share": last_share,
        "p_unobserved": {"mean": float(out.p0.mean()), "median": float(np.median(out.p0))},
        "priors": {
            "alpha": f"Gamma(shape={alpha_prior[0]:g}, rate={alpha_prior[1]:g})",
            "capture": f"Beta({capture_prior[0]:g}, {capture_prior[1]:g})",
            "N": "p(N) proportional to 1/N",
        },
        "label_switching": (
            "N, alpha and the number of occupied classes are invariant to class relabelling; "
            "class-specific parameters are not reported."
        ),
        "interval_kind": interval,
        "diagnostics": diags,
        "converged": converged,
        "warnings": notes,
        "sampler": f"Gibbs ({used_engine})",
        "draws": draws,
        "burn": burn,
        "thin": thin,
        "chains": chains,
        "random_seed": seed,
    }
    for note in notes:
        warnings.warn(note, EstimatorWarning, stacklevel=2)
    return PopulationEstimate(
        estimate=float(np.median(flat)),
        interval=(low, high),
        prob=prob,
        se=float(flat.std(ddof=1)),
        observed=ct.n_observed,
        draws=flat,
        details=details,
    )
