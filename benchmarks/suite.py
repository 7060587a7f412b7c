"""risklab's benchmark suite (issue #10): ``make bench`` or ``python -m benchmarks.suite``.

Sections (each case in its own process; a failing case is recorded and the suite goes on):

* ``flagship``  — one assessment of 10 categories × 24 months × 4 channels, audits in a third of
  the cells, planted listings, 10^5 traders: build, compile, sampling, gate, assess, report;
  min headline bulk ESS per second; divergences; R-hat; peak memory (``--repeats`` for medians);
* ``samplers``  — the same model and seed with PyMC's NUTS, numpyro and blackjax (where
  installed) beside nutpie from ``flagship``, and the default the numbers support;
* ``stan``      — the same model in Stan (rstan): ESS/s ratio and total wall-time ratio;
* ``scaling``   — listings 10^4 → 10^10, traders 10^3 → 10^7, grid 10×12 → 50×60;
* ``scenarios`` — 1,000 scenarios × 4,000 draws, scenario-draws per second;
* ``caching``   — ``risklab demo`` run twice (the second run is warm: target ≤ 60 s); with
  ``--compile-cache`` also compilation cold vs warm for nutpie/numba, nutpie/JAX and PyMC/C.

Results: a table per section on stdout and one JSON file
``benchmarks/results/suite_<UTC time>.json`` (rewritten after every section) with machine,
versions, commit and load average. ``--quick`` runs everything on tiny sizes (a few minutes);
the full suite takes roughly 25 minutes on a quiet 2-core machine (see README.md).

    python -m benchmarks.suite [--quick] [--only flagship,stan] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/suite.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import flagship, scaling, scenarios_throughput
from benchmarks.common import (
    agreement,
    environment,
    fmt,
    load_average,
    run_isolated,
    table,
    usable_cores,
    write_record,
)

SECTIONS = ("flagship", "samplers", "stan", "scaling", "scenarios", "caching")
OTHER_SAMPLERS = ("pymc", "numpyro", "blackjax")

FIT_COLUMNS = [
    ("label", "case", ""),
    ("sampler", "sampler", ""),
    ("build", "build", ".1f"),
    ("compile", "compile", ".1f"),
    ("sampling", "sample", ".1f"),
    ("gate", "gate", ".1f"),
    ("assess", "assess", ".1f"),
    ("report", "report", ".1f"),
    ("total_s", "total", ".1f"),
    ("min_ess_bulk", "minESS", ".0f"),
    ("ess_per_s", "ESS/s", ".1f"),
    ("divergences", "div", ""),
    ("max_rhat", "R-hat", ".3f"),
    ("gradient_us", "grad µs", ".1f"),
    ("peak_mb", "peak MB", ".0f"),
    ("error", "error", ""),
]


def sampler_available(name: str) -> tuple[bool, str]:
    """Whether PyMC can drive ``name`` here, and why not."""
    needs = {"nutpie": ["nutpie"], "pymc": [], "numpyro": ["jax", "numpyro"]}
    needs["blackjax"] = ["jax", "blackjax"]
    missing = [m for m in needs[name] if importlib.util.find_spec(m) is None]
    return (not missing, f"not installed: {', '.join(missing)}" if missing else "")


def jax_env(chains: int) -> dict[str, str]:
    """Let JAX samplers run chains in parallel on CPU (one XLA host device per chain)."""
    return {"XLA_FLAGS": f"--xla_force_host_platform_device_count={chains}"}


def last_line(error: str, width: int = 70) -> str:
    """The last non-empty line of an error (the exception message), shortened for a table."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b", line)]
    chosen = raised[-1] if raised else (lines[-1] if lines else "")
    return chosen[:width]


def row(label: str, result: dict[str, Any]) -> dict[str, Any]:
    """A table row of a fit result."""
    out: dict[str, Any] = {"label": label}
    if "error" in result:
        out["error"] = last_line(result["error"])
        out["sampler"] = result.get("sampler", {}).get("sampler")
        return out
    out.update(result.get("stages", {}))
    out["sampler"] = result.get("sampler", {}).get("sampler")
    for key in ("total_s", "min_ess_bulk", "ess_per_s", "divergences", "max_rhat"):
        out[key] = result.get(key)
    if result.get("gradient_s") is not None:
        out["gradient_us"] = 1e6 * result["gradient_s"]
    memory = result.get("peak_memory") or {}
    if memory:
        out["peak_mb"] = max(memory.get("self_mb", 0.0), memory.get("children_mb", 0.0))
    return out


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median total wall time (the record of one real run, not a blend),
    annotated with the medians of total time and ESS/s over the runs."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    ok.sort(key=lambda r: r["total_s"])
    chosen = dict(ok[(len(ok) - 1) // 2])
    chosen["runs"] = len(ok)
    chosen["median_total_s"] = statistics.median(r["total_s"] for r in ok)
    chosen["median_ess_per_s"] = statistics.median(
        r["ess_per_s"] for r in ok if r.get("ess_per_s") is not None
    )
    return chosen


class Suite:
    """Runs the sections, prints tables and keeps the JSON record up to date."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        sampling = dict(flagship.QUICK_SAMPLING if self.quick else flagship.FULL_SAMPLING)
        for key in ("draws", "tune", "chains"):
            if getattr(args, key) is not None:
                sampling[key] = getattr(args, key)
        self.sampling = sampling
        self.market = dict(flagship.QUICK if self.quick else flagship.FLAGSHIP)
        self.record: dict[str, Any] = {
            "benchmark": "suite",
            "mode": "quick" if self.quick else "full",
            "settings": {"sampling": sampling, "marketplace": self.market, "seed": args.seed},
            **environment(),
            "sections": {},
        }
        self.path: Path | None = None
        self.flagship_result: dict[str, Any] | None = None

    # ------------------------------------------------------------------ helpers
    def save(self) -> None:
        directory = Path(self.args.results_dir) if self.args.results_dir else None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self.path = write_record("suite", self.record, directory)

    def fit(self, label: str, **overrides: Any) -> dict[str, Any]:
        kwargs = {**self.market, **self.sampling, "seed": self.args.seed, **overrides}
        env = None
        if kwargs.get("sampler") in ("numpyro", "blackjax"):
            env = jax_env(kwargs["chains"])
        load = load_average()
        print(f"  running {label} ...", flush=True)
        result = run_isolated(
            "flagship", "assessment_case", kwargs, timeout=self.args.timeout, env=env
        )
        result["load_average_before"] = load
        result.setdefault("sampler", {"sampler": kwargs.get("sampler", "nutpie")})
        return result

    # ------------------------------------------------------------------ sections
    def flagship(self) -> dict[str, Any]:
        runs = [
            self.fit(f"flagship #{i + 1}", gradient_calls=200, report=True)
            for i in range(self.args.repeats)
        ]
        chosen = median_result(runs)
        self.flagship_result = chosen
        print(table([row(f"flagship #{i + 1}", r) for i, r in enumerate(runs)], FIT_COLUMNS))
        targets = flagship.targets(chosen)
        verdicts = [f"{k} {'met' if v else 'MISSED'}" for k, v in targets.items()]
        print("  targets: " + ", ".join(verdicts))
        return {"runs": runs, "median": chosen, "targets": targets}

    def samplers(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        if self.flagship_result is not None:
            results["nutpie"] = self.flagship_result
        else:
            results["nutpie"] = self.fit("nutpie", sampler="nutpie", report=False)
        for name in OTHER_SAMPLERS:
            ok, why = sampler_available(name)
            if not ok:
                results[name] = {"skipped": why, "sampler": {"sampler": name}}
                print(f"  {name}: skipped ({why})")
                continue
            results[name] = self.fit(name, sampler=name, report=False)
        rows = [row(n, r) for n, r in results.items() if "skipped" not in r]
        print(table(rows, FIT_COLUMNS))
        choice = recommend(results)
        print(f"  default sampler: {choice['sampler']} — {choice['why']}")
        return {"results": results, "recommendation": choice}

    def stan(self) -> dict[str, Any]:
        from benchmarks.stan.runner import stan_installation

        installation = stan_installation()
        if installation is None:
            message = (
                "skipped: no Stan installation found (Rscript with rstan). Install it with "
                "'apt-get install -y r-cran-rstan' (Debian) and rerun --only stan."
            )
            print("  " + message)
            return {"skipped": message}
        kwargs = {**self.market, **self.sampling, "seed": self.args.seed}
        runs = []
        for i in range(self.args.repeats):
            print(f"  running stan #{i + 1} ({installation['kind']} {installation['version']}) ...")
            result = run_isolated(
                "stan.runner",
                "stan_case",
                {**kwargs, "cache_dir": self.args.stan_cache},
                timeout=self.args.timeout,
            )
            result.setdefault("sampler", {"sampler": "stan"})
            runs.append(result)
        chosen = median_result(runs)
        pymc = self.flagship_result
        rows = [row(f"stan #{i + 1}", r) for i, r in enumerate(runs)]
        if pymc is not None:
            rows.insert(0, row("pymc+nutpie", pymc))
        print(table(rows, FIT_COLUMNS))
        out: dict[str, Any] = {"installation": installation, "runs": runs, "median": chosen}
        if pymc is not None and "error" not in pymc and "error" not in chosen:
            pymc_fit = sum(pymc["stages"][s] for s in ("build", "compile", "sampling"))
            out["ess_per_s_ratio"] = ratio(pymc["ess_per_s"], chosen["ess_per_s"])
            out["wall_ratio_stan_over_pymc"] = ratio(chosen["total_s"], pymc_fit)
            out["sampling_ratio_stan_over_pymc"] = ratio(
                chosen["stages"]["sampling"], pymc["stages"]["sampling"]
            )
            out["agreement_max_z"] = agreement(pymc["headline"], chosen["headline"])
            print(
                f"  ESS/s nutpie / Stan: {fmt(out['ess_per_s_ratio'], '.2f')} (target ≥ 1.5); "
                f"wall time (build+compile+sample) Stan / nutpie: "
                f"{fmt(out['wall_ratio_stan_over_pymc'], '.2f')}; posterior agreement max |z| "
                f"{fmt(out['agreement_max_z'], '.1f')} (below ~4: the same posterior)"
            )
        return out

    def scaling(self) -> dict[str, Any]:
        sampling = dict(self.sampling)
        if not self.quick and self.args.scaling_draws:
            sampling.update(draws=self.args.scaling_draws, tune=self.args.scaling_draws)
        out: dict[str, Any] = {"sampling": sampling}
        for axis, cases in scaling.plan(quick=self.quick).items():
            print(f"  axis {axis}:")
            results = scaling.run_axis(
                cases,
                sampling,
                seed=self.args.seed,
                timeout=self.args.timeout,
                gradient_calls=200,
            )
            labels = [axis_label(axis, c) for c in cases]
            print(table([row(lb, r) for lb, r in zip(labels, results, strict=True)], FIT_COLUMNS))
            ratio = scaling.ratios(results)
            print("  ratio last/first: " + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items() if v))
            out[axis] = {"cases": results, "ratio_last_over_first": ratio}
            if axis in ("listings", "traders"):  # the axes with a cost target (≤ 1.2)
                paired = run_isolated(
                    "scaling",
                    "paired_gradient_case",
                    {"first": cases[0], "last": cases[-1], "seed": self.args.seed},
                    timeout=self.args.timeout,
                )
                out[axis]["paired_gradient"] = paired
                if "error" in paired:
                    print("  paired gradient ratio failed: " + paired["error"])
                else:
                    print(
                        f"  paired gradient ratio last/first (target ≤ 1.2): "
                        f"{paired['ratio']:.2f} (median of {paired['rounds']} rounds; "
                        f"{1e6 * paired['first_s']:.1f} → {1e6 * paired['last_s']:.1f} µs)"
                    )
        return out

    def scenarios(self) -> dict[str, Any]:
        settings = scenarios_throughput.QUICK if self.quick else scenarios_throughput.FULL
        print("  running scenario throughput ...")
        result = run_isolated(
            "scenarios_throughput", "throughput_case", settings, timeout=self.args.timeout
        )
        if "error" in result:
            print("  failed: " + result["error"])
        else:
            stress = result.get("stress_test_scenario_draws_per_s")
            many = result.get("evaluate_many_scenario_draws_per_s")
            passes = result.get("evaluate_many_passes_scenario_draws_per_s") or []
            print(
                f"  scenario-draws per second (target ≥ 1e6): evaluate_arrays "
                f"{result['scenario_draws_per_s']:.3g} ({result['ms_per_scenario']:.1f} ms per "
                f"scenario of {settings['n_draws']} draws); evaluate_many "
                + (f"{many:.3g}" if many else "n/a")
                + (
                    f" (median of {len(passes)} passes: "
                    + ", ".join(f"{v:.3g}" for v in passes)
                    + ")"
                    if len(passes) > 1
                    else ""
                )
                + "; stress_test "
                + (f"{stress:.3g}" if stress else str(result.get("stress_test")))
            )
        return result

    def caching(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        market = dict(self.market)
        backends = ["numba", "c"] if self.args.compile_cache else []
        if backends and sampler_available("numpyro")[0]:  # jax installed
            backends.insert(1, "jax")
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix="risklab-bench-cache-") as cache:
                env = {
                    "PYTENSOR_FLAGS": f"base_compiledir={cache}",
                    "JAX_COMPILATION_CACHE_DIR": f"{cache}/jax",
                }
                runs = {}
                for phase in ("cold", "warm"):
                    print(f"  compile {backend} ({phase}) ...", flush=True)
                    runs[phase] = run_isolated(
                        "caching",
                        "compile_case",
                        {**market, "backend": backend, "seed": self.args.seed},
                        timeout=self.args.timeout,
                        env=env,
                    )
                out[f"compile_{backend}"] = runs
        # risklab demo twice with the machine's own PyTensor cache: the second run is warm (the
        # target), the first is cold only on a machine that never compiled the demo's model.
        demo_args = {"draws": 50, "tune": 50, "chains": 2} if self.quick else {}
        runs = {}
        for phase in ("first", "second"):
            print(f"  risklab demo ({phase} run) ...", flush=True)
            runs[phase] = run_isolated("caching", "demo_case", demo_args, timeout=self.args.timeout)
        out["demo"] = runs
        if not self.quick and "error" not in runs["second"]:
            verdict = "met" if runs["second"]["demo_s"] <= 60.0 else "MISSED"
            print(
                f"  risklab demo, second run: {runs['second']['demo_s']:.0f} s (≤ 60 s {verdict})"
            )
        rows = []
        for name, runs in out.items():
            for phase, r in runs.items():
                rows.append(
                    {
                        "what": name,
                        "phase": phase,
                        "seconds": r.get("compile_s", r.get("demo_s")),
                        "first": r.get("first_draws_s"),
                        "sample": r.get("compile_and_sample_s"),
                        "error": last_line(r["error"]) if "error" in r else "",
                    }
                )
        print(
            table(
                rows,
                [
                    ("what", "what", ""),
                    ("phase", "phase", ""),
                    ("seconds", "compile or demo s", ".1f"),
                    ("first", "first draws s", ".1f"),
                    ("sample", "demo compile+sample s", ".0f"),
                    ("error", "error", ""),
                ],
            )
        )
        return out

    def run(self, sections: list[str]) -> dict[str, Any]:
        start = time.perf_counter()
        for name in sections:
            print(f"== {name} " + "=" * (60 - len(name)), flush=True)
            section_start = time.perf_counter()
            try:
                result = getattr(self, name)()
            except Exception as exc:  # a broken section must not lose the others
                result = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"  section failed: {result['error']}")
            result["section_s"] = time.perf_counter() - section_start
            self.record["sections"][name] = result
            self.save()
        self.record["suite_s"] = time.perf_counter() - start
        self.save()
        print(f"wrote {self.path} ({self.record['suite_s']:.0f} s)")
        return self.record


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing, not finite or ``b`` is zero."""
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return None
    return a / b


def axis_label(axis: str, case: dict[str, Any]) -> str:
    if axis == "listings":
        return f"{case['total_listings']:.0e} listings"
    if axis == "traders":
        return f"{case['n_traders']:.0e} traders"
    return f"{case['n_categories']}×{case['n_periods']}"


def recommend(results: dict[str, Any]) -> dict[str, str]:
    """The default sampler: the highest ESS per second of sampling among fits that passed the
    convergence gate without divergences; ties (within 10%) go to the lower total wall time."""
    ok = {
        name: r
        for name, r in results.items()
        if "error" not in r and "skipped" not in r and r.get("gate_passed") and not r["divergences"]
    }
    if not ok:
        return {"sampler": "nutpie", "why": "no sampler passed the gate; nutpie kept as default"}
    best_ess = max(r["ess_per_s"] for r in ok.values())
    close = {n: r for n, r in ok.items() if r["ess_per_s"] >= 0.9 * best_ess}
    name = min(close, key=lambda n: close[n]["stages"]["compile"] + close[n]["stages"]["sampling"])
    r = ok[name]
    return {
        "sampler": name,
        "why": (
            f"{r['ess_per_s']:.1f} ESS/s (best {best_ess:.1f}), compile+sample "
            f"{r['stages']['compile'] + r['stages']['sampling']:.0f} s, gate passed, "
            f"0 divergences; candidates that passed: {', '.join(sorted(ok))}"
        ),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite", description="risklab's benchmark suite (issue #10)."
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few draws")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--repeats", type=int, default=1, help="flagship and Stan runs (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument(
        "--scaling-draws",
        type=int,
        default=500,
        help="draws and warm-up per chain of the scaling fits in full mode (default 500)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument(
        "--compile-cache",
        action="store_true",
        help="caching: also time compilation cold vs warm for numba, jax and C (~10 min more)",
    )
    parser.add_argument(
        "--stan-cache",
        default=None,
        help="keep the compiled Stan model in this directory and reuse it (default: compile)",
    )
    parser.add_argument("--results-dir", default=None, help="default benchmarks/results")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    chosen = SECTIONS if args.only is None else tuple(s.strip() for s in args.only.split(","))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = sorted((set(chosen) | skip) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.sections = [s for s in SECTIONS if s in chosen and s not in skip]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suite = Suite(args)
    machine = suite.record["machine"]
    print(
        f"risklab benchmark suite ({suite.record['mode']}): sections {', '.join(args.sections)}; "
        f"{usable_cores()} cores, load {machine['load_average_1min']}, commit "
        f"{suite.record['commit'][:10]}{' (dirty)' if suite.record.get('dirty') else ''}"
    )
    if machine["load_average_1min"] and machine["load_average_1min"] > 1.5 * usable_cores():
        print("WARNING: the machine is busy; timings will be inflated and noisy.")
    if args.dry_run:
        print(f"sampling {suite.sampling}; marketplace {suite.market}")
        for axis, cases in scaling.plan(quick=args.quick).items():
            print(f"scaling {axis}: {[axis_label(axis, c) for c in cases]}")
        return 0
    suite.run(args.sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
