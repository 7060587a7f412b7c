"""Import the DSA Transparency Database: statements of reasons -> detections per channel.

Every hosting service must send the Commission a statement of reasons for each moderation
decision (Art. 17 and 24(5) DSA); the Commission publishes them as daily dumps (zipped CSV,
"full" and "light", and Parquet for the full global dumps). :func:`aggregate_tdb` reads one or
many dumps, keeps the statements of one platform about product listings, maps their categories
and keywords onto risklab categories (:mod:`risklab.data.mappings`), and counts them per
category × month × channel — the ``detections.csv`` of a submission — with breakdowns by
decision ground and automation, the age of the listing at the decision, and a full account of
every statement left out and why.

Aggregation runs in DuckDB (the optional extra ``risklab[ingest]``), one archive member at a
time (see :mod:`risklab.data._tdb_sources`): memory is bounded by DuckDB's ``memory_limit`` and
the number of groups, not by the number of statements, so a month of dumps aggregates on a
laptop.

Conventions: the **period** of a statement is the month of its ``application_date`` (when the
decision took effect); the **channel** comes from ``source_type`` (:data:`CHANNEL_OF_SOURCE`);
the **listing age** is ``application_date − content_date`` in days. A statement is one decision
about one item: a listing removed and its seller suspended may give two statements.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from risklab.data._tdb_results import Accumulator, summarise_age, write_files
from risklab.data._tdb_sources import SourceTable, file_sha256, iter_tables, read_csv_header
from risklab.data._tdb_sql import (
    CSV_REQUIRED,
    SKIP_REASONS,
    aggregate_sql,
    csv_source,
    parquet_source,
)
from risklab.data.errors import Problem, SubmissionError
from risklab.data.mappings import CategoryMapping, check_channel_map

__all__ = ["TdbAggregate", "aggregate_tdb", "require_duckdb"]

#: Oldest DuckDB release with everything the query uses (``try()`` came in 1.3).
MIN_DUCKDB = (1, 3)
#: Largest number of rejected CSV lines listed one by one per table.
MAX_REJECTED_LINES = 20
_FILE_PREFIX = "tdb_"
#: Reasons of statements not known to be the platform's (other platforms, unreadable lines).
_NOT_OF_PLATFORM = ("other_platform", "malformed_csv_row")


def require_duckdb() -> Any:
    """Import DuckDB, or explain how to install it.

    Raises
    ------
    ImportError
        With the message "install risklab[ingest]" when DuckDB is missing.
    """
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "reading Transparency Database dumps needs DuckDB: install risklab[ingest] "
            "(pip install 'risklab[ingest]')"
        ) from exc
    version = tuple(int(x) for x in duckdb.__version__.split(".")[:2] if x.isdigit())
    if version < MIN_DUCKDB:  # pragma: no cover - depends on the installed version
        raise ImportError(
            f"DuckDB {duckdb.__version__} is too old (need {'.'.join(map(str, MIN_DUCKDB))} or "
            "newer, for try()): pip install -U 'risklab[ingest]'"
        )
    return duckdb


@dataclass
class TdbAggregate:
    """Statements of reasons of one platform, aggregated.

    Attributes
    ----------
    platform : str
        Platform name as matched (case-insensitive) against ``platform_name``.
    detections : pandas.DataFrame
        ``category, period, channel, detected``: kept statements per risklab category, month
        and channel (only combinations with at least one statement).
    breakdown : pandas.DataFrame
        ``category, period, channel, decision_ground, automated_detection, automated_decision,
        statements``.
    age_histogram : pandas.DataFrame
        ``category, period, channel, age_days, statements`` (``age_days`` empty when
        ``content_date`` is missing).
    status : pandas.DataFrame
        ``file, outcome, reason, db_category, statements, example_uuid``: every statement read,
        by outcome (``kept``; ``unmapped``: no mapping rule covers it; ``excluded`` by design;
        ``skipped`` as malformed) and reason.
    rejected_lines : pandas.DataFrame
        ``file, line, error``: CSV lines that could not be parsed (first
        :data:`MAX_REJECTED_LINES` per table).
    coverage : pandas.DataFrame
        ``created_date, statements``: statements of all platforms per day of submission, i.e.
        which days the dumps cover.
    other_platforms : pandas.DataFrame
        ``platform_name, statements`` of the statements of other platforms.
    files : pandas.DataFrame
        ``file, kind, variant, schema_version, statements, kept, seconds`` per table read.
    inputs : list of dict
        ``path, bytes, sha256`` of every input file.
    settings : dict
        Mapping rules, channel map, ``product_only`` and ``ground`` used.
    notes : list of str
        Archive members ignored and other remarks.
    """

    platform: str
    detections: pd.DataFrame
    breakdown: pd.DataFrame
    age_histogram: pd.DataFrame
    status: pd.DataFrame
    rejected_lines: pd.DataFrame
    coverage: pd.DataFrame
    other_platforms: pd.DataFrame
    files: pd.DataFrame
    inputs: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------------------ queries
    @property
    def listing_age(self) -> pd.DataFrame:
        """Listing age at decision per category, period and channel.

        Columns ``category, period, channel, statements, with_age, negative_age, mean_days,
        p10_days, p25_days, median_days, p75_days, p90_days``. Quantiles are over the
        statements with a non-negative age: the smallest age (days) such that at least that
        share of statements is no older. ``negative_age`` counts content dated after the
        decision (a data error at the platform), left out of the quantiles.
        """
        return summarise_age(self.age_histogram)

    def skipped(self) -> pd.DataFrame:
        """Statements of the platform skipped as malformed, per reason (with an explanation)."""
        s = self.status[self.status["outcome"] == "skipped"]
        out = s.groupby("reason", as_index=False)["statements"].sum()
        out["meaning"] = out["reason"].map(SKIP_REASONS)
        return out

    def summary(self) -> dict[str, Any]:
        """Totals: statements read, of the platform, kept, excluded and skipped by reason."""
        st = self.status
        by = st.groupby(["outcome", "reason"])["statements"].sum()
        return {
            "platform": self.platform,
            "tables": len(self.files),
            "statements_read": int(st["statements"].sum()),
            "statements_of_platform": int(
                st.loc[~st["reason"].isin(_NOT_OF_PLATFORM), "statements"].sum()
            ),
            "unreadable_lines": int(
                st.loc[st["reason"] == "malformed_csv_row", "statements"].sum()
            ),
            "kept": int(st.loc[st["outcome"] == "kept", "statements"].sum()),
            "unmapped": int(st.loc[st["outcome"] == "unmapped", "statements"].sum()),
            "unmapped_by_db_category": {
                str(k): int(v)
                for k, v in st[st["outcome"] == "unmapped"]
                .groupby("db_category")["statements"]
                .sum()
                .items()
            },
            "excluded": {r: int(n) for (o, r), n in by.items() if o == "excluded"},
            "skipped": {r: int(n) for (o, r), n in by.items() if o == "skipped"},
            "periods": sorted(self.detections["period"].unique().tolist()),
            "categories": sorted(self.detections["category"].unique().tolist()),
        }

    def days_covered(self) -> dict[str, int]:
        """Days of submission covered by the dumps, per month ``YYYY-MM``."""
        if self.coverage.empty:
            return {}
        months = self.coverage["created_date"].astype(str).str[:7]
        return {str(k): int(v) for k, v in months.groupby(months).size().items()}

    # ------------------------------------------------------------------------------ files
    def to_directory(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
        """Write the aggregate as ``tdb_*.csv`` tables plus ``tdb.json``.

        Parameters
        ----------
        path : path-like
            Directory (created if needed).
        overwrite : bool, default False
            Replace existing files; otherwise their presence is an error (nothing written).

        Returns
        -------
        list of Path
            The files written.
        """
        files: dict[str, bytes] = {
            f"{_FILE_PREFIX}{name}.csv": _csv(getattr(self, name)) for name in _TABLES
        }
        files[f"{_FILE_PREFIX}listing_age.csv"] = _csv(self.listing_age)
        meta = {
            "format": "risklab transparency-database aggregate",
            "version": 1,
            "platform": self.platform,
            "summary": self.summary(),
            "days_covered": self.days_covered(),
            "inputs": self.inputs,
            "settings": self.settings,
            "notes": self.notes,
        }
        files["tdb.json"] = _json(meta)
        return write_files(Path(path), files, overwrite=overwrite)

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> TdbAggregate:
        """Read an aggregate written by :meth:`to_directory`.

        Raises
        ------
        SubmissionError
            If ``tdb.json`` or a table is missing or unreadable.
        """
        root = Path(path)
        meta_file = root / "tdb.json"
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"not a transparency-database aggregate (cannot read tdb.json: {exc})"
            raise SubmissionError([Problem(str(root), None, None, msg)], str(root)) from exc
        if not isinstance(meta, dict) or not meta.get("platform"):
            msg = "not a transparency-database aggregate (tdb.json names no platform)"
            raise SubmissionError([Problem(str(meta_file), None, "platform", msg)], str(root))
        tables = {}
        for name in _TABLES:
            f = root / f"{_FILE_PREFIX}{name}.csv"
            try:
                tables[name] = pd.read_csv(
                    f, dtype=_DTYPES.get(name), keep_default_na=False, na_values=[""]
                )
            except (OSError, ValueError) as exc:
                raise SubmissionError(
                    [Problem(str(f), None, None, f"cannot read: {exc}")], str(root)
                ) from exc
        return cls(
            platform=meta["platform"],
            inputs=meta.get("inputs", []),
            settings=meta.get("settings", {}),
            notes=meta.get("notes", []),
            **tables,
        )


_TABLES = (
    "detections",
    "breakdown",
    "age_histogram",
    "status",
    "rejected_lines",
    "coverage",
    "other_platforms",
    "files",
)
_DTYPES: dict[str, dict[str, Any]] = {
    "detections": {"category": str, "period": str, "channel": str},
    "breakdown": {"category": str, "period": str, "channel": str},
    "age_histogram": {"category": str, "period": str, "channel": str, "age_days": "Int64"},
    "status": {"file": str, "reason": str, "db_category": str, "example_uuid": str},
    "coverage": {"created_date": str},
    "other_platforms": {"platform_name": str},
}


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _json(obj: Any) -> bytes:
    return (
        json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n"
    ).encode()


# ---------------------------------------------------------------------------------- reading
def _connect(duckdb: Any, workdir: Path, memory_limit: str, threads: int | None) -> Any:
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit.replace(chr(39), '')}'")
    con.execute(f"SET temp_directory = '{str(workdir / 'duckdb').replace(chr(39), chr(39) * 2)}'")
    con.execute("SET preserve_insertion_order = false")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _columns(con: Any, table: SourceTable) -> tuple[str, dict[str, str]]:
    if table.kind == "parquet":
        source = parquet_source(str(table.path))
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        except Exception as exc:
            msg = f"not a readable Parquet file: {exc}"
            raise SubmissionError([Problem(table.label, None, None, msg)], table.label) from exc
        return source, {str(r[0]): str(r[1]) for r in described}
    header = read_csv_header(table)
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        msg = f"duplicate column name(s) {', '.join(dup)}"
        raise SubmissionError([Problem(table.label, 1, dup[0], msg)], table.label)
    return csv_source(str(table.path), header), {c: "VARCHAR" for c in header}


def _rejects(con: Any, table: SourceTable) -> tuple[int, list[dict[str, Any]]]:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'risklab_rejects'"
    ).fetchone()[0]
    if not exists:
        return 0, []
    rows = con.execute(
        "SELECT line, string_agg(DISTINCT error_type || ': ' || error_message, '; ') "
        "FROM risklab_rejects GROUP BY line ORDER BY line"
    ).fetchall()
    con.execute("DROP TABLE IF EXISTS risklab_rejects")
    con.execute("DROP TABLE IF EXISTS risklab_reject_scans")
    listed = [
        {"file": table.label, "line": int(line), "error": str(err)}
        for line, err in rows[:MAX_REJECTED_LINES]
    ]
    return len(rows), listed


def aggregate_tdb(
    files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    platform: str,
    *,
    mapping: CategoryMapping | str | os.PathLike[str] | None = None,
    channels: dict[str, str | None] | None = None,
    product_only: bool = True,
    ground: str = "all",
    memory_limit: str = "1GB",
    threads: int | None = None,
    workdir: str | os.PathLike[str] | None = None,
    hash_inputs: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> TdbAggregate:
    """Aggregate Transparency Database dumps for one platform.

    Parameters
    ----------
    files : path-like or sequence of path-like
        Daily dump zips (full or light, either schema version; zips of zips of CSV parts as
        published since April 2024, or zips of CSV files), plain or gzipped CSV files, or
        Parquet files.
    platform : str
        Platform name as written in ``platform_name`` (compared case-insensitively, trimmed).
    mapping : CategoryMapping or path-like, optional
        Category/keyword rules; default :meth:`CategoryMapping.default`. A path is read with
        :meth:`CategoryMapping.from_file`.
    channels : dict, optional
        Overrides of the source-type -> channel map (:data:`CHANNEL_OF_SOURCE`); ``None`` as a
        value leaves that source type out.
    product_only : bool, default True
        Keep only statements whose ``content_type`` includes ``CONTENT_TYPE_PRODUCT``.
    ground : {"all", "illegal"}, default "all"
        ``"illegal"`` keeps only decisions on legal grounds or on terms-and-conditions grounds
        flagged ``incompatible_content_illegal = Yes``.
    memory_limit : str, default "1GB"
        DuckDB memory limit (DuckDB spills to ``workdir`` beyond it).
    threads : int, optional
        DuckDB threads (default: DuckDB's, i.e. all cores).
    workdir : path-like, optional
        Where archive members are extracted one at a time (default: the system temp dir).
    hash_inputs : bool, default True
        Record the SHA-256 of every input file (one extra sequential read).
    progress : callable, optional
        Called as ``progress(table_label, statements)`` after each table.

    Returns
    -------
    TdbAggregate

    Raises
    ------
    SubmissionError
        If a file cannot be read, lacks a required column, or holds no statement of the
        platform (the message lists the platforms found).
    ImportError
        If DuckDB is not installed (``risklab[ingest]``).
    """
    duckdb = require_duckdb()
    if not isinstance(platform, str) or not platform.strip():
        raise ValueError("platform must be a non-empty name, as in the dumps' platform_name")
    if ground not in ("all", "illegal"):
        raise ValueError(f"ground must be 'all' or 'illegal', got {ground!r}")
    if mapping is None:
        mapping = CategoryMapping.default()
    elif not isinstance(mapping, CategoryMapping):
        mapping = CategoryMapping.from_file(mapping)
    channel_map = check_channel_map(channels)
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise ValueError("no input files")
    acc = Accumulator(mapping)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="risklab-tdb-", dir=workdir) as tmp:
        con = _connect(duckdb, Path(tmp), memory_limit, threads)
        try:
            for table in iter_tables(paths, Path(tmp), notes):
                start = time.perf_counter()
                source, available = _columns(con, table)
                missing = [c for c in CSV_REQUIRED if c not in available]
                if missing:
                    problems = [
                        Problem(
                            table.label,
                            1,
                            c,
                            "missing column of the statements-of-reasons dump format",
                        )
                        for c in missing
                    ]
                    raise SubmissionError(problems, table.label)
                sql = aggregate_sql(
                    source,
                    available,
                    mapping=mapping,
                    channel_map=channel_map,
                    product_only=product_only,
                    ground=ground,
                )
                try:
                    result = con.execute(sql, [platform.strip()]).fetch_df()
                except duckdb.Error as exc:
                    msg = f"cannot read: {str(exc).splitlines()[0]}"
                    raise SubmissionError(
                        [Problem(table.label, None, None, msg)], table.label
                    ) from exc
                n_rej, listed = _rejects(con, table) if table.kind == "csv" else (0, [])
                n = acc.add(table, available, result, n_rej, listed, time.perf_counter() - start)
                if progress is not None:
                    progress(table.label, n)
        finally:
            con.close()
    agg = acc.finish(platform.strip(), notes)
    agg.settings = {
        "mapping": mapping.to_records(),
        "mapping_source": mapping.source,
        "channels": channel_map,
        "product_only": product_only,
        "ground": ground,
        "period": "month of application_date",
        "listing_age": "application_date - content_date, days",
    }
    agg.inputs = [
        {
            "path": str(p),
            "bytes": Path(p).stat().st_size,
            "sha256": file_sha256(p) if hash_inputs else None,
        }
        for p in paths
    ]
    if agg.status.loc[~agg.status["reason"].isin(_NOT_OF_PLATFORM), "statements"].sum() == 0:
        seen = agg.other_platforms.sort_values("statements", ascending=False).head(10)
        names = ", ".join(f"{r.platform_name!r} ({r.statements})" for r in seen.itertuples())
        msg = (
            f"no statement of platform {platform!r} in the files (compared case-insensitively "
            f"with platform_name); platforms found: {names or 'none'}"
        )
        raise SubmissionError([Problem(str(paths[0]), None, "platform_name", msg)], "dumps")
    return agg
