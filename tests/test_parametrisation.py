"""Partially centred normals: same distribution whatever the split, chosen from the data."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from risklab.models import PlatformRiskModel
from risklab.models.components._parametrisation import (
    centred_where,
    partially_centred_normal,
    prior_scale,
)
from risklab.priors import Prior
from tests.conftest import small_marketplace


@pytest.mark.parametrize("pattern", ["all", "none", "mixed"])
def test_assembled_variable_has_the_stated_distribution(pattern):
    mask = {"all": np.ones((3, 4), bool), "none": np.zeros((3, 4), bool)}.get(
        pattern, np.arange(12).reshape(3, 4) % 3 == 0
    )
    mu = np.arange(12.0).reshape(3, 4)
    with pm.Model(coords={"a": list("xyz"), "b": list("pqrs")}) as model:
        sigma = pm.HalfNormal("sigma", 1.0)
        x = partially_centred_normal("x", mu, sigma, mask, dims=("a", "b"))
    draws_x, draws_s = pm.draw([x, sigma], draws=20_000, random_seed=1)
    z = (draws_x - mu) / draws_s[:, None, None]
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.03)
    free = {v.name for v in model.free_RVs}
    assert ("x_centred" in free) == mask.any()
    assert ("x_offset" in free) == (~mask).any()
    assert model.named_vars_to_dims["x"] == ("a", "b")


def test_log_density_matches_the_centred_model_up_to_the_jacobian():
    mu, sigma, value = 0.3, 0.5, np.array([0.1, -0.4, 1.2])
    with pm.Model(coords={"i": ["0", "1", "2"]}) as centred:
        partially_centred_normal("x", mu, sigma, np.ones(3, bool), dims=("i",))
    with pm.Model(coords={"i": ["0", "1", "2"]}) as offset:
        partially_centred_normal("x", mu, sigma, np.zeros(3, bool), dims=("i",))
    lp_c = centred.compile_logp()({"x_centred": value})
    lp_o = offset.compile_logp()({"x_offset": (value - mu) / sigma})
    # Same density of x: p(x) = p(z) / σ per element.
    np.testing.assert_allclose(lp_c, lp_o - 3 * np.log(sigma))


def test_rule_compares_information_with_prior_precision():
    # Centred when the data's sd (1/sqrt(information)) is at most half the prior spread.
    assert centred_where([63, 64, 65], 0.25).tolist() == [False, True, True]
    assert prior_scale(Prior("HalfNormal", sigma=0.3), 1.0) == 0.3
    assert prior_scale(Prior("Gamma", alpha=2.0, beta=10.0), 1.0) == pytest.approx(0.2)
    assert prior_scale(Prior("Normal", mu=0, sigma=1), 0.7) == 0.7


def test_data_poor_submissions_are_sampled_non_centred():
    rich = PlatformRiskModel(small_marketplace(total_listings=2e8).to_submission()).build()
    poor = PlatformRiskModel(small_marketplace(total_listings=2e3).to_submission()).build()
    rich_free = {v.name for v in rich.free_RVs}
    assert "log_detected_rate_offset" not in rich_free
    assert "log_detected_rate_offset" in {v.name for v in poor.free_RVs}


def test_channel_ratios_are_centred_only_where_the_data_are_rich():
    rich = PlatformRiskModel(small_marketplace(total_listings=2e10).to_submission()).build()
    poor = PlatformRiskModel(small_marketplace(total_listings=2e3).to_submission()).build()
    rich_free = {v.name for v in rich.free_RVs}
    poor_free = {v.name for v in poor.free_RVs}
    assert "channel_log_ratio_centred" in rich_free
    assert "channel_log_ratio_offset" not in rich_free
    assert "channel_log_ratio_offset" in poor_free
    assert "channel_log_ratio_centred" not in poor_free
    # Review efficiency is non-centred at any size (weakly identified per category).
    assert "efficiency_log_offset" in rich_free and "efficiency_log_offset" in poor_free
