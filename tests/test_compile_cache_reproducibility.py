"""Draws do not depend on the state of PyTensor's compile cache (real compiles; `make test-all`).

The bundled demo's log density and gradient, compiled in a fresh process with an empty PyTensor
cache (cold) and again in a second process that loads the first one's cache (warm), evaluated at
the same points. With PyTensor's numba fast-math flags on, the two disagreed in the last digits
(hashes fdc28523b365 cold against ad284df72f8c warm), so one seed gave two posteriors; risklab
compiles with the flags off (:mod:`risklab.models.numerics`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.extended]

SCRIPT = """
import hashlib
import numpy as np
import nutpie
from risklab import PlatformRiskModel, load_submission
from risklab.cli import demo_paths
from risklab.models.numerics import strict_floating_point

submission_dir, evidence_dir = demo_paths()
model = PlatformRiskModel(load_submission(submission_dir, evidence=evidence_dir))
with model.build() as pm_model, strict_floating_point():
    compiled = nutpie.compile_pymc_model(pm_model)
rng = np.random.default_rng(0)
digest = hashlib.sha256()
for _ in range(20):
    for value in compiled.logp_func(rng.normal(0.0, 0.5, compiled.n_dim)):
        digest.update(np.ascontiguousarray(np.asarray(value, dtype=float)).tobytes())
print(digest.hexdigest())
"""


def _log_density_hash(compiledir) -> str:
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_cold_and_warm_compiles_give_the_same_log_density(tmp_path):
    cold = _log_density_hash(tmp_path)
    assert any((tmp_path / "numba").iterdir()), "the cold run cached nothing"
    warm = _log_density_hash(tmp_path)
    assert cold == warm
