"""Numerical edge cases: each builds a model whose log-density is finite (or is refused clearly)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from risklab.models import PlatformRiskModel
from tests.conftest import small_marketplace


def _zero_detections(sim):
    d = sim.tables["detections"]
    d.loc[d.category == "jewellery", "detected"] = 0


def _all_detected(sim):
    d = sim.tables["detections"]
    listings = sim.tables["listings"].set_index(["category", "period"])["listings"]
    mask = (d.category == "jewellery") & (d.channel == "proactive")
    d.loc[mask, "detected"] = [
        listings[(c, p)] for c, p in zip(d.category[mask], d.period[mask], strict=True)
    ]
    d.loc[(d.category == "jewellery") & (d.channel != "proactive"), "detected"] = 0


def _zero_hours_cell(sim):
    table = sim.tables["listings"]
    first = table.period == table.period.iloc[0]
    table.loc[(table.category == "jewellery") & first, "review_hours"] = 0.0


def _zero_hours_category(sim):
    table = sim.tables["listings"]
    table.loc[table.category == "jewellery", "review_hours"] = 0.0


def _audits_none_illegal(sim):
    a = sim.evidence["audits"]
    a.loc[a.design == "random", "illegal"] = 0


def _audits_all_illegal(sim):
    a = sim.evidence["audits"]
    a.loc[a.design == "random", "illegal"] = a.loc[a.design == "random", "sampled"]


CASES = {
    "zero detections in a category": (_zero_detections, {}),
    "all listings detected": (_all_detected, {}),
    "zero review hours in one cell": (_zero_hours_cell, {}),
    "zero review hours in a whole category": (_zero_hours_category, {}),
    "audits with no illegal listing": (_audits_none_illegal, {}),
    "audits with only illegal listings": (_audits_all_illegal, {}),
    "a single period": (None, {"n_periods": 1}),
    "one category": (
        None,
        {
            "categories": ("medicines",),
            "audited_categories": ["medicines"],
            "purposive": {},
            "planted_categories": [],
        },
    ),
    "tiny counts (40 listings)": (None, {"total_listings": 40}),
    "huge counts (1e10 listings)": (None, {"total_listings": 1e10}),
    "no evidence at all": (lambda sim: sim.evidence.clear(), {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_edge_case_has_finite_log_density(case):
    mutate, kwargs = CASES[case]
    sim = small_marketplace(**kwargs)
    if mutate:
        mutate(sim)
    model = PlatformRiskModel(sim.to_submission()).build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logps = model.point_logps()
    bad = {name: value for name, value in logps.items() if not np.isfinite(value)}
    assert not bad, bad
