"""The ``risklab stress`` command: evaluate stress scenarios on a fitted model.

::

    risklab stress PATH --scenarios FILE [--out DIR] [--force] [--no-draws]
                   [--evidence DIR] [--seed N --draws N --tune N --chains N --sampler S] [--prob P]

``PATH`` is a ``posterior.nc`` written by ``risklab assess`` (loaded, not refitted; the sampler
options are then ignored) or a submission directory or ``.zip`` (fitted first, as ``risklab
assess`` does; the fit is saved as ``posterior.nc`` beside the scenario files). The scenario file
is read and checked before anything is loaded, fitted or written.

Writes ``scenarios.csv``, ``scenarios_platform.csv``, ``scenarios.nc`` (unless ``--no-draws``),
``scenario_undetected.png`` and ``scenario_bands.png``, all staged and then moved into place.
Exit codes: 0 success; 2 invalid input (the message names the file, scenario and key); 3 the fit
did not pass the convergence gate (files are still written); 1 anything else.

Wire into :mod:`risklab.cli` with :func:`add_stress_parser` and :func:`run_stress`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from risklab._atomic import publish_directory
from risklab._cli_errors import EXIT_OK, EXIT_UNCONVERGED, run_guarded

__all__ = ["add_stress_parser", "run_stress"]

#: Output directory when ``--out`` is not given.
DEFAULT_OUT = "stress-output"
#: Lines of the platform-wide summary printed (the CSV files hold every scenario).
_PRINTED = 12


def _say(message: str) -> None:
    print(f"risklab stress: {message}", file=sys.stderr, flush=True)


def add_stress_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``stress`` on ``subparsers`` (the object ``add_subparsers`` returned)."""
    from risklab.cli import _add_fit_options

    stress = subparsers.add_parser(
        "stress",
        help="evaluate stress scenarios on a fitted model (posterior.nc) or a submission",
        description="Evaluate every scenario of a TOML file on every posterior draw.",
    )
    stress.add_argument("path", help="posterior.nc from 'risklab assess', or a submission")
    stress.add_argument("--scenarios", required=True, help="scenario file (TOML)")
    stress.add_argument("--evidence", default=None, help="regulator evidence (submission only)")
    stress.add_argument(
        "--no-draws", action="store_true", help="do not keep the draws (no scenarios.nc)"
    )
    _add_fit_options(stress)
    return stress


def run_stress(args: argparse.Namespace) -> int:
    """Run ``risklab stress``; returns the exit code (0, 1, 2 or 3), never raises."""
    from risklab.cli import UsageError
    from risklab.models import ModelFileError
    from risklab.scenarios import ScenarioError

    return run_guarded(
        _cmd_stress,
        args,
        say=_say,
        invalid=(ScenarioError, ModelFileError, UsageError, FileExistsError),
        interrupted="interrupted; the output directory was left as it was",
    )


def _is_submission(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() == ".zip"


def _cmd_stress(args: argparse.Namespace) -> int:
    from risklab.cli import UsageError, _load, fit_from_args
    from risklab.models import PlatformRiskModel
    from risklab.scenarios import check_stress_writable, load_scenarios, stress_test
    from risklab.scenarios import validate_scenarios as validate

    if not 0 < args.prob < 1:
        raise UsageError(f"--prob must be between 0 and 1, got {args.prob}")
    path, out = Path(args.path), Path(args.out or DEFAULT_OUT)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    scenarios = load_scenarios(args.scenarios)  # syntax, keys, types, ranges: before anything
    source = str(args.scenarios)
    fitted_here = _is_submission(path)
    check_stress_writable(out, force=args.force, extra=("posterior.nc",) if fitted_here else ())
    if fitted_here:
        submission = _load(str(path), args.evidence)
        has_offenders = any(c.name == "offenders" for c in PlatformRiskModel(submission).components)
        validate(
            scenarios,
            categories=submission.categories,
            enforcement_available=has_offenders,
            source=source,
        )
        model = fit_from_args(submission, args)
    else:
        if args.evidence:
            raise UsageError("--evidence applies to a submission, not to a posterior file")
        model = PlatformRiskModel.load(path)
        posterior = model.posterior
        validate(
            scenarios,
            categories=[str(c) for c in model.submission.categories],
            enforcement_available="enforcement" in posterior
            and "listings_after_threshold_share" in posterior,
            source=source,
        )
    result = stress_test(model, scenarios, prob=args.prob, keep_draws=not args.no_draws)
    written = _publish(result, model if fitted_here else None, out, force=args.force)
    _summarise(result)
    _say("wrote " + ", ".join(str(p) for p in written))
    if not result.converged:
        _say(
            "WARNING: the fit did not pass the convergence gate; the scenario results are "
            "marked unconverged (column 'converged') and must not be presented as findings"
        )
        return EXIT_UNCONVERGED
    return EXIT_OK


def _publish(result, model, out: Path, *, force: bool) -> list[Path]:
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".risklab-staging-", dir=out))
    try:
        result.write_into(staging)
        if model is not None:
            model.save(staging / "posterior.nc")
        return publish_directory(staging, out, force=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _summarise(result) -> None:
    totals = result.totals
    pct = f"{result.prob:.0%}"
    _say(
        f"{len(result.scenarios)} scenarios × {result.n_draws} draws in {result.elapsed:.2f} s "
        f"({result.throughput:,.0f} scenario-draws/s); platform-wide undetected illegal "
        f"listings, median ({pct} interval), change against {result.scenarios[0].name!r}:"
    )
    for _, row in totals.head(_PRINTED).iterrows():
        print(
            f"  {row['scenario']}: {row['undetected_listings_median']:,.0f} "
            f"({row['undetected_listings_low']:,.0f}-{row['undetected_listings_high']:,.0f}); "
            f"change {row['undetected_change_median']:+,.0f} "
            f"({row['undetected_change_low']:+,.0f} to {row['undetected_change_high']:+,.0f})"
        )
    if len(totals) > _PRINTED:
        print(f"  ... and {len(totals) - _PRINTED} more (scenarios_platform.csv)")
