"""Prevalence from an imperfect test (unknown or estimated sensitivity and specificity).

When listings (or people) are checked with a test of sensitivity ``Se`` and specificity ``Sp``,
the share that tests positive is ``a = pi Se + (1 - pi)(1 - Sp)``, not the prevalence ``pi``. For a
rare condition the false positives ``(1 - pi)(1 - Sp)`` can swamp the true ones, so the correction
and its uncertainty matter more than the raw rate.

* :func:`rogan_gladen` — the classical correction ``(a + Sp - 1) / (Se + Sp - 1)`` (Rogan & Gladen
  1978) with a delta-method standard error that includes the uncertainty of ``Se`` and ``Sp`` when
  they come from validation studies, and an explicit truncation note when the apparent
  prevalence falls below the false-positive rate.
* :func:`bayesian` — the models of Gelman & Carpenter (2020): ``Se`` and ``Sp`` learnt jointly with
  ``pi`` from the validation studies, pooled or with a hierarchical (logit-normal) model of
  between-study variation.

The mathematics and a worked example are in ``docs/estimators-imperfect-test.md``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from risklab.estimators._validation import (
    INTERVALS,
    SAMPLERS,
    EstimatorInputError,
    EstimatorWarning,
    chain_diagnostics,
    check_choice,
    check_mcmc_size,
    check_prob,
    check_studies,
    check_successes,
    convergence_report,
    count_divergences,
    posterior_interval,
    resolve_seed,
    run_pymc,
)
from risklab.estimators.results import PrevalenceEstimate

__all__ = ["bayesian", "rogan_gladen"]

Accuracy = float | tuple[int, int] | Sequence[tuple[int, int]]


def _accuracy(value: object, name: str) -> tuple[float, float, str]:
    """Point value, variance and a description of a sensitivity or specificity argument."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value)
        if not 0.0 < v <= 1.0:
            raise EstimatorInputError(f"'{name}' must be in (0, 1]; got {value!r}.")
        return v, 0.0, "known"
    studies = check_studies(value, name)
    correct = sum(k for k, _ in studies)
    n = sum(m for _, m in studies)
    v = correct / n
    desc = f"estimated from {correct}/{n} (pooled over {len(studies)} studies)"
    return v, v * (1.0 - v) / n, desc


def rogan_gladen(
    positives: int,
    tested: int,
    sensitivity: Accuracy,
    specificity: Accuracy,
    *,
    prob: float = 0.95,
    interval: str = "wald",
    truncate: bool = True,
) -> PrevalenceEstimate:
    """Rogan–Gladen corrected prevalence with a delta-method standard error.

    Parameters
    ----------
    positives, tested : int
        Number of positive results and of units tested.
    sensitivity, specificity : float or (correct, n) or list of (correct, n)
        Known accuracy (a number in (0, 1]) or validation studies, pooled; in the latter case
        their binomial uncertainty enters the standard error.
    prob : float, default 0.95
        Probability mass of the interval.
    interval : {"wald", "wilson"}, default "wald"
        ``"wald"``: estimate ± z·SE, clipped to [0, 1]. ``"wilson"``: the Wilson score interval of
        the apparent prevalence mapped through the correction; exact in its coverage properties
        for known ``Se`` and ``Sp`` (the map is monotone), hence only allowed when both are known.
    truncate : bool, default True
        If the corrected value falls outside [0, 1] (apparent prevalence below ``1 - Sp`` or above
        ``Se``), report the nearest bound and explain it in ``details["note"]``; if False, raise.

    Returns
    -------
    PrevalenceEstimate
        ``details`` holds the apparent prevalence, the unclipped ``raw_estimate``, whether it was
        ``truncated``, the ``sensitivity``/``specificity`` used and the method.

    Raises
    ------
    EstimatorInputError
        For impossible counts, accuracies outside (0, 1], ``Se + Sp <= 1`` (the test is no better
        than chance), or an out-of-range estimate with ``truncate=False``.

    Examples
    --------
    Gelman & Carpenter (2020, §2): 50 positives in 3330, specificity 0.995, sensitivity 0.80:

    >>> r = rogan_gladen(50, 3330, sensitivity=0.80, specificity=0.995)
    >>> round(r.estimate, 4), round(r.se, 4)
    (0.0126, 0.0027)
    """
    y, n = check_successes(positives, tested, "positives/tested")
    prob = check_prob(prob)
    check_choice(interval, "interval", ("wald", "wilson"))
    se, var_se, se_desc = _accuracy(sensitivity, "sensitivity")
    sp, var_sp, sp_desc = _accuracy(specificity, "specificity")
    youden = se + sp - 1.0
    if youden <= 0:
        raise EstimatorInputError(
            f"sensitivity + specificity = {se + sp:.4f} <= 1: the test is no better than chance "
            "and the prevalence cannot be recovered from its results."
        )
    a = y / n
    raw = (a + sp - 1.0) / youden
    note = ""
    if raw < 0 or raw > 1:
        if raw < 0:
            why = (
                f"The apparent prevalence {a:.4g} is below the false-positive rate 1 - "
                f"specificity = {1 - sp:.4g}: all positives are compatible with false positives."
            )
        else:
            why = (
                f"The apparent prevalence {a:.4g} is above the sensitivity {se:.4g}: more "
                "positives than even a fully infected population would give."
            )
        if not truncate:
            raise EstimatorInputError(
                f"{why} The Rogan–Gladen estimate {raw:.4g} is outside [0, 1]; pass "
                "truncate=True to report the nearest bound, or use imperfect_test.bayesian."
            )
        note = f"{why} The Rogan–Gladen value {raw:.4g} was truncated to [0, 1]."
    est = float(np.clip(raw, 0.0, 1.0))
    var = (a * (1 - a) / n + est**2 * var_se + (1 - est) ** 2 * var_sp) / youden**2
    sd = float(np.sqrt(var))
    z = float(stats.norm.ppf(0.5 + prob / 2))
    if interval == "wald":
        low, high = raw - z * sd, raw + z * sd
    else:
        if var_se > 0 or var_sp > 0:
            raise EstimatorInputError(
                "interval='wilson' needs known sensitivity and specificity (numbers); with "
                "validation studies use interval='wald' or imperfect_test.bayesian."
            )
        centre = (a + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(a * (1 - a) / n + z**2 / (4 * n**2))
        low, high = ((centre - half) + sp - 1) / youden, ((centre + half) + sp - 1) / youden
    lo, hi = float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))
    details: dict[str, Any] = {
        "method": "Rogan–Gladen",
        "apparent": a,
        "raw_estimate": float(raw),
        "truncated": bool(note),
        "note": note,
        "sensitivity": se,
        "specificity": sp,
        "sensitivity_source": se_desc,
        "specificity_source": sp_desc,
        "interval_method": "Wald (delta method)"
        if interval == "wald"
        else "Wilson score interval of the apparent prevalence, corrected",
        "se_method": "delta method: [a(1-a)/n + pi^2 var(Se) + (1-pi)^2 var(Sp)] / (Se+Sp-1)^2",
    }
    if note:
        warnings.warn(note, EstimatorWarning, stacklevel=2)
    return PrevalenceEstimate(
        estimate=est, interval=(lo, hi), prob=prob, se=sd, draws=None, details=details
    )


def _scales(hyper_sigma_scale: object) -> tuple[float, float]:
    if isinstance(hyper_sigma_scale, numbers.Real) and not isinstance(hyper_sigma_scale, bool):
        pair = (float(hyper_sigma_scale), float(hyper_sigma_scale))
    else:
        try:
            spec_scale, sens_scale = hyper_sigma_scale  # type: ignore[misc]
            pair = (float(spec_scale), float(sens_scale))
        except (TypeError, ValueError):
            raise EstimatorInputError(
                "'hyper_sigma_scale' must be a positive number or a (specificity, sensitivity) "
                f"pair; got {hyper_sigma_scale!r}."
            ) from None
    if not all(np.isfinite(v) and v > 0 for v in pair):
        raise EstimatorInputError(
            f"'hyper_sigma_scale' must be positive; got {hyper_sigma_scale!r}."
        )
    return pair


def build_model(
    positives: int,
    tested: int,
    sensitivity_studies: Sequence[tuple[int, int]],
    specificity_studies: Sequence[tuple[int, int]],
    *,
    hierarchical: bool = False,
    hyper_sigma_scale: float | tuple[float, float] = 1.0,
) -> object:
    """The PyMC model behind :func:`bayesian` (exposed for prior checks and custom sampling).

    Pooled: ``prevalence, sensitivity, specificity ~ Uniform(0, 1)``, ``positives ~
    Binomial(tested, prevalence Se + (1 - prevalence)(1 - Sp))`` and every validation study
    ``correct_j ~ Binomial(n_j, Se or Sp)``.

    Hierarchical (Gelman & Carpenter 2020, §3): ``logit Sp_j ~ Normal(mu_Sp, sigma_Sp)`` for the
    survey's own test (``j = 0``, no calibration data) and each specificity study, likewise for
    sensitivity; ``mu ~ Normal(4, 2)``, ``sigma ~ HalfNormal(hyper_sigma_scale)``; non-centred.
    """
    import pymc as pm
    import pytensor.tensor as pt

    y, n = check_successes(positives, tested, "positives/tested")
    sens = check_studies(sensitivity_studies, "sensitivity_studies")
    spec = check_studies(specificity_studies, "specificity_studies")
    sens_k = np.array([k for k, _ in sens])
    sens_n = np.array([m for _, m in sens])
    spec_k = np.array([k for k, _ in spec])
    spec_n = np.array([m for _, m in spec])
    coords = {
        "sensitivity_study": [f"study {i + 1}" for i in range(len(sens))],
        "specificity_study": [f"study {i + 1}" for i in range(len(spec))],
    }
    with pm.Model(coords=coords) as model:
        prevalence = pm.Uniform("prevalence", 0.0, 1.0)
        if not hierarchical:
            se = pm.Uniform("sensitivity", 0.0, 1.0)
            sp = pm.Uniform("specificity", 0.0, 1.0)
            pm.Binomial(
                "sensitivity_correct", n=sens_n, p=se, observed=sens_k, dims="sensitivity_study"
            )
            pm.Binomial(
                "specificity_correct", n=spec_n, p=sp, observed=spec_k, dims="specificity_study"
            )
        else:
            tau_sp, tau_se = _scales(hyper_sigma_scale)
            mu_sp = pm.Normal("mu_logit_spec", 4.0, 2.0)
            mu_se = pm.Normal("mu_logit_sens", 4.0, 2.0)
            sigma_sp = pm.HalfNormal("sigma_logit_spec", tau_sp)
            sigma_se = pm.HalfNormal("sigma_logit_sens", tau_se)
            z_sp = pm.Normal("z_spec", 0.0, 1.0, shape=len(spec) + 1)
            z_se = pm.Normal("z_sens", 0.0, 1.0, shape=len(sens) + 1)
            spec_all = pm.math.invlogit(mu_sp + sigma_sp * z_sp)
            sens_all = pm.math.invlogit(mu_se + sigma_se * z_se)
            sp = pm.Deterministic("specificity", spec_all[0])
            se = pm.Deterministic("sensitivity", sens_all[0])
            pm.Deterministic("specificity_of_study", spec_all[1:], dims="specificity_study")
            pm.Deterministic("sensitivity_of_study", sens_all[1:], dims="sensitivity_study")
            pm.Binomial(
                "sensitivity_correct",
                n=sens_n,
                p=sens_all[1:],
                observed=sens_k,
                dims="sensitivity_study",
            )
            pm.Binomial(
                "specificity_correct",
                n=spec_n,
                p=spec_all[1:],
                observed=spec_k,
                dims="specificity_study",
            )
        p_pos = pm.Deterministic("p_positive", prevalence * se + (1.0 - prevalence) * (1.0 - sp))
        pm.Binomial("positives", n=n, p=pt.clip(p_pos, 1e-12, 1.0 - 1e-12), observed=y)
    return model


def _summary(draws: np.ndarray, prob: float) -> dict[str, Any]:
    flat = np.asarray(draws, dtype=float).ravel()
    return {
        "median": float(np.median(flat)),
        "mean": float(flat.mean()),
        "sd": float(flat.std(ddof=1)),
        "interval": posterior_interval(flat, prob, "eti"),
    }


def bayesian(
    positives: int,
    tested: int,
    sensitivity_studies: Sequence[tuple[int, int]],
    specificity_studies: Sequence[tuple[int, int]],
    *,
    hierarchical: bool = False,
    hyper_sigma_scale: float | tuple[float, float] = 1.0,
    prob: float = 0.95,
    interval: str = "hdi",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    target_accept: float | None = None,
    random_seed: int | None = None,
) -> PrevalenceEstimate:
    """Bayesian prevalence with sensitivity and specificity learnt from validation studies.

    Parameters
    ----------
    positives, tested : int
        Number of positive results and of units tested in the survey.
    sensitivity_studies, specificity_studies : list of (correct, n)
        Validation studies: ``correct`` true positives among ``n`` known positives (sensitivity),
        or true negatives among ``n`` known negatives (specificity).
    hierarchical : bool, default False
        Pooled model (every study and the survey share one ``Se`` and one ``Sp``) or the
        hierarchical model of Gelman & Carpenter (2020) in which they vary between studies and
        the survey's own ``Se``, ``Sp`` are new draws from the population of studies.
    hyper_sigma_scale : float or (float, float), default 1.0
        Scale of the half-normal priors on the between-study s.d. of ``logit Sp`` and ``logit Se``
        (one number for both, or a ``(specificity, sensitivity)`` pair). Gelman & Carpenter show
        that 1 lets a handful of sensitivity studies allow absurd prevalences and use 0.2–0.5.
    prob : float, default 0.95
        Probability mass of the interval.
    interval : {"hdi", "eti"}, default "hdi"
        Shortest (highest-density) or equal-tailed posterior interval. The shortest interval suits
        a posterior piled up against 0.
    draws, tune, chains : int, default 1000, 1000, 4
        MCMC draws and warm-up per chain, and number of chains.
    sampler : {"nutpie", "pymc"}, default "nutpie"
        NUTS implementation.
    target_accept : float, optional
        NUTS target acceptance (default 0.9 pooled, 0.95 hierarchical).
    random_seed : int, optional
        Sampler seed; a fresh one is drawn (and recorded in ``details``) when omitted.

    Returns
    -------
    PrevalenceEstimate
        ``estimate`` is the posterior median, ``se`` the posterior s.d., ``draws`` the prevalence
        draws. ``details`` summarises the survey's sensitivity and specificity, the
        hyperparameters (hierarchical), diagnostics (``converged``, ``warnings``) and holds the
        ``xarray.DataTree`` under ``"idata"``.

    Raises
    ------
    EstimatorInputError
        For impossible counts, empty or malformed studies, or bad options.
    """
    y, n = check_successes(positives, tested, "positives/tested")
    prob = check_prob(prob)
    check_choice(interval, "interval", INTERVALS)
    check_choice(sampler, "sampler", SAMPLERS)
    draws, tune, chains = check_mcmc_size(draws, tune, chains)
    if hierarchical:
        _scales(hyper_sigma_scale)
    if target_accept is None:
        target_accept = 0.95 if hierarchical else 0.9
    if not 0.5 <= float(target_accept) < 1.0:
        raise EstimatorInputError(f"'target_accept' must be in [0.5, 1); got {target_accept!r}.")
    seed = resolve_seed(random_seed)
    model = build_model(
        y,
        n,
        sensitivity_studies,
        specificity_studies,
        hierarchical=hierarchical,
        hyper_sigma_scale=hyper_sigma_scale,
    )
    idata = run_pymc(
        model,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        target_accept=float(target_accept),
    )
    post = idata["posterior"]
    prev = np.asarray(post["prevalence"].values, dtype=float)
    sens = np.asarray(post["sensitivity"].values, dtype=float)
    spec = np.asarray(post["specificity"].values, dtype=float)
    diags = {
        "prevalence": chain_diagnostics(prev),
        "sensitivity": chain_diagnostics(sens),
        "specificity": chain_diagnostics(spec),
    }
    hyper: dict[str, Any] = {}
    if hierarchical:
        for name in ("mu_logit_spec", "mu_logit_sens", "sigma_logit_spec", "sigma_logit_sens"):
            values = np.asarray(post[name].values, dtype=float)
            hyper[name] = _summary(values, prob)
            diags[name] = chain_diagnostics(values)
    divergences = count_divergences(idata)
    converged, notes = convergence_report(diags, divergences)
    flat = prev.ravel()
    low, high = posterior_interval(flat, prob, interval)
    tau = _scales(hyper_sigma_scale) if hierarchical else None
    details: dict[str, Any] = {
        "method": "Bayesian, hierarchical (Gelman & Carpenter 2020)"
        if hierarchical
        else "Bayesian, pooled (Gelman & Carpenter 2020)",
        "apparent": y / n,
        "sensitivity": _summary(sens, prob),
        "specificity": _summary(spec, prob),
        "hyperparameters": hyper,
        "priors": (
            {
                "prevalence": "Uniform(0, 1)",
                "mu_logit_spec, mu_logit_sens": "Normal(4, 2)",
                "sigma_logit_spec": f"HalfNormal({tau[0]:g})",
                "sigma_logit_sens": f"HalfNormal({tau[1]:g})",
            }
            if tau is not None
            else {
                "prevalence": "Uniform(0, 1)",
                "sensitivity": "Uniform(0, 1)",
                "specificity": "Uniform(0, 1)",
            }
        ),
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
        warnings.warn(note, EstimatorWarning, stacklevel=2)
    return PrevalenceEstimate(
        estimate=float(np.median(flat)),
        interval=(low, high),
        prob=prob,
        se=float(flat.std(ddof=1)),
        draws=flat,
        details=details,
    )
