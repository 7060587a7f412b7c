"""risklab plan-audit: outputs, exit codes, no overwrite, nothing half-written (mocked sampling)."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pymc.testing import mock_sample

from risklab import cli
from risklab.design import PLAN_COLUMNS
from risklab.design_cli import PLAN_FILES
from risklab.models import PlatformRiskModel, SamplerConfig
from tests.conftest import small_marketplace

SIZES = ["--sample-sizes", "50,200"]


@pytest.fixture(scope="module")
def posterior_file(tmp_path_factory):
    """A posterior.nc from a mocked fit (prior draws: no MCMC), as `risklab assess` writes it."""
    path = tmp_path_factory.mktemp("fit") / "posterior.nc"
    fake = partial(mock_sample, sample_stats={"diverging": lambda size: np.zeros(size, bool)})
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(pm, "sample", fake)
        model = PlatformRiskModel(
            small_marketplace().to_submission(), sampler_config=SamplerConfig(draws=100, chains=2)
        )
        model.fit(random_seed=3)
    model.save(path)
    return path


def test_writes_plan_and_figure_and_flags_unconverged(posterior_file, tmp_path, capsys):
    out = tmp_path / "plan"
    code = cli.main(["plan-audit", str(posterior_file), "--out", str(out), *SIZES])
    assert code == cli.EXIT_UNCONVERGED  # prior draws cannot pass the convergence gate
    assert sorted(p.name for p in out.iterdir()) == sorted(PLAN_FILES)
    table = pd.read_csv(out / "audit_plan.csv")
    assert list(table.columns) == list(PLAN_COLUMNS)
    assert len(table) == 4 * 2 and not table["converged"].any()
    assert set(table["sample_size"]) == {50, 200}
    err = capsys.readouterr().err
    assert "UNCONVERGED" in err and "Traceback" not in err


def test_default_output_is_beside_the_posterior_and_reproducible(posterior_file, tmp_path):
    local = tmp_path / "posterior.nc"
    local.write_bytes(posterior_file.read_bytes())
    args = ["plan-audit", str(local), *SIZES, "--categories", "toys", "--periods", "last"]
    assert cli.main(args) == cli.EXIT_UNCONVERGED
    first = (tmp_path / "audit_plan.csv").read_text()
    assert cli.main([*args, "--force"]) == cli.EXIT_UNCONVERGED
    assert (tmp_path / "audit_plan.csv").read_text() == first
    assert pd.read_csv(tmp_path / "audit_plan.csv")["category"].unique().tolist() == ["toys"]


def test_never_overwrites_without_force(posterior_file, tmp_path, capsys):
    out = tmp_path / "plan"
    out.mkdir()
    (out / "audit_plan.csv").write_text("keep me\n")
    code = cli.main(["plan-audit", str(posterior_file), "--out", str(out), *SIZES])
    assert code == cli.EXIT_INVALID
    assert (out / "audit_plan.csv").read_text() == "keep me\n"
    assert not (out / "audit_power.png").exists()
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--categories", "toys,nope"], "unknown ['nope']"),
        (["--sample-sizes", "50,x"], "--sample-sizes"),
        (["--sample-sizes", "0,100"], "--sample-sizes"),
        (["--sample-sizes", "100,100"], "--sample-sizes"),
        (["--threshold", "1.5"], "--threshold"),
        (["--target-power", "0"], "--target-power"),
        (["--periods", "1999-01"], "--periods"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(posterior_file, tmp_path, capsys, extra, message):
    out = tmp_path / "plan"
    code = cli.main(["plan-audit", str(posterior_file), "--out", str(out), *extra])
    assert code == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_a_file_that_is_not_a_results_file_exits_2(tmp_path, capsys):
    bogus = tmp_path / "posterior.nc"
    bogus.write_text("not netcdf")
    assert cli.main(["plan-audit", str(bogus)]) == cli.EXIT_INVALID
    assert "not a readable netCDF" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posterior.nc"]


def test_fits_a_submission_when_given_one(tmp_path, mocked_sampling, capsys):
    sim = small_marketplace()
    sim.write(tmp_path / "sub", evidence_directory=tmp_path / "evidence")
    base = ["plan-audit", str(tmp_path / "sub"), "--evidence", str(tmp_path / "evidence")]
    assert cli.main(base) == cli.EXIT_INVALID  # --out is required for a submission
    assert "--out" in capsys.readouterr().err
    fast = ["--draws", "50", "--tune", "5", "--chains", "2", "--fit-seed", "3"]
    out = tmp_path / "plan"
    code = cli.main([*base, "--out", str(out), *SIZES, "--categories", "medicines", *fast])
    assert code == cli.EXIT_UNCONVERGED
    table = pd.read_csv(out / "audit_plan.csv")
    assert table["category"].tolist() == ["medicines", "medicines"]
