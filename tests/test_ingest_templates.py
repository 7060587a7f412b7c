"""Tests of risklab.data.templates (transparency reports on the harmonised templates)."""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd
import pytest

from risklab.data import SubmissionError
from risklab.data._templates_read import Cell, parse_count, parse_number, parse_share, read_sheets
from risklab.data.templates import ReviewAssumptions, TransparencyReport, read_transparency_report
from risklab.ingest_cli import add_ingest_parser, run_ingest

DATA = Path(__file__).parent / "data" / "templates" / "shopco-2025h2"
PARTS = sorted(DATA.glob("*.csv"))
IP_CATEGORY = "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "transparency-templates"

#: Hand-computed detections of the fixture report (default mapping).
EXPECTED = {
    ("unsafe_products", "proactive"): 600 + 500,  # part 5: 500 + 50 (other) + 50 residual
    ("unsafe_products", "notice"): 100 + 120 - 15 - 10,
    ("unsafe_products", "trusted_flagger"): 15 + 10,
    ("unsafe_products", "authority"): 10 + 4,  # keyword row + residual of the category
    ("prohibited_products", "proactive"): 200 + 900,  # part 5 keyword + part 6 not permitted
    ("prohibited_products", "authority"): 6,
    ("prohibited_products", "notice"): 0,  # no keyword rows filled in part 4
    ("prohibited_products", "trusted_flagger"): 0,
    ("counterfeits", "proactive"): 300,
    ("counterfeits", "notice"): 40 + 70 - 5 - 2,
    ("counterfeits", "trusted_flagger"): 7,
    ("counterfeits", "authority"): 11,
    ("health_products", "proactive"): 60,
    ("health_products", "notice"): 30,
    ("health_products", "trusted_flagger"): 0,
    ("health_products", "authority"): 0,
    ("adult_products", "proactive"): 400,
    ("adult_products", "notice"): 0,
    ("adult_products", "trusted_flagger"): 0,
    ("adult_products", "authority"): 0,
}


@pytest.fixture(scope="module")
def report() -> TransparencyReport:
    return read_transparency_report(PARTS)


def detections(rep: TransparencyReport) -> dict[tuple[str, str], int | None]:
    return {
        (r.category, r.channel): (None if pd.isna(r.detected) else int(r.detected))
        for r in rep.detections.itertuples(index=False)
    }


def copy_parts(tmp: Path) -> Path:
    out = tmp / "report"
    shutil.copytree(DATA, out)
    for p in out.iterdir():
        p.chmod(0o644)
    return out


def edit_cell(path: Path, match: dict[str, str], column: str, value: str, nth: int = 0) -> int:
    """Set ``column`` of the ``nth`` row matching ``match``; returns its editor line number."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = [h.strip() for h in rows[0]]
    hits = [
        i
        for i, r in enumerate(rows[1:], start=1)
        if all(r[header.index(k)].strip() == v for k, v in match.items())
    ]
    i = hits[nth]
    rows[i][header.index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return i + 1


def write_xlsx(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    """A minimal XLSX workbook: text as shared or inline strings, numbers as numbers."""
    shared: list[str] = []

    def cell(ref: str, value: str) -> str:
        try:
            float(value)
            return f'<c r="{ref}"><v>{value}</v></c>'
        except ValueError:
            if len(value) % 2:  # half of the texts inline, half shared
                return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
            shared.append(value)
            return f'<c r="{ref}" t="s"><v>{len(shared) - 1}</v></c>'

    def col(i: int) -> str:
        s = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(65 + r) + s
        return s

    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        sheet_entries, rels = [], []
        for n, (name, rows) in enumerate(sheets.items(), start=1):
            xml_rows = []
            for i, row in enumerate(rows, start=1):
                cells = "".join(cell(f"{col(j)}{i}", v) for j, v in enumerate(row) if v != "")
                xml_rows.append(f'<row r="{i}">{cells}</row>')
            zf.writestr(
                f"xl/worksheets/sheet{n}.xml",
                f"<worksheet {ns}><sheetData>{''.join(xml_rows)}</sheetData></worksheet>",
            )
            sheet_entries.append(f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>')
            rels.append(
                f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/'
                f'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>'
            )
        zf.writestr(
            "xl/workbook.xml",
            f"<workbook {ns} {rel}><sheets>{''.join(sheet_entries)}</sheets></workbook>",
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(rels)
            + "</Relationships>",
        )
        sst = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared)
        zf.writestr("xl/sharedStrings.xml", f"<sst {ns}>{sst}</sst>")
        zf.writestr("[Content_Types].xml", "<Types/>")


# -------------------------------------------------------------------------------- values
def test_cell_parsers() -> None:
    c = Cell("f.csv", 3, "Value")
    assert parse_count("1,234,567", c) == (1234567, None, None)
    assert parse_count("1 234", c)[0] == 1234
    assert parse_count("12.0", c)[0] == 12
    assert parse_count("", c) == (None, "empty", None)
    assert parse_count("N/A", c)[1] == "reported as 'N/A'"
    for bad in ("12 units", "-3", "1.234", "abc"):
        value, gap, problem = parse_count(bad, c)
        assert value is None and gap is None and (problem.row, problem.column) == (3, "Value")
    assert parse_share("96%", c)[0] == pytest.approx(0.96)
    assert parse_share("0.85", c) == (0.85, None, None)
    value, note, _ = parse_share("97.5", c)
    assert value == pytest.approx(0.975) and "percentage" in note
    assert parse_share("150%", c)[2] is not None
    assert parse_number("12.5", c)[0] == 12.5


# --------------------------------------------------------------------------------- report
def test_report_metadata_and_parts(report: TransparencyReport) -> None:
    assert report.provider == "ShopCo B.V."
    assert report.service == "ShopCo Marketplace"
    assert report.reporting_period == "2025-07-01/2025-12-31"
    assert report.period_bounds() == ("2025-07", "2025-12")
    assert report.parts == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert any("part 11" in n for n in report.notes)


def test_detections_by_channel_and_category(report: TransparencyReport) -> None:
    got = detections(report)
    for key, value in EXPECTED.items():
        assert got[key] == value, key
    # scams and fraud: notices left empty in part 4 -> a gap, never a zero
    assert got[("scam_listings", "notice")] is None
    assert got[("scam_listings", "trusted_flagger")] is None
    assert got[("scam_listings", "proactive")] == 0
    gaps = report.gaps
    scam = gaps[gaps["item"].str.contains("SCAMS_AND_FRAUD")]
    assert len(scam) and set(scam["row"]) == {68}
    assert (scam["file"].str.endswith("Part_4_notices.csv")).all()


def test_detection_detail_explains_every_figure(report: TransparencyReport) -> None:
    dd = report.detections_detail
    part5 = dd[
        (dd["part"] == 5)
        & (dd["db_category"] == "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS")
    ]
    assert part5.set_index(part5["keyword"].fillna("-"))["value"].to_dict() == {
        "KEYWORD_OTHER": 50,
        "KEYWORD_PROHIBITED_PRODUCTS": 200,
        "KEYWORD_UNSAFE_PRODUCTS": 500,
        "-": 50,
    }
    unmapped = dd[dd["outcome"] == "unmapped"]
    assert unmapped["value"].sum() == 40 + 200  # public security residual, T&C residual


def test_claims_moderators_complaints_recipients(report: TransparencyReport) -> None:
    claims = report.claims()
    assert claims["recall"] == {"total": 0.85, "own_initiative": 0.8}
    assert claims["precision"]["total"] == pytest.approx(0.96)
    assert claims["accuracy"]["own_initiative"] == pytest.approx(0.975)
    assert report.rate("recall") == 0.8
    assert report.rate("recall", scopes=("notices",)) is None  # reported as N/A
    am = report.automated_means.set_index(["scope", "indicator"])
    assert am.loc[("total", "automated_measures"), "value"] == 2300
    assert report.moderator_count() == 60
    assert report.moderator_count("linguistic") == 55
    mods = report.moderators
    assert mods[(mods["kind"] == "linguistic")].set_index("scope")["value"].to_dict() == {
        "total": 55.0,
        "bg": 2.0,
        "sv": 3.0,
    }
    assert report.appeals == {
        "complaints": 400,
        "upheld": 300,
        "partially_reversed": 20,
        "reversed": 60,
    }
    assert report.repeat_offender_suspensions == 35
    assert report.recipients.set_index("member_state")["recipients"].to_dict() == {
        "TOTAL": 12_000_000,
        "AT": 300_000,
        "SE": 250_000,
    }


def test_review_hours_assumption(report: TransparencyReport) -> None:
    assert report.review_hours_per_month() == 60 * 115.0
    a = ReviewAssumptions(
        hours_per_moderator_month=100, share_on_listings=0.5, moderators="internal"
    )
    assert report.review_hours_per_month(a) == 40 * 100 * 0.5
    for bad in (
        {"hours_per_moderator_month": 0},
        {"share_on_listings": 1.5},
        {"moderators": "all"},
        {"allocation": "random"},
    ):
        with pytest.raises(ValueError):
            ReviewAssumptions(**bad)


def test_xlsx_workbook_reads_like_csv_parts(tmp_path: Path, report: TransparencyReport) -> None:
    sheets = {}
    for p in PARTS:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        sheets[p.stem[:31]] = [["Transparency report of ShopCo"], [], *rows]  # title rows
    book = tmp_path / "report.xlsx"
    write_xlsx(book, sheets)
    from_xlsx = read_transparency_report(book)
    assert detections(from_xlsx) == detections(report)
    assert from_xlsx.claims() == report.claims()
    assert from_xlsx.appeals == report.appeals
    gap = from_xlsx.gaps[from_xlsx.gaps["item"].str.contains("SCAMS")].iloc[0]
    assert gap["file"] == f"{book}[Part_4_notices]" and gap["row"] == 68 + 2


def test_partial_report_gives_gaps_not_zeros(tmp_path: Path) -> None:
    rep = read_transparency_report(
        [DATA / "Part_4_notices.csv", DATA / "Part_9_human_resources.csv"]
    )
    got = detections(rep)
    assert got[("unsafe_products", "notice")] == 195
    assert got[("unsafe_products", "proactive")] is None  # parts 5 and 6 not supplied
    assert got[("unsafe_products", "authority")] is None  # part 3 not supplied
    items = set(rep.gaps["item"])
    assert "part 8 (automated means)" in items and "part 7 (complaints and recidivism)" in items
    assert rep.appeals["complaints"] is None and rep.rate("recall") is None


def test_blank_as_zero_is_explicit(tmp_path: Path) -> None:
    rep = read_transparency_report(PARTS, blank_as_zero=True)
    assert detections(rep)[("scam_listings", "notice")] == 0
    assert rep.settings["blank_as_zero"] is True


@pytest.mark.parametrize(
    ("part", "match", "column", "value", "message"),
    [
        (
            "Part_5_own_initiative_illegal.csv",
            {"Category of illegal content": IP_CATEGORY},
            "Number of measures taken at the provider's own initiative",
            "300 items",
            "must be a whole number",
        ),
        (
            "Part_4_notices.csv",
            {"Category of illegal content": "TOTAL"},
            "Number of notices received",
            "-5",
            "must not be negative",
        ),
        (
            "Part_9_human_resources.csv",
            {"Scope": "Total number"},
            "Reporting period",
            "YYYY-MM-DD/YYYY-MM-DD",
            "template placeholder",
        ),
        (
            "Part_3_member_states_orders.csv",
            {"Category of illegal content": "TOTAL"},
            "Category of illegal content",
            "STATEMENT_CATEGORY_MADE_UP",
            "unknown category code",
        ),
        (
            "Part_8_automated_means.csv",
            {"Scope": "Total number", "Indicator": "Accuracy of the automated means - Recall"},
            "Value",
            "high",
            "must be a share",
        ),
        (
            "Part_7_appeals_and_recidivism.csv",
            {"Scope": "Decisions reversed"},
            "Value",
            "999",
            "exceeds the complaints",
        ),
    ],
)
def test_malformed_values_name_file_row_and_column(
    tmp_path: Path, part: str, match: dict, column: str, value: str, message: str
) -> None:
    root = copy_parts(tmp_path)
    nth = 1 if part.startswith("Part_7") else 0  # part 7: the removal-complaints row
    line = edit_cell(root / part, match, column, value, nth=nth)
    with pytest.raises(SubmissionError) as err:
        read_transparency_report(sorted(root.glob("*.csv")))
    hits = [p for p in err.value.problems if message in p.message]
    assert hits, str(err.value)
    assert hits[0].file.endswith(part) and hits[0].row == line
    assert hits[0].column in (column.strip(), "Value", "Category of illegal content")


def test_filled_placeholder_scope_and_stray_keyword(tmp_path: Path) -> None:
    root = copy_parts(tmp_path)
    edit_cell(
        root / "Part_3_member_states_orders.csv",
        {
            "Category of illegal content": "STATEMENT_CATEGORY_ANIMAL_WELFARE",
            "Scope": "AT, […], SE",
        },
        "Number of orders to act against illegal content received",
        "3",
    )
    with pytest.raises(SubmissionError, match="placeholder"):
        read_transparency_report(sorted(root.glob("*.csv")))
    p5 = DATA / "Part_5_own_initiative_illegal.csv"
    lines = p5.read_text(encoding="utf-8").splitlines()
    stray = tmp_path / "stray.csv"
    stray.write_text(
        "\n".join(
            [lines[0], lines[2].replace("STATEMENT_CATEGORY_ANIMAL_WELFARE", "KEYWORD_ANIMAL_HARM")]
        )
        + "\n"
    )
    with pytest.raises(SubmissionError, match="not below a STATEMENT_CATEGORY row"):
        read_transparency_report(stray)


def test_several_services_need_a_choice(tmp_path: Path) -> None:
    root = copy_parts(tmp_path)
    edit_cell(root / "Part_9_human_resources.csv", {"Scope": "sv"}, "Service", "ShopCo Ads")
    with pytest.raises(SubmissionError, match="several services"):
        read_transparency_report(sorted(root.glob("*.csv")))
    rep = read_transparency_report(sorted(root.glob("*.csv")), service="ShopCo Marketplace")
    assert "sv" not in set(rep.moderators["scope"])
    with pytest.raises(SubmissionError, match="not in the report"):
        read_transparency_report(sorted(root.glob("*.csv")), service="ShopCo Travel")


def test_unrecognised_files_are_errors(tmp_path: Path) -> None:
    other = tmp_path / "listings.csv"
    other.write_text("category,period,listings\ntoys,2025-07,10\n")
    with pytest.raises(SubmissionError, match="no template header"):
        read_transparency_report(other)
    odd = tmp_path / "odd.csv"
    odd.write_text("Applicability,Foo,Bar\nAll,1,2\n")
    with pytest.raises(SubmissionError, match="not a part of the harmonised"):
        read_transparency_report(odd)
    (tmp_path / "r.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(SubmissionError, match=r"legacy \.xls"):
        read_transparency_report(tmp_path / "r.xls")
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    with pytest.raises(SubmissionError, match="not a readable XLSX"):
        read_transparency_report(tmp_path / "bad.xlsx")


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference files not present")
def test_official_blank_templates(tmp_path: Path) -> None:
    """Every official part is recognised; a blank template is an error, never zeros."""
    from risklab.data._templates_parts import identify_part

    expected = {f"Part_{n}_": n for n in range(1, 12)}
    for path in sorted(REFERENCE.glob("*.csv")):
        (sheet,) = read_sheets(path)
        n = next(v for k, v in expected.items() if path.name.startswith(k))
        assert identify_part(sheet) == (7 if n in (7, 8, 9, 10) else n), path.name
    with pytest.raises(SubmissionError, match="placeholder"):
        read_transparency_report(sorted(REFERENCE.glob("*.csv")))
    # dates filled in but no figure: still refused
    filled = tmp_path / "blank"
    filled.mkdir()
    for path in REFERENCE.glob("Part_[3-9]_*.csv"):
        text = path.read_text(encoding="utf-8").replace(
            "YYYY-MM-DD/YYYY-MM-DD", "2025-07-01/2025-12-31"
        )
        (filled / path.name).write_text(text, encoding="utf-8")
    with pytest.raises(SubmissionError, match="no figure filled in"):
        read_transparency_report(sorted(filled.glob("*.csv")))


def test_directory_round_trip(tmp_path: Path, report: TransparencyReport) -> None:
    report.to_directory(tmp_path / "rep")
    back = TransparencyReport.from_directory(tmp_path / "rep")
    assert detections(back) == detections(report)
    assert back.claims() == report.claims()
    assert back.moderator_count() == 60 and back.appeals == report.appeals
    assert back.reporting_period == report.reporting_period
    with pytest.raises(SubmissionError, match="not a transparency-report extract"):
        TransparencyReport.from_directory(tmp_path)


# ------------------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risklab")
    add_ingest_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    args = _parser().parse_args(["ingest", "report", *map(str, PARTS), "--out", str(out)])
    assert run_ingest(args) == 0
    captured = capsys.readouterr()
    assert "2025-07-01/2025-12-31" in captured.out and "recall 0.8" in captured.out
    assert "gap:" in captured.err
    assert (out / "report.json").exists() and (out / "report_gaps.csv").exists()


def test_cli_report_invalid_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_parts(tmp_path)
    line = edit_cell(
        root / "Part_4_notices.csv",
        {"Category of illegal content": "TOTAL"},
        "Number of notices received",
        "lots",
    )
    args = _parser().parse_args(
        ["ingest", "report", *map(str, sorted(root.glob("*.csv"))), "--out", str(tmp_path / "o")]
    )
    assert run_ingest(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"Part_4_notices.csv, row {line}, column 'Number of notices received'" in err
    assert not (tmp_path / "o").exists()


def test_wired_into_main_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """Once risklab.cli registers 'ingest', it runs through risklab.cli.main."""
    from risklab import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "ingest" not in commands.choices:
        pytest.skip("risklab.cli does not register 'ingest' yet")
    assert cli.main(["ingest", "mapping"]) == 0
    assert capsys.readouterr().out.startswith("db_category,keyword,category")
    assert (
        cli.main(
            ["ingest", "report", str(PARTS[0]), "--out", "/nonexistent/x", "--service", "Nope"]
        )
        == 2
    )
