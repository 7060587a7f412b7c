# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Capacity and detection: what do review hours buy?
#
# Art. 34(2) asks a platform to assess how its content moderation systems influence the risk;
# Art. 35(1)(c) names the adaptation of those systems, and of the resources behind them, as a
# mitigation measure. The platform model links the two through a **capacity curve**: proactive
# detection rises with review intensity `r` (hours per 1,000 listings) and saturates,
#
# $$d_{\mathrm{pro}}[k, t] = A[k]\, s(\theta\, r[k, t]), \qquad s(x) = 1 - e^{-x},$$
#
# with the amplitude `A[k]` the detection unlimited review would reach. What no amount of
# review reaches is the **hidden share** `h[k] = 1 − min(1, A[k])`: listings that evade
# proactive detection (hidden links, affiliate programmes). See
# [the methodology](../docs/methodology.md) for the full model.
#
# This example fits the bundled synthetic demo, draws the fitted capacity curves, and uses
# `risklab.counterfactual` to ask what more review hours would buy: more detection, fewer
# undetected illegal listings, and a platform-reported share closer to the truth.
# Runs as a plain script (`python examples/capacity_and_detection.py`) in two to four minutes on
# two cores; figures go to `demo-output/examples/`.

# %%
import json
import warnings
from pathlib import Path

import arviz
import matplotlib
import numpy as np
import pandas as pd
import pymc

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import risklab
from risklab import PlatformRiskModel, SamplerConfig, load_submission
from risklab.cli import demo_paths
from risklab.counterfactual import Levers, PosteriorState, evaluate, saturation_intensity

SEED = 20250101
OUT = Path("demo-output") / "examples"
OUT.mkdir(parents=True, exist_ok=True)
pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)
print(
    f"risklab {risklab.__version__}, pymc {pymc.__version__}, arviz {arviz.__version__}, "
    f"numpy {np.__version__}, pandas {pd.__version__}, matplotlib {matplotlib.__version__}"
)

# %% [markdown]
# ## 1. Fit the demo marketplace
#
# Two short chains keep the example quick (a real assessment uses 4 × 1000).

# %%
submission_dir, evidence_dir = demo_paths()
submission = load_submission(submission_dir, evidence=evidence_dir)
truth = json.loads((submission_dir / "truth.json").read_text())
model = PlatformRiskModel(submission, sampler_config=SamplerConfig(draws=300, tune=300, chains=2))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model.fit(random_seed=SEED)
print(model.convergence.summary())

# %% [markdown]
# ## 2. Where each category sits on its capacity curve
#
# `PosteriorState` collects, per posterior draw, what the curve is made of: the amplitude `A`,
# the category's review efficiency `θ[k]`, and the submission's review intensity. The
# *saturation* `s(θ[k] r̄[k])` says how much of its reach the current review effort achieves; the
# hidden share is out of reach at any effort. The demo's truth is shown next to the posterior
# medians.

# %%
state = PosteriorState.from_fitted(model)
intensity = state.intensity.mean(axis=1)  # r̄[k], hours per 1000 listings
saturation = 1.0 - np.exp(-state.efficiency * intensity[None, :])  # (S, K)
detection_now = np.minimum(state.amplitude * saturation, 1.0)  # = d̄[k] by construction


def median(x: np.ndarray) -> np.ndarray:
    """Posterior median over draws (axis 0)."""
    return np.median(x, axis=0)


curve_table = pd.DataFrame(
    {
        "review h / 1000": intensity,
        "saturation": median(saturation),
        "detection now": median(detection_now),
        "hidden share": median(state.hidden_share),
        # The simulator caps detection at `detection_ceiling` besides the hidden share, so what
        # unlimited review misses in truth is 1 - ceiling (1 - h).
        "truth: missed at any effort": 1.0
        - truth["detection_ceiling"]
        * (1.0 - pd.Series(truth["hidden_share"]).reindex(state.categories).values),
    },
    index=state.categories,
).sort_values("review h / 1000")
print(curve_table.round(3).to_string())

# %% [markdown]
# The fitted curves with their 90% bands, one panel per category. The dot is the category's
# current intensity; the dashed line the reach `1 − h`.

# %%
grid = np.linspace(0.0, 4.0 * intensity.max(), 200)
fig, axes = plt.subplots(2, 5, figsize=(15, 6), sharex=True, sharey=True)
for k, (category, ax) in enumerate(zip(state.categories, axes.ravel(), strict=True)):
    curves = np.minimum(
        state.amplitude[:, k, None] * (1.0 - np.exp(-state.efficiency[:, k, None] * grid[None, :])),
        1.0,
    )
    low, mid, high = np.quantile(curves, [0.05, 0.5, 0.95], axis=0)
    ax.fill_between(grid, low, high, alpha=0.3)
    ax.plot(grid, mid)
    ax.plot(intensity[k], np.median(detection_now[:, k]), "o", color="black")
    ax.axhline(1.0 - np.median(state.hidden_share[:, k]), ls="--", color="grey")
    ax.set_title(category, fontsize=9)
for ax in axes[-1]:
    ax.set_xlabel("review hours / 1000 listings")
for ax in axes[:, 0]:
    ax.set_ylabel("proactive detection")
fig.tight_layout()
fig.savefig(OUT / "capacity_curves.png", dpi=110)

# %% [markdown]
# ## 3. What extra hours would buy
#
# `Levers` moves the model's levers and `evaluate` recomputes every outcome draw by draw, with
# no refit. Three interventions:
#
# * **double** the review hours in every category;
# * **+2,000 hours** over the year in each of the three thinnest categories;
# * **adequately resourced**: raise review wherever needed until proactive detection reaches
#   90% of its reach (`min_saturation=0.9`).
#
# For each: proactive detection, illegal listings no channel detects, the share the platform
# would then report (what it detects), and the underestimation of the truth by that report.

# %%
thin = curve_table.index[:3].tolist()
scenarios = {
    "as fitted": Levers(),
    "hours x 2": Levers(review_hours_factor=2.0),
    "+2000 h in thinnest 3": Levers(review_hours_add=dict.fromkeys(thin, 2000.0)),
    "adequately resourced": Levers(min_saturation=0.9),
}
results = {name: evaluate(state, levers) for name, levers in scenarios.items()}


def summary(ds, outcome: str) -> pd.Series:
    """Posterior median of one outcome per category."""
    return ds[outcome].median(("chain", "draw")).to_series()


for outcome in ("detection_rate", "undetected_listings", "reported_share", "underestimation"):
    frame = pd.DataFrame({name: summary(ds, outcome) for name, ds in results.items()})
    print(f"\n{outcome} (posterior median)")
    print(frame.loc[thin + [c for c in frame.index if c not in thin]].round(4).to_string())

# %% [markdown]
# Added review hours raise detection only up to the reach `1 − h`: where the hidden share is
# large, more hours buy little, and the platform's own report keeps understating the risk. The
# hours the "adequately resourced" scenario needs, against the hours the platform spent:

# %%
needed = summary(results["adequately resourced"], "review_hours")
spent = summary(results["as fitted"], "review_hours")
print(
    pd.DataFrame({"spent": spent, "needed": needed, "ratio": needed / spent}).round(1).to_string()
)
r90 = pd.Series(
    np.median(saturation_intensity(state.efficiency, 0.9), axis=0), index=state.categories
)
print("intensity for 90% of reach, hours per 1000 listings (posterior median):")
print(r90.round(2).to_string())

# %% [markdown]
# The undetected illegal listings removed per extra review hour, by category, for the
# "+2,000 hours" scenario: the marginal value of capacity, with its uncertainty.

# %%
gain = (
    results["as fitted"]["undetected_listings"]
    - results["+2000 h in thinnest 3"]["undetected_listings"]
)
per_hour = (gain / 2000.0).sel(category=thin)
low, mid, high = (per_hour.quantile(q, ("chain", "draw")).values for q in (0.05, 0.5, 0.95))
print(pd.DataFrame({"median": mid, "low": low, "high": high}, index=thin).round(3).to_string())
