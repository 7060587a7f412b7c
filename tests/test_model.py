"""PlatformRiskModel structure, likelihood wiring, lifecycle and provenance (no real MCMC)."""

from __future__ import annotations

import json

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

from risklab.models import (
    ModelFileError,
    NotFittedError,
    PlatformRiskModel,
    SamplerConfig,
    derive_seeds,
)
from risklab.models.components.prevalence import period_position
from risklab.priors import Prior, PriorError

#: Compile quickly: these tests evaluate each graph once.
FAST = "FAST_COMPILE"


def test_build_has_expected_variables_without_sampling(small_submission):
    model = PlatformRiskModel(small_submission)
    assert not model.is_fitted
    pm_model = model.build()
    free = {v.name for v in pm_model.free_RVs}
    # Data-rich cells and categories are sampled centred (see _parametrisation).
    assert {"log_detected_rate_centred", "log_detected_level_centred"} <= free
    # Evidence-backed detection levels (audits, planted listings) centred; jewellery (no
    # evidence) non-centred.
    assert {"detection_level_logit_centred", "detection_level_logit_offset"} <= free
    assert pm_model.named_vars_to_dims["log_detected_rate"] == ("category", "period")
    assert {"purposive_uplift", "channel_log_ratio_offset"} <= free
    observed = {v.name for v in pm_model.observed_RVs}
    assert observed == {"detected", "audit_random", "audit_purposive", "planted_caught"}
    assert pm_model.named_vars_to_dims["prevalence"] == ("category", "period")
    assert model.build() is pm_model  # built once
    with pytest.raises(NotFittedError):
        _ = model.posterior


def test_components_without_data_are_left_out(small_sim):
    small_sim.evidence.clear()
    model = PlatformRiskModel(small_sim.to_submission())
    names = [c.name for c in model.components]
    assert "audits" not in names and "planted" not in names
    assert "purposive_uplift" not in model.default_priors
    assert {v.name for v in model.build().observed_RVs} == {"detected"}


def test_prior_overrides_by_name(small_submission):
    model = PlatformRiskModel(
        small_submission, priors={"prevalence_intercept": Prior("Normal", mu=-3.0, sigma=0.01)}
    )
    draws = model.sample_prior_predictive(draws=200, random_seed=1)
    intercept = draws["prior"]["prevalence_intercept"].values
    np.testing.assert_allclose(intercept.mean(), -3.0, atol=0.01)
    with pytest.raises(PriorError, match="unknown prior 'no_such_prior'"):
        PlatformRiskModel(
            small_submission, priors={"no_such_prior": Prior("Normal", mu=0, sigma=1)}
        )


def _point_values(model, names):
    pm_model = model.build()
    point = pm_model.initial_point(random_seed=3)
    # move away from the initial point so that nothing is trivially zero
    point = {k: v + 0.1 for k, v in point.items()}
    if "efficiency_log_offset" in point:  # categories with different review efficiencies
        offset = point["efficiency_log_offset"]
        point["efficiency_log_offset"] = np.linspace(-1.0, 1.0, offset.size).reshape(offset.shape)
    outputs = pm_model.replace_rvs_by_values([pm_model[n] for n in names])
    fn = pm_model.compile_fn(outputs, inputs=pm_model.value_vars, on_unused_input="ignore",
                             point_fn=True, mode=FAST)  # fmt: skip
    return point, dict(zip(names, fn(point), strict=True))


def test_capacity_curve_and_detection_likelihood_match_closed_form(small_submission):
    model = PlatformRiskModel(small_submission)
    names = ["detection_level", "efficiency", "detection_rate", "hidden_share", "prevalence",
             "channel_ratio"]  # fmt: skip
    point, values = _point_values(model, names)
    data = small_submission.data
    r = data["review_hours"].values / data["listings"].values * 1000
    theta = values["efficiency"]  # per category: log θ[k] = μ + σ z[k]
    mu, sd = point["efficiency_log_mu"], np.exp(point["efficiency_log_sd_log__"])
    np.testing.assert_allclose(np.log(theta), mu + sd * point["efficiency_log_offset"])
    saturation_at_mean = 1 - np.exp(-theta * r.mean(axis=1))
    expected_d = (
        values["detection_level"][:, None]
        * (1 - np.exp(-theta[:, None] * r))
        / saturation_at_mean[:, None]
    )
    np.testing.assert_allclose(values["detection_rate"], expected_d, rtol=1e-10)
    np.testing.assert_allclose(
        values["hidden_share"],
        1 - np.minimum(values["detection_level"] / saturation_at_mean, 1),
        rtol=1e-10,
    )
    # the curve rises with review intensity and passes through the level at the mean intensity
    assert np.all(np.diff(np.sort(r[0])) >= 0)

    channels = list(data["channel"].values)
    rates = [expected_d]
    mean_d = expected_d.mean(axis=1)
    for i, _ in enumerate(channels[1:]):
        rates.append(np.broadcast_to((1 - np.exp(-values["channel_ratio"][i] * mean_d))[:, None],
                                     expected_d.shape))  # fmt: skip
    p = values["prevalence"][:, :, None] * np.stack(rates, axis=-1)
    expected_logp = stats.binom.logpmf(
        data["detected"].values, data["listings"].values[:, :, None], p
    ).sum()
    pm_model = model.build()
    logp = pm_model.compile_logp(vars=[pm_model["detected"]], sum=True, mode=FAST)(point)
    np.testing.assert_allclose(logp, expected_logp, rtol=1e-9)


def test_evidence_likelihoods_match_closed_form(small_submission):
    model = PlatformRiskModel(small_submission)
    point, values = _point_values(model, ["prevalence", "detection_rate", "purposive_uplift"])
    data = small_submission.data
    pm_model = model.build()
    pi, d = values["prevalence"], values["detection_rate"]
    m = data["audit_random_sampled"].values
    mask = m > 0
    expected = stats.binom.logpmf(data["audit_random_illegal"].values[mask], m[mask], pi[mask])
    got = pm_model.compile_logp(vars=[pm_model["audit_random"]], sum=True, mode=FAST)(point)
    np.testing.assert_allclose(got, expected.sum(), rtol=1e-9)

    planted = data["planted"].values
    mask = planted > 0
    expected = stats.binom.logpmf(data["caught"].values[mask], planted[mask], d[mask])
    got = pm_model.compile_logp(vars=[pm_model["planted_caught"]], sum=True, mode=FAST)(point)
    np.testing.assert_allclose(got, expected.sum(), rtol=1e-9)

    m = data["audit_purposive_sampled"].values
    mask = m > 0
    logit_pi = np.log(pi) - np.log1p(-pi)
    p = expit(logit_pi[mask] + values["purposive_uplift"][0])  # one purposive category
    expected = stats.binom.logpmf(data["audit_purposive_illegal"].values[mask], m[mask], p)
    got = pm_model.compile_logp(vars=[pm_model["audit_purposive"]], sum=True, mode=FAST)(point)
    np.testing.assert_allclose(got, expected.sum(), rtol=1e-9)


def test_prevalence_parametrisation_is_the_stated_prior(small_submission):
    """ω = logit π + log d has the prior of logit π shifted by log d (unit Jacobian)."""
    model = PlatformRiskModel(small_submission)
    prior = model.sample_prior_predictive(draws=1500, random_seed=5)["prior"]
    logit_pi = np.log(prior["prevalence"]) - np.log1p(-prior["prevalence"])
    category_logit = prior["prevalence_category_logit"]
    intercept = prior["prevalence_intercept"]
    sd = prior["prevalence_category_sd"]
    z = ((category_logit - intercept) / sd).values.ravel()
    assert abs(z.mean()) < 0.08 and abs(z.std() - 1) < 0.08
    cell = (
        logit_pi
        - category_logit
        - prior["prevalence_trend"]
        * xr.DataArray(period_position(small_submission.data.sizes["period"]), dims="period")
    )
    zc = (cell / prior["prevalence_cell_sd"]).values.ravel()
    assert abs(zc.mean()) < 0.08 and abs(zc.std() - 1) < 0.08


def test_default_priors_put_prevalence_below_a_few_percent(small_submission):
    prior = PlatformRiskModel(small_submission).sample_prior_predictive(draws=2000, random_seed=11)[
        "prior"
    ]
    pi = prior["prevalence"].values
    assert 0.003 < np.median(pi) < 0.03
    assert np.quantile(pi, 0.95) < 0.2
    d = prior["detection_rate"].values
    assert (d > 0).all() and (d < 1).all()
    assert 0.05 < np.median(d) < 0.8


def test_derive_seeds_is_deterministic_and_distinct():
    a, b = derive_seeds(42), derive_seeds(42)
    assert a == b
    assert len(set(a.values())) == len(a)
    assert derive_seeds(43) != a
    with pytest.raises(ValueError, match="non-negative"):
        derive_seeds(-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"draws": 0}, "draws"),
        ({"sampler": "gibbs"}, "sampler"),
        ({"target_accept": 1.2}, "target"),
        ({"cores": 0}, "cores"),
        ({"cores": 1.5}, "cores"),
    ],
)
def test_sampler_config_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**kwargs)


def test_chains_run_on_the_usable_cores_and_cores_is_not_provenance(monkeypatch):
    from risklab.models import config

    monkeypatch.setattr(config, "usable_cores", lambda: 2)
    assert SamplerConfig(chains=4).parallel_chains() == 2
    assert SamplerConfig(chains=1).parallel_chains() == 1
    assert SamplerConfig(chains=4, cores=3).parallel_chains() == 3
    assert SamplerConfig(chains=2, cores=8).parallel_chains() == 2
    assert "cores" not in SamplerConfig(cores=3).to_json()
    assert SamplerConfig.from_json(SamplerConfig(cores=3).to_json()) == SamplerConfig()


def test_fit_passes_the_parallel_chains_to_pymc(small_submission, mocked_sampling, monkeypatch):
    seen = {}
    fake = pm.sample

    def spy(**kwargs):
        seen.update(kwargs)
        return fake(**kwargs)

    monkeypatch.setattr(pm, "sample", spy)
    config = SamplerConfig(draws=10, chains=3, cores=2)
    with pytest.warns(UserWarning, match="did not converge"):
        PlatformRiskModel(small_submission, sampler_config=config).fit(random_seed=1)
    assert seen["cores"] == 2 and seen["chains"] == 3


def test_fit_and_prior_draws_compile_without_fast_math(
    small_submission, mocked_sampling, monkeypatch
):
    """PyTensor's numba fast-math flags made draws depend on the compile cache (a cold and a warm
    compile of the demo's log density differed in the last digits): risklab compiles with them
    off, and leaves the user's setting as it was."""
    import pytensor

    seen = []
    fake_sample, fake_prior = pm.sample, pm.sample_prior_predictive

    def spy_sample(**kwargs):
        seen.append(pytensor.config.numba__fastmath)
        return fake_sample(**kwargs)

    def spy_prior(**kwargs):
        seen.append(pytensor.config.numba__fastmath)
        return fake_prior(**kwargs)

    monkeypatch.setattr(pm, "sample", spy_sample)
    monkeypatch.setattr(pm, "sample_prior_predictive", spy_prior)
    monkeypatch.setattr(pytensor.config, "numba__fastmath", True)
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=10, chains=2))
    model.sample_prior_predictive(draws=5, random_seed=1)
    with pytest.warns(UserWarning, match="did not converge"):
        model.fit(random_seed=1)
    assert len(seen) >= 2 and not any(seen)  # mock_sample draws from the prior as well
    assert pytensor.config.numba__fastmath is True


@pytest.mark.slow
def test_draws_do_not_depend_on_cores():
    """nutpie seeds every chain's stream, so running chains in parallel changes nothing (what
    makes ``SamplerConfig.cores`` safe to leave out of the provenance)."""
    with pm.Model() as toy:
        mu = pm.Normal("mu", 0, 1, shape=3)
        sigma = pm.HalfNormal("sigma", 1)
        pm.Normal("y", mu.sum(), sigma, observed=np.random.default_rng(0).normal(size=20))
    draws = {}
    for cores in (1, 2):
        with toy:
            idata = pm.sample(
                draws=100,
                tune=100,
                chains=3,
                cores=cores,
                random_seed=3,
                nuts_sampler="nutpie",
                progressbar=False,
            )
        draws[cores] = idata["posterior"]["mu"].values
    np.testing.assert_array_equal(draws[1], draws[2])


def test_fit_attaches_provenance_and_gate(small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=20, chains=2))
    with pytest.warns(UserWarning, match="did not converge"):
        idata = model.fit(random_seed=9)
    attrs = idata.attrs
    assert attrs["model_type"] == "PlatformRiskModel"
    assert attrs["model_version"] == PlatformRiskModel.model_version
    assert attrs["random_seed"] == 9
    assert json.loads(attrs["derived_seeds"]) == derive_seeds(9)
    assert attrs["input_sha256"] == small_submission.input_sha256
    assert set(json.loads(attrs["priors"])) == set(model.priors)
    assert "pymc" in json.loads(attrs["package_versions"])
    assert json.loads(attrs["sampler_config"])["draws"] == 20
    assert attrs["converged"] == 0 and not model.convergence.passed
    assert "fit_data" in idata.children
    xr.testing.assert_identical(idata["fit_data"].to_dataset(), small_submission.data)


def test_save_load_round_trip(tmp_path, small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=15, chains=2))
    model.fit(random_seed=4)
    path = model.save(tmp_path / "posterior.nc")
    loaded = PlatformRiskModel.load(path)
    xr.testing.assert_allclose(loaded.posterior, model.posterior)
    assert loaded.submission == small_submission
    assert loaded.priors == model.priors
    assert loaded.sampler_config.to_json() == model.sampler_config.to_json()
    assert loaded.convergence.to_json() == model.convergence.to_json()
    assert [c.name for c in loaded.components] == [c.name for c in model.components]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_load_refuses_foreign_or_incompatible_files(tmp_path, small_submission, mocked_sampling):
    model = PlatformRiskModel(small_submission, sampler_config=SamplerConfig(draws=10, chains=2))
    model.fit(random_seed=4)
    model.idata.attrs["model_version"] = "999"
    model.save(tmp_path / "future.nc")
    with pytest.raises(ModelFileError, match="model version '999'"):
        PlatformRiskModel.load(tmp_path / "future.nc")
    model.idata.attrs["model_type"] = "SomethingElse"
    model.save(tmp_path / "other.nc")
    with pytest.raises(ModelFileError, match="SomethingElse"):
        PlatformRiskModel.load(tmp_path / "other.nc")
    (tmp_path / "junk.nc").write_bytes(b"not a netcdf file")
    with pytest.raises(ModelFileError, match="not a readable"):
        PlatformRiskModel.load(tmp_path / "junk.nc")
