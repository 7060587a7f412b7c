"""Tests of risklab.data.transparency_db and risklab.data.mappings (DSA Transparency Database)."""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risklab.data import SubmissionError
from risklab.data.mappings import (
    CATEGORY_RENAMES,
    CATEGORY_SUCCESSORS,
    DEFAULT_RULES,
    KEYWORD_RENAMES,
    KEYWORD_SUCCESSORS,
    KNOWN_CATEGORIES,
    KNOWN_KEYWORDS,
    STATEMENT_CATEGORIES_V2,
    CategoryMapping,
    check_channel_map,
)

duckdb = pytest.importorskip("duckdb", reason="needs risklab[ingest] (DuckDB)")

from risklab.data.transparency_db import TdbAggregate, aggregate_tdb  # noqa: E402
from risklab.ingest_cli import add_ingest_parser, run_ingest  # noqa: E402

DATA = Path(__file__).parent / "data" / "tdb"
V1 = DATA / "sor-shopco-2025-06-30-full-v1.csv"
V2 = DATA / "sor-shopco-2025-07-01-light-v2.csv"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "transparency-db"
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "ingest_tdb.py"

#: Hand-computed detections of both fixtures (default mapping, platform ShopCo).
EXPECTED = {
    ("adult_products", "2025-06", "proactive"): 1,  # v1-06: deleted v1 category -> T&C
    ("adult_products", "2025-07", "proactive"): 1,  # v2-04
    ("consumer_information", "2025-06", "proactive"): 1,  # v1-04: renamed v1 keyword
    ("consumer_information", "2025-07", "proactive"): 1,  # v2-05
    ("counterfeits", "2025-05", "authority"): 1,  # v1-05: decided in May
    ("health_products", "2025-07", "trusted_flagger"): 1,  # v2-03
    ("prohibited_products", "2025-06", "proactive"): 1,  # v1-07: renamed v1 category
    ("prohibited_products", "2025-06", "trusted_flagger"): 1,  # v1-03: deleted v1 keyword
    ("prohibited_products", "2025-07", "notice"): 1,  # v2-02: first rule wins
    ("scam_listings", "2025-07", "notice"): 1,  # v2-06
    ("unsafe_products", "2025-06", "proactive"): 4,  # v1-01, v1-13, v1-14, v2-08 (late)
    ("unsafe_products", "2025-06", "notice"): 1,  # v1-02
    ("unsafe_products", "2025-07", "proactive"): 2,  # v2-01, v2-09 ("shopco ")
}
EXPECTED_REASONS = {
    "kept": 17,
    "unmapped": 2,  # v1-08 (defamation), v2-07 (CSAM keyword: no product rule)
    "other_platform": 3,
    "not_product_content": 1,
    "malformed_keywords": 1,
    "invalid_application_date": 1,
    "unknown_category": 1,
    "unknown_source_type": 1,
    "malformed_content_type": 1,
    "malformed_csv_row": 2,
}


# ------------------------------------------------------------------------------- helpers
def _split_parts(csv_path: Path, n_parts: int) -> list[str]:
    """Split a dump CSV into parts that each repeat the header (as the published parts do)."""
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    size = -(-len(body) // n_parts)
    return [header + "".join(body[i : i + size]) for i in range(0, len(body), size)]


def nested_zip(tmp: Path, csv_path: Path, name: str, n_parts: int = 2) -> Path:
    """A daily dump as published since April 2024: a zip of zips of CSV parts."""
    inner_buf = io.BytesIO()
    with zipfile.ZipFile(inner_buf, "w", zipfile.ZIP_DEFLATED) as inner:
        for i, text in enumerate(_split_parts(csv_path, n_parts)):
            inner.writestr(f"{name}-00000-{i:05d}.csv", text)
    out = tmp / f"{name}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as outer:
        outer.writestr(f"{name}-00000.csv.zip", inner_buf.getvalue())
        outer.writestr(f"{name}.csv.zip.sha1", "0" * 40)
    return out


def flat_zip(tmp: Path, csv_path: Path, name: str) -> Path:
    """A dump as published before April 2024: a zip holding the CSV file."""
    out = tmp / f"{name}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, f"{name}.csv")
    return out


def detections_dict(agg: TdbAggregate) -> dict[tuple[str, str, str], int]:
    return {
        (r.category, r.period, r.channel): int(r.detected)
        for r in agg.detections.itertuples(index=False)
    }


def reasons(agg: TdbAggregate) -> dict[str, int]:
    return {k: int(v) for k, v in agg.status.groupby("reason")["statements"].sum().items()}


def reference_aggregate(paths: list[Path], platform: str, mapping: CategoryMapping) -> dict:
    """Independent pure-Python reading of dump CSVs: detections and reasons."""
    channel = check_channel_map(None)
    det: Counter = Counter()
    why: Counter = Counter()
    for path in paths:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        header = rows[0]
        for cells in rows[1:]:
            if len(cells) != len(header):
                why["malformed_csv_row"] += 1
                continue
            r = dict(zip(header, cells, strict=True))
            if r["platform_name"].strip().lower() != platform.lower():
                why["other_platform"] += 1
                continue
            app = r["application_date"][:10]
            try:
                datetime.date.fromisoformat(app)
            except ValueError:
                why["invalid_application_date"] += 1
                continue
            try:
                types = json.loads(r["content_type"])
                assert isinstance(types, list)
            except (ValueError, AssertionError):
                why["malformed_content_type"] += 1
                continue
            if "CONTENT_TYPE_PRODUCT" not in types:
                why["not_product_content"] += 1
                continue
            try:
                kws = json.loads(r["category_specification"]) if r["category_specification"] else []
                assert isinstance(kws, list)
            except (ValueError, AssertionError):
                why["malformed_keywords"] += 1
                continue
            if r["category"] not in KNOWN_CATEGORIES:
                why["unknown_category"] += 1
                continue
            if r["source_type"] not in channel:
                why["unknown_source_type"] += 1
                continue
            outcome, cat = mapping.classify(r["category"], kws)
            if outcome != "mapped":
                why["unmapped" if outcome == "unmapped" else "excluded_by_mapping"] += 1
                continue
            why["kept"] += 1
            det[(cat, app[:7], channel[r["source_type"]])] += 1
    return {"detections": dict(det), "reasons": dict(why)}


@pytest.fixture(scope="module")
def fixture_agg() -> TdbAggregate:
    return aggregate_tdb([V1, V2], "ShopCo")


# ------------------------------------------------------------------------------- mapping
def test_default_rules_are_valid_and_documented() -> None:
    m = CategoryMapping.default()
    assert len(m.rules) == len(DEFAULT_RULES)
    assert set(m.categories) == {r[2] for r in DEFAULT_RULES if r[2]}
    assert CategoryMapping.from_file  # round trip below


def test_classify_maps_across_schema_versions() -> None:
    m = CategoryMapping.default()
    v1 = m.classify("STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS", ["KEYWORD_DANGEROUS_TOYS"])
    v2 = m.classify(
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS", ["KEYWORD_UNSAFE_PRODUCTS"]
    )
    assert v1 == v2 == ("mapped", "unsafe_products")
    # a renamed v1 keyword follows its v2 name, even under its old (v1) category
    old = m.classify(
        "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS",
        ["KEYWORD_INSUFFICIENT_INFORMATION_TRADERS"],
    )
    assert old == ("mapped", "consumer_information")
    # first matching rule wins
    both = ["KEYWORD_UNSAFE_PRODUCTS", "KEYWORD_PROHIBITED_PRODUCTS"]
    assert m.classify("STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS", both)[1] == (
        "prohibited_products"
    )
    assert m.classify("STATEMENT_CATEGORY_VIOLENCE", []) == ("unmapped", None)


def test_user_rules_override_order_and_exclusion(tmp_path: Path) -> None:
    path = tmp_path / "mapping.csv"
    path.write_text(
        "db_category,keyword,category\n"
        "*,KEYWORD_DANGEROUS_TOYS,toys\n"
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS,KEYWORD_PROHIBITED_PRODUCTS,\n"
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS,,unsafe\n",
        encoding="utf-8",
    )
    m = CategoryMapping.from_file(path)
    u1 = "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS"
    assert m.classify(u1, ["KEYWORD_DANGEROUS_TOYS"]) == ("mapped", "toys")
    assert m.classify(u1, ["KEYWORD_REGULATED_GOODS_SERVICES"]) == ("excluded", None)
    assert m.classify(u1, []) == ("mapped", "unsafe")
    assert CategoryMapping.from_file(path) == m
    # CSV and JSON round trips
    (tmp_path / "again.csv").write_text(m.to_csv(), encoding="utf-8")
    assert CategoryMapping.from_file(tmp_path / "again.csv") == m
    (tmp_path / "m.json").write_text(json.dumps(m.to_records()), encoding="utf-8")
    assert CategoryMapping.from_file(tmp_path / "m.json") == m


def test_bad_mapping_file_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mapping.csv"
    path.write_text(
        "db_category,keyword,category\nSTATEMENT_CATEGORY_UNSAFE_PRODUCTS,,x\n*,KEYWORD_NOPE,y\n",
        encoding="utf-8",
    )
    with pytest.raises(SubmissionError) as err:
        CategoryMapping.from_file(path)
    where = {(p.row, p.column) for p in err.value.problems}
    assert where == {(2, "db_category"), (3, "keyword")}
    (tmp_path / "cols.csv").write_text("category,risk\n", encoding="utf-8")
    with pytest.raises(SubmissionError, match="missing required column"):
        CategoryMapping.from_file(tmp_path / "cols.csv")


def test_channel_map_overrides_are_checked() -> None:
    assert (
        check_channel_map({"SOURCE_TYPE_OTHER_NOTIFICATION": "notice"})[
            "SOURCE_TYPE_OTHER_NOTIFICATION"
        ]
        == "notice"
    )
    with pytest.raises(ValueError, match="unknown source_type"):
        check_channel_map({"SOURCE_EMAIL": "notice"})
    with pytest.raises(ValueError, match="unknown channel"):
        check_channel_map({"SOURCE_VOLUNTARY": "audit"})


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference files not present")
def test_vocabulary_matches_the_reference_statements_json() -> None:
    vocab = json.loads((REFERENCE / "statements.json").read_text(encoding="utf-8"))
    assert set(vocab["categories"]) <= set(STATEMENT_CATEGORIES_V2)
    assert set(vocab["category_specification"]) <= KNOWN_KEYWORDS
    assert dict(vocab["renamed_categories"]) == CATEGORY_RENAMES
    assert dict(vocab["renamed_category_specifications"]) == KEYWORD_RENAMES
    assert set(vocab["deleted_categories"]) == set(CATEGORY_SUCCESSORS)
    assert set(vocab["deleted_category_specifications"]) == set(KEYWORD_SUCCESSORS)


# ---------------------------------------------------------------------------- aggregation
def test_fixture_detections_and_reasons(fixture_agg: TdbAggregate) -> None:
    assert detections_dict(fixture_agg) == EXPECTED
    assert reasons(fixture_agg) == EXPECTED_REASONS
    s = fixture_agg.summary()
    assert s["statements_read"] == 30 and s["statements_of_platform"] == 25
    assert s["unreadable_lines"] == 2
    assert s["unmapped_by_db_category"] == {
        "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH": 1,
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS": 1,
    }
    # every statement read is accounted for exactly once
    assert fixture_agg.status["statements"].sum() == 30


def test_matches_independent_python_reading(fixture_agg: TdbAggregate) -> None:
    ref = reference_aggregate([V1, V2], "ShopCo", CategoryMapping.default())
    assert detections_dict(fixture_agg) == ref["detections"]
    assert reasons(fixture_agg) == ref["reasons"]


def test_malformed_rows_are_reported_with_line_and_example(fixture_agg: TdbAggregate) -> None:
    rej = fixture_agg.rejected_lines
    assert sorted(zip(rej["file"], rej["line"], strict=True)) == [(str(V1), 13), (str(V2), 13)]
    assert rej["error"].str.contains("TOO MANY COLUMNS").sum() == 1
    assert rej["error"].str.contains("MISSING COLUMNS").sum() == 1
    st_ = fixture_agg.status.set_index("reason")
    assert st_.loc["malformed_keywords", "example_uuid"] == "v1-10"
    assert st_.loc["malformed_content_type", "example_uuid"] == "v2-11"
    assert set(fixture_agg.skipped()["reason"]) == {
        "malformed_keywords",
        "invalid_application_date",
        "unknown_category",
        "unknown_source_type",
        "malformed_content_type",
        "malformed_csv_row",
    }
    assert fixture_agg.skipped()["meaning"].notna().all()


def test_breakdowns_keep_automation_and_ground(fixture_agg: TdbAggregate) -> None:
    bd = fixture_agg.breakdown
    assert bd["statements"].sum() == 17
    notice = bd[(bd["category"] == "unsafe_products") & (bd["channel"] == "notice")]
    assert notice[
        ["decision_ground", "automated_detection", "automated_decision"]
    ].values.tolist() == [["incompatible_content", "no", "not_automated"]]
    tf = bd[(bd["category"] == "prohibited_products") & (bd["channel"] == "trusted_flagger")]
    assert tf["automated_decision"].tolist() == ["partially"]
    # the breakdown sums to the detections
    summed = bd.groupby(["category", "period", "channel"])["statements"].sum().to_dict()
    assert summed == EXPECTED


def test_listing_age_summary(fixture_agg: TdbAggregate) -> None:
    age = fixture_agg.listing_age.set_index(["category", "period", "channel"])
    row = age.loc[("unsafe_products", "2025-06", "proactive")]
    # v1-01: 10 days, v1-13: no content date, v1-14: content after decision (-2), v2-08: 1 day
    assert (row["statements"], row["with_age"], row["negative_age"]) == (4, 3, 1)
    assert row["mean_days"] == pytest.approx(5.5)
    assert (row["median_days"], row["p90_days"]) == (1, 10)
    tf = age.loc[("prohibited_products", "2025-06", "trusted_flagger")]
    assert tf["median_days"] == 151  # 2025-01-15 -> 2025-06-15


def test_schema_versions_and_variants_detected(fixture_agg: TdbAggregate) -> None:
    files = fixture_agg.files.set_index("file")
    assert files.loc[str(V1), ["variant", "schema_version"]].tolist() == ["full", 1]
    assert files.loc[str(V2), ["variant", "schema_version"]].tolist() == ["light", 2]
    assert fixture_agg.days_covered() == {"2025-06": 1, "2025-07": 1}


def test_2025_category_rename_maps_to_one_category(tmp_path: Path) -> None:
    """The same decision filed under the v1 and the v2 name lands in one risklab category."""
    lines = V2.read_text(encoding="utf-8").splitlines()
    header, row = lines[0], lines[1]  # v2-01: UNSAFE_AND_PROHIBITED, KEYWORD_UNSAFE_PRODUCTS
    renamed = row.replace(
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
        "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS",
    ).replace("KEYWORD_UNSAFE_PRODUCTS", "KEYWORD_DANGEROUS_TOYS")
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join([header, row, renamed]) + "\n", encoding="utf-8")
    agg = aggregate_tdb(path, "ShopCo")
    assert detections_dict(agg) == {("unsafe_products", "2025-07", "proactive"): 2}


def test_nested_and_flat_zips_equal_plain_csv(tmp_path: Path, fixture_agg: TdbAggregate) -> None:
    nested = nested_zip(tmp_path, V1, "sor-shopco-2025-06-30-full", n_parts=3)
    flat = flat_zip(tmp_path, V2, "sor-shopco-2025-07-01-light")
    agg = aggregate_tdb([nested, flat], "ShopCo")
    assert detections_dict(agg) == EXPECTED
    assert reasons(agg) == EXPECTED_REASONS
    assert len(agg.files) == 4  # 3 parts + 1 CSV
    assert agg.files["file"].str.contains(".csv.zip/").sum() == 3
    assert any("sha1" in n and "ignored" in n for n in agg.notes)
    assert agg.inputs[0]["sha256"] and len(agg.inputs[0]["sha256"]) == 64


def test_gzipped_csv_and_parquet_inputs(tmp_path: Path) -> None:
    gz = tmp_path / "v2.csv.gz"
    import gzip

    gz.write_bytes(gzip.compress(V2.read_bytes()))
    pq = tmp_path / "v2.parquet"
    con = duckdb.connect()
    # Parquet as offered for the full dumps: typed columns, arrays as lists
    con.execute(
        f"""COPY (SELECT * REPLACE (
                CAST(content_type AS JSON)::VARCHAR[] AS content_type,
                CAST(category_specification AS JSON)::VARCHAR[] AS category_specification,
                CAST(application_date AS TIMESTAMP) AS application_date)
            FROM read_csv('{V2}', all_varchar = true, ignore_errors = true)
            WHERE json_valid(content_type) AND content_type LIKE '[%')
            TO '{pq}' (FORMAT parquet)"""
    )
    base = aggregate_tdb(V2, "ShopCo")
    assert detections_dict(aggregate_tdb(gz, "ShopCo")) == detections_dict(base)
    from_parquet = aggregate_tdb(pq, "ShopCo")
    assert detections_dict(from_parquet) == detections_dict(base)
    assert from_parquet.files["kind"].tolist() == ["parquet"]


def test_channel_override_and_exclusion() -> None:
    to_notice = aggregate_tdb(V1, "ShopCo", channels={"SOURCE_TYPE_OTHER_NOTIFICATION": "notice"})
    assert detections_dict(to_notice)[("counterfeits", "2025-05", "notice")] == 1
    dropped = aggregate_tdb(V1, "ShopCo", channels={"SOURCE_TYPE_OTHER_NOTIFICATION": None})
    assert ("counterfeits", "2025-05", "authority") not in detections_dict(dropped)
    assert reasons(dropped)["channel_excluded"] == 1


def test_all_content_and_illegal_ground_options() -> None:
    everything = aggregate_tdb(V1, "ShopCo", product_only=False)
    assert "not_product_content" not in reasons(everything)
    assert detections_dict(everything)[("unsafe_products", "2025-06", "proactive")] == 4
    illegal = aggregate_tdb(V1, "ShopCo", ground="illegal")
    # v1-04, v1-06 (T&C, not illegal) and v1-07 (T&C, flag empty) are left out; v1-02 stays
    assert reasons(illegal)["not_illegal_ground"] == 3
    assert detections_dict(illegal)[("unsafe_products", "2025-06", "notice")] == 1
    with pytest.raises(ValueError, match="ground"):
        aggregate_tdb(V1, "ShopCo", ground="legal")


def test_unknown_platform_lists_platforms_found() -> None:
    with pytest.raises(SubmissionError) as err:
        aggregate_tdb([V1, V2], "Amazon Store")
    msg = str(err.value)
    assert "'ShopCo'" in msg and "'OtherCo'" in msg and "platform_name" in msg


def test_missing_required_column_names_file_row_and_column(tmp_path: Path) -> None:
    lines = V2.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0].replace("source_type", "source"), lines[1]]) + "\n")
    with pytest.raises(SubmissionError) as err:
        aggregate_tdb(bad, "ShopCo")
    (p,) = err.value.problems
    assert (p.file, p.row, p.column) == (str(bad), 1, "source_type")


def test_unreadable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="no such file"):
        aggregate_tdb(tmp_path / "missing.zip", "ShopCo")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SubmissionError, match="unsupported file type"):
        aggregate_tdb(tmp_path / "x.txt", "ShopCo")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SubmissionError, match="not a readable zip"):
        aggregate_tdb(tmp_path / "broken.zip", "ShopCo")


def test_directory_round_trip(tmp_path: Path, fixture_agg: TdbAggregate) -> None:
    written = fixture_agg.to_directory(tmp_path / "out")
    assert (tmp_path / "out" / "tdb.json") in written
    back = TdbAggregate.from_directory(tmp_path / "out")
    assert detections_dict(back) == EXPECTED
    assert back.days_covered() == fixture_agg.days_covered()
    pd.testing.assert_frame_equal(back.listing_age, fixture_agg.listing_age, check_dtype=False)
    with pytest.raises(FileExistsError):
        fixture_agg.to_directory(tmp_path / "out")
    fixture_agg.to_directory(tmp_path / "out", overwrite=True)


_CATS = [
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_VIOLENCE",
    "BOGUS",
]
_KWS = [
    "KEYWORD_UNSAFE_PRODUCTS",
    "KEYWORD_PROHIBITED_PRODUCTS",
    "KEYWORD_DANGEROUS_TOYS",
    "KEYWORD_ADULT_SEXUAL_MATERIAL",
    "KEYWORD_INSUFFICIENT_INFORMATION_TRADERS",
]
_statement = st.fixed_dictionaries(
    {
        "platform_name": st.sampled_from(["ShopCo", "shopco", "Other"]),
        "category": st.sampled_from(_CATS),
        "category_specification": st.one_of(
            st.lists(st.sampled_from(_KWS), max_size=2).map(json.dumps), st.just(""), st.just("[x")
        ),
        "content_type": st.sampled_from(
            [
                '["CONTENT_TYPE_PRODUCT"]',
                '["CONTENT_TYPE_TEXT"]',
                '["CONTENT_TYPE_TEXT", "CONTENT_TYPE_PRODUCT"]',
                "PRODUCT",
            ]
        ),
        "source_type": st.sampled_from(
            [
                "SOURCE_VOLUNTARY",
                "SOURCE_ARTICLE_16",
                "SOURCE_TRUSTED_FLAGGER",
                "SOURCE_TYPE_OTHER_NOTIFICATION",
            ]
        ),
        "application_date": st.sampled_from(["2025-06-30 00:00:00", "2025-07-01", "bad"]),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_statement, min_size=1, max_size=30))
def test_property_duckdb_equals_python_reference(tmp_path: Path, rows: list[dict]) -> None:
    cols = [
        "uuid",
        "category",
        "category_specification",
        "content_type",
        "source_type",
        "application_date",
        "content_date",
        "platform_name",
        "automated_detection",
        "automated_decision",
        "decision_ground",
    ]
    path = tmp_path / "gen.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i, r in enumerate(rows):
            w.writerow(
                [
                    f"u{i}",
                    r["category"],
                    r["category_specification"],
                    r["content_type"],
                    r["source_type"],
                    r["application_date"],
                    "2025-06-01",
                    r["platform_name"],
                    "Yes",
                    "AUTOMATED_DECISION_FULLY",
                    "DECISION_GROUND_ILLEGAL_CONTENT",
                ]
            )
    ref = reference_aggregate([path], "ShopCo", CategoryMapping.default())
    if ref["reasons"].get("other_platform", 0) == len(rows):
        with pytest.raises(SubmissionError):
            aggregate_tdb(path, "ShopCo", hash_inputs=False)
        return
    agg = aggregate_tdb(path, "ShopCo", hash_inputs=False)
    assert detections_dict(agg) == ref["detections"]
    assert reasons(agg) == ref["reasons"]


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference files not present")
def test_reference_statement_records(tmp_path: Path) -> None:
    """The Commission's example records, written as a dump CSV, aggregate as expected."""
    records = json.loads((REFERENCE / "example_multi_statements.json").read_text())["statements"]
    records.append(json.loads((REFERENCE / "example_statement.json").read_text()))
    cols = [c.strip() for c in V1.read_text().splitlines()[0].split(",")]
    path = tmp_path / "sor-reference.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in records:
            r = {**r, "platform_uid": r.get("puid", ""), "uuid": r.get("puid", "")}
            w.writerow(
                [
                    json.dumps(v) if isinstance(v, list) else ("" if v is None else v)
                    for v in (r.get(c) for c in cols)
                ]
            )
    agg = aggregate_tdb(path, "Platform 1")
    assert detections_dict(agg) == {("unsafe_products", "2025-12", "trusted_flagger"): 1}
    assert reasons(agg)["unmapped"] == 1  # illegal speech about a product
    assert reasons(agg)["not_product_content"] == len(records) - 2
    assert agg.files["schema_version"].tolist() == [1]  # no content_id_ean column written


# ------------------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risklab")
    add_ingest_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_tdb_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tdb"
    args = _parser().parse_args(
        ["ingest", "tdb", str(V1), str(V2), "--platform", "ShopCo", "--out", str(out), "--quiet"]
    )
    assert run_ingest(args) == 0
    assert "kept 17" in capsys.readouterr().out
    det = pd.read_csv(out / "tdb_detections.csv")
    assert int(det["detected"].sum()) == 17
    assert (out / "tdb_listing_age.csv").exists() and (out / "tdb.json").exists()
    # existing files are not overwritten without --force
    assert run_ingest(args) == 2
    assert "overwrite" in capsys.readouterr().err


def test_cli_tdb_invalid_input_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(
        ["ingest", "tdb", str(V1), "--platform", "Nobody", "--out", str(tmp_path / "o")]
    )
    assert run_ingest(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "platform_name" in err and "Nobody" in err
    args = _parser().parse_args(
        [
            "ingest",
            "tdb",
            str(V1),
            "--platform",
            "ShopCo",
            "--channel",
            "SOURCE_X=notice",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert run_ingest(args) == 2
    assert "unknown source_type" in capsys.readouterr().err


def test_cli_mapping_prints_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_ingest(_parser().parse_args(["ingest", "mapping"])) == 0
    text = capsys.readouterr().out
    assert text.startswith("db_category,keyword,category\n")
    out = tmp_path / "m.csv"
    assert run_ingest(_parser().parse_args(["ingest", "mapping", "--out", str(out)])) == 0
    assert CategoryMapping.from_file(out) == CategoryMapping.default()


# ------------------------------------------------------------------------------ benchmark
def test_benchmark_generator_smoke(tmp_path: Path) -> None:
    """The benchmark's generated dump is in the true nested layout and aggregates fully."""
    spec = importlib.util.spec_from_file_location("bench_ingest_tdb", BENCH)
    bench = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(bench)
    monkey_rows = 2_345
    bench.PART_ROWS, bench.INNER_ROWS = 500, 1_000
    dump = bench.generate_dump(tmp_path / "d.zip", monkey_rows, workdir=tmp_path)
    with zipfile.ZipFile(dump) as zf:
        inner = zf.namelist()
    assert len(inner) == 3 and all(n.endswith(".csv.zip") for n in inner)
    agg = aggregate_tdb(dump, bench.PLATFORM, hash_inputs=False)
    s = agg.summary()
    assert s["statements_read"] == monkey_rows
    assert s["skipped"] == {}
    assert 0 < s["kept"] < monkey_rows
    assert len(agg.files) == 5  # 500-row parts
