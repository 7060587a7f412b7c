"""Smoke tests of the benchmark suite (benchmarks/): the modules import and their cheapest paths
run on tiny sizes, so the scripts cannot rot. No MCMC, no compilation: sampling is replaced by
draws made from known values; the Stan peer is checked up to its data, not compiled."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

from benchmarks import caching, common, flagship, scaling, scenarios_throughput, suite
from benchmarks.stan import runner

TINY = {"n_categories": 3, "n_periods": 6, "total_listings": 3e5}


# ----------------------------------------------------------------------------- marketplaces
def test_marketplace_audits_a_third_of_the_cells():
    sim = common.marketplace(3, **TINY, n_traders=None)
    audits = sim.evidence["audits"]
    random = audits[audits["design"] == "random"]
    cells = set(zip(random["category"], random["period"], strict=True))
    assert len(cells) == 3 * 6 // 3  # every category, the last third of the periods
    assert {c for c, _ in cells} == set(common.category_names(3))
    assert "planted" in sim.evidence and "traders" not in sim.tables


def test_the_flagship_samples_with_risklab_defaults():
    """The suite times what a user's default fit does (warm-up included)."""
    from risklab.models import SamplerConfig

    default = SamplerConfig()
    expected = {"draws": default.draws, "tune": default.tune, "chains": default.chains}
    assert expected == flagship.FULL_SAMPLING


def test_category_names_extend_the_defaults():
    names = common.category_names(12)
    assert names[:2] == ["medicines", "dietary_supplements"]
    assert names[10:] == ["category_11", "category_12"] and len(set(names)) == 12


def test_chunked_trader_table_matches_the_negative_binomial_expectation():
    n, d, mu, a = 30_000, 0.5, 4.0, 0.6
    table = common.chunked_trader_table(
        5,
        n,
        detection_rate=d,
        chunk=7_000,
        offender_shape=a,
        offender_mean_listings=mu,
        enforcement=0.4,
        strike_threshold=3,
        claimed_enforcement=0.95,
    )
    assert list(table.columns) == ["strikes", "traders", "suspended"]
    assert (table["suspended"] <= table["traders"]).all()
    # Strikes without suspension are NB(mean d·μ, shape a): P(detected at least once) is exact.
    p_seen = 1.0 - stats.nbinom(a, a / (a + d * mu)).pmf(0)
    seen = table["traders"].sum()
    assert abs(seen - n * p_seen) < 5 * np.sqrt(n * p_seen * (1 - p_seen))


# ------------------------------------------------------------------------------- headline
def test_headline_draws_weight_periods_by_listings():
    listings = np.array([[1.0, 3.0], [2.0, 2.0]])
    prevalence = np.broadcast_to(np.array([[0.1, 0.2], [0.3, 0.5]]), (2, 5, 2, 2))
    out = common.headline_draws(prevalence, prevalence, listings, enforcement=np.ones((2, 5)))
    np.testing.assert_allclose(out["prevalence"].values[0, 0], [0.175, 0.4])
    assert set(out.data_vars) == {"prevalence", "detection_rate", "enforcement"}


def test_diagnostics_and_agreement_on_known_draws():
    rng = np.random.default_rng(0)
    a = xr.Dataset({"x": (("chain", "draw", "category"), rng.normal(0, 1, (4, 500, 2)))})
    b = xr.Dataset({"x": (("chain", "draw", "category"), rng.normal(0, 1, (4, 500, 2)))})
    shifted = a + 0.5
    diag_a, diag_b = common.diagnostics(a), common.diagnostics(b)
    assert diag_a["max_rhat"] < 1.01 and diag_a["min_ess_bulk"] > 1000
    stuck = a.copy()
    stuck["x"][0] += 3.0  # one chain elsewhere: R-hat must see it
    assert common.diagnostics(stuck)["max_rhat"] > 1.1
    assert common.agreement(diag_a["summary"], diag_b["summary"]) < 5
    assert common.agreement(diag_a["summary"], common.diagnostics(shifted)["summary"]) > 10


def test_table_and_jsonable():
    text = common.table([{"a": 1.23456, "b": None}], [("a", "A", ".2f"), ("b", "B", "")])
    assert text.splitlines()[1].split() == ["1.23", "-"]
    assert common.jsonable({"x": np.float64("nan"), "y": np.arange(2)}) == {"x": None, "y": [0, 1]}


def test_run_isolated_returns_results_and_survives_failures():
    ok = common.run_isolated("common", "probe", {"value": 3}, timeout=120)
    assert ok["echo"] == {"value": 3} and ok["peak_memory"]["self_mb"] > 0
    failed = common.run_isolated("common", "probe", {"fail": True}, timeout=120)
    assert "probe failed on purpose" in failed["error"]


# ------------------------------------------------------------------- assessment, no MCMC
def _fake_sample(**kwargs):
    """Stands in for ``pm.sample``: draws around known values, with sampler statistics; it
    reports 0.02 s of sampling after 0.05 s of work, so 0.03 s or more is "compilation"."""
    time.sleep(0.05)
    model = pm.modelcontext(None)
    chains, draws = kwargs["chains"], kwargs["draws"]
    cats, periods = model.coords["category"], model.coords["period"]
    rng = np.random.default_rng(0)
    shape = (chains, draws, len(cats), len(periods))
    dims = ("chain", "draw", "category", "period")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    coords.update(category=list(cats), period=list(periods))
    posterior = xr.Dataset(
        {
            "prevalence": (dims, expit(-4.6 + rng.normal(0, 0.1, shape))),
            "detection_rate": (dims, expit(-0.6 + rng.normal(0, 0.1, shape))),
        },
        coords=coords,
        attrs={"sampling_time": 0.02},
    )
    sample_stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool)),
            "n_steps": (("chain", "draw"), np.full((chains, draws), 7)),
        },
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})


@pytest.mark.filterwarnings("ignore:the sampler did not converge")
def test_assessment_case_times_every_stage(monkeypatch):
    monkeypatch.setattr(pm, "sample", _fake_sample)
    result = flagship.assessment_case(
        **TINY, n_traders=None, draws=50, tune=50, chains=2, report=False
    )
    stages = result["stages"]
    assert set(stages) == {"build", "compile", "sampling", "gate", "assess"}
    assert stages["sampling"] == 0.02 and stages["compile"] >= 0.03
    assert result["total_s"] == pytest.approx(sum(stages.values()))
    assert result["gradient_evaluations"] == 2 * 50 * 7
    assert result["ess_per_s"] == pytest.approx(result["min_ess_bulk"] / 0.02)
    assert result["divergences"] == 0 and len(result["headline"]["prevalence"]["mean"]) == 3
    assert flagship.targets(result)["divergences==0"]


# ------------------------------------------------------------------------------ Stan peer
def test_stan_data_mirrors_the_pymc_model():
    from risklab.models import PlatformRiskModel
    from risklab.models.components.offenders import trader_table

    sub = common.marketplace(2, **TINY, n_traders=2_000).to_submission()
    data = runner.stan_data(sub)
    model = PlatformRiskModel(sub)
    pm_model = model.build()
    k, t = data["K"], data["T"]
    assert (k, t, data["C2"]) == (3, 6, 3)
    assert data["detected_sec"].shape == (3 * k, t)
    for name, key in (
        ("log_detected_rate", "cell_centred"),
        ("log_detected_level", "level_centred"),
        ("channel_log_ratio", "channel_centred"),
    ):
        n_centred = len(pm_model.coords.get(f"{name}_centred_element", ()))
        assert data[key].sum() == n_centred
    assert data["has_offenders"] == 1 and data["R"] > 0
    # Detections of every channel are all there: proactive plus the secondary blocks.
    total = sub.data["detected"].sum().item()
    assert data["detected_pro"].sum() + data["detected_sec"].sum() == total
    prior = model.priors["prevalence_cell_sd"].parameters["sigma"]
    assert data["p_prevalence_cell_sd"] == prior
    assert data["p_efficiency_log_sd"] == model.priors["efficiency_log_sd"].parameters["sigma"]
    assert data["channel_centred"].shape == (3, k) and data["channel_ratio_spread"] == 0.5
    # The censoring matrix selects the pmf at 0..i-1 for each suspended row of i strikes.
    table = trader_table(sub.data)
    censored = table.strikes[table.suspended > 0]
    np.testing.assert_array_equal(data["below"].sum(axis=1), censored)
    assert data["below"].shape[1] == table.censor_limit + 1


def test_stan_data_refuses_a_prior_family_it_does_not_mirror():
    from risklab.priors import Prior

    sub = common.marketplace(2, **TINY, n_traders=None).to_submission()
    with pytest.raises(ValueError, match="prevalence_cell_sd"):
        runner.stan_data(sub, priors={"prevalence_cell_sd": Prior("Exponential", lam=4.0)})


def test_rdump_is_column_major_and_draws_read_back(tmp_path):
    path = runner.write_rdump(
        {"K": 2, "x": 0.5, "v": np.array([1.0, 2.0]), "m": np.array([[1, 2, 3], [4, 5, 6]])},
        tmp_path / "d.R",
    )
    text = path.read_text()
    assert "K <- 2L" in text and "x <- 0.5" in text
    assert "m <- structure(c(1.0, 4.0, 2.0, 5.0, 3.0, 6.0), .Dim = c(2L, 3L))" in text
    rows = []
    for chain in range(2):
        for draw in range(3):
            rows.append({"chain": chain, "draw": draw, "p[1,1]": chain, "p[2,1]": draw, "q": 7.0})
    pd.DataFrame(rows).to_csv(tmp_path / "draws.csv", index=False)
    draws = runner.read_draws(tmp_path / "draws.csv", chains=2)
    assert draws["p"].shape == (2, 3, 2, 1) and draws["q"].shape == (2, 3)
    assert draws["p"][1, 2, 0, 0] == 1 and draws["p"][1, 2, 1, 0] == 2


# ------------------------------------------------------------------ scenarios and the suite
def test_synthetic_state_without_noise_is_the_truth():
    from risklab.counterfactual import Levers, evaluate_arrays

    state = scenarios_throughput.synthetic_state(3, n_categories=3, n_periods=4, noise=0.0)
    sim = common.marketplace(1, n_categories=3, n_periods=4, total_listings=1e8, n_traders=1000)
    out = evaluate_arrays(state, Levers())
    truth = [sim.truth["prevalence_category"][c] for c in state.categories]
    np.testing.assert_allclose(out["prevalence"][0], truth, rtol=1e-9)


def test_throughput_case_runs_on_tiny_sizes():
    result = scenarios_throughput.throughput_case(
        n_scenarios=4, n_draws=20, n_categories=3, n_periods=4, passes=3
    )
    assert result["scenario_draws_per_s"] > 0
    passes = result["evaluate_many_passes_scenario_draws_per_s"]
    assert len(passes) == 3
    assert result["evaluate_many_scenario_draws_per_s"] == np.median(passes)
    assert result["case"]["n_channels"] == 4
    assert "stress_test_scenario_draws_per_s" in result or "stress_test" in result


def test_paired_ratio_alternates_and_takes_the_median_of_round_ratios():
    calls = []
    cheap = lambda: calls.append("first")  # noqa: E731
    dear = lambda: (calls.append("last"), sum(range(20_000)))  # noqa: E731
    out = scaling.paired_ratio(cheap, dear, number=3, rounds=4)
    # Rounds alternate which case runs first, in blocks of `number` calls.
    assert calls == ["first"] * 3 + ["last"] * 6 + ["first"] * 6 + ["last"] * 6 + ["first"] * 3
    assert len(out["round_ratios"]) == 4
    assert out["ratio"] == np.median(out["round_ratios"])
    assert out["ratio"] > 1.0 and out["last_s"] > out["first_s"]


def test_scaling_plan_and_ratios():
    plan = scaling.plan(quick=False)
    assert [c["total_listings"] for c in plan["listings"]] == [1e4, 1e7, 1e10]
    assert [c["n_traders"] for c in plan["traders"]] == [1_000, 100_000, 10_000_000]
    assert (plan["grid"][-1]["n_categories"], plan["grid"][-1]["n_periods"]) == (50, 60)
    cases = [
        {"gradient_s": 1e-4, "stages": {"sampling": 10.0}, "total_s": 50.0, "ess_per_s": 40.0},
        {"error": "boom"},
        {"gradient_s": 1.1e-4, "stages": {"sampling": 30.0}, "total_s": 80.0, "ess_per_s": 20.0},
    ]
    ratio = scaling.ratios(cases)
    assert ratio["gradient"] == pytest.approx(1.1) and ratio["sampling"] == pytest.approx(3.0)
    assert ratio["seconds_per_ess"] == pytest.approx(2.0)


def test_suite_arguments_recommendation_and_dry_run(capsys):
    args = suite.parse_args(["--quick", "--only", "flagship,stan"])
    assert args.sections == ["flagship", "stan"]
    with pytest.raises(SystemExit):
        suite.parse_args(["--only", "nonsense"])

    def fit(ess_per_s, passed=True, divergences=0, compile_s=10.0):
        return {
            "ess_per_s": ess_per_s,
            "gate_passed": passed,
            "divergences": divergences,
            "stages": {"compile": compile_s, "sampling": 20.0},
        }

    results = {
        "nutpie": fit(50.0),
        "pymc": fit(80.0, divergences=3),  # fastest but diverged: not eligible
        "numpyro": fit(52.0, compile_s=30.0),  # within 10% of nutpie, slower to compile
        "blackjax": {"skipped": "not installed"},
    }
    assert suite.recommend(results)["sampler"] == "nutpie"
    assert suite.recommend({"pymc": fit(5.0, passed=False)})["sampler"] == "nutpie"
    assert suite.main(["--quick", "--dry-run"]) == 0
    assert "scaling listings" in capsys.readouterr().out
    assert suite.sampler_available("pymc") == (True, "")
    assert callable(caching.compile_case) and callable(caching.demo_case)


def _canned(module, function, kwargs, **_):
    """Stands in for ``run_isolated``: a plausible record per case, no child process."""
    if function == "assessment_case" or function == "stan_case":
        sampler = "stan" if function == "stan_case" else kwargs.get("sampler", "nutpie")
        ess_per_s = {"stan": 20.0, "pymc": 10.0}.get(sampler, 50.0)
        stages = {"build": 0.5, "compile": 30.0, "sampling": 10.0}
        return {
            "stages": stages,
            "total_s": sum(stages.values()),
            "min_ess_bulk": 10 * ess_per_s,
            "ess_per_s": ess_per_s,
            "divergences": 0,
            "max_rhat": 1.002,
            "gate_passed": True,
            "gradient_s": 1e-4 * (1 + kwargs["n_categories"] * kwargs["n_periods"] / 100),
            "headline": {"prevalence": {"mean": [0.01], "sd": [0.001], "ess_bulk": [400.0]}},
            "sampler": {"sampler": sampler},
            "peak_memory": {"self_mb": 500.0, "children_mb": 10.0},
        }
    if function == "throughput_case":
        return {"scenario_draws_per_s": 2e6, "ms_per_scenario": 2.0, "stress_test": "n/a"}
    if function == "paired_gradient_case":
        return {"ratio": 1.01, "rounds": 15, "first_s": 5e-5, "last_s": 5.05e-5}
    if function == "compile_case":
        return {"backend": kwargs["backend"], "compile_s": 5.0}
    return {"demo_s": 40.0, "compile_and_sample_s": 30.0}


def test_suite_runs_every_section_and_writes_one_record(monkeypatch, tmp_path, capsys):
    import json

    monkeypatch.setattr(suite, "run_isolated", _canned)
    monkeypatch.setattr(scaling, "run_isolated", _canned)
    monkeypatch.setattr(runner, "stan_installation", lambda: {"kind": "rstan", "version": "x"})
    monkeypatch.setattr(suite, "sampler_available", lambda name: (name == "pymc", "missing"))
    assert suite.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("suite_*.json")
    record = json.loads(path.read_text())
    sections = record["sections"]
    assert list(sections) == list(suite.SECTIONS)
    assert not any("error" in s for s in sections.values())
    assert sections["stan"]["ess_per_s_ratio"] == pytest.approx(50.0 / 20.0)
    assert sections["stan"]["agreement_max_z"] == pytest.approx(0.0)
    assert sections["samplers"]["recommendation"]["sampler"] == "nutpie"
    assert sections["samplers"]["results"]["numpyro"]["skipped"] == "missing"
    grid = sections["scaling"]["grid"]["ratio_last_over_first"]["gradient"]
    assert grid == pytest.approx((1 + 6 * 8 / 100) / (1 + 3 * 4 / 100))
    for axis in ("listings", "traders"):
        assert sections["scaling"][axis]["paired_gradient"]["ratio"] == 1.01
    assert "paired_gradient" not in sections["scaling"]["grid"]
    assert sections["flagship"]["targets"]["divergences==0"]
    assert record["versions"]["risklab"] and record["machine"]["cores"] >= 1
    assert "ESS/s nutpie / Stan: 2.50" in capsys.readouterr().out


def test_ratio_guards_missing_values():
    assert suite.ratio(3.0, 2.0) == 1.5
    assert suite.ratio(None, 2.0) is None and suite.ratio(1.0, 0.0) is None
    assert suite.ratio(float("nan"), 1.0) is None


def test_instrumented_sampling_times_the_compilation_and_restores_everything(monkeypatch):
    """The flagship's stage timer records risklab's compilation (and a call passed on to
    nutpie's), and puts back pm.sample and both compile functions, also after an error."""
    import nutpie

    from risklab.models import nutpie_cache

    monkeypatch.setattr(nutpie_cache, "compile_nutpie", lambda model: ("cached", model))
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda model, **kw: ("nutpie's", model))
    before = (pm.sample, nutpie.compile_pymc_model, nutpie_cache.compile_nutpie)
    with flagship.instrumented_sampling() as timings:
        assert nutpie_cache.compile_nutpie("m") == ("cached", "m")
        assert timings["compiled"] == ("cached", "m") and timings["compile_s"] >= 0.0
        assert nutpie.compile_pymc_model("n", backend="jax") == ("nutpie's", "n")
        assert timings["compiled"] == ("nutpie's", "n")
    assert (pm.sample, nutpie.compile_pymc_model, nutpie_cache.compile_nutpie) == before
    with pytest.raises(RuntimeError), flagship.instrumented_sampling():
        raise RuntimeError
    assert (pm.sample, nutpie.compile_pymc_model, nutpie_cache.compile_nutpie) == before
