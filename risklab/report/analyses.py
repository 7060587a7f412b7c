"""Report sections of the analyses on a fitted model: attribution, consistency, scenarios,
prior sensitivity.

Each function turns an analysis result into a :class:`~risklab.report.sections.Section` whose
key puts it at its place in :data:`~risklab.report.content.SECTION_ORDER` (``attribution``,
``scenarios``, ``sensitivity``; ``consistency`` lands before provenance). :func:`analysis_sections`
runs the analyses every assessment report carries (attribution and consistency; both are cheap:
no refit) and adds the optional ones when their results are given.
"""

from __future__ import annotations

import pandas as pd

from risklab.report.sections import Figure, Section, markdown_table, pct

__all__ = [
    "analysis_sections",
    "attribution_section",
    "consistency_section",
    "scenarios_section",
    "sensitivity_section",
]

_COMPONENT_LABELS = {
    "resources": "limited resources",
    "evasion": "evasion (hidden share)",
    "non_enforcement": "non-enforcement",
    "residual": "residual detection gap",
    "reporting": "reporting (claim vs. detections)",
}


def _fmt(x: float, digits: int = 2) -> str:
    return "–" if x != x else f"{x:+.{digits}f}"


def attribution_section(attribution) -> Section:
    """Why the claim understates prevalence: the Shapley split of log U, with its waterfall."""
    from risklab.plotting.attribution import plot_attribution_grid

    table = attribution.table
    components = [c for c in attribution.components if f"{c}_median" in table]
    rows = []
    for _, row in pd.concat([table, attribution.platform], ignore_index=True).iterrows():
        out = {"category": row["category"], "log U": _fmt(row["log_underestimation_median"])}
        for comp in components:
            out[_COMPONENT_LABELS.get(comp, comp)] = (
                f"{_fmt(row[f'{comp}_median'])} "
                f"({_fmt(row[f'{comp}_low'])} to {_fmt(row[f'{comp}_high'])})"
            )
        rows.append(out)
    platform = attribution.platform.iloc[0]
    largest = max(
        (c for c in components if c not in ("reporting", "residual")),
        key=lambda c: platform[f"{c}_median"],
        default=None,
    )
    lead = ""
    if largest is not None and platform[f"{largest}_median"] > 0:
        lead = (
            f"Platform-wide, the largest identified driver of the understatement is "
            f"**{_COMPONENT_LABELS[largest]}** ({_fmt(platform[f'{largest}_median'])} of a log U "
            f"of {_fmt(platform['log_underestimation_median'])}).\n\n"
        )
    body = (
        lead + "The underestimation ratio U = true prevalence / claimed prevalence is split, on "
        "the log scale and per posterior draw, into order-independent (Shapley) contributions of "
        "counterfactual fixes: review resourced adequately (proactive detection at "
        f"{pct(attribution.adequate_saturation)} of its reach), no evasion (hidden share zero) "
        "and, with trader data, the strike policy enforced as claimed; the residual is what "
        "stays undetected with all three fixed, and the reporting term compares the claim with "
        "what the platform's own detections show. The parts add up to log U exactly "
        "(docs/attribution.md). Medians and "
        f"{pct(attribution.prob, 2)} intervals; positive values raise the understatement.\n\n"
        + markdown_table(pd.DataFrame(rows))
    )
    figure = plot_attribution_grid(attribution)
    return Section(
        "attribution",
        "Why the claim understates prevalence",
        body,
        figures=[
            Figure.from_matplotlib(
                figure,
                name="attribution.png",
                alt="Waterfall charts per category splitting log U into limited resources, "
                "evasion, non-enforcement, residual detection gap and reporting.",
                caption="Attribution of log U (posterior means; whiskers: intervals).",
            )
        ],
    )


def consistency_section(report) -> Section:
    """Which reported figures are implausible under the model (posterior predictive checks)."""
    table = report.table
    flagged = table[table["flagged"].astype(bool)]
    if report.flags:
        lead = (
            f"{len(report.flags)} of {len(table)} reported figures are implausible under the "
            "model:\n\n" + "\n".join(f"- {flag}" for flag in report.flags)
        )
    else:
        lead = f"None of the {len(table)} reported figures checked is implausible under the model."
    notes = "\n".join(f"- {note}" for note in report.notes)
    body = (
        "Each figure the platform reported (detections per category and channel, its claimed "
        "prevalence against the detected share the model replicates, its claimed detection rate "
        "against what its review hours buy) is compared with its posterior predictive "
        f"distribution; a two-sided p-value below {report.alpha:g} flags it "
        "(docs/consistency-and-sensitivity.md).\n\n" + lead + ("\n\n" + notes if notes else "")
    )
    if len(flagged):
        columns = ["kind", "figure", "observed", "predictive_median", "p_value"]
        body += "\n\n" + markdown_table(flagged[columns].reset_index(drop=True))
    return Section("consistency", "Consistency of the reported figures", body)


def scenarios_section(result) -> Section:
    """The stress scenarios: platform-wide outcomes per scenario, and its figures."""
    from risklab.plotting.scenarios import plot_scenario_bands, plot_undetected_by_scenario

    totals = result.totals
    shown = pd.DataFrame(
        {
            "scenario": totals["scenario"],
            "prevalence": [
                f"{pct(m)} ({pct(lo)}–{pct(hi)})"
                for m, lo, hi in zip(
                    totals["prevalence_median"],
                    totals["prevalence_low"],
                    totals["prevalence_high"],
                    strict=True,
                )
            ],
            "reported share": [pct(v) for v in totals["reported_share_median"]],
            "undetected illegal listings": [
                f"{m:,.0f}" for m in totals["undetected_listings_median"]
            ],
            "change vs. baseline": [f"{m:+,.0f}" for m in totals["undetected_change_median"]],
        }
    )
    body = (
        "Each scenario moves the model's levers on every posterior draw (no refit; "
        "docs/scenarios.md). Platform-wide medians (intervals for prevalence):\n\n"
        + markdown_table(shown)
    )
    figures = [
        Figure.from_matplotlib(
            plot_undetected_by_scenario(result).figure,
            name="scenario_undetected.png",
            alt="Undetected illegal listings per category under each scenario.",
            caption="Undetected illegal listings by scenario.",
        ),
        Figure.from_matplotlib(
            _figure_of(plot_scenario_bands(result)),
            name="scenario_bands.png",
            alt="Posterior probability of each band of the platform's scale per scenario.",
            caption="Band probabilities on the platform's own scale, by scenario.",
        ),
    ]
    return Section("scenarios", "Stress scenarios", body, figures=figures)


def _figure_of(obj):
    return obj if hasattr(obj, "savefig") else obj.figure


def sensitivity_section(sensitivity) -> Section:
    """Prior power-scaling sensitivity of the headline quantities."""
    table = sensitivity.table
    issues = table[table["diagnosis"] != "ok"] if "diagnosis" in table else table.iloc[0:0]
    body = (
        "Power-scaling sensitivity (arviz-stats `psense`): how much each headline quantity "
        "moves when the priors or the likelihood are slightly strengthened or weakened. Values "
        f"above {sensitivity.threshold:g} mark a quantity as sensitive "
        "(docs/consistency-and-sensitivity.md).\n\n"
    )
    if len(issues):
        body += f"{len(issues)} quantities are flagged:\n\n" + markdown_table(
            issues.reset_index(drop=True)
        )
    else:
        body += "No headline quantity is flagged: the conclusions are driven by the data."
    if sensitivity.notes:
        body += "\n\n" + "\n".join(f"- {note}" for note in sensitivity.notes)
    return Section("sensitivity", "Prior sensitivity", body)


def analysis_sections(
    fitted,
    *,
    stress=None,
    sensitivity=None,
    prob: float | None = None,
) -> list[Section]:
    """The analysis sections of an assessment report.

    Attribution and the consistency checks are always computed (no refit); scenarios and prior
    sensitivity are included when their results are passed.

    Parameters
    ----------
    fitted : PlatformRiskModel
        The fitted model.
    stress : risklab.scenarios.StressTestResult, optional
    sensitivity : risklab.sensitivity.PriorSensitivity, optional
    prob : float, optional
        Interval mass (default: the library's).
    """
    from risklab.attribution import attribute
    from risklab.consistency import check_consistency

    kwargs = {} if prob is None else {"prob": prob}
    sections = [
        attribution_section(attribute(fitted, **kwargs)),
        consistency_section(check_consistency(fitted, **kwargs)),
    ]
    if stress is not None:
        sections.append(scenarios_section(stress))
    if sensitivity is not None:
        sections.append(sensitivity_section(sensitivity))
    return sections
