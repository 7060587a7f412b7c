"""Every validation rule: an invalid submission names the file, row and column of each problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import tomli_w

from risklab.data import Problem, SubmissionError, load_submission
from risklab.data.schema import MAX_PROBLEMS_PER_RULE
from tests.data_fixtures import (
    TABLE_NAMES,
    set_cell,
    submission_files,
    toml_dict,
    valid_frames,
    write_files,
)

Mutation = Callable[[dict[str, Any]], dict[str, Any] | None]


def build_files(mutate: Mutation) -> dict[str, bytes]:
    """Files of the full valid submission after ``mutate(frames)``.

    ``mutate`` edits the frames in place and may return raw file overrides (name -> bytes,
    or None to delete the file).
    """
    frames = valid_frames(full=True)
    raw = mutate(frames) or {}
    files = {"submission.toml": tomli_w.dumps(toml_dict(frames)).encode()}
    for name in TABLE_NAMES:
        if frames.get(name) is not None:
            files[f"{name}.csv"] = frames[name].to_csv(index=False, lineterminator="\n").encode()
    for name, data in raw.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return files


def problems_of(tmp_path, mutate: Mutation) -> tuple[list[Problem], dict[str, bytes]]:
    files = build_files(mutate)
    with pytest.raises(SubmissionError) as info:
        load_submission(write_files(tmp_path / "sub", files))
    return info.value.problems, files


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """Line number of the nth line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[nth - 1]


# ------------------------------------------------------------------------------ mutation helpers
def cell(table: str, pos: int, column: str, value: Any) -> Mutation:
    return lambda f: set_cell(f, table, pos, column, value)


def drop_row(table: str, pos: int) -> Mutation:
    def m(f):
        f[table] = f[table].drop(index=f[table].index[pos]).reset_index(drop=True)

    return m


def repeat_row(table: str, pos: int) -> Mutation:
    def m(f):
        f[table] = pd.concat([f[table], f[table].iloc[[pos]]], ignore_index=True)

    return m


def raw(name: str, data: bytes | None) -> Mutation:
    return lambda f: {name: data}


def toml_edit(fn: Callable[[dict], None]) -> Mutation:
    return lambda f: fn(f)


def _set(path: str, value: Any) -> Mutation:
    """Set a TOML value: ``"scale.thresholds"`` or ``"claims.1.band"`` (0-based list index)."""

    def m(f):
        keys = path.split(".")
        obj = f
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        obj[keys[-1]] = value

    return m


def _pop(path: str) -> Mutation:
    """Delete a TOML key or list item: ``"platform.name"``, ``"claims.2"``."""

    def m(f):
        keys = path.split(".")
        obj = f
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        obj.pop(int(keys[-1]) if isinstance(obj, list) else keys[-1])

    return m


def _add_claim(claim: dict) -> Mutation:
    return lambda f: f["claims"].append(claim)


def _rename(table: str, old: str, new: str) -> Mutation:
    def m(f):
        f[table] = f[table].rename(columns={old: new})

    return m


def _add_column(table: str, name: str, value: Any) -> Mutation:
    def m(f):
        f[table][name] = value

    return m


def _drop_column(table: str, name: str) -> Mutation:
    def m(f):
        f[table] = f[table].drop(columns=name)

    return m


def _listings_bytes(edit: Callable[[bytes], bytes]) -> Mutation:
    def m(f):
        data = f["listings"].to_csv(index=False, lineterminator="\n").encode()
        return {"listings.csv": edit(data)}

    return m


def _replace_line(data: bytes, lineno: int, new: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[lineno - 1] = new
    return b"\n".join(lines)


def _toml_text(edit: Callable[[str], str]) -> Mutation:
    def m(f):
        return {"submission.toml": edit(tomli_w.dumps(toml_dict(f))).encode()}

    return m


T = "submission.toml"
# Positions in valid_frames(full=True): listings rows toys x3, medicines x3, cosmetics x3 (file
# row = position + 2); detections: proactive for those 9 cells, then notice.
# fmt: off
CSV_CASES = [
    # (id, mutation, file, row, column, message fragment)
    ("negative count", cell("listings", 5, "listings", "-3"), "listings.csv", 7, "listings",
     "must be a non-negative integer, got '-3'"),
    ("decimal count", cell("detections", 3, "detected", "3.5"), "detections.csv", 5, "detected",
     "got '3.5'"),
    ("integral decimal count", cell("detections", 3, "detected", "3.0"), "detections.csv", 5,
     "detected", "got '3.0'"),
    ("text count", cell("audits", 0, "sampled", "abc"), "audits.csv", 2, "sampled", "got 'abc'"),
    ("exponent count", cell("planted", 1, "planted", "1e3"), "planted.csv", 3, "planted",
     "got '1e3'"),
    ("missing count", cell("appeals", 0, "appeals", ""), "appeals.csv", 2, "appeals",
     "missing value"),
    ("huge count", cell("traders", 0, "traders", "1" * 20), "traders.csv", 2, "traders",
     "too large"),
    ("zero listings", cell("listings", 0, "listings", 0), "listings.csv", 2, "listings",
     "at least 1"),
    ("negative hours", cell("listings", 2, "review_hours", -1.5), "listings.csv", 4,
     "review_hours", "finite number >= 0, got '-1.5'"),
    ("nan hours", cell("listings", 2, "review_hours", "nan"), "listings.csv", 4, "review_hours",
     "got 'nan'"),
    ("inf hours", cell("listings", 2, "review_hours", "inf"), "listings.csv", 4, "review_hours",
     "got 'inf'"),
    ("missing hours", cell("listings", 8, "review_hours", ""), "listings.csv", 10,
     "review_hours", "missing value"),
    ("detected over listings", cell("detections", 0, "detected", 5000), "detections.csv", 2,
     "detected", "exceeds the 3000 listings of category 'toys', period '2024-01'"),
    ("illegal over sampled", cell("audits", 1, "illegal", 151), "audits.csv", 3, "illegal",
     "illegal (151) is greater than sampled (150)"),
    ("caught over planted", cell("planted", 0, "caught", 11), "planted.csv", 2, "caught",
     "greater than planted"),
    ("overturned over appeals", cell("appeals", 1, "overturned", 6), "appeals.csv", 3,
     "overturned", "greater than appeals"),
    ("suspended over traders", cell("traders", 0, "suspended", 501), "traders.csv", 2,
     "suspended", "greater than traders"),
    ("zero strikes", cell("traders", 0, "strikes", 0), "traders.csv", 2, "strikes", "at least 1"),
    ("duplicate strikes", cell("traders", 3, "strikes", 3), "traders.csv", 5, None,
     "duplicate row for strikes '3' (first at row 4)"),
    ("unknown channel", cell("detections", 10, "channel", "email"), "detections.csv", 12,
     "channel", "unknown channel 'email'"),
    ("unknown design", cell("audits", 2, "design", "stratified"), "audits.csv", 4, "design",
     "unknown design 'stratified'"),
    ("unknown category audits", cell("audits", 0, "category", "garden"), "audits.csv", 2,
     "category", "unknown category 'garden': not in listings.csv"),
    ("unknown category detections", cell("detections", 4, "category", "garden"),
     "detections.csv", 6, "category", "unknown category 'garden'"),
    ("unknown category planted", cell("planted", 1, "category", "Toys"), "planted.csv", 3,
     "category", "unknown category 'Toys'"),
    ("unknown category appeals", cell("appeals", 1, "category", "x"), "appeals.csv", 3,
     "category", "unknown category"),
    ("unknown category overlaps", cell("overlaps", 3, "category", "x"), "overlaps.csv", 5,
     "category", "unknown category"),
    ("missing category", cell("planted", 0, "category", ""), "planted.csv", 2, "category",
     "missing value"),
    ("category with spaces", cell("listings", 0, "category", "toys "), "listings.csv", 2,
     "category", "leading or trailing spaces"),
    ("malformed period", cell("listings", 1, "period", "2024-2"), "listings.csv", 3, "period",
     "must be a month written YYYY-MM, got '2024-2'"),
    ("month 13", cell("audits", 0, "period", "2024-13"), "audits.csv", 2, "period", "YYYY-MM"),
    ("period outside reporting period", cell("detections", 0, "period", "2023-12"),
     "detections.csv", 2, "period", "outside the reporting period 2024-01 to 2024-12"),
    ("period not in listings", cell("audits", 0, "period", "2024-06"), "audits.csv", 2, "period",
     "unknown period '2024-06': not in listings.csv"),
    ("duplicate listings row", repeat_row("listings", 0), "listings.csv", 11, None,
     "duplicate row for category 'toys', period '2024-01' (first at row 2)"),
    ("duplicate detections row", repeat_row("detections", 17), "detections.csv", 20, None,
     "channel 'notice' (first at row 19)"),
    ("duplicate audits row", repeat_row("audits", 3), "audits.csv", 6, None,
     "design 'purposive' (first at row 5)"),
    ("duplicate planted row", repeat_row("planted", 0), "planted.csv", 4, None, "duplicate row"),
    ("duplicate appeals row", repeat_row("appeals", 1), "appeals.csv", 4, None, "duplicate row"),
    ("duplicate overlaps history", repeat_row("overlaps", 2), "overlaps.csv", 6, None,
     "duplicate row for category 'toys', proactive '1', notice '1'"),
    ("listings cell missing", drop_row("listings", 4), "listings.csv", None, None,
     "no row for category 'medicines', period '2024-02'"),
    ("detections cell missing", drop_row("detections", 12), "detections.csv", None, None,
     "no row for category 'medicines', period '2024-01', channel 'notice'"),
    ("overlap value 2", cell("overlaps", 0, "proactive", 2), "overlaps.csv", 2, "proactive",
     "unknown value '2'; expected one of: 0, 1"),
    ("overlap all zeros", cell("overlaps", 1, "notice", 0), "overlaps.csv", 3, None,
     "every channel 0"),
    ("overlaps one channel", _drop_column("overlaps", "notice"), "overlaps.csv", 1, None,
     "at least two detection channels"),
    ("overlaps unknown channel column", _add_column("overlaps", "email", 0), "overlaps.csv", 1,
     "email", "unknown column"),
    ("missing column", _drop_column("listings", "review_hours"), "listings.csv", 1,
     "review_hours", "missing required column"),
    ("unknown column", _add_column("planted", "notes", "x"), "planted.csv", 1, "notes",
     "unknown column"),
    ("misspelt column", _rename("audits", "category", "catgory"), "audits.csv", 1, "catgory",
     "did you mean 'category'?"),
    ("duplicate header", raw("planted.csv", b"category,period,planted,caught,caught\n"
                             b"toys,2024-01,1,0,0\n"), "planted.csv", 1, "caught",
     "appears twice"),
    ("header only", raw("audits.csv", b"category,period,design,sampled,illegal\n"), "audits.csv",
     None, None, "no data rows"),
    ("empty file", raw("appeals.csv", b""), "appeals.csv", None, None, "is empty"),
    ("missing listings file", raw("listings.csv", None), "listings.csv", None, None,
     "missing required file"),
    ("missing detections file", raw("detections.csv", None), "detections.csv", None, None,
     "missing required file"),
    ("missing toml", raw("submission.toml", None), T, None, None, "missing required file"),
    ("unknown file", raw("notes.txt", b"hello"), "notes.txt", None, None, "unknown file"),
    ("misnamed file", raw("Listing.csv", b"x"), "Listing.csv", None, None,
     "did you mean 'listings.csv'?"),
    ("not utf-8", _listings_bytes(lambda b: _replace_line(b, 3, "toys,2024-02,café".encode(
        "latin-1"))), "listings.csv", 3, None, "not valid UTF-8"),
    ("nul byte", _listings_bytes(lambda b: _replace_line(b, 4, b"toys,2024-03,10\x00,1")),
     "listings.csv", 4, None, "NUL byte"),
    ("too many fields", _listings_bytes(lambda b: _replace_line(b, 5, b"a,b,1,2,3")),
     "listings.csv", 5, None, "cannot be parsed"),
    ("field too long", cell("listings", 0, "category", "x" * 2000), "listings.csv", 2,
     "category", "longer than"),
]
# fmt: on


@pytest.mark.parametrize(
    ("mutate", "file", "row", "column", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in CSV_CASES],
)
def test_csv_rule(tmp_path, mutate, file, row, column, fragment):
    problems, _ = problems_of(tmp_path, mutate)
    hits = [p for p in problems if (p.file, p.row, p.column) == (file, row, column)]
    assert hits, f"no problem at {(file, row, column)}; got:\n" + "\n".join(map(str, problems))
    assert any(fragment in p.message for p in hits), [p.message for p in hits]


# fmt: off
TOML_CASES = [
    # (id, mutation, column, message fragment, line: needle in the TOML text or None)
    ("band not a label", _set("claims.0.band", "extreme"), "claims[1].band",
     "'extreme' is not a label of the scale ('low', 'medium', 'high')", "toys"),
    ("zero prevalence", _set("claims.1.prevalence", 0.0), "claims[2].prevalence",
     "underestimation ratio", "medicines"),
    ("prevalence above 1", _set("claims.2.prevalence", 1.2), "claims[3].prevalence",
     "strictly between 0 and 1", "cosmetics"),
    ("negative prevalence", _set("claims.2.prevalence", -0.1), "claims[3].prevalence",
     "strictly between 0 and 1", "cosmetics"),
    ("prevalence as string", _set("claims.0.prevalence", "0.1"), "claims[1].prevalence",
     "must be a number, got string", "toys"),
    ("zero detection rate", _set("claims.1.detection_rate", 0.0), "claims[2].detection_rate",
     "(0, 1]", "medicines"),
    ("detection rate above 1", _set("claims.0.detection_rate", 1.5),
     "claims[1].detection_rate", "(0, 1]", "toys"),
    ("unknown claim key", _set("claims.0.confidence", 0.5), "claims[1].confidence",
     "unknown key", "toys"),
    ("missing claim key", _pop("claims.0.band"), "claims[1].band",
     "missing required key", "toys"),
    ("unknown category in claims", _add_claim({"category": "garden", "prevalence": 0.1,
     "band": "low"}), "claims[4].category", "unknown category 'garden'", "garden"),
    ("duplicate claim", _add_claim({"category": "toys", "prevalence": 0.1, "band": "low"}),
     "claims[4].category", "duplicate claim for 'toys' (first in claims[1])", "0.1,"),
    ("thresholds not ascending", _set("scale.thresholds", [0.006, 0.002]), "scale.thresholds",
     "strictly ascending", "thresholds"),
    ("equal thresholds", _set("scale.thresholds", [0.006, 0.006]), "scale.thresholds",
     "strictly ascending", "thresholds"),
    ("threshold out of range", _set("scale.thresholds", [0.5, 1.0]), "scale.thresholds",
     "strictly between 0 and 1", "thresholds"),
    ("thresholds a string", _set("scale.thresholds", "0.002, 0.006"), "scale.thresholds",
     "must be an array of numbers", "thresholds"),
    ("no thresholds", lambda f: f["scale"].update(thresholds=[], labels=["all"]),
     "scale.thresholds", "at least one", "thresholds"),
    ("wrong label count", _set("scale.labels", ["low", "high"]), "scale.labels",
     "one more label than thresholds (3), got 2", "labels"),
    ("duplicate labels", _set("scale.labels", ["low", "low", "high"]), "scale.labels",
     "must be unique", "labels"),
    ("strike threshold 0", _set("policy.strike_threshold", 0), "policy.strike_threshold",
     "at least 1", "strike_threshold"),
    ("strike threshold float", _set("policy.strike_threshold", 2.5),
     "policy.strike_threshold", "must be an integer", "strike_threshold"),
    ("enforcement above 1", _set("policy.claimed_enforcement", 1.5),
     "policy.claimed_enforcement", "[0, 1]", "claimed_enforcement"),
    ("period end before start", _set("platform.period_end", "2023-12"), "platform.period_end",
     "before period_start", "period_end"),
    ("malformed period_start", _set("platform.period_start", "2024/01"),
     "platform.period_start", "'YYYY-MM'", "period_start"),
    ("empty platform name", _set("platform.name", " "), "platform.name", "must not be empty",
     "name = \" \""),
    ("unknown platform key", _set("platform.owner", "x"), "platform.owner", "unknown key",
     "owner"),
    ("missing platform key", _pop("platform.name"), "platform.name",
     "missing required key", "[platform]"),
    ("unknown section", _toml_text(lambda t: t + "\n[extra]\na = 1\n"), "extra", "unknown section",
     "[extra]"),
    ("missing scale", _pop("scale"), "scale", "missing section [scale]", None),
    ("platform not a table", lambda f: f.update(platform="ShopCo"), "platform",
     "must be a table", "platform ="),
]
# fmt: on


@pytest.mark.parametrize(
    ("mutate", "column", "fragment", "needle"),
    [pytest.param(*case[1:], id=case[0]) for case in TOML_CASES],
)
def test_toml_rule(tmp_path, mutate, column, fragment, needle):
    problems, files = problems_of(tmp_path, mutate)
    row = None if needle is None else line_of(files[T].decode(), needle)
    hits = [p for p in problems if (p.file, p.row, p.column) == (T, row, column)]
    assert hits, f"no problem at {(T, row, column)}; got:\n" + "\n".join(map(str, problems))
    assert any(fragment in p.message for p in hits), [p.message for p in hits]


def test_category_without_claim(tmp_path):
    problems, _ = problems_of(tmp_path, _pop("claims.2"))
    assert Problem(
        T, None, "claims", "no claim for category 'cosmetics' of listings.csv; add a [[claims]] "
        "block for it"
    ) in problems  # fmt: skip


def test_toml_syntax_error_names_line(tmp_path):
    def edit(text: str) -> str:
        return text.replace('name = "ShopCo"', 'name = "ShopCo')

    problems, files = problems_of(tmp_path, _toml_text(edit))
    line = line_of(files[T].decode(), 'name = "ShopCo')
    assert [(p.file, p.row, p.column) for p in problems] == [(T, line, None)]
    assert "not valid TOML" in problems[0].message


def test_toml_array_of_tables_lines(tmp_path):
    """[[claims]] blocks: problems point at the key's own line."""
    text = (
        '[platform]\nname = "ShopCo"\nperiod_start = "2024-01"\nperiod_end = "2024-12"\n\n'
        '[scale]\nname = "s"\nthresholds = [0.002, 0.006]\nlabels = ["low", "medium", "high"]\n'
        '\n[[claims]]\ncategory = "toys"\nprevalence = 0.001\nband = "low"\n'
        '\n[[claims]]\ncategory = "medicines"\nprevalence = 0.004\nband = "huge"\n'
        '\n[[claims]]\ncategory = "cosmetics"\nprevalence = 0.0\nband = "low"\n'
    )
    problems, _ = problems_of(tmp_path, raw(T, text.encode()))
    assert {(p.row, p.column) for p in problems} == {
        (19, "claims[2].band"),
        (23, "claims[3].prevalence"),
    }


def test_toml_wrong_types_reported_together(tmp_path):
    def m(f):
        f["scale"]["labels"] = [1, 2, 3]
        f["policy"]["claimed_enforcement"] = "high"
        f["claims"][1]["category"] = 7

    problems, _ = problems_of(tmp_path, m)
    cols = {p.column for p in problems}
    assert {"scale.labels", "policy.claimed_enforcement", "claims[2].category"} <= cols


def test_many_problems_reported_at_once(tmp_path):
    def m(f):
        set_cell(f, "listings", 0, "listings", "-1")
        set_cell(f, "detections", 10, "channel", "email")
        set_cell(f, "audits", 1, "illegal", 999)
        set_cell(f, "planted", 0, "period", "2024-13")
        f["scale"]["labels"] = ["a", "b"]
        return {"notes.txt": b"x"}

    problems, _ = problems_of(tmp_path, m)
    where = [(p.file, p.row, p.column) for p in problems]
    assert where == [  # sorted: archive-level first, then toml, then tables in format order
        ("notes.txt", None, None),
        (T, line_of(build_files(m)[T].decode(), "labels"), "scale.labels"),
        ("listings.csv", 2, "listings"),
        ("detections.csv", 12, "channel"),
        ("audits.csv", 3, "illegal"),
        ("planted.csv", 2, "period"),
    ]


def test_no_cascade_from_missing_column(tmp_path):
    problems, _ = problems_of(tmp_path, _drop_column("audits", "sampled"))
    assert [(p.file, p.row, p.column) for p in problems] == [("audits.csv", 1, "sampled")]


def test_no_cascade_from_bad_key_cells(tmp_path):
    """A bad period in listings is one problem, not also 'missing cells' or 'unknown period'."""
    problems, _ = problems_of(tmp_path, cell("listings", 1, "period", "Feb 2024"))
    assert [(p.file, p.row, p.column) for p in problems] == [("listings.csv", 3, "period")]


def test_error_message_format(tmp_path):
    files = submission_files()
    files["listings.csv"] = files["listings.csv"].replace(b"toys,2024-03,3020", b"toys,2024-03,-3")
    path = write_files(tmp_path / "s", files)
    with pytest.raises(SubmissionError) as info:
        load_submission(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.source == str(path)
    assert str(err) == (
        f"Submission {path} is invalid (1 problem):\n"
        "- listings.csv, row 4, column 'listings': must be a non-negative integer, got '-3'"
    )
    assert str(Problem("a.csv", None, None, "bad")) == "a.csv: bad"
    assert str(Problem("submission.toml", 3, "scale.labels", "x")) == (
        "submission.toml, row 3, column 'scale.labels': x"
    )
    import pickle

    again = pickle.loads(pickle.dumps(err))
    assert again.problems == err.problems and str(again) == str(err)


def test_problems_capped_per_rule(tmp_path, monkeypatch):
    assert MAX_PROBLEMS_PER_RULE == 20
    monkeypatch.setattr("risklab.data._checks.MAX_PROBLEMS_PER_RULE", 5)

    def m(f):
        f["detections"]["detected"] = -1

    problems, _ = problems_of(tmp_path, m)
    listed = [p for p in problems if p.row is not None]
    assert [p.row for p in listed] == [2, 3, 4, 5, 6]
    summary = [p for p in problems if p.row is None]
    assert len(summary) == 1 and summary[0].column == "detected"
    assert summary[0].message.startswith("13 more rows where 'detected' is not a non-negative")


def test_line_numbers_follow_multiline_quoted_fields(tmp_path):
    """A quoted field spanning two lines shifts the following rows' line numbers."""
    audits = (
        b"category,period,design,sampled,illegal\n"
        b'"to\nys",2024-01,random,10,1\n'  # lines 2-3
        b"toys,2024-02,random,-4,1\n"  # line 4
    )
    problems, _ = problems_of(tmp_path, raw("audits.csv", audits))
    where = [(p.file, p.row, p.column) for p in problems]
    assert where == [("audits.csv", 2, "category"), ("audits.csv", 4, "sampled")]
