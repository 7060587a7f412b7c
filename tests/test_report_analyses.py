"""Analysis sections of the assessment report (attribution, consistency, scenarios)."""

from __future__ import annotations

import pytest

from risklab.assess import assess
from risklab.counterfactual import Levers
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.report import build_report, render_html, render_markdown
from risklab.report.analyses import analysis_sections, scenarios_section
from risklab.scenarios import Scenario, stress_test
from tests.conftest import small_marketplace


@pytest.fixture(scope="module")
def fitted():
    from functools import partial

    import numpy as np
    import pymc as pm
    from pymc.testing import mock_sample

    sub = small_marketplace(traders=True).to_submission()
    model = PlatformRiskModel(sub, sampler_config=SamplerConfig(draws=40, chains=2))
    fake = partial(mock_sample, sample_stats={"diverging": lambda size: np.zeros(size, bool)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pm, "sample", fake)
        model.fit(random_seed=5)
    return model


def test_sections_land_in_their_slots(fitted):
    stress = stress_test(fitted, [Scenario("double review", Levers(review_hours_factor=2.0))])
    extra = analysis_sections(fitted, stress=stress)
    assert [s.key for s in extra] == ["attribution", "consistency", "scenarios"]
    report = build_report(assess(fitted), fitted, extra_sections=extra)
    keys = [s.key for s in report.sections]
    assert keys.index("attribution") < keys.index("enforcement") < keys.index("scenarios")
    assert keys.index("consistency") < keys.index("provenance")
    md, html = render_markdown(report), render_html(report)
    for name in ("attribution.png", "scenario_undetected.png", "scenario_bands.png"):
        assert name in md
    assert "Why the claim understates prevalence" in html
    assert "double review" in md


def test_attribution_numbers_come_from_the_attribution(fitted):
    from risklab.attribution import attribute

    section = analysis_sections(fitted)[0]
    table = attribute(fitted).table
    first = table.iloc[0]
    assert f"{first['log_underestimation_median']:+.2f}" in section.body
    assert f"{first['resources_median']:+.2f}" in section.body


def test_scenario_table_lists_every_scenario(fitted):
    scenarios = [Scenario(f"s{i}", Levers(review_hours_factor=1 + i)) for i in range(3)]
    section = scenarios_section(stress_test(fitted, scenarios))
    for name in ("baseline", "s0", "s1", "s2"):
        assert f"| {name} |" in section.body
