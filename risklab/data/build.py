"""Build a submission directory from public data, with a manifest of where every number came from.

:func:`build_submission` combines

- **listing counts** per category and month (``listings.csv`` format; the platform's own data,
  obtained by the user or requested under Art. 40 DSA), optionally with ``review_hours``;
- the platform's **own assessment**: name, risk scale, claims, repeat-offender policy (the
  ``submission.toml`` sections; the reporting period and claims may be left out);
- a **Transparency Database** aggregate (:func:`~risklab.data.transparency_db.aggregate_tdb`):
  detections per category, month and channel;
- a **transparency report** (:func:`~risklab.data.templates.read_transparency_report`):
  moderators (→ review hours), complaints (→ appeals), published recall (→ claimed detection
  rate), and detections when no database aggregate is given;

into a submission in the format of DESIGN.md §4.1 (``<out>/submission/``, loadable with
:func:`~risklab.data.load_submission`) and ``<out>/manifest.json``. The manifest names, for
every value written, its source and how it was derived, lists every assumption with its value,
and every number dropped (categories or months outside the listings grid) or left out.

Rules that avoid silent zeros:

- a month of the grid that no database dump covers is an error; partly covered months are
  warned about in the manifest;
- a channel never seen in the data is left out (not written as zeros); a channel the report
  leaves empty for a category is left out with a warning;
- review hours, appeals and claimed detection rates derived from the report say so, with the
  assumption used, in the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from risklab._version import __version__
from risklab.data._build_steps import (
    Prov,
    appeals_table,
    as_report,
    as_tdb,
    claims_list,
    cross_check,
    detections_from_report,
    detections_from_tdb,
    json_default,
    read_assessment,
    read_listings,
    review_hours,
)
from risklab.data.submission import Submission
from risklab.data.templates import ReviewAssumptions, TransparencyReport
from risklab.data.transparency_db import TdbAggregate, write_files

__all__ = ["BuildResult", "build_submission"]

_LISTINGS = "listings.csv"


@dataclass
class BuildResult:
    """What :func:`build_submission` wrote.

    Attributes
    ----------
    submission : Submission
        The validated submission.
    directory : Path
        ``<out>/submission``.
    manifest_path : Path
        ``<out>/manifest.json``.
    manifest : dict
        Its content.
    """

    submission: Submission
    directory: Path
    manifest_path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """Warnings recorded in the manifest."""
        return list(self.manifest.get("warnings", []))


# ------------------------------------------------------------------------------------- build
def build_submission(
    out: str | os.PathLike[str],
    *,
    listings: pd.DataFrame | str | os.PathLike[str],
    assessment: dict[str, Any] | str | os.PathLike[str],
    tdb: TdbAggregate | str | os.PathLike[str] | None = None,
    report: TransparencyReport
    | str
    | os.PathLike[str]
    | Sequence[str | os.PathLike[str]]
    | None = None,
    review: ReviewAssumptions | None = None,
    appeals: bool = True,
    partial_reversals_overturned: bool = False,
    claims_from_report: bool = True,
    overwrite: bool = False,
) -> BuildResult:
    """Combine public data into a submission directory plus a provenance manifest.

    Parameters
    ----------
    out : path-like
        Output directory: the submission goes to ``out/submission``, the manifest to
        ``out/manifest.json``.
    listings : pandas.DataFrame or path-like
        ``category, period, listings`` and optionally ``review_hours`` (``listings.csv``
        format). Defines the categories and months of the submission.
    assessment : dict or path-like
        The platform's assessment as a TOML file (or dict) with the sections of
        ``submission.toml``: ``[platform]`` ``name`` (``period_start``/``period_end`` optional:
        default the months of ``listings``), ``[scale]`` (required), ``[[claims]]`` (optional:
        a category without a claim gets the detected share, as platforms score risk, marked
        *derived* in the manifest), ``[policy]`` (optional).
    tdb : TdbAggregate or path-like, optional
        Transparency Database aggregate (or a directory written by ``risklab ingest tdb``).
        Source of ``detections.csv`` when given.
    report : TransparencyReport, path-like or sequence of path-like, optional
        Transparency report (an extract directory written by ``risklab ingest report``, the
        template files, or a :class:`TransparencyReport`). Source of review hours (if
        ``listings`` has none), appeals, claimed detection rates, and of detections when
        ``tdb`` is not given (spread evenly over months).
    review : ReviewAssumptions, optional
        Moderators → review hours (default :class:`ReviewAssumptions`).
    appeals : bool, default True
        Write ``appeals.csv`` from the report's complaints against removals.
    partial_reversals_overturned : bool, default False
        Count partially reversed decisions as overturned.
    claims_from_report : bool, default True
        Use the report's published recall as ``detection_rate`` of claims that have none.
    overwrite : bool, default False
        Replace existing output files.

    Returns
    -------
    BuildResult

    Raises
    ------
    SubmissionError
        If an input is invalid, a month is not covered, a needed figure is a gap, or the
        assembled submission fails validation (nothing is written then).
    FileExistsError
        If output files exist and ``overwrite`` is False.
    """
    prov = Prov()
    review = review or ReviewAssumptions()
    df = read_listings(listings, prov)
    doc = read_assessment(assessment, prov)
    tdb_ = as_tdb(tdb)
    rep = as_report(report)
    if tdb_ is None and rep is None:
        raise ValueError(
            "give tdb= (Transparency Database aggregate) and/or report= "
            "(transparency report): detections need one of them"
        )
    cats = sorted(df["category"].astype(str).unique())
    periods = sorted(df["period"].astype(str).unique())
    prov.column(
        _LISTINGS, "listings", "supplied by the user (platform data, e.g. an Art. 40 request)"
    )
    if tdb_ is not None:
        prov.inputs["transparency_database"] = {
            "platform": tdb_.platform,
            "files": tdb_.inputs,
            "settings": tdb_.settings,
            "summary": tdb_.summary(),
        }
        det = detections_from_tdb(tdb_, cats, periods, prov)
    else:
        assert rep is not None
        det = detections_from_report(rep, cats, periods, prov)
    if rep is not None:
        prov.inputs["transparency_report"] = {
            "provider": rep.provider,
            "service": rep.service,
            "reporting_period": rep.reporting_period,
            "parts": rep.parts,
            "files": rep.inputs,
            "gaps": len(rep.gaps),
        }
    df = review_hours(df, rep, review, prov)
    platform = dict(doc["platform"])
    platform.setdefault("period_start", periods[0])
    platform.setdefault("period_end", periods[-1])
    claims = claims_list(doc, cats, df, det, rep, claims_from_report, prov)
    tables: dict[str, pd.DataFrame] = {"listings": df, "detections": det}
    if rep is not None and appeals:
        app = appeals_table(rep, det, periods, partial_reversals_overturned, prov)
        if app is not None:
            tables["appeals"] = app
    sub = Submission.from_dataframes(
        platform=platform, scale=doc["scale"], claims=claims, policy=doc.get("policy"), **tables
    )
    cross = cross_check(tdb_, rep) if (tdb_ is not None and rep is not None) else []
    for r in df.itertuples(index=False):
        prov.value(
            _LISTINGS,
            {"category": r.category, "period": r.period},
            "listings",
            int(r.listings),
            "listings",
            "supplied",
        )
    manifest = {
        "format": "risklab build manifest",
        "version": 1,
        "risklab_version": __version__,
        "submission": {
            "directory": "submission",
            "platform": sub.platform.name,
            "period_start": sub.platform.period_start,
            "period_end": sub.platform.period_end,
            "categories": sub.categories,
            "periods": sub.periods,
            "channels": sub.channels,
            "tables": ["listings", "detections", *sub.data.attrs["tables_present"]],
            "input_sha256": sub.input_sha256,
        },
        "inputs": prov.inputs,
        "columns": prov.columns,
        "assumptions": prov.assumptions,
        "warnings": prov.warnings,
        "dropped": prov.dropped,
        "cross_check": cross,
        "values": prov.values,
    }
    root = Path(out)
    sub_dir = root / "submission"
    manifest_path = root / "manifest.json"
    if manifest_path.exists() and not overwrite:
        raise FileExistsError(
            f"refusing to overwrite {manifest_path} (use --force / overwrite=True)"
        )
    sub.to_directory(sub_dir, overwrite=overwrite)
    data = (
        json.dumps(manifest, indent=2, ensure_ascii=False, default=json_default) + "\n"
    ).encode()
    write_files(root, {"manifest.json": data}, overwrite=True)
    return BuildResult(sub, sub_dir, manifest_path, manifest)
