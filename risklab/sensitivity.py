"""Prior sensitivity of the findings: power-scaling diagnostics and refits under other priors.

Two complementary checks of how much the Art. 34 findings owe to the priors
(``docs/consistency-and-sensitivity.md``):

* :func:`prior_sensitivity` — *local*, no refit. Power-scaling (Kallioinen et al. 2024, as
  implemented by :func:`arviz_stats.psense`): raise the prior (or the likelihood) to a power
  ``α`` near one, reweight the posterior draws by importance sampling (Pareto-smoothed) and
  measure how much each headline quantity's distribution moves (the cumulative Jensen–Shannon
  distance per unit change of ``log α``). A quantity with prior sensitivity ≥ 0.05 is shaped by
  its prior; one whose likelihood sensitivity is also ≥ 0.05 signals a possible prior–data
  conflict, one whose likelihood sensitivity is below 0.05 a strong prior / weak likelihood.
* :func:`compare_prior_sets` — *global*, refits. Fit the submission under each of several
  named prior sets, assess each, and report per category which conclusions survive every set:
  ``P(U > 1) ≥ level``, the most likely band, and the claimed band being contradicted.
  :func:`default_alternative_prior_sets` builds three documented alternatives.

Headline quantities are the category-level ones of :func:`risklab.assess` (listings-weighted over
periods): ``prevalence``, ``underestimation`` ``U = π / π_claim`` and ``detection_rate``. The
distance is invariant to rescaling, so ``U`` (prevalence divided by a fixed claim) has exactly
the sensitivity of ``prevalence``; both are reported because both are headlines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pymc as pm
import xarray as xr
from arviz_stats import psense
from pymc.backends.arviz import apply_function_over_dataset
from pymc.model.transform.conditioning import remove_value_transforms

from risklab.assess import Findings, assess
from risklab.dims import CATEGORY, DEFAULT_PROB, SAMPLE_DIMS
from risklab.models.base import RiskModel
from risklab.models.config import SamplerConfig
from risklab.models.diagnostics import unconverged_warning
from risklab.models.numerics import strict_floating_point
from risklab.models.platform import PlatformRiskModel
from risklab.priors import Prior, PriorError

__all__ = [
    "HEADLINE_QUANTITIES",
    "PriorSensitivity",
    "PriorSetComparison",
    "compare_prior_sets",
    "default_alternative_prior_sets",
    "prior_sensitivity",
]

#: Quantities of :func:`prior_sensitivity` by default (variables of ``Findings.draws``).
HEADLINE_QUANTITIES = ("prevalence", "underestimation", "detection_rate")

DIAGNOSIS_OK = "ok"
DIAGNOSIS_CONFLICT = "prior-data conflict"
DIAGNOSIS_STRONG_PRIOR = "strong prior / weak likelihood"

#: Draws of ``Findings.draws`` that are not continuous quantities (not power-scaled).
_DISCRETE = ("band",)


# ============================================================================ power-scaling
@dataclass
class PriorSensitivity:
    """Power-scaling sensitivity of the headline quantities.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per quantity and category (``category`` empty for platform-wide quantities):
        ``quantity``, ``category``, ``prior`` and ``likelihood`` (sensitivities: the cumulative
        Jensen–Shannon distance per unit ``log α``), ``diagnosis`` (``"ok"``,
        ``"prior-data conflict"``, ``"strong prior / weak likelihood"``).
    scaled_priors : list of str
        The model's free variables whose log prior density was power-scaled.
    likelihood_terms : list of str
        The likelihood terms that were power-scaled (observed variables, and potentials when
        included).
    notes : list of str
        Caveats.
    threshold : float
        The sensitivity threshold of the diagnosis.
    tree : xarray.DataTree
        What was power-scaled: the quantities' draws (``posterior``), ``log_prior`` and
        ``log_likelihood``; pass it to arviz-stats / arviz-plots for further diagnostics
        (e.g. ``arviz_stats.psense_summary(report.tree)``).
    """

    table: pd.DataFrame
    scaled_priors: list[str]
    likelihood_terms: list[str]
    notes: list[str] = field(default_factory=list)
    threshold: float = 0.05
    tree: xr.DataTree | None = None

    @property
    def sensitive(self) -> pd.DataFrame:
        """Rows whose diagnosis is not ``"ok"``."""
        return self.table[self.table["diagnosis"] != DIAGNOSIS_OK]


def diagnose(prior: float, likelihood: float, threshold: float = 0.05) -> str:
    """The diagnosis rule of :func:`arviz_stats.psense_summary`, in plain words."""
    if prior >= threshold and likelihood >= threshold:
        return DIAGNOSIS_CONFLICT
    if prior > threshold > likelihood:
        return DIAGNOSIS_STRONG_PRIOR
    return DIAGNOSIS_OK


def _strip_dims(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in spec.items() if k != "dims"}
    if "kwargs" in out:
        out["kwargs"] = {
            k: _strip_dims(v) if isinstance(v, Mapping) else v for k, v in out["kwargs"].items()
        }
    return out


def prior_variables(name: str, spec: Prior) -> list[str]:
    """Names of the free variables :meth:`Prior.create_variable` makes for the prior ``name``.

    ``name`` itself, ``<name>_raw`` with a transform, ``<name>_offset`` when non-centred, and the
    variables of nested priors (``<name>_<parameter>``).
    """
    with pm.Model() as scratch:
        Prior.from_dict(_strip_dims(spec.to_dict())).create_variable(name)
    return [rv.name for rv in scratch.free_RVs]


def _potential_log_density(model: pm.Model, posterior: xr.Dataset) -> xr.Dataset:
    """Per-draw values of the model's ``pm.Potential`` terms (e.g. ``offender_strikes``)."""
    umodel = remove_value_transforms(model)
    potentials = list(umodel.potentials)
    fn = umodel.compile_fn(
        inputs=umodel.value_vars,
        outs=umodel.logp(vars=potentials, sum=False),
        on_unused_input="ignore",
    )
    names = [rv.name for rv in umodel.free_RVs]
    dataset = posterior[names].astype(
        {
            umodel.rvs_to_values[rv].name: umodel.rvs_to_values[rv].type.dtype
            for rv in umodel.free_RVs
        }
    )
    return apply_function_over_dataset(
        fn,
        dataset,
        output_var_names=[p.name for p in potentials],
        coords={},
        dims={},
        sample_dims=SAMPLE_DIMS,
        progressbar=False,
    )


def prior_sensitivity(
    fitted: RiskModel,
    *,
    quantities: Sequence[str] = HEADLINE_QUANTITIES,
    priors: Sequence[str] | None = None,
    threshold: float = 0.05,
    alphas: tuple[float, float] = (0.99, 1.01),
    include_potentials: bool = True,
) -> PriorSensitivity:
    """Power-scaling prior and likelihood sensitivity of the headline quantities.

    Parameters
    ----------
    fitted : PlatformRiskModel
        A fitted model. Its results are not modified: the log densities are computed into a
        separate tree, so :meth:`~risklab.models.RiskModel.save` writes what it did before.
    quantities : sequence of str
        Variables of :attr:`risklab.assess.Findings.draws` (category-level, listings-weighted
        over periods; with trader data also ``enforcement``, ``non_enforcement_share``, ...).
    priors : sequence of str, optional
        Names of the model's priors (keys of ``fitted.priors``) to power-scale; default all of
        them. The hierarchical levels below them (category effects, cell deviations, offsets)
        are model structure and are not scaled (selective power-scaling of the top-level
        priors, as Kallioinen et al. recommend for hierarchical models).
    threshold : float, default 0.05
        Sensitivity above which a prior or likelihood counts as influential (arviz-stats').
    alphas : (float, float), default (0.99, 1.01)
        Power-scaling factors of the finite-difference derivative.
    include_potentials : bool, default True
        Power-scale ``pm.Potential`` terms with the likelihood. In the platform model the only
        potential is the repeat-offender strike likelihood (``offender_strikes``), which PyMC
        does not put in the ``log_likelihood`` group; without it the likelihood sensitivity of
        enforcement quantities misses the strike data.

    Returns
    -------
    PriorSensitivity

    Notes
    -----
    Power-scaling is a local diagnostic of the posterior at hand: it needs enough effective
    draws for the importance weights (check the Pareto-k warnings arviz-stats may log) and says
    nothing about priors far from the ones used — :func:`compare_prior_sets` answers that.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    idata = fitted.require_fitted()
    findings = assess(fitted)
    draws = findings.draws
    available = [v for v in draws.data_vars if v not in _DISCRETE]
    unknown = [q for q in quantities if q not in available]
    if unknown or not quantities:
        raise ValueError(f"unknown quantities {unknown}; available: {available}")
    names = list(fitted.priors) if priors is None else list(priors)
    bad = [n for n in names if n not in fitted.priors]
    if bad or not names:
        raise ValueError(f"unknown priors {bad}; this model's priors: {sorted(fitted.priors)}")

    model = fitted.model
    free = {rv.name for rv in model.free_RVs}
    scaled = [v for n in names for v in prior_variables(n, fitted.priors[n]) if v in free]
    with strict_floating_point():
        log_prior = pm.stats.compute_log_prior(
            idata, var_names=scaled, model=model, extend_inferencedata=False, progressbar=False
        )
        log_lik = pm.stats.compute_log_likelihood(
            idata, model=model, extend_inferencedata=False, progressbar=False
        )
        if model.potentials and include_potentials:
            potentials = _potential_log_density(model, idata["posterior"].to_dataset())
            log_lik = xr.merge([log_lik, potentials])
    notes = []
    if model.potentials and not include_potentials:
        notes.append(
            "Potential terms ("
            + ", ".join(p.name for p in model.potentials)
            + ") were not power-scaled: the likelihood sensitivity ignores the data they carry."
        )
    tree = xr.DataTree.from_dict(
        {
            "posterior": draws[list(quantities)],
            "log_prior": log_prior,
            "log_likelihood": log_lik,
        }
    )
    by_group = {
        group: psense(tree, var_names=list(quantities), group=group, alphas=alphas)
        for group in ("prior", "likelihood")
    }
    rows = []
    for quantity in quantities:
        prior_da = by_group["prior"][quantity]
        lik_da = by_group["likelihood"][quantity]
        labels = [str(c) for c in prior_da[CATEGORY].values] if CATEGORY in prior_da.dims else [""]
        for label in labels:
            sel = {CATEGORY: label} if label else {}
            p, lk = float(prior_da.sel(sel)), float(lik_da.sel(sel))
            rows.append(
                {
                    "quantity": quantity,
                    "category": label,
                    "prior": p,
                    "likelihood": lk,
                    "diagnosis": diagnose(p, lk, threshold),
                }
            )
    if fitted.convergence is not None and not fitted.convergence.passed:
        notes.append(unconverged_warning(fitted.convergence, "these sensitivity values"))
    return PriorSensitivity(
        table=pd.DataFrame(rows),
        scaled_priors=scaled,
        likelihood_terms=list(log_lik.data_vars),
        notes=notes,
        threshold=threshold,
        tree=tree,
    )


# ============================================================================ prior sets
@dataclass
class PriorSetComparison:
    """Findings refitted under several prior sets, and which conclusions survive all of them.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per category: ``category``, ``claimed_band``; per prior set ``<column>:<set>``
        for ``prevalence_median``, ``prevalence_low``, ``prevalence_high``,
        ``p_underestimated``, ``most_likely_band`` and ``p_claimed_band`` (posterior probability
        that the true prevalence lies in the claimed band); then ``underestimated_in_all``
        (``P(U > 1) ≥ level`` under every set), ``underestimated_in_any``,
        ``same_most_likely_band``, ``claimed_band_contradicted_in_all`` (``p_claimed_band ≤
        1 − level`` under every set), ``converged_in_all`` and ``robust_conclusions`` (the
        baseline's conclusions that hold under every set, ``;``-separated, or ``"none"``).
    findings : dict of str to Findings
        The assessment under each prior set.
    fits : dict of str to RiskModel
        The fitted model under each prior set.
    prior_sets : dict of str to dict
        The prior overrides of each set.
    baseline_name : str
    level : float
    summary : list of str
        One plain-language sentence per category.
    """

    table: pd.DataFrame
    findings: dict[str, Findings]
    fits: dict[str, RiskModel]
    prior_sets: dict[str, dict[str, Prior]]
    baseline_name: str
    level: float
    summary: list[str] = field(default_factory=list)

    @property
    def set_names(self) -> list[str]:
        """Prior-set names, baseline first."""
        return list(self.findings)


def _validate_sets(
    prior_sets: Mapping[str, Mapping[str, Prior | Mapping]], baseline_name: str
) -> dict[str, dict]:
    if not isinstance(prior_sets, Mapping):
        raise ValueError("prior_sets must be a mapping of set name to prior overrides")
    sets: dict[str, dict] = {}
    if baseline_name not in prior_sets:
        sets[baseline_name] = {}
    for name, overrides in prior_sets.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"prior-set names must be non-empty strings without ':', got {name!r}")
        if not isinstance(overrides, Mapping):
            raise ValueError(f"prior set {name!r} must map prior names to Prior objects")
        sets[name] = dict(overrides)
    if len(sets) < 2:
        raise ValueError("compare_prior_sets needs at least one prior set besides the baseline")
    return {baseline_name: sets.pop(baseline_name), **sets}


def compare_prior_sets(
    submission,
    prior_sets: Mapping[str, Mapping[str, Prior | Mapping]],
    *,
    sampler_config: SamplerConfig | None = None,
    random_seed: int = 0,
    baseline_name: str = "default",
    prob: float = DEFAULT_PROB,
    level: float = 0.95,
    model_class: type[RiskModel] = PlatformRiskModel,
) -> PriorSetComparison:
    """Refit under each prior set and report which conclusions survive all of them.

    Parameters
    ----------
    submission : Submission
        The submission (with evidence) to fit.
    prior_sets : mapping of str to mapping of str to Prior
        Named sets of prior overrides (names as in the model's ``default_priors``). A set
        missing ``baseline_name`` gets a baseline of the default priors.
    sampler_config : SamplerConfig, optional
        How each fit is sampled (default: the model's default).
    random_seed : int, default 0
        Every set is fitted with this seed (common random numbers).
    baseline_name : str, default "default"
        The set whose conclusions are tested for robustness.
    prob : float, default 0.90
        Mass of the intervals of each assessment.
    level : float, default 0.95
        Posterior probability at which a conclusion is drawn (``P(U > 1) ≥ level``;
        a claimed band with ``P ≤ 1 − level`` is contradicted).
    model_class : type, default PlatformRiskModel

    Returns
    -------
    PriorSetComparison

    Notes
    -----
    Fits run one after the other. Every set is validated (unknown prior names raise
    :class:`~risklab.priors.PriorError`) before the first fit starts.
    """
    if not 0.5 < level < 1:
        raise ValueError(f"level must be in (0.5, 1), got {level!r}")
    sets = _validate_sets(prior_sets, baseline_name)
    models = {}
    for name, overrides in sets.items():
        try:
            models[name] = model_class(submission, priors=overrides, sampler_config=sampler_config)
        except PriorError as exc:
            raise PriorError(f"prior set {name!r}: {exc}") from exc
    findings = {}
    for name, model in models.items():
        model.fit(random_seed=random_seed)
        findings[name] = assess(model, prob=prob)
    table = _comparison_table(findings, baseline_name, level)
    return PriorSetComparison(
        table=table,
        findings=findings,
        fits=models,
        prior_sets={name: dict(models[name].priors) for name in sets},
        baseline_name=baseline_name,
        level=level,
        summary=_summary_sentences(table, list(findings), level),
    )


def _comparison_table(findings: dict[str, Findings], baseline: str, level: float) -> pd.DataFrame:
    """Per-category robustness of the conclusions across the assessments in ``findings``."""
    base = findings[baseline].table
    out = base[["category", "claimed_band"]].copy().reset_index(drop=True)
    per_set = ("prevalence_median", "prevalence_low", "prevalence_high", "p_underestimated")
    for name, f in findings.items():
        t = f.table.set_index("category").loc[out["category"]]
        for column in per_set:
            out[f"{column}:{name}"] = t[column].to_numpy(dtype=float)
        out[f"most_likely_band:{name}"] = t["most_likely_band"].to_numpy()
        out[f"p_claimed_band:{name}"] = [
            float(t.loc[c, f"p_band:{band}"])
            for c, band in zip(out["category"], out["claimed_band"], strict=True)
        ]
    names = list(findings)
    p_u = out[[f"p_underestimated:{n}" for n in names]].to_numpy(dtype=float)
    p_claimed = out[[f"p_claimed_band:{n}" for n in names]].to_numpy(dtype=float)
    bands = out[[f"most_likely_band:{n}" for n in names]].to_numpy()
    out["underestimated_in_all"] = (p_u >= level).all(axis=1)
    out["underestimated_in_any"] = (p_u >= level).any(axis=1)
    out["same_most_likely_band"] = (bands == bands[:, :1]).all(axis=1)
    out["claimed_band_contradicted_in_all"] = (p_claimed <= 1 - level).all(axis=1)
    out["converged_in_all"] = all(f.converged for f in findings.values())
    robust = []
    for i, row in out.iterrows():
        parts = []
        if p_u[i, 0] >= level and row["underestimated_in_all"]:
            parts.append("underestimated")
        if row["same_most_likely_band"]:
            parts.append(f"most likely band {row[f'most_likely_band:{baseline}']!r}")
        if row["claimed_band_contradicted_in_all"]:
            parts.append("claimed band contradicted")
        robust.append("; ".join(parts) if parts else "none")
    out["robust_conclusions"] = robust
    return out


def _summary_sentences(table: pd.DataFrame, names: list[str], level: float) -> list[str]:
    out = []
    n = len(names)
    for _, row in table.iterrows():
        p_u = [row[f"p_underestimated:{s}"] for s in names]
        cat = row["category"]
        if row["underestimated_in_all"]:
            text = (
                f"{cat}: underestimated under all {n} prior sets "
                f"(P(U > 1) from {min(p_u):.3f} to {max(p_u):.3f})"
            )
        elif row["underestimated_in_any"]:
            held = [s for s, p in zip(names, p_u, strict=True) if p >= level]
            text = (
                f"{cat}: underestimation depends on the prior — P(U > 1) ≥ {level:g} only under "
                f"{', '.join(held)} (range {min(p_u):.3f}–{max(p_u):.3f})"
            )
        else:
            text = f"{cat}: underestimation not established under any prior set (max P(U > 1) "
            text += f"{max(p_u):.3f})"
        bands = [row[f"most_likely_band:{s}"] for s in names]
        if row["same_most_likely_band"]:
            text += f"; most likely band {bands[0]!r} under every set"
        else:
            text += (
                "; the most likely band changes with the prior ("
                + ", ".join(f"{s}: {b!r}" for s, b in zip(names, bands, strict=True))
                + ")"
            )
        if row["claimed_band_contradicted_in_all"]:
            text += f"; the claimed band {row['claimed_band']!r} is contradicted under every set"
        out.append(text + ".")
    if not bool(table["converged_in_all"].all()):
        out.append("UNCONVERGED: at least one refit failed the convergence gate.")
    return out


def default_alternative_prior_sets(fitted: RiskModel) -> dict[str, dict[str, Prior]]:
    """The fit's priors and three documented alternatives, for :func:`compare_prior_sets`.

    * ``"default"`` — the priors of ``fitted`` (resolved, overrides included).
    * ``"wide_prevalence"`` — the prevalence intercept's sd and the category spread doubled
      (``prevalence_intercept``, ``prevalence_category_sd``): a vaguer view of how common illegal
      listings are.
    * ``"low_detection"`` — the typical detection level one unit lower on the logit scale
      (``detection_level_logit_mu``; 35% → 17% at the defaults): pessimistic about what review
      finds, which pushes prevalence up wherever detections alone inform it.
    * ``"high_detection"`` — one unit higher (35% → 60%): optimistic, pushes prevalence down.

    A prior is altered only when present with the expected form (``Normal`` with numeric
    ``mu``/``sigma``; ``HalfNormal`` with numeric ``sigma``); otherwise the set leaves it as it is.

    Parameters
    ----------
    fitted : RiskModel
        A model (fitted or not): only its resolved priors are read.

    Returns
    -------
    dict of str to dict of str to Prior
    """
    base = dict(fitted.priors)

    def shifted(name: str, *, mu_shift: float = 0.0, sigma_factor: float = 1.0):
        spec = base.get(name)
        if spec is None:
            return {}
        params = dict(spec.parameters)
        numeric = all(
            isinstance(params.get(k), int | float)
            for k in ("sigma", *(("mu",) if mu_shift else ()))
        )
        if spec.distribution not in ("Normal", "HalfNormal") or not numeric:
            return {}
        if mu_shift:
            params["mu"] = params["mu"] + mu_shift
        params["sigma"] = params["sigma"] * sigma_factor
        return {name: Prior.from_dict({**spec.to_dict(), "kwargs": params})}

    return {
        "default": base,
        "wide_prevalence": {
            **base,
            **shifted("prevalence_intercept", sigma_factor=2.0),
            **shifted("prevalence_category_sd", sigma_factor=2.0),
        },
        "low_detection": {**base, **shifted("detection_level_logit_mu", mu_shift=-1.0)},
        "high_detection": {**base, **shifted("detection_level_logit_mu", mu_shift=1.0)},
    }
