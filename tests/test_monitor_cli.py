"""``risklab monitor``: exit codes, files, --force, nothing written on bad input (mocked fits)."""

from __future__ import annotations

import json
import tomllib
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import tomli_w
from pymc.testing import mock_sample

from risklab import cli
from risklab.monitor_cli import MONITOR_FILES
from risklab.monitoring import MonitoringModel
from tests.conftest import small_marketplace

COMMITMENTS = """
[[commitment]]
name = "links"
effective = "2024-07"
quantity = "hidden_share"
[commitment.target]
value = 0.2

[[commitment]]
name = "prev"
effective = "2024-05"
quantity = "prevalence"
categories = ["toys"]
"""
KPIS = "kpi,period,category,value\nprevalence,,toys,0.001\nhidden_share,,,0.1\n"
FAST = ["--draws", "30", "--tune", "30", "--chains", "2", "--seed", "3"]
TRENDS = ("monitoring_trend_01_links.png", "monitoring_trend_02_prev.png")


def _no_divergences(size):
    return np.zeros(size, dtype=bool)


def _split(src: Path, dst: Path, keep: list[str]) -> Path:
    """Copy a written submission (or evidence) directory keeping only the periods ``keep``."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.suffix == ".csv":
            table = pd.read_csv(f, dtype=str, keep_default_na=False)
            if "period" in table.columns:
                table = table[table["period"].isin(keep)]
            table.to_csv(dst / f.name, index=False, lineterminator="\n")
        elif f.name == "submission.toml":
            doc = tomllib.loads(f.read_text(encoding="utf-8"))
            doc["platform"]["period_start"], doc["platform"]["period_end"] = keep[0], keep[-1]
            (dst / f.name).write_text(tomli_w.dumps(doc), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """12 fitted months (submission + evidence), the 13th as a new period, commitments, KPIs."""
    root = tmp_path_factory.mktemp("monitor")
    sim = small_marketplace(seed=3, n_periods=13, evidence_periods=list(range(13)))
    sim.write(root / "full", evidence_directory=root / "full-evidence", truth=False)
    periods = sorted(sim.tables["listings"]["period"].unique())
    (root / "commitments.toml").write_text(COMMITMENTS, encoding="utf-8")
    (root / "kpis.csv").write_text(KPIS, encoding="utf-8")
    return {
        "submission": _split(root / "full", root / "submission", periods[:12]),
        "evidence": _split(root / "full-evidence", root / "evidence", periods[:12]),
        "new": _split(root / "full", root / "new", periods[12:]),
        "commitments": root / "commitments.toml",
        "kpis": root / "kpis.csv",
        "root": root,
    }


@pytest.fixture(scope="module")
def fitted_run(inputs, tmp_path_factory):
    """One run on the submission (mocked sampling: the gate fails), with KPIs and a new period."""
    out = tmp_path_factory.mktemp("fitted") / "out"
    args = [
        "monitor", str(inputs["submission"]), "--evidence", str(inputs["evidence"]),
        "--commitments", str(inputs["commitments"]), "--kpis", str(inputs["kpis"]),
        "--new-period", str(inputs["new"]), "--out", str(out), *FAST,
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(pm, "sample", partial(mock_sample, sample_stats={"diverging": _no_divergences}))
        code = cli.main(args)
    return code, out


@pytest.fixture(scope="module")
def posteriors(fitted_run, tmp_path_factory):
    """The run's posterior.nc as fitted (gate failed) and marked as passed."""
    _, out = fitted_run
    root = tmp_path_factory.mktemp("posteriors")
    model = MonitoringModel.load(out / "posterior.nc")
    unconverged = model.save(root / "unconverged.nc")
    conv = json.loads(model.idata.attrs["convergence"])
    conv.update(passed=True, problems=[])
    model.idata.attrs["convergence"] = json.dumps(conv)
    return {"converged": model.save(root / "posterior.nc"), "unconverged": unconverged}


@pytest.fixture
def no_sampling(monkeypatch):
    """Fail loudly if anything samples (checks that bad input stops before the fit)."""

    def boom(*args, **kwargs):
        raise AssertionError("pm.sample called")

    monkeypatch.setattr(pm, "sample", boom)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}


def test_fit_run_writes_every_file_and_exits_3_when_unconverged(fitted_run):
    code, out = fitted_run
    assert code == cli.EXIT_UNCONVERGED
    names = {p.name for p in out.iterdir()}
    expected = set(MONITOR_FILES) | set(TRENDS) | {"posterior.nc", "kpis.csv"}
    expected |= {"monitoring_kpis.png", "early_warning.csv", "early_warning_figures.csv"}
    assert names == expected  # and no staging directory left behind
    table = pd.read_csv(out / "monitoring.csv")
    assert list(table["commitment"]) == ["links", "prev"]
    assert list(table["effective"]) == ["2024-07", "2024-05"]
    assert not table["converged"].any()
    for name in ("monitoring_by_category.csv", "monitoring_trajectory.csv", "kpis.csv"):
        assert not pd.read_csv(out / name)["converged"].any()
    traj = pd.read_csv(out / "monitoring_trajectory.csv")
    assert len(traj) == 2 * 12
    by_cat = pd.read_csv(out / "monitoring_by_category.csv")
    assert sorted(by_cat.loc[by_cat["commitment"] == "prev", "category"]) == ["toys"]
    kpis = pd.read_csv(out / "kpis.csv", keep_default_na=False)
    assert list(kpis["kpi"]) == ["prevalence", "hidden_share"]
    early = pd.read_csv(out / "early_warning.csv")
    assert set(early["period"]) == {"2025-01"} and list(early["commitment"]) == ["links", "prev"]
    html = (out / "monitoring_report.html").read_text(encoding="utf-8")
    md = (out / "monitoring_report.md").read_text(encoding="utf-8")
    assert "class='unconverged'" in html and "**UNCONVERGED" in md
    for name in (*TRENDS, "monitoring_status.png", "monitoring_kpis.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
        assert f"({name})" in md
    assert MonitoringModel.load(out / "posterior.nc").commitments[1].categories == ("toys",)


def test_posterior_file_converged_exits_0_without_refit(posteriors, tmp_path, no_sampling):
    out = tmp_path / "out"
    code = cli.main(["monitor", str(posteriors["converged"]), "--out", str(out)])
    assert code == cli.EXIT_OK
    names = {p.name for p in out.iterdir()}
    assert names == set(MONITOR_FILES) | set(TRENDS)  # no posterior.nc: nothing was fitted
    assert pd.read_csv(out / "monitoring.csv")["converged"].all()
    assert "UNCONVERGED" not in (out / "monitoring_report.html").read_text(encoding="utf-8")


def test_posterior_file_unconverged_exits_3(posteriors, tmp_path, no_sampling):
    out = tmp_path / "out"
    assert cli.main(["monitor", str(posteriors["unconverged"]), "--out", str(out)]) == 3
    assert (out / "monitoring.csv").exists()


def test_existing_outputs_need_force_and_force_removes_stale_files(
    posteriors, fitted_run, tmp_path, capsys, no_sampling
):
    _, first = fitted_run
    out = tmp_path / "out"
    out.mkdir()
    for name in ("monitoring.csv", "kpis.csv"):
        (out / name).write_bytes((first / name).read_bytes())
    (out / "monitoring_trend_09_old.png").write_bytes(b"\x89PNG from an earlier run")
    before = _files(out)
    code = cli.main(["monitor", str(posteriors["converged"]), "--out", str(out)])
    assert code == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "pass --force" in err and "monitoring.csv" in err and "Traceback" not in err
    assert _files(out) == before  # untouched
    code = cli.main(["monitor", str(posteriors["converged"]), "--out", str(out), "--force"])
    assert code == cli.EXIT_OK
    names = {p.name for p in out.iterdir()}
    assert "kpis.csv" not in names and "monitoring_trend_09_old.png" not in names  # stale
    assert names == set(MONITOR_FILES) | set(TRENDS)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (COMMITMENTS.replace('quantity = "prevalence"', 'quantity = "prevalence"\ncolour = 1'),
         ["commitment 'prev'", "colour"]),
        (COMMITMENTS.replace('effective = "2024-07"', "effective = 2024"),
         ["commitment 'links'", "'effective'"]),
        ("[[commitment]\nname = 'x'", ["is not valid TOML"]),
        (COMMITMENTS.replace('categories = ["toys"]', 'categories = ["toys", "games"]'),
         ["commitment 'prev'", "'categories'", "games"]),
        (COMMITMENTS.replace('effective = "2024-05"', 'effective = "2023-05"'),
         ["commitment 'prev'", "'effective'", "outside the submission's periods"]),
    ],
    ids=["unknown-key", "wrong-type", "bad-toml", "unknown-category", "effective-outside"],
)  # fmt: skip
def test_bad_commitments_exit_2_naming_file_and_key(
    inputs, tmp_path, capsys, no_sampling, text, words
):
    path = tmp_path / "bad-commitments.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    args = ["monitor", str(inputs["submission"]), "--commitments", str(path), "--out", str(out)]
    assert cli.main([*args, *FAST]) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    for word in words:
        assert word in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_kpis_exit_2_before_the_fit(inputs, tmp_path, capsys, no_sampling):
    kpis = tmp_path / "kpis.csv"
    kpis.write_text("kpi,period,category,value\nhappiness,,,0.5\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [
        "monitor", str(inputs["submission"]), "--commitments", str(inputs["commitments"]),
        "--kpis", str(kpis), "--out", str(out), *FAST,
    ]  # fmt: skip
    assert cli.main(args) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert str(kpis) in err and "line 2" in err and "'kpi'" in err
    assert not out.exists()


def test_new_period_with_unknown_category_exits_2(inputs, tmp_path, capsys, posteriors):
    new = tmp_path / "new"
    new.mkdir()
    for f in inputs["new"].iterdir():
        (new / f.name).write_text(
            f.read_text(encoding="utf-8").replace("jewellery", "garden"), encoding="utf-8"
        )
    out = tmp_path / "out"
    args = ["monitor", str(posteriors["converged"]), "--new-period", str(new), "--out", str(out)]
    assert cli.main(args) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "garden" in err and "Traceback" not in err
    assert not out.exists()


def test_posterior_file_with_other_commitments_exits_2(posteriors, inputs, tmp_path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(COMMITMENTS.replace('"2024-05"', '"2024-06"'), encoding="utf-8")
    out = tmp_path / "out"
    args = ["monitor", str(posteriors["converged"]), "--commitments", str(other)]
    assert cli.main([*args, "--out", str(out)]) == cli.EXIT_INVALID
    assert "differ from those" in capsys.readouterr().err
    assert not out.exists()
    # The same commitments are accepted.
    same = ["monitor", str(posteriors["converged"]), "--commitments", str(inputs["commitments"])]
    assert cli.main([*same, "--out", str(out)]) == cli.EXIT_OK


def test_usage_errors_exit_2(inputs, tmp_path, capsys, no_sampling):
    out = tmp_path / "out"
    base = ["monitor", str(inputs["submission"]), "--out", str(out)]
    assert cli.main(base) == cli.EXIT_INVALID  # no --commitments for a submission
    assert "--commitments" in capsys.readouterr().err
    assert cli.main([*base, "--commitments", str(inputs["commitments"]), "--prob", "1.5"]) == 2
    assert "--prob" in capsys.readouterr().err
    missing = [*base, "--commitments", str(inputs["commitments"]), "--kpis", "nope.csv"]
    assert cli.main(missing) == cli.EXIT_INVALID
    assert "nope.csv" in capsys.readouterr().err
    assert not out.exists()
