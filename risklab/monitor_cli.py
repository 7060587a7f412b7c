"""The ``risklab monitor`` command: are the platform's binding commitments being met?

::

    risklab monitor PATH --commitments FILE [--kpis FILE] [--new-period DIR] [--evidence DIR]
                    [--out DIR] [--force] [--seed N] [--draws N --tune N --chains N]
                    [--sampler S] [--prob P]

``PATH`` is a submission directory or ``.zip`` spanning the commitments' effective dates (fitted
with a :class:`~risklab.monitoring.MonitoringModel`; the fit is saved as ``posterior.nc``), or a
``posterior.nc`` written by an earlier ``risklab monitor`` (loaded, not refitted: the commitments
travel with it, so ``--commitments`` is optional and, when given, must name the same ones).
Everything that can be checked before the fit is: the commitments file
(:func:`~risklab.monitoring.load_commitments`, then against the submission), ``--kpis`` (its
columns, KPI names, periods and categories), ``--new-period`` (a submission directory holding
only the later month(s), loaded with :func:`~risklab.data.load_submission`) and the output
directory.

Writes into ``--out`` (default ``monitoring-out``), staged and moved into place file by file:
``monitoring.csv`` (one row per commitment), ``monitoring_by_category.csv``,
``monitoring_trajectory.csv``, ``posterior.nc`` (when fitted here), ``monitoring_report.html``
(self-contained), ``monitoring_report.md`` and its PNG figures (``monitoring_status.png``,
``monitoring_trend_NN_<name>.png``, ``convergence_rank.png``); with ``--kpis`` also ``kpis.csv``
and ``monitoring_kpis.png``; with ``--new-period`` ``early_warning.csv`` and
``early_warning_figures.csv``. Every CSV has a ``converged`` column.

Exit codes: 0 success; 2 invalid input (the message names the file, commitment and key; nothing
is written); 3 the fit did not pass the convergence gate (files written, marked unconverged);
1 anything else. Wire into :mod:`risklab.cli` with :func:`add_monitor_parser` and
:func:`run_monitor`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from risklab._cli_errors import EXIT_OK, EXIT_UNCONVERGED, run_guarded

__all__ = [
    "DEFAULT_OUT",
    "MONITOR_FILES",
    "OPTIONAL_MONITOR_FILES",
    "add_monitor_parser",
    "run_monitor",
]

#: Output directory when ``--out`` is not given.
DEFAULT_OUT = "monitoring-out"
#: Files every run writes (plus one ``monitoring_trend_NN_<name>.png`` per commitment).
MONITOR_FILES = (
    "monitoring.csv",
    "monitoring_by_category.csv",
    "monitoring_trajectory.csv",
    "monitoring_report.html",
    "monitoring_report.md",
    "monitoring_status.png",
    "convergence_rank.png",
)
#: Files written only with ``--kpis`` / ``--new-period``; with ``--force`` a stale one from an
#: earlier run is removed.
OPTIONAL_MONITOR_FILES = (
    "kpis.csv",
    "monitoring_kpis.png",
    "early_warning.csv",
    "early_warning_figures.csv",
)
_TREND_GLOB = "monitoring_trend_*.png"
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _say(message: str) -> None:
    print(f"risklab monitor: {message}", file=sys.stderr, flush=True)


class _Invalid(Exception):
    """Invalid command-line input (exit code 2)."""


def add_monitor_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``monitor`` on ``subparsers`` (the object ``add_subparsers`` returned)."""
    from risklab.cli import _add_fit_options

    p = subparsers.add_parser(
        "monitor",
        help="monitor binding commitments: change, P(target met), counterfactual, report",
        description="Fit the platform model with an interrupted time series at each "
        "commitment's effective date and report, per commitment, the change, P(improved), "
        "P(target met) and the counterfactual without it.",
    )
    p.add_argument("path", help="submission directory/.zip, or posterior.nc from 'monitor'")
    p.add_argument(
        "--commitments", default=None, help="commitments file (TOML); required for a submission"
    )
    p.add_argument("--kpis", default=None, help="KPIs the platform reported (kpis.csv)")
    p.add_argument(
        "--new-period",
        default=None,
        help="submission directory/.zip holding only later month(s): early warning",
    )
    p.add_argument("--evidence", default=None, help="regulator evidence (submission only)")
    _add_fit_options(p)
    return p


def run_monitor(args: argparse.Namespace) -> int:
    """Run ``risklab monitor``; returns the exit code (0, 1, 2 or 3), never raises."""
    from risklab.cli import UsageError
    from risklab.models import ModelFileError
    from risklab.monitoring import CommitmentError

    return run_guarded(
        _cmd_monitor,
        args,
        say=_say,
        invalid=(CommitmentError, ModelFileError, UsageError, _Invalid, FileExistsError),
        interrupted="interrupted; the output directory was left as it was",
    )


def _existing_outputs(out: Path) -> list[str]:
    if not out.is_dir():
        return []
    names = [n for n in MONITOR_FILES + OPTIONAL_MONITOR_FILES if (out / n).exists()]
    return names + sorted(p.name for p in out.glob(_TREND_GLOB))


def _check_writable(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    clashes = _existing_outputs(out)
    if clashes and not force:
        raise FileExistsError(
            f"{out} already holds {', '.join(clashes[:6])}; pass --force to replace them"
        )


def _is_results_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".nc"


def _same_commitments(given, stored) -> bool:
    return [c.to_dict() for c in given] == [c.to_dict() for c in stored]


def _precheck_kpis(path: str, model) -> None:
    """Check ``--kpis`` before the fit against the model's variables (no sampling)."""
    import xarray as xr

    from risklab.monitoring.kpis import load_kpis

    names = [str(n) for n in model.model.named_vars]
    stub = SimpleNamespace(
        submission=model.submission, posterior=xr.Dataset({n: ((), 0.0) for n in names})
    )
    load_kpis(path, stub)


def _precheck_new(new_submission, fitted_data) -> None:
    """Check the new period's categories, channels and periods against the fitted window."""
    from risklab.dims import CATEGORY, PERIOD
    from risklab.monitoring.early_warning import check_new_submission

    check_new_submission(
        new_submission.data,
        [str(c) for c in fitted_data[CATEGORY].values],
        [str(c) for c in fitted_data["channel"].values],
        [str(p) for p in fitted_data[PERIOD].values],
    )


def _cmd_monitor(args: argparse.Namespace) -> int:
    from risklab.cli import UsageError, _load, fit_from_args
    from risklab.monitoring import (
        MonitoringModel,
        load_commitments,
        monitor,
        validate_commitments,
    )

    if not 0 < args.prob < 1:
        raise UsageError(f"--prob must be between 0 and 1, got {args.prob}")
    path, out = Path(args.path), Path(args.out or DEFAULT_OUT)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    for option in ("kpis", "new_period"):
        value = getattr(args, option)
        if value is not None and not Path(value).exists():
            raise UsageError(f"--{option.replace('_', '-')} {value}: no such file or directory")
    commitments = load_commitments(args.commitments) if args.commitments else None
    _check_writable(out, force=args.force)
    fitted_here = not _is_results_file(path)
    if fitted_here:
        if commitments is None:
            raise UsageError("monitoring a submission needs --commitments FILE")
        submission = _load(str(path), args.evidence)
        resolved = validate_commitments(commitments, submission.data, source=args.commitments)
        model = MonitoringModel(submission, resolved)
        data = submission.data
    else:
        if args.evidence:
            raise UsageError("--evidence applies to a submission, not to a posterior file")
        model = MonitoringModel.load(path)
        data = model.submission.data
        if commitments is not None:
            resolved = validate_commitments(commitments, data, source=args.commitments)
            if not _same_commitments(resolved, model.commitments):
                raise _Invalid(
                    f"{args.commitments}: the commitments differ from those {path} was fitted "
                    "with; omit --commitments to use the stored ones, or refit the submission"
                )
    new_submission = None
    if args.new_period:
        from risklab.data import load_submission

        new_submission = load_submission(args.new_period)
        _precheck_new(new_submission, data)
    if args.kpis and fitted_here:
        _precheck_kpis(args.kpis, model)
    if fitted_here:

        def factory(sub, *, sampler_config):
            return MonitoringModel(sub, resolved, sampler_config=sampler_config)

        model = fit_from_args(submission, args, model_factory=factory)
    result = monitor(model, prob=args.prob)
    kpi_table = warning = None
    if args.kpis:
        from risklab.monitoring.kpis import compare_kpis, load_kpis

        kpi_table = compare_kpis(model, load_kpis(args.kpis, model), prob=args.prob)
    if new_submission is not None:
        from risklab.monitoring.early_warning import early_warning

        _say(f"early warning on {', '.join(str(p) for p in new_submission.periods)} ...")
        warning = early_warning(model, new_submission, prob=args.prob, random_seed=args.seed)
    written = _publish(
        model, result, kpi_table, warning, out, force=args.force, save_fit=fitted_here
    )
    _summarise(result, kpi_table, warning)
    _say("wrote " + ", ".join(str(p) for p in written))
    if not result.converged:
        _say(
            "WARNING: the fit did not pass the convergence gate; the monitoring results are "
            "marked unconverged (column 'converged', banner in the report) and must not be "
            "presented as findings"
        )
        return EXIT_UNCONVERGED
    return EXIT_OK


def _write_csv(frame, path: Path, converged: bool) -> None:
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype).startswith("str"):
            frame[column] = frame[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_PREFIXES) else v
            )
    if "converged" not in frame.columns:
        frame["converged"] = converged
    frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def _publish(model, result, kpi_table, warning, out: Path, *, force: bool, save_fit: bool):
    from risklab._atomic import publish_directory
    from risklab.report.monitoring import build_monitoring_report

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".risklab-staging-", dir=out))
    try:
        converged = result.converged
        _write_csv(result.table, staging / "monitoring.csv", converged)
        _write_csv(result.by_category, staging / "monitoring_by_category.csv", converged)
        _write_csv(result.trajectory, staging / "monitoring_trajectory.csv", converged)
        if kpi_table is not None:
            _write_csv(kpi_table, staging / "kpis.csv", converged)
        if warning is not None:
            _write_csv(warning.table, staging / "early_warning.csv", converged)
            _write_csv(warning.figures, staging / "early_warning_figures.csv", converged)
        if save_fit:
            model.save(staging / "posterior.nc")
        html, markdown, figures = build_monitoring_report(
            model, result, kpis=kpi_table, warning=warning
        )
        for name, figure in figures.items():  # PNG names: never a CSV, report or .nc name
            (staging / name).write_bytes(figure.png)
        (staging / "monitoring_report.md").write_text(markdown, encoding="utf-8")
        (staging / "monitoring_report.html").write_text(html, encoding="utf-8")
        written = publish_directory(staging, out, force=force)
        stale = [out / n for n in OPTIONAL_MONITOR_FILES] + list(out.glob(_TREND_GLOB))
        for path in stale:
            if path not in written and path.exists():
                path.unlink()  # left by an earlier run (only reachable with force)
        return written
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and out.exists() and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _summarise(result, kpi_table, warning) -> None:
    from risklab.monitoring.quantities import quantity

    _say(
        f"{len(result.table)} commitment(s); value at the target period, median "
        f"({result.prob:.0%} interval):"
    )
    for r in result.table.itertuples(index=False):
        unit = quantity(r.quantity).unit

        def fmt(x: float, unit: str = unit) -> str:
            return f"{100 * x:.3g}%" if unit == "share" else f"{x:.3g}"

        p_text = (
            f"P(target met) {r.p_target_met:.2f}"
            if r.p_target_met == r.p_target_met
            else f"P(improved) {r.p_improved:.2f}"
        )
        print(
            f"  {r.commitment} ({r.quantity} from {r.effective}): {r.status} — {p_text}; "
            f"{r.target_by}: {fmt(r.value_median)} ({fmt(r.value_low)}-{fmt(r.value_high)}), "
            f"without it {fmt(r.counterfactual_median)}"
        )
    if kpi_table is not None:
        flatter = int(kpi_table["flatters"].astype(bool).sum())
        print(f"  KPIs: {flatter} of {len(kpi_table)} reported figures flatter the platform")
    if warning is not None:
        for r in warning.table.itertuples(index=False):
            print(f"  early warning {r.period}: {r.commitment}: {r.flag}")
