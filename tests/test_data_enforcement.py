"""The optional table enforcement.csv: per period, traders reaching the strike threshold and how
many of them were suspended (monitoring spec, issue #9)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import tomli_w
import xarray as xr

from risklab.data import Problem, Submission, SubmissionError, load_submission
from risklab.data.schema import MAX_COUNT, OPTIONAL_TABLES, TABLES
from tests.data_fixtures import (
    PERIODS,
    submission_files,
    toml_dict,
    valid_frames,
    write_files,
    write_zip,
)

ENF = "enforcement.csv"


def enforcement_frame() -> pd.DataFrame:
    """Rows for 2024-03 and 2024-01 (out of order), none for 2024-02.

    The totals (24 reached, 19 suspended) equal the fixture's traders.csv past its strike
    threshold 3: strikes 3 (20 traders, 15 suspended) and 5 (4, 4).
    """
    return pd.DataFrame(
        {"period": ["2024-03", "2024-01"], "reached": [14, 10], "suspended": [11, 8]}
    )


def frames(**changes: Any) -> dict[str, Any]:
    """The full valid fixture plus enforcement.csv, with ``changes`` applied (None drops)."""
    f = valid_frames(full=True)
    f["enforcement"] = enforcement_frame()
    for key, value in changes.items():
        f[key] = value
    return f


def files_of(f: dict[str, Any]) -> dict[str, bytes]:
    """Submission directory contents of ``frames``."""
    out = {"submission.toml": tomli_w.dumps(toml_dict(f)).encode()}
    for name in TABLES:
        if f.get(name) is not None:
            out[f"{name}.csv"] = f[name].to_csv(index=False, lineterminator="\n").encode()
    return out


def problems(tmp_path, f: dict[str, Any]) -> list[Problem]:
    with pytest.raises(SubmissionError) as info:
        load_submission(write_files(tmp_path / "sub", files_of(f)))
    return info.value.problems


def enf_csv(text: str) -> pd.DataFrame:
    """An enforcement table given as CSV text (cells kept as written)."""
    rows = [line.split(",") for line in text.strip().splitlines()]
    return pd.DataFrame(rows[1:], columns=rows[0])


# ---------------------------------------------------------------------------------- schema
def test_schema_declares_the_table():
    spec = TABLES["enforcement"]
    assert spec.columns == ("period", "reached", "suspended")
    assert spec.key == ("period",)
    assert spec.counts == ("reached", "suspended")
    assert not spec.required and "enforcement" in OPTIONAL_TABLES


# --------------------------------------------------------------------------------- loading
def test_valid_table_loads_with_zeros_for_missing_periods(tmp_path):
    sub = load_submission(write_files(tmp_path / "sub", files_of(frames())))
    ds = sub.data
    assert sub.periods == PERIODS
    for var, expected in {
        "enforcement_reached": [10, 0, 14],
        "enforcement_suspended": [8, 0, 11],
    }.items():
        assert ds[var].dims == ("period",)
        assert ds[var].dtype == np.int64
        np.testing.assert_array_equal(ds[var].values, expected)
    assert sub.has("enforcement") and sub.has("enforcement.csv")
    assert "enforcement" in ds.attrs["tables_present"]
    table = sub.tables["enforcement"]
    assert table["reached"].dtype == np.int64
    assert table.set_index("period")["suspended"].to_dict() == {"2024-03": 11, "2024-01": 8}


def test_from_dataframes_parameter_matches_directory(tmp_path):
    from_dir = load_submission(write_files(tmp_path / "sub", files_of(frames())))
    from_df = Submission.from_dataframes(**frames())
    assert from_df == from_dir
    np.testing.assert_array_equal(from_df.data["enforcement_reached"].values, [10, 0, 14])


def test_valid_without_traders_csv():
    """Without traders.csv the totals are not constrained."""
    f = frames(traders=None)
    f["enforcement"] = pd.DataFrame({"period": ["2024-02"], "reached": [7], "suspended": [0]})
    sub = Submission.from_dataframes(**f)
    np.testing.assert_array_equal(sub.data["enforcement_reached"].values, [0, 7, 0])
    np.testing.assert_array_equal(sub.data["enforcement_suspended"].values, [0, 0, 0])


def test_submission_without_the_table_is_unchanged():
    without = Submission.from_dataframes(**frames(enforcement=None))
    assert not without.has("enforcement")
    assert not any(str(v).startswith("enforcement") for v in without.data.data_vars)
    assert "enforcement" not in without.tables
    assert without.data.attrs["tables_present"] == [
        "audits", "planted", "appeals", "traders", "overlaps"
    ]  # fmt: skip
    # adding the table adds its two variables and its name, nothing else
    with_ = Submission.from_dataframes(**frames())
    stripped = with_.data.drop_vars(["enforcement_reached", "enforcement_suspended"])
    stripped.attrs["tables_present"] = [
        t for t in stripped.attrs["tables_present"] if t != "enforcement"
    ]
    for ds in (stripped, without.data):
        ds.attrs.pop("input_sha256")
    assert stripped.identical(without.data)


def test_threshold_defines_the_totals():
    """With strike_threshold 2 the totals must include the 80 traders (1 suspended) at 2."""
    policy = {"strike_threshold": 2, "claimed_enforcement": 0.95}
    old = frames(policy=policy)
    with pytest.raises(SubmissionError) as info:
        Submission.from_dataframes(**old)
    got = {(p.column, p.message.split(" over")[0]) for p in info.value.problems}
    assert got == {("reached", "totals 24"), ("suspended", "totals 19")}
    new = pd.DataFrame(
        {"period": ["2024-01", "2024-02", "2024-03"], "reached": [60, 30, 14],
         "suspended": [5, 4, 11]}
    )  # fmt: skip
    sub = Submission.from_dataframes(**frames(policy=policy, enforcement=new))
    assert int(sub.data["enforcement_reached"].sum()) == 80 + 20 + 4
    assert int(sub.data["enforcement_suspended"].sum()) == 1 + 15 + 4


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("text", "row", "column", "needle"),
    [
        ("period,reached,suspended\n2024-1,10,8\n2024-03,14,11", 2, "period", "YYYY-MM"),
        ("period,reached,suspended\n2024-01,10,8\n2025-03,14,11", 3, "period", "outside"),
        ("period,reached,suspended\n2024-01,10,8\n2024-05,14,11", 3, "period", "unknown period"),
        ("period,reached,suspended\n2024-01,10,8\n,14,11", 3, "period", "missing value"),
        ("period,reached,suspended\n2024-01,10,11\n2024-03,14,8", 2, "suspended", "greater"),
        ("period,reached,suspended\n2024-01,-10,8\n2024-03,14,11", 2, "reached", "'-10'"),
        ("period,reached,suspended\n2024-01,10,8\n2024-03,14,3.5", 3, "suspended", "'3.5'"),
        ("period,reached,suspended\n2024-01,10.0,8\n2024-03,14,11", 2, "reached", "'10.0'"),
        ("period,reached,suspended\n2024-01,10,8\n2024-03,,11", 3, "reached", "missing value"),
        (f"period,reached,suspended\n2024-01,{10 * MAX_COUNT},8", 2, "reached", "too large"),
        ("period,reached\n2024-01,10", 1, "suspended", "missing required column"),
        ("period,reached,suspended,category\n2024-01,10,8,toys", 1, "category", "unknown column"),
    ],
)
def test_cell_errors_name_file_row_and_column(tmp_path, text, row, column, needle):
    found = problems(tmp_path, frames(enforcement=enf_csv(text)))
    hits = [p for p in found if needle in p.message]
    assert hits, found
    assert (hits[0].file, hits[0].row, hits[0].column) == (ENF, row, column)
    # a table with a bad cell is not also reported as disagreeing with traders.csv
    assert not any("must agree" in p.message for p in found)


def test_duplicate_period(tmp_path):
    text = "period,reached,suspended\n2024-01,10,8\n2024-03,14,11\n2024-01,0,0"
    found = problems(tmp_path, frames(enforcement=enf_csv(text)))
    assert len(found) == 1, found
    p = found[0]
    assert (p.file, p.row, p.column) == (ENF, 4, None)
    assert "duplicate row for period '2024-01' (first at row 2)" in p.message


def test_missing_policy(tmp_path):
    found = problems(tmp_path, frames(policy=None))
    assert len(found) == 1, found
    p = found[0]
    assert (p.file, p.row, p.column) == (ENF, None, None)
    assert "[policy]" in p.message and "submission.toml" in p.message
    with pytest.raises(SubmissionError, match=r"enforcement\.csv: needs the \[policy\]"):
        Submission.from_dataframes(**frames(policy=None))


def test_invalid_policy_is_reported_once(tmp_path):
    """A [policy] section that is present but invalid is the TOML's problem, not the table's."""
    found = problems(tmp_path, frames(policy={"strike_threshold": 0, "claimed_enforcement": 0.9}))
    assert found and all(p.file == "submission.toml" for p in found), found


def test_totals_disagree_with_traders(tmp_path):
    table = enforcement_frame()
    table.loc[1, "reached"] = 11  # 25 reached in total; traders.csv has 24 past threshold 3
    found = problems(tmp_path, frames(enforcement=table))
    assert len(found) == 1, found
    p = found[0]
    assert (p.file, p.row, p.column) == (ENF, None, "reached")
    for part in ("totals 25", "traders.csv has 24 traders", "at least 3 strikes", ENF):
        assert part in p.message
    table = enforcement_frame()
    table.loc[0, "suspended"] = 10  # 18 suspended; traders.csv has 19
    found = problems(tmp_path / "b", frames(enforcement=table))
    assert [(p.file, p.column) for p in found] == [(ENF, "suspended")]
    assert "totals 18" in found[0].message and "has 19 suspended traders" in found[0].message


def test_problems_sorted_after_traders_before_overlaps(tmp_path):
    f = frames()
    f["traders"] = f["traders"].astype(object)
    f["traders"].loc[0, "traders"] = "x"
    f["overlaps"] = f["overlaps"].astype(object)
    f["overlaps"].loc[0, "count"] = "y"
    f["enforcement"] = enf_csv("period,reached,suspended\n2024-01,z,8")
    order = [p.file for p in problems(tmp_path, f)]
    assert order == ["traders.csv", ENF, "overlaps.csv"]


def test_not_an_evidence_table(tmp_path):
    sub_dir = write_files(tmp_path / "sub", files_of(frames()))
    ev = write_files(tmp_path / "ev", {ENF: files_of(frames())[ENF]})
    with pytest.raises(SubmissionError) as info:
        load_submission(sub_dir, evidence=ev)
    assert any(p.file == "evidence/" + ENF for p in info.value.problems)
    with pytest.raises(SubmissionError):
        Submission.from_dataframes(**frames(), evidence={"enforcement": enforcement_frame()})


# ------------------------------------------------------------------------------ round trips
def test_round_trip_dataset_tables_submission(tmp_path):
    sub = load_submission(write_files(tmp_path / "sub", files_of(frames())))
    back = Submission.from_dataset(sub.data)
    assert back == sub and back.data.identical(sub.data)
    rebuilt = back.tables["enforcement"]
    assert list(rebuilt.columns) == ["period", "reached", "suspended"]
    assert rebuilt["period"].tolist() == ["2024-01", "2024-03"]  # the rows with counts
    f = {k: v for k, v in frames().items() if k not in TABLES}
    again = Submission.from_dataframes(**f, **back.tables)
    assert again == sub
    np.testing.assert_array_equal(
        again.data["enforcement_suspended"].values, sub.data["enforcement_suspended"].values
    )
    back.to_directory(tmp_path / "written")
    assert (tmp_path / "written" / ENF).exists()
    assert load_submission(tmp_path / "written") == sub


def test_round_trip_of_an_all_zero_table():
    zero = pd.DataFrame({"period": ["2024-02"], "reached": [0], "suspended": [0]})
    sub = Submission.from_dataframes(**frames(traders=None, enforcement=zero))
    back = Submission.from_dataset(sub.data)
    assert back.has("enforcement") and len(back.tables["enforcement"]) == len(PERIODS)
    f = {k: v for k, v in frames(traders=None).items() if k not in TABLES}
    assert Submission.from_dataframes(**f, **back.tables) == sub


def test_round_trip_through_netcdf(tmp_path):
    pytest.importorskip("h5netcdf")
    sub = Submission.from_dataframes(**frames())
    path = tmp_path / "sub.nc"
    sub.data.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        back = Submission.from_dataset(ds.load())
    assert back == sub
    assert back.data["enforcement_reached"].dtype == np.int64


# -------------------------------------------------------------------------- zip and hashing
def test_zip_gives_the_same_submission_and_digest(tmp_path):
    files = files_of(frames())
    from_dir = load_submission(write_files(tmp_path / "sub", files))
    for folder in (None, "my-submission"):
        z = write_zip(tmp_path / f"sub-{folder}.zip", files, folder=folder)
        from_zip = load_submission(z)
        assert from_zip == from_dir
        assert from_zip.input_sha256 == from_dir.input_sha256


def test_input_sha256_covers_the_table(tmp_path):
    files = files_of(frames())
    a = load_submission(write_files(tmp_path / "a", files))
    changed = dict(files)
    changed[ENF] = files[ENF] + b"\n"  # a trailing blank line: same content, other bytes
    b = load_submission(write_files(tmp_path / "b", changed))
    assert b == a and b.input_sha256 != a.input_sha256
    no_table = load_submission(write_files(tmp_path / "c", submission_files(full=True)))
    assert no_table.input_sha256 != a.input_sha256
    f1 = Submission.from_dataframes(**frames())
    f2 = Submission.from_dataframes(**frames(enforcement=None))
    assert f1.input_sha256 != f2.input_sha256
    assert Submission.from_dataframes(**frames()).input_sha256 == f1.input_sha256
