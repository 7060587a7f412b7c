"""A platform's risk-assessment submission: read, validate, represent, write.

The format (DESIGN.md §4.1, ``docs/submission-format.md``) is a directory or .zip holding
``submission.toml`` and CSV tables; a regulator's evidence (audits, planted test listings) may
come as a second directory whose rows are added to the submission's. Everything is validated
before anything is returned: an invalid submission raises one
:class:`~risklab.data.errors.SubmissionError` listing every problem with file, row and column.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import xarray as xr

from risklab.data._assemble import (
    EVIDENCE_FILES,
    EVIDENCE_PREFIX,
    SUBMISSION_FILES,
    Parts,
    assemble,
    claim_records,
    csv_bytes,
    plain,
)
from risklab.data._dataset import normalise_dataset, records_from_dataset, tables_from_dataset
from risklab.data._io import hash_inputs, read_source
from risklab.data._records import Claim, Platform, Policy, Scale
from risklab.data._toml import Meta, dumps_toml, meta_to_dict, parse_toml, validate_meta
from risklab.data.errors import Problem
from risklab.data.schema import REQUIRED_TABLES, TABLES, TOLERATED_FILES, TOML_FILE

__all__ = ["Claim", "Platform", "Policy", "Scale", "Submission", "load_submission"]

_PROVENANCE_ATTRS = ("input_sha256", "source")


class Submission:
    """A validated submission: the platform's claims and the data to test them against.

    Build one with :func:`load_submission`, :meth:`from_dataframes` or :meth:`from_dataset`;
    the constructor takes already-validated parts and does not check them.

    Attributes
    ----------
    platform : Platform
        Platform name and reporting period.
    scale : Scale
        The platform's declared risk scale.
    claims : dict of str to Claim
        One claim per category, in the category order of :attr:`data`.
    policy : Policy or None
        Repeat-offender policy, if declared.
    data : xarray.Dataset
        Counts aggregated per category, period and channel (layout in
        ``docs/submission-format.md``); evidence rows are summed in.
    tables : dict of str to pandas.DataFrame
        Validated tables with parsed dtypes. A table to which evidence contributed has an extra
        column ``source`` (``"submission"`` or ``"evidence"``).
    source : str
        Path of the submission, or ``"<dataframes>"``.
    input_sha256 : str
        SHA-256 of the inputs (see ``docs/submission-format.md``).

    Notes
    -----
    Two submissions compare equal when their content is equal (platform, scale, claims, policy
    and :attr:`data` including its attrs), whatever their provenance (``source``,
    ``input_sha256``) and the row order of their tables.
    """

    def __init__(
        self,
        *,
        platform: Platform,
        scale: Scale,
        claims: dict[str, Claim],
        policy: Policy | None,
        data: xr.Dataset,
        tables: dict[str, pd.DataFrame],
        source: str,
        input_sha256: str,
    ) -> None:
        self.platform = platform
        self.scale = scale
        self.claims = claims
        self.policy = policy
        self.data = data
        self.tables = tables
        self.source = source
        self.input_sha256 = input_sha256

    # ------------------------------------------------------------------------------ queries
    @property
    def categories(self) -> list[str]:
        """Product categories (sorted)."""
        return [str(c) for c in self.data["category"].values]

    @property
    def periods(self) -> list[str]:
        """Periods, ``"YYYY-MM"`` (sorted)."""
        return [str(p) for p in self.data["period"].values]

    @property
    def channels(self) -> list[str]:
        """Detection channels present in detections.csv, in canonical order."""
        return [str(c) for c in self.data["channel"].values]

    def has(self, table: str) -> bool:
        """Whether a table was supplied (in the submission or the evidence).

        Parameters
        ----------
        table : str
            Table name, e.g. ``"audits"`` (``"audits.csv"`` also accepted).
        """
        name = table.removeprefix(EVIDENCE_PREFIX).removesuffix(".csv")
        return name in REQUIRED_TABLES or name in self.data.attrs.get("tables_present", [])

    def __repr__(self) -> str:
        optional = ", ".join(self.data.attrs.get("tables_present", [])) or "none"
        return (
            f"<Submission {self.platform.name!r} {self.platform.period_start}..."
            f"{self.platform.period_end}: {len(self.categories)} categories x "
            f"{len(self.periods)} periods, channels {self.channels}, optional tables: "
            f"{optional}; source {self.source!r}>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Submission):
            return NotImplemented
        return (
            self.platform == other.platform
            and self.scale == other.scale
            and self.claims == other.claims
            and self.policy == other.policy
            and _content(self.data).identical(_content(other.data))
        )

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------------- constructors
    @classmethod
    def _from_parts(cls, parts: Parts, source: str, sha: str) -> Submission:
        return cls(
            platform=parts.platform,
            scale=parts.scale,
            claims=parts.claims,
            policy=parts.policy,
            data=parts.data,
            tables=parts.tables,
            source=source,
            input_sha256=sha,
        )

    @classmethod
    def from_dataframes(
        cls,
        *,
        platform: dict | Platform,
        scale: dict | Scale,
        claims: list[dict] | list[Claim] | pd.DataFrame,
        listings: pd.DataFrame,
        detections: pd.DataFrame,
        policy: dict | Policy | None = None,
        audits: pd.DataFrame | None = None,
        planted: pd.DataFrame | None = None,
        appeals: pd.DataFrame | None = None,
        traders: pd.DataFrame | None = None,
        overlaps: pd.DataFrame | None = None,
        enforcement: pd.DataFrame | None = None,
        evidence: dict[str, pd.DataFrame] | None = None,
    ) -> Submission:
        """Build and validate a submission from in-memory tables.

        Each DataFrame is validated exactly as if written with
        ``DataFrame.to_csv(index=False)``: problems name the table as ``"listings.csv"`` etc. and
        ``row`` is the index position + 2. So counts must have an integer dtype (a float
        column of counts is reported as ``'3.0'``), and ``platform``/``scale``/``claims``/
        ``policy`` follow the ``submission.toml`` rules (named as ``"submission.toml"``).

        Parameters
        ----------
        platform, scale, policy : dict or record
            The ``[platform]``, ``[scale]`` and optional ``[policy]`` sections.
        claims : list of dict or Claim, or pandas.DataFrame
            One claim per category (columns category, prevalence, band, optional
            detection_rate; NaN/None means absent).
        listings, detections : pandas.DataFrame
            Required tables.
        audits, planted, appeals, traders, overlaps, enforcement : pandas.DataFrame, optional
            Optional tables (``enforcement`` needs ``policy``).
        evidence : dict of str to pandas.DataFrame, optional
            Regulator evidence tables (``"audits"``, ``"planted"``), added to the submission's.

        Returns
        -------
        Submission

        Raises
        ------
        SubmissionError
            If anything is invalid.
        """
        frames = {
            "listings": listings, "detections": detections, "audits": audits,
            "planted": planted, "appeals": appeals, "traders": traders, "overlaps": overlaps,
            "enforcement": enforcement,
        }  # fmt: skip
        csv = {f"{n}.csv": csv_bytes(df, n) for n, df in frames.items() if df is not None}
        ev = None
        if evidence is not None:
            ev = {f"{k.removesuffix('.csv')}.csv": csv_bytes(df, k) for k, df in evidence.items()}
        doc = {
            "platform": plain(platform),
            "scale": plain(scale),
            "claims": claim_records(claims),
        }
        if policy is not None:
            doc["policy"] = plain(policy)
        read_problems = []
        if ev is not None:
            for name in [n for n in ev if n not in EVIDENCE_FILES]:
                del ev[name]
                msg = f"unknown evidence table; evidence may hold only {', '.join(EVIDENCE_FILES)}"
                read_problems.append(Problem(EVIDENCE_PREFIX + name, None, None, msg))
        files = [("", n, b) for n, b in csv.items()] + [
            ("evidence", n, b) for n, b in (ev or {}).items()
        ]
        canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
        canonical = canonical.encode("utf-8", "surrogatepass")
        sha = hash_inputs([*files, ("", "submission.json", canonical)])
        parts = assemble(validate_meta(doc), csv, ev, read_problems, source="<dataframes>", sha=sha)
        return cls._from_parts(parts, "<dataframes>", sha)

    @classmethod
    def from_dataset(
        cls, ds: xr.Dataset, tables: dict[str, pd.DataFrame] | None = None
    ) -> Submission:
        """Rebuild a submission from its :attr:`data` (e.g. as saved in a results file).

        Parameters
        ----------
        ds : xarray.Dataset
            A submission Dataset; string coords and list attrs read back from netCDF are
            normalised.
        tables : dict of str to pandas.DataFrame, optional
            Original tables to restore. Tables not given are rebuilt in canonical form from
            ``ds`` (full grids for listings/detections, rows with a non-zero count for the
            others, enforcement included, overlaps from the ``overlaps_json`` attribute, no
            ``source`` column).

        Returns
        -------
        Submission
        """
        ds = normalise_dataset(ds)
        platform, scale, claims, policy, present = records_from_dataset(ds)
        rebuilt = tables_from_dataset(ds, present)
        if tables is not None:
            rebuilt.update({k.removesuffix(".csv"): v for k, v in tables.items()})
        return cls(
            platform=platform,
            scale=scale,
            claims=claims,
            policy=policy,
            data=ds,
            tables=rebuilt,
            source=str(ds.attrs.get("source", "")),
            input_sha256=str(ds.attrs.get("input_sha256", "")),
        )

    # ------------------------------------------------------------------------------ writing
    def to_directory(
        self,
        path: str | os.PathLike[str],
        *,
        evidence_path: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> None:
        """Write the submission as a directory in the submission format.

        Parameters
        ----------
        path : path-like
            Directory to write (created if needed).
        evidence_path : path-like, optional
            If given, rows whose ``source`` is ``"evidence"`` are written there instead, so that
            ``load_submission(path, evidence=evidence_path)`` gives an equal submission. If not
            given, evidence rows are summed into the submission's rows per key.
        overwrite : bool, default False
            Replace existing files of the same names; otherwise their presence is an error.

        Raises
        ------
        FileExistsError
            If a file to write exists and ``overwrite`` is False (nothing is written then).
        ValueError
            If ``evidence_path`` is given but the submission holds no evidence rows.
        """
        claims = [self.claims[c] for c in self.categories]
        toml = dumps_toml(meta_to_dict(self.platform, self.scale, claims, self.policy))
        sub_files: dict[str, bytes] = {TOML_FILE: toml.encode("utf-8")}
        ev_files: dict[str, bytes] = {}
        for name, df in self.tables.items():
            if "source" in df.columns:
                is_ev = (df["source"] == "evidence").to_numpy()
                parts = df.drop(columns="source")
                if evidence_path is not None:
                    if is_ev.any():
                        ev_files[f"{name}.csv"] = csv_bytes(parts[is_ev], name)
                    df = parts[~is_ev]
                else:
                    df = _sum_by_key(parts, name)
            if len(df):
                sub_files[f"{name}.csv"] = csv_bytes(df, name)
        if evidence_path is not None and not ev_files:
            raise ValueError("evidence_path given, but this submission holds no evidence rows")
        targets = [(Path(path), sub_files)]
        if evidence_path is not None:
            targets.append((Path(evidence_path), ev_files))
        if not overwrite:
            clash = [d / n for d, files in targets for n in files if (d / n).exists()]
            if clash:
                raise FileExistsError(f"refusing to overwrite {clash[0]} (pass overwrite=True)")
        for d, files in targets:
            d.mkdir(parents=True, exist_ok=True)
            for n, data in files.items():
                _write_atomic(d / n, data)


def load_submission(
    path: str | os.PathLike[str], evidence: str | os.PathLike[str] | None = None
) -> Submission:
    """Read and validate a submission.

    Parameters
    ----------
    path : path-like
        Submission directory or .zip archive (files at its root or in one top-level folder).
    evidence : path-like, optional
        Directory or .zip of regulator evidence (``audits.csv``, ``planted.csv``) whose rows are
        added to the submission's.

    Returns
    -------
    Submission

    Raises
    ------
    SubmissionError
        Listing every problem found, each naming the file, row and column.

    Examples
    --------
    >>> sub = load_submission("submission/", evidence="evidence.zip")  # doctest: +SKIP
    >>> sub.data["listings"].sel(category="toys")  # doctest: +SKIP
    """
    source = os.fspath(path)
    sub = read_source(path, allowed=SUBMISSION_FILES, tolerated=TOLERATED_FILES)
    read_problems = list(sub.problems)
    ev_files = None
    files = [("", n, b) for n, b in sub.files.items()]
    if evidence is not None:
        ev = read_source(
            evidence, allowed=EVIDENCE_FILES, prefix=EVIDENCE_PREFIX, error_source=source
        )
        read_problems += ev.problems
        ev_files = ev.files
        files += [("evidence", n, b) for n, b in ev.files.items()]
        if not ev.files and not ev.problems:
            msg = f"holds none of {', '.join(EVIDENCE_FILES)}"
            read_problems.append(Problem(EVIDENCE_PREFIX, None, None, msg))
    sha = hash_inputs(files)
    raw_toml = sub.files.get(TOML_FILE)
    if raw_toml is None:
        if not any(p.file == TOML_FILE for p in read_problems):  # not also for an unreadable one
            read_problems.append(Problem(TOML_FILE, None, None, "missing required file"))
        meta = Meta()
    else:
        doc, locate, toml_problems = parse_toml(raw_toml)
        read_problems += toml_problems
        meta = validate_meta(doc, locate) if doc is not None else Meta()
    csv = {n: b for n, b in sub.files.items() if n != TOML_FILE}
    parts = assemble(meta, csv, ev_files, read_problems, source=source, sha=sha)
    return Submission._from_parts(parts, source, sha)


def _content(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy(deep=False)
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in _PROVENANCE_ATTRS}
    return out


def _sum_by_key(df: pd.DataFrame, name: str) -> pd.DataFrame:
    spec = TABLES[name]
    return df.groupby(list(spec.key), sort=False, as_index=False)[list(spec.counts)].sum()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
