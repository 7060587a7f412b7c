"""Time a full assessment at two listing volumes: cost must not grow with listings.

Simulated marketplaces of 10 categories × 24 months × 4 channels, at 10^4 and 10^8 total
listings (counts enter as sufficient statistics). Prints build, compile+sample, assess and total
wall times, the minimum bulk ESS per second over the headline quantities, and the convergence
summary, and writes a JSON record under ``benchmarks/results/``.

    python benchmarks/run.py [--draws 1000] [--tune 1000] [--chains 4] [--listings 1e4 1e8]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import arviz as az

from risklab.assess import assess
from risklab.data.synthetic import simulate_marketplace
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.models.provenance import package_versions

HEADLINE = ["prevalence", "detection_rate"]


def run_case(total_listings: float, cfg: SamplerConfig, seed: int) -> dict:
    sim = simulate_marketplace(seed=seed, n_periods=24, total_listings=total_listings)
    submission = sim.to_submission()
    t0 = time.perf_counter()
    model = PlatformRiskModel(submission, sampler_config=cfg)
    model.build()
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(random_seed=seed)
    t2 = time.perf_counter()
    assess(model)
    t3 = time.perf_counter()
    sampling = float(model.idata["posterior"].attrs.get("sampling_time", float("nan")))
    ess = az.ess(model.idata, var_names=HEADLINE, method="bulk")
    min_ess = min(float(ess[v].min()) for v in HEADLINE)
    return {
        "total_listings": total_listings,
        "build_s": t1 - t0,
        "fit_s": t2 - t1,
        "sampling_s": sampling,
        "compile_s": (t2 - t1) - sampling,
        "assess_s": t3 - t2,
        "total_s": t3 - t0,
        "min_bulk_ess_headline": min_ess,
        "ess_per_s_sampling": min_ess / sampling,
        "ess_per_s_total": min_ess / (t3 - t0),
        "convergence": model.convergence.summary(),
        "divergences": model.convergence.divergences,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--listings", type=float, nargs="+", default=[1e4, 1e8])
    args = parser.parse_args()
    cfg = SamplerConfig(draws=args.draws, tune=args.tune, chains=args.chains)
    cases = [run_case(n, cfg, args.seed) for n in args.listings]
    header = (
        f"{'listings':>10} {'build':>7} {'compile':>8} {'sample':>7} {'assess':>7} {'total':>7}"
    )
    print(header + f" {'minESS':>7} {'ESS/s':>7}  convergence")
    for c in cases:
        print(
            f"{c['total_listings']:>10.0e} {c['build_s']:>7.1f} {c['compile_s']:>8.1f} "
            f"{c['sampling_s']:>7.1f} {c['assess_s']:>7.1f} {c['total_s']:>7.1f} "
            f"{c['min_bulk_ess_headline']:>7.0f} {c['ess_per_s_sampling']:>7.1f}  "
            f"{c['convergence']}"
        )
    if len(cases) >= 2:
        ratio = cases[-1]["sampling_s"] / cases[0]["sampling_s"]
        print(
            f"sampling-time ratio {cases[-1]['total_listings']:.0e} / "
            f"{cases[0]['total_listings']:.0e}: {ratio:.2f}"
        )
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    record = {
        "benchmark": "assessment_scaling",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "versions": package_versions(),
        "sampler": json.loads(cfg.to_json()),
        "cases": cases,
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"assessment_{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
