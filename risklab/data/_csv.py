"""Parsing CSV bytes into all-text DataFrames that remember each row's line number.

Values are kept as text here; typing and validation happen in :mod:`risklab.data._checks`, so
that an error message can quote exactly what the file says.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from risklab.data.errors import Problem
from risklab.data.schema import MAX_COLUMNS, MAX_FIELD_CHARS, MAX_TABLE_ROWS

__all__ = ["RawTable", "read_csv_bytes"]

_LINE_IN_MESSAGE = re.compile(r"line (\d+)")
#: Byte-order marks of encodings other than UTF-8 (UTF-32 first: its LE mark starts like UTF-16's).
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
)  # fmt: skip


@dataclass
class RawTable:
    """A CSV table as text.

    Attributes
    ----------
    file : str
        File name used in problems (e.g. ``"listings.csv"``, ``"evidence/audits.csv"``).
    header : list of str
        Column names as written in the header line.
    frame : pandas.DataFrame
        One text column per header name (duplicated header names keep only the first); blank
        lines removed; default RangeIndex.
    lines : numpy.ndarray
        1-based line number of each row of ``frame`` in the file (int64).
    """

    file: str
    header: list[str]
    frame: pd.DataFrame
    lines: np.ndarray


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _record_start_lines(text: str) -> np.ndarray | None:
    """Start line of each record after the header, following quoted multi-line fields.

    None when the csv module cannot follow the file (e.g. a field over its 128 KiB limit, which
    the field-length check then reports).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    starts = []
    prev = 0
    try:
        for _ in reader:
            starts.append(prev + 1)
            prev = reader.line_num
    except csv.Error:
        return None
    return np.asarray(starts[1:], dtype=np.int64)


def read_csv_bytes(raw: bytes, file: str) -> tuple[RawTable | None, list[Problem]]:
    """Decode and parse one CSV file.

    Parameters
    ----------
    raw : bytes
        File contents. UTF-8, optionally with a byte-order mark.
    file : str
        File name used in problems.

    Returns
    -------
    table : RawTable or None
        None when the file cannot be read at all (encoding, NUL bytes, malformed lines, too many
        rows, no data rows).
    problems : list of Problem
    """
    for bom, encoding in _OTHER_BOMS:
        if raw.startswith(bom):
            msg = f"is {encoding} text; save the table as a UTF-8 CSV file"
            return None, [Problem(file, 1, None, msg)]
    nul = raw.find(b"\x00")
    if nul >= 0:
        msg = "contains a NUL byte; save the table as a plain-text UTF-8 CSV file"
        return None, [Problem(file, _line_of(raw, nul), None, msg)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        msg = f"is not valid UTF-8 (byte 0x{bad}); save the table as a UTF-8 CSV file"
        return None, [Problem(file, _line_of(raw, exc.start), None, msg)]
    if not text.strip():
        return None, [Problem(file, None, None, "is empty: expected a header line and data rows")]
    try:
        header = next(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return None, [Problem(file, 1, None, f"cannot parse the header line: {exc}")]
    if not any(header):
        return None, [Problem(file, 1, None, "the first line must be the header (column names)")]
    if len(header) > MAX_COLUMNS:
        msg = f"the header has {len(header):,} columns; a table may have at most {MAX_COLUMNS}"
        return None, [Problem(file, 1, None, msg)]
    if any(len(name) > MAX_FIELD_CHARS for name in header):
        msg = f"has a column name longer than {MAX_FIELD_CHARS:,} characters"
        return None, [Problem(file, 1, None, msg)]
    problems = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(file, 1, name, "column appears twice in the header"))
        seen.add(name)
    try:
        with warnings.catch_warnings():
            # index_col=False: a first data row with more fields than the header must not turn
            # its leading fields into an index (shifting every column); pandas then drops the
            # extra fields with this warning, made an error here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                header=None,
                skiprows=1,
                names=list(range(len(header))),
                index_col=False,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                nrows=MAX_TABLE_ROWS + 1,
                engine="c",
            )
    except pd.errors.ParserWarning:
        msg = f"cannot be parsed as CSV: the row has more fields than the header ({len(header)})"
        problems.append(Problem(file, 2, None, msg))
        return None, problems
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        text_exc = str(exc).replace("Error tokenizing data. C error: ", "")
        m = _LINE_IN_MESSAGE.search(text_exc)
        row = int(m.group(1)) if m else None
        problems.append(Problem(file, row, None, f"cannot be parsed as CSV: {text_exc.strip()}"))
        return None, problems
    if len(frame) > MAX_TABLE_ROWS:
        msg = f"has more than {MAX_TABLE_ROWS:,} data rows, the most a table may hold"
        problems.append(Problem(file, None, None, msg))
        return None, problems
    lines = np.arange(len(frame), dtype=np.int64) + 2
    if '"' in text:
        multiline = any(frame[c].str.contains("\n|\r", regex=True).any() for c in frame.columns)
        if multiline:
            starts = _record_start_lines(text)
            if starts is not None and len(starts) == len(frame):
                lines = starts
    # Keep the first of duplicated header names; name columns by the header.
    keep = [i for i, name in enumerate(header) if name not in header[:i]]
    frame = frame[keep]
    frame.columns = [header[i] for i in keep]
    for col in frame.columns:
        too_long = frame[col].str.len().to_numpy() > MAX_FIELD_CHARS
        if too_long.any():
            row = int(lines[np.flatnonzero(too_long)[0]])
            msg = f"has a field longer than {MAX_FIELD_CHARS:,} characters"
            problems.append(Problem(file, row, col, msg))
            return None, problems
    blank = np.ones(len(frame), dtype=bool)
    for col in frame.columns:
        blank &= (frame[col] == "").to_numpy()
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if len(frame) == 0:
        problems.append(Problem(file, None, None, "has a header but no data rows"))
        return None, problems
    return RawTable(file, header, frame, lines), problems
