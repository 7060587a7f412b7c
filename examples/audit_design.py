# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Audit design: how many random audit checks would settle the question?
#
# A marketplace claims low prevalence of illegal listings in each product category. For some
# categories the evidence already shows the claim is too low; for others it is open. Before
# commissioning random audits, a regulator asks: *how many listings must we check in each
# category for the audit to show, with posterior probability ≥ 95%, that the claim understates
# prevalence — and how likely is an audit of a given size to do so?*
#
# `risklab.design.plan_audit` answers with a pre-posterior analysis of the fitted model
# (`docs/audit-design.md`). We simulate a marketplace whose truth is known, fit it, plan the
# audits, and then run many plans at once with `risklab.sweep`, serially and on a local Dask
# cluster, to show that the results do not depend on where they run. Runs as a plain script
# (`python examples/audit_design.py`) in a few minutes on two cores, mostly compilation; every
# number is reproducible from the seed below.

# %%
import warnings
from functools import partial
from pathlib import Path

import arviz
import matplotlib
import numpy as np
import pandas as pd
import pymc
import scipy

import risklab
from risklab import PlatformRiskModel, SamplerConfig, assess, simulate_marketplace
from risklab.design import plan_audit, updated_p_underestimated
from risklab.plotting.design import plot_audit_power
from risklab.sweep import SweepTask, sweep

matplotlib.use("Agg")
SEED = 20251128
OUT = Path("demo-output/examples")
OUT.mkdir(parents=True, exist_ok=True)
pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)
print(
    f"risklab {risklab.__version__}, pymc {pymc.__version__}, arviz {arviz.__version__}, "
    f"numpy {np.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}"
)

# %% [markdown]
# ## 1. A marketplace with known truth, and claims that are not all wrong
#
# Four categories over six months. The regulator has random audits in medicines and planted
# test listings in toys and electronics. The simulated platform claims its detected share (far
# below the truth); we make its claims for toys and cosmetics more careful — 85% of the true
# prevalence — so that whether they understate the risk is a real question.

# %%
sim = simulate_marketplace(
    SEED,
    categories=("medicines", "toys", "cosmetics", "electronics"),
    n_periods=6,
    total_listings=4e6,
    audited_categories=["medicines"],
    purposive={},
    planted_categories=["toys", "electronics"],
)
thresholds = np.asarray(sim.toml["scale"]["thresholds"])
for claim in sim.toml["claims"]:
    if claim["category"] in ("toys", "cosmetics"):
        claim["prevalence"] = round(0.85 * sim.truth["prevalence_category"][claim["category"]], 8)
        band = int(np.searchsorted(thresholds, claim["prevalence"], side="right"))
        claim["band"] = sim.toml["scale"]["labels"][band]
truth = pd.DataFrame(
    {
        "true_prevalence": sim.truth["prevalence_category"],
        "claimed": {c["category"]: c["prevalence"] for c in sim.toml["claims"]},
    }
)
truth["true_U"] = truth["true_prevalence"] / truth["claimed"]
print(truth.round(5))

# %% [markdown]
# ## 2. Fit and assess
#
# Short chains (2 × 500 after 500 warm-up) to keep the example quick; a real assessment uses
# 4 × 1000, as `risklab assess` does.

# %%
submission = sim.to_submission()
model = PlatformRiskModel(submission, sampler_config=SamplerConfig(draws=500, tune=500, chains=2))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model.fit(random_seed=SEED)
print(model.convergence.summary())
findings = assess(model)
print(findings.table[["category", "prevalence_median", "claimed_prevalence", "p_underestimated"]])

# %% [markdown]
# ## 3. Plan the audits
#
# For each category and each proposed number of checks, the power is the probability (under
# the current posterior) that the audit would leave `P(U > 1) ≥ 0.95`. Two computations: the
# current draws reweighted by the audit's likelihood (exact up to Monte Carlo error) and a
# conjugate Beta approximation. The recommendation is the smallest size with power ≥ 0.8.
# The audit samples listings from the whole submission period by default.

# %%
plan = plan_audit(model, sample_sizes=[50, 100, 200, 400, 800, 1600, 3200])
columns = ["category", "sample_size", "power_reweighted", "power_conjugate"]
print(plan.table[[*columns, "p_underestimated_now", "power_upper_bound"]].round(3))
print("recommended:", plan.recommended)
for warning in plan.warnings:
    print("WARNING:", warning)
ax = plot_audit_power(plan)
ax.figure.savefig(OUT / "audit_power.png", dpi=110)

# %% [markdown]
# Categories whose claim is already contradicted by the evidence (`P(U > 1)` near one) need no
# audit to establish it. Where `P(U > 1)` is modest, power cannot exceed
# `P(U > 1) / 0.95` whatever the size (the table's `power_upper_bound`): an audit cannot be
# expected to show an understatement that the evidence says is unlikely.
#
# An audit of the last month only is less informative about the whole-period prevalence than
# one spread over the period:

# %%
last = plan_audit(model, categories=["toys", "cosmetics"], sample_sizes=[400, 1600], periods="last")
whole = plan.table[plan.table["category"].isin(["toys", "cosmetics"])]
whole = whole[whole["sample_size"].isin([400, 1600])]
print(
    pd.DataFrame(
        {
            "category": last.table["category"].values,
            "sample_size": last.table["sample_size"].values,
            "power_whole_period": whole["power_reweighted"].values,
            "power_last_month": last.table["power_reweighted"].values,
        }
    ).round(3)
)

# %% [markdown]
# ## 4. One audit, done
#
# Say the regulator checks 800 toys listings drawn from the whole period. In this simulation we
# know the truth, so we can draw the outcome, and update `P(U > 1)` at once by reweighting the
# posterior draws (a refit with the audit added to `audits.csv` gives the same up to Monte Carlo
# error; `tests/test_design.py` checks that).

# %%
m = 800
listings = submission.data["listings"].sel(category="toys").astype(float)
draws = (model.posterior["prevalence"].sel(category="toys") * listings / listings.sum()).sum(
    "period"
)
draws = draws.values.ravel()
claim = float(submission.data["claimed_prevalence"].sel(category="toys"))
z = int(np.random.default_rng(SEED).binomial(m, sim.truth["prevalence_category"]["toys"]))
prob, ess = updated_p_underestimated(draws, claim, m, z)
print(
    f"toys: {z} of {m} checked listings illegal; P(U > 1) {np.mean(draws > claim):.3f} before, "
    f"{prob[0]:.3f} after (effective sample size of the weights {ess[0]:.0f})"
)

# %% [markdown]
# ## 5. Many plans at once: `risklab.sweep`
#
# Audit plans for two sampling designs × two thresholds, each a `SweepTask` on the saved fit
# (no refit). `sweep` runs them serially, then on a local Dask cluster; the results are
# identical because every random step derives from the fit's seed. The local cluster here runs
# its two workers as threads of this process (`processes=False`): worker *processes* start by
# re-importing the main script, so a script using them must keep its code under
# `if __name__ == "__main__":` (the tests use worker processes). On a real cluster, pass its
# `Client` (`docs/sweep.md`).

# %%
posterior_file = model.save(OUT / "audit_design_posterior.nc")
tasks = [
    SweepTask(
        posterior_file,
        analyse=partial(
            plan_audit, sample_sizes=[200, 800], periods=periods, threshold=threshold, outcomes=400
        ),
        name=f"{periods}/{threshold}",
    )
    for periods in ("all", "last")
    for threshold in (0.9, 0.95)
]
serial = sweep(tasks)
try:
    from distributed import Client, LocalCluster
except ImportError:  # the "distributed" extra is not installed
    distributed_results = None
else:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        distributed_results = sweep(tasks, client=client)
for result in serial:
    print(result.name, result.result.recommended if result.ok else f"failed: {result.error}")
if distributed_results is not None:
    same = all(
        s.ok == d.ok and (not s.ok or s.result.table.equals(d.result.table))
        for s, d in zip(serial, distributed_results, strict=True)
    )
    print("identical on Dask:", same)
