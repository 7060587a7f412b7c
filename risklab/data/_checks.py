"""Vectorised validation of one CSV table: header, cell types and values, row rules, duplicates.

Each check works on whole columns with pandas/numpy; Python loops run only over the rows that
are reported (at most :data:`~risklab.data.schema.MAX_PROBLEMS_PER_RULE` per rule, the rest
summarised), so validating millions of rows costs seconds. Cross-table checks live in
:mod:`risklab.data._crosscheck`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from risklab.data._csv import RawTable
from risklab.data.errors import Problem
from risklab.data.schema import (
    AUDIT_DESIGNS,
    CHANNELS,
    CONTROL_CHARS,
    FORMULA_PREFIXES,
    MAX_COUNT,
    MAX_PROBLEMS_PER_RULE,
    MAX_STRIKES,
    PERIOD_PATTERN,
    ROW_BOUNDS,
    UNSAFE_CHARS,
    TableSpec,
)

__all__ = ["Collector", "ParsedTable", "check_table", "quote"]

_COUNT_DIGITS = len(str(MAX_COUNT))
#: A plain decimal number as written by people and by pandas: ASCII digits, optional fraction
#: and exponent. No sign, spaces, underscores, non-ASCII digits, hex, "inf" or "nan".
_DECIMAL = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_UNSAFE = re.compile(UNSAFE_CHARS)


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def quote(value: object, limit: int = 40) -> str:
    """Quote a cell value for a message, shortening long ones; control characters escaped."""
    s = str(value)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = _UNSAFE.sub(_escape_control, s)
    return "'" + s.replace("'", "\\'") + "'"


class Collector:
    """Accumulates problems, listing at most ``MAX_PROBLEMS_PER_RULE`` rows per rule."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, row: int | None, column: str | None, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(file, row, column, message))

    def capped(
        self,
        file: str,
        column: str | None,
        n: int,
        item: Callable[[int], tuple[int | None, str]],
        rule: str,
    ) -> None:
        """Record ``n`` problems of one rule, listing the first few and summarising the rest.

        ``item(k)`` returns the ``(row, message)`` of the k-th offending item.
        """
        shown = min(n, MAX_PROBLEMS_PER_RULE)
        for k in range(shown):
            row, msg = item(k)
            self.add(file, row, column, msg)
        if n > shown:
            self.add(file, None, column, f"{n - shown:,} more rows where {rule} (not listed)")

    def rows(
        self,
        file: str,
        column: str | None,
        mask: np.ndarray,
        lines: np.ndarray,
        message: Callable[[int], str],
        rule: str,
    ) -> None:
        """Record a problem per row where ``mask`` is true; ``message(i)`` gets the position."""
        idx = np.flatnonzero(mask)
        self.capped(file, column, len(idx), lambda k: (int(lines[idx[k]]), message(idx[k])), rule)


@dataclass
class ParsedTable:
    """A table with typed columns and a record of its invalid cells.

    Attributes
    ----------
    spec : TableSpec
    file : str
        File name used in problems.
    frame : pandas.DataFrame
        Known columns present in the file, typed (counts int64 with 0 in invalid cells,
        floats float64 with NaN, text as str); canonical column order.
    lines : numpy.ndarray
        Line number of each row.
    bad : dict of str to numpy.ndarray
        Per column, True where the cell is invalid (or fails a row rule involving it).
    complete : bool
        True when the header had every required column and no unknown one.
    channels : list of str
        For ``overlaps``: the channel columns, in canonical order.
    """

    spec: TableSpec
    file: str
    frame: pd.DataFrame
    lines: np.ndarray
    bad: dict[str, np.ndarray] = field(default_factory=dict)
    complete: bool = True
    channels: list[str] = field(default_factory=list)

    def valid(self, *columns: str) -> np.ndarray:
        """Rows whose given columns are all present and valid."""
        ok = np.ones(len(self.frame), dtype=bool)
        for c in columns:
            if c not in self.bad:
                return np.zeros(len(self.frame), dtype=bool)
            ok &= ~self.bad[c]
        return ok

    @property
    def row_ok(self) -> np.ndarray:
        """Rows where every cell is valid."""
        return self.valid(*self.frame.columns)


def _header(raw: RawTable, spec: TableSpec, col: Collector) -> tuple[list[str], bool, list[str]]:
    """Check the header; return the known columns present, completeness and channel columns."""
    allowed = list(spec.columns) + (list(CHANNELS) if spec.dynamic_channels else [])
    complete = True
    for name in raw.header:
        if name not in allowed:
            hint = difflib.get_close_matches(name.strip().lower(), allowed, n=1, cutoff=0.6)
            did = f" (did you mean '{hint[0]}'?)" if hint else ""
            col.add(raw.file, 1, name, f"unknown column{did}; expected: {', '.join(allowed)}")
            complete = False
    for name in spec.columns:
        if name not in raw.header:
            col.add(raw.file, 1, name, "missing required column")
            complete = False
    channels = [c for c in CHANNELS if c in raw.header] if spec.dynamic_channels else []
    if spec.dynamic_channels and len(channels) < 2:
        col.add(
            raw.file,
            1,
            None,
            "needs a 0/1 column for each of at least two detection channels "
            f"(from: {', '.join(CHANNELS)})",
        )
        complete = False
    present = [c for c in spec.columns[:-1] if c in raw.header] + channels
    present += [c for c in spec.columns[-1:] if c in raw.header]
    return present, complete, channels


def _text_cells(
    s: pd.Series, file: str, name: str, lines: np.ndarray, col: Collector
) -> np.ndarray:
    empty = (s == "").to_numpy()
    col.rows(file, name, empty, lines, lambda i: "missing value", f"'{name}' is missing")
    spaced = ~empty & (s != s.str.strip()).to_numpy()
    col.rows(
        file,
        name,
        spaced,
        lines,
        lambda i: f"has leading or trailing spaces: {quote(s.iat[i])}",
        f"'{name}' has leading or trailing spaces",
    )
    control = ~empty & ~spaced & s.str.contains(CONTROL_CHARS, regex=True).to_numpy(dtype=bool)
    col.rows(
        file,
        name,
        control,
        lines,
        lambda i: (
            "must be plain text on one line: no control characters (line breaks, tabs, NUL, "
            f"escape sequences) or text-direction overrides, got {quote(s.iat[i])}"
        ),
        f"'{name}' contains control characters",
    )
    formula = ~empty & ~spaced & s.str.startswith(FORMULA_PREFIXES).to_numpy(dtype=bool)
    col.rows(
        file,
        name,
        formula,
        lines,
        lambda i: (
            f"must not start with {', '.join(map(repr, FORMULA_PREFIXES))}: a spreadsheet "
            f"would run it as a formula, got {quote(s.iat[i])}"
        ),
        f"'{name}' starts like a spreadsheet formula",
    )
    return empty | spaced | control | formula


def _vocab_cells(
    s: pd.Series,
    allowed: tuple[str, ...],
    what: str,
    file: str,
    name: str,
    lines: np.ndarray,
    col: Collector,
) -> np.ndarray:
    empty = (s == "").to_numpy()
    col.rows(file, name, empty, lines, lambda i: "missing value", f"'{name}' is missing")
    unknown = ~empty & ~s.isin(allowed).to_numpy()
    expected = ", ".join(allowed)
    col.rows(
        file,
        name,
        unknown,
        lines,
        lambda i: f"unknown {what} {quote(s.iat[i])}; expected one of: {expected}",
        f"'{name}' is not one of {expected}",
    )
    return empty | unknown


def _period_cells(
    s: pd.Series,
    period_range: tuple[str, str] | None,
    file: str,
    lines: np.ndarray,
    col: Collector,
) -> np.ndarray:
    empty = (s == "").to_numpy()
    col.rows(file, "period", empty, lines, lambda i: "missing value", "'period' is missing")
    malformed = ~empty & ~s.str.fullmatch(PERIOD_PATTERN).to_numpy(dtype=bool, na_value=False)
    col.rows(
        file,
        "period",
        malformed,
        lines,
        lambda i: f"must be a month written YYYY-MM, got {quote(s.iat[i])}",
        "'period' is not a YYYY-MM month",
    )
    bad = empty | malformed
    if period_range is not None:
        lo, hi = period_range
        outside = ~bad & ((s < lo) | (s > hi)).to_numpy(dtype=bool, na_value=False)
        col.rows(
            file,
            "period",
            outside,
            lines,
            lambda i: (
                f"{quote(s.iat[i])} is outside the reporting period {lo} to {hi} of submission.toml"
            ),
            "'period' is outside the reporting period",
        )
        bad |= outside
    return bad


def _count_cells(
    s: pd.Series, file: str, name: str, lines: np.ndarray, col: Collector
) -> tuple[np.ndarray, np.ndarray]:
    empty = (s == "").to_numpy()
    col.rows(
        file,
        name,
        empty,
        lines,
        lambda i: "missing value (expected a non-negative integer)",
        f"'{name}' is missing",
    )
    digits = s.str.fullmatch(r"[0-9]+").to_numpy(dtype=bool, na_value=False)
    malformed = ~empty & ~digits
    col.rows(
        file,
        name,
        malformed,
        lines,
        lambda i: f"must be a non-negative integer, got {quote(s.iat[i])}",
        f"'{name}' is not a non-negative integer",
    )
    values = np.zeros(len(s), dtype=np.int64)
    short = digits & (s.str.lstrip("0").str.len().to_numpy() <= _COUNT_DIGITS)
    values[short] = s[short].astype("int64").to_numpy(dtype=np.int64)
    huge = digits & ((values > MAX_COUNT) | ~short)
    values[huge] = 0
    col.rows(
        file,
        name,
        huge,
        lines,
        lambda i: f"is too large ({quote(s.iat[i])}); counts may be at most {MAX_COUNT:.0e}",
        f"'{name}' is too large",
    )
    return values, empty | malformed | huge


def _float_cells(
    s: pd.Series, file: str, name: str, lines: np.ndarray, col: Collector
) -> tuple[np.ndarray, np.ndarray]:
    empty = (s == "").to_numpy()
    col.rows(
        file,
        name,
        empty,
        lines,
        lambda i: "missing value (expected a number >= 0)",
        f"'{name}' is missing",
    )
    plain = s.str.fullmatch(_DECIMAL).to_numpy(dtype=bool, na_value=False)
    try:  # fast path (Arrow cast) when every cell parses; else parse cell by cell
        values = s.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        wrong = ~empty & ~(plain & np.isfinite(values) & (values >= 0))
    col.rows(
        file,
        name,
        wrong,
        lines,
        lambda i: f"must be a finite number >= 0, got {quote(s.iat[i])}",
        f"'{name}' is not a finite number >= 0",
    )
    values = np.where(empty | wrong, np.nan, values)
    return values, empty | wrong


def check_table(
    raw: RawTable,
    spec: TableSpec,
    period_range: tuple[str, str] | None,
    col: Collector,
) -> ParsedTable:
    """Validate one table on its own (no other table needed).

    Parameters
    ----------
    raw : RawTable
        The table as text.
    spec : TableSpec
        Its description.
    period_range : (str, str) or None
        Reporting period from submission.toml, or None if that is invalid (range not checked).
    col : Collector
        Receives the problems.

    Returns
    -------
    ParsedTable
    """
    file, lines = raw.file, raw.lines
    present, complete, channels = _header(raw, spec, col)
    data: dict[str, object] = {}
    bad: dict[str, np.ndarray] = {}
    for name in present:
        s = raw.frame[name]
        if name in spec.counts:
            data[name], bad[name] = _count_cells(s, file, name, lines, col)
        elif name in spec.floats:
            data[name], bad[name] = _float_cells(s, file, name, lines, col)
        elif name in channels:
            bad[name] = _vocab_cells(s, ("0", "1"), "value", file, name, lines, col)
            data[name] = np.where(s.to_numpy() == "1", 1, 0).astype(np.int64)
        elif name == "period":
            bad[name] = _period_cells(s, period_range, file, lines, col)
            data[name] = s
        elif name == "channel":
            bad[name] = _vocab_cells(s, CHANNELS, "channel", file, name, lines, col)
            data[name] = s
        elif name == "design":
            bad[name] = _vocab_cells(s, AUDIT_DESIGNS, "design", file, name, lines, col)
            data[name] = s
        else:
            bad[name] = _text_cells(s, file, name, lines, col)
            data[name] = s
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(raw.frame)))
    pt = ParsedTable(spec, file, frame, lines, bad, complete, channels)
    _row_rules(pt, col)
    _duplicates(pt, col)
    return pt


def _row_rules(pt: ParsedTable, col: Collector) -> None:
    """Rules within one row: bounds between counts, minimum values, empty capture histories."""
    f, file, lines = pt.frame, pt.file, pt.lines
    for small, large in ROW_BOUNDS.get(pt.spec.name, ()):
        ok = pt.valid(small, large)
        a, b = (
            (f[small].to_numpy() if small in f else None),
            (f[large].to_numpy() if large in f else None),
        )
        if a is None or b is None:
            continue
        over = ok & (a > b)
        col.rows(
            file,
            small,
            over,
            lines,
            lambda i, a=a, b=b, s=small, g=large: f"{s} ({a[i]}) is greater than {g} ({b[i]})",
            f"'{small}' exceeds '{large}'",
        )
        pt.bad[small] = pt.bad[small] | over
    minimum = {"listings": "listings", "traders": "strikes"}
    name = minimum.get(pt.spec.name)
    if name is not None and name in f:
        low = pt.valid(name) & (f[name].to_numpy() < 1)
        why = {
            "listings": "a category-period with no active listings cannot be assessed",
            "strikes": "rows count traders with 1, 2, ... detected violations",
        }[name]
        col.rows(file, name, low, lines, lambda i: f"must be at least 1 ({why})", f"'{name}' < 1")
        pt.bad[name] = pt.bad[name] | low
    if pt.spec.name == "traders" and "strikes" in f:
        high = pt.valid("strikes") & (f["strikes"].to_numpy() > MAX_STRIKES)
        col.rows(
            file,
            "strikes",
            high,
            lines,
            lambda i: (
                f"must be at most {MAX_STRIKES} (the model's work grows with the largest "
                "strike count; pool larger counts into the last row)"
            ),
            f"'strikes' > {MAX_STRIKES}",
        )
        pt.bad["strikes"] = pt.bad["strikes"] | high
    if pt.channels:
        ok = pt.valid(*pt.channels)
        zero = ok & (f[pt.channels].to_numpy().sum(axis=1) == 0)
        col.rows(
            file,
            None,
            zero,
            lines,
            lambda i: (
                "capture history with every channel 0 is not allowed: listings no channel "
                "caught are never observed (that number is what the model estimates)"
            ),
            "the capture history is all zeros",
        )
        for c in pt.channels:
            pt.bad[c] = pt.bad[c] | zero


def _duplicates(pt: ParsedTable, col: Collector) -> None:
    """Two rows with the same key in one file."""
    key = list(pt.spec.key) + pt.channels
    ok = pt.valid(*key)
    if not ok.any():
        return
    keys = pt.frame.loc[ok, key]
    dup = keys.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    group = keys.groupby(key, sort=False).ngroup().to_numpy()
    first_line = pd.Series(pt.lines[ok]).groupby(group).transform("first").to_numpy()
    pos = np.flatnonzero(ok)
    mask = np.zeros(len(pt.frame), dtype=bool)
    mask[pos[dup]] = True
    first_by_pos = np.zeros(len(pt.frame), dtype=np.int64)
    first_by_pos[pos] = first_line
    what = ", ".join(key)

    def message(i: int) -> str:
        vals = ", ".join(f"{k} {quote(pt.frame[k].iat[i])}" for k in key)
        return f"duplicate row for {vals} (first at row {first_by_pos[i]}); merge them into one"

    col.rows(pt.file, None, mask, pt.lines, message, f"rows repeat the same {what}")
    for k in key:
        pt.bad[k] = pt.bad[k] | mask
