"""Recognising the parts of a transparency report and reading their figures.

The harmonised templates (Implementing Regulation (EU) 2024/2835, Annex I) come in two shapes:

- **wide** parts 3–6: one row per category of illegal content (``STATEMENT_CATEGORY_*`` rows,
  each followed by its ``KEYWORD_*`` sub-category rows; ``KEYWORD_OTHER`` belongs to the
  category above it), one column per figure;
- **long** parts 1 and 7–11: one row per ``Section, Indicator, Scope`` with the figure in
  ``Value``.

A part is recognised by its header, not its file name (platforms rename files; a workbook has
one part per sheet). Header and indicator names are compared after :func:`norm` (case, spacing
and curly quotes do not matter: the official templates themselves have trailing spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from risklab.data._templates_read import Cell, Sheet, norm, parse_count
from risklab.data.errors import Problem
from risklab.data.mappings import KNOWN_CATEGORIES, KNOWN_KEYWORDS

__all__ = ["LongRow", "ParsedSheet", "WideRow", "parse_sheet"]

PART_NAMES = {
    1: "summary",
    2: "category names",
    3: "member-state orders",
    4: "notices",
    5: "own-initiative measures (illegal content)",
    6: "own-initiative measures (terms and conditions)",
    7: "complaints and recidivism",
    8: "automated means",
    9: "human resources",
    10: "recipients per member state",
    11: "qualitative information",
}

#: Wide figures read per part: normalised header -> short name.
WIDE_MEASURES: dict[int, dict[str, str]] = {
    3: {
        "number of orders to act against illegal content received": "orders",
        "number of specific items of information included in the total number of orders to "
        "act against illegal content": "order_items",
        "number of orders to provide information": "information_orders",
    },
    4: {
        "number of notices received": "notices",
        "number of notices received from trusted flaggers": "tf_notices",
        "number of specific items of information included in the total number of "
        "notices": "notice_items",
        "number of specific items of information included in the total number of notices by "
        "trusted flaggers (trusted flagger notices)": "tf_notice_items",
        "number of actions taken on the basis of the law": "actions_law",
        "number of actions taken on the basis of the law "
        "(trusted flagger notices)": "tf_actions_law",
        "number of actions taken on the basis of the terms and conditions of the "
        "service": "actions_tc",
        "number of actions taken on the basis of the terms and conditions of the service "
        "(trusted flagger notices)": "tf_actions_tc",
    },
    5: {
        "number of measures taken at the provider's own initiative": "measures",
        "number of measures taken after detection with solely automated "
        "means": "automated_measures",
    },
}
WIDE_MEASURES[6] = WIDE_MEASURES[5]
_RESTRICTION_PREFIXES = (
    "visibility restriction",
    "monetary restriction",
    "provision of the service",
    "account restriction",
)
_CATEGORY_COLUMNS = (
    "category of illegal content",
    "category of incompatibility with the provider's terms and conditions",
)
_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*/\s*(\d{4}-\d{2}-\d{2})$")


@dataclass
class WideRow:
    """A row of parts 3–6: one category (or keyword, or TOTAL) and its figures."""

    part: int
    db_category: str
    keyword: str | None
    scope: str
    values: dict[str, int | None]
    gaps: dict[str, str]
    cells: dict[str, Cell]


@dataclass
class LongRow:
    """A row of parts 1, 7–11: section, indicator, scope and the raw value text."""

    part: int
    section: str
    indicator: str
    scope: str
    value: str
    cell: Cell


@dataclass
class ParsedSheet:
    """What one sheet contributed."""

    name: str
    parts: set[int] = field(default_factory=set)
    wide: list[WideRow] = field(default_factory=list)
    long: list[LongRow] = field(default_factory=list)
    periods: dict[str, Cell] = field(default_factory=dict)
    services: dict[str, Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", norm(text)).strip("_")


def identify_part(sheet: Sheet) -> int | None:
    """Template part number of a sheet from its header (None if not recognised)."""
    cols = {norm(c) for c in sheet.header}
    if "category label" in cols:
        return 2
    if "number of orders to act against illegal content received" in cols:
        return 3
    if "number of notices received" in cols:
        return 4
    if "number of measures taken at the provider's own initiative" in cols:
        return 6 if _CATEGORY_COLUMNS[1] in cols else 5
    if {"indicator", "value"} <= cols:
        if "section" in cols:
            return 7  # long format; the section of each row decides its part
        return 11 if "reporting period" in cols else 1
    return None


_SECTION_PART = {
    "internal complaints mechanism": 7,
    "out-of-court dispute settlement bodies": 7,
    "suspensions imposed on repeated offenders": 7,
    "use of automated means for content moderation": 8,
    "human resources dedicated to content moderation": 9,
    "amar": 10,
}


def parse_sheet(sheet: Sheet, service: str | None, problems: list[Problem]) -> ParsedSheet:
    """Read the figures of one sheet; problems are appended to ``problems``."""
    out = ParsedSheet(sheet.name)
    part = identify_part(sheet)
    if part is None:
        msg = (
            "not a part of the harmonised transparency-report template (header not recognised: "
            f"{', '.join(sheet.header[:6])}...)"
        )
        problems.append(Problem(sheet.name, sheet.header_line, None, msg))
        return out
    col = {norm(c): c for c in sheet.header}
    keep = _rows_of_service(sheet, col, service, out)
    if part in (2, 11):
        out.parts.add(part)
        out.notes.append(f"{sheet.name}: part {part} ({PART_NAMES[part]}) is not used by risklab")
        return out
    _collect_periods(sheet, col, keep, out, problems)
    if part in (3, 4, 5, 6):
        out.parts.add(part)
        _parse_wide(sheet, part, col, keep, out, problems)
    elif part == 1:
        out.parts.add(part)
        for i in keep:
            row = sheet.rows[i]
            out.long.append(
                LongRow(
                    1,
                    "summary",
                    norm(row.get(col["indicator"], "")),
                    "",
                    row.get(col["value"], ""),
                    sheet.cell(i, col["value"]),
                )
            )
    else:
        _parse_long(sheet, col, keep, out, problems)
    return out


def _rows_of_service(
    sheet: Sheet, col: dict[str, str], service: str | None, out: ParsedSheet
) -> list[int]:
    if "service" not in col:
        return list(range(len(sheet.rows)))
    keep = []
    for i, row in enumerate(sheet.rows):
        value = " ".join(row.get(col["service"], "").split())
        if value:
            out.services.setdefault(value, sheet.cell(i, col["service"]))
        if service is None or not value or norm(value) == norm(service):
            keep.append(i)
    return keep


def _collect_periods(
    sheet: Sheet, col: dict[str, str], keep: list[int], out: ParsedSheet, problems: list[Problem]
) -> None:
    if "reporting period" not in col:
        return
    bad: set[str] = set()
    for i in keep:
        text = sheet.rows[i].get(col["reporting period"], "").strip()
        cell = sheet.cell(i, col["reporting period"])
        m = _PERIOD.match(text)
        if m:
            out.periods.setdefault(f"{m.group(1)}/{m.group(2)}", cell)
        elif text not in bad:
            bad.add(text)
            hint = " (the template placeholder: fill in the dates)" if "YYYY" in text else ""
            msg = f"reporting period must be 'YYYY-MM-DD/YYYY-MM-DD', got {text!r}{hint}"
            problems.append(cell.problem(msg))


def _parse_wide(
    sheet: Sheet,
    part: int,
    col: dict[str, str],
    keep: list[int],
    out: ParsedSheet,
    problems: list[Problem],
) -> None:
    cat_col = next((col[c] for c in _CATEGORY_COLUMNS if c in col), None)
    if cat_col is None:
        problems.append(
            Problem(sheet.name, sheet.header_line, None, "no 'Category of illegal content' column")
        )
        return
    measures = {col[h]: name for h, name in WIDE_MEASURES[part].items() if h in col}
    missing = [h for h in WIDE_MEASURES[part] if h not in col]
    if missing:
        out.notes.append(f"{sheet.name}: columns not found (read as gaps): {'; '.join(missing)}")
    for c in sheet.header:
        if norm(c).startswith(_RESTRICTION_PREFIXES):
            measures[c] = _slug(c)
    scope_col = col.get("scope")
    current: str | None = None
    seen: dict[tuple[str, str | None, str], int] = {}
    for i in keep:
        row = sheet.rows[i]
        code = row.get(cat_col, "").strip()
        cell = sheet.cell(i, cat_col)
        keyword = None
        if code == "TOTAL":
            current, db_category = None, "TOTAL"
        elif code in KNOWN_CATEGORIES:
            current = db_category = code
        elif code in KNOWN_KEYWORDS:
            if current is None:
                problems.append(
                    cell.problem(f"keyword {code} is not below a STATEMENT_CATEGORY row")
                )
                continue
            db_category, keyword = current, code
        else:
            msg = (
                f"unknown category code {code!r}; expected TOTAL, a STATEMENT_CATEGORY_* or a "
                "KEYWORD_* code of the DSA Transparency Database"
            )
            problems.append(cell.problem(msg))
            continue
        scope = " ".join(row.get(scope_col, "").split()).upper() if scope_col else "TOTAL"
        if scope != "TOTAL" and not (len(scope) == 2 and scope.isalpha()):
            filled = [h for h in measures if row.get(h, "").strip()]
            if filled:
                msg = (
                    f"scope {scope!r} is not TOTAL or a member-state code (the template "
                    "placeholder 'AT, [...], SE' stands for one row per member state)"
                )
                problems.append(sheet.cell(i, scope_col or cat_col).problem(msg))
            continue
        key = (db_category, keyword, scope)
        if key in seen:
            msg = f"{code} (scope {scope}) appears twice (first at row {seen[key]})"
            problems.append(cell.problem(msg))
            continue
        seen[key] = sheet.lines[i]
        values: dict[str, int | None] = {}
        gaps: dict[str, str] = {}
        cells: dict[str, Cell] = {}
        for header, name in measures.items():
            c = sheet.cell(i, header)
            value, gap, problem = parse_count(row.get(header, ""), c)
            if problem is not None:
                problems.append(problem)
                continue
            values[name] = value
            cells[name] = c
            if gap is not None:
                gaps[name] = gap
        for name in WIDE_MEASURES[part].values():
            if name not in values:
                values[name] = None
                gaps.setdefault(name, "column missing")
        out.wide.append(WideRow(part, db_category, keyword, scope, values, gaps, cells))


def _parse_long(
    sheet: Sheet, col: dict[str, str], keep: list[int], out: ParsedSheet, problems: list[Problem]
) -> None:
    needed = ("section", "indicator", "scope", "value")
    if any(n not in col for n in needed):
        missing = [n for n in needed if n not in col]
        problems.append(
            Problem(sheet.name, sheet.header_line, None, f"missing column(s): {', '.join(missing)}")
        )
        return
    unknown: set[str] = set()
    for i in keep:
        row = sheet.rows[i]
        section = norm(row.get(col["section"], ""))
        part = _SECTION_PART.get(section)
        if part is None:
            if section not in unknown:
                unknown.add(section)
                out.notes.append(
                    f"{sheet.name}, row {sheet.lines[i]}: section {section!r} "
                    "not used by risklab, ignored"
                )
            continue
        out.parts.add(part)
        out.long.append(
            LongRow(
                part,
                section,
                norm(row.get(col["indicator"], "")),
                norm(row.get(col["scope"], "")),
                row.get(col["value"], ""),
                sheet.cell(i, col["value"]),
            )
        )
