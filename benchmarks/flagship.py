"""One assessment end to end, stage by stage: the flagship case and the unit of every fit benchmark.

:func:`assessment_case` simulates a marketplace (:func:`benchmarks.common.marketplace`), then
times what a user waits for: model build, compilation, sampling, the convergence gate,
:func:`risklab.assess.assess` and the report (:func:`risklab.outputs.write_assessment` into a
temporary directory: findings, posterior.nc, report.md/html and figures). It reports the minimum
bulk ESS per second of sampling over the headline quantities (category prevalence and detection
rate, listings-weighted as in the findings; enforcement and the non-enforcement share with a
trader table), divergences, R-hat, the gradient evaluations NUTS spent, and optionally the cost of
one log-density-and-gradient evaluation (the deterministic cost that must not grow with
listings or traders). Run it in a child process (:func:`benchmarks.common.run_isolated`) to get
its own peak memory.

    python -m benchmarks.flagship [--quick] [--sampler nutpie]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from benchmarks.common import (
    Stopwatch,
    best_time,
    diagnostics,
    headline_from_posterior,
    marketplace,
    run_isolated,
)

#: Flagship settings (issue #10): 10 categories × 24 months × 4 channels, 10^5 traders.
FLAGSHIP = {
    "n_categories": 10,
    "n_periods": 24,
    "total_listings": 1e8,
    "n_traders": 100_000,
}
#: Tiny settings for ``--quick`` runs and the smoke test.
QUICK = {"n_categories": 4, "n_periods": 6, "total_listings": 1e6, "n_traders": 1_000}
#: risklab's default sampler settings (SamplerConfig's; a test keeps them equal).
FULL_SAMPLING = {"draws": 1000, "tune": 2000, "chains": 4}
QUICK_SAMPLING = {"draws": 100, "tune": 100, "chains": 2}


@contextmanager
def instrumented_sampling() -> Iterator[dict[str, Any]]:
    """Time ``pm.sample`` and nutpie's compilation while a model is fitted.

    Yields a dict filled with ``pm_sample_s`` (wall time of ``pm.sample``) and, when PyMC calls
    nutpie, ``compile_s`` (wall time of the compilation: risklab's
    :func:`~risklab.models.nutpie_cache.compile_nutpie`, or ``nutpie.compile_pymc_model`` for
    a call it passes on) and ``compiled`` (the compiled model, whose log-density function
    :func:`nutpie_gradient_cost` times).
    """
    import nutpie
    import pymc as pm

    from risklab.models import nutpie_cache

    timings: dict[str, Any] = {}
    original_sample = pm.sample

    def timed_sample(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original_sample(*args, **kwargs)
        finally:
            timings["pm_sample_s"] = timings.get("pm_sample_s", 0.0) + (time.perf_counter() - start)

    def timed_compilation(compile_model):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            compiled = compile_model(*args, **kwargs)
            timings["compile_s"] = time.perf_counter() - start
            timings["compiled"] = compiled
            return compiled

        return timed

    replaced = [
        (pm, "sample", timed_sample),
        (nutpie, "compile_pymc_model", timed_compilation(nutpie.compile_pymc_model)),
        (nutpie_cache, "compile_nutpie", timed_compilation(nutpie_cache.compile_nutpie)),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in replaced]
    for module, name, timed in replaced:
        setattr(module, name, timed)
    try:
        yield timings
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def gradient_cost(pm_model, *, number: int = 200, repeat: int = 7) -> dict[str, float]:
    """Seconds per log-density-and-gradient evaluation (PyTensor's default C backend).

    The cost of one gradient is what "counts enter as sufficient statistics" promises to keep
    flat: it depends on the graph (categories, periods, channels, table lengths), never on the
    counts. Measured at the model's initial point, fastest of ``repeat`` blocks.
    """
    from pymc.blocking import DictToArrayBijection

    from risklab.models.numerics import strict_floating_point

    start = time.perf_counter()
    with strict_floating_point():  # the flags risklab compiles under
        fn = pm_model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    compile_s = time.perf_counter() - start
    initial = pm_model.initial_point()
    point = DictToArrayBijection.map({v.name: initial[v.name] for v in fn._grad_vars}).data
    fn(point)
    per_call = best_time(lambda: fn(point), number=number, repeat=repeat)
    return {
        "gradient_s": per_call,
        "gradient_backend": "c (pytensor)",
        "gradient_compile_s": compile_s,
        "n_parameters": point.size,
    }


def nutpie_gradient_cost(compiled, *, number: int = 200, repeat: int = 7) -> dict[str, float]:
    """Seconds per log-density-and-gradient evaluation of nutpie's compiled model (numba).

    Times the PyTensor function nutpie compiled (``logp_func``: flat unconstrained point →
    log density and gradient) at the origin of the unconstrained space; no extra compilation.
    """
    point = np.zeros(int(compiled.n_dim))
    fn = compiled.logp_func
    fn(point)
    per_call = best_time(lambda: fn(point), number=number, repeat=repeat)
    return {
        "gradient_s": per_call,
        "gradient_backend": "numba (nutpie)",
        "n_parameters": point.size,
    }


def _gradient_evaluations(idata) -> int | None:
    if "sample_stats" not in idata.children:
        return None
    stats = idata["sample_stats"]
    for name in ("n_steps", "tree_size", "num_steps"):
        if name in stats:
            return int(np.asarray(stats[name].values).sum())
    return None


def assessment_case(
    *,
    seed: int = 1,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    target_accept: float | None = None,
    n_categories: int = 10,
    n_periods: int = 24,
    total_listings: float = 1e8,
    n_traders: int | None = 100_000,
    report: bool = True,
    gradient_calls: int = 0,
) -> dict[str, Any]:
    """Simulate, then build, compile, sample, assess and report; time every stage.

    Parameters
    ----------
    seed : int
        Seed of the simulated marketplace and of the fit.
    sampler, draws, tune, chains, target_accept
        :class:`risklab.models.SamplerConfig` (``target_accept`` None: its default).
    n_categories, n_periods, total_listings, n_traders
        The marketplace (:func:`benchmarks.common.marketplace`).
    report : bool
        Also time :func:`risklab.outputs.write_assessment` (the ``report`` stage).
    gradient_calls : int
        Time this many log-density-and-gradient calls (×5 blocks); 0 skips.

    Returns
    -------
    dict
        ``stages`` (seconds: build, compile, sampling, gate, assess, report), ``total_s``,
        headline ``min_ess_bulk``/``min_ess_tail``/``max_rhat`` and ``ess_per_s`` (min bulk ESS
        per sampling second), ``divergences``, ``gate`` (the model's own convergence summary),
        ``gradient_evaluations`` and ``headline`` (per-element mean, sd, ESS).
    """
    from risklab.assess import assess
    from risklab.models import PlatformRiskModel, SamplerConfig

    t0 = time.perf_counter()
    sim = marketplace(
        seed,
        n_categories=n_categories,
        n_periods=n_periods,
        total_listings=total_listings,
        n_traders=n_traders,
    )
    submission = sim.to_submission()
    simulate_s = time.perf_counter() - t0

    config = {"draws": draws, "tune": tune, "chains": chains, "sampler": sampler}
    if target_accept is not None:
        config["target_accept"] = target_accept
    cfg = SamplerConfig(**config)
    watch = Stopwatch()
    with watch("build"):
        model = PlatformRiskModel(submission, sampler_config=cfg)
        model.build()
    with instrumented_sampling() as timings, watch("fit"):
        model.fit(random_seed=seed)
    posterior_attrs = dict(model.idata["posterior"].attrs)
    sampling = float(posterior_attrs.get("sampling_time", np.nan))
    pm_sample = timings.get("pm_sample_s", np.nan)
    compile_s = timings.get("compile_s")
    if compile_s is None:  # PyMC's NUTS / JAX: compilation happens inside pm.sample
        compile_s = pm_sample - sampling if np.isfinite(sampling) else np.nan
    if not np.isfinite(sampling):
        sampling = pm_sample - compile_s if np.isfinite(compile_s) else pm_sample
    stages = {
        "build": watch.stages["build"],
        "compile": compile_s,
        "sampling": sampling,
        "gate": watch.stages["fit"] - pm_sample,
    }
    with watch("assess"):
        findings = assess(model)
    stages["assess"] = watch.stages["assess"]
    if report:
        from risklab.outputs import write_assessment

        with (
            tempfile.TemporaryDirectory(prefix="risklab-bench-report-") as out,
            watch("report"),
        ):
            write_assessment(model, findings, out, force=True)
        stages["report"] = watch.stages["report"]
    total = float(sum(v for v in stages.values() if np.isfinite(v)))

    listings = submission.data["listings"].transpose("category", "period").values
    draws_ds = headline_from_posterior(model.posterior, listings)
    diag = diagnostics(draws_ds)
    result: dict[str, Any] = {
        "case": {
            "seed": seed,
            "n_categories": n_categories,
            "n_periods": n_periods,
            "total_listings": total_listings,
            "n_traders": n_traders,
            "components": [c.name for c in model.components],
        },
        "sampler": json.loads(cfg.to_json()),
        "simulate_s": simulate_s,
        "stages": stages,
        "total_s": total,
        "divergences": model.convergence.divergences,
        "gate": model.convergence.summary(),
        "gate_passed": bool(model.convergence.passed),
        "gradient_evaluations": _gradient_evaluations(model.idata),
        "min_ess_bulk": diag["min_ess_bulk"],
        "min_ess_bulk_at": diag.get("min_ess_bulk_at"),
        "min_ess_tail": diag["min_ess_tail"],
        "max_rhat": diag["max_rhat"],
        "max_rhat_at": diag.get("max_rhat_at"),
        "ess_per_s": diag["min_ess_bulk"] / sampling if sampling > 0 else np.nan,
        "ess_per_s_total": diag["min_ess_bulk"] / total if total > 0 else np.nan,
        "headline": diag["summary"],
    }
    if result["gradient_evaluations"] and sampling > 0:
        # Only post-warm-up steps are recorded; warm-up spends about as many per draw.
        steps = result["gradient_evaluations"] * (draws + tune) / draws
        # Chains run in parallel on up to the usable cores (SamplerConfig.parallel_chains).
        result["seconds_per_gradient_in_sampling"] = sampling * cfg.parallel_chains() / steps
    if gradient_calls:
        if timings.get("compiled") is not None:
            result.update(nutpie_gradient_cost(timings["compiled"], number=gradient_calls))
        else:
            result.update(gradient_cost(model.model, number=gradient_calls))
    return result


def targets(result: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's flagship targets: ≤ 60 s end to end, no divergences, R-hat, bulk ESS."""
    if "error" in result:
        return {}
    return {
        "total<=60s": result["total_s"] <= 60.0,
        "divergences==0": result["divergences"] == 0,
        "rhat<=1.01": result["max_rhat"] <= 1.01,
        "ess_bulk>=400": result["min_ess_bulk"] >= 400.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One flagship assessment, stage by stage.")
    parser.add_argument("--quick", action="store_true", help="tiny marketplace and few draws")
    parser.add_argument("--sampler", default="nutpie")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = {**(QUICK if args.quick else FLAGSHIP)}
    settings.update(QUICK_SAMPLING if args.quick else FULL_SAMPLING)
    result = run_isolated(
        "flagship", "assessment_case", {**settings, "sampler": args.sampler, "seed": args.seed}
    )
    print(json.dumps({k: v for k, v in result.items() if k != "headline"}, indent=2))


if __name__ == "__main__":
    main()
