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
its own process.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import run_isolated

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
