"""risklab.scenarios: scenario files, validation and stress tests against known truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risklab import scenarios as sc
from risklab.assess import assess
from risklab.counterfactual import OUTCOMES, Levers
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.scenarios import (
    STRESS_FILES,
    Scenario,
    ScenarioError,
    load_scenarios,
    stress_test,
)
from tests.conftest import small_marketplace
from tests.states import truth_state

TRUE_WORLD = dict(efficiency_log_sd=0.0, detection_ceiling=1.0, traders=True)


@pytest.fixture(scope="module")
def sim():
    return small_marketplace(seed=11, **TRUE_WORLD)


@pytest.fixture(scope="module")
def state(sim):
    return truth_state(sim)


def spread_state(state, n_draws: int = 200, seed: int = 0):
    """``n_draws`` draws around a one-draw state (2 chains): perturbed reach, θ and prevalence."""
    rng = np.random.default_rng(seed)
    s = n_draws

    def rep(x):
        return np.repeat(x, s, axis=0)

    return dataclasses.replace(
        state,
        amplitude=np.clip(rep(state.amplitude) * rng.lognormal(0, 0.2, (s, 1)), 0.05, 1.0),
        efficiency=rep(state.efficiency) * rng.lognormal(0, 0.3, (s, 1)),
        logit_prevalence=rep(state.logit_prevalence) + rng.normal(0, 0.4, (s, 1, 1)),
        other_rates=rep(state.other_rates),
        false_positive_share=rep(state.false_positive_share),
        enforcement=rng.uniform(0.2, 0.6, s),
        after_threshold_share=rep(state.after_threshold_share),
        sample_shape=(2, s // 2),
    )


def write(tmp_path, text: str, name: str = "scenarios.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rows(result, scenario):
    return result.table[result.table["scenario"] == scenario].set_index("category")


# ---------------------------------------------------------------------------------------------
# Known truth


def test_more_review_hours_match_a_simulated_world_with_more_staff():
    # Same seed, review intensity doubled except in the "thin" categories (medicines, toys keep
    # their fixed intensity): the simulator's own truth for that world is the scenario's answer.
    base = small_marketplace(seed=11, **TRUE_WORLD)
    more = small_marketplace(seed=11, review_intensity=2.0, **TRUE_WORLD)
    factor = {"cosmetics": 2.0, "jewellery": 2.0}
    result = stress_test(
        truth_state(base), [Scenario.from_mapping("2x staff", review_hours_factor=factor)]
    )
    got = rows(result, "2x staff")
    listings = more.tables["listings"].pivot(index="category", columns="period", values="listings")
    for cat in base.truth["categories"]:
        weights = listings.loc[cat].to_numpy() / listings.loc[cat].sum()
        expected = np.sum(np.asarray(more.truth["detection_rate"][cat]) * weights)
        # hours are rounded to 0.1 h per cell in the simulator: agreement to ~1e-3
        np.testing.assert_allclose(got.loc[cat, "detection_rate_median"], expected, rtol=2e-3)
        np.testing.assert_allclose(
            got.loc[cat, "prevalence_median"], more.truth["prevalence_category"][cat], rtol=1e-9
        )
    unchanged = rows(result, "baseline")
    for cat in ("medicines", "toys"):
        assert got.loc[cat, "undetected_listings_median"] == pytest.approx(
            unchanged.loc[cat, "undetected_listings_median"], rel=1e-12
        )
    for cat in factor:
        assert got.loc[cat, "undetected_change_median"] < 0


def test_enforcement_scenario_gives_the_simulated_counterfactual(sim, state):
    result = stress_test(state, [Scenario.from_mapping("as claimed", enforcement=0.95)])
    got = rows(result, "as claimed")
    for i, cat in enumerate(state.categories):
        n = state.listings[i]
        expected = np.sum(np.asarray(sim.truth["prevalence_if_enforced"][cat]) * n) / n.sum()
        np.testing.assert_allclose(got.loc[cat, "prevalence_median"], expected, rtol=1e-9)


def test_scenario_values_equal_hand_computations(state):
    scenarios = [
        Scenario.from_mapping("halve medicines", review_hours_factor={"medicines": 0.5}),
        Scenario.from_mapping("adaptation", efficiency_decay=0.05, hidden_share_add=0.1),
    ]
    result = stress_test(state, scenarios)
    pi = 1 / (1 + np.exp(-state.logit_prevalence[0]))  # (K, T)
    n, hours = state.listings, state.review_hours
    other = state.other_rates[0]  # (K, T, C-1); no false positives in the truth state
    theta, reach = state.efficiency[0][:, None], state.amplitude[0]  # reach = 1 - hidden share
    t = np.arange(n.shape[1])

    def outcomes(d_pro):
        illegal = n * pi
        undetected = (illegal * (1 - d_pro) * np.prod(1 - other, axis=-1)).sum(axis=1)
        reported = (illegal * (d_pro + other.sum(axis=-1))).sum(axis=1) / n.sum(axis=1)
        return undetected, reported

    factor = np.where(np.array(state.categories) == "medicines", 0.5, 1.0)[:, None]
    r = 1000 * hours * factor / n
    halved = outcomes(reach[:, None] * (1 - np.exp(-theta * r)))
    r = 1000 * hours / n
    adapted = outcomes((reach - 0.1)[:, None] * (1 - np.exp(-theta * 0.95**t * r)))
    prevalence = (n * pi).sum(axis=1) / n.sum(axis=1)
    for name, (undetected, reported) in (("halve medicines", halved), ("adaptation", adapted)):
        got = rows(result, name).loc[state.categories]
        np.testing.assert_allclose(got["undetected_listings_median"], undetected, rtol=1e-10)
        np.testing.assert_allclose(got["reported_share_median"], reported, rtol=1e-10)
        np.testing.assert_allclose(got["underestimation_median"], prevalence / reported, rtol=1e-10)
        np.testing.assert_allclose(got["prevalence_median"], prevalence, rtol=1e-12)
    # Platform-wide totals are sums over categories.
    totals = result.totals.set_index("scenario")
    np.testing.assert_allclose(
        totals.loc["adaptation", "undetected_listings_median"], adapted[0].sum(), rtol=1e-10
    )
    np.testing.assert_allclose(
        totals.loc["adaptation", "reported_share_median"],
        (adapted[1] * n.sum(axis=1)).sum() / n.sum(),
        rtol=1e-10,
    )


def test_one_draw_band_probabilities_are_the_true_bands(sim, state):
    result = stress_test(state, [])
    base = rows(result, "baseline")
    for cat in state.categories:
        true_band = sim.truth["true_band"][cat]
        assert base.loc[cat, f"p_band:{true_band}"] == 1.0
        assert base.loc[cat, "most_likely_band"] == true_band
        # reported share = detected share < prevalence: its band is never above the truth's
        assert base.loc[cat, "p_underestimated"] == 1.0


# ---------------------------------------------------------------------------------------------
# Summaries over draws


def test_table_summarises_the_draws(state):
    many = spread_state(state, 400, seed=1)
    scenarios = [
        Scenario.from_mapping("fewer hours", review_hours_factor=0.5),
        Scenario.from_mapping("growth", listings_factor={"toys": 1.5}, prevalence_odds=1.2),
    ]
    result = stress_test(many, scenarios, prob=0.8)
    draws = result.draws
    for name in ("fewer hours", "growth"):
        got = rows(result, name).loc[many.categories]
        d = draws.sel(scenario=name)
        for outcome in ("prevalence", "undetected_listings", "reported_share"):
            x = d[outcome].values.reshape(-1, len(many.categories))
            np.testing.assert_allclose(got[f"{outcome}_median"], np.quantile(x, 0.5, axis=0))
            np.testing.assert_allclose(got[f"{outcome}_low"], np.quantile(x, 0.1, axis=0))
            np.testing.assert_allclose(got[f"{outcome}_high"], np.quantile(x, 0.9, axis=0))
        # The change against the baseline is computed draw by draw, not from the medians.
        change = d["undetected_listings"] - draws["undetected_listings"].sel(scenario="baseline")
        change = change.values.reshape(-1, len(many.categories))
        np.testing.assert_allclose(got["undetected_change_low"], np.quantile(change, 0.1, axis=0))
        np.testing.assert_allclose(got["p_undetected_below_baseline"], (change < 0).mean(axis=0))
        bands = got[[f"p_band:{label}" for label in many.labels]].to_numpy()
        np.testing.assert_allclose(bands.sum(axis=1), 1.0)
        band = d["band"].values.reshape(-1, len(many.categories))
        np.testing.assert_allclose(bands[:, 2], (band == 2).mean(axis=0))
    fewer = rows(result, "fewer hours")
    assert np.all(fewer["p_undetected_below_baseline"] == 0.0)  # fewer hours never help
    totals = result.totals.set_index("scenario")
    platform = draws["platform_undetected_listings"].sel(scenario="growth").values.ravel()
    np.testing.assert_allclose(
        totals.loc["growth", "undetected_listings_median"], np.median(platform)
    )
    np.testing.assert_allclose(
        platform, draws["undetected_listings"].sel(scenario="growth").sum("category").values.ravel()
    )


def test_dims_and_coords(state):
    many = spread_state(state, 60)
    scenarios = [Scenario.from_mapping("a", efficiency_factor=0.8, description="weaker")]
    result = stress_test(many, scenarios)
    ds = result.draws
    for name in (*OUTCOMES, "band", "reported_band"):
        assert ds[name].dims == ("scenario", "chain", "draw", "category")
    assert ds["platform_prevalence"].dims == ("scenario", "chain", "draw")
    assert ds.sizes == {"scenario": 2, "chain": 2, "draw": 30, "category": 4}
    assert list(ds["scenario"].values) == ["baseline", "a"]
    assert list(ds["category"].values) == many.categories
    assert list(ds["description"].values)[1] == "weaker"
    assert list(result.table["scenario"]) == ["baseline"] * 4 + ["a"] * 4
    assert list(result.table["category"]) == many.categories * 2
    assert list(result.totals["scenario"]) == ["baseline", "a"]
    assert result.throughput > 0


def test_keep_draws_false_gives_the_same_tables(state):
    many = spread_state(state, 100)
    scenarios = [Scenario.from_mapping("x", hidden_share_factor=0.5)]
    full = stress_test(many, scenarios)
    lean = stress_test(many, scenarios, keep_draws=False)
    assert lean.draws is None
    assert full.table.drop(columns="converged").equals(lean.table.drop(columns="converged"))


def test_user_baseline_is_the_reference(state):
    scenarios = [
        Scenario.from_mapping("more", review_hours_factor=2.0),
        Scenario.from_mapping("baseline", listings_factor=1.2),
    ]
    result = stress_test(state, scenarios)
    assert [s.name for s in result.scenarios] == ["baseline", "more"]
    assert np.all(rows(result, "baseline")["undetected_change_median"] == 0.0)


@settings(max_examples=30, deadline=None)
@given(
    factors=st.lists(st.floats(0.0, 4.0), min_size=2, max_size=2),
    adds=st.lists(st.floats(-500.0, 5e3), min_size=2, max_size=2),
    decay=st.floats(0.0, 0.2),
)
def test_more_review_hours_never_raise_undetected_listings(state, factors, adds, decay):
    many = spread_state(state, 40, seed=2)
    (f_low, f_high), (a_low, a_high) = sorted(factors), sorted(adds)
    result = stress_test(
        many,
        [
            Scenario.from_mapping(
                "less", review_hours_factor=f_low, review_hours_add=a_low, efficiency_decay=decay
            ),
            Scenario.from_mapping(
                "more", review_hours_factor=f_high, review_hours_add=a_high, efficiency_decay=decay
            ),
        ],
    )
    less = result.draws["undetected_listings"].sel(scenario="less")
    more = result.draws["undetected_listings"].sel(scenario="more")
    assert np.all(more.values <= less.values * (1 + 1e-12))
    low, high = rows(result, "less"), rows(result, "more")
    assert np.all(
        high["undetected_listings_median"] <= low["undetected_listings_median"] * (1 + 1e-12)
    )


# ---------------------------------------------------------------------------------------------
# Agreement with assess (mocked sampling: no MCMC)


def test_baseline_reproduces_assess(small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=30, chains=2))
    model.fit(random_seed=3)
    findings = assess(model).table.set_index("category")
    result = stress_test(model, [Scenario.from_mapping("x", review_hours_factor=2.0)])
    base = rows(result, "baseline").loc[findings.index]
    for column in ("prevalence_median", "prevalence_low", "prevalence_high"):
        np.testing.assert_allclose(base[column], findings[column], rtol=1e-12)
    labels = list(small_submission.scale.labels)
    for label in labels:
        np.testing.assert_array_equal(base[f"p_band:{label}"], findings[f"p_band:{label}"])
    np.testing.assert_allclose(
        base["underestimation_vs_claim_median"], findings["underestimation_median"], rtol=1e-12
    )
    assert result.converged is False and not result.table["converged"].any()
    with pytest.raises(ScenarioError, match="repeat-offender"):
        stress_test(model, [Scenario.from_mapping("q", enforcement=0.9)])


# ---------------------------------------------------------------------------------------------
# Scenario files


def test_issue_example_parses(tmp_path, state):
    path = write(
        tmp_path,
        """
[[scenario]]
name = "halve review hours in medicines"
review_hours_factor = { medicines = 0.5 }
[[scenario]]
name = "adversarial adaptation"
description = "evasion grows"
efficiency_decay = 0.05
hidden_share_add = 0.1
[[scenario]]
name = "enforce"
enforcement = 1
review_hours_add = 1000
""",
    )
    got = load_scenarios(path, categories=state.categories, enforcement_available=True)
    assert [s.name for s in got] == [
        "halve review hours in medicines",
        "adversarial adaptation",
        "enforce",
    ]
    assert got[0].levers == Levers(review_hours_factor={"medicines": 0.5})
    assert got[1].levers == Levers(efficiency_decay=0.05, hidden_share_add=0.1)
    assert got[1].description == "evasion grows"
    assert got[2].levers == Levers(enforcement=1.0, review_hours_add=1000.0)
    from_path = stress_test(state, path)
    from_list = stress_test(state, got)
    assert from_path.table.equals(from_list.table)


BAD = [
    ('name = "a"\nreview_hours = 2', "scenario 1 ('a'): review_hours: unknown key"),
    (
        'name = "a"\nreview_hours_factor = { weapons = 2 }',
        "review_hours_factor: unknown category 'weapons'",
    ),
    ('name = "a"\nefficiency_decay = "fast"', "efficiency_decay: expected a number, got str"),
    ('name = "a"\nefficiency_decay = true', "efficiency_decay: expected a number, got bool"),
    (
        'name = "a"\nefficiency_decay = { toys = 0.1 }',
        "efficiency_decay: expected a number, got dict",
    ),
    (
        'name = "a"\nreview_hours_factor = { toys = "x" }',
        "review_hours_factor: toys: expected a number",
    ),
    (
        'name = "a"\nreview_hours_factor = [1, 2]',
        "review_hours_factor: expected a number or a table",
    ),
    ('name = "a"\nefficiency_decay = 1.0', "efficiency_decay: must be in [0, 1), got 1.0"),
    ('name = "a"\nhidden_share_add = 2', "hidden_share_add: must be in [-1, 1], got 2.0"),
    ('name = "a"\nlistings_factor = 0', "listings_factor: must be in (0, inf), got 0.0"),
    (
        'name = "a"\nreview_hours_factor = { toys = -1 }',
        "review_hours_factor: toys: must be in [0, inf)",
    ),
    ('name = "a"\nprevalence_odds = nan', "prevalence_odds: must be a finite number"),
    ('name = "a"\nreview_hours_add = inf', "review_hours_add: must be a finite number"),
    ('name = "a"\nenforcement = 1.5', "enforcement: must be in [0, 1], got 1.5"),
    ('name = "a"\nmin_saturation = 1', "min_saturation: must be in (0, 1)"),
    ("efficiency_decay = 0.1", "scenario 1: name: needs a non-empty string"),
    ('name = ""', "scenario 1: name: needs a non-empty string"),
    ("name = 3", "scenario 1: name: needs a non-empty string"),
    ('name = "a"\ndescription = 1', "scenario 1 ('a'): description: expected a string"),
    ('name = "a"\n[[scenario]]\nname = "A"', "scenario 2 ('A'): name: duplicate of scenario 1"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_invalid_scenarios_are_errors_naming_file_scenario_and_key(tmp_path, state, body, message):
    path = write(tmp_path, "[[scenario]]\n" + body + "\n")
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path, categories=state.categories, enforcement_available=True)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenario = 1\n", "expected one or more [[scenario]] tables"),
        ("", "expected one or more [[scenario]] tables"),
        ('title = "x"\n', "title: unknown key"),
        ("[[scenario]\n", "is not valid TOML"),
        ("scenario = [1]\n", "scenario 1: expected a table"),
    ],
)
def test_invalid_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError, match=None) as info:
        load_scenarios(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_file_limits(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_bytes(b"\xff\xfe[[scenario]]")
    with pytest.raises(ScenarioError, match="not valid UTF-8"):
        load_scenarios(path)
    monkeypatch.setattr(sc, "MAX_SCENARIO_BYTES", 20)
    path.write_text('[[scenario]]\nname = "a long enough file"\n')
    with pytest.raises(ScenarioError, match="at most 20 bytes"):
        load_scenarios(path)
    monkeypatch.setattr(sc, "MAX_SCENARIOS", 1)
    monkeypatch.setattr(sc, "MAX_SCENARIO_BYTES", 2**20)
    path.write_text('[[scenario]]\nname = "a"\n[[scenario]]\nname = "b"\n')
    with pytest.raises(ScenarioError, match="at most 1 scenarios"):
        load_scenarios(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenarios(tmp_path / "missing.toml")


def test_enforcement_without_offender_component(tmp_path):
    no_traders = truth_state(small_marketplace(seed=2, efficiency_log_sd=0, detection_ceiling=1))
    path = write(tmp_path, '[[scenario]]\nname = "q"\nenforcement = 0.9\n')
    with pytest.raises(ScenarioError, match=r"scenario 1 \('q'\): enforcement: the fit has no"):
        stress_test(no_traders, path)


def test_python_scenarios_are_validated_before_anything_runs(state, monkeypatch):
    calls = []
    monkeypatch.setattr(sc, "evaluate_many", lambda *a: calls.append(a))
    bad = [
        Scenario.from_mapping("fine", review_hours_factor=2.0),
        Scenario("typo", Levers(hidden_share_add={"weapons": 0.1})),
    ]
    with pytest.raises(ScenarioError, match=r"scenario 3 \('typo'\): hidden_share_add: unknown"):
        stress_test(state, bad)  # numbered after the added baseline
    with pytest.raises(ScenarioError, match="unknown lever"):
        Scenario.from_mapping("x", review_hours=2)
    with pytest.raises(ScenarioError, match="duplicate"):
        stress_test(state, [Scenario("x"), Scenario("x")])
    assert calls == []
    with pytest.raises(ValueError, match="prob"):
        stress_test(state, [], prob=1.0)


# ---------------------------------------------------------------------------------------------
# Files


def test_to_directory_writes_atomically_and_never_overwrites(tmp_path, state, monkeypatch):
    many = spread_state(state, 40)
    result = stress_test(many, [Scenario.from_mapping("=evil", review_hours_factor=2.0)])
    out = tmp_path / "out"
    written = result.to_directory(out)
    assert sorted(p.name for p in written) == sorted(STRESS_FILES)
    csv = (out / "scenarios.csv").read_text()
    assert "'=evil" in csv and "\n=evil" not in csv
    import xarray as xr

    with xr.open_dataset(out / "scenarios.nc", engine="h5netcdf") as back:
        np.testing.assert_allclose(back["prevalence"].values, result.draws["prevalence"].values)
        assert list(back["scenario"].values) == ["baseline", "=evil"]
    with pytest.raises(FileExistsError, match="--force"):
        result.to_directory(out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    import risklab.plotting.scenarios as plots

    def boom(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(plots, "plot_scenario_bands", boom)
    with pytest.raises(RuntimeError):
        result.to_directory(out, force=True)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("n", [1, 2, 7, 4000])
def test_table_quantiles_are_numpys_linear_quantiles(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(3, 5, n))
    x[0, 0] = np.round(x[0, 0])  # ties
    q = np.array([0.5, 0.05, 0.95])
    got = sc._quantiles(x, q)
    np.testing.assert_allclose(got, np.quantile(x, q, axis=-1), rtol=1e-14, atol=1e-15)
