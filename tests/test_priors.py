import json

import numpy as np
import pymc as pm
import pytest

from risklab.priors import Prior, PriorError, resolve_priors


def test_create_variable_matches_distribution():
    with pm.Model(coords={"category": ["a", "b", "c"]}) as model:
        var = Prior("Normal", mu=1.5, sigma=0.1, dims="category").create_variable("x")
    assert model.named_vars_to_dims["x"] == ("category",)
    draws = pm.draw(var, draws=4000, random_seed=1)
    assert draws.shape == (4000, 3)
    np.testing.assert_allclose(draws.mean(), 1.5, atol=0.01)
    np.testing.assert_allclose(draws.std(), 0.1, atol=0.01)


def test_nested_non_centred_prior_creates_hierarchy():
    spec = Prior(
        "Normal", mu=Prior("Normal", mu=0, sigma=1), sigma=Prior("HalfNormal", sigma=1),
        dims="category", centered=False,
    )  # fmt: skip
    with pm.Model(coords={"category": ["a", "b"]}) as model:
        spec.create_variable("alpha")
    names = set(model.named_vars)
    assert {"alpha", "alpha_mu", "alpha_sigma", "alpha_offset"} <= names
    assert "alpha_offset" in {v.name for v in model.free_RVs}
    assert "alpha" in {v.name for v in model.deterministics}


def test_transform_applies_function():
    with pm.Model():
        var = Prior("Normal", mu=0, sigma=1, transform="sigmoid").create_variable("h")
    draws = pm.draw(var, draws=500, random_seed=2)
    assert ((draws > 0) & (draws < 1)).all()


def test_round_trip_through_json():
    spec = Prior("Beta", alpha=np.float64(2.0), beta=[1.0, 2.0], dims=("category",))
    text = json.dumps(spec.to_dict())
    assert Prior.from_dict(json.loads(text)) == spec
    nested = Prior("Normal", mu=Prior("Normal", mu=-4.6, sigma=1), sigma=2, centered=False)
    assert Prior.from_dict(nested.to_dict()) == nested
    assert repr(nested).startswith("Prior('Normal', mu=Prior('Normal'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((("NotADistribution",), {}), "unknown PyMC distribution"),
        ((("Model",), {}), "unknown PyMC distribution"),  # a PyMC class, not a distribution
        ((("Normal",), {"transform": "nope"}), "unknown transform"),
        ((("Beta",), {"alpha": 1, "beta": 1, "centered": False}), "non-centred"),
    ],
)
def test_invalid_priors_are_refused(args, message):
    positional, kwargs = args
    with pytest.raises(PriorError, match=message):
        Prior(*positional, **kwargs)


def test_resolve_priors_overrides_by_name_and_rejects_unknown():
    defaults = {"a": Prior("Normal", mu=0, sigma=1), "b": Prior("HalfNormal", sigma=1)}
    resolved = resolve_priors(defaults, {"b": {"dist": "HalfNormal", "kwargs": {"sigma": 3}}})
    assert resolved["b"] == Prior("HalfNormal", sigma=3)
    assert resolved["a"] is defaults["a"]
    with pytest.raises(PriorError, match=r"unknown prior 'c'.*a, b"):
        resolve_priors(defaults, {"c": Prior("Normal", mu=0, sigma=1)})
    with pytest.raises(PriorError, match="must be a Prior"):
        resolve_priors(defaults, {"a": 3.0})


def test_sample_prior_outside_a_model():
    draws = Prior("HalfNormal", sigma=2.0, dims="category").sample_prior(2000, random_seed=3)
    assert draws.shape == (2000,)
    np.testing.assert_allclose(draws.mean(), 2.0 * np.sqrt(2 / np.pi), rtol=0.05)
