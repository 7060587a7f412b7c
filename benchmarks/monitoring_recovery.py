"""Monitoring recovery rates: how often an effect is found when present and when absent.

Each replicate simulates a marketplace of 4 categories × 24 months under four commitments — a
hidden-share cut (link controls, logit level +1.0 ± 0.3 over categories) and a prevalence cut
(logit −0.7 ± 0.3 in medicines and toys) and more review hours (log +0.4) that are *present*, and a
prevalence commitment in cosmetics and electronics whose true effect is *zero* — with random audits
and planted listings every third month and proactive detections only, fits
:class:`risklab.monitoring.MonitoringModel` (nutpie, 4 chains × 1000 draws after 700 warm-up,
target acceptance 0.99, low-rank mass matrix) and records per commitment: whether the 90% interval
of the effect at the last month covers the truth, P(improved), and whether the fit passed the
convergence gate. Rates over replicates:

* found when present: P(improved) ≥ 0.95;
* found when absent (false alarm): P(improved) ≥ 0.95 or ≤ 0.05;
* coverage of the 90% interval of the effect.

    python -m benchmarks.monitoring_recovery [--replicates N] [--first-seed S]

Writes ``benchmarks/results/monitoring_recovery_<UTC time>.json``. One replicate takes about
two minutes on 2 cores (half of it compilation).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

CATEGORIES = ["medicines", "toys", "cosmetics", "electronics"]


def specs():
    from risklab.data.synthetic_commitments import SimulatedCommitment

    return [
        SimulatedCommitment(
            "link controls", "hidden_share", "2025-01", level_change=1.0, level_change_sd=0.3
        ),
        SimulatedCommitment(
            "toy checks", "prevalence", "2024-09", level_change=-0.7,
            categories=["medicines", "toys"], level_change_sd=0.3,
        ),
        SimulatedCommitment(
            "other checks", "prevalence", "2024-09", level_change=0.0,
            categories=["cosmetics", "electronics"],
        ),
        SimulatedCommitment("moderators", "review_capacity", "2024-07", level_change=0.4),
    ]  # fmt: skip


def replicate(seed: int) -> dict:
    """Simulate, fit and score one marketplace."""
    import warnings

    from risklab.data.synthetic_commitments import simulate_monitored_marketplace
    from risklab.models import SamplerConfig
    from risklab.monitoring import MonitoringModel, monitor
    from risklab.monitoring.commitments import commitments_from_json

    sim = simulate_monitored_marketplace(
        seed,
        specs(),
        categories=CATEGORIES,
        n_periods=24,
        total_listings=2e7,
        audited_categories=CATEGORIES,
        planted_categories=CATEGORIES,
        audit_size=600,
        planted_size=150,
        purposive={},
        efficiency_log_sd=0.0,
        detection_ceiling=1.0,
        channels=("proactive",),  # as tests/test_monitoring_recovery.py (see there why)
    )
    commitments = commitments_from_json(sim.commitments_toml["commitment"])
    model = MonitoringModel(
        sim.to_submission(),
        commitments,
        sampler_config=SamplerConfig(draws=1000, tune=700, chains=4, target_accept=0.99),
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(random_seed=seed)
    seconds = time.perf_counter() - start
    table = monitor(model, prob=0.9).table.set_index("commitment")
    out = {"seed": seed, "seconds": seconds, "converged": bool(model.convergence.passed)}
    out["problems"] = list(model.convergence.problems)
    out["commitments"] = {}
    for name, truth in sim.truth["monitoring"].items():
        row = table.loc[name]
        effect = float(truth["effect"][-1])
        out["commitments"][name] = {
            "present": bool(truth["level_change"] != 0 or truth["slope_change"] != 0),
            "true_effect": effect,
            "effect_median": float(row["effect_median"]),
            "covered": bool(row["effect_low"] <= effect <= row["effect_high"]),
            "p_improved": float(row["p_improved"]),
        }
    return out


def rates(replicates: list[dict]) -> dict:
    """Found-when-present, false-alarm and coverage rates over replicates."""
    present = [c for r in replicates for c in r["commitments"].values() if c["present"]]
    absent = [c for r in replicates for c in r["commitments"].values() if not c["present"]]
    every = present + absent
    return {
        "replicates": len(replicates),
        "converged": float(np.mean([r["converged"] for r in replicates])),
        "found_when_present": float(np.mean([c["p_improved"] >= 0.95 for c in present])),
        "n_present": len(present),
        "false_alarm_when_absent": float(
            np.mean([c["p_improved"] >= 0.95 or c["p_improved"] <= 0.05 for c in absent])
        ),
        "n_absent": len(absent),
        "coverage_90": float(np.mean([c["covered"] for c in every])),
        "n_checks": len(every),
        "median_seconds": float(np.median([r["seconds"] for r in replicates])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    results = []
    for seed in range(args.first_seed, args.first_seed + args.replicates):
        results.append(replicate(seed))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "commitments"}), flush=True)
    summary = rates(results)
    print(json.dumps(summary, indent=2))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = Path(args.out) / f"monitoring_recovery_{stamp}.json"
    path.write_text(json.dumps({"summary": summary, "replicates": results}, indent=2) + "\n")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
