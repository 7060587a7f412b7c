"""Errors raised for invalid submissions.

Every problem found in a submission is a :class:`Problem` naming the file, the line and the
column, so that the person who prepared the files can fix them in an editor. All problems are
collected before anything is raised: a :class:`SubmissionError` carries the full list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from risklab.data.schema import UNSAFE_CHARS

__all__ = ["Problem", "SubmissionError"]

#: Characters a hostile file name, column or value could use to forge or hide lines of a
#: rendered error (line breaks, terminal escape sequences, text-direction overrides).
_UNPRINTABLE = re.compile(UNSAFE_CHARS)


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission.

    Attributes
    ----------
    file : str
        File name inside the submission, e.g. ``"listings.csv"`` or ``"submission.toml"``; files of
        a regulator's evidence directory are prefixed ``"evidence/"``. Problems with the
        submission as a whole (e.g. an unreadable archive) name the directory or archive itself.
    row : int or None
        1-based line number in the file as shown by an editor (in a CSV the header is line 1 and
        the first data row line 2); None when the problem is not about one line.
    column : str or None
        Column name (CSV) or dotted TOML key such as ``"scale.thresholds"`` or
        ``"claims[2].band"`` (``[[claims]]`` blocks are counted from 1); None when the problem is
        not about one column.
    message : str
        What is wrong and, where possible, what was expected.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [_printable(self.file)] if self.file else []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{_printable(self.column)}'")
        prefix = ", ".join(where)
        message = _printable(self.message)
        return f"{prefix}: {message}" if prefix else message


class SubmissionError(ValueError):
    """A submission failed validation.

    Parameters
    ----------
    problems : list of Problem
        Every problem found (at least one).
    source : str
        Path of the submission, or ``"<dataframes>"`` for in-memory tables.

    Notes
    -----
    ``str(err)`` is one readable block::

        Submission sub/ is invalid (2 problems):
        - listings.csv, row 7, column 'listings': must be a non-negative integer, got '-3'
        - submission.toml, column 'claims': category 'toys' in listings.csv has no claim
    """

    problems: list[Problem]
    source: str

    def __init__(self, problems: list[Problem], source: str) -> None:
        self.problems = list(problems)
        self.source = str(source)
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.problems)
        noun = "problem" if n == 1 else "problems"
        lines = [f"Submission {self.source} is invalid ({n} {noun}):"]
        lines.extend(f"- {p}" for p in self.problems)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):  # keep the exception picklable (multiprocessing, Dask workers)
        return (type(self), (self.problems, self.source))

    def by_file(self, file: str) -> list[Problem]:
        """Return the problems that name ``file``.

        Parameters
        ----------
        file : str
            File name as used in :attr:`Problem.file`, e.g. ``"listings.csv"``.

        Returns
        -------
        list of Problem
        """
        return [p for p in self.problems if p.file == file]
