"""A small valid submission, as DataFrames and as a directory, for the risklab.data tests.

Three categories (written out of order on purpose: toys, medicines, cosmetics), three periods
(2024-01..03), two channels (proactive, notice), random and purposive audits, planted listings.
Every number is distinct, so a value landing in the wrong cell of the Dataset is caught.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

CATEGORIES_IN_FILE = ["toys", "medicines", "cosmetics"]
CATEGORIES = sorted(CATEGORIES_IN_FILE)  # cosmetics, medicines, toys
PERIODS = ["2024-01", "2024-02", "2024-03"]
CHANNELS_USED = ["proactive", "notice"]
TABLE_NAMES = ("listings", "detections", "audits", "planted", "appeals", "traders", "overlaps")


def listings_value(cat: str, period: str) -> int:
    """Listings of a cell: distinct per cell."""
    return 1000 * (CATEGORIES.index(cat) + 1) + 10 * PERIODS.index(period)


def hours_value(cat: str, period: str) -> float:
    """Review hours of a cell: distinct, non-integral."""
    return 0.5 + CATEGORIES.index(cat) + 0.25 * PERIODS.index(period)


def detected_value(cat: str, period: str, channel: str) -> int:
    """Detections of a cell and channel: distinct, far below the listings."""
    base = (CATEGORIES.index(cat) + 1) * (PERIODS.index(period) + 1)
    return base + (100 if channel == "notice" else 0)


def valid_frames(*, full: bool = False) -> dict[str, Any]:
    """The keyword arguments of ``Submission.from_dataframes`` for a valid submission.

    Parameters
    ----------
    full : bool
        Also include appeals, traders and overlaps (and a policy, which is always included).
    """
    cells = [(c, p) for c in CATEGORIES_IN_FILE for p in PERIODS]
    listings = pd.DataFrame(
        {
            "category": [c for c, _ in cells],
            "period": [p for _, p in cells],
            "listings": [listings_value(c, p) for c, p in cells],
            "review_hours": [hours_value(c, p) for c, p in cells],
        }
    )
    det_rows = [
        (c, p, ch, detected_value(c, p, ch)) for ch in CHANNELS_USED for c, p in cells
    ]  # fmt: skip
    detections = pd.DataFrame(det_rows, columns=["category", "period", "channel", "detected"])
    audits = pd.DataFrame(
        [
            ("toys", "2024-01", "random", 200, 3),
            ("medicines", "2024-01", "random", 150, 2),
            ("toys", "2024-02", "random", 180, 1),
            ("toys", "2024-03", "purposive", 40, 6),
        ],
        columns=["category", "period", "design", "sampled", "illegal"],
    )
    planted = pd.DataFrame(
        [("toys", "2024-01", 10, 4), ("medicines", "2024-02", 8, 8)],
        columns=["category", "period", "planted", "caught"],
    )
    frames: dict[str, Any] = {
        "platform": {"name": "ShopCo", "period_start": "2024-01", "period_end": "2024-12"},
        "scale": {
            "name": "likelihood", "thresholds": [0.002, 0.006], "labels": ["low", "medium", "high"]
        },
        "claims": [
            {"category": "toys", "prevalence": 0.001, "band": "low"},
            {"category": "medicines", "prevalence": 0.004, "band": "medium", "detection_rate": 0.9},
            {"category": "cosmetics", "prevalence": 0.0005, "band": "low"},
        ],
        "policy": {"strike_threshold": 3, "claimed_enforcement": 0.95},
        "listings": listings,
        "detections": detections,
        "audits": audits,
        "planted": planted,
    }  # fmt: skip
    if full:
        frames["appeals"] = pd.DataFrame(
            [("toys", "2024-01", 12, 3), ("cosmetics", "2024-03", 5, 0)],
            columns=["category", "period", "appeals", "overturned"],
        )
        frames["traders"] = pd.DataFrame(
            [(1, 500, 0), (2, 80, 1), (3, 20, 15), (5, 4, 4)],
            columns=["strikes", "traders", "suspended"],
        )
        frames["overlaps"] = pd.DataFrame(
            [("toys", 1, 0, 30), ("toys", 0, 1, 25), ("toys", 1, 1, 7), ("medicines", 1, 1, 2)],
            columns=["category", "proactive", "notice", "count"],
        )
    return frames


def toml_dict(frames: dict[str, Any]) -> dict[str, Any]:
    """The submission.toml document of ``frames``."""
    doc = {k: frames[k] for k in ("platform", "scale", "claims") if k in frames}
    if frames.get("policy") is not None:
        doc["policy"] = frames["policy"]
    return doc


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, pd.DataFrame):
        return value.to_csv(index=False, lineterminator="\n").encode("utf-8")
    if isinstance(value, dict):
        return tomli_w.dumps(value).encode("utf-8")
    raise TypeError(type(value))


def submission_files(*, full: bool = False, **overrides: Any) -> dict[str, bytes]:
    """File name -> bytes of a submission directory.

    ``overrides`` keys are table names (``listings``...) or ``toml``; a value is a DataFrame,
    a dict (TOML), raw ``str``/``bytes`` written verbatim, or None to leave the file out.
    ``extra`` maps further file names to contents.
    """
    frames = valid_frames(full=full)
    contents: dict[str, Any] = {"submission.toml": toml_dict(frames)}
    for name in TABLE_NAMES:
        if name in frames:
            contents[f"{name}.csv"] = frames[name]
    extra = overrides.pop("extra", {})
    for key, value in overrides.items():
        fname = "submission.toml" if key == "toml" else f"{key}.csv"
        if value is None:
            contents.pop(fname, None)
        else:
            contents[fname] = value
    out = {name: _as_bytes(v) for name, v in contents.items()}
    out.update({name: _as_bytes(v) for name, v in extra.items()})
    return out


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def write_submission_dir(
    tmp_path: Path, name: str = "submission", *, full: bool = False, **overrides: Any
) -> Path:
    """Write the valid submission (with ``overrides``, see :func:`submission_files`)."""
    return write_files(tmp_path / name, submission_files(full=full, **overrides))


def write_zip(path: Path, files: dict[str, bytes], folder: str | None = None) -> Path:
    """Write ``files`` into a .zip at ``path``, at the root or inside ``folder``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}" if folder else name, data)
    return path


def set_cell(frames: dict[str, Any], table: str, pos: int, column: str, value: Any) -> None:
    """Put ``value`` (any type, e.g. the text ``'3.5'``) into one cell of a table."""
    df = frames[table]
    df[column] = df[column].astype(object)
    df.loc[df.index[pos], column] = value


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A .zip of ``files`` in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()
