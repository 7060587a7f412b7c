"""Atomic file and directory writes: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "publish_directory"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def publish_directory(staging: Path, out: Path, *, force: bool) -> list[Path]:
    """Move every file of ``staging`` into ``out`` (each by an atomic rename).

    All files are staged first, so a failure before this call leaves ``out`` untouched. Existing
    files are replaced only with ``force``; the check happens before anything is moved.

    Returns
    -------
    list of Path
        The published files, in ``out``.
    """
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    targets = [out / p.relative_to(staging) for p in files]
    clashes = [t for t in targets if t.exists()]
    if clashes and not force:
        names = ", ".join(str(t) for t in clashes[:5])
        raise FileExistsError(f"would overwrite {names}; pass --force to replace")
    for source, target in zip(files, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    shutil.rmtree(staging, ignore_errors=True)
    return targets
