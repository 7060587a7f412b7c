"""``risklab stress``: exit codes, files, no overwrite, nothing half-written (mocked sampling)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pymc.testing import mock_sample

from risklab import cli
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.scenarios import STRESS_FILES
from tests.conftest import small_marketplace

SCENARIOS = """
[[scenario]]
name = "halve review hours in medicines"
review_hours_factor = { medicines = 0.5 }

[[scenario]]
name = "adversarial adaptation"
efficiency_decay = 0.05
hidden_share_add = 0.1
"""
FAST = ["--draws", "20", "--tune", "20", "--chains", "2", "--seed", "4"]


def _no_divergences(size):
    return np.zeros(size, dtype=bool)


@pytest.fixture(scope="module")
def posteriors(tmp_path_factory):
    """posterior.nc files of a mocked fit: as fitted (gate failed) and marked as passed."""
    root = tmp_path_factory.mktemp("posteriors")
    sim = small_marketplace(seed=5)
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(pm, "sample", partial(mock_sample, sample_stats={"diverging": _no_divergences}))
        model = PlatformRiskModel(
            sim.to_submission(), sampler_config=SamplerConfig(draws=30, chains=2)
        )
        model.fit(random_seed=3)
    unconverged = model.save(root / "unconverged.nc")
    passed = dataclasses.replace(model.convergence, passed=True, problems=[])
    model.idata.attrs["convergence"] = passed.to_json()
    converged = model.save(root / "posterior.nc")
    sim.write(root / "submission")
    return {"converged": converged, "unconverged": unconverged, "submission": root / "submission"}


def _scenario_file(tmp_path, text=SCENARIOS):
    path = tmp_path / "scenarios.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_stress_on_a_saved_posterior_writes_the_files(posteriors, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["stress", str(posteriors["converged"]), "--scenarios", str(_scenario_file(tmp_path))]
    assert cli.main([*args, "--out", str(out)]) == cli.EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == sorted(STRESS_FILES)
    table = pd.read_csv(out / "scenarios.csv")
    assert list(table["scenario"].unique()) == [
        "baseline",
        "halve review hours in medicines",
        "adversarial adaptation",
    ]
    assert len(table) == 3 * 4
    # The baseline rows reproduce the fit's posterior prevalence (listings-weighted).
    model = PlatformRiskModel.load(posteriors["converged"])
    listings = model.submission.data["listings"].astype(float)
    prevalence = (model.posterior["prevalence"] * listings / listings.sum("period")).sum("period")
    base = table[table["scenario"] == "baseline"].set_index("category")
    median = prevalence.median(("chain", "draw")).to_series()
    np.testing.assert_allclose(base.loc[median.index, "prevalence_median"], median, rtol=1e-5)
    totals = pd.read_csv(out / "scenarios_platform.csv")
    assert json.loads(totals["levers"][1]) == {"review_hours_factor": {"medicines": 0.5}}
    assert "scenario-draws/s" in capsys.readouterr().err
    # Existing files are not overwritten without --force.
    assert cli.main([*args, "--out", str(out)]) == cli.EXIT_INVALID
    assert "--force" in capsys.readouterr().err
    assert cli.main([*args, "--out", str(out), "--force", "--no-draws"]) == cli.EXIT_OK


def test_unconverged_fit_exits_3_and_marks_the_table(posteriors, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(
        [
            "stress",
            str(posteriors["unconverged"]),
            "--scenarios",
            str(_scenario_file(tmp_path)),
            "--out",
            str(out),
        ]
    )
    assert code == cli.EXIT_UNCONVERGED
    assert not pd.read_csv(out / "scenarios.csv")["converged"].any()
    assert "convergence gate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[scenario]]\nname = "x"\nreview_hours = 2\n', "review_hours: unknown key"),
        ('[[scenario]]\nname = "x"\nlistings_factor = { weapons = 2 }\n', "unknown category"),
        ('[[scenario]]\nname = "x"\nenforcement = 0.9\n', "no repeat-offender component"),
        ("[[scenario]\n", "not valid TOML"),
    ],
)
def test_bad_scenario_file_exits_2_and_writes_nothing(posteriors, tmp_path, capsys, text, message):
    path = _scenario_file(tmp_path, text)
    out = tmp_path / "out"
    code = cli.main(
        ["stress", str(posteriors["converged"]), "--scenarios", str(path), "--out", str(out)]
    )
    assert code == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_scenarios_are_caught_before_fitting_a_submission(
    posteriors, tmp_path, monkeypatch, capsys
):
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the scenarios")

    monkeypatch.setattr(PlatformRiskModel, "fit", no_fit)
    path = _scenario_file(tmp_path, '[[scenario]]\nname = "x"\nprevalence_odds = { weapons = 2 }\n')
    out = tmp_path / "out"
    code = cli.main(
        [
            "stress",
            str(posteriors["submission"]),
            "--scenarios",
            str(path),
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert code == cli.EXIT_INVALID
    assert "prevalence_odds: unknown category 'weapons'" in capsys.readouterr().err
    assert not out.exists()


def test_stress_fits_a_submission_and_saves_the_posterior(posteriors, tmp_path, mocked_sampling):
    out = tmp_path / "out"
    code = cli.main(
        [
            "stress",
            str(posteriors["submission"]),
            "--scenarios",
            str(_scenario_file(tmp_path)),
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert code == cli.EXIT_UNCONVERGED  # mocked draws cannot pass the gate
    assert sorted(p.name for p in out.iterdir()) == sorted([*STRESS_FILES, "posterior.nc"])
    assert PlatformRiskModel.load(out / "posterior.nc").posterior.sizes["draw"] == 20


def test_bad_paths_exit_2(tmp_path, capsys):
    scenarios = _scenario_file(tmp_path)
    assert cli.main(["stress", str(tmp_path / "nope.nc"), "--scenarios", str(scenarios)]) == 2
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    assert (
        cli.main(["stress", str(junk), "--scenarios", str(scenarios), "--out", str(tmp_path / "o")])
        == 2
    )
    assert cli.main(["stress", str(junk), "--scenarios", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "missing.toml" in err
    assert not (tmp_path / "o").exists()
