"""The convergence gate: R-hat, effective sample size and divergences, checked on every fit.

A failed gate is never swallowed: it is recorded on the results (root attrs), shown by the CLI
(exit code 3), flagged in every findings row, and printed at the top of reports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from risklab.models.convergence_stats import diagnostics_table

__all__ = [
    "ConvergenceReport",
    "Thresholds",
    "check_convergence",
    "separated_chains",
    "unconverged_warning",
]

#: Names under which samplers record the log density of each draw (nutpie; PyMC and JAX).
LOG_DENSITY_STATS = ("logp", "lp", "model_logp")
#: A chain whose mean log density is this many within-chain standard deviations from the others'
#: is in a different region of the posterior (in a converged run, chain means differ by about
#: one standard deviation over √ESS).
SEPARATION_SD = 5.0
#: Advice for a failed gate whose chains agree (not stuck in different modes).
DEFAULT_REMEDY = "Refit with more draws or tuning."


@dataclass(frozen=True)
class Thresholds:
    """Limits a fit must meet (DESIGN.md §6)."""

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 400.0
    max_divergences: int = 0


@dataclass(frozen=True)
class ConvergenceReport:
    """Outcome of the convergence gate.

    Attributes
    ----------
    passed : bool
        True when every checked quantity met every threshold.
    max_rhat, min_ess_bulk, min_ess_tail : float
        Worst values over the checked variables (NaN when not computable, e.g. one chain).
    divergences : int
        Divergent transitions after warm-up (0 when the sampler does not report them).
    problems : list of str
        One plain-language line per failed check, naming the worst variable.
    chains, draws : int
        Size of the posterior that was checked.
    separated_chains : list of int
        Chains whose log density sits apart from the others' (:func:`separated_chains`).
    """

    passed: bool
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    chains: int
    draws: int
    problems: list[str] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    separated_chains: list[int] = field(default_factory=list)

    def remedy(self) -> str:
        """What to do about a failed gate, in one sentence (empty when it passed)."""
        if self.passed:
            return ""
        if self.separated_chains:
            return (
                "Chains that sit in different modes are not mended by more draws: rerun with "
                "other seeds to see which mode recurs, and check the model's fit to the data "
                "(risklab.consistency); a model that misfits the data can create such modes."
            )
        return DEFAULT_REMEDY

    def to_json(self) -> str:
        """JSON text of this report (NaN written as null)."""
        data = asdict(self)
        for key in ("max_rhat", "min_ess_bulk", "min_ess_tail"):
            if not np.isfinite(data[key]):
                data[key] = None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ConvergenceReport:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["thresholds"] = Thresholds(**data["thresholds"])
        for key in ("max_rhat", "min_ess_bulk", "min_ess_tail"):
            data[key] = float("nan") if data[key] is None else float(data[key])
        return cls(**data)

    def summary(self) -> str:
        """One line for terminals and reports."""
        status = "passed" if self.passed else "FAILED"
        return (
            f"convergence {status}: max R-hat {self.max_rhat:.3f}, min bulk ESS "
            f"{self.min_ess_bulk:.0f}, min tail ESS {self.min_ess_tail:.0f}, "
            f"{self.divergences} divergences ({self.chains} chains × {self.draws} draws)"
        )


def unconverged_warning(report: ConvergenceReport | None, subject: str = "these numbers") -> str:
    """The warning that heads results of a fit that failed the gate (or was never checked).

    Parameters
    ----------
    report : ConvergenceReport or None
        The fit's gate report (``None``: the fit was not checked).
    subject : str, default "these numbers"
        What the warning is about, e.g. ``"this audit plan"`` or ``"these checks"``.
    """
    problems = "; ".join(report.problems) if report is not None and report.problems else None
    remedy = report.remedy() if report is not None else DEFAULT_REMEDY
    return (
        f"UNCONVERGED: the fit behind {subject} failed the convergence gate "
        f"({problems or 'not checked'}). Do not present {subject} as findings. {remedy}"
    )


def _worst(table: pd.DataFrame, column: str, largest: bool) -> tuple[float, str]:
    values = table[column].astype(float)
    if values.isna().all():
        return float("nan"), ""
    label = values.idxmax() if largest else values.idxmin()
    return float(values[label]), str(label)


def separated_chains(
    idata: xr.DataTree, separation_sd: float = SEPARATION_SD
) -> tuple[list[int], float, float]:
    """Chains whose log density sits apart from the others': stuck in another mode.

    A chain stuck in an inferior local mode (or in a region the others never visit) shows as a
    mean log density far from the other chains', in units of the typical within-chain standard
    deviation. Longer runs rarely mend it, so the gate names these chains apart from R-hat.

    Parameters
    ----------
    idata : xarray.DataTree
        Fitted results; the log density is read from ``sample_stats`` (``logp``, ``lp`` or
        ``model_logp``).
    separation_sd : float
        Gap, in pooled within-chain standard deviations, from the median of the chain means.

    Returns
    -------
    (list of int, float, float)
        Labels (``chain`` coordinate) of the separated chains (empty when none, when there is no
        log density or a single chain; with two chains both are named, since neither is the
        reference), the largest gap from the median chain mean in log density units, and the
        pooled within-chain standard deviation.
    """
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    name = next((n for n in LOG_DENSITY_STATS if stats is not None and n in stats), None)
    if name is None:
        return [], float("nan"), float("nan")
    lp = np.asarray(stats[name].transpose("chain", "draw").values, dtype=float)
    if lp.shape[0] < 2 or lp.shape[1] < 4 or not np.isfinite(lp).all():
        return [], float("nan"), float("nan")
    means = lp.mean(axis=1)
    pooled = float(np.sqrt(np.mean(lp.var(axis=1, ddof=1))))
    gaps = np.abs(means - np.median(means))
    if not pooled > 0:
        return [], float("nan"), pooled
    labels = stats[name]["chain"].values
    apart = [int(labels[c]) for c in np.flatnonzero(gaps > separation_sd * pooled)]
    return apart, float(gaps.max()), pooled


def check_convergence(
    idata: xr.DataTree,
    var_names: list[str] | None = None,
    thresholds: Thresholds | None = None,
) -> ConvergenceReport:
    """Check R-hat, bulk/tail ESS and divergences of a fit.

    R-hat is the rank-normalised split R-hat and the ESS are the bulk ESS and the tail ESS at
    the 5% and 95% quantiles (Vehtari et al. 2021), computed for all elements at once by
    :mod:`risklab.models.convergence_stats` (equal to ArviZ's per-element estimators).

    Parameters
    ----------
    idata : xarray.DataTree
        Fitted results with a ``posterior`` group (and ``sample_stats`` if the sampler wrote it).
    var_names : list of str, optional
        Variables to check; default all posterior variables, and then also whether some chains'
        log density sits apart from the others' (:func:`separated_chains`: a chain stuck in
        another mode, which fails the gate with its own message).
    thresholds : Thresholds, optional
        Limits to apply; default R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergences.

    Returns
    -------
    ConvergenceReport
    """
    thresholds = thresholds or Thresholds()
    posterior = idata["posterior"].to_dataset()
    names = var_names or [str(v) for v in posterior.data_vars]
    chains, draws = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
    table = diagnostics_table(posterior, names)
    max_rhat, rhat_at = _worst(table, "r_hat", largest=True)
    min_bulk, bulk_at = _worst(table, "ess_bulk", largest=False)
    min_tail, tail_at = _worst(table, "ess_tail", largest=False)
    divergences = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        divergences = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    problems = []
    if chains < 2:
        problems.append("R-hat needs at least two chains; convergence cannot be assessed")
    elif not max_rhat <= thresholds.max_rhat:
        problems.append(f"R-hat {max_rhat:.3f} > {thresholds.max_rhat} (worst: {rhat_at})")
    if not min_bulk >= thresholds.min_ess_bulk:
        problems.append(
            f"bulk ESS {min_bulk:.0f} < {thresholds.min_ess_bulk:.0f} (worst: {bulk_at})"
        )
    if not min_tail >= thresholds.min_ess_tail:
        problems.append(
            f"tail ESS {min_tail:.0f} < {thresholds.min_ess_tail:.0f} (worst: {tail_at})"
        )
    if divergences > thresholds.max_divergences:
        problems.append(f"{divergences} divergent transitions after warm-up")
    apart: list[int] = []
    if var_names is None:
        apart, gap, pooled = separated_chains(idata)
        if apart:
            which = ", ".join(str(c) for c in apart)
            problems.append(
                f"chains sit in different modes: the mean log density of chain"
                f"{'s' if len(apart) > 1 else ''} {which} is up to {gap:.0f} from the median"
                f" chain's (within-chain sd {pooled:.1f}); longer runs will not mix them"
            )
    return ConvergenceReport(
        passed=not problems,
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=divergences,
        chains=chains,
        draws=draws,
        problems=problems,
        thresholds=thresholds,
        separated_chains=apart,
    )
