"""Scenario throughput: many interventions × all posterior draws, in scenario-draws per second.

A scenario-draw is one set of levers evaluated on one posterior draw (every category and period).
The posterior state has the flagship's shape (categories, periods, channels, draws) and values
near a simulated marketplace's truth: throughput depends on the shapes, not on the values, so no
fit is needed (:func:`synthetic_state`). Timed:

* :func:`risklab.counterfactual.evaluate_arrays` over every scenario, one at a time;
* :func:`risklab.counterfactual.evaluate_many` (all scenarios in one compiled pass, in chunks of
  100 scenarios so that the outputs stay at ~250 MB), when that function exists. The whole set
  is timed ``passes`` times (3 in the full case) and the median is reported with every pass:
  on a shared 2-core machine, identical passes differ by up to 30%;
* :func:`risklab.scenarios.stress_test` with ``keep_draws=False`` (plus its per-category and
  platform tables), when that module is importable.

    python -m benchmarks.scenarios_throughput [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from benchmarks.common import marketplace, run_isolated

FULL = {"n_scenarios": 1000, "n_draws": 4000, "n_categories": 10, "n_periods": 24, "passes": 3}
QUICK = {"n_scenarios": 20, "n_draws": 200, "n_categories": 4, "n_periods": 6, "passes": 1}


def synthetic_state(
    n_draws: int, *, n_categories: int = 10, n_periods: int = 24, seed: int = 1, noise: float = 0.05
):
    """A :class:`~risklab.counterfactual.PosteriorState` of ``n_draws`` draws near the truth.

    Built from :func:`benchmarks.common.marketplace` (with repeat offenders, so the enforcement
    lever is available): the truth with small multiplicative or logit-scale noise per draw.
    """
    from scipy.special import expit, logit

    from risklab.counterfactual import PosteriorState

    sim = marketplace(
        seed, n_categories=n_categories, n_periods=n_periods, total_listings=1e8, n_traders=1000
    )
    truth = sim.truth
    data = sim.to_submission().data
    cats = [str(c) for c in data["category"].values]
    channels = [str(c) for c in data["channel"].values]
    secondary = [c for c in channels if c != "proactive"]
    rng = np.random.default_rng(seed)
    s = int(n_draws)

    def jitter(shape) -> np.ndarray:
        return np.exp(rng.normal(0.0, noise, shape))

    d_pro = np.array([truth["detection_rate"][c] for c in cats])
    ceiling = truth["detection_ceiling"]
    amplitude = np.array([(1 - truth["hidden_share"][c]) * ceiling for c in cats])
    pi = np.array([truth["prevalence"][c] for c in cats])
    other = np.stack(
        [-np.expm1(-truth["channel_ratio"][ch] * d_pro.mean(axis=1)) for ch in secondary], -1
    )  # (K, C-1)
    other = np.broadcast_to(other[:, None, :], (len(cats), n_periods, len(secondary)))
    after = truth["listings_after_threshold_share"]
    return PosteriorState(
        categories=cats,
        periods=[str(p) for p in data["period"].values],
        channels=["proactive", *secondary],
        listings=data["listings"].transpose("category", "period").values.astype(float),
        review_hours=data["review_hours"].transpose("category", "period").values.astype(float),
        claimed_prevalence=data["claimed_prevalence"].values.astype(float),
        thresholds=np.asarray(sim.toml["scale"]["thresholds"], dtype=float),
        labels=list(sim.toml["scale"]["labels"]),
        amplitude=amplitude[None, :] * jitter((s, len(cats))),
        efficiency=float(np.mean(list(truth["efficiency"].values()))) * jitter(s),
        logit_prevalence=logit(pi)[None] + rng.normal(0.0, noise, (s, *pi.shape)),
        other_rates=np.minimum(other[None] * jitter((s, 1, 1, len(secondary))), 0.5),
        false_positive_share=np.zeros((s, len(cats))),
        enforcement=expit(logit(truth["enforcement"]) + rng.normal(0.0, noise, s)),
        after_threshold_share=np.clip(after * jitter(s), 0.0, 0.99),
        claimed_enforcement=float(truth["claimed_enforcement"]),
        sample_shape=(1, s),
    )


def random_levers(n: int, categories: list[str], *, seed: int = 2) -> list:
    """``n`` varied interventions: every lever moved in some, per-category values in others."""
    from risklab.counterfactual import Levers

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        per_category = i % 2 == 1
        hours = (
            {c: float(rng.uniform(0.5, 3.0)) for c in categories}
            if per_category
            else float(rng.uniform(0.5, 3.0))
        )
        out.append(
            Levers(
                review_hours_factor=hours,
                review_hours_add=float(rng.uniform(0.0, 1000.0)),
                listings_factor=float(rng.uniform(0.8, 1.5)),
                hidden_share_factor=float(rng.uniform(0.5, 1.5)),
                efficiency_factor=float(rng.uniform(0.7, 1.2)),
                efficiency_decay=float(rng.uniform(0.0, 0.05)),
                enforcement=float(rng.uniform(0.2, 1.0)),
                prevalence_odds=float(rng.uniform(0.8, 1.25)),
                prevalence_trend=float(rng.uniform(-0.2, 0.2)),
                min_saturation=float(rng.uniform(0.5, 0.95)) if i % 4 == 0 else None,
            )
        )
    return out


def throughput_case(
    *,
    n_scenarios: int = 1000,
    n_draws: int = 4000,
    n_categories: int = 10,
    n_periods: int = 24,
    seed: int = 1,
    stress: bool = True,
    chunk: int = 100,
    passes: int = 1,
) -> dict[str, Any]:
    """Scenario-draws per second of ``evaluate_arrays`` one scenario at a time, of
    ``evaluate_many`` (batched, in chunks of ``chunk`` scenarios to bound memory; the median of
    ``passes`` timed passes) when :mod:`risklab.counterfactual` has it, and of ``stress_test``."""
    from risklab.counterfactual import evaluate_arrays

    state = synthetic_state(n_draws, n_categories=n_categories, n_periods=n_periods, seed=seed)
    levers = random_levers(n_scenarios, state.categories, seed=seed + 1)
    evaluate_arrays(state, levers[0])  # warm caches
    start = time.perf_counter()
    for lever in levers:
        evaluate_arrays(state, lever)
    elapsed = time.perf_counter() - start
    result: dict[str, Any] = {
        "case": {
            "n_scenarios": n_scenarios,
            "n_draws": n_draws,
            "n_categories": n_categories,
            "n_periods": n_periods,
            "n_channels": len(state.channels),
        },
        "evaluate_s": elapsed,
        "ms_per_scenario": 1000.0 * elapsed / n_scenarios,
        "scenario_draws_per_s": n_scenarios * n_draws / elapsed,
    }
    try:
        from risklab.counterfactual import evaluate_many
    except ImportError:
        evaluate_many = None
    if evaluate_many is not None:
        start = time.perf_counter()
        evaluate_many(state, levers[:2])  # compiles (or loads) the batch kernel
        result["evaluate_many_first_call_s"] = time.perf_counter() - start
        walls = []
        for _ in range(max(1, passes)):
            start = time.perf_counter()
            for first in range(0, n_scenarios, chunk):
                evaluate_many(state, levers[first : first + chunk])
            walls.append(time.perf_counter() - start)
        wall = float(np.median(walls))
        result["evaluate_many_s"] = wall
        result["evaluate_many_scenario_draws_per_s"] = n_scenarios * n_draws / wall
        result["evaluate_many_passes_scenario_draws_per_s"] = [
            n_scenarios * n_draws / w for w in walls
        ]
    if stress:
        try:
            from risklab.scenarios import Scenario, stress_test
        except ImportError as exc:  # pragma: no cover - depends on the checkout
            result["stress_test"] = f"not available: {exc}"
        else:
            scenarios = [Scenario(name=f"s{i:04d}", levers=lv) for i, lv in enumerate(levers)]
            start = time.perf_counter()
            out = stress_test(state, scenarios, keep_draws=False)
            wall = time.perf_counter() - start
            result["stress_test_s"] = wall
            result["stress_test_scenario_draws_per_s"] = len(out.scenarios) * n_draws / wall
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scenario-draws per second.")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run_isolated("scenarios_throughput", "throughput_case", QUICK if args.quick else FULL)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
