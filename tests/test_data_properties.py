"""Property tests: for arbitrarily mutated submissions the only outcomes are a valid
``Submission`` or a ``SubmissionError`` whose problems name a file -- no other exception, no hang.

Hypothesis starts from the valid submission of ``tests/data_fixtures.py`` and mutates it: cells
replaced by random text, numbers and unicode; rows and columns dropped, duplicated, shuffled;
files truncated, bytes flipped; TOML values replaced by values of other types; files dropped,
renamed or added; the result loaded as a directory or a zip, with or without evidence. The runs
are derandomised (a fixed seed per test) and kept small enough for the fast suite.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as dt
import io
import os
import re
import signal
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risklab.data import Submission, SubmissionError, load_submission
from risklab.data.schema import UNSAFE_CHARS
from tests.data_fixtures import submission_files, toml_dict, valid_frames, write_files

#: CPU seconds one load may take on these small inputs (a few KiB each). CPU, not wall-clock,
#: time: the bound must not depend on what else runs on the machine.
PER_LOAD_SECONDS = 2.0
#: Seconds after which a load is interrupted and reported as a hang.
HANG_SECONDS = 20.0

#: Examples per property: few, with a fixed seed, in the fast suite. For a deep run set e.g.
#: RISKLAB_HYPOTHESIS_EXAMPLES=2000: the examples are then random (``--hypothesis-seed=N`` to
#: repeat a run).
_DEEP = os.environ.get("RISKLAB_HYPOTHESIS_EXAMPLES")
SETTINGS = settings(
    max_examples=int(_DEEP or 20),
    deadline=None,
    derandomize=_DEEP is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEWER = settings(SETTINGS, max_examples=int(_DEEP or 12))

BASE_FILES = submission_files(full=True)
TABLE_FILES = sorted(n for n in BASE_FILES if n.endswith(".csv"))
EVIDENCE_FILES = {
    "audits.csv": b"category,period,design,sampled,illegal\ntoys,2024-02,random,50,1\n",
    "planted.csv": b"category,period,planted,caught\ncosmetics,2024-03,5,2\n",
}
_CONTROL = re.compile(UNSAFE_CHARS)


# -------------------------------------------------------------------------- outcome checks
class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    if not hasattr(signal, "setitimer"):  # pragma: no cover - not on Windows
        yield
        return

    def alarm(signum, frame):
        raise _Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_outcome(load) -> Submission | SubmissionError:
    """Run ``load()``: it must return a Submission or raise a well-formed SubmissionError."""
    start = time.process_time()
    with _time_limit(HANG_SECONDS):
        try:
            result = load()
        except SubmissionError as err:
            result = err
    elapsed = time.process_time() - start
    assert elapsed < PER_LOAD_SECONDS, f"load took {elapsed:.1f} s of CPU"
    if isinstance(result, SubmissionError):
        assert result.problems
        for p in result.problems:
            assert isinstance(p.file, str) and p.file, p
            assert isinstance(p.message, str) and p.message.strip(), p
            assert p.row is None or (isinstance(p.row, int) and p.row >= 1), p
            assert p.column is None or isinstance(p.column, str), p
        text = str(result)
        assert len(text.splitlines()) == len(result.problems) + 1  # one line per problem
        assert not _CONTROL.search(text.replace("\n", ""))
    else:
        assert isinstance(result, Submission)
        assert list(result.claims) == result.categories
        assert result.data["listings"].shape == (len(result.categories), len(result.periods))
        assert (result.data["listings"].values >= 1).all()
    return result


# ------------------------------------------------------------------------- value strategies
SPECIAL_CELLS = [
    "", " ", "0", "1", "-1", "3.0", "3.5", "1e3", "nan", "inf", "-inf", "NaN", "None", "null",
    "toys", "Toys", "toys ", "2024-01", "2024-13", "2024-1", "2023-12", "2025-01", "proactive",
    "notice", "email", "random", "purposive", "=1+1", "@SUM(A1)", "+1", "\ufeff", "\u202e",
    "\u0661\u0662", "\uff11", '"', "'", ",", "\n", "\r\n", "\x00", "\x1b[2J", "9" * 30,
    "0" * 20 + "1", "1_000", "0x10", "1,000", "x" * 1001,
]  # fmt: skip

cell_values = st.one_of(
    st.sampled_from(SPECIAL_CELLS),
    st.text(max_size=8),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "2024-01", "2025-02", "low", "medium", "toys", "x\ny", "\u202e"]),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.times(),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


# -------------------------------------------------------------------------- file mutations
def _rows(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8", "surrogateescape")  # the bytes may have been mutated already
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:  # e.g. a NUL byte or an over-long field: mutate as one-cell lines
        return [[line] for line in text.split("\n")]


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogateescape")


@st.composite
def mutated_table(draw, data: bytes) -> bytes:
    """A CSV table after 1-4 structural or cell mutations."""
    rows = _rows(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(
                ["cell", "cell", "header", "drop_row", "dup_row", "shuffle_rows",
                 "drop_col", "dup_col", "shuffle_cols", "short_row", "long_row"]
            )
        )  # fmt: skip
        n_rows, n_cols = len(rows), max((len(r) for r in rows), default=0)
        if n_rows == 0 or n_cols == 0:
            break
        r = draw(st.integers(0, n_rows - 1))
        c = draw(st.integers(0, n_cols - 1))
        if op in ("cell", "header"):
            target = rows[0] if op == "header" else rows[r]
            if c < len(target):
                target[c] = draw(cell_values)
        elif op == "drop_row" and n_rows > 1:
            del rows[draw(st.integers(1, n_rows - 1))]
        elif op == "dup_row":
            rows.insert(r, list(rows[r]))
        elif op == "shuffle_rows":
            rows = [rows[0], *draw(st.permutations(rows[1:]))]
        elif op == "drop_col":
            rows = [row[:c] + row[c + 1 :] for row in rows]
        elif op == "dup_col":
            rows = [row[: c + 1] + row[c:] for row in rows]
        elif op == "shuffle_cols":
            order = draw(st.permutations(range(n_cols)))
            rows = [[row[i] for i in order if i < len(row)] for row in rows]
        elif op == "short_row":
            rows[r] = rows[r][:c]
        elif op == "long_row":
            rows[r] = [*rows[r], draw(cell_values)]
    return _csv(rows)


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """``data`` truncated, with bytes flipped, inserted or deleted."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        at = draw(st.integers(0, len(out)))
        if op == "truncate":
            del out[at:]
        elif op == "flip" and at < len(out):
            out[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = draw(
                st.one_of(
                    st.binary(min_size=1, max_size=4),
                    st.sampled_from(
                        [b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b'"', b"\r", b"\n\n", b",,,"]
                    ),
                )
            )
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 8))]
    return bytes(out)


def _paths(node, prefix=()):
    """Every path into a TOML document (keys and list positions)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_toml(draw) -> bytes:
    """submission.toml with values replaced by values of any TOML type, keys dropped/added."""
    doc = copy.deepcopy(toml_dict(valid_frames(full=True)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(toml_values)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=6))] = draw(toml_values)
        else:
            parent.append(draw(toml_values))
    if not isinstance(doc, dict):  # pragma: no cover - the root is never replaced
        doc = {}
    return tomli_w.dumps(doc).encode("utf-8")


@st.composite
def mutated_submission(draw) -> tuple[dict[str, bytes], dict[str, bytes] | None]:
    """(submission files, evidence files or None) after a few mutations of any kind."""
    files = dict(BASE_FILES)
    evidence = dict(EVIDENCE_FILES) if draw(st.booleans()) else None
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["table", "table", "table", "bytes", "toml", "toml_bytes", "drop", "rename",
                 "extra", "evidence"]
            )
        )  # fmt: skip
        if kind == "table":
            tables = [n for n in TABLE_FILES if n in files]
            if tables:
                name = draw(st.sampled_from(tables))
                files[name] = draw(mutated_table(files[name]))
        elif kind == "bytes":
            name = draw(st.sampled_from(sorted(files)))
            files[name] = draw(mutated_bytes(files[name]))
        elif kind == "toml":
            files["submission.toml"] = draw(mutated_toml())
        elif kind == "toml_bytes" and "submission.toml" in files:
            files["submission.toml"] = draw(mutated_bytes(files["submission.toml"]))
        elif kind == "drop" and files:
            del files[draw(st.sampled_from(sorted(files)))]
        elif kind == "rename" and files:
            old = draw(st.sampled_from(sorted(files)))
            new = draw(
                st.sampled_from(
                    ["Listings.csv", "listings.CSV", "notes.txt", ".hidden", "README.md",
                     "audits.csv", "appeals.csv", "listings.csv", "x.zip"]
                )
            )  # fmt: skip
            files[new] = files.pop(old)
        elif kind == "extra":
            files[draw(st.sampled_from(["extra.csv", "data.xlsx", "truth.json"]))] = draw(
                st.binary(max_size=64)
            )
        elif kind == "evidence":
            evidence = dict(evidence or EVIDENCE_FILES)
            name = draw(st.sampled_from(sorted(evidence)))
            if draw(st.booleans()):
                evidence[name] = draw(mutated_table(evidence[name]))
            else:
                evidence[name] = draw(mutated_bytes(evidence[name]))
    return files, evidence


def _write_zip(path, files: dict[str, bytes], folder: str | None) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}" if folder else name, data)


# ----------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module", autouse=True)
def _warm_up(tmp_path_factory):
    """First load of a process imports and compiles lazily: keep it out of the time bound."""
    load_submission(write_files(tmp_path_factory.mktemp("warm"), BASE_FILES))


@SETTINGS
@given(case=mutated_submission())
def test_mutated_directory(tmp_path_factory, case):
    files, evidence = case
    root = tmp_path_factory.mktemp("case")
    sub = write_files(root / "sub", files)
    ev = write_files(root / "ev", evidence) if evidence is not None else None
    check_outcome(lambda: load_submission(sub, evidence=ev))


@FEWER
@given(
    case=mutated_submission(),
    folder=st.sampled_from([None, "sub", "__MACOSX", "a/b"]),
    corrupt=st.none() | st.tuples(st.floats(0, 1), st.integers(1, 255)),
)
def test_mutated_zip(tmp_path_factory, case, folder, corrupt):
    """The same, zipped (at the root or in a folder), the archive itself sometimes corrupted."""
    files, evidence = case
    root = tmp_path_factory.mktemp("case")
    path = root / "sub.zip"
    _write_zip(path, files, folder)
    if corrupt is not None:
        data = bytearray(path.read_bytes())
        at = min(int(corrupt[0] * len(data)), len(data) - 1)
        data[at] ^= corrupt[1]
        path.write_bytes(bytes(data))
    ev = None
    if evidence is not None:
        ev = root / "ev.zip"
        _write_zip(ev, evidence, None)
    check_outcome(lambda: load_submission(path, evidence=ev))


@FEWER
@given(data=st.binary(max_size=2048), name=st.sampled_from(["listings.csv", "submission.toml"]))
def test_arbitrary_bytes_as_a_file(tmp_path_factory, data, name):
    files = dict(BASE_FILES)
    files[name] = data
    check_outcome(lambda: load_submission(write_files(tmp_path_factory.mktemp("c"), files)))


# ------------------------------------------------------------------------ from_dataframes
frame_cells = st.one_of(
    st.none(),
    st.just(np.nan),
    st.just(pd.NA),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(SPECIAL_CELLS),
    st.sampled_from([np.int64(3), np.float32(2.5), np.bool_(True), b"bytes", (1, 2), [3], {}]),
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 1, 1)),
)
column_dtypes = st.sampled_from(["object", "float64", "str", "category", "bool"])


@st.composite
def mutated_frames(draw) -> dict:
    """``from_dataframes`` arguments with arbitrary cells, dtypes, columns and records."""
    frames = valid_frames(full=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cell", "cell", "dtype", "drop_col", "rename", "record"]))
        if op == "record":
            key = draw(st.sampled_from(["platform", "scale", "claims", "policy"]))
            value = frames[key]
            if isinstance(value, dict) and value and draw(st.booleans()):
                value[draw(st.sampled_from(sorted(value)))] = draw(frame_cells | toml_values)
            elif isinstance(value, list) and value:
                i = draw(st.integers(0, len(value) - 1))
                if isinstance(value[i], dict):
                    value[i][draw(st.sampled_from(sorted(value[i])))] = draw(frame_cells)
            else:
                frames[key] = draw(frame_cells | toml_values)
            continue
        name = draw(
            st.sampled_from(
                ["listings", "detections", "audits", "planted", "appeals", "traders", "overlaps"]
            )
        )
        df = frames[name]
        column = draw(st.sampled_from(list(df.columns)))
        if op == "cell":
            pos = draw(st.integers(0, len(df) - 1))
            value = draw(frame_cells)
            df[column] = df[column].astype(object)
            with contextlib.suppress(ValueError, TypeError):  # pandas may refuse a list cell
                df.iloc[pos, df.columns.get_loc(column)] = value
        elif op == "dtype":
            with contextlib.suppress(ValueError, TypeError):
                df[column] = df[column].astype(draw(column_dtypes))
        elif op == "drop_col":
            frames[name] = df.drop(columns=column)
        elif op == "rename":
            frames[name] = df.rename(columns={column: draw(st.text(max_size=6))})
    return frames


@SETTINGS
@given(frames=mutated_frames())
def test_from_dataframes_with_arbitrary_contents(frames):
    check_outcome(lambda: Submission.from_dataframes(**frames))


@FEWER
@given(
    table=st.sampled_from(["listings", "detections", "audits"]),
    columns=st.dictionaries(
        st.sampled_from(["category", "period", "channel", "design", "listings", "review_hours",
                         "detected", "sampled", "illegal"]),
        st.lists(frame_cells, min_size=1, max_size=4),
        min_size=1,
        max_size=5,
    ),
)  # fmt: skip
def test_from_dataframes_with_a_random_table(table, columns):
    """A table built from scratch of arbitrary columns of arbitrary (object) cells."""
    frames = valid_frames()
    n = max(len(v) for v in columns.values())
    frames[table] = pd.DataFrame(
        {k: pd.Series((v * n)[:n], dtype=object) for k, v in columns.items()}
    )
    check_outcome(lambda: Submission.from_dataframes(**frames))


def test_unmutated_submission_is_valid(tmp_path):
    """The starting point of the properties above is valid (else they would prove little)."""
    sub = check_outcome(lambda: load_submission(write_files(tmp_path / "s", BASE_FILES)))
    assert isinstance(sub, Submission)
    frames = valid_frames(full=True)
    assert isinstance(check_outcome(lambda: Submission.from_dataframes(**frames)), Submission)
