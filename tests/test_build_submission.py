"""Tests of risklab.data.build.build_submission (public data -> submission + manifest)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from risklab.data import SubmissionError, load_submission
from risklab.data.build import build_submission
from risklab.data.templates import ReviewAssumptions, read_transparency_report

duckdb = pytest.importorskip("duckdb", reason="needs risklab[ingest] (DuckDB)")

from risklab.data.transparency_db import aggregate_tdb  # noqa: E402
from risklab.ingest_cli import add_ingest_parser, run_ingest  # noqa: E402

DATA = Path(__file__).parent / "data"
TDB_FILES = [
    DATA / "tdb" / "sor-shopco-2025-06-30-full-v1.csv",
    DATA / "tdb" / "sor-shopco-2025-07-01-light-v2.csv",
]
REPORT_PARTS = sorted((DATA / "templates" / "shopco-2025h2").glob("*.csv"))
CATS = ["unsafe_products", "prohibited_products", "consumer_information"]
SCALE = {"name": "likelihood", "thresholds": [0.002, 0.006], "labels": ["low", "medium", "high"]}
ASSESSMENT_TOML = """
[platform]
name = "ShopCo"

[scale]
name = "likelihood of non-compliance"
thresholds = [0.002, 0.006]
labels = ["low", "medium", "high"]

[[claims]]
category = "consumer_information"
prevalence = 0.001
band = "low"

[policy]
strike_threshold = 3
claimed_enforcement = 0.9
"""


@pytest.fixture(scope="module")
def tdb():
    return aggregate_tdb(TDB_FILES, "ShopCo")


@pytest.fixture(scope="module")
def report():
    return read_transparency_report(REPORT_PARTS)


def listings(periods=("2025-06", "2025-07"), hours: bool = False) -> pd.DataFrame:
    rows = [(c, p, 1000 * (i + 1) + j) for i, c in enumerate(CATS) for j, p in enumerate(periods)]
    df = pd.DataFrame(rows, columns=["category", "period", "listings"])
    if hours:
        df["review_hours"] = 10.5
    return df


def values(manifest: dict, file: str, column: str) -> list[dict]:
    return [v for v in manifest["values"] if v["file"] == file and v["column"] == column]


def test_build_from_database_and_report(tmp_path: Path, tdb, report) -> None:
    res = build_submission(
        tmp_path / "out",
        listings=listings(),
        assessment={"platform": {"name": "ShopCo"}, "scale": SCALE},
        tdb=tdb,
        report=report,
    )
    sub = load_submission(tmp_path / "out" / "submission")
    assert sub == res.submission
    assert sub.categories == sorted(CATS) and sub.periods == ["2025-06", "2025-07"]
    # detections are the database's, on the full grid; 'authority' never seen -> left out
    assert sub.channels == ["proactive", "notice", "trusted_flagger"]
    det = sub.data["detected"]
    assert int(det.sel(category="unsafe_products", period="2025-06", channel="proactive")) == 4
    assert int(det.sel(category="prohibited_products", period="2025-07", channel="notice")) == 1
    assert int(det.sum()) == 4 + 1 + 2 + 1 + 1 + 1 + 1 + 1  # grid cells of EXPECTED (tdb test)
    assert any("authority" in w and "not written as zeros" in w for w in res.warnings)
    assert any("cover 1 of 30 days" in w for w in res.warnings)
    # review hours: 60 moderators x 115 h, split by listings within each month
    hours = sub.data["review_hours"].sel(period="2025-06")
    assert float(hours.sum()) == pytest.approx(60 * 115, abs=0.05)
    share = 1000 / (1000 + 2000 + 3000)
    assert float(hours.sel(category="unsafe_products")) == pytest.approx(6900 * share, abs=0.01)
    # appeals: 1 of the 6 report months in the grid; overturned <= appeals in every cell
    app = sub.tables["appeals"]
    assert app["appeals"].sum() == round(400 / 6) and app["overturned"].sum() == round(60 / 6)
    assert (app["overturned"] <= app["appeals"]).all() and set(app["period"]) == {"2025-07"}
    # claims derived from the detected share, detection rate from the published recall
    unsafe = sub.claims["unsafe_products"]
    n_det = int(det.sel(category="unsafe_products").sum())
    assert unsafe.prevalence == pytest.approx(n_det / (1000 + 1001))
    assert unsafe.band == "medium" and unsafe.detection_rate == 0.8
    # manifest: every value has a source; dropped numbers are listed
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m == res.manifest
    assert len(values(m, "detections.csv", "detected")) == 3 * 2 * 3
    assert {v["source"] for v in values(m, "listings.csv", "review_hours")} == {
        "transparency_report"
    }
    prev = [v for v in m["values"] if v["column"].endswith(".prevalence")]
    assert {v["source"] for v in prev} == {"derived"}
    assert {d.get("category") for d in m["dropped"]} >= {"counterfeits", "adult_products"}
    assert m["assumptions"]["review_capacity"]["hours_per_month"] == 6900
    assert m["inputs"]["transparency_database"]["summary"]["kept"] == 17
    cross = {(c["category"], c["channel"]): c for c in m["cross_check"]}
    assert cross[("unsafe_products", "proactive")]["transparency_report"] == 1100
    # the submission directory holds only submission files
    assert sorted(p.name for p in (tmp_path / "out" / "submission").iterdir()) == [
        "appeals.csv",
        "detections.csv",
        "listings.csv",
        "submission.toml",
    ]


def test_assessment_file_claims_policy_and_supplied_hours(tmp_path: Path, tdb) -> None:
    toml = tmp_path / "assessment.toml"
    toml.write_text(ASSESSMENT_TOML, encoding="utf-8")
    res = build_submission(
        tmp_path / "out", listings=listings(hours=True), assessment=toml, tdb=tdb
    )
    sub = res.submission
    assert sub.claims["consumer_information"].prevalence == 0.001
    assert sub.claims["consumer_information"].detection_rate is None  # no report: no recall
    assert sub.policy is not None and sub.policy.strike_threshold == 3
    assert float(sub.data["review_hours"].sum()) == pytest.approx(10.5 * 6)
    assert res.manifest["columns"]["listings.csv"]["review_hours"].startswith("supplied")
    assert "appeals" not in sub.data.attrs["tables_present"]
    assert res.manifest["inputs"]["assessment"]["sha256"]


def test_report_only_build_spreads_totals_and_leaves_gapped_channels_out(
    tmp_path: Path, report
) -> None:
    cats = ["unsafe_products", "counterfeits", "scam_listings"]
    df = pd.DataFrame(
        [(c, p, 50_000) for c in cats for p in ("2025-07", "2025-08", "2025-09")],
        columns=["category", "period", "listings"],
    )
    res = build_submission(
        tmp_path / "out",
        listings=df,
        report=report,
        assessment={
            "platform": {"name": "ShopCo"},
            "scale": SCALE,
            "claims": [{"category": "scam_listings", "prevalence": 0.001, "band": "low"}],
        },
    )
    sub = res.submission
    # scam listings' notices are a gap in the report: notice and trusted_flagger left out
    assert sub.channels == ["proactive", "authority"]
    assert any("'notice' left out" in w for w in res.warnings)
    det = sub.tables["detections"]
    unsafe = det[(det["category"] == "unsafe_products") & (det["channel"] == "proactive")]
    # 1100 over 6 months, integer shares (largest remainder), 3 months in the grid
    assert unsafe["detected"].tolist() == [184, 184, 183]
    assert "spread evenly" in res.manifest["assumptions"]["detections_from_report"]


def test_uncovered_month_is_an_error(tmp_path: Path, tdb) -> None:
    with pytest.raises(SubmissionError) as err:
        build_submission(
            tmp_path / "out",
            listings=listings(("2025-06", "2025-08")),
            assessment={"platform": {"name": "ShopCo"}, "scale": SCALE},
            tdb=tdb,
        )
    (p,) = err.value.problems
    assert p.file == "detections.csv" and p.column == "period" and "2025-08" in p.message
    assert not (tmp_path / "out").exists()


def test_missing_review_capacity_is_an_error(tmp_path: Path, tdb) -> None:
    with pytest.raises(SubmissionError) as err:
        build_submission(
            tmp_path / "out",
            listings=listings(),
            assessment={"platform": {"name": "ShopCo"}, "scale": SCALE},
            tdb=tdb,
        )
    (p,) = err.value.problems
    assert (p.file, p.row, p.column) == ("listings.csv", 1, "review_hours")


def test_bad_inputs_are_reported(tmp_path: Path, tdb, report) -> None:
    with pytest.raises(SubmissionError, match="scale"):
        build_submission(
            tmp_path / "o",
            listings=listings(),
            tdb=tdb,
            report=report,
            assessment={"platform": {"name": "ShopCo"}},
        )
    bad = listings().rename(columns={"listings": "active"})
    with pytest.raises(SubmissionError) as err:
        build_submission(
            tmp_path / "o",
            listings=bad,
            tdb=tdb,
            report=report,
            assessment={"platform": {"name": "ShopCo"}, "scale": SCALE},
        )
    assert {(p.column, p.row) for p in err.value.problems} == {("listings", 1), ("active", 1)}
    with pytest.raises(ValueError, match=r"tdb= .* report="):
        build_submission(
            tmp_path / "o",
            listings=listings(),
            assessment={"platform": {"name": "ShopCo"}, "scale": SCALE},
        )
    # an invalid claim is caught by the submission's own validation; nothing is written
    with pytest.raises(SubmissionError, match="band"):
        build_submission(
            tmp_path / "o",
            listings=listings(),
            tdb=tdb,
            report=report,
            assessment={
                "platform": {"name": "ShopCo"},
                "scale": SCALE,
                "claims": [{"category": "unsafe_products", "prevalence": 0.01, "band": "extreme"}],
            },
        )
    assert not (tmp_path / "o").exists()


def test_overwrite_protection_and_review_assumptions(tmp_path: Path, tdb, report) -> None:
    kw = dict(
        listings=listings(),
        tdb=tdb,
        report=report,
        assessment={"platform": {"name": "ShopCo"}, "scale": SCALE},
    )
    build_submission(tmp_path / "out", **kw)
    with pytest.raises(FileExistsError):
        build_submission(tmp_path / "out", **kw)
    res = build_submission(
        tmp_path / "out",
        overwrite=True,
        appeals=False,
        review=ReviewAssumptions(
            hours_per_moderator_month=100, share_on_listings=0.5, allocation="equal"
        ),
        **kw,
    )
    hours = res.submission.data["review_hours"].sel(period="2025-06")
    assert hours.values.tolist() == pytest.approx([60 * 100 * 0.5 / 3] * 3)
    assert "appeals" not in res.submission.data.attrs["tables_present"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risklab")
    add_ingest_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _parser()
    assert (
        run_ingest(
            p.parse_args(
                [
                    "ingest",
                    "tdb",
                    *map(str, TDB_FILES),
                    "--platform",
                    "ShopCo",
                    "--out",
                    str(tmp_path / "tdb"),
                    "--quiet",
                ]
            )
        )
        == 0
    )
    assert (
        run_ingest(
            p.parse_args(
                ["ingest", "report", *map(str, REPORT_PARTS), "--out", str(tmp_path / "report")]
            )
        )
        == 0
    )
    listings().to_csv(tmp_path / "listings.csv", index=False)
    (tmp_path / "assessment.toml").write_text(ASSESSMENT_TOML, encoding="utf-8")
    args = [
        "ingest",
        "build",
        "--listings",
        str(tmp_path / "listings.csv"),
        "--assessment",
        str(tmp_path / "assessment.toml"),
        "--tdb",
        str(tmp_path / "tdb"),
        "--report",
        str(tmp_path / "report"),
        "--out",
        str(tmp_path / "built"),
        "--hours-per-moderator",
        "120",
    ]
    capsys.readouterr()
    assert run_ingest(p.parse_args(args)) == 0
    out = capsys.readouterr()
    assert "risklab validate" in out.out and "warning:" in out.err
    sub = load_submission(tmp_path / "built" / "submission")
    assert float(sub.data["review_hours"].sel(period="2025-07").sum()) == pytest.approx(
        7200, abs=0.05
    )
    manifest = json.loads((tmp_path / "built" / "manifest.json").read_text())
    assert manifest["assumptions"]["review_capacity"]["hours_per_moderator_month"] == 120
    # same result as the Python API on the same inputs
    direct = build_submission(
        tmp_path / "direct",
        listings=tmp_path / "listings.csv",
        assessment=tmp_path / "assessment.toml",
        tdb=tmp_path / "tdb",
        report=tmp_path / "report",
        review=ReviewAssumptions(hours_per_moderator_month=120),
    )
    assert direct.submission == sub
    # invalid input: exit 2, message names the file
    assert (
        run_ingest(p.parse_args([*args[:-2], "--force", "--listings", str(tmp_path / "nope.csv")]))
        == 2
    )
    assert "nope.csv" in capsys.readouterr().err
