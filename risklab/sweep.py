"""Many fits and analyses at once: serially, or on a Dask cluster with identical results.

A :class:`SweepTask` is one unit of work: a submission (object, directory/.zip, or a results file
``posterior.nc`` to analyse without refitting), a prior set, sampler settings and a seed, and an
analysis ``analyse(fitted) -> result`` run on the fitted model (default: the
:func:`risklab.assess` table). :func:`sweep` runs a list of them — many submissions × prior sets ×
scenarios — serially when no client is given and on `Dask distributed
<https://distributed.dask.org>`_ when a :class:`distributed.Client` is passed. Every random step
derives from the task's own seed, so the results are the same whichever way, and in whichever
order, the tasks run. Failures are captured per task (exception type and message) instead of
stopping the sweep; convergence is reported per task.

Scenarios that only move the model's levers need no refit: :class:`LeversAnalysis` evaluates
:mod:`risklab.counterfactual` levers on each fit's posterior draws. ``docs/sweep.md`` shows how to
run a sweep on a real cluster.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from risklab.counterfactual import OUTCOMES, Levers, PosteriorState, evaluate
from risklab.dims import CATEGORY, DEFAULT_PROB, SAMPLE_DIMS, SCENARIO
from risklab.models.config import SamplerConfig
from risklab.priors import Prior

__all__ = [
    "LeversAnalysis",
    "SweepResult",
    "SweepTask",
    "assess_table",
    "grid",
    "keep_posterior",
    "run_task",
    "sweep",
]


def assess_table(fitted) -> pd.DataFrame:
    """The default analysis: the findings table of :func:`risklab.assess`."""
    from risklab.assess import assess

    return assess(fitted).table


def keep_posterior(fitted) -> xr.Dataset:
    """An analysis that returns the posterior draws themselves (mind the memory)."""
    return fitted.posterior


@dataclass(frozen=True)
class LeversAnalysis:
    """Evaluate scenarios of :class:`~risklab.counterfactual.Levers` on a fit (no refit).

    Picklable, so it can be shipped to Dask workers.

    Parameters
    ----------
    scenarios : mapping of str to Levers
        Named interventions; ``{"baseline": Levers()}`` is the fitted world.
    outcomes : sequence of str
        Outcomes of :func:`risklab.counterfactual.evaluate` to summarise.
    prob : float, default 0.90
        Mass of the equal-tailed intervals.

    Notes
    -----
    Calling it on a fitted model returns an :class:`xarray.Dataset` with, for each outcome,
    ``<name>_median``, ``<name>_low`` and ``<name>_high`` over ``(scenario, category)``.
    """

    scenarios: Mapping[str, Levers]
    outcomes: Sequence[str] = ("prevalence", "underestimation_vs_claim", "undetected_listings")
    prob: float = DEFAULT_PROB

    def __post_init__(self) -> None:
        unknown = sorted(set(self.outcomes) - set(OUTCOMES))
        if unknown:
            raise ValueError(f"unknown outcomes {unknown}; known: {list(OUTCOMES)}")
        if not self.scenarios:
            raise ValueError("scenarios is empty")

    def __call__(self, fitted) -> xr.Dataset:
        state = PosteriorState.from_fitted(fitted)
        return self.on_state(state)

    def on_state(self, state: PosteriorState) -> xr.Dataset:
        """The same summary from a :class:`~risklab.counterfactual.PosteriorState`."""
        tail = (1.0 - self.prob) / 2.0
        parts = []
        for name, levers in self.scenarios.items():
            ds = evaluate(state, levers)[list(self.outcomes)]
            q = ds.quantile([tail, 0.5, 1.0 - tail], dim=list(SAMPLE_DIMS))
            summary = xr.Dataset(
                {
                    f"{var}_{label}": q[var].isel(quantile=i, drop=True)
                    for var in self.outcomes
                    for i, label in enumerate(("low", "median", "high"))
                }
            )
            parts.append(summary.expand_dims({SCENARIO: [name]}))
        return xr.concat(parts, dim=SCENARIO).transpose(SCENARIO, CATEGORY)


@dataclass(frozen=True)
class SweepTask:
    """One fit (or loaded fit) and the analysis to run on it.

    Parameters
    ----------
    submission : Submission or path
        A :class:`~risklab.data.Submission`, a submission directory or .zip (fitted), or a
        results file ``*.nc`` written by :meth:`~risklab.PlatformRiskModel.save` or
        ``risklab assess`` (loaded; no refit, ``priors``/``sampler_config``/``random_seed`` then
        do not apply). On a cluster, paths must be readable by the workers.
    priors : dict of str to Prior, optional
        Prior overrides (a prior set); default the model's priors.
    sampler_config : SamplerConfig, optional
        Default :class:`~risklab.SamplerConfig` ().
    random_seed : int, default 0
        The fit's seed; analyses derive their own seeds from the fit's.
    analyse : callable, optional
        ``analyse(fitted) -> result``; must be picklable for Dask (a module-level function,
        :class:`functools.partial` of one, or an instance such as :class:`LeversAnalysis`).
        Default :func:`assess_table`.
    evidence : path, optional
        Regulator evidence directory/.zip for a submission given as a path.
    name : str, optional
        A label carried into the result.
    """

    submission: Any
    priors: Mapping[str, Prior] | None = None
    sampler_config: SamplerConfig | None = None
    random_seed: int = 0
    analyse: Callable[[Any], Any] | None = None
    evidence: str | os.PathLike | None = None
    name: str | None = None


@dataclass
class SweepResult:
    """Outcome of one :class:`SweepTask`.

    Attributes
    ----------
    index : int
        Position of the task in the list given to :func:`sweep`.
    name : str or None
    ok : bool
        Whether the fit and the analysis ran without an exception.
    result : object
        What the analysis returned (``None`` on failure).
    error_type, error : str or None
        Exception class name and message on failure.
    converged : bool or None
        Whether the fit passed the convergence gate (``None`` when it failed before that).
    convergence : str or None
        One-line summary of the convergence gate.
    seconds : float
        Wall time of the task (not compared between runs).
    """

    index: int
    name: str | None
    ok: bool
    result: Any = None
    error_type: str | None = None
    error: str | None = None
    converged: bool | None = None
    convergence: str | None = None
    seconds: float = field(default=0.0, compare=False)


def _fitted(task: SweepTask):
    from risklab.data import Submission, load_submission
    from risklab.models import PlatformRiskModel

    source = task.submission
    if isinstance(source, str | os.PathLike) and Path(source).suffix == ".nc":
        return PlatformRiskModel.load(source)
    if isinstance(source, str | os.PathLike):
        source = load_submission(source, evidence=task.evidence)
    if not isinstance(source, Submission):
        raise TypeError(f"submission must be a Submission or a path, got {type(source).__name__}")
    model = PlatformRiskModel(
        source, priors=dict(task.priors or {}), sampler_config=task.sampler_config
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(random_seed=task.random_seed)
    return model


def run_task(task: SweepTask, index: int = 0) -> SweepResult:
    """Run one task; any exception is captured in the result (never raised)."""
    start = time.perf_counter()
    converged = summary = None
    try:
        fitted = _fitted(task)
        if fitted.convergence is not None:
            converged = bool(fitted.convergence.passed)
            summary = fitted.convergence.summary()
        analyse = task.analyse or assess_table
        result = analyse(fitted)
    except Exception as exc:  # captured per task by design
        return SweepResult(
            index=index,
            name=task.name,
            ok=False,
            error_type=type(exc).__name__,
            error=str(exc),
            converged=converged,
            convergence=summary,
            seconds=time.perf_counter() - start,
        )
    return SweepResult(
        index=index,
        name=task.name,
        ok=True,
        result=result,
        converged=converged,
        convergence=summary,
        seconds=time.perf_counter() - start,
    )


def sweep(tasks: Iterable[SweepTask], *, client=None) -> list[SweepResult]:
    """Run tasks serially, or on Dask distributed when ``client`` is given.

    Parameters
    ----------
    tasks : iterable of SweepTask
    client : distributed.Client, optional
        Submit each task to this client (``pure=False``, key ``risklab-sweep-<id>-<index>``);
        default run them one after the other in this process.

    Returns
    -------
    list of SweepResult
        In task order. A task that raised has ``ok=False`` with the exception's type and
        message; a worker lost while running a task gives ``ok=False`` too.

    Notes
    -----
    Results do not depend on where a task runs: the fit's randomness comes from the task's seed
    (:func:`risklab.models.config.derive_seeds`), and analyses derive theirs from the fit's.
    """
    tasks = list(tasks)
    for i, task in enumerate(tasks):
        if not isinstance(task, SweepTask):
            raise TypeError(f"tasks[{i}] is a {type(task).__name__}, not a SweepTask")
    if client is None:
        return [run_task(task, i) for i, task in enumerate(tasks)]
    token = uuid.uuid4().hex[:8]
    futures = [
        client.submit(run_task, task, i, pure=False, key=f"risklab-sweep-{token}-{i}")
        for i, task in enumerate(tasks)
    ]
    results = []
    for i, future in enumerate(futures):
        try:
            results.append(future.result())
        except Exception as exc:  # e.g. KilledWorker: the task never returned
            results.append(
                SweepResult(
                    index=i, name=tasks[i].name, ok=False, error_type=type(exc).__name__,
                    error=str(exc),
                )
            )  # fmt: skip
    return results


def grid(
    submissions: Sequence[Any],
    prior_sets: Mapping[str, Mapping[str, Prior] | None] | None = None,
    *,
    seeds: Sequence[int] = (0,),
    sampler_config: SamplerConfig | None = None,
    analyse: Callable[[Any], Any] | None = None,
    evidence: str | os.PathLike | None = None,
) -> list[SweepTask]:
    """Tasks for every submission × prior set × seed (scenarios go in ``analyse``).

    Names are ``"<submission index>/<prior set>/<seed>"``.
    """
    prior_sets = prior_sets or {"default": None}
    return [
        SweepTask(
            submission=sub,
            priors=priors,
            sampler_config=sampler_config,
            random_seed=int(seed),
            analyse=analyse,
            evidence=evidence,
            name=f"{i}/{set_name}/{seed}",
        )
        for i, sub in enumerate(submissions)
        for set_name, priors in prior_sets.items()
        for seed in seeds
    ]
