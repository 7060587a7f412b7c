"""Import transparency reports filled in on the harmonised templates (Impl. Reg. (EU) 2024/2835).

Providers of intermediary services publish their transparency reports (Arts. 15, 24 and 42 DSA)
on the templates of Implementing Regulation (EU) 2024/2835 (compulsory for reporting periods from
1 July 2025): CSV files, one per part, or an XLSX workbook with one sheet per part.
:func:`read_transparency_report` reads any set of those parts and extracts what risklab uses:

========================  =============================================  ======================
what                      template                                       risklab use
========================  =============================================  ======================
detections by channel     parts 3 (orders), 4 (notices), 5–6 (own        ``detections.csv``
and category              initiative)                                    (cross-check of the
                                                                         Transparency Database)
automated means           part 8: accuracy, precision, recall per scope  claims to test
moderators                part 9: internal, external, per language       review capacity
complaints                part 7: upheld / (partially) reversed          ``appeals.csv``
repeat offenders          part 7: suspensions for manifestly illegal     reported
                          content
recipients                part 10: per member state                      exposure (reported)
========================  =============================================  ======================

Detections per channel are defined as (per category row): **proactive** = own-initiative
measures of part 5 + part 6; **trusted_flagger** = actions on trusted-flagger notices (on the
basis of the law + of the terms and conditions, part 4); **notice** = all actions on notices −
those on trusted-flagger notices (part 4 reports trusted-flagger figures as a subset of the
totals); **authority** = items of information in orders to act (part 3, scope ``TOTAL``).

Nothing missing is read as zero. Empty cells, ``N/A`` and parts not supplied are **gaps**, listed
in :attr:`TransparencyReport.gaps` and propagated (a channel with a gap for a category is
unknown, not zero) — unless ``blank_as_zero=True``, which is then recorded. Malformed values
(text in a count, negative numbers, unknown category codes, the template's date placeholder)
raise :class:`~risklab.data.SubmissionError` naming file, row and column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from risklab.data._tdb_sources import file_sha256
from risklab.data._templates_extract import CHANNEL_FORMULAS, RATES, Extract
from risklab.data._templates_parts import ParsedSheet, parse_sheet
from risklab.data._templates_read import norm, read_sheets
from risklab.data.errors import Problem, SubmissionError
from risklab.data.mappings import CategoryMapping

__all__ = ["ReviewAssumptions", "TransparencyReport", "read_transparency_report"]


@dataclass(frozen=True)
class ReviewAssumptions:
    """How moderators (part 9) become review hours per category and month — an assumption.

    The templates count moderators, the model needs hours of review per category and month
    (``review_hours`` of ``listings.csv``). The conversion is::

        hours[k, t] = moderators × hours_per_moderator_month × share_on_listings × weight[k, t]

    Attributes
    ----------
    hours_per_moderator_month : float, default 115.0
        Review hours one moderator gives in a month. Default: full time (40 h a week, 46 working
        weeks a year) of which 75 % is spent reviewing: 40 × 46 × 0.75 / 12 = 115.
    share_on_listings : float, default 1.0
        Share of all moderation time spent on the product categories assessed (1.0 for a
        marketplace whose moderators review listings only).
    moderators : {"internal+external", "internal", "linguistic"}, default "internal+external"
        Which head count of part 9 to use.
    allocation : {"listings", "equal"}, default "listings"
        How hours are split across categories within a month: in proportion to active
        listings, or equally.
    """

    hours_per_moderator_month: float = 115.0
    share_on_listings: float = 1.0
    moderators: str = "internal+external"
    allocation: str = "listings"

    def __post_init__(self) -> None:
        if not self.hours_per_moderator_month > 0:
            raise ValueError("hours_per_moderator_month must be positive")
        if not 0 < self.share_on_listings <= 1:
            raise ValueError("share_on_listings must be in (0, 1]")
        if self.moderators not in ("internal+external", "internal", "linguistic"):
            raise ValueError("moderators must be 'internal+external', 'internal' or 'linguistic'")
        if self.allocation not in ("listings", "equal"):
            raise ValueError("allocation must be 'listings' or 'equal'")


@dataclass
class TransparencyReport:
    """The figures risklab uses from one transparency report.

    Attributes
    ----------
    provider, service : str or None
        Name of the provider (part 1) and the service selected.
    reporting_period : str or None
        ``YYYY-MM-DD/YYYY-MM-DD``.
    parts : list of int
        Template parts found.
    counts : pandas.DataFrame
        Every figure of parts 3–6: ``part, db_category, keyword, scope, measure, value, gap,
        file, row, column`` (``value`` is missing where ``gap`` says why).
    detections : pandas.DataFrame
        ``category, channel, detected`` per risklab category (``detected`` missing = gap).
    detections_detail : pandas.DataFrame
        ``db_category, keyword, channel, value, outcome, category, note``: how each figure was
        mapped (``outcome`` mapped, excluded or unmapped).
    automated_means : pandas.DataFrame
        ``scope, indicator, value, gap, note, file, row``; rates are shares in [0, 1].
    moderators : pandas.DataFrame
        ``kind (internal, external, linguistic), scope (total or language), value, gap, file,
        row``.
    complaints : pandas.DataFrame
        ``section, indicator, scope, value, gap, file, row`` (part 7).
    appeals : dict
        Complaints against removal decisions: ``complaints, upheld, partially_reversed,
        reversed`` (None = gap).
    repeat_offender_suspensions : int or None
        Suspensions for manifestly illegal content (Art. 23).
    recipients : pandas.DataFrame
        ``member_state, recipients`` (``TOTAL`` included when reported).
    gaps : pandas.DataFrame
        ``file, row, column, item, reason``: every figure risklab would use that is missing.
    notes : list of str
    settings : dict
        Mapping and options used.
    inputs : list of dict
        ``path, bytes, sha256`` of the files read.
    """

    provider: str | None
    service: str | None
    reporting_period: str | None
    parts: list[int]
    counts: pd.DataFrame
    detections: pd.DataFrame
    detections_detail: pd.DataFrame
    automated_means: pd.DataFrame
    moderators: pd.DataFrame
    complaints: pd.DataFrame
    appeals: dict[str, int | None]
    repeat_offender_suspensions: int | None
    recipients: pd.DataFrame
    gaps: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    # ---------------------------------------------------------------------------- queries
    def rate(
        self, indicator: str, scopes: Sequence[str] = ("own_initiative", "total")
    ) -> float | None:
        """A published rate (accuracy, precision or recall), first scope reported wins."""
        am = self.automated_means
        for scope in scopes:
            hit = am[(am["indicator"] == indicator) & (am["scope"] == scope) & am["value"].notna()]
            if len(hit):
                return float(hit["value"].iloc[0])
        return None

    def claims(self) -> dict[str, dict[str, float]]:
        """Published accuracy, precision and recall per scope: the claims to test."""
        am = self.automated_means
        out: dict[str, dict[str, float]] = {}
        for r in am[am["indicator"].isin(RATES) & am["value"].notna()].itertuples():
            out.setdefault(r.indicator, {})[r.scope] = float(r.value)
        return out

    def moderator_count(self, which: str = "internal+external") -> float | None:
        """Moderators (total scope) per :attr:`ReviewAssumptions.moderators`; None if a gap."""
        mod = self.moderators
        tot = mod[(mod["scope"] == "total")].set_index("kind")["value"]
        kinds = ["internal", "external"] if which == "internal+external" else [which]
        vals = [tot.get(k) for k in kinds]
        if any(v is None or pd.isna(v) for v in vals):
            return None
        return float(sum(vals))

    def review_hours_per_month(self, assumptions: ReviewAssumptions | None = None) -> float | None:
        """Review hours a month on the assessed categories, under ``assumptions`` (None: gap)."""
        a = assumptions or ReviewAssumptions()
        n = self.moderator_count(a.moderators)
        return None if n is None else n * a.hours_per_moderator_month * a.share_on_listings

    def period_bounds(self) -> tuple[str, str] | None:
        """First and last month ``YYYY-MM`` of the reporting period."""
        if not self.reporting_period:
            return None
        start, end = self.reporting_period.split("/")
        return start[:7], end[:7]

    # ------------------------------------------------------------------------------ files
    def to_directory(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
        """Write ``report_*.csv`` tables and ``report.json``; see :meth:`from_directory`."""
        from risklab.data.transparency_db import write_files

        files = {f"report_{n}.csv": _csv(getattr(self, n)) for n in _TABLES}
        meta = {
            "format": "risklab transparency-report extract",
            "version": 1,
            "provider": self.provider,
            "service": self.service,
            "reporting_period": self.reporting_period,
            "parts": self.parts,
            "appeals": self.appeals,
            "repeat_offender_suspensions": self.repeat_offender_suspensions,
            "claims": self.claims(),
            "notes": self.notes,
            "settings": self.settings,
            "inputs": self.inputs,
        }
        files["report.json"] = (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode()
        return write_files(Path(path), files, overwrite=overwrite)

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> TransparencyReport:
        """Read what :meth:`to_directory` wrote."""
        root = Path(path)
        try:
            meta = json.loads((root / "report.json").read_text(encoding="utf-8"))
            tables = {
                n: pd.read_csv(
                    root / f"report_{n}.csv",
                    keep_default_na=False,
                    na_values=[""],
                    dtype=_DTYPES.get(n),
                )
                for n in _TABLES
            }
        except (OSError, ValueError) as exc:
            msg = f"not a transparency-report extract (report.json / report_*.csv): {exc}"
            raise SubmissionError([Problem(str(root), None, None, msg)], str(root)) from exc
        tables["detections"]["detected"] = tables["detections"]["detected"].astype("Int64")
        return cls(
            provider=meta.get("provider"),
            service=meta.get("service"),
            reporting_period=meta.get("reporting_period"),
            parts=meta.get("parts", []),
            appeals=meta.get("appeals", {}),
            repeat_offender_suspensions=meta.get("repeat_offender_suspensions"),
            notes=meta.get("notes", []),
            settings=meta.get("settings", {}),
            inputs=meta.get("inputs", []),
            **tables,
        )


_TABLES = (
    "counts",
    "detections",
    "detections_detail",
    "automated_means",
    "moderators",
    "complaints",
    "recipients",
    "gaps",
)
_DTYPES = {
    "counts": {"db_category": str, "keyword": str, "scope": str, "gap": str},
    "detections": {"category": str, "channel": str},
    "detections_detail": {"db_category": str, "keyword": str, "category": str},
    "automated_means": {"scope": str, "gap": str, "note": str},
    "moderators": {"scope": str, "gap": str},
    "recipients": {"member_state": str},
    "gaps": {"column": str},
}


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


# -------------------------------------------------------------------------------- reading
def read_transparency_report(
    files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    service: str | None = None,
    mapping: CategoryMapping | str | os.PathLike[str] | None = None,
    blank_as_zero: bool = False,
) -> TransparencyReport:
    """Read a transparency report from its template parts (CSV files and/or XLSX workbooks).

    Parameters
    ----------
    files : path-like or sequence of path-like
        The CSV parts (any subset; parts are recognised by their header) or an XLSX workbook.
    service : str, optional
        Service to read when the report covers several (the ``Service`` column).
    mapping : CategoryMapping or path-like, optional
        Category/keyword rules (default :meth:`CategoryMapping.default`), as for the
        Transparency Database.
    blank_as_zero : bool, default False
        Read empty figure cells of parts 3–6 as 0 instead of gaps (recorded in ``settings``).

    Returns
    -------
    TransparencyReport

    Raises
    ------
    SubmissionError
        Listing every malformed value, unknown category code, unrecognised part, unfilled
        reporting period, or a report without any figure.
    """
    if mapping is None:
        mapping = CategoryMapping.default()
    elif not isinstance(mapping, CategoryMapping):
        mapping = CategoryMapping.from_file(mapping)
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise ValueError("no input files")
    problems: list[Problem] = []
    parsed: list[ParsedSheet] = []
    for p in paths:
        for sheet in read_sheets(p):
            parsed.append(parse_sheet(sheet, service, problems))
    source = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    services = {}
    for ps in parsed:
        for name, cell in ps.services.items():
            services.setdefault(norm(name), (name, cell))
    if service is None and len(services) > 1:
        names = ", ".join(repr(v[0]) for v in services.values())
        first = next(iter(services.values()))[1]
        problems.append(
            first.problem(
                f"the report covers several services ({names}); choose one with service=/--service"
            )
        )
    elif service is not None and services and norm(service) not in services:
        names = ", ".join(repr(v[0]) for v in services.values())
        problems.append(
            Problem(source, None, "Service", f"service {service!r} not in the report ({names})")
        )
    periods = {}
    for ps in parsed:
        for per, cell in ps.periods.items():
            periods.setdefault(per, cell)
    if len(periods) > 1:
        listed = ", ".join(periods)
        problems.append(
            next(iter(periods.values())).problem(
                f"several reporting periods ({listed}); read one report at a time"
            )
        )
    wide = [r for ps in parsed for r in ps.wide]
    long = [r for ps in parsed for r in ps.long]
    parts = sorted({p for ps in parsed for p in ps.parts})
    notes = [n for ps in parsed for n in ps.notes]
    ex = Extract(mapping, parts, blank_as_zero, problems)
    counts = ex.counts_frame(wide)
    detections, detail = ex.detections(wide)
    am = ex.automated(long)
    mods = ex.moderators(long)
    complaints, appeals, suspensions = ex.complaints(long)
    recipients = ex.recipients(long)
    summary = {r.indicator: r.value.strip() for r in long if r.part == 1}
    if not periods and summary.get("starting date of reporting period"):
        periods[
            f"{summary['starting date of reporting period']}/"
            f"{summary.get('ending date of reporting period', '')}"
        ] = None
    has_figure = any(
        df[col].notna().any()
        for df, col in (
            (counts, "value"),
            (am, "value"),
            (mods, "value"),
            (complaints, "value"),
            (recipients, "recipients"),
        )
    )
    if not problems and not has_figure:
        problems.append(Problem(source, None, None, "no figure filled in: a blank template?"))
    if problems:
        raise SubmissionError(problems, source)
    provider = summary.get("name of the service provider") or None
    return TransparencyReport(
        provider=None if provider in (None, "Text") else provider,
        service=service or (next(iter(services.values()))[0] if len(services) == 1 else None),
        reporting_period=next(iter(periods), None),
        parts=parts,
        counts=counts,
        detections=detections,
        detections_detail=detail,
        automated_means=am,
        moderators=mods,
        complaints=complaints,
        appeals=appeals,
        repeat_offender_suspensions=suspensions,
        recipients=recipients,
        gaps=pd.DataFrame(ex.gaps, columns=["file", "row", "column", "item", "reason"]),
        notes=notes + ex.notes,
        settings={
            "mapping": mapping.to_records(),
            "mapping_source": mapping.source,
            "blank_as_zero": blank_as_zero,
            "channels": {
                k: [f"part {p} {m} ({'+' if s > 0 else '-'})" for p, m, s in v]
                for k, v in CHANNEL_FORMULAS.items()
            },
        },
        inputs=[
            {"path": str(p), "bytes": Path(p).stat().st_size, "sha256": file_sha256(p)}
            for p in paths
        ],
    )
