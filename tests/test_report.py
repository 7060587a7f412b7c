"""The assessment report: sections, headline against the table, self-contained HTML, figures.

Fits use mocked sampling (prior draws, no MCMC); the pure pieces (headline, Markdown subset,
capacity curves, prior vs. posterior) are checked on hand-made inputs with known answers.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from dataclasses import replace
from functools import partial

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from pymc.testing import mock_sample

from risklab.assess import ENFORCEMENT_COLUMNS, Findings, assess
from risklab.counterfactual import Levers, evaluate_arrays
from risklab.models import PlatformRiskModel, SamplerConfig
from risklab.outputs import OPTIONAL_OUTPUT_FILES, OUTPUT_FILES, write_assessment
from risklab.plotting.capacity import capacity_curves, plot_capacity_curves
from risklab.plotting.report_figures import plot_band_probabilities, plot_prior_posterior
from risklab.report import (
    SECTION_ORDER,
    Figure,
    Report,
    Section,
    build_report,
    headline_lines,
    markdown_to_html,
    render_html,
    render_markdown,
)
from risklab.report.content import _enforcement_section
from risklab.report.diagnostics import convergence_table
from risklab.report.headline import category_table, contradicted, headline_section, table_section
from risklab.report.identification import prior_posterior_table
from risklab.report.sections import PNG_SIGNATURE, pct
from tests.conftest import small_marketplace
from tests.states import truth_state

LABELS = ["very unlikely", "unlikely", "possible", "likely", "almost certain"]


def _no_divergences(size):
    return np.zeros(size, dtype=bool)


def mocked_fit(*, traders: bool, seed: int = 7) -> PlatformRiskModel:
    """A model 'fitted' by prior draws (pymc.testing.mock_sample): no MCMC, no compilation."""
    sub = small_marketplace(seed=seed, traders=traders).to_submission()
    model = PlatformRiskModel(sub, sampler_config=SamplerConfig(draws=100, chains=2))
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(pm, "sample", partial(mock_sample, sample_stats={"diverging": _no_divergences}))
        model.fit(random_seed=3)
    return model


def _extra_sections() -> list[Section]:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    attribution = Section(
        "attribution",
        "Attribution",
        "Body with a table:\n\n| a | b |\n|---|---:|\n| x | 1 |",
        [Figure.from_matplotlib(fig, name="attribution.png", alt="a line", caption="c")],
    )
    return [Section("custom", "Something else", "text"), attribution]


@pytest.fixture(scope="module")
def fitted_traders(tmp_path_factory):
    """One mocked fit with trader data, its findings, its report (with two extra sections,
    prior drawn as the CLI does) and the files written from it."""
    model = mocked_fit(traders=True)
    findings = assess(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = build_report(findings, model, extra_sections=_extra_sections())
    out = tmp_path_factory.mktemp("report") / "out"
    written = write_assessment(model, findings, out, report=report)
    return model, findings, report, out, written


# ---------------------------------------------------------------- helpers on hand-made tables


def _table(p_above, claimed, *, n_extra_cols=True) -> pd.DataFrame:
    n = len(p_above)
    rng = np.random.default_rng(0)
    med = rng.uniform(0.002, 0.01, n)
    table = pd.DataFrame(
        {
            "category": [f"cat{i}" for i in range(n)],
            "prevalence_median": med,
            "prevalence_low": med * 0.8,
            "prevalence_high": med * 1.2,
            "claimed_prevalence": med / 2,
            "claimed_band": claimed,
            "underestimation_median": np.arange(n, dtype=float) + 1.5,
            "underestimation_low": np.arange(n, dtype=float) + 1.0,
            "underestimation_high": np.arange(n, dtype=float) + 2.0,
            "p_underestimated": np.linspace(0.5, 1.0, n),
            "p_band_above_claimed": p_above,
            "most_likely_band": ["likely"] * n,
            "identified_by": ["audit"] * n,
            "converged": True,
        }
    )
    for label in LABELS:
        table[f"p_band:{label}"] = 1.0 / len(LABELS)
    return table


def _findings(table: pd.DataFrame, *, passed: bool = True) -> Findings:
    from risklab.models.diagnostics import ConvergenceReport

    conv = ConvergenceReport(
        passed=passed,
        max_rhat=1.0,
        min_ess_bulk=1e3,
        min_ess_tail=1e3,
        divergences=0,
        chains=4,
        draws=1000,
        problems=[] if passed else ["R-hat 1.2 > 1.01 (worst: x)"],
    )
    return Findings(table=table, draws=xr.Dataset(), warnings=[], convergence=conv)


# ---------------------------------------------------------------- headline


def test_headline_counts_and_names_exactly_the_contradicted_categories():
    p_above = [0.99, 0.95, 0.949, 0.2, 0.999, 0.5, 0.0, 0.97, 0.1, 0.3]
    table = _table(p_above, ["very unlikely"] * 10)
    line = headline_lines(_findings(table))[0]
    expected = {"cat0", "cat1", "cat4", "cat7"}  # P ≥ 0.95; 0.949 is not enough
    assert line.startswith("In 4 of 10 categories the platform's ‘very unlikely’ rating is")
    named = set(re.findall(r"\b(cat\d+) \(", line))
    assert named == expected
    assert set(contradicted(table)["category"]) == expected
    # each named category carries its own numbers from the table
    row = table.set_index("category").loc["cat7"]
    assert f"cat7 (most likely ‘likely’; true prevalence {pct(row.prevalence_median)}" in line


def test_headline_with_mixed_claimed_bands_and_with_none_contradicted():
    table = _table([0.99, 0.98, 0.1], ["very unlikely", "unlikely", "likely"])
    line = headline_lines(_findings(table))[0]
    assert line.startswith("In 2 of 3 categories the platform's own risk rating is contradicted")
    assert "rated ‘unlikely’" in line and "cat2" not in line
    none = headline_lines(_findings(_table([0.9, 0.1, 0.6], ["likely"] * 3)))[0]
    assert none.startswith("In none of the 3 categories")
    assert "In 2 (cat0, cat2) a higher band" in none


def test_headline_flags_unconverged_and_prior_driven():
    table = _table([0.99, 0.1], ["unlikely"] * 2)
    table.loc[1, "identified_by"] = "prior"
    lines = headline_lines(_findings(table, passed=False))
    assert lines[0].startswith("**UNCONVERGED")
    assert any("no evidence that identifies prevalence (cat1)" in line for line in lines)
    assert not headline_lines(_findings(table))[0].startswith("**UNCONVERGED")


def test_headline_of_a_fit_matches_its_findings_table(fitted_traders):
    _, findings, report, _, _ = fitted_traders
    body = report.section("headline").body
    table = findings.table
    n_contra = int((table["p_band_above_claimed"] >= 0.95).sum())
    n_under = int((table["p_underestimated"] >= 0.95).sum())
    if n_contra:
        assert f"In {n_contra} of {len(table)} categories the platform's" in body
    else:
        assert f"In none of the {len(table)} categories is the platform's" in body
    under = f"In {n_under} of {len(table)}" if n_under else f"In none of the {len(table)}"
    assert under + " categories the platform's claimed prevalence is understated" in body
    worst = table.loc[table["underestimation_median"].idxmax()]
    assert f"Largest understatement: {worst.category}" in body
    assert f"{worst.underestimation_median:.1f}× the claim" in body
    assert "Repeat offenders" in body and pct(table["enforcement_median"].iloc[0], 2) in body


# ---------------------------------------------------------------- sections and rendering


def test_every_section_is_present_in_order(fitted_traders):
    _, _, report, _, _ = fitted_traders
    keys = [s.key for s in report.sections]
    expected = [
        "headline",
        "categories",
        "bands",
        "prevalence",
        "capacity",
        "attribution",
        "enforcement",
        "identification",
        "diagnostics",
        "custom",
        "provenance",
    ]
    assert keys == expected
    md = render_markdown(report)
    html = render_html(report)
    positions = [md.index(f"## {s.title}\n") for s in report.sections]
    assert positions == sorted(positions)
    for s in report.sections:
        assert f"<section id='{s.key}'>" in html
    # the per-category table has one row per category
    for category in fitted_traders[1].table["category"]:
        assert f"| {category} |" in report.section("categories").body


def test_enforcement_section_only_with_trader_data(fitted_traders):
    _, findings, report, _, _ = fitted_traders
    assert "enforcement.png" in [f.name for f in report.section("enforcement").figures]
    names = (
        "enforcement",
        "offending_traders",
        "undetected_traders",
        "non_enforcement_share",
        "prevalence_if_enforced",
    )
    table = findings.table.copy()
    for column in ENFORCEMENT_COLUMNS:
        table[column] = np.nan
    without = Findings(table, findings.draws.drop_vars(names), convergence=findings.convergence)
    assert _enforcement_section(without) is None
    assert not any("Repeat offenders" in line for line in headline_lines(without))


def _verdicts(report):
    body = report.section("identification").body
    rows = [r for r in body.splitlines() if r.startswith("| ") and "verdict" not in r]
    return [r.rstrip(" |").rsplit("| ", 1)[-1].strip() for r in rows]


def test_prior_vs_posterior_of_a_mocked_fit_is_prior_driven(fitted_traders):
    # mocked sampling draws the 'posterior' from the prior, so the data narrowed nothing
    _, findings, report, _, _ = fitted_traders
    verdicts = _verdicts(report)
    assert len(verdicts) == len(findings.table)
    assert set(verdicts) == {"prior-driven"}
    assert "barely narrower" in report.section("identification").body


def test_html_is_self_contained_and_accessible(fitted_traders):
    _, _, report, _, _ = fitted_traders
    html = render_html(report)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    for attr in re.findall(r"(?:src|href)=['\"]([^'\"]*)['\"]", html):
        assert attr.startswith(("data:image/png;base64,", "#")), attr
    images = re.findall(r"<img alt=\"([^\"]*)\" src=\"data:image/png;base64,([^\"]+)\">", html)
    assert len(images) == len(report.figures) == html.count("<img")
    for (alt, data), fig in zip(images, report.figures, strict=True):
        assert alt.strip()
        png = base64.b64decode(data)
        assert png == fig.png and png.startswith(PNG_SIGNATURE)
        pixels = mpimg.imread(io.BytesIO(png), format="png")  # decodes fully
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0.02
    assert html.count("<table>") == html.count("<thead>") >= 4
    assert "@media print" in html


def test_unconverged_banner_follows_the_gate(fitted_traders):
    _, findings, report, _, _ = fitted_traders
    assert not findings.converged  # prior draws cannot pass the gate
    html = render_html(report)
    banner = html.index("class='unconverged'")
    assert banner < html.index("<section id='headline'>")
    md = render_markdown(report)
    assert "**UNCONVERGED" in md.split("## Headline findings")[0]
    assert report.warnings == findings.warnings  # the banner is the gate's own warning
    passed = replace(findings.convergence, passed=True, problems=[])
    ok = Findings(
        findings.table.assign(converged=True),
        findings.draws,
        warnings=[w for w in findings.warnings if not w.startswith("UNCONVERGED")],
        convergence=passed,
        prob=findings.prob,
    )
    ok_report = Report(report.title, list(ok.warnings), [headline_section(ok), table_section(ok)])
    ok_html = render_html(ok_report)
    assert "class='unconverged'" not in ok_html and "UNCONVERGED" not in ok_html
    assert list(category_table(ok)["category"]) == list(findings.table["category"])


def test_files_written_beside_the_report(fitted_traders):
    _, _, report, out, written = fitted_traders
    names = {p.name for p in written}
    assert set(OUTPUT_FILES) | {"enforcement.png", "attribution.png"} == names
    md = (out / "report.md").read_text()
    order = [
        md.index(f"## {t}\n")
        for t in (
            "Review capacity and detection",
            "Attribution",
            "Repeat offenders and enforcement",
            "Something else",
            "Provenance",
        )
    ]
    assert order == sorted(order)
    # every figure the Markdown references exists beside it, with the bytes the HTML embeds
    html = (out / "report.html").read_text()
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(referenced) == sorted(f.name for f in report.figures)
    for name in referenced:
        data = (out / name).read_bytes()
        assert base64.b64encode(data).decode() in html
    assert "<td class='num'>1</td>" in html
    assert html == render_html(report)


def test_report_rejects_duplicates_and_bad_figures():
    report = Report("t", sections=[Section("headline", "H"), Section("provenance", "P")])
    report.add(Section("sensitivity", "S"))
    assert [s.key for s in report.sections] == ["headline", "sensitivity", "provenance"]
    with pytest.raises(ValueError, match="already has a section"):
        report.add(Section("sensitivity", "again"))
    with pytest.raises(ValueError, match="not PNG"):
        Figure(name="x.png", alt="a", caption="c", png=b"GIF89a")
    with pytest.raises(ValueError, match="alt text"):
        Figure(name="x.png", alt=" ", caption="c", png=PNG_SIGNATURE)
    with pytest.raises(ValueError, match="name"):
        Figure(name="../x.png", alt="a", caption="c", png=PNG_SIGNATURE)
    assert SECTION_ORDER.index("attribution") < SECTION_ORDER.index("enforcement")


def test_markdown_subset_escapes_and_renders():
    text = (
        "A <script>alert(1)</script> & **bold** *it* `co<de>`\n\n"
        "### Sub\n\n- one\n  continued\n- two\n\n"
        '| h1 | h\\|2 |\n|---|---:|\n| a | 1.5 |\n\n```\n{"k": "<v>"}\n```'
    )
    html = markdown_to_html(text)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<code>co&lt;de&gt;</code>" in html
    assert "<h3>Sub</h3>" in html and "<li>one continued</li>" in html
    assert "<th scope='col'>h|2</th>" in html and "<td class='num'>1.5</td>" in html
    assert "<th scope='row'>a</th>" in html
    assert "<pre><code>{&quot;k&quot;: &quot;&lt;v&gt;&quot;}</code></pre>" in html
    assert "2×3 × 4" in markdown_to_html("2×3 × 4")  # a lone '*'-free × is plain text


def test_pct_never_uses_exponent_notation():
    assert pct(1.0, 2) == "100%" and pct(0.9996) == "100%"
    assert pct(0.000856) == "0.0856%" and pct(0.00523) == "0.523%" and pct(float("nan")) == "–"


# ---------------------------------------------------------------- numbers behind the figures


def test_capacity_curves_agree_with_the_lever_evaluation():
    """The curve at review multiple f is the counterfactual evaluation with hours × f."""
    sim = small_marketplace(seed=5, efficiency_log_sd=0.0, detection_ceiling=1.0, traders=True)
    state = truth_state(sim)
    # flat intensity over periods, so the listings-weighted rate is the rate at the mean
    mean_r = state.intensity.mean(axis=1, keepdims=True)
    state.review_hours = state.listings * mean_r / 1000.0
    factors = np.array([0.0, 0.5, 1.0, 2.0, 7.0])
    curves = capacity_curves(state, factors=factors)
    for j, f in enumerate(factors):
        expected = evaluate_arrays(state, Levers(review_hours_factor=f))["detection_rate"][0]
        np.testing.assert_allclose(curves["detection_median"].values[:, j], expected, atol=1e-6)
    truth = sim.truth
    reach = [1.0 - truth["hidden_share"][c] for c in state.categories]
    np.testing.assert_allclose(curves["reach_median"].values, reach, rtol=1e-9)
    np.testing.assert_allclose(curves["actual_intensity"].values, mean_r[:, 0])
    assert np.all(
        curves["detection_median"].values <= curves["reach_median"].values[:, None] + 1e-12
    )


def test_capacity_intervals_cover_the_draws():
    sim = small_marketplace(seed=5, efficiency_log_sd=0.0, detection_ceiling=1.0)
    state = truth_state(sim)
    rng = np.random.default_rng(1)
    s = 400
    state.amplitude = state.amplitude * rng.lognormal(0, 0.2, (s, 1))
    state.efficiency = state.efficiency * rng.lognormal(0, 0.3, (s, 1))
    state.sample_shape = (1, s)
    curves = capacity_curves(state, prob=0.8)
    low, med, high = (curves[f"detection_{q}"].values for q in ("low", "median", "high"))
    assert np.all(low <= med + 1e-12) and np.all(med <= high + 1e-12)
    assert np.all(high[:, 1:] > low[:, 1:])  # uncertainty once review is non-zero
    assert np.allclose(med[:, 0], 0.0)  # no review, no proactive detection
    axes = plot_capacity_curves(curves)
    assert len(axes) == len(state.categories)
    plt.close(axes[0].figure)


def test_prior_posterior_verdicts_follow_the_width_ratio():
    rng = np.random.default_rng(2)
    cats = ["narrow", "half", "same", "pooled"]
    prior = np.exp(rng.normal(-5, 1.0, (1, 4000, 4)))
    sd = np.array([0.2, 0.55, 0.98, 0.3])
    post = np.exp(rng.normal(-5, 1.0, (2, 2000, 4)) * sd)
    dims = ("chain", "draw", "category")
    table = prior_posterior_table(
        xr.DataArray(prior, dims=dims, coords={"category": cats}),
        xr.DataArray(post, dims=dims, coords={"category": cats}),
        prob=0.9,
        identified_by=pd.Series(["audit", "planted", "audit", "prior"], index=cats),
    )
    np.testing.assert_allclose(table["width_ratio"], sd, rtol=0.08)
    assert list(table["verdict"]) == [
        "data-driven",
        "partly data-driven",
        "prior-driven",
        "borrowed from other categories",
    ]
    same = prior_posterior_table(
        xr.DataArray(post, dims=dims, coords={"category": cats}),
        xr.DataArray(post, dims=dims, coords={"category": cats}),
        prob=0.9,
    )
    np.testing.assert_allclose(same["width_ratio"], 1.0)
    assert set(same["verdict"]) == {"prior-driven"}
    ax = plot_prior_posterior(table)
    assert len(ax.get_yticklabels()) == 4
    plt.close(ax.figure)


def test_band_chart_marks_the_claimed_band():
    table = _table([0.99, 0.1, 0.5], ["very unlikely", "likely", "possible"])
    ax = plot_band_probabilities(table)
    outlined = [p for p in ax.patches if not p.get_fill()]
    assert len(outlined) == 3
    # outline of the 'likely' claim (category 2 of 3, drawn in the middle row) starts at 3/5
    starts = sorted(round(p.get_x(), 6) for p in outlined)
    assert starts == [0.0, 0.4, 0.6]
    plt.close(ax.figure)


def test_convergence_table_reports_the_worst_headline_values(fitted_traders):
    import arviz as az

    model, findings, report, _, _ = fitted_traders
    table = convergence_table(findings, model).set_index("variable")
    rhat = az.rhat(findings.draws[["prevalence"]])["prevalence"].max()
    assert table.loc["category_prevalence", "max_rhat"] == pytest.approx(float(rhat))
    assert "efficiency" in table.index and "enforcement" in table.index
    assert not table["passes"].all()
    body = report.section("diagnostics").body
    assert "convergence FAILED" in body
    assert "convergence_rank.png" in [f.name for f in report.section("diagnostics").figures]


def test_provenance_holds_hash_seeds_versions_and_priors(fitted_traders):
    import json

    model, _, report, _, _ = fitted_traders
    body = report.section("provenance").body
    record = json.loads(body.split("```\n", 1)[1].rsplit("\n```", 1)[0])
    assert record["input_sha256"] == model.submission.input_sha256
    assert record["random_seed"] == 3
    assert set(record["priors"]) == set(model.priors)
    assert "pymc" in record["package_versions"]
    assert record["report_prior_draws"]["draws"] == 500


def test_optional_outputs_are_declared():
    assert "enforcement.png" in OPTIONAL_OUTPUT_FILES
    assert not set(OUTPUT_FILES) & set(OPTIONAL_OUTPUT_FILES)
