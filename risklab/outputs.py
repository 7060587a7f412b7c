"""Write an assessment's files: findings.csv, posterior.nc, report.md, report.html, figures.

Everything is written into a staging directory first and then moved into place file by file
with atomic renames, so a failure or interruption leaves the output directory as it was, and
nothing is overwritten without ``force``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from risklab._atomic import publish_directory
from risklab.assess import Findings
from risklab.models.base import RiskModel
from risklab.plotting import plot_enforcement, plot_prevalence_vs_claimed
from risklab.report import build_content, render_html, render_markdown

__all__ = ["OPTIONAL_OUTPUT_FILES", "OUTPUT_FILES", "check_writable", "write_assessment"]

#: Files :func:`write_assessment` always produces.
OUTPUT_FILES = (
    "findings.csv",
    "posterior.nc",
    "report.md",
    "report.html",
    "prevalence_vs_claimed.png",
)
#: Files written only when the data support them (``enforcement.png``: traders.csv and a
#: ``[policy]``). With ``force``, a stale optional file from an earlier run is removed.
OPTIONAL_OUTPUT_FILES = ("enforcement.png",)


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
    fitted: RiskModel, findings: Findings, out: str | os.PathLike, *, force: bool = False
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
        ax = plot_prevalence_vs_claimed(
            findings, thresholds=tuple(fitted.submission.scale.thresholds)
        )
        ax.figure.savefig(
            staging / "prevalence_vs_claimed.png", dpi=120, metadata={"Software": None}
        )
        plt.close(ax.figure)
        figures = {"Posterior prevalence against the platform's claim": "prevalence_vs_claimed.png"}
        if "enforcement" in findings.draws:
            ax = plot_enforcement(findings)
            ax.figure.savefig(staging / "enforcement.png", dpi=120, metadata={"Software": None})
            plt.close(ax.figure)
            figures["Repeat-offender policy: enforcement probability against the claim"] = (
                "enforcement.png"
            )
        content = build_content(findings, fitted, figures)
        (staging / "report.md").write_text(render_markdown(content), encoding="utf-8")
        (staging / "report.html").write_text(render_html(content, staging), encoding="utf-8")
        written = publish_directory(staging, out, force=force)
        for name in OPTIONAL_OUTPUT_FILES:
            stale = out / name
            if stale not in written and stale.exists():
                stale.unlink()  # left by an earlier run (only reachable with force)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
