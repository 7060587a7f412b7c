"""Reading filled-in transparency-report templates: CSV parts and XLSX workbooks, and their cells.

A template part is read into a :class:`Sheet`: its header and its rows, each row keeping the line
(CSV) or row number (XLSX) an editor shows, so that every problem can name file, row and column.
Title lines above the header are skipped: the header is the first row whose first cell is
``Applicability`` (parts 1, 3–11) or ``Category label`` (part 2).

XLSX workbooks are read with the standard library (an XLSX file is a zip of XML parts): cell
values as last computed by the spreadsheet (shared strings, inline strings, numbers, booleans),
one :class:`Sheet` per worksheet. No formula is evaluated and no third-party package is needed.

Cell values (:func:`parse_count`, :func:`parse_share`) follow one rule: a cell either holds a
number or is an explicit gap (empty, ``N/A``, ``not applicable``, ``-``); anything else is an
error. Gaps are reported as gaps, never read as zeros.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from risklab.data.errors import Problem, SubmissionError

__all__ = [
    "GAP_WORDS",
    "Cell",
    "Sheet",
    "norm",
    "parse_count",
    "parse_number",
    "parse_share",
    "read_sheets",
]

#: Cell texts meaning "not reported" (compared after :func:`norm`).
GAP_WORDS = frozenset(
    {"", "n/a", "na", "n.a.", "not applicable", "not available", "-", "–", "—", "none reported"}
)
_HEADER_FIRST = ("applicability", "category label")
_MAX_HEADER_SEARCH = 25
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"


def norm(text: object) -> str:
    """Text for matching: NFKC, curly quotes straightened, spaces collapsed, lower case."""
    s = unicodedata.normalize("NFKC", str(text or ""))
    s = (
        s.replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
    )
    return " ".join(s.split()).casefold()


@dataclass(frozen=True)
class Cell:
    """Location of a value: file (or ``book.xlsx[sheet]``), row as an editor shows it, column."""

    file: str
    row: int
    column: str

    def problem(self, message: str) -> Problem:
        """A :class:`Problem` at this cell."""
        return Problem(self.file, self.row, self.column, message)


@dataclass
class Sheet:
    """One template part as read: header, rows (dict by header name) and their line numbers."""

    name: str
    header: list[str]
    rows: list[dict[str, str]]
    lines: list[int]
    header_line: int

    def cell(self, i: int, column: str) -> Cell:
        """Location of column ``column`` of the ``i``-th row."""
        return Cell(self.name, self.lines[i], column)


def _sheet_from_rows(name: str, raw: list[tuple[int, list[str]]]) -> Sheet | None:
    """Find the header among the first rows and build a :class:`Sheet` (None: no header)."""
    for k, (line, cells) in enumerate(raw[:_MAX_HEADER_SEARCH]):
        if cells and norm(cells[0]) in _HEADER_FIRST:
            header = [" ".join(str(c).split()) for c in cells]
            while header and not header[-1]:
                header.pop()
            rows, lines = [], []
            for ln, values in raw[k + 1 :]:
                if not any(str(v).strip() for v in values):
                    continue
                extra = [v for v in values[len(header) :] if str(v).strip()]
                if extra:
                    msg = f"more fields ({len(values)}) than the header ({len(header)})"
                    raise SubmissionError([Problem(name, ln, None, msg)], name)
                padded = list(values) + [""] * (len(header) - len(values))
                rows.append(dict(zip(header, (str(v) for v in padded), strict=False)))
                lines.append(ln)
            return Sheet(name, header, rows, lines, line)
    return None


def _csv_rows(name: str, data: bytes) -> list[tuple[int, list[str]]]:
    if b"\x00" in data[:4096]:
        msg = "binary file (not CSV text); an .xlsx renamed to .csv?"
        raise SubmissionError([Problem(name, None, None, msg)], name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        msg = f"not UTF-8 text (first bad byte at line {line}); save the part as 'CSV UTF-8'"
        raise SubmissionError([Problem(name, line, None, msg)], name) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    out: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise SubmissionError([Problem(name, start, None, f"not valid CSV: {exc}")], name) from exc
    return out


def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + ord(ch) - 64
    return n - 1


def _xlsx_rows(name: str, data: bytes) -> list[tuple[str, list[tuple[int, list[str]]]]]:
    """Worksheets of an XLSX workbook as (sheet name, [(row number, cell texts)])."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        wb = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        shared: list[str] = []
        if "xl/sharedStrings.xml" in zf.namelist():
            sst = ET.fromstring(zf.read("xl/sharedStrings.xml"))
            for si in sst.findall("m:si", _NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
        targets = {
            r.get("Id"): r.get("Target", "") for r in rels.findall(f"{{{_PKG_REL_NS}}}Relationship")
        }
        sheets = []
        for sh in wb.findall("m:sheets/m:sheet", _NS):
            target = targets.get(sh.get(f"{{{_REL_NS}}}id"), "")
            path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            root = ET.fromstring(zf.read(path))
            rows: list[tuple[int, list[str]]] = []
            for r in root.findall("m:sheetData/m:row", _NS):
                cells: dict[int, str] = {}
                for c in r.findall("m:c", _NS):
                    kind = c.get("t", "n")
                    if kind == "inlineStr":
                        value = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
                    else:
                        v = c.find("m:v", _NS)
                        value = "" if v is None or v.text is None else v.text
                        if kind == "s" and value:
                            value = shared[int(value)]
                        elif kind == "b":
                            value = "TRUE" if value == "1" else "FALSE"
                    cells[_col_index(c.get("r", "A"))] = value
                width = max(cells) + 1 if cells else 0
                rows.append(
                    (int(r.get("r", len(rows) + 1)), [cells.get(i, "") for i in range(width)])
                )
            sheets.append((sh.get("name", f"sheet{len(sheets) + 1}"), rows))
        return sheets
    except (zipfile.BadZipFile, KeyError, ET.ParseError, ValueError, IndexError) as exc:
        msg = f"not a readable XLSX workbook: {exc}"
        raise SubmissionError([Problem(name, None, None, msg)], name) from exc


def read_sheets(path: str | Path) -> list[Sheet]:
    """Read one template file (CSV part or XLSX workbook) into sheets.

    Raises
    ------
    SubmissionError
        If the file cannot be read, or a CSV part has no template header.
    """
    p = Path(path)
    name = str(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SubmissionError([Problem(name, None, None, f"cannot read: {exc}")], name) from exc
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        out = []
        for sheet_name, rows in _xlsx_rows(name, data):
            sheet = _sheet_from_rows(f"{name}[{sheet_name}]", rows)
            if sheet is not None:
                out.append(sheet)
        if not out:
            msg = "no worksheet has a template header (a first cell 'Applicability')"
            raise SubmissionError([Problem(name, None, None, msg)], name)
        return out
    if p.suffix.lower() == ".xls":
        msg = "legacy .xls workbooks are not supported; save as .xlsx or export the parts as CSV"
        raise SubmissionError([Problem(name, None, None, msg)], name)
    sheet = _sheet_from_rows(name, _csv_rows(name, data))
    if sheet is None:
        msg = (
            "no template header found in the first lines (a first column 'Applicability' or "
            "'Category label', as in the templates of Implementing Regulation (EU) 2024/2835)"
        )
        raise SubmissionError([Problem(name, 1, None, msg)], name)
    return [sheet]


_NUM = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:[,\u00a0\u202f ]\d{3})+$")


def parse_count(text: str, cell: Cell) -> tuple[int | None, str | None, Problem | None]:
    """A count cell: ``(value, None, None)``, a gap ``(None, reason, None)`` or an error.

    Digits, optionally with ``,`` or space thousands separators (``1,234,567``), or a whole
    number written as a decimal (``1234.0``, as spreadsheets export) are counts.
    """
    raw = str(text).strip()
    if norm(raw) in GAP_WORDS:
        return None, "empty" if not raw else f"reported as {raw!r}", None
    s = raw
    if _THOUSANDS.match(s):
        s = re.sub(r"[,\u00a0\u202f ]", "", s)
    if not _NUM.match(s):
        return None, None, cell.problem(f"must be a whole number, got {raw!r}")
    value = float(s)
    if value < 0:
        return None, None, cell.problem(f"must not be negative, got {raw!r}")
    if value != int(value):
        msg = f"must be a whole number, got {raw!r} (if '.' separates thousands here, remove it)"
        return None, None, cell.problem(msg)
    return int(value), None, None


def parse_share(text: str, cell: Cell) -> tuple[float | None, str | None, Problem | None]:
    """A rate cell (accuracy, precision, recall) as a share in [0, 1].

    ``95%`` and ``95 %`` are percentages; a plain number in [0, 1] is a share; a plain number
    in (1, 100] is read as a percentage and noted (the second element is then the note).
    """
    raw = str(text).strip()
    if norm(raw) in GAP_WORDS:
        return None, "empty" if not raw else f"reported as {raw!r}", None
    s = raw.replace(",", ".") if raw.count(",") == 1 and "." not in raw else raw
    percent = s.endswith("%")
    s = s.rstrip("%").strip()
    if not _NUM.match(s):
        return (
            None,
            None,
            cell.problem(f"must be a share (0.95) or a percentage (95%), got {raw!r}"),
        )
    value = float(s)
    note = None
    if percent:
        value /= 100
    elif value > 1:
        value /= 100
        note = f"{raw!r} read as a percentage ({value:g})"
    if not 0 <= value <= 1:
        return None, None, cell.problem(f"must be between 0 and 100%, got {raw!r}")
    return value, note, None


def parse_number(text: str, cell: Cell) -> tuple[float | None, str | None, Problem | None]:
    """A non-negative number (e.g. moderators in full-time equivalents): value, gap or error."""
    raw = str(text).strip()
    if norm(raw) in GAP_WORDS:
        return None, "empty" if not raw else f"reported as {raw!r}", None
    s = re.sub(r"[,\u00a0\u202f ]", "", raw) if _THOUSANDS.match(raw) else raw
    if not _NUM.match(s):
        return None, None, cell.problem(f"must be a number, got {raw!r}")
    value = float(s)
    if value < 0:
        return None, None, cell.problem(f"must not be negative, got {raw!r}")
    return value, None, None
