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
# # Quick start: from a submission to findings in five calls
#
# A marketplace submits its Art. 34 risk assessment as a directory of files (see
# [the submission format](../docs/submission-format.md)); a regulator adds evidence of its own
# (random audits, test purchases, planted listings). risklab fits one Bayesian model to both and
# says, per product category, how much the platform's own assessment understates the risk.
#
# This example uses the **synthetic** demo submission bundled with risklab (the one
# `make demo` assesses): 10 product categories × 12 months of a made-up marketplace.
# It runs as a plain script (`python examples/quickstart.py`) in two to four minutes on two
# cores, mostly compiling the model; figures go to `demo-output/examples/`. Every number is
# reproducible from the seed and the package versions printed below.

# %%
import warnings
from pathlib import Path

import arviz
import matplotlib
import numpy as np
import pandas as pd
import pymc

matplotlib.use("Agg")

import risklab
from risklab import PlatformRiskModel, SamplerConfig, assess, load_submission
from risklab.cli import demo_paths
from risklab.plotting import plot_prevalence_vs_claimed

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
# ## 1. Load and validate the submission
#
# `load_submission` checks every file against the format and reports every problem at once
# (a `SubmissionError` naming file, row and column). `evidence=` adds the regulator's rows.

# %%
submission_dir, evidence_dir = demo_paths()
submission = load_submission(submission_dir, evidence=evidence_dir)
print(submission.platform.name)
print("categories:", ", ".join(submission.categories))
print("periods:   ", submission.periods[0], "...", submission.periods[-1])
print("channels:  ", ", ".join(submission.channels))
print("scale:     ", " < ".join(submission.scale.labels))

# %% [markdown]
# ## 2. Fit the platform model
#
# The model links review hours, detections by each channel and the regulator's evidence to the
# true prevalence of illegal listings (the equations are in
# [the methodology](../docs/methodology.md)).
# A real assessment uses the defaults (4 chains × 1000 draws); two short chains keep this example
# quick, so the convergence gate may fail — the findings then say so.

# %%
model = PlatformRiskModel(submission, sampler_config=SamplerConfig(draws=300, tune=300, chains=2))
print("components:", ", ".join(c.name for c in model.components))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a failed gate is recorded on the results
    model.fit(random_seed=SEED)
print(model.convergence.summary())

# %% [markdown]
# ## 3. Assess
#
# One row per category: the posterior of the true prevalence (median and 90% equal-tailed
# interval), the platform's claim, the underestimation ratio `U = prevalence / claim`, the
# probability that the true band of the platform's own scale is above the band it claimed, and
# which evidence identified the prevalence.

# %%
findings = assess(model)
columns = [
    "category",
    "prevalence_median",
    "prevalence_low",
    "prevalence_high",
    "claimed_prevalence",
    "underestimation_median",
    "p_band_above_claimed",
    "identified_by",
]
print(findings.table[columns].round(4).to_string(index=False))

# %% [markdown]
# Caveats come with the findings, in plain language: prior-driven categories (no evidence that
# identifies their prevalence), a failed convergence gate.

# %%
for text in findings.warnings:
    print("-", text)

# %% [markdown]
# ## 4. Plot
#
# The figure `risklab assess` writes as `prevalence_vs_claimed.png`: per category, the posterior
# of the true prevalence against the platform's claim, over the platform's own scale.

# %%
ax = plot_prevalence_vs_claimed(findings, thresholds=tuple(submission.scale.thresholds))
ax.figure.savefig(OUT / "quickstart_prevalence_vs_claimed.png", dpi=120, bbox_inches="tight")
print("wrote", OUT / "quickstart_prevalence_vs_claimed.png")

# %% [markdown]
# ## 5. Keep the results
#
# `save` writes the posterior with the data and the provenance (seed, sampler settings,
# priors, input hash, package versions) to one netCDF file; `PlatformRiskModel.load` reads it
# back, and `findings.to_csv` writes the table the CLI writes.

# %%
model.save(OUT / "quickstart_posterior.nc")
findings.to_csv(OUT / "quickstart_findings.csv")
reloaded = PlatformRiskModel.load(OUT / "quickstart_posterior.nc")
same = np.allclose(assess(reloaded).table["prevalence_median"], findings.table["prevalence_median"])
print("reloaded findings identical:", same)
