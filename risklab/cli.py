"""The ``risklab`` command line.

Exit codes: 0 success; 2 invalid input (a message naming file, row and column; no traceback);
3 the sampler did not converge (results are still written, marked unconverged); 1 anything else.
Set ``RISKLAB_DEBUG=1`` to see tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

from risklab._cli_errors import (  # the exit codes are part of this module's interface
    EXIT_ERROR,  # noqa: F401
    EXIT_INVALID,  # noqa: F401
    EXIT_OK,
    EXIT_UNCONVERGED,
    run_guarded,
)
from risklab._version import __version__
from risklab.design_cli import add_plan_audit_parser, run_plan_audit
from risklab.ingest_cli import add_ingest_parser, run_ingest
from risklab.models.config import SamplerConfig
from risklab.monitor_cli import add_monitor_parser, run_monitor
from risklab.stress_cli import add_stress_parser, run_stress

#: Default sampler settings of every sub-command that fits: those of
#: :class:`risklab.models.SamplerConfig`, so a fit from a script and from the CLI agree.
FIT_DEFAULTS = {
    name: getattr(SamplerConfig, name) for name in ("draws", "tune", "chains", "target_accept")
}


class UsageError(Exception):
    """Invalid command-line input (exit code 2)."""


def _say(message: str) -> None:
    print(f"risklab: {message}", file=sys.stderr, flush=True)


def demo_paths() -> tuple[Path, Path]:
    """Paths of the bundled demo submission and its evidence directory."""
    root = Path(str(resources.files("risklab.data") / "datasets" / "demo"))
    return root / "submission", root / "evidence"


def _add_sampler_options(parser) -> None:
    """Draws, warm-up, chains, target acceptance and sampler (defaults: :data:`FIT_DEFAULTS`);
    ``parser`` is a parser or an argument group."""
    draws, tune, chains = FIT_DEFAULTS["draws"], FIT_DEFAULTS["tune"], FIT_DEFAULTS["chains"]
    accept = FIT_DEFAULTS["target_accept"]
    parser.add_argument("--draws", type=int, default=draws, help=f"draws per chain ({draws})")
    parser.add_argument("--tune", type=int, default=tune, help=f"warm-up per chain ({tune})")
    parser.add_argument("--chains", type=int, default=chains, help=f"chains ({chains})")
    parser.add_argument(
        "--target-accept",
        type=float,
        default=accept,
        help=f"NUTS target acceptance rate, in [0.5, 1) ({accept}); higher means smaller steps",
    )
    parser.add_argument(
        "--sampler", default="nutpie", choices=["nutpie", "pymc", "numpyro", "blackjax"]
    )


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output directory")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    parser.add_argument("--seed", type=int, default=20250101, help="random seed (default 20250101)")
    _add_sampler_options(parser)
    parser.add_argument(
        "--cores",
        type=int,
        default=None,
        help="chains run in parallel (default: the cores this process may use); "
        "does not change the numbers",
    )
    parser.add_argument(
        "--prob", type=float, default=0.90, help="credible interval mass (default 0.90)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``risklab`` command."""
    parser = argparse.ArgumentParser(
        prog="risklab",
        description="Check a marketplace's DSA Art. 34 risk assessment against the evidence.",
    )
    parser.add_argument("--version", action="version", version=f"risklab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="assess the bundled example submission end to end")
    _add_fit_options(demo)

    validate = sub.add_parser("validate", help="validate a submission directory or .zip")
    validate.add_argument("path")
    validate.add_argument("--evidence", default=None, help="regulator evidence directory or .zip")

    assess = sub.add_parser("assess", help="fit the model and assess a submission")
    assess.add_argument(
        "--scenarios", default=None, help="stress scenarios (TOML) to add to the report"
    )
    assess.add_argument(
        "--sensitivity",
        action="store_true",
        help="add prior power-scaling sensitivity to the report (slower)",
    )
    assess.add_argument("path")
    assess.add_argument("--evidence", default=None, help="regulator evidence directory or .zip")
    _add_fit_options(assess)

    simulate = sub.add_parser("simulate", help="write a simulated submission with known truth")
    simulate.add_argument("--seed", type=int, required=True)
    simulate.add_argument("--out", required=True, help="directory to create")
    simulate.add_argument("--periods", type=int, default=24)
    simulate.add_argument("--listings", type=float, default=1e8, help="total listings")
    simulate.add_argument(
        "--traders", action="store_true", help="add repeat offenders (traders.csv and a policy)"
    )
    simulate.add_argument("--force", action="store_true")
    add_ingest_parser(sub)
    add_plan_audit_parser(sub)
    add_stress_parser(sub)
    add_monitor_parser(sub)
    return parser


def _load(path: str, evidence: str | None):
    from risklab.data import load_submission

    return load_submission(path, evidence=evidence)


def fit_from_args(submission, args, *, seed: int | None = None, model_factory=None):
    """Build and fit the platform model of ``submission`` with the sampler options in ``args``.

    Shared by every sub-command that fits (``assess``, ``demo``, ``stress``, ``plan-audit``,
    ``monitor``); invalid sampler options raise :class:`UsageError` (exit code 2) before anything
    runs. ``model_factory(submission, sampler_config=...)`` builds another model than
    :class:`~risklab.PlatformRiskModel` (``monitor``: a ``MonitoringModel``).
    """
    import warnings

    from risklab.models import PlatformRiskModel, SamplerConfig

    try:
        config = SamplerConfig(
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            sampler=args.sampler,
            progressbar=sys.stderr.isatty(),
            cores=getattr(args, "cores", None),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    model = (model_factory or PlatformRiskModel)(submission, sampler_config=config)
    n_cat, n_per = len(submission.categories), len(submission.periods)
    _say(
        f"{submission.platform.name}: {n_cat} categories × {n_per} periods; "
        f"components: {', '.join(c.name for c in model.components)}"
    )
    _say(
        f"compiling and sampling ({config.chains} chains × {config.draws} draws after "
        f"{config.tune} warm-up, {config.sampler}) ..."
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(random_seed=args.seed if seed is None else seed)
    _say(f"sampled in {time.perf_counter() - start:.0f} s; {model.convergence.summary()}")
    if not model.convergence.passed:
        _say(
            "the convergence gate FAILED: rerun with a longer warm-up (--tune, now "
            f"{config.tune}) or a higher target acceptance (--target-accept 0.99, now "
            f"{config.target_accept}); a different --seed shows whether the failure is the "
            "seed's or the model's"
        )
    return model


def _run_assessment(submission, args) -> int:
    from risklab.assess import assess
    from risklab.outputs import check_writable, write_assessment
    from risklab.report.analyses import analysis_sections

    out = Path(args.out)
    check_writable(out, force=args.force)
    if not 0 < args.prob < 1:
        raise UsageError(f"--prob must be between 0 and 1, got {args.prob}")
    scenarios = None
    if getattr(args, "scenarios", None):
        from risklab.scenarios import load_scenarios, validate_scenarios

        scenarios = load_scenarios(args.scenarios)  # checked before the fit
    model = fit_from_args(submission, args)
    findings = assess(model, prob=args.prob)
    stress = sensitivity = None
    if scenarios is not None:
        from risklab.scenarios import stress_test

        has_offenders = any(c.name == "offenders" for c in model.components)
        validate_scenarios(
            scenarios,
            categories=submission.categories,
            enforcement_available=has_offenders,
            source=str(args.scenarios),
        )
        stress = stress_test(model, scenarios, prob=args.prob, keep_draws=False)
    if getattr(args, "sensitivity", False):
        from risklab.sensitivity import prior_sensitivity

        _say("prior sensitivity (power-scaling) ...")
        sensitivity = prior_sensitivity(model)
    extra = analysis_sections(model, stress=stress, sensitivity=sensitivity, prob=args.prob)
    written = write_assessment(model, findings, out, force=args.force, extra_sections=extra)
    for warning in findings.warnings:
        _say("WARNING: " + warning)
    _say("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK if findings.converged else EXIT_UNCONVERGED


def _cmd_demo(args) -> int:
    from risklab.data import load_submission

    submission_dir, evidence_dir = demo_paths()
    args.out = args.out or "demo-output"
    submission = load_submission(submission_dir, evidence=evidence_dir)
    return _run_assessment(submission, args)


def _cmd_validate(args) -> int:
    submission = _load(args.path, args.evidence)
    tables = ", ".join(["listings", "detections", *submission.data.attrs["tables_present"]])
    print(
        f"{args.path}: valid submission of {submission.platform.name} — "
        f"{len(submission.categories)} categories, {len(submission.periods)} periods, "
        f"channels {', '.join(submission.channels)}; tables: {tables}"
    )
    return EXIT_OK


def _cmd_assess(args) -> int:
    if args.out is None:
        raise UsageError("assess needs --out DIR")
    submission = _load(args.path, args.evidence)
    return _run_assessment(submission, args)


def _cmd_simulate(args) -> int:
    from risklab.data.synthetic import simulate_marketplace

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise FileExistsError(f"{out} exists and is not empty; pass --force to write into it")
    if args.periods < 1 or args.listings < 1:
        raise UsageError("--periods and --listings must be positive")
    sim = simulate_marketplace(
        seed=args.seed, n_periods=args.periods, total_listings=args.listings, traders=args.traders
    )
    sim.write(out / "submission", evidence_directory=out / "evidence")
    print(f"wrote {out / 'submission'} (with truth.json) and {out / 'evidence'}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``risklab`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {
        "demo": _cmd_demo,
        "validate": _cmd_validate,
        "assess": _cmd_assess,
        "simulate": _cmd_simulate,
        "ingest": run_ingest,
        "plan-audit": run_plan_audit,
        "stress": run_stress,
        "monitor": run_monitor,
    }[args.command]
    from risklab.scenarios import ScenarioError

    return run_guarded(
        handler,
        args,
        say=_say,
        invalid=(UsageError, FileExistsError, ScenarioError),
        interrupted="interrupted; the output directory was left as it was",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
