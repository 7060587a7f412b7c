# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Standalone estimators: hidden populations and imperfect tests
#
# `risklab.estimators` holds two families of estimators that a regulator can use on their own,
# before (or instead of) the full platform model:
#
# * **capture–recapture** (`mse`): how many illegal listings (or victims, or traders) exist,
#   from the overlap between several detection lists;
# * **imperfect tests** (`imperfect_test`): the true prevalence behind a share of positive test
#   results when the test misses some true cases and flags some innocent ones.
#
# Every number below is reproducible from the seed and the package versions printed next.
# The worked examples are published data sets with published answers (see
# `tests/data/README.md`). Runs as plain Python in well under a minute.

# %%
import importlib.metadata as md
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from risklab.estimators import EstimatorWarning, imperfect_test, mse

SEED = 20240601
DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
pd.set_option("display.width", 120)
pd.set_option("display.max_columns", 12)
warnings.simplefilter("ignore", EstimatorWarning)  # the results carry their warnings in details
for pkg in ("risklab", "pymc", "nutpie", "arviz", "numpy", "scipy", "pandas", "numba"):
    try:
        print(f"{pkg:8s} {md.version(pkg)}")
    except md.PackageNotFoundError:
        print(f"{pkg:8s} (not installed)")

# %% [markdown]
# ## 1. Capture–recapture with two lists: Lincoln–Petersen
#
# Seber (1982, p. 107): 948 units on list A, 421 on list B, 167 on both. With independent lists
# the log-linear MLE is the Lincoln–Petersen estimator `n1 n2 / m`.

# %%
seber = pd.read_csv(DATA / "mse_seber1982_p107.csv")
res = mse.loglinear(seber)
print(seber)
print(
    f"N = {res.estimate:.1f} (SE {res.se:.1f}), 95% profile interval "
    f"{res.interval[0]:.0f}-{res.interval[1]:.0f}; Lincoln-Petersen {948 * 421 / 167:.1f}"
)

# %% [markdown]
# ## 2. Four lists and list dependence: the Kosovo killings
#
# 4,400 killings documented by four organisations (Ball et al. 2002). A near-complete census later
# counted 10,401. Different dependence structures give very different answers; `compare` shows
# them side by side, with the latent-class model that absorbs heterogeneity.

# %%
kosovo = pd.read_csv(DATA / "mse_kosovo_ball2002.csv")
indep = mse.loglinear(kosovo)
chosen = mse.loglinear(
    kosovo, interactions=[("EXH", "OSCE", "HRW"), ("EXH", "ABA"), ("ABA", "OSCE")]
)
print(f"independence:          N = {indep.estimate:8.0f}  AIC {indep.details['AIC']:.1f}")
print(
    f"[EXH·OSCE·HRW][EXH·ABA][ABA·OSCE]: N = {chosen.estimate:8.0f}  "
    f"AIC {chosen.details['AIC']:.1f}  (SparseMSE stepwise: 18,393)"
)

# %%
# The Gibbs sampler's draws of N are autocorrelated; `details["converged"]` applies the library's
# rules (R-hat <= 1.01, bulk ESS >= 400). Twice the default draws get there for these data.
lc = mse.latent_class(kosovo, random_seed=SEED, draws=2000)
diag = lc.details["diagnostics"]["N"]
print(
    f"latent class: median {lc.estimate:.0f}, 95% interval {lc.interval[0]:.0f}-"
    f"{lc.interval[1]:.0f}; R-hat {diag['rhat']:.3f}, bulk ESS {diag['ess_bulk']:.0f}, "
    f"converged: {lc.details['converged']}; census count 10,401"
)

# %% [markdown]
# `compare` fits the log-linear models and, by default, the latent-class model too. Here the
# latent-class fit above is reused (`include_latent_class=False`) to save a few seconds.

# %%
table = mse.compare(kosovo, include_latent_class=False)
table.loc[len(table)] = {
    "model": "latent class (LCMCR)",
    "estimate": lc.estimate,
    "low": lc.interval[0],
    "high": lc.interval[1],
}
print(table[["model", "estimate", "low", "high", "AIC", "delta_AIC"]].round(1).to_string())
print("spread of the estimates:", {k: round(v, 2) for k, v in table.attrs["spread"].items()})

# %% [markdown]
# ## 3. Bayesian log-linear model
#
# Weak Normal(0, 5) priors on the log-linear coefficients; the posterior of `N` adds a Poisson
# draw of the unobserved cell to every posterior draw. With weak priors it tracks the likelihood.

# %%
darroch = pd.read_csv(DATA / "mse_darroch1993_r3.csv")
inter = [("c1", "c2"), ("c2", "c3")]
mle = mse.loglinear(darroch, interactions=inter)
bayes = mse.loglinear(
    darroch, interactions=inter, method="bayes", random_seed=SEED, draws=500, tune=500
)
print(f"MLE   {mle.estimate:.0f}  profile 95% {mle.interval[0]:.0f}-{mle.interval[1]:.0f}")
print(
    f"Bayes {bayes.estimate:.0f}  posterior 95% {bayes.interval[0]:.0f}-{bayes.interval[1]:.0f}"
    f"  (converged: {bayes.details['converged']})"
)

# %% [markdown]
# ## 4. Imperfect tests: the Santa Clara antibody survey
#
# 50 positives among 3,330 tests (Bendavid et al. 2020). With a specificity of 99.5% and a
# sensitivity of 80% the Rogan–Gladen correction gives 1.3% (SE 0.3%), as in Gelman & Carpenter
# (2020, §2). But the specificity is itself estimated from 399 of 401 known negatives, and at this
# prevalence everything hinges on it.

# %%
rg = imperfect_test.rogan_gladen(50, 3330, sensitivity=0.80, specificity=0.995)
print(
    f"Rogan-Gladen: {rg.estimate:.4f} (SE {rg.se:.4f}), 95% {rg.interval[0]:.4f}-"
    f"{rg.interval[1]:.4f}"
)
rg2 = imperfect_test.rogan_gladen(50, 3330, sensitivity=(103, 122), specificity=(399, 401))
print(f"with estimated Se, Sp: {rg2.estimate:.4f} (SE {rg2.se:.4f})")

# %%
pooled = imperfect_test.bayesian(
    50, 3330, [(103, 122)], [(399, 401)], random_seed=SEED, draws=500, tune=500
)
print(
    f"Bayesian pooled: median {pooled.estimate:.4f}, 95% shortest interval "
    f"{pooled.interval[0]:.4f}-{pooled.interval[1]:.4f} (Gelman & Carpenter: 0-0.018)"
)

# %% [markdown]
# With the 13 specificity and 3 sensitivity studies of the revised report, a hierarchical model
# lets the accuracy vary between studies; `hyper_sigma_scale=0.2` is Gelman & Carpenter's
# "stronger prior" (their 95% interval: 0.3%-2.1%, median 1.2%).

# %%
spec_studies = [
    (368, 371),
    (30, 30),
    (70, 70),
    (1102, 1102),
    (300, 300),
    (311, 311),
    (500, 500),
    (198, 200),
    (99, 99),
    (29, 31),
    (146, 150),
    (105, 108),
    (50, 52),
]
sens_studies = [(78, 85), (27, 37), (25, 35)]
hier = imperfect_test.bayesian(
    50,
    3330,
    sens_studies,
    spec_studies,
    hierarchical=True,
    hyper_sigma_scale=0.2,
    interval="eti",
    random_seed=SEED,
)
print(
    f"hierarchical: median {hier.estimate:.4f}, 95% {hier.interval[0]:.4f}-"
    f"{hier.interval[1]:.4f}; survey specificity "
    f"{hier.details['specificity']['median']:.4f}, sensitivity "
    f"{hier.details['sensitivity']['median']:.3f}"
)
print(
    "diagnostics:",
    {k: round(v["rhat"], 3) for k, v in hier.details["diagnostics"].items()},
    "divergences:",
    hier.details["divergences"],
    "converged:",
    hier.details["converged"],
)
assert np.isfinite(hier.estimate)
