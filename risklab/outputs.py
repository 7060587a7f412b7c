"""Write an assessment's files: findings.csv, posterior.nc, report.md, report.html, figures.

Everything is written into a staging directory first and then moved into place file by file
with atomic renames, so a failure or interruption leaves the output directory as it was, and
nothing is overwritten without ``force``. The report's figures are written as PNG files beside
``report.md`` (which references them) and are embedded in ``report.html`` (which needs nothing
else).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import xarray as xr

from risklab._atomic import publish_directory
from risklab.assess import Findings
from risklab.models.base import RiskModel
from risklab.report import Report, Section, build_report, render_html, render_markdown
from risklab.report.content import ALWAYS_FIGURES, OPTIONAL_FIGURES

__all__ = ["OPTIONAL_OUTPUT_FILES", "OUTPUT_FILES", "check_writable", "write_assessment"]

#: Files :func:`write_assessment` always produces.
OUTPUT_FILES = (
    "findings.csv",
    "posterior.nc",
    "report.md",
    "report.html",
    *ALWAYS_FIGURES,
)
#: Files written only when the data support them (``enforcement.png``: traders.csv and a
#: ``[policy]``). With ``force``, a stale optional file from an earlier run is removed.
OPTIONAL_OUTPUT_FILES = OPTIONAL_FIGURES


def check_writable(out: str | os.PathLike, *, force: bool) -> None:
    """Raise :class:`FileExistsError` early when outputs exist and ``force`` is not set."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    clashes = [name for name in OUTPUT_FILES + OPTIONAL_OUTPUT_FILES if (out / name).exists()]
    if clashes and not force:
        raise FileExistsError(
            f"{out} already holds {', '.join(clashes)}; pass --force to replace them"
        )


def write_assessment(
    fitted: RiskModel,
    findings: Findings,
    out: str | os.PathLike,
    *,
    force: bool = False,
    extra_sections: Iterable[Section] = (),
    prior: xr.DataTree | xr.Dataset | None = None,
    report: Report | None = None,
) -> list[Path]:
    """Write all outputs of an assessment into ``out``.

    Parameters
    ----------
    fitted : RiskModel
        The fitted model (its results are saved as ``posterior.nc``).
    findings : Findings
        Output of :func:`risklab.assess`.
    out : path
        Output directory (created if needed).
    force : bool
        Replace existing output files.
    extra_sections : iterable of Section
        Further report sections (attribution, scenarios, prior sensitivity, ...); their figures
        are written as PNG files too. See :mod:`risklab.report.content`.
    prior : DataTree or Dataset, optional
        Prior draws for the report's prior-vs-posterior comparison (default: drawn from the
        fitted model, seeded from the fit's seed).
    report : Report, optional
        A report already built by :func:`risklab.report.build_report` from these findings;
        ``extra_sections`` and ``prior`` are then not used.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out)
    check_writable(out, force=force)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".risklab-staging-", dir=out))
    try:
        findings.to_csv(staging / "findings.csv")
        fitted.save(staging / "posterior.nc")
        if report is None:
            report = build_report(findings, fitted, extra_sections=extra_sections, prior=prior)
        reserved = {"findings.csv", "posterior.nc", "report.md", "report.html"}
        for figure in report.figures:
            if figure.name in reserved:
                raise ValueError(f"figure name {figure.name!r} is reserved")
            (staging / figure.name).write_bytes(figure.png)
        (staging / "report.md").write_text(render_markdown(report), encoding="utf-8")
        (staging / "report.html").write_text(render_html(report), encoding="utf-8")
        written = publish_directory(staging, out, force=force)
        for name in OPTIONAL_OUTPUT_FILES:
            stale = out / name
            if stale not in written and stale.exists():
                stale.unlink()  # left by an earlier run (only reachable with force)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
