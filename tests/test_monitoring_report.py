"""Monitoring report and figures (risklab.report.monitoring, risklab.plotting.monitoring).

One small MonitoringModel fitted with mocked sampling (prior draws, no MCMC); KPI and early-warning
inputs are hand-built tables of the spec's columns.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import re
import warnings
from collections import Counter
from functools import partial
from types import SimpleNamespace

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure as MplFigure
from pymc.testing import mock_sample

from risklab.models import SamplerConfig
from risklab.monitoring import Commitment, MonitoringModel, Target, monitor
from risklab.plotting.monitoring import (
    STATUS_COLORS,
    plot_commitment_status,
    plot_commitment_trend,
    plot_kpis,
)
from risklab.report import Figure, pct
from risklab.report.monitoring import (
    KPI_FIGURE,
    STATUS_FIGURE,
    build_monitoring_report,
    commitment_convergence,
    monitoring_report,
    prior_driven,
    trend_figure_name,
)
from risklab.report.sections import PNG_SIGNATURE
from tests.conftest import small_marketplace

PERIODS = [f"2024-{m:02d}" for m in range(1, 13)]
COMMITMENTS = [
    Commitment("links", "2024-07", "hidden_share", target=Target(0.2)),
    # jewellery has neither audits nor planted listings: identified by detections only.
    Commitment("prev", "2024-05", "prevalence", categories=("jewellery",)),
    Commitment("toys prevalence", "2024-09", "prevalence", ("toys",), Target(0.01, "2024-11")),
]


def _no_divergences(size):
    return np.zeros(size, dtype=bool)


@pytest.fixture(scope="module")
def fitted():
    sim = small_marketplace(seed=3, n_periods=12, evidence_periods=list(range(12)))
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(pm, "sample", partial(mock_sample, sample_stats={"diverging": _no_divergences}))
        model = MonitoringModel(
            sim.to_submission(), COMMITMENTS, sampler_config=SamplerConfig(draws=30, chains=2)
        )
        model.fit(random_seed=3)
    return model


@pytest.fixture(scope="module")
def result(fitted):
    return monitor(fitted)


@pytest.fixture
def converged(fitted, monkeypatch):
    """The same fit, marked as having passed the convergence gate."""
    passed = dataclasses.replace(fitted.convergence, passed=True, problems=[])
    monkeypatch.setattr(fitted, "convergence", passed)
    return fitted


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _kpi_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kpi": ["prevalence", "proactive_control_rate", "hidden_share"],
            "period": ["", "2024-12", ""],
            "category": ["toys", "", ""],
            "reported": [0.0012, 0.93, 0.10],
            "implied_median": [0.02, 0.55, 0.12],
            "implied_low": [0.01, 0.35, 0.05],
            "implied_high": [0.04, 0.70, 0.30],
            "p_implied_below_reported": [0.0, 1.0, 0.4],
            "verdict": ["reported below the model", "reported above the model", "consistent"],
            "flatters": [True, True, False],
        }
    )


def _warning():
    nan = float("nan")
    table = pd.DataFrame(
        {
            "commitment": ["links", "prev", "toys prevalence"],
            "quantity": ["hidden_share", "prevalence", "prevalence"],
            "period": ["2025-01"] * 3,
            "p_met_before": [0.81, nan, 0.6],
            "p_met_after": [0.22, nan, 0.58],
            "p_improved_after": [0.3, 0.5, 0.7],
            "p_consistent_if_met": [0.012, nan, 0.4],
            "weights_ess": [350.0] * 3,
            "flag": ["deterioration", "no target", "on track"],
            "message": ["links: P(met) fell.", "prev: no target.", "toys prevalence: fine."],
        }
    )
    figures = pd.DataFrame(
        {
            "commitment": ["links", "links"],
            "source": ["detections", "planted"],
            "category": ["toys", "cosmetics"],
            "period": ["2025-01", "2025-01"],
            "channel": ["proactive", ""],
            "observed": [17, 4],
            "predicted_median": [61.0, 5.0],
            "predicted_low": [40.0, 2.0],
            "predicted_high": [88.0, 9.0],
            "p_value": [0.0031, 0.62],
            "flagged": [True, False],
        }
    )
    return SimpleNamespace(table=table, figures=figures, new_periods=["2025-01"])


def _section(markdown: str, title: str) -> str:
    """The Markdown body of the section titled ``title``."""
    part = markdown.split(f"## {title}\n", 1)[1]
    return part.split("\n## ", 1)[0]


# ------------------------------------------------------------------------------ figures
def test_trend_figure_draws_value_counterfactual_dates_and_target(result):
    ax = plot_commitment_trend(result, "toys prevalence")
    traj = result.trajectory[result.trajectory["commitment"] == "toys prevalence"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    value = next(v for k, v in lines.items() if k.startswith("prevalence of illegal"))
    np.testing.assert_allclose(value.get_ydata(), traj["value_median"].to_numpy())
    cf = next(v for k, v in lines.items() if k.startswith("without this commitment"))
    assert cf.get_linestyle() == "--"
    t0 = PERIODS.index("2024-09")
    np.testing.assert_allclose(cf.get_xdata(), np.arange(t0 - 1, 12))
    np.testing.assert_allclose(cf.get_ydata(), traj["counterfactual_median"].to_numpy()[t0 - 1 :])
    # Vertical lines at the effective dates of both prevalence commitments, none for 'links'.
    vertical = sorted(
        line.get_xdata()[0]
        for line in ax.get_lines()
        if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2
    )
    assert vertical == [PERIODS.index("2024-05"), t0]
    texts = [t.get_text() for t in ax.texts]
    assert "prev (2024-05)" in texts and "toys prevalence (2024-09)" in texts
    # Target: horizontal line at 1% and a star at 2024-11.
    star = next(v for k, v in lines.items() if k.startswith("target"))
    assert star.get_xdata()[0] == PERIODS.index("2024-11") and star.get_ydata()[0] == 0.01
    horizontal = [line for line in ax.get_lines() if list(line.get_ydata()) == [0.01, 0.01]]
    assert horizontal
    # Shares as percent.
    assert ax.yaxis.get_major_formatter()(0.25, 0).startswith("25")
    assert "UNCONVERGED" in ax.get_title()
    assert isinstance(ax.figure, MplFigure)


def test_trend_figure_rejects_unknown_commitment(result):
    with pytest.raises(ValueError, match="no commitment 'nope'"):
        plot_commitment_trend(result, "nope")


def test_status_figure_bars_are_the_probabilities(result):
    _fig, ax = plt.subplots()
    out = plot_commitment_status(result, ax=ax)
    assert out is ax
    widths = [patch.get_width() for patch in ax.patches]
    table = result.table
    expected = np.where(np.isfinite(table["target"]), table["p_target_met"], table["p_improved"])
    np.testing.assert_allclose(widths, expected)
    colors = [patch.get_facecolor() for patch in ax.patches]
    for color, status in zip(colors, table["status"], strict=True):
        assert np.allclose(color, to_rgba(STATUS_COLORS[status]))
    labels = [t.get_text() for t in ax.texts]
    for status in table["status"]:
        assert any(label.startswith(status) for label in labels)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table["commitment"])


def test_kpi_figure_places_reported_values_and_intervals():
    table = _kpi_table()
    ax = plot_kpis(table)
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    np.testing.assert_allclose([d.get_xdata()[0] for d in diamonds], table["reported"])
    colors = [to_rgba(d.get_color()) for d in diamonds]
    assert colors == [to_rgba("#c82333")] * 2 + [to_rgba("black")]  # flatters, flatters, fine
    segments = ax.collections[0].get_segments() + [
        s for c in ax.collections[1:] for s in c.get_segments()
    ]
    lows = sorted(seg[0][0] for seg in segments)
    assert lows == sorted(table["implied_low"])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "prevalence · toys · whole window"
    with pytest.raises(ValueError, match="no rows"):
        plot_kpis(table.iloc[:0])


def test_trend_figure_names_are_valid_and_unique():
    names = [
        trend_figure_name(1, "third-party link controls"),
        trend_figure_name(2, "=cmd|x"),
        trend_figure_name(3, "Überprüfung"),
        trend_figure_name(4, "???"),
    ]
    assert names[0] == "monitoring_trend_01_third_party_link_controls.png"
    assert len(set(names)) == len(names)
    for name in names:  # Figure validates the name
        Figure(name=name, alt="x", caption="", png=PNG_SIGNATURE)


# ------------------------------------------------------------------------------ report
def test_report_names_every_commitment_with_status_dates_and_numbers(fitted, result):
    html, markdown, _ = build_monitoring_report(fitted, result)
    status = _section(markdown, "Status of the commitments")
    for r in result.table.itertuples(index=False):
        row = next(line for line in status.splitlines() if line.startswith(f"| {r.commitment} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == r.effective and cells[5] == r.target_by
        assert cells[6].startswith(pct(r.value_median))
        assert cells[7].startswith(pct(r.counterfactual_median))
        assert cells[11] == f"**{r.status}**"
        assert cells[9] == f"{r.p_improved:.2f}"
        section = _section(markdown, f"Commitment {result.table.index[0] + 1}: links")
        assert "links" in section
        assert r.commitment in html and r.status in html and r.effective in html
    for i, c in enumerate(result.commitments, start=1):
        body = _section(markdown, f"Commitment {i}: {c.name}")
        assert f"In force from {c.effective}" in body
        assert trend_figure_name(i, c.name) in body
    toys = _section(markdown, "Commitment 3: toys prevalence")
    assert "The target of 1.00% by 2024-11" in toys
    # Per-category table of the hidden-share commitment: one row per category.
    links = _section(markdown, "Commitment 1: links")
    for category in ("medicines", "toys", "cosmetics", "jewellery"):
        assert f"| {category} |" in links


def test_figures_render_as_png_and_are_embedded(fitted, result):
    html, markdown, figures = build_monitoring_report(fitted, result)
    expected = {STATUS_FIGURE, "convergence_rank.png"} | {
        trend_figure_name(i, c.name) for i, c in enumerate(result.commitments, start=1)
    }
    assert set(figures) == expected
    for name, fig in figures.items():
        assert fig.png.startswith(PNG_SIGNATURE) and len(fig.png) > 2000
        assert f"({name})" in markdown
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert "http://" not in html and "https://" not in html


def _numbers(text: str) -> Counter:
    return Counter(re.findall(r"[-+±]?\d+(?:\.\d+)?(?:%| pp)", text))


def test_markdown_twin_has_the_same_numbers(fitted, result):
    html, markdown, _ = build_monitoring_report(
        fitted, result, kpis=_kpi_table(), warning=_warning()
    )
    text = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    alts = " ".join(re.findall(r'alt="([^"]*)"', text))  # Markdown carries alt text as ![...]
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", text) + " " + alts)
    md_numbers, html_numbers = _numbers(markdown), _numbers(text)
    assert md_numbers == html_numbers
    assert sum(md_numbers.values()) > 40


def test_unconverged_fit_is_flagged_everywhere(fitted, result):
    assert not result.converged
    html, markdown, _ = build_monitoring_report(fitted, result)
    assert "<div class='unconverged' role='alert'>UNCONVERGED" in html
    assert "- **UNCONVERGED" in markdown
    assert "**UNCONVERGED FIT" in _section(markdown, "Headline")
    assert "FAILED the convergence gate" in _section(markdown, "Diagnostics")


def test_converged_fit_has_no_unconverged_banner(converged):
    result = monitor(converged)
    assert result.converged
    html, markdown, _ = build_monitoring_report(converged, result)
    assert "UNCONVERGED" not in html and "UNCONVERGED" not in markdown
    assert "FAILED the convergence gate" not in markdown


def test_prior_driven_commitment_is_said_plainly(fitted, result):
    ident = result.table.set_index("commitment")["identified_by"]
    assert prior_driven(ident["prev"]) and not prior_driven(ident["links"])
    _, markdown, _ = build_monitoring_report(fitted, result)
    assert "**The change is prior-driven:**" in _section(markdown, "Commitment 2: prev")
    assert "prior-driven" not in _section(markdown, "Commitment 1: links")
    assert "Identified by planted listings before and after" in markdown
    assert "(prev)" in _section(markdown, "Headline")


def test_headline_counts_the_statuses(fitted, result):
    table = result.table.copy()
    table["status"] = ["not met", "likely improved", "likely not met"]
    table["p_target_met"] = [0.01, np.nan, 0.2]
    changed = dataclasses.replace(result, table=table)
    _, markdown, _ = build_monitoring_report(fitted, changed)
    headline = _section(markdown, "Headline")
    assert (
        "Of the 2 with a target: 0 met, 0 likely met, 0 uncertain, 1 likely not met and 1 not met"
        in headline
    )
    assert "1 likely improved" in headline
    assert "Likely missed: links (P(target met) 0.01); toys prevalence (P(target met) 0.20)" in (
        headline
    )
    assert "posterior probabilit" in headline


def test_kpi_and_early_warning_sections(fitted, result):
    _, plain, plain_figures = build_monitoring_report(fitted, result)
    assert "## Reported KPIs" not in plain and "## Early warning" not in plain
    assert KPI_FIGURE not in plain_figures
    _, markdown, figures = build_monitoring_report(
        fitted, result, kpis=_kpi_table(), warning=_warning()
    )
    assert KPI_FIGURE in figures
    kpis = _section(markdown, "Reported KPIs against the model")
    assert "2 of 3 reported figures flatter the platform" in kpis
    assert "| prevalence | toys | whole window | 0.120% | 2.00% (1.00% to 4.00%) |" in kpis
    early = _section(markdown, "Early warning: the new period")
    assert "| links | 2025-01 | 0.81 | 0.22 | 0.30 | 0.01 | **deterioration** |" in early
    assert "- links: P(met) fell." in early
    flagged = early.split("are flagged", 1)[1]
    assert "| links | detections | toys | 2025-01 | proactive | 17 | 61 (40 to 88) | 0.003 |" in (
        flagged
    )
    assert "cosmetics" not in flagged  # the figure that was not flagged
    headline = _section(markdown, "Headline")
    assert "Flagged: links (deterioration)" in headline
    assert "2 of 3 lie outside" in headline


def test_provenance_carries_the_commitments(fitted, result):
    _, markdown, _ = build_monitoring_report(fitted, result)
    provenance = _section(markdown, "Provenance")
    assert "- toys prevalence: prevalence from 2024-09 in toys; target 0.01 by 2024-11" in (
        provenance
    )
    assert '"commitments": [' in provenance and '"name": "links"' in provenance
    assert "MonitoringModel" in provenance


def test_commitment_convergence_matches_arviz(fitted, result):
    table = commitment_convergence(fitted, result).set_index("commitment")
    post = fitted.posterior
    level = post["commitment_level"].sel(commitment="links").to_dataset(name="x")
    rhat = float(az.rhat(level, sample_dims=["chain", "draw"])["x"])
    assert table.loc["links", "max_rhat"] >= rhat - 1e-12
    value = result.draws["value"].sel(commitment="links", period="2024-12").to_dataset(name="x")
    bulk = float(az.ess(value, sample_dims=["chain", "draw"], method="bulk")["x"])
    assert table.loc["links", "min_ess_bulk"] <= bulk + 1e-9
    assert table["passes"].tolist() == [False, False, False]  # 60 draws < the gate's ESS


def test_report_rejects_mismatched_prob_or_result(fitted, result):
    with pytest.raises(ValueError, match="differs"):
        monitoring_report(fitted, result, prob=0.8)
    other = dataclasses.replace(result, commitments=result.commitments[:1])
    with pytest.raises(ValueError, match="different commitments"):
        monitoring_report(fitted, other)
