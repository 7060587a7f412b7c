"""Loading valid submissions: the Dataset layout, equivalences and round trips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from risklab.data import Claim, Policy, Scale, Submission, load_submission
from tests.data_fixtures import (
    CATEGORIES,
    CHANNELS_USED,
    PERIODS,
    detected_value,
    hours_value,
    listings_value,
    submission_files,
    valid_frames,
    write_files,
    write_submission_dir,
    write_zip,
)

CELL_INT_VARS = [
    "listings",
    "audit_random_sampled",
    "audit_random_illegal",
    "audit_purposive_sampled",
    "audit_purposive_illegal",
    "planted",
    "caught",
    "appeals",
    "overturned",
]


@pytest.fixture
def sub(tmp_path):
    return load_submission(write_submission_dir(tmp_path))


def test_coords_are_sorted_strings_and_channels_canonical(sub):
    ds = sub.data
    assert list(ds["category"].values) == CATEGORIES
    assert list(ds["period"].values) == PERIODS
    assert list(ds["channel"].values) == CHANNELS_USED  # proactive before notice
    for name in ("category", "period", "channel"):
        assert ds[name].dtype.kind == "U"
    assert sub.categories == CATEGORIES and sub.periods == PERIODS
    assert sub.channels == CHANNELS_USED
    assert "strikes" not in ds.coords


def test_dims_and_dtypes(sub):
    ds = sub.data
    for name in CELL_INT_VARS:
        assert ds[name].dims == ("category", "period"), name
        assert ds[name].dtype == np.int64, name
    assert ds["review_hours"].dims == ("category", "period")
    assert ds["review_hours"].dtype == np.float64
    assert ds["detected"].dims == ("category", "period", "channel")
    assert ds["detected"].dtype == np.int64
    assert ds["claimed_prevalence"].dtype == np.float64
    assert ds["claimed_detection_rate"].dtype == np.float64
    assert ds["claimed_band"].dtype.kind == "U"


def test_values_land_in_their_cells(sub):
    ds = sub.data
    for c in CATEGORIES:
        for p in PERIODS:
            cell = {"category": c, "period": p}
            assert ds["listings"].sel(cell).item() == listings_value(c, p)
            assert ds["review_hours"].sel(cell).item() == hours_value(c, p)
            for ch in CHANNELS_USED:
                got = ds["detected"].sel({**cell, "channel": ch}).item()
                assert got == detected_value(c, p, ch)
    assert ds["audit_random_sampled"].sel(category="toys", period="2024-02").item() == 180
    assert ds["audit_random_illegal"].sel(category="medicines", period="2024-01").item() == 2
    assert ds["audit_purposive_sampled"].sel(category="toys", period="2024-03").item() == 40
    assert ds["audit_purposive_illegal"].sel(category="toys", period="2024-03").item() == 6
    assert ds["audit_random_sampled"].sum().item() == 200 + 150 + 180
    assert ds["planted"].sel(category="toys", period="2024-01").item() == 10
    assert ds["caught"].sel(category="medicines", period="2024-02").item() == 8
    assert ds["planted"].sum().item() == 18
    assert int(ds["appeals"].sum()) == 0 and int(ds["overturned"].sum()) == 0


def test_claims_follow_category_order(sub):
    ds = sub.data
    assert list(sub.claims) == CATEGORIES
    assert ds["claimed_prevalence"].sel(category="toys").item() == 0.001
    assert ds["claimed_band"].sel(category="medicines").item() == "medium"
    assert ds["claimed_detection_rate"].sel(category="medicines").item() == 0.9
    assert np.isnan(ds["claimed_detection_rate"].sel(category="toys").item())
    assert sub.claims["medicines"] == Claim("medicines", 0.004, "medium", 0.9)
    assert sub.claims["toys"].detection_rate is None


def test_attrs(sub, tmp_path):
    a = sub.data.attrs
    assert a["platform_name"] == "ShopCo"
    assert (a["period_start"], a["period_end"]) == ("2024-01", "2024-12")
    assert a["scale_name"] == "likelihood"
    assert a["scale_thresholds"] == [0.002, 0.006]
    assert a["scale_labels"] == ["low", "medium", "high"]
    assert a["strike_threshold"] == 3 and a["claimed_enforcement"] == 0.95
    assert a["tables_present"] == ["audits", "planted"]
    assert a["input_sha256"] == sub.input_sha256 and len(sub.input_sha256) == 64
    assert a["source"] == str(tmp_path / "submission") == sub.source
    assert "overlaps_json" not in a
    for value in a.values():  # netCDF-safe: str, int, float or lists of those
        items = value if isinstance(value, list) else [value]
        assert all(type(v) in (str, int, float) for v in items), value


def test_no_policy_means_no_policy_attrs(tmp_path):
    frames = valid_frames()
    frames["policy"] = None
    sub = Submission.from_dataframes(**frames)
    assert sub.policy is None
    assert "strike_threshold" not in sub.data.attrs
    assert "claimed_enforcement" not in sub.data.attrs


def test_records(sub):
    assert sub.scale == Scale("likelihood", (0.002, 0.006), ("low", "medium", "high"))
    assert sub.policy == Policy(3, 0.95)
    assert sub.platform.name == "ShopCo"


def test_tables_are_typed(sub):
    t = sub.tables
    assert set(t) == {"listings", "detections", "audits", "planted"}
    assert list(t["listings"].columns) == ["category", "period", "listings", "review_hours"]
    assert t["listings"]["listings"].dtype == np.int64
    assert t["listings"]["review_hours"].dtype == np.float64
    assert pd.api.types.is_string_dtype(t["detections"]["channel"])
    assert t["audits"]["illegal"].tolist() == [3, 2, 1, 6]
    assert "source" not in t["audits"].columns
    assert sub.has("listings") and sub.has("audits") and sub.has("planted.csv")
    assert not sub.has("appeals") and not sub.has("traders") and not sub.has("overlaps")


def test_full_submission_traders_and_overlaps(tmp_path):
    sub = load_submission(write_submission_dir(tmp_path, full=True))
    ds = sub.data
    assert ds["strikes"].values.tolist() == [1, 2, 3, 5]
    assert ds["strikes"].dtype == np.int64
    assert ds["traders_count"].values.tolist() == [500, 80, 20, 4]
    assert ds["traders_suspended"].values.tolist() == [0, 1, 15, 4]
    assert ds["appeals"].sel(category="toys", period="2024-01").item() == 12
    assert ds["overturned"].sel(category="toys", period="2024-01").item() == 3
    assert ds.attrs["tables_present"] == ["audits", "planted", "appeals", "traders", "overlaps"]
    ov = json.loads(ds.attrs["overlaps_json"])
    assert ov["columns"] == ["category", "proactive", "notice", "count"]
    assert ov["data"][2] == ["toys", 1, 1, 7]
    assert sub.tables["overlaps"]["notice"].dtype == np.int64
    assert all(sub.has(t) for t in ("appeals", "traders", "overlaps"))


def test_overlap_channel_columns_put_in_canonical_order(tmp_path):
    files = submission_files(full=True)
    files["overlaps.csv"] = b"category,count,notice,proactive\ntoys,30,0,1\ntoys,25,1,0\n"
    sub = load_submission(write_files(tmp_path / "s", files))
    assert list(sub.tables["overlaps"].columns) == ["category", "proactive", "notice", "count"]
    assert sub.tables["overlaps"]["proactive"].tolist() == [1, 0]


def test_scale_bands():
    scale = Scale("s", [0.002, 0.006], ["low", "medium", "high"])
    assert scale.thresholds == (0.002, 0.006)  # lists are turned into tuples
    shares = np.array([0.0, 0.0019, 0.002, 0.005, 0.006, 0.5])
    assert scale.band_index(shares).tolist() == [0, 0, 1, 1, 2, 2]
    assert scale.band_of(0.002) == "medium"
    assert scale.band_of(0.0001) == "low"
    with pytest.raises(ValueError, match="ascending"):
        Scale("s", (0.5, 0.1), ("a", "b", "c"))
    with pytest.raises(ValueError, match="prevalence"):
        Claim("toys", 0.0, "low")
    with pytest.raises(ValueError, match="strike_threshold"):
        Policy(0, 0.5)


def test_from_dataframes_equals_load_of_written_dir(tmp_path):
    for full in (False, True):
        frames = valid_frames(full=full)
        from_frames = Submission.from_dataframes(**frames)
        loaded = load_submission(write_submission_dir(tmp_path, f"s{full}", full=full))
        assert from_frames == loaded
        assert from_frames.source == "<dataframes>"
        assert from_frames.input_sha256 != loaded.input_sha256  # different provenance
        for name, table in loaded.tables.items():
            pd.testing.assert_frame_equal(from_frames.tables[name], table)


def test_from_dataframes_accepts_records_and_claims_frame():
    frames = valid_frames()
    claims = pd.DataFrame(frames["claims"])  # detection_rate NaN where absent
    frames["claims"] = claims
    frames["scale"] = Scale(**{**frames["scale"], "thresholds": np.array([0.002, 0.006])})
    frames["policy"] = Policy(np.int64(3), 0.95)
    sub = Submission.from_dataframes(**frames)
    assert sub == Submission.from_dataframes(**valid_frames())
    frames["claims"] = list(sub.claims.values())  # Claim records
    assert Submission.from_dataframes(**frames) == sub
    assert "ShopCo" in repr(sub) and "3 categories x 3 periods" in repr(sub)


def test_to_directory_round_trip(tmp_path):
    sub = load_submission(write_submission_dir(tmp_path, full=True))
    sub.to_directory(tmp_path / "copy")
    again = load_submission(tmp_path / "copy")
    assert again == sub
    assert again.input_sha256 != "" and again.source == str(tmp_path / "copy")
    for name, table in sub.tables.items():
        pd.testing.assert_frame_equal(again.tables[name], table)
    with pytest.raises(FileExistsError):
        sub.to_directory(tmp_path / "copy")
    sub.to_directory(tmp_path / "copy", overwrite=True)
    assert not [p for p in (tmp_path / "copy").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("folder", [None, "my-submission"])
def test_zip_round_trip(tmp_path, folder):
    files = submission_files(full=True, extra={"README.md": b"# notes\n"})
    directory = load_submission(write_files(tmp_path / "d", files))
    zipped = load_submission(write_zip(tmp_path / "s.zip", files, folder=folder))
    assert zipped == directory
    assert zipped.input_sha256 == directory.input_sha256  # same bytes, same digest
    assert zipped.source == str(tmp_path / "s.zip")


def test_zip_with_directory_entries_and_macos_junk(tmp_path):
    import zipfile

    files = submission_files()
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("sub/", b"")
        for name, data in files.items():
            zf.writestr(f"sub/{name}", data)
        zf.writestr("__MACOSX/sub/._listings.csv", b"\x00\x05junk")
        zf.writestr("sub/.DS_Store", b"\x00junk")
    assert load_submission(path) == load_submission(write_files(tmp_path / "d", files))


def test_tolerated_and_hidden_files(tmp_path):
    extra = {"README.md": b"x", "truth.json": b"{}", ".DS_Store": b"\x00\x01"}
    d = write_submission_dir(tmp_path, extra=extra)
    (d / ".git").mkdir()
    base = load_submission(write_submission_dir(tmp_path, "plain"))
    sub = load_submission(d)
    assert sub == base
    assert sub.input_sha256 == base.input_sha256  # ignored files are not hashed


def test_utf8_bom_and_crlf_accepted(tmp_path):
    files = submission_files()
    files["listings.csv"] = b"\xef\xbb\xbf" + files["listings.csv"].replace(b"\n", b"\r\n")
    sub = load_submission(write_files(tmp_path / "s", files))
    assert sub == load_submission(write_submission_dir(tmp_path))


def test_blank_lines_ignored(tmp_path):
    files = submission_files()
    files["planted.csv"] = b"category,period,planted,caught\n\ntoys,2024-01,10,4\n\n"
    files["planted.csv"] += b"medicines,2024-02,8,8\n\n\n"
    assert load_submission(write_files(tmp_path / "s", files)) == load_submission(
        write_submission_dir(tmp_path)
    )


def test_toml_dates_accepted_as_months(tmp_path):
    toml = (
        (write_submission_dir(tmp_path, "ref") / "submission.toml")
        .read_text()
        .replace('period_start = "2024-01"', "period_start = 2024-01-01")
    )
    assert "period_start = 2024-01-01" in toml
    sub = load_submission(write_submission_dir(tmp_path, toml=toml))
    assert sub.platform.period_start == "2024-01"


def test_input_sha256_stable_and_sensitive(tmp_path):
    a = load_submission(write_submission_dir(tmp_path, "a"))
    b = load_submission(write_submission_dir(tmp_path, "b"))
    assert a.input_sha256 == b.input_sha256
    files = submission_files()
    files["listings.csv"] = files["listings.csv"].replace(b"0.5\n", b"0.50\n", 1)
    c = load_submission(write_files(tmp_path / "c", files))
    assert c.input_sha256 != a.input_sha256
    assert c == a  # same content, different bytes
    f1 = Submission.from_dataframes(**valid_frames())
    assert Submission.from_dataframes(**valid_frames()).input_sha256 == f1.input_sha256
    frames = valid_frames()
    frames["claims"][0]["prevalence"] = 0.0011
    assert Submission.from_dataframes(**frames).input_sha256 != f1.input_sha256


def test_from_dataset_round_trip(tmp_path):
    sub = load_submission(write_submission_dir(tmp_path, full=True))
    back = Submission.from_dataset(sub.data)
    assert back == sub
    assert back.data.identical(sub.data)
    assert back.input_sha256 == sub.input_sha256 and back.source == sub.source
    pd.testing.assert_frame_equal(back.tables["overlaps"], sub.tables["overlaps"])
    # rebuilt tables are valid input again
    back.to_directory(tmp_path / "rebuilt")
    assert load_submission(tmp_path / "rebuilt") == sub
    restored = Submission.from_dataset(sub.data, tables=sub.tables)
    pd.testing.assert_frame_equal(restored.tables["audits"], sub.tables["audits"])


def test_from_dataset_accepts_netcdf_style_values(tmp_path):
    """Attributes/coords as they come back from netCDF: arrays, scalars, object strings."""
    sub = Submission.from_dataframes(**valid_frames())
    ds = sub.data.copy()
    ds = ds.assign_coords(category=ds["category"].values.astype(object))
    ds["claimed_band"] = ds["claimed_band"].astype(object)
    ds.attrs["scale_thresholds"] = np.array(ds.attrs["scale_thresholds"])
    ds.attrs["scale_labels"] = np.array(ds.attrs["scale_labels"], dtype=object)
    ds.attrs["tables_present"] = "audits"  # a one-item list read back as a scalar
    back = Submission.from_dataset(ds)
    assert back.data["category"].dtype.kind == "U"
    assert back.scale == sub.scale
    assert back.data.attrs["tables_present"] == ["audits"]
    assert back.has("audits") and not back.has("planted")


def test_evidence_rows_are_summed(tmp_path):
    d = write_submission_dir(tmp_path)
    ev = write_files(
        tmp_path / "ev",
        {
            "audits.csv": b"category,period,design,sampled,illegal\n"
            b"toys,2024-01,random,100,2\ncosmetics,2024-02,purposive,30,5\n",
            "planted.csv": b"category,period,planted,caught\ntoys,2024-01,5,5\n",
        },
    )
    sub = load_submission(d, evidence=ev)
    base = load_submission(d)
    ds = sub.data
    assert ds["audit_random_sampled"].sel(category="toys", period="2024-01").item() == 300
    assert ds["audit_random_illegal"].sel(category="toys", period="2024-01").item() == 5
    assert ds["audit_purposive_illegal"].sel(category="cosmetics", period="2024-02").item() == 5
    assert ds["planted"].sel(category="toys", period="2024-01").item() == 15
    assert ds["caught"].sel(category="toys", period="2024-01").item() == 9
    diff = ds["audit_random_sampled"] - base.data["audit_random_sampled"]
    assert int(diff.sum()) == 100
    audits = sub.tables["audits"]
    assert audits["source"].tolist() == ["submission"] * 4 + ["evidence"] * 2
    assert sub.input_sha256 != base.input_sha256
    # write back split, and merged
    sub.to_directory(tmp_path / "out", evidence_path=tmp_path / "out-ev")
    again = load_submission(tmp_path / "out", evidence=tmp_path / "out-ev")
    assert again == sub
    pd.testing.assert_frame_equal(again.tables["audits"], audits)
    sub.to_directory(tmp_path / "merged")
    merged = load_submission(tmp_path / "merged")
    assert merged == sub and "source" not in merged.tables["audits"]
    with pytest.raises(ValueError, match="no evidence rows"):
        base.to_directory(tmp_path / "x", evidence_path=tmp_path / "x-ev")


def test_evidence_as_zip_and_only_table(tmp_path):
    files = submission_files(planted=None)
    d = write_files(tmp_path / "s", files)
    ev_files = {"planted.csv": b"category,period,planted,caught\nmedicines,2024-03,6,1\n"}
    sub = load_submission(d, evidence=write_zip(tmp_path / "ev.zip", ev_files, folder="ev"))
    assert sub.has("planted")
    assert sub.tables["planted"]["source"].tolist() == ["evidence"]
    assert sub.data["caught"].sum().item() == 1
    ev = Submission.from_dataframes(
        **{**valid_frames(), "planted": None},
        evidence={"planted": pd.DataFrame([("medicines", "2024-03", 6, 1)], columns=[
            "category", "period", "planted", "caught"])},
    )  # fmt: skip
    assert ev == sub


def test_many_rows_validate_quickly(tmp_path):
    """A 120-category x 60-month x 4-channel submission (~36k rows) loads in well under a minute."""
    import time

    from tests.data_fixtures import toml_dict

    cats = [f"c{i:03d}" for i in range(120)]
    periods = [str(p) for p in pd.period_range("2020-01", periods=60, freq="M")]
    grid = pd.MultiIndex.from_product([cats, periods], names=["category", "period"]).to_frame(
        index=False
    )
    listings = grid.assign(listings=1000, review_hours=2.5)
    channels = pd.DataFrame({"channel": ["proactive", "notice", "trusted_flagger", "authority"]})
    det = grid.merge(channels, how="cross").assign(detected=3)
    frames = valid_frames()
    frames["platform"] = {"name": "Big", "period_start": "2020-01", "period_end": "2024-12"}
    frames["claims"] = [{"category": c, "prevalence": 0.01, "band": "high"} for c in cats]
    frames.update(listings=listings, detections=det, audits=None, planted=None)
    d = write_files(
        tmp_path / "big",
        {
            "submission.toml": __import__("tomli_w").dumps(toml_dict(frames)).encode(),
            "listings.csv": listings.to_csv(index=False).encode(),
            "detections.csv": det.to_csv(index=False).encode(),
        },
    )
    t0 = time.perf_counter()
    sub = load_submission(d)
    assert time.perf_counter() - t0 < 30
    assert sub.data["detected"].shape == (120, 60, 4)
    assert int(sub.data["detected"].sum()) == 3 * len(det)
