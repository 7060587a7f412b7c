# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Stress scenarios: what if review staff were cut, evasion grew, or the policy were enforced?
#
# A regulator has a fitted model of a marketplace and wants to know how the risk would move under
# plausible changes: the platform halves review hours in one category, sellers adapt to the
# detection tools, the repeat-offender policy is applied as the platform claims. A *scenario*
# names such changes on the model's levers; `risklab.stress_test` evaluates every scenario on
# every posterior draw (no refit) and reports, per category and platform-wide, the prevalence,
# the share the platform would report as detected, the illegal listings no channel detects and
# the band probabilities on the platform's own scale.
#
# We simulate a small marketplace whose truth is known, fit the platform model with short chains,
# read scenarios from a TOML file, and check one scenario against a simulated world. The method
# is in `docs/scenarios.md`. Runs as a plain script (`python examples/stress_tests.py`) in a
# couple of minutes on two cores, mostly compilation; every number is reproducible from the seed.

# %%
import warnings
from pathlib import Path

import arviz
import matplotlib
import numpy as np
import pandas as pd
import pymc
import scipy

import risklab
from risklab import PlatformRiskModel, SamplerConfig, simulate_marketplace
from risklab.plotting.scenarios import plot_scenario_bands, plot_undetected_by_scenario
from risklab.scenarios import Scenario, load_scenarios, stress_test

matplotlib.use("Agg")
SEED = 20251202
OUT = Path("demo-output") / "examples"
OUT.mkdir(parents=True, exist_ok=True)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 12)
print(
    f"risklab {risklab.__version__}, pymc {pymc.__version__}, arviz {arviz.__version__}, "
    f"numpy {np.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}"
)

# %% [markdown]
# ## 1. A small marketplace with known truth, fitted
#
# Four categories over six months, random audits in medicines, planted listings in toys and
# cosmetics, and a trader table with a three-strike policy (so the enforcement lever is
# available). Short chains keep the example quick; a real assessment uses 4 × 1000 draws.

# %%
WORLD = dict(
    categories=("medicines", "toys", "cosmetics", "jewellery"),
    n_periods=6,
    total_listings=2e6,
    audited_categories=["medicines"],
    purposive={"toys": 60},
    planted_categories=["toys", "cosmetics"],
    traders=True,
)
sim = simulate_marketplace(SEED, **WORLD)
model = PlatformRiskModel(
    sim.to_submission(), sampler_config=SamplerConfig(draws=300, tune=300, chains=2)
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model.fit(random_seed=SEED)
print(model.convergence.summary())

# %% [markdown]
# ## 2. Scenarios from a TOML file
#
# One `[[scenario]]` table per scenario: a `name`, an optional `description`, and levers. A
# per-category lever takes a number (every category) or a table `category = number`. Unknown
# levers or categories, out-of-range values and duplicate names are errors that name the file,
# the scenario and the key, raised before anything is evaluated.

# %%
SCENARIOS = """
[[scenario]]
name = "halve review hours in medicines"
review_hours_factor = { medicines = 0.5 }

[[scenario]]
name = "double review hours (not medicines, toys)"
review_hours_factor = { cosmetics = 2, jewellery = 2 }

[[scenario]]
name = "adversarial adaptation"
description = "detection efficiency decays 5% a month and 10 points more listings hide"
efficiency_decay = 0.05
hidden_share_add = 0.1

[[scenario]]
name = "policy enforced as claimed"
enforcement = 0.95

[[scenario]]
name = "growth without more staff"
listings_factor = 1.5
"""
path = OUT / "stress_scenarios.toml"
path.write_text(SCENARIOS, encoding="utf-8")
scenarios = load_scenarios(path, categories=model.submission.categories, enforcement_available=True)
try:
    load_scenarios(path, categories=["medicines"])  # a fit without the other categories
except ValueError as exc:
    print("validation:", exc)

# %% [markdown]
# ## 3. Evaluate every scenario on every draw
#
# A baseline (no intervention) is added first; every change is measured draw by draw against it.

# %%
result = stress_test(model, scenarios)
print(
    f"{len(result.scenarios)} scenarios × {result.n_draws} draws in {result.elapsed:.2f} s "
    f"({result.throughput:,.0f} scenario-draws/s)"
)
columns = [
    "scenario",
    "listings",
    "undetected_listings_median",
    "undetected_change_median",
    "undetected_change_low",
    "undetected_change_high",
    "p_undetected_below_baseline",
]
print(result.totals[columns].round(2).to_string(index=False))

# %% [markdown]
# Per category: the median undetected illegal listings and the probability that prevalence lies
# in the platform's top band, by scenario.

# %%
table = result.table
order = [s.name for s in result.scenarios]
top = f"p_band:{result.labels[-1]}"
print(
    table.pivot(index="scenario", columns="category", values="undetected_listings_median")
    .loc[order]
    .round(0)
)
print(table.pivot(index="scenario", columns="category", values=top).loc[order].round(3))

# %% [markdown]
# ## 4. Check one scenario against a simulated world
#
# The simulator draws every random quantity in the same order whatever the review intensity, so
# the same seed with `review_intensity=2` is this marketplace with twice the review staff,
# except in medicines and toys, whose (thin) capacity is fixed. Its true proactive detection
# rates are what the scenario "double review hours (not medicines, toys)" should recover; the
# posterior interval should cover them.

# %%
more = simulate_marketplace(SEED, review_intensity=2.0, **WORLD)
listings = more.tables["listings"].pivot(index="category", columns="period", values="listings")
rows = table[table["scenario"] == "double review hours (not medicines, toys)"].set_index("category")
check = pd.DataFrame(
    {
        "true rate (world with 2x staff)": [
            float(np.average(more.truth["detection_rate"][c], weights=listings.loc[c]))
            for c in rows.index
        ],
        "median": rows["detection_rate_median"],
        "low": rows["detection_rate_low"],
        "high": rows["detection_rate_high"],
    },
    index=rows.index,
)
print(check.round(3).to_string())

# %% [markdown]
# ## 5. Figures and files
#
# `to_directory` writes `scenarios.csv`, `scenarios_platform.csv`, `scenarios.nc` (the draws) and
# both figures, atomically; `risklab stress posterior.nc --scenarios FILE` does the same from
# the command line.

# %%
written = result.to_directory(OUT / "stress", force=True)
print("wrote", ", ".join(p.name for p in written))
ax = plot_undetected_by_scenario(result)
ax.figure.savefig(OUT / "stress_undetected.png", dpi=110)
fig = plot_scenario_bands(result, category="medicines")
fig.savefig(OUT / "stress_bands_medicines.png", dpi=110)

# %% [markdown]
# The Python API takes `Scenario` objects as well, e.g. a sweep over review hours:

# %%
sweep = [
    Scenario.from_mapping(f"hours x{f:g}", review_hours_factor=float(f))
    for f in (0.25, 0.5, 1.5, 2, 4)
]
hours = stress_test(model, sweep, keep_draws=False).totals
print(
    hours[["scenario", "undetected_listings_median", "reported_share_median"]].to_string(
        index=False
    )
)
