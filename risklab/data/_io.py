"""Reading the raw files of a submission: a directory or a .zip archive, safely.

Archives are read in memory, never extracted. Unsafe archives (paths escaping the archive,
symlinks, nested archives, too many members, decompression bombs) are refused before any member is
decompressed, and members are decompressed in bounded chunks with the size limits enforced on the
bytes actually produced, not only on the sizes the archive declares. In a directory, symbolic links
are refused and files are read with a bounded read. The limits are the ``MAX_*`` constants of
:mod:`risklab.data.schema`; ``docs/threat-model.md`` explains them.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
import zipfile
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
#: Compression methods read: Deflate (what every "compress folder" tool writes) and none. zipfile
#: inflates a bzip2 or LZMA chunk without an output bound, so those could be bombs.
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: Central-directory bytes allowed per member (fixed header, name, extra fields, comment). With
#: MAX_ZIP_MEMBERS this bounds the work of listing an archive before its members are counted:
#: zipfile parses the whole central directory on opening (about 20 us per entry).
_DIRECTORY_BYTES_PER_MEMBER = 4096
#: Decompressed bytes read from a member at a time.
_CHUNK = 2**20


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
    if p.is_file() and _is_zip(p):
        return _read_zip(p, allowed, tolerated, prefix, label, err_src)
    if not p.exists():
        msg = "no such file or directory"
    else:
        msg = "is neither a directory nor a .zip archive"
    raise SubmissionError([Problem(label, None, None, msg)], err_src)


def _is_zip(p: Path) -> bool:
    try:
        return zipfile.is_zipfile(p)
    except Exception:  # zipfile is not hardened against hostile bytes; see _read_zip
        return False


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
        if entry.is_symlink():  # could point anywhere, e.g. at a secret of the reader
            msg = "is a symbolic link; put the file itself in the folder"
            out.problems.append(Problem(prefix + name, None, None, msg))
            continue
        st = entry.stat(follow_symlinks=False)
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
        data = _read_regular(Path(entry.path))
        if isinstance(data, str):
            out.problems.append(Problem(prefix + name, None, None, data))
        else:
            out.files[name] = data
    return out


def _read_regular(path: Path) -> bytes | str:
    """The bytes of a regular file of at most ``MAX_MEMBER_BYTES``, or why it is refused.

    Opened without following a symbolic link and without blocking (a FIFO swapped in after the
    directory was listed), checked to be a regular file on the open descriptor, and read with a
    bound (a file that grew after it was listed).
    """
    limit = MAX_MEMBER_BYTES
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if st.st_size > limit:
            return _too_big(st.st_size)
        data = fh.read(st.st_size + 1)  # one buffer of the size listed
        while len(data) <= limit and (chunk := fh.read(min(_CHUNK, limit + 1 - len(data)))):
            data += chunk  # the file grew after it was listed
    if len(data) > limit:
        return f"grew while being read; a file may be at most {_mib(limit)}"
    return data


def _short(name: str, limit: int = 120) -> str:
    """A member name for a message, shortened (names may be 64 KiB long)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _too_big(size: int) -> str:
    return f"is {_mib(size)}; a file may be at most {_mib(MAX_MEMBER_BYTES)}"


def _member_problems(info: zipfile.ZipInfo) -> list[str]:
    """Safety problems of one archive member (before anything is decompressed)."""
    name = info.filename
    parts = re.split(r"[/\\]", name)
    out = []
    if not info.is_dir() and info.compress_type not in _METHODS:
        out.append(
            f"compression method {info.compress_type} is not supported; use Deflate (the default "
            "of 'compress folder' tools)"
        )
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
    directory = _central_directory_size(p)
    most = MAX_ZIP_MEMBERS * _DIRECTORY_BYTES_PER_MEMBER
    if directory is not None and directory > most:
        msg = (
            f"its list of members takes {_mib(directory)}, more than {MAX_ZIP_MEMBERS} members "
            f"could need ({_mib(most)}); a submission archive may hold at most {MAX_ZIP_MEMBERS}"
        )
        raise SubmissionError([Problem(label, None, None, msg)], err_src)
    try:
        zf = zipfile.ZipFile(p)
    except Exception as exc:  # BadZipFile, but also ValueError, EOFError, struct.error...
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
            Problem(label, None, None, f"member '{_short(info.filename)}': {msg}")
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
            parts = [q for q in info.filename.replace("\\", "/").split("/") if q not in ("", ".")]
            if info.is_dir() or not parts or _ignored(parts):
                continue
            members.append((parts, info))
        # Accept files at the root, or all inside exactly one top-level folder.
        tops = {parts[0] for parts, _ in members}
        strip = len(tops) == 1 and all(len(parts) >= 2 for parts, _ in members)
        out = InputFiles(prefix=prefix)
        budget = MAX_TOTAL_BYTES
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
                data = _read_member(zf, info, budget)
            except Exception as exc:  # BadZipFile (bad CRC), zlib.error, EOFError, OSError...
                out.problems.append(Problem(prefix + name, None, None, f"unreadable member: {exc}"))
                continue
            if isinstance(data, str):
                out.problems.append(Problem(prefix + name, None, None, data))
                continue
            budget -= len(data)
            out.files[name] = data
        return out


def _central_directory_size(p: Path) -> int | None:
    """Size of the central directory that ``zipfile.ZipFile`` would parse, or None if unknown.

    Read with zipfile's own end-of-archive reader, so that the bound applies to exactly what
    zipfile will read; should that private helper go away, the check is skipped (the member count
    is still checked after opening).
    """
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:
        return None
    try:
        with p.open("rb") as fh:
            rec = end_record(fh)
        return None if rec is None else int(rec[getattr(zipfile, "_ECD_SIZE", 5)])
    except Exception:
        return None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes | str:
    """Decompress one member in bounded chunks; the bytes, or why reading stopped.

    The limits apply to the bytes actually produced: an archive may declare small sizes and
    inflate to more (zipfile stops at the declared size and reports a bad CRC, but that is
    zipfile's behaviour, not a promise; this bound holds whatever the archive says).
    """
    chunks = []
    size = 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            size += len(chunk)
            if size > info.file_size:
                return f"inflates to more than the {info.file_size:,} bytes it declares"
            if size > MAX_MEMBER_BYTES:
                return f"inflates beyond the limit; a file may be at most {_mib(MAX_MEMBER_BYTES)}"
            if size > budget:
                return f"members total more than {_mib(MAX_TOTAL_BYTES)}"
            chunks.append(chunk)
    return b"".join(chunks)


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
