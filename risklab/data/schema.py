"""The submission format, defined once: file names, columns, keys, vocabularies and limits.

See ``docs/submission-format.md`` for the user-facing description. Everything the readers and
validators of :mod:`risklab.data` need to know about the format lives here, so that a change to
the format is a change to this module (and the docs and tests), nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from risklab.dims import CHANNELS

__all__ = [
    "AUDIT_DESIGNS",
    "CHANNELS",
    "CONTROL_CHARS",
    "EVIDENCE_TABLES",
    "FORMULA_PREFIXES",
    "MAX_COLUMNS",
    "MAX_COUNT",
    "MAX_FIELD_CHARS",
    "MAX_MEMBER_BYTES",
    "MAX_PROBLEMS_PER_RULE",
    "MAX_TABLE_ROWS",
    "MAX_TOML_BYTES",
    "MAX_TOTAL_BYTES",
    "MAX_ZIP_COMPRESSION_RATIO",
    "MAX_ZIP_MEMBERS",
    "OPTIONAL_TABLES",
    "PERIOD_PATTERN",
    "POLICY_TABLES",
    "REQUIRED_TABLES",
    "ROW_BOUNDS",
    "TABLES",
    "TOLERATED_FILES",
    "TOML_FILE",
    "TOML_SCHEMA",
    "UNSAFE_CHARS",
    "ZIP_RATIO_MIN_BYTES",
    "TableSpec",
]

# --------------------------------------------------------------------------------------- limits
#: Most members a submission .zip may hold (directory entries included).
MAX_ZIP_MEMBERS = 64
#: Largest uncompressed size of one input file, in bytes (256 MiB), in a .zip or a directory.
MAX_MEMBER_BYTES = 256 * 2**20
#: Largest uncompressed size of all input files together, in bytes (1 GiB).
MAX_TOTAL_BYTES = 2**30
#: Largest uncompressed/compressed size ratio of a .zip member (decompression-bomb guard) ...
MAX_ZIP_COMPRESSION_RATIO = 200
#: ... applied to members whose uncompressed size exceeds this many bytes (1 MiB): small,
#: very repetitive files legitimately compress better than 200:1 and cannot be bombs.
ZIP_RATIO_MIN_BYTES = 2**20
#: Most data rows (lines after the header) of one CSV table.
MAX_TABLE_ROWS = 5_000_000
#: Most characters in one CSV field (a category name, a count, ...).
MAX_FIELD_CHARS = 1_000
#: Most columns in the header of one CSV table (the widest table, overlaps.csv, has 6).
MAX_COLUMNS = 100
#: Largest size of submission.toml, in bytes (1 MiB): TOML parsing is slow, and claims for
#: thousands of categories fit in a few hundred KiB.
MAX_TOML_BYTES = 2**20
#: Largest count accepted in any count column (10^15); keeps sums far from int64 overflow.
MAX_COUNT = 10**15
#: Rows listed individually for one rule in one column of one file; further rows breaking the
#: same rule are summarised in one extra problem (row None) giving their number.
MAX_PROBLEMS_PER_RULE = 20

# ---------------------------------------------------------------------------------- vocabularies
#: Audit designs: platform-wide random samples, or risk-selected (purposive) test purchases.
AUDIT_DESIGNS: tuple[str, ...] = ("random", "purposive")
#: A period is a calendar month written ``YYYY-MM``.
PERIOD_PATTERN = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"

_CONTROL_RANGES = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
#: Characters refused in every text value (categories, names, labels), as a regex character
#: class: C0/C1 control characters (line breaks, tabs, NUL, ESC) and the Unicode text-direction
#: overrides and isolates (which make text display differently from what it is). Written with
#: the characters themselves, not escapes, so that Arrow's regex engine (vectorised checks of
#: CSV columns) reads it as Python's ``re`` does.
CONTROL_CHARS = f"[{_CONTROL_RANGES}]"
#: :data:`CONTROL_CHARS` and lone surrogates (not valid Unicode; only Python values, e.g. given
#: to ``from_dataframes``, can hold them), for checks made with Python's ``re``.
UNSAFE_CHARS = f"[{_CONTROL_RANGES}\ud800-\udfff]"
#: First characters refused in a category: a spreadsheet opening a CSV written back by risklab
#: would run such a cell as a formula (CSV injection).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@")

TOML_FILE = "submission.toml"
#: Files tolerated in a submission directory and ignored (besides hidden files).
TOLERATED_FILES: tuple[str, ...] = ("README.md", "truth.json")

#: Keys of submission.toml: section -> {key: required}. ``claims`` is an array of tables.
TOML_SCHEMA: dict[str, dict[str, bool]] = {
    "platform": {"name": True, "period_start": True, "period_end": True},
    "scale": {"name": True, "thresholds": True, "labels": True},
    "claims": {"category": True, "prevalence": True, "band": True, "detection_rate": False},
    "policy": {"strike_threshold": True, "claimed_enforcement": True},
}


@dataclass(frozen=True)
class TableSpec:
    """Description of one CSV table of a submission.

    Attributes
    ----------
    name : str
        Table name (file name without ``.csv``), e.g. ``"listings"``.
    columns : tuple of str
        Exact column names, in canonical order. For ``overlaps`` the channel columns are
        variable and listed separately (see :attr:`dynamic_channels`).
    key : tuple of str
        Columns identifying a row; two rows with the same key in one file are an error.
    counts : tuple of str
        Columns holding non-negative integer counts.
    floats : tuple of str
        Columns holding finite non-negative numbers.
    required : bool
        Whether every submission must include the table.
    dynamic_channels : bool
        True for ``overlaps``: one 0/1 column per detection channel.
    """

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    counts: tuple[str, ...] = ()
    floats: tuple[str, ...] = ()
    required: bool = False
    dynamic_channels: bool = False

    @property
    def file(self) -> str:
        """File name of the table, e.g. ``"listings.csv"``."""
        return f"{self.name}.csv"


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "listings",
            ("category", "period", "listings", "review_hours"),
            key=("category", "period"),
            counts=("listings",),
            floats=("review_hours",),
            required=True,
        ),
        TableSpec(
            "detections",
            ("category", "period", "channel", "detected"),
            key=("category", "period", "channel"),
            counts=("detected",),
            required=True,
        ),
        TableSpec(
            "audits",
            ("category", "period", "design", "sampled", "illegal"),
            key=("category", "period", "design"),
            counts=("sampled", "illegal"),
        ),
        TableSpec(
            "planted",
            ("category", "period", "planted", "caught"),
            key=("category", "period"),
            counts=("planted", "caught"),
        ),
        TableSpec(
            "appeals",
            ("category", "period", "appeals", "overturned"),
            key=("category", "period"),
            counts=("appeals", "overturned"),
        ),
        TableSpec(
            "traders",
            ("strikes", "traders", "suspended"),
            key=("strikes",),
            counts=("strikes", "traders", "suspended"),
        ),
        TableSpec(
            "enforcement",
            ("period", "reached", "suspended"),
            key=("period",),
            counts=("reached", "suspended"),
        ),
        TableSpec(
            "overlaps",
            ("category", "count"),
            key=("category",),
            counts=("count",),
            dynamic_channels=True,
        ),
    )
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, s in TABLES.items() if s.required)
OPTIONAL_TABLES: tuple[str, ...] = tuple(n for n, s in TABLES.items() if not s.required)
#: Tables a regulator's evidence directory may hold; their rows are added to the submission's.
EVIDENCE_TABLES: tuple[str, ...] = ("audits", "planted")

#: (smaller, larger) column pairs checked row by row: smaller <= larger.
ROW_BOUNDS: dict[str, tuple[tuple[str, str], ...]] = {
    "audits": (("illegal", "sampled"),),
    "planted": (("caught", "planted"),),
    "appeals": (("overturned", "appeals"),),
    "traders": (("suspended", "traders"),),
    "enforcement": (("suspended", "reached"),),
}

#: Optional tables that need the ``[policy]`` section of submission.toml (their counts are
#: defined by its ``strike_threshold``).
POLICY_TABLES: tuple[str, ...] = ("enforcement",)

#: Largest strike count a ``traders.csv`` row may have (the repeat-offender likelihood evaluates
#: every count up to the largest, so a hostile 10^15 would exhaust memory).
MAX_STRIKES = 10_000
