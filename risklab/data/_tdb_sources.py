"""Finding the tables inside Transparency Database dump files, one at a time, on disk.

The Commission publishes one zip per day (global, or per platform; "full" and "light"). Since
April 2024 a daily zip holds further zips, each holding CSV parts of up to 100 000 statements;
older dumps hold the CSV files directly. Parquet files are offered for the full global dumps.

DuckDB cannot read inside a zip, so each CSV part is copied (streamed, 1 MiB at a time) to a
private temporary directory, read by DuckDB, and deleted before the next part is extracted. An
inner zip is copied out the same way first (reading members of a zip nested in a zip in place
would re-decompress it from the start for every seek). Disk use is bounded by one inner zip plus
one CSV part; memory by the copy buffer. File names inside archives are never used as paths.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from risklab.data.errors import Problem, SubmissionError

__all__ = ["SourceTable", "file_sha256", "iter_tables", "read_csv_header"]

_COPY_BUFFER = 2**20
_MAX_ZIP_DEPTH = 3


@dataclass(frozen=True)
class SourceTable:
    """One readable table of the input: a CSV part or a Parquet file.

    Attributes
    ----------
    input : str
        The file the user gave.
    member : str
        Path of the table inside the archive(s), ``"/"``-joined across nesting levels, or ``""``
        for a plain file.
    kind : str
        ``"csv"`` or ``"parquet"``.
    path : Path
        A local path DuckDB can read (a temporary copy for archive members).
    """

    input: str
    member: str
    kind: str
    path: Path

    @property
    def label(self) -> str:
        """``input`` or ``input:member``, as used in messages."""
        return f"{self.input}:{self.member}" if self.member else self.input


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_COPY_BUFFER):
            h.update(block)
    return h.hexdigest()


def _kind(name: str) -> str | None:
    low = name.lower()
    if low.endswith((".csv", ".csv.gz")):
        return "csv"
    if low.endswith(".parquet"):
        return "parquet"
    if low.endswith(".zip"):
        return "zip"
    return None


def _ignored(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not parts or any(p.startswith(".") for p in parts) or parts[0] == "__MACOSX"


def iter_tables(files: list[str | Path], workdir: Path, notes: list[str]) -> Iterator[SourceTable]:
    """Yield every table of the given files; archive members are extracted one at a time.

    A yielded temporary copy is deleted when the iteration resumes, so the consumer must finish
    with one table before asking for the next.

    Parameters
    ----------
    files : list of path-like
        Zips (possibly nesting zips), CSV (optionally gzip-compressed) or Parquet files.
    workdir : Path
        Private temporary directory for extracted members.
    notes : list of str
        Receives a note for every archive member that is not a table and was ignored.

    Raises
    ------
    SubmissionError
        If a file does not exist, has an unsupported type, or is not a readable zip.
    """
    counter = iter(range(10**12))
    for f in files:
        path = Path(f)
        name = str(f)
        if not path.is_file():
            raise SubmissionError([Problem(name, None, None, "no such file")], name)
        kind = _kind(path.name)
        if kind is None:
            msg = "unsupported file type; expected a .zip dump, .csv, .csv.gz or .parquet"
            raise SubmissionError([Problem(name, None, None, msg)], name)
        if kind == "zip":
            yield from _iter_zip(path, name, "", workdir, notes, counter, depth=1)
        else:
            yield SourceTable(name, "", kind, path)


def _iter_zip(
    path: Path,
    input_name: str,
    prefix: str,
    workdir: Path,
    notes: list[str],
    counter: Iterator[int],
    depth: int,
) -> Iterator[SourceTable]:
    where = f"{input_name}:{prefix}" if prefix else input_name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        msg = f"not a readable zip: {exc}"
        raise SubmissionError([Problem(where, None, None, msg)], where) from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir() or _ignored(info.filename):
                continue
            member = f"{prefix}{info.filename}"
            kind = _kind(info.filename)
            if kind is None:
                notes.append(f"{input_name}:{member}: not a table, ignored")
                continue
            if info.flag_bits & 0x1:
                msg = "encrypted archive member"
                raise SubmissionError([Problem(f"{input_name}:{member}", None, None, msg)], where)
            if kind == "zip" and depth >= _MAX_ZIP_DEPTH:
                msg = f"zips nested more than {_MAX_ZIP_DEPTH} levels deep"
                raise SubmissionError([Problem(f"{input_name}:{member}", None, None, msg)], where)
            suffix = {"zip": ".zip", "parquet": ".parquet"}.get(kind, ".csv")
            if info.filename.lower().endswith(".gz"):
                suffix = ".csv.gz"
            target = workdir / f"part{next(counter):06d}{suffix}"
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _COPY_BUFFER)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                target.unlink(missing_ok=True)
                msg = f"cannot extract archive member: {exc}"
                raise SubmissionError(
                    [Problem(f"{input_name}:{member}", None, None, msg)], where
                ) from exc
            try:
                if kind == "zip":
                    yield from _iter_zip(
                        target, input_name, member + "/", workdir, notes, counter, depth + 1
                    )
                else:
                    yield SourceTable(input_name, member, kind, target)
            finally:
                target.unlink(missing_ok=True)


def read_csv_header(table: SourceTable) -> list[str]:
    """Column names of a CSV table (its first line; a UTF-8 byte-order mark is dropped).

    Raises
    ------
    SubmissionError
        If the file is empty or its first line cannot be read as CSV text.
    """
    opener = gzip.open if table.path.name.lower().endswith(".gz") else open
    try:
        with opener(table.path, "rb") as fh:
            first = fh.readline(1 << 20)
    except OSError as exc:
        raise SubmissionError(
            [Problem(table.label, 1, None, f"cannot read: {exc}")], table.label
        ) from exc
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = "header is not UTF-8 text"
        raise SubmissionError([Problem(table.label, 1, None, msg)], table.label) from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(c.strip() for c in rows[0]):
        raise SubmissionError([Problem(table.label, 1, None, "empty file")], table.label)
    return [c.strip() for c in rows[0]]
