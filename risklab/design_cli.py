"""The ``risklab plan-audit`` command: how many random audit checks would settle the question?

::

    risklab plan-audit PATH [--categories a,b] [--sample-sizes 50,100,200,400]
                            [--target-power 0.8] [--threshold 0.95] [--periods all|last]
                            [--out DIR] [--force] [--seed N]

``PATH`` is a ``posterior.nc`` written by ``risklab assess`` (loaded, no refit; outputs go next to
it unless ``--out`` is given) or a submission directory/.zip (fitted as ``risklab assess`` does,
with ``--evidence``, ``--draws``, ``--tune``, ``--chains``, ``--sampler``; ``--out`` required).
Writes ``audit_plan.csv`` and ``audit_power.png`` atomically.

Exit codes: 0 success; 2 invalid input (unknown category, bad sizes, unreadable file; nothing
written); 3 the fit did not pass the convergence gate (files still written, marked
``converged = False``); 1 anything else.

Wire into :mod:`risklab.cli` with :func:`add_plan_audit_parser` and :func:`run_plan_audit`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from risklab._cli_errors import EXIT_OK, EXIT_UNCONVERGED, run_guarded

__all__ = ["PLAN_FILES", "add_plan_audit_parser", "run_plan_audit"]

#: Files written by ``risklab plan-audit``.
PLAN_FILES = ("audit_plan.csv", "audit_power.png")


class _Invalid(Exception):
    """Invalid command-line input (exit code 2)."""


def _say(message: str) -> None:
    print(f"risklab plan-audit: {message}", file=sys.stderr, flush=True)


def add_plan_audit_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``plan-audit`` on ``subparsers`` (from ``parser.add_subparsers``)."""
    from risklab.cli import _add_sampler_options

    p = subparsers.add_parser(
        "plan-audit",
        help="power of random audits per category and the sample size to use",
        description="Pre-posterior audit design: for each number of random audit checks, the "
        "probability that the audit would show P(U > 1) >= threshold.",
    )
    p.add_argument("path", help="posterior.nc from `risklab assess`, or a submission dir/.zip")
    p.add_argument("--categories", default=None, help="comma-separated categories (default all)")
    p.add_argument(
        "--sample-sizes",
        default="50,100,200,400,800,1600",
        help="comma-separated numbers of audit checks (default 50,100,200,400,800,1600)",
    )
    p.add_argument("--target-power", type=float, default=0.8, help="default 0.8")
    p.add_argument("--threshold", type=float, default=0.95, help="P(U > 1) to reach (0.95)")
    p.add_argument(
        "--periods", default="all", help="periods the audit samples: all (default), last, or a,b"
    )
    p.add_argument("--refine", action="store_true", help="bisect to the smallest size")
    p.add_argument("--out", default=None, help="output directory (default: beside posterior.nc)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--seed", type=int, default=None, help="seed (default: from the fit's seed)")
    fit = p.add_argument_group("fitting a submission (ignored for posterior.nc)")
    fit.add_argument("--evidence", default=None, help="regulator evidence directory or .zip")
    _add_sampler_options(fit)
    fit.add_argument("--fit-seed", type=int, default=20250101, help="seed of the fit (20250101)")
    return p


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise _Invalid(f"empty list: {text!r}")
    return items


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in _split(text)]
    except ValueError:
        raise _Invalid(f"--sample-sizes must be comma-separated integers, got {text!r}") from None
    if any(m < 1 for m in sizes) or len(set(sizes)) != len(sizes):
        raise _Invalid(f"--sample-sizes must be distinct positive integers, got {text!r}")
    return sizes


def _load(args):
    """The fitted model of a posterior.nc, or the submission to fit; and the output directory."""
    from risklab.models import ModelFileError, PlatformRiskModel

    path = Path(args.path)
    if path.is_file() and path.suffix == ".nc":
        try:
            model = PlatformRiskModel.load(path)
        except ModelFileError as exc:
            raise _Invalid(str(exc)) from exc
        return model, model.submission, Path(args.out) if args.out else path.parent
    if args.out is None:
        raise _Invalid("plan-audit on a submission needs --out DIR")
    from risklab.data import load_submission

    return None, load_submission(path, evidence=args.evidence), Path(args.out)


def _fit(submission, args):
    """Fit a submission as ``risklab assess`` does."""
    from risklab.cli import UsageError, fit_from_args

    try:
        return fit_from_args(submission, args, seed=args.fit_seed)
    except UsageError as exc:
        raise _Invalid(str(exc)) from exc


def _cmd(args) -> int:
    import matplotlib.pyplot as plt

    from risklab._atomic import publish_directory
    from risklab.design import plan_audit
    from risklab.plotting.design import plot_audit_power

    categories = _split(args.categories)
    sizes = _sizes(args.sample_sizes)
    periods = args.periods if args.periods in ("all", "last") else _split(args.periods)
    for name in ("target_power", "threshold"):
        value = getattr(args, name)
        if not 0.0 < value < 1.0:
            raise _Invalid(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
    model, submission, out = _load(args)
    _check_writable(out, force=args.force)
    unknown = [c for c in categories or [] if c not in submission.categories]
    if unknown:
        raise _Invalid(f"--categories: unknown {unknown}; known: {submission.categories}")
    if periods not in ("all", "last"):
        missing = [p for p in periods if p not in submission.periods]
        if missing:
            raise _Invalid(f"--periods: unknown {missing}; known: {submission.periods}")
    if model is None:
        model = _fit(submission, args)
    try:
        plan = plan_audit(
            model,
            categories=categories,
            sample_sizes=sizes,
            target_power=args.target_power,
            threshold=args.threshold,
            periods=periods,
            refine=args.refine,
            random_seed=args.seed,
        )
    except ValueError as exc:  # plan_audit's documented bad-input error
        raise _Invalid(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".risklab-staging-", dir=out))
    try:
        plan.to_csv(staging / "audit_plan.csv")
        ax = plot_audit_power(plan)
        ax.figure.savefig(staging / "audit_power.png", dpi=120, metadata={"Software": None})
        plt.close(ax.figure)
        written = publish_directory(staging, out, force=args.force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for cat, size in plan.recommended.items():
        text = f"{size} random audit checks" if size else "not reachable in the range"
        _say(f"{cat}: {text} (power {plan.target_power} of P(U > 1) >= {plan.threshold})")
    for warning in plan.warnings:
        _say("WARNING: " + warning)
    _say("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK if plan.converged else EXIT_UNCONVERGED


def _check_writable(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    clashes = [name for name in PLAN_FILES if (out / name).exists()]
    if clashes and not force:
        raise FileExistsError(f"{out} already holds {', '.join(clashes)}; pass --force")


def run_plan_audit(args: argparse.Namespace) -> int:
    """Handler of ``risklab plan-audit``: run it and map errors to exit codes."""
    return run_guarded(
        _cmd,
        args,
        say=_say,
        invalid=(_Invalid, FileExistsError),
        interrupted="interrupted; the output directory was left as it was",
    )
