"""Evidence directories, unusable paths, and validation of in-memory DataFrames."""

from __future__ import annotations

import pandas as pd
import pytest

from risklab.data import Submission, SubmissionError, load_submission
from tests.data_fixtures import set_cell, valid_frames, write_files, write_submission_dir


# ------------------------------------------------------------------------------------ evidence
def _evidence(tmp_path, files: dict[str, bytes]):
    return write_files(tmp_path / "evidence", files)


AUDIT_HEADER = b"category,period,design,sampled,illegal\n"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"audits.csv": AUDIT_HEADER + b"toys,2024-01,random,5,9\n"},
            ("evidence/audits.csv", 2, "illegal"),
            id="row rule",
        ),
        pytest.param(
            {"planted.csv": b"category,period,planted,caught\ngarden,2024-01,5,1\n"},
            ("evidence/planted.csv", 2, "category"),
            id="unknown category",
        ),
        pytest.param(
            {"audits.csv": AUDIT_HEADER + b"toys,2024-01,random,5,1\ntoys,2024-01,random,5,1\n"},
            ("evidence/audits.csv", 3, None),
            id="duplicate within file",
        ),
        pytest.param(
            {"listings.csv": b"category,period,listings,review_hours\n"},
            ("evidence/listings.csv", None, None),
            id="table not allowed",
        ),
        pytest.param(
            {"submission.toml": b"", "audits.csv": AUDIT_HEADER + b"toys,2024-01,random,5,1\n"},
            ("evidence/submission.toml", None, None),
            id="toml not allowed",
        ),
        pytest.param({}, ("evidence/", None, None), id="empty"),
    ],
)
def test_evidence_rules(tmp_path, files, expected):
    ev = _evidence(tmp_path, files)
    with pytest.raises(SubmissionError) as info:
        load_submission(write_submission_dir(tmp_path), evidence=ev)
    assert expected in [(p.file, p.row, p.column) for p in info.value.problems]


def test_same_key_in_submission_and_evidence_is_fine(tmp_path):
    ev = _evidence(tmp_path, {"audits.csv": AUDIT_HEADER + b"toys,2024-01,random,5,1\n"})
    sub = load_submission(write_submission_dir(tmp_path), evidence=ev)
    assert sub.data["audit_random_sampled"].sel(category="toys", period="2024-01").item() == 205


def test_missing_paths(tmp_path):
    with pytest.raises(SubmissionError, match="no such file or directory"):
        load_submission(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SubmissionError, match=r"neither a directory nor a \.zip"):
        load_submission(tmp_path / "file.txt")
    with pytest.raises(SubmissionError, match="no such file"):
        load_submission(write_submission_dir(tmp_path), evidence=tmp_path / "none")


def test_subfolder_is_an_error(tmp_path):
    d = write_submission_dir(tmp_path)
    (d / "old").mkdir()
    with pytest.raises(SubmissionError) as info:
        load_submission(d)
    assert [(p.file, p.row, p.column) for p in info.value.problems] == [("old", None, None)]


# ------------------------------------------------------------------------------ from_dataframes
def test_from_dataframes_rows_are_index_position_plus_2():
    frames = valid_frames()
    frames["listings"].index = frames["listings"].index + 100  # labels do not matter
    set_cell(frames, "listings", 4, "review_hours", -2.0)
    frames["detections"]["detected"] = frames["detections"]["detected"].astype(float)
    frames["scale"]["thresholds"] = (0.2, 0.1)
    with pytest.raises(SubmissionError) as info:
        Submission.from_dataframes(**frames)
    err = info.value
    assert err.source == "<dataframes>"
    where = {(p.file, p.row, p.column) for p in err.problems}
    assert ("listings.csv", 6, "review_hours") in where
    assert ("detections.csv", 2, "detected") in where  # float counts are written as '1.0'
    assert ("submission.toml", None, "scale.thresholds") in where


def test_from_dataframes_unknown_evidence_table_and_type_errors():
    with pytest.raises(SubmissionError) as info:
        Submission.from_dataframes(
            **valid_frames(), evidence={"listings": pd.DataFrame({"a": [1]})}
        )
    assert [(p.file, p.column) for p in info.value.problems] == [("evidence/listings.csv", None)]
    with pytest.raises(TypeError, match="listings must be a pandas DataFrame"):
        Submission.from_dataframes(**{**valid_frames(), "listings": [1, 2]})
