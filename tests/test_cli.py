"""The risklab command: exit codes, outputs, no overwrite, atomic writes (mocked sampling)."""

from __future__ import annotations

import pandas as pd
import pytest

from risklab import cli
from risklab.assess import FINDINGS_COLUMNS
from risklab.outputs import OUTPUT_FILES
from tests.conftest import small_marketplace


@pytest.fixture
def submission_dirs(tmp_path):
    sim = small_marketplace()
    sim.write(tmp_path / "sub", evidence_directory=tmp_path / "evidence")
    return tmp_path / "sub", tmp_path / "evidence"


FAST = ["--draws", "20", "--tune", "5", "--chains", "2", "--seed", "3"]


def test_validate_valid_and_invalid(submission_dirs, tmp_path, capsys):
    sub, evidence = submission_dirs
    assert cli.main(["validate", str(sub), "--evidence", str(evidence)]) == 0
    assert "valid submission" in capsys.readouterr().out
    listings = (sub / "listings.csv").read_text().splitlines()
    listings[3] = listings[3].rsplit(",", 2)[0] + ",-5,1.0"
    (sub / "listings.csv").write_text("\n".join(listings) + "\n")
    assert cli.main(["validate", str(sub)]) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "listings.csv" in err and "row 4" in err and "'listings'" in err
    assert "Traceback" not in err


def test_missing_path_is_invalid_input(tmp_path, capsys):
    assert cli.main(["validate", str(tmp_path / "nope")]) == cli.EXIT_INVALID
    assert "Traceback" not in capsys.readouterr().err


def test_assess_writes_outputs_and_flags_unconverged(
    submission_dirs, tmp_path, mocked_sampling, capsys
):
    sub, evidence = submission_dirs
    out = tmp_path / "out"
    argv = ["assess", str(sub), "--evidence", str(evidence), "--out", str(out), *FAST]
    code = cli.main([*argv, "--target-accept", "0.9"])
    assert code == cli.EXIT_UNCONVERGED  # mocked draws cannot pass the convergence gate
    # The failed gate says what to try, with the settings this fit used.
    err = capsys.readouterr().err
    assert "convergence gate FAILED" in err
    assert "--tune, now 5" in err and "--target-accept 0.99, now 0.9" in err
    # The CLI report always carries the attribution section (risklab.report.analyses).
    assert sorted(p.name for p in out.iterdir()) == sorted((*OUTPUT_FILES, "attribution.png"))
    table = pd.read_csv(out / "findings.csv")
    assert tuple(table.columns[: len(FINDINGS_COLUMNS)]) == FINDINGS_COLUMNS
    assert not table["converged"].any()
    assert len(table) == 4
    report = (out / "report.md").read_text()
    assert "UNCONVERGED" in report.split("## Headline")[0]
    assert "UNCONVERGED" in (out / "report.html").read_text()
    headline = report.split("## Headline findings")[1].split("##")[0]
    assert "no evidence that identifies prevalence (jewellery)" in headline


def test_assess_never_overwrites_without_force(submission_dirs, tmp_path, mocked_sampling, capsys):
    sub, _ = submission_dirs
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.csv").write_text("precious\n")
    assert cli.main(["assess", str(sub), "--out", str(out), *FAST]) == cli.EXIT_INVALID
    assert "--force" in capsys.readouterr().err
    assert (out / "findings.csv").read_text() == "precious\n"
    assert cli.main(["assess", str(sub), "--out", str(out), "--force", *FAST]) == 3
    assert (out / "findings.csv").read_text() != "precious\n"


def test_failure_while_writing_leaves_output_directory_as_it_was(
    submission_dirs, tmp_path, mocked_sampling, monkeypatch
):
    sub, _ = submission_dirs
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.csv").write_text("old\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("risklab.outputs.render_html", broken)
    assert cli.main(["assess", str(sub), "--out", str(out), "--force", *FAST]) == cli.EXIT_ERROR
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before


def test_assess_requires_out(submission_dirs):
    sub, _ = submission_dirs
    assert cli.main(["assess", str(sub)]) == cli.EXIT_INVALID


def test_bad_sampler_settings_are_invalid_input(submission_dirs, tmp_path, capsys):
    sub, _ = submission_dirs
    code = cli.main(["assess", str(sub), "--out", str(tmp_path / "o"), "--draws", "0"])
    assert code == cli.EXIT_INVALID
    assert "draws" in capsys.readouterr().err
    code = cli.main(["assess", str(sub), "--out", str(tmp_path / "o"), "--target-accept", "1"])
    assert code == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "target_accept must be in [0.5, 1)" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_simulate_writes_a_valid_submission(tmp_path):
    out = tmp_path / "sim"
    assert cli.main(["simulate", "--seed", "5", "--out", str(out), "--periods", "3"]) == 0
    assert (out / "submission" / "truth.json").exists()
    code = cli.main(["validate", str(out / "submission"), "--evidence", str(out / "evidence")])
    assert code == 0
    assert cli.main(["simulate", "--seed", "5", "--out", str(out)]) == cli.EXIT_INVALID
    assert not (out / "submission" / "traders.csv").exists()


def test_simulate_with_traders(tmp_path):
    out = tmp_path / "sim"
    code = cli.main(["simulate", "--seed", "5", "--out", str(out), "--periods", "3", "--traders"])
    assert code == 0
    assert (out / "submission" / "traders.csv").exists()
    assert "[policy]" in (out / "submission" / "submission.toml").read_text()
    assert cli.main(["validate", str(out / "submission")]) == 0


def test_bundled_demo_is_valid():
    sub, evidence = cli.demo_paths()
    assert cli.main(["validate", str(sub), "--evidence", str(evidence)]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["demo"],
        ["assess", "sub"],
        ["stress", "sub", "--scenarios", "s.toml"],
        ["monitor", "sub"],
        ["plan-audit", "sub"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_fitting_command_defaults_to_the_library_sampler_settings(argv):
    """One default (SamplerConfig's) for a fit from the command line and from a script."""
    from risklab.models import SamplerConfig

    args = cli.build_parser().parse_args(argv)
    default = SamplerConfig()
    assert (args.draws, args.tune, args.chains) == (default.draws, default.tune, default.chains)
    assert args.target_accept == default.target_accept
