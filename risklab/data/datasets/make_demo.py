"""Regenerate the bundled demo submission (run from the repository root).

    python -m risklab.data.datasets.make_demo

The demo marketplace has repeat offenders: 20,000 offending traders, a three-strike policy
enforced with probability 0.4 against a claimed 0.95 (``traders.csv``, ``[policy]``; the truth
is in ``truth.json``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from risklab.data.synthetic import simulate_marketplace

#: Arguments that define the demo marketplace; changing them changes the bundled files.
DEMO_ARGS = dict(
    seed=2025,
    n_periods=12,
    start="2024-01",
    total_listings=6e7,
    platform_name="Example Marketplace (synthetic)",
    audited_categories=["medicines", "dietary_supplements", "adult_products"],
    audit_periods=3,
    audit_size=400,
    purposive={"toys": 60, "cosmetics": 60},
    planted_categories=["toys", "cosmetics", "electronics"],
    planted_periods=2,
    planted_size=100,
    traders=True,
    n_offending_traders=20_000,
    offender_shape=0.6,
    offender_mean_listings=4.0,
    enforcement=0.4,
    strike_threshold=3,
    claimed_enforcement=0.95,
)


def main() -> None:
    root = Path(__file__).parent / "demo"
    for sub in ("submission", "evidence"):
        shutil.rmtree(root / sub, ignore_errors=True)
    sim = simulate_marketplace(**DEMO_ARGS)
    sim.write(root / "submission", evidence_directory=root / "evidence")
    print(f"wrote {root}")


if __name__ == "__main__":
    main()
