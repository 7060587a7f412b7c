"""Shared pieces of the benchmark suite: marketplaces, headline quantities, isolation, records.

Every benchmark case runs in its own child process (:func:`run_isolated`), so that its peak
resident memory is its own (``ru_maxrss`` of the child and of the child's own children, e.g.
PyMC's sampling workers) and so that one failing case is recorded as failed without stopping the
suite. Results are written as JSON under ``benchmarks/results/`` with the machine, package
versions, commit and load average, so runs can be compared over time.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Optional packages whose versions are recorded next to risklab's provenance packages.
EXTRA_PACKAGES = ("numba", "jax", "jaxlib", "numpyro", "blackjax", "psutil")


# ------------------------------------------------------------------------------------ machine
def usable_cores() -> int:
    """Cores this process may run on (:func:`risklab.models.config.usable_cores`)."""
    from risklab.models.config import usable_cores as cores

    return cores()


def git_commit() -> dict[str, Any]:
    """Commit of the checkout and whether the work tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": head, "dirty": bool(dirty)}


def _memory_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """1-minute load average (None where the OS does not report it)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """Machine, versions and commit: what a result must carry to be compared with another."""
    from risklab.models.provenance import package_versions

    versions = package_versions()
    for name in EXTRA_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_commit(),
        "machine": {
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cores": usable_cores(),
            "memory_gb": _memory_total_gb(),
            "load_average_1min": load_average(),
        },
        "versions": versions,
    }


# ------------------------------------------------------------------------------- measurement
def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its (waited-for) children, in MiB."""
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0  # KiB on Linux, B on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return {"self_mb": round(own, 1), "children_mb": round(children, 1)}


class Stopwatch:
    """Named wall-clock stages: ``with watch("build"): ...``; :attr:`stages` in seconds."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start


def median_time(fn, *, number: int, repeat: int) -> float:
    """Median over ``repeat`` blocks of the seconds per call of ``fn`` (``number`` calls each)."""
    return float(np.median(block_times(fn, number=number, repeat=repeat)))


def best_time(fn, *, number: int, repeat: int) -> float:
    """Fastest of ``repeat`` blocks of ``number`` calls, seconds per call: the least disturbed
    measurement of a deterministic cost (``timeit``'s advice). The median of the 2026-11-29
    suite's gradient timings moved by up to 2× between identical runs on a quiet machine."""
    return float(np.min(block_times(fn, number=number, repeat=repeat)))


def block_times(fn, *, number: int, repeat: int) -> list[float]:
    """Seconds per call of ``fn`` in each of ``repeat`` blocks of ``number`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return times


# ------------------------------------------------------------------------------ marketplaces
def category_names(n: int) -> list[str]:
    """The simulator's default categories, then ``category_11``, ``category_12``, ..."""
    from risklab.data.synthetic import DEFAULT_CATEGORIES

    names = list(DEFAULT_CATEGORIES[:n])
    names += [f"category_{i + 1:02d}" for i in range(len(names), n)]
    return names


def chunked_trader_table(
    seed: int,
    n_traders: int,
    *,
    detection_rate: float,
    chunk: int = 1_000_000,
    **policy: Any,
) -> pd.DataFrame:
    """The ``traders`` table of ``n_traders`` offending traders, simulated in chunks.

    Traders are independent, so the table (traders per strike count) of a large population is
    the sum of the tables of its chunks; memory stays that of one chunk (10^7 traders at once
    would need several GB). ``policy``: the keyword arguments of
    :func:`risklab.data.synthetic.simulate_traders` other than the population and the rng.
    """
    from risklab.data.synthetic import simulate_traders

    total = None
    done, index = 0, 0
    while done < n_traders:
        size = min(chunk, n_traders - done)
        table, _ = simulate_traders(
            np.random.default_rng([seed, 1, index]),
            n_offending_traders=size,
            detection_rate=detection_rate,
            **policy,
        )
        table = table.set_index("strikes")
        total = table if total is None else total.add(table, fill_value=0)
        done += size
        index += 1
    out = total.reset_index().astype("int64")
    return out[["strikes", "traders", "suspended"]]


def marketplace(
    seed: int = 1,
    *,
    n_categories: int = 10,
    n_periods: int = 24,
    total_listings: float = 1e8,
    n_traders: int | None = 100_000,
    audit_share: float = 1.0 / 3.0,
):
    """The benchmark marketplace: ``n_categories × n_periods × 4`` channels with evidence.

    Random audits (400 checks) in every category in the last ``ceil(audit_share · n_periods)``
    periods — a third of the cells by default — purposive test purchases in toys and cosmetics,
    planted listings in toys, cosmetics and electronics (the simulator's defaults; the first,
    second and third category when the default names are not used), and a trader table of
    ``n_traders`` offending traders with a three-strike policy (none when ``None``).

    Returns
    -------
    risklab.data.synthetic.SimulatedMarketplace
    """
    from risklab.data.synthetic import simulate_marketplace

    names = category_names(n_categories)
    audit_periods = max(1, math.ceil(audit_share * n_periods))
    defaults_present = {"toys", "cosmetics", "electronics"} <= set(names)
    planted = None if defaults_present else names[: min(3, len(names))]
    purposive = None if defaults_present else {c: 60 for c in names[: min(2, len(names))]}
    small_population = n_traders is not None and n_traders <= 1_000_000
    sim = simulate_marketplace(
        seed=seed,
        categories=names,
        n_periods=n_periods,
        total_listings=total_listings,
        audited_categories=names,
        audit_periods=audit_periods,
        planted_categories=planted,
        purposive=purposive,
        traders=n_traders is not None,
        n_offending_traders=int(n_traders) if small_population else 1_000,
    )
    if n_traders is not None and not small_population:
        truth = sim.truth
        sim.tables["traders"] = chunked_trader_table(
            seed,
            int(n_traders),
            detection_rate=truth["offender_detection_rate"],
            offender_shape=truth["offender_shape"],
            offender_mean_listings=truth["offender_mean_listings"],
            enforcement=truth["enforcement"],
            strike_threshold=truth["strike_threshold"],
            claimed_enforcement=truth["claimed_enforcement"],
        )
        sim.truth["offending_traders"] = int(n_traders)
    return sim


# ------------------------------------------------------------------------ headline quantities
#: The findings' headline quantities (per category unless platform-wide).
HEADLINE = ("prevalence", "detection_rate", "enforcement", "non_enforcement_share")


def headline_draws(
    prevalence: np.ndarray,
    detection_rate: np.ndarray,
    listings: np.ndarray,
    *,
    enforcement: np.ndarray | None = None,
    non_enforcement_share: np.ndarray | None = None,
) -> xr.Dataset:
    """The headline quantities per draw, as :func:`risklab.assess` computes them.

    Parameters
    ----------
    prevalence, detection_rate : numpy.ndarray, shape (chain, draw, K, T)
        Cell prevalence and proactive detection rate.
    listings : numpy.ndarray, shape (K, T)
    enforcement, non_enforcement_share : numpy.ndarray, shape (chain, draw), optional

    Returns
    -------
    xarray.Dataset
        ``prevalence`` and ``detection_rate`` per category (listings-weighted over periods) and
        the platform-wide enforcement quantities when given, over ``(chain, draw, ...)``.
    """
    import xarray as xr

    weights = np.asarray(listings, dtype=float)
    weights = weights / weights.sum(axis=1, keepdims=True)
    dims = ("chain", "draw", "category")
    data = {
        "prevalence": (dims, (np.asarray(prevalence) * weights).sum(axis=-1)),
        "detection_rate": (dims, (np.asarray(detection_rate) * weights).sum(axis=-1)),
    }
    if enforcement is not None:
        data["enforcement"] = (("chain", "draw"), np.asarray(enforcement))
    if non_enforcement_share is not None:
        data["non_enforcement_share"] = (("chain", "draw"), np.asarray(non_enforcement_share))
    return xr.Dataset(data)


def headline_from_posterior(posterior: xr.Dataset, listings: np.ndarray) -> xr.Dataset:
    """:func:`headline_draws` from a fitted model's posterior Dataset."""
    order = ("chain", "draw", "category", "period")
    extra = {
        name: np.asarray(posterior[name].transpose("chain", "draw").values)
        for name in ("enforcement", "non_enforcement_share")
        if name in posterior
    }
    return headline_draws(
        posterior["prevalence"].transpose(*order).values,
        posterior["detection_rate"].transpose(*order).values,
        listings,
        **extra,
    )


def diagnostics(draws: xr.Dataset) -> dict[str, Any]:
    """Worst bulk/tail ESS and R-hat over all elements of ``draws``, and per-element summaries.

    The estimators are the convergence gate's (:mod:`risklab.models.convergence_stats`: tail ESS
    at the 5% and 95% quantiles), so a benchmark's numbers read like the gate's.

    Returns
    -------
    dict
        ``min_ess_bulk``, ``min_ess_tail``, ``max_rhat`` (with the worst element named under
        ``*_at``) and ``summary``: per variable, lists of mean, sd and bulk ESS per element
        (used to check that two samplers agree).
    """
    import pandas as pd

    from risklab.models.convergence_stats import diagnostics_table

    if int(draws.sizes.get("chain", 1)) < 2 or int(draws.sizes.get("draw", 1)) < 4:
        nan = float("nan")
        return {"min_ess_bulk": nan, "min_ess_tail": nan, "max_rhat": nan, "summary": {}}
    # The gate's own estimators (tail ESS at 5%/95%), one table per variable.
    tables = {str(name): diagnostics_table(draws, [str(name)]) for name in draws.data_vars}
    table = pd.concat(tables.values())

    def worst(column: str, largest: bool) -> tuple[float, str]:
        values = table[column].astype(float)
        if values.isna().all():
            return float("nan"), ""
        label = values.idxmax() if largest else values.idxmin()
        return float(values[label]), str(label)

    min_bulk, bulk_at = worst("ess_bulk", largest=False)
    min_tail, tail_at = worst("ess_tail", largest=False)
    max_rhat, rhat_at = worst("r_hat", largest=True)
    summary = {}
    for name, da in draws.data_vars.items():
        summary[name] = {
            "mean": np.atleast_1d(da.mean(("chain", "draw")).values).tolist(),
            "sd": np.atleast_1d(da.std(("chain", "draw")).values).tolist(),
            "ess_bulk": tables[str(name)]["ess_bulk"].tolist(),
        }
    return {
        "min_ess_bulk": min_bulk,
        "min_ess_bulk_at": bulk_at,
        "min_ess_tail": min_tail,
        "min_ess_tail_at": tail_at,
        "max_rhat": max_rhat,
        "max_rhat_at": rhat_at,
        "summary": summary,
    }


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest ``|mean_a − mean_b| / sqrt(mcse_a² + mcse_b²)`` over the shared headline elements.

    MCSE is ``sd / sqrt(ess_bulk)``. Values below about 4 say the two fits sample the same
    posterior; NaN when nothing is shared.
    """
    zs: list[float] = []
    for name in sorted(set(a) & set(b)):
        ma, sa, ea = (np.asarray(a[name][k], dtype=float) for k in ("mean", "sd", "ess_bulk"))
        mb, sb, eb = (np.asarray(b[name][k], dtype=float) for k in ("mean", "sd", "ess_bulk"))
        if ma.shape != mb.shape or ma.size == 0:
            continue
        se = np.sqrt(sa**2 / np.maximum(ea, 1.0) + sb**2 / np.maximum(eb, 1.0))
        zs.extend((np.abs(ma - mb) / np.where(se > 0, se, np.inf)).tolist())
    worst = float(np.nanmax(zs)) if zs else float("nan")
    return worst


# --------------------------------------------------------------------------------- isolation
def run_isolated(
    module: str,
    function: str,
    kwargs: dict[str, Any],
    *,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``benchmarks.<module>.<function>(**kwargs)`` in a fresh child process.

    Returns the function's result (a JSON-safe dict) with ``peak_memory`` (of the child and its
    own children) and ``wall_s`` added; on failure or timeout a record with ``error`` (the last
    lines of the child's stderr) instead, so the suite goes on.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="risklab-bench-") as tmp:
        out = Path(tmp) / "result.json"
        args = Path(tmp) / "args.json"
        args.write_text(json.dumps(kwargs))
        command = [sys.executable, "-m", "benchmarks.child", module, function, str(args), str(out)]
        child_env = dict(os.environ)
        child_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [child_env.get("PYTHONPATH")])]
        )
        child_env.update(env or {})
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command,
                cwd=REPO,
                env=child_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s", "wall_s": timeout}
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-12:])
            return {"error": f"exit code {proc.returncode}: {tail}", "wall_s": wall}
        result = json.loads(out.read_text())
        result.setdefault("wall_s", wall)
        return result


def jsonable(value: Any) -> Any:
    """Numbers, arrays and nested containers as plain JSON (NaN and infinities as null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


# ----------------------------------------------------------------------------------- output
def write_record(name: str, record: dict[str, Any], directory: Path | None = None) -> Path:
    """Write ``record`` as ``<directory>/<name>_<UTC timestamp>.json``; return the path."""
    directory = directory or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = directory / f"{name}_{stamp}.json"
    path.write_text(json.dumps(jsonable(record), indent=2, sort_keys=False) + "\n")
    return path


def fmt(value: Any, spec: str = ".3g") -> str:
    """A table cell: numbers formatted, missing values as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "-"
        return format(float(value), spec)
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A fixed-width text table; ``columns`` are ``(key, header, format spec)``."""
    cells = [[fmt(r.get(key), spec) for key, _, spec in columns] for r in rows]
    headers = [header for _, header, _ in columns]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def probe(**kwargs: Any) -> dict[str, Any]:
    """A trivial case for checking :func:`run_isolated` (``fail=True`` raises)."""
    if kwargs.get("fail"):
        raise RuntimeError("probe failed on purpose")
    return {"echo": kwargs}
