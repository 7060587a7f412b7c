"""Steps of :func:`risklab.data.build.build_submission`: inputs, detections, review hours,
appeals, claims — each recording where its numbers came from in a :class:`Prov`.
"""

from __future__ import annotations

import calendar
import os
import tomllib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from risklab.data._tdb_sources import file_sha256
from risklab.data._templates_extract import largest_remainder
from risklab.data.errors import Problem, SubmissionError
from risklab.data.submission import Scale
from risklab.data.templates import ReviewAssumptions, TransparencyReport
from risklab.data.transparency_db import TdbAggregate
from risklab.dims import CHANNELS

__all__ = [
    "Prov",
    "appeals_table",
    "as_report",
    "as_tdb",
    "claims_list",
    "cross_check",
    "detections_from_report",
    "detections_from_tdb",
    "json_default",
    "read_assessment",
    "read_listings",
    "review_hours",
]

_ASSESSMENT_SECTIONS = ("platform", "scale", "claims", "policy")
_LISTINGS = "listings.csv"


class Prov:
    """Collects provenance: per-value records, warnings, assumptions, inputs."""

    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.assumptions: dict[str, Any] = {}
        self.inputs: dict[str, Any] = {}
        self.dropped: list[dict[str, Any]] = []
        self.columns: dict[str, dict[str, str]] = {}

    def column(self, file: str, column: str, how: str) -> None:
        self.columns.setdefault(file, {})[column] = how

    def value(
        self, file: str, key: dict[str, Any], column: str, value: Any, source: str, how: str
    ) -> None:
        self.values.append(
            {
                "file": file,
                **key,
                "column": column,
                "value": plain(value),
                "source": source,
                "how": how,
            }
        )


def plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (set, tuple)):
        return list(v)
    return str(v)


def problem(
    file: str, message: str, row: int | None = None, column: str | None = None
) -> SubmissionError:
    return SubmissionError([Problem(file, row, column, message)], file)


# ------------------------------------------------------------------------------------ inputs
def read_listings(listings: pd.DataFrame | str | os.PathLike[str], prov: Prov) -> pd.DataFrame:
    if isinstance(listings, pd.DataFrame):
        df = listings.copy()
        prov.inputs["listings"] = {"path": "<DataFrame>", "rows": len(df)}
    else:
        path = Path(listings)
        try:
            df = pd.read_csv(
                path, dtype={"category": str, "period": str}, keep_default_na=False, na_values=[""]
            )
        except (OSError, ValueError) as exc:
            raise problem(str(path), f"cannot read listings: {exc}") from exc
        prov.inputs["listings"] = {"path": str(path), "sha256": file_sha256(path), "rows": len(df)}
    required = ["category", "period", "listings"]
    missing = [c for c in required if c not in df.columns]
    unknown = [c for c in df.columns if c not in (*required, "review_hours")]
    problems = [Problem(_LISTINGS, 1, c, "missing required column") for c in missing]
    problems += [
        Problem(
            _LISTINGS,
            1,
            c,
            "unknown column; expected category, period, listings, optional review_hours",
        )
        for c in unknown
    ]
    if problems:
        raise SubmissionError(problems, "listings")
    return df


def read_assessment(assessment: dict | str | os.PathLike[str], prov: Prov) -> dict[str, Any]:
    if isinstance(assessment, dict):
        doc = dict(assessment)
        prov.inputs["assessment"] = {"path": "<dict>"}
        name = "assessment"
    else:
        path = Path(assessment)
        name = path.name
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise problem(name, f"cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise problem(name, f"not valid TOML: {exc}") from exc
        prov.inputs["assessment"] = {"path": str(path), "sha256": file_sha256(path)}
    problems = [
        Problem(name, None, k, f"unknown section; expected {', '.join(_ASSESSMENT_SECTIONS)}")
        for k in doc
        if k not in _ASSESSMENT_SECTIONS
    ]
    if not isinstance(doc.get("platform"), dict) or not doc["platform"].get("name"):
        problems.append(Problem(name, None, "platform.name", "required: the platform's name"))
    if not isinstance(doc.get("scale"), dict):
        problems.append(
            Problem(
                name,
                None,
                "scale",
                "required: the platform's risk scale "
                "(name, thresholds, labels), as in submission.toml",
            )
        )
    if problems:
        raise SubmissionError(problems, name)
    return doc


def as_tdb(tdb: TdbAggregate | str | os.PathLike[str] | None) -> TdbAggregate | None:
    if tdb is None or isinstance(tdb, TdbAggregate):
        return tdb
    return TdbAggregate.from_directory(tdb)


def as_report(
    report: TransparencyReport | str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> TransparencyReport | None:
    if report is None or isinstance(report, TransparencyReport):
        return report
    if isinstance(report, (str, os.PathLike)) and (Path(report) / "report.json").is_file():
        return TransparencyReport.from_directory(report)
    from risklab.data.templates import read_transparency_report

    return read_transparency_report(report)


def month_range(start: str, end: str) -> list[str]:
    return [str(p) for p in pd.period_range(start, end, freq="M")]


# -------------------------------------------------------------------------------- detections
def detections_from_tdb(
    tdb: TdbAggregate, cats: list[str], periods: list[str], prov: Prov
) -> pd.DataFrame:
    det = tdb.detections.copy()
    inside = det["category"].isin(cats) & det["period"].isin(periods)
    for (kind, value), n in (
        *(
            (("category", c), int(g["detected"].sum()))
            for c, g in det[~det["category"].isin(cats)].groupby("category")
        ),
        *(
            (("period", p), int(g["detected"].sum()))
            for p, g in det[det["category"].isin(cats) & ~det["period"].isin(periods)].groupby(
                "period"
            )
        ),
    ):
        prov.dropped.append(
            {"source": "tdb", kind: value, "statements": n, "why": f"{kind} not in listings.csv"}
        )
    det = det[inside]
    covered = tdb.days_covered()
    missing = [p for p in periods if covered.get(p, 0) == 0]
    if missing:
        raise problem(
            "detections.csv",
            f"no Transparency Database dump covers month(s) {', '.join(missing)} of listings.csv "
            f"(dumps cover {', '.join(sorted(covered)) or 'nothing'}); add the dumps or drop "
            "those months from listings.csv",
            column="period",
        )
    for p in periods:
        days = calendar.monthrange(int(p[:4]), int(p[5:]))[1]
        if covered[p] < days:
            prov.warnings.append(
                f"{p}: the dumps cover {covered[p]} of {days} days; detections "
                "of that month are undercounted"
            )
    channels = [c for c in CHANNELS if c in set(det["channel"])]
    for c in CHANNELS:
        if c not in channels:
            prov.warnings.append(
                f"channel {c!r}: no statement in the data; left out of "
                "detections.csv (not written as zeros)"
            )
    grid = pd.MultiIndex.from_product(
        [cats, periods, channels], names=["category", "period", "channel"]
    )
    out = det.set_index(["category", "period", "channel"])["detected"].reindex(grid, fill_value=0)
    out = out.astype("int64").reset_index()
    how = (
        f"statements of reasons of {tdb.platform!r} in the DSA Transparency Database, "
        "content type product, counted by risklab category (mapping in manifest), month of "
        "application_date and source_type"
    )
    prov.column("detections.csv", "detected", how)
    for r in out.itertuples(index=False):
        prov.value(
            "detections.csv",
            {"category": r.category, "period": r.period, "channel": r.channel},
            "detected",
            r.detected,
            "transparency_database",
            "count of statements" if r.detected else "no statement in the covered days",
        )
    return out


def detections_from_report(
    report: TransparencyReport, cats: list[str], periods: list[str], prov: Prov
) -> pd.DataFrame:
    bounds = report.period_bounds()
    if bounds is None:
        raise problem(
            "report", "the report has no reporting period; cannot place detections in months"
        )
    months = month_range(*bounds)
    outside = [p for p in periods if p not in months]
    if outside:
        raise problem(
            "detections.csv",
            f"months {', '.join(outside)} of listings.csv are outside "
            f"the report's reporting period {report.reporting_period}",
            column="period",
        )
    det = report.detections
    problems = [
        Problem(
            "detections.csv",
            None,
            "category",
            f"category {c!r} of listings.csv has no detections in the report",
        )
        for c in cats
        if c not in set(det["category"])
    ]
    if problems:
        raise SubmissionError(problems, "report")
    det = det[det["category"].isin(cats)]
    channels = []
    for ch in CHANNELS:
        sub = det[det["channel"] == ch]
        gaps = sorted(set(cats) - set(sub.loc[sub["detected"].notna(), "category"]))
        if len(sub) == 0:
            continue
        if gaps:
            prov.warnings.append(
                f"channel {ch!r} left out: the report leaves it empty for "
                f"{', '.join(gaps)} (see the report's gaps)"
            )
            continue
        channels.append(ch)
    share = len(periods) / len(months)
    prov.assumptions["detections_from_report"] = (
        f"report totals over {len(months)} months spread evenly over the months (integer shares, "
        f"largest remainder); {len(periods)} of them are in listings.csv"
    )
    rows = []
    for (cat, ch), g in det[det["channel"].isin(channels)].groupby(["category", "channel"]):
        total = int(g["detected"].iloc[0])
        alloc = largest_remainder(total, [1] * len(months))
        for p, v in zip(months, alloc, strict=True):
            if p in periods:
                rows.append((cat, p, ch, v))
                prov.value(
                    "detections.csv",
                    {"category": cat, "period": p, "channel": ch},
                    "detected",
                    v,
                    "transparency_report",
                    f"{total} over the reporting period spread evenly over {len(months)} months",
                )
    if share < 1:
        prov.warnings.append(
            "listings.csv covers part of the reporting period: detections of "
            "the other months are not used"
        )
    prov.column(
        "detections.csv",
        "detected",
        "transparency report parts 3-6 (see the report's "
        "channel formulas), spread evenly over months",
    )
    out = pd.DataFrame(rows, columns=["category", "period", "channel", "detected"])
    out["detected"] = out["detected"].astype("int64")
    return out


def cross_check(tdb: TdbAggregate, report: TransparencyReport) -> list[dict[str, Any]]:
    bounds = report.period_bounds()
    if bounds is None:
        return []
    months = month_range(*bounds)
    t = tdb.detections[tdb.detections["period"].isin(months)]
    t = t.groupby(["category", "channel"])["detected"].sum()
    out = []
    for r in report.detections.itertuples(index=False):
        db = int(t.get((r.category, r.channel), 0))
        rep = None if pd.isna(r.detected) else int(r.detected)
        out.append(
            {
                "category": r.category,
                "channel": r.channel,
                "transparency_database": db,
                "transparency_report": rep,
                "ratio_db_to_report": (db / rep) if rep else None,
            }
        )
    return out


# ----------------------------------------------------------------------- hours and appeals
def review_hours(
    listings: pd.DataFrame,
    report: TransparencyReport | None,
    review: ReviewAssumptions,
    prov: Prov,
) -> pd.DataFrame:
    if "review_hours" in listings.columns:
        prov.column(_LISTINGS, "review_hours", "supplied with the listing counts")
        return listings
    per_month = report.review_hours_per_month(review) if report is not None else None
    if per_month is None:
        why = (
            "no transparency report given"
            if report is None
            else "the report's part 9 moderator count is missing (see its gaps)"
        )
        raise problem(
            _LISTINGS,
            f"no review_hours column and no moderator count to derive it from ({why})",
            row=1,
            column="review_hours",
        )
    prov.assumptions["review_capacity"] = {
        **asdict(review),
        "moderators_counted": report.moderator_count(review.moderators),
        "hours_per_month": per_month,
        "formula": "moderators x hours_per_moderator_month x share_on_listings, split across "
        "categories each month by " + review.allocation,
    }
    df = listings.copy()
    if review.allocation == "listings":
        weights = df["listings"] / df.groupby("period")["listings"].transform("sum")
    else:
        weights = 1 / df.groupby("period")["category"].transform("count")
    df["review_hours"] = (per_month * weights).round(2)
    prov.column(
        _LISTINGS,
        "review_hours",
        "derived from the report's moderators (part 9) under the review_capacity assumption",
    )
    for r, w in zip(df.itertuples(index=False), weights.tolist(), strict=True):
        prov.value(
            _LISTINGS,
            {"category": r.category, "period": r.period},
            "review_hours",
            float(r.review_hours),
            "transparency_report",
            f"{per_month:g} review hours a month x {review.allocation} share {w:.6f}",
        )
    return df


def appeals_table(
    report: TransparencyReport,
    detections: pd.DataFrame,
    periods: list[str],
    partial: bool,
    prov: Prov,
) -> pd.DataFrame | None:
    a = report.appeals or {}
    complaints, reversed_ = a.get("complaints"), a.get("reversed")
    if complaints is None or reversed_ is None:
        prov.warnings.append(
            "appeals.csv not written: the report's complaints against removals (part 7) are missing"
        )
        return None
    overturned = reversed_ + ((a.get("partially_reversed") or 0) if partial else 0)
    bounds = report.period_bounds()
    months = month_range(*bounds) if bounds else periods
    in_grid = [p for p in periods if p in months]
    if not in_grid:
        prov.warnings.append(
            "appeals.csv not written: no month of listings.csv is in the report's reporting period"
        )
        return None
    total = round(complaints * len(in_grid) / len(months))
    total_over = min(round(overturned * len(in_grid) / len(months)), total)
    weights = (
        detections[detections["period"].isin(in_grid)]
        .groupby(["category", "period"])["detected"]
        .sum()
    )
    if weights.sum() == 0:
        prov.warnings.append("appeals.csv not written: no detection to share complaints by")
        return None
    keys = list(weights.index)
    app = largest_remainder(total, weights.tolist())
    over = largest_remainder(total_over, app)
    df = pd.DataFrame(
        [(c, p, x, y) for (c, p), x, y in zip(keys, app, over, strict=True)],
        columns=["category", "period", "appeals", "overturned"],
    )
    prov.assumptions["appeals"] = (
        f"complaints against removal decisions of the report ({complaints}, of which {overturned} "
        f"{'reversed or partially reversed' if partial else 'reversed'}) for the "
        f"{len(in_grid)} of {len(months)} report months in listings.csv, shared across categories "
        "and months in proportion to detections (integer shares, largest remainder)"
    )
    prov.column("appeals.csv", "appeals", "transparency report part 7, shared by detections")
    prov.column("appeals.csv", "overturned", "transparency report part 7, shared by appeals")
    for r in df.itertuples(index=False):
        for col in ("appeals", "overturned"):
            prov.value(
                "appeals.csv",
                {"category": r.category, "period": r.period},
                col,
                int(getattr(r, col)),
                "transparency_report",
                "shared out (see assumptions)",
            )
    return df


# ------------------------------------------------------------------------------------ claims
def claims_list(
    doc: dict[str, Any],
    cats: list[str],
    listings: pd.DataFrame,
    det: pd.DataFrame,
    report: TransparencyReport | None,
    from_report: bool,
    prov: Prov,
) -> list[dict]:
    given = {c.get("category"): dict(c) for c in doc.get("claims", []) if isinstance(c, dict)}
    try:
        scale = Scale(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in doc["scale"].items()}
        )
    except (TypeError, ValueError) as exc:
        raise problem("submission.toml", f"invalid scale: {exc}", column="scale") from exc
    recall = report.rate("recall") if (report is not None and from_report) else None
    claims = []
    for i, cat in enumerate(cats, start=1):
        claim = given.get(cat)
        if claim is None:
            n_det = int(det.loc[det["category"] == cat, "detected"].sum())
            n_list = int(listings.loc[listings["category"] == cat, "listings"].sum())
            if n_det == 0:
                raise problem(
                    "submission.toml",
                    f"no claim for {cat!r} and no detection to "
                    "derive the detected share from: give its claim",
                    column="claims",
                )
            share = n_det / n_list
            claim = {"category": cat, "prevalence": share, "band": scale.band_of(share)}
            prov.value(
                "submission.toml",
                {"category": cat},
                f"claims[{i}].prevalence",
                share,
                "derived",
                f"detected share {n_det}/{n_list} (the platform's own method "
                "of scoring risk by what it caught); not a statement of the platform",
            )
            prov.value(
                "submission.toml",
                {"category": cat},
                f"claims[{i}].band",
                claim["band"],
                "derived",
                "band of the detected share on the platform's scale",
            )
        else:
            prov.value(
                "submission.toml",
                {"category": cat},
                f"claims[{i}].prevalence",
                claim.get("prevalence"),
                "assessment",
                "given in the assessment file",
            )
        if "detection_rate" not in claim and recall is not None and recall > 0:
            claim["detection_rate"] = recall
            prov.value(
                "submission.toml",
                {"category": cat},
                f"claims[{i}].detection_rate",
                recall,
                "transparency_report",
                "published recall of the automated means "
                "(part 8, own-initiative scope, else total), taken as the claimed "
                "proactive detection rate",
            )
        claims.append(claim)
    extra = sorted(set(given) - set(cats), key=str)
    if extra:
        prov.warnings.append(f"claims for categories not in listings.csv ignored: {extra}")
    return claims
