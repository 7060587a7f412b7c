"""Reading the raw files of a submission: a directory or a .zip archive, safely.

Archives are read in memory, never extracted. Unsafe archives (paths escaping the archive,
symlinks, nested archives, too many members, decompression bombs) are refused before any member is
decompressed. The limits are the ``MAX_*`` constants of :mod:`risklab.data.schema`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from risklab.data.errors import Problem, SubmissionError
from risklab.data.schema import (
    MAX_MEMBER_BYTES,
    MAX_TOTAL_BYTES,
    MAX_ZIP_COMPRESSION_RATIO,
    MAX_ZIP_MEMBERS,
    ZIP_RATIO_MIN_BYTES,
)

__all__ = ["InputFiles", "hash_inputs", "read_source"]

#: Member suffixes refused inside a .zip: archives and compressed files are never unpacked.
ARCHIVE_SUFFIXES = (
    ".zip", ".gz", ".tgz", ".tar", ".bz2", ".tbz", ".xz", ".txz", ".7z", ".rar", ".zst", ".lz",
    ".lzma", ".z", ".jar",
)  # fmt: skip
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class InputFiles:
    """The recognised files of one submission or evidence source.

    Attributes
    ----------
    files : dict of str to bytes
        Raw bytes of each recognised file, keyed by its name inside the source.
    problems : list of Problem
        Problems found while reading (unknown files, sizes, unreadable members).
    prefix : str
        Prefix of file names in problems: ``""`` for a submission, ``"evidence/"`` for evidence.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    prefix: str = ""


def _ignored(parts: list[str]) -> bool:
    """Hidden files/folders and macOS resource forks are skipped silently."""
    return any(p.startswith(".") for p in parts) or parts[0] == "__MACOSX"


def _unknown_message(name: str, allowed: tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(name.lower(), allowed, n=1, cutoff=0.6)
    did = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"unknown file{did}; this folder may hold only {', '.join(allowed)}"


def read_source(
    path: str | os.PathLike[str],
    *,
    allowed: tuple[str, ...],
    tolerated: tuple[str, ...] = (),
    prefix: str = "",
    error_source: str | None = None,
) -> InputFiles:
    """Read the recognised files of a directory or a .zip archive.

    Parameters
    ----------
    path : path-like
        Directory or .zip archive.
    allowed : tuple of str
        File names that are read.
    tolerated : tuple of str
        File names that are accepted but not read (e.g. ``README.md``).
    prefix : str
        Prefix for file names in problems (``"evidence/"`` for an evidence source).
    error_source : str, optional
        Source named by a :class:`SubmissionError` raised for an unusable path or unsafe archive.

    Returns
    -------
    InputFiles

    Raises
    ------
    SubmissionError
        If the path does not exist, is neither a directory nor a .zip archive, or is an unsafe
        or corrupt archive.
    """
    p = Path(path)
    label = prefix + p.name if prefix else p.name or str(p)
    err_src = error_source or str(path)
    if p.is_dir():
        return _read_directory(p, allowed, tolerated, prefix)
    if p.is_file() and zipfile.is_zipfile(p):
        return _read_zip(p, allowed, tolerated, prefix, label, err_src)
    if not p.exists():
        msg = "no such file or directory"
    else:
        msg = "is neither a directory nor a .zip archive"
    raise SubmissionError([Problem(label, None, None, msg)], err_src)


def _read_directory(
    p: Path, allowed: tuple[str, ...], tolerated: tuple[str, ...], prefix: str
) -> InputFiles:
    out = InputFiles(prefix=prefix)
    total = 0
    for entry in sorted(os.scandir(p), key=lambda e: e.name):
        name = entry.name
        if _ignored([name]) or name in tolerated:
            continue
        if entry.is_dir():
            out.problems.append(
                Problem(prefix + name, None, None, "unexpected folder; tables must sit at the top")
            )
            continue
        if name not in allowed:
            out.problems.append(Problem(prefix + name, None, None, _unknown_message(name, allowed)))
            continue
        st = entry.stat()
        if not stat.S_ISREG(st.st_mode):
            out.problems.append(Problem(prefix + name, None, None, "is not a regular file"))
            continue
        size = st.st_size
        total += size
        if size > MAX_MEMBER_BYTES:
            out.problems.append(Problem(prefix + name, None, None, _too_big(size)))
            continue
        if total > MAX_TOTAL_BYTES:
            out.problems.append(
                Problem(prefix + name, None, None, f"input files exceed {_mib(MAX_TOTAL_BYTES)}")
            )
            continue
        out.files[name] = Path(entry.path).read_bytes()
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _too_big(size: int) -> str:
    return f"is {_mib(size)}; a file may be at most {_mib(MAX_MEMBER_BYTES)}"


def _member_problems(info: zipfile.ZipInfo) -> list[str]:
    """Safety problems of one archive member (before anything is decompressed)."""
    name = info.filename
    parts = re.split(r"[/\\]", name)
    out = []
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        out.append("absolute path")
    if ".." in parts:
        out.append("path escapes the archive ('..')")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        out.append("symbolic link")
    if info.flag_bits & 0x1:
        out.append("encrypted member")
    if not info.is_dir() and name.lower().endswith(ARCHIVE_SUFFIXES):
        out.append("nested archive or compressed file (put the plain CSV files in the .zip)")
    if info.file_size > MAX_MEMBER_BYTES:
        out.append(_too_big(info.file_size))
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_COMPRESSION_RATIO:
        out.append(
            f"compression ratio {ratio:,.0f}:1 exceeds {MAX_ZIP_COMPRESSION_RATIO}:1 "
            "(possible decompression bomb)"
        )
    return out


def _read_zip(
    p: Path,
    allowed: tuple[str, ...],
    tolerated: tuple[str, ...],
    prefix: str,
    label: str,
    err_src: str,
) -> InputFiles:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        problem = Problem(label, None, None, f"unreadable .zip: {exc}")
        raise SubmissionError([problem], err_src) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            msg = (
                f"has {len(infos)} members; a submission archive may hold at most {MAX_ZIP_MEMBERS}"
            )
            raise SubmissionError([Problem(label, None, None, msg)], err_src)
        unsafe = [
            Problem(label, None, None, f"member '{info.filename}': {msg}")
            for info in infos
            for msg in _member_problems(info)
        ]
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            unsafe.append(
                Problem(
                    label, None, None, f"members total {_mib(total)}, over {_mib(MAX_TOTAL_BYTES)}"
                )
            )
        if unsafe:
            raise SubmissionError(unsafe, err_src)
        members = []
        for info in infos:
            parts = [q for q in info.filename.replace("\\", "/").split("/") if q]
            if info.is_dir() or not parts or _ignored(parts):
                continue
            members.append((parts, info))
        # Accept files at the root, or all inside exactly one top-level folder.
        tops = {parts[0] for parts, _ in members}
        strip = len(tops) == 1 and all(len(parts) >= 2 for parts, _ in members)
        out = InputFiles(prefix=prefix)
        for parts, info in members:
            rel = parts[1:] if strip else parts
            name = "/".join(rel)
            if len(rel) == 1 and rel[0] in tolerated:
                continue
            if len(rel) > 1:
                msg = (
                    "unexpected folder in the archive; put the tables at its top (or in one folder)"
                )
                out.problems.append(Problem(prefix + name, None, None, msg))
                continue
            if name not in allowed:
                out.problems.append(
                    Problem(prefix + name, None, None, _unknown_message(name, allowed))
                )
                continue
            if name in out.files:
                out.problems.append(
                    Problem(prefix + name, None, None, "appears twice in the archive")
                )
                continue
            try:
                out.files[name] = zf.read(info)
            except (
                zipfile.BadZipFile,
                zlib.error,
                NotImplementedError,
                RuntimeError,
                OSError,
            ) as exc:
                out.problems.append(Problem(prefix + name, None, None, f"unreadable member: {exc}"))
        return out


def hash_inputs(files: list[tuple[str, str, bytes]]) -> str:
    """SHA-256 over input files in sorted ``(dir, name)`` order.

    Parameters
    ----------
    files : list of (dir, name, bytes)
        ``dir`` is ``""`` for submission files and ``"evidence"`` for evidence files.

    Returns
    -------
    str
        Hex digest. Each file contributes its UTF-8 name (``dir/name`` for evidence), a NUL byte,
        its length as 8 big-endian bytes and its raw bytes, so no two different inputs collide by
        concatenation. Directory and .zip forms of the same files give the same digest.
    """
    h = hashlib.sha256()
    for d, name, data in sorted(files, key=lambda f: (f[0], f[1])):
        label = f"{d}/{name}" if d else name
        h.update(label.encode("utf-8") + b"\0")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()
