"""Validating everything together and assembling the parts of a Submission."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import xarray as xr

from risklab.data._checks import Collector, ParsedTable, check_table
from risklab.data._crosscheck import check_claim_coverage, check_cross, check_policy_tables
from risklab.data._csv import read_csv_bytes
from risklab.data._dataset import build_dataset
from risklab.data._records import Claim, Platform, Policy, Scale
from risklab.data._toml import Meta, pythonize
from risklab.data.errors import Problem, SubmissionError
from risklab.data.schema import EVIDENCE_TABLES, TABLES, TOML_FILE

__all__ = [
    "EVIDENCE_FILES",
    "EVIDENCE_PREFIX",
    "SUBMISSION_FILES",
    "Parts",
    "assemble",
    "claim_records",
    "csv_bytes",
    "plain",
]

SUBMISSION_FILES = (TOML_FILE, *(spec.file for spec in TABLES.values()))
EVIDENCE_FILES = tuple(f"{t}.csv" for t in EVIDENCE_TABLES)
EVIDENCE_PREFIX = "evidence/"
_FILE_RANK = {
    name: i
    for i, name in enumerate(
        [
            TOML_FILE,
            *(s.file for s in TABLES.values()),
            *(EVIDENCE_PREFIX + f for f in EVIDENCE_FILES),
        ]
    )
}


def problem_order(p: Problem) -> tuple[int, bool, int]:
    """Sort key: whole-submission problems, then submission.toml, then tables; by line."""
    return (_FILE_RANK.get(p.file, -1), p.row is None, p.row or 0)


@dataclass
class Parts:
    """The validated parts of a submission."""

    platform: Platform
    scale: Scale
    claims: dict[str, Claim]
    policy: Policy | None
    data: xr.Dataset
    tables: dict[str, pd.DataFrame]


def assemble(
    meta: Meta,
    csv: dict[str, bytes],
    ev_csv: dict[str, bytes] | None,
    read_problems: list[Problem],
    *,
    source: str,
    sha: str,
) -> Parts:
    """Validate parsed metadata and raw tables; return the validated parts or raise.

    Parameters
    ----------
    meta : Meta
        Validated ``submission.toml`` (with its problems).
    csv, ev_csv : dict of str to bytes
        Raw CSV files of the submission and of the evidence (None if no evidence).
    read_problems : list of Problem
        Problems found while reading the files.
    source, sha : str
        Provenance for errors and the Dataset attrs.

    Raises
    ------
    SubmissionError
        With every problem found, sorted by file and line.
    """
    col = Collector()
    col.problems.extend(read_problems)
    col.problems.extend(meta.problems)
    prange = (meta.platform.period_start, meta.platform.period_end) if meta.platform else None
    unreadable = {p.file for p in read_problems}  # e.g. a corrupt zip member: not also "missing"
    parsed: dict[str, ParsedTable] = {}
    for name, spec in TABLES.items():
        raw = csv.get(spec.file)
        if raw is None:
            if spec.required and spec.file not in unreadable:
                col.add(spec.file, None, None, "missing required file")
            continue
        table, problems = read_csv_bytes(raw, spec.file)
        col.problems.extend(problems)
        if table is not None:
            parsed[name] = check_table(table, spec, prange, col)
    ev_parsed: dict[str, ParsedTable] = {}
    for name, raw in (ev_csv or {}).items():
        spec = TABLES[name.removesuffix(".csv")]
        table, problems = read_csv_bytes(raw, EVIDENCE_PREFIX + spec.file)
        col.problems.extend(problems)
        if table is not None:
            ev_parsed[spec.name] = check_table(table, spec, prange, col)
    check_cross(parsed, ev_parsed, col)
    check_policy_tables(parsed, meta.policy, meta.policy_declared, col)
    check_claim_coverage(parsed.get("listings"), meta.claimed, meta.locate, col)
    if col.problems or meta.platform is None or meta.scale is None or meta.claims is None:
        problems = sorted(col.problems, key=problem_order)
        raise SubmissionError(problems or [Problem(TOML_FILE, None, None, "invalid")], source)
    tables = final_tables(parsed, ev_parsed)
    cats = sorted(tables["listings"]["category"].unique().tolist())
    by_cat = {c.category: c for _, c in meta.claims}
    claims = {c: by_cat[c] for c in cats}
    data = build_dataset(
        platform=meta.platform,
        scale=meta.scale,
        claims=claims,
        policy=meta.policy,
        tables=tables,
        input_sha256=sha,
        source=source,
    )
    return Parts(meta.platform, meta.scale, claims, meta.policy, data, tables)


def final_tables(
    parsed: dict[str, ParsedTable], ev_parsed: dict[str, ParsedTable]
) -> dict[str, pd.DataFrame]:
    """Validated tables; a table with evidence rows gets a ``source`` column."""
    tables = {}
    for name in TABLES:
        sub = parsed.get(name)
        ev = ev_parsed.get(name)
        frames = [
            (pt.frame.reset_index(drop=True), label)
            for pt, label in ((sub, "submission"), (ev, "evidence"))
            if pt is not None
        ]
        if not frames:
            continue
        if ev is None:
            tables[name] = frames[0][0]
        else:
            parts = [f.assign(source=pd.Series([label] * len(f), dtype=str)) for f, label in frames]
            tables[name] = pd.concat(parts, ignore_index=True)
    return tables


def csv_bytes(df: Any, name: str) -> bytes:
    """A DataFrame as CSV bytes, exactly as ``from_dataframes`` validates it.

    A lone surrogate in a cell (not valid text) is kept as its invalid UTF-8 bytes, so that the
    reader reports it with its row instead of the encoder raising.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8", "surrogatepass")


def plain(obj: Any) -> Any:
    """A record (dataclass) or mapping as plain Python values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return pythonize(obj)


def claim_records(claims: Any) -> Any:
    """Claims (list of dicts/Claims or a DataFrame) as TOML-like records; NaN rates dropped."""
    if isinstance(claims, pd.DataFrame):
        claims = claims.to_dict("records")
    if not isinstance(claims, (list, tuple)):
        return pythonize(claims)
    out = []
    for item in claims:
        rec = plain(item)
        if isinstance(rec, dict):
            rate = rec.get("detection_rate", 0.0)
            if rate is None or (isinstance(rate, float) and math.isnan(rate)):
                rec = {k: v for k, v in rec.items() if k != "detection_rate"}
        out.append(rec)
    return out
