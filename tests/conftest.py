"""Shared fixtures: small simulated marketplaces and mocked sampling for the fast suite."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pymc as pm
import pytest
from pymc.testing import mock_sample

from risklab.data.synthetic import simulate_marketplace

SMALL_CATEGORIES = ("medicines", "toys", "cosmetics", "jewellery")


def small_marketplace(seed: int = 7, **kwargs):
    """A small simulated marketplace: 4 categories × 6 months, audits and planted listings."""
    args = dict(
        categories=SMALL_CATEGORIES,
        n_periods=6,
        total_listings=2e6,
        audited_categories=["medicines"],
        purposive={"toys": 60},
        planted_categories=["toys", "cosmetics"],
    )
    args.update(kwargs)
    return simulate_marketplace(seed=seed, **args)


@pytest.fixture
def small_sim():
    return small_marketplace()


@pytest.fixture
def small_submission(small_sim):
    return small_sim.to_submission()


def _no_divergences(size):
    return np.zeros(size, dtype=bool)


@pytest.fixture
def mocked_sampling(monkeypatch):
    """Replace ``pm.sample`` by prior draws (``pymc.testing.mock_sample``): no MCMC, no compile."""
    fake = partial(mock_sample, sample_stats={"diverging": _no_divergences})
    monkeypatch.setattr(pm, "sample", fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
