"""Compile caching: what a second run saves, for nutpie (numba), PyMC's NUTS (C) and the demo.

PyTensor caches compiled code on disk under ``base_compiledir`` (C modules in
``compiledir_*``, numba functions in ``numba/``). Each case runs in a fresh process with
``PYTENSOR_FLAGS=base_compiledir=<dir>``: the first run with an empty ``<dir>`` is *cold* (as after
installation), the second with the same ``<dir>`` is *warm* (as on every later run). Cases:

* :func:`compile_case` with ``backend="numba"`` — the flagship model compiled for nutpie as
  ``risklab assess`` and ``risklab demo`` compile it
  (:func:`risklab.models.nutpie_cache.compile_nutpie`: nutpie's C callbacks cached on disk);
* :func:`compile_case` with ``backend="jax"`` — nutpie with its JAX backend (and JAX's persistent
  compilation cache in ``JAX_COMPILATION_CACHE_DIR``), the alternative whose compiled code can
  be cached across processes;
* :func:`compile_case` with ``backend="c"`` — the log-density-and-gradient function PyMC's own
  NUTS compiles (``Model.logp_dlogp_function``);
* :func:`demo_case` — ``risklab demo`` end to end (its wall time is the target: ≤ 60 s warm).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, marketplace


def compile_case(
    *,
    backend: str = "numba",
    seed: int = 1,
    n_categories: int = 10,
    n_periods: int = 24,
    total_listings: float = 1e8,
    n_traders: int | None = 100_000,
) -> dict[str, Any]:
    """Seconds to compile the flagship model's log density for one backend (``numba``, ``jax``:
    nutpie, plus ``first_draws_s`` for 10 + 10 draws of one chain; ``c``: PyMC's NUTS)."""
    from risklab.models import PlatformRiskModel
    from risklab.models.numerics import strict_floating_point

    sim = marketplace(
        seed,
        n_categories=n_categories,
        n_periods=n_periods,
        total_listings=total_listings,
        n_traders=n_traders,
    )
    model = PlatformRiskModel(sim.to_submission())
    start = time.perf_counter()
    pm_model = model.build()
    build_s = time.perf_counter() - start
    out: dict[str, Any] = {"backend": backend, "build_s": build_s}
    start = time.perf_counter()
    with strict_floating_point():  # the flags risklab compiles under
        out.update(_compile(pm_model, backend, seed, start))
    return out


def _compile(pm_model, backend: str, seed: int, start: float) -> dict[str, Any]:
    """``compile_s`` since ``start`` (and ``first_draws_s`` for nutpie) of one backend."""
    out: dict[str, Any] = {}
    if backend in ("numba", "jax"):
        import nutpie

        if backend == "numba":  # as risklab compiles: nutpie's C callbacks cached on disk
            from risklab.models.nutpie_cache import compile_nutpie

            compiled = compile_nutpie(pm_model)
        else:
            compiled = nutpie.compile_pymc_model(pm_model, backend="jax", gradient_backend="jax")
        out["compile_s"] = time.perf_counter() - start
        # JAX compiles lazily, at the first evaluation: time a few draws as well.
        start = time.perf_counter()
        nutpie.sample(compiled, draws=10, tune=10, chains=1, progress_bar=False, seed=seed)
        out["first_draws_s"] = time.perf_counter() - start
    elif backend == "c":
        pm_model.logp_dlogp_function(ravel_inputs=True)
        out["compile_s"] = time.perf_counter() - start
    else:
        raise ValueError(f"backend must be 'numba', 'jax' or 'c', got {backend!r}")
    return out


_SAMPLED = re.compile(r"sampled in (\d+) s")


def demo_case(
    *, draws: int | None = None, tune: int | None = None, chains: int | None = None
) -> dict[str, Any]:
    """Wall time of ``risklab demo`` (default sampler settings unless given) in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="risklab-bench-demo-") as out:
        command = [sys.executable, "-m", "risklab.cli", "demo", "--out", out, "--force"]
        for flag, value in (("--draws", draws), ("--tune", tune), ("--chains", chains)):
            if value is not None:
                command += [flag, str(value)]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        files = sorted(p.name for p in Path(out).iterdir()) if Path(out).exists() else []
    match = _SAMPLED.search(proc.stderr or "")
    return {
        "exit_code": proc.returncode,
        "demo_s": wall,
        "compile_and_sample_s": float(match.group(1)) if match else None,
        "files": len(files),
        "stderr_tail": "\n".join((proc.stderr or "").strip().splitlines()[-3:]),
    }
