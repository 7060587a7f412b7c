"""Scaling: cost against listings, traders and the size of the category × period grid.

Counts enter the likelihood as sufficient statistics (binomial counts per cell, the trader table
per strike count), so the cost of one log-density-and-gradient evaluation must not grow with
the number of listings (10^4 → 10^10) or traders (10^3 → 10^7); the grid (10 × 12 → 50 × 60
categories × periods) does change the graph, and the suite reports how cost grows with it.
Three costs per case, because they answer different questions:

* ``gradient_s`` — one gradient (nutpie's compiled numba function, median of blocks): the
  deterministic cost, the one sufficient statistics keep flat;
* ``sampling`` — NUTS wall time: gradient cost × steps per draw, so it also moves with the
  posterior's geometry (data-poor marketplaces have funnels; data-rich ones tight posteriors);
* ``ess_per_s`` — minimum headline bulk ESS per sampling second.

Each case is a full :func:`benchmarks.flagship.assessment_case` (without the report stage) in
its own process. Cases run minutes apart, and the shared machine's speed drifts by more than the
1.2 of the target over minutes, so the gradient ratio of the first and last case of the
listings and traders axes is also measured *paired* (:func:`paired_gradient_case`): both
models compiled in one process and timed in alternating blocks, the ratio taken per round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import block_times, run_isolated

LISTINGS_FULL = (1e4, 1e7, 1e10)
TRADERS_FULL = (1_000, 100_000, 10_000_000)
GRID_FULL = ((10, 12), (20, 24), (50, 60))
LISTINGS_QUICK = (1e4, 1e10)
TRADERS_QUICK = (1_000, 10_000_000)
GRID_QUICK = ((3, 4), (6, 8))

#: Base marketplace of the listings and traders axes (the flagship's grid).
BASE_FULL = {"n_categories": 10, "n_periods": 24, "total_listings": 1e8, "n_traders": 100_000}
BASE_QUICK = {"n_categories": 4, "n_periods": 6, "total_listings": 1e6, "n_traders": 1_000}


def plan(*, quick: bool) -> dict[str, list[dict[str, Any]]]:
    """Marketplace settings per axis (``listings``, ``traders``, ``grid``)."""
    base = BASE_QUICK if quick else BASE_FULL
    listings = LISTINGS_QUICK if quick else LISTINGS_FULL
    traders = TRADERS_QUICK if quick else TRADERS_FULL
    grid = GRID_QUICK if quick else GRID_FULL
    return {
        "listings": [{**base, "total_listings": float(n)} for n in listings],
        "traders": [{**base, "n_traders": int(n)} for n in traders],
        "grid": [{**base, "n_categories": k, "n_periods": t} for k, t in grid],
    }


def ratios(cases: list[dict[str, Any]]) -> dict[str, float | None]:
    """Last case over first: gradient cost, sampling time, seconds per effective draw."""
    ok = [c for c in cases if "error" not in c]
    if len(ok) < 2:
        return {}
    first, last = ok[0], ok[-1]

    def ratio(key: str) -> float | None:
        a, b = first.get(key), last.get(key)
        if a is None or b is None or not a:
            return None
        return b / a

    first_sampling = first["stages"].get("sampling")
    last_sampling = last["stages"].get("sampling")
    out = {
        "gradient": ratio("gradient_s"),
        "sampling": last_sampling / first_sampling if first_sampling else None,
        "total": ratio("total_s"),
    }
    if first.get("ess_per_s") and last.get("ess_per_s"):
        out["seconds_per_ess"] = first["ess_per_s"] / last["ess_per_s"]
    return out


def run_axis(
    cases: list[dict[str, Any]],
    sampling: dict[str, Any],
    *,
    seed: int,
    timeout: float | None,
    gradient_calls: int,
) -> list[dict[str, Any]]:
    """Run the cases of one axis, each in its own process."""
    results = []
    for case in cases:
        kwargs = {
            **case,
            **sampling,
            "seed": seed,
            "report": False,
            "gradient_calls": gradient_calls,
        }
        result = run_isolated("flagship", "assessment_case", kwargs, timeout=timeout)
        result.setdefault("case", case)
        results.append(result)
    return results


def paired_ratio(
    first: Callable[[], Any], last: Callable[[], Any], *, number: int, rounds: int
) -> dict[str, Any]:
    """Cost of ``last`` over ``first``, timed in alternating blocks of ``number`` calls.

    Each round times a block of each (in alternating order, so neither always runs second) and
    takes their ratio; a drift of the machine's speed over the rounds cancels in each ratio.
    Returns the median ratio, every round's ratio and the median seconds per call of each.
    """
    firsts, lasts = [], []
    for i in range(rounds):
        order = ((firsts, first), (lasts, last)) if i % 2 == 0 else ((lasts, last), (firsts, first))
        for times, fn in order:
            times.extend(block_times(fn, number=number, repeat=1))
    ratios = [b / a for a, b in zip(firsts, lasts, strict=True)]
    return {
        "ratio": float(np.median(ratios)),
        "round_ratios": ratios,
        "first_s": float(np.median(firsts)),
        "last_s": float(np.median(lasts)),
        "number": number,
        "rounds": rounds,
    }


def paired_gradient_case(
    first: dict[str, Any],
    last: dict[str, Any],
    *,
    seed: int = 1,
    number: int = 200,
    rounds: int = 15,
) -> dict[str, Any]:
    """Gradient cost of marketplace ``last`` over ``first``, measured paired in one process.

    Both marketplaces (:func:`benchmarks.common.marketplace` settings) are built and compiled as
    a fit compiles them (nutpie's numba functions, under risklab's floating-point flags), and
    one log-density-and-gradient evaluation at the origin is timed with :func:`paired_ratio`.
    """
    from benchmarks.common import marketplace
    from risklab.models import PlatformRiskModel
    from risklab.models.numerics import strict_floating_point
    from risklab.models.nutpie_cache import compile_nutpie

    calls = []
    for case in (first, last):
        model = PlatformRiskModel(marketplace(seed, **case).to_submission()).build()
        with strict_floating_point():
            compiled = compile_nutpie(model)
        point = np.zeros(int(compiled.n_dim))
        compiled.logp_func(point)
        calls.append(lambda fn=compiled.logp_func, x=point: fn(x))
    return {"first": first, "last": last, **paired_ratio(*calls, number=number, rounds=rounds)}
