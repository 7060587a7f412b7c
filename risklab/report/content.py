"""What an assessment report says, as a list of sections, independent of its format.

:func:`build_report` turns findings and the fitted model into a :class:`Report`: warnings (shown as
banners, an ``UNCONVERGED`` one first and in red) and the sections, in :data:`SECTION_ORDER`:

headline findings → findings per category → bands on the platform's own scale → prevalence
against the claim (forest plot) → review capacity and detection → [attribution] → enforcement
(with trader data) → [scenarios] → identification and prior vs. posterior → diagnostics →
[prior sensitivity] → provenance.

Extension point
---------------
Sections in brackets come from analyses this module does not import. Add them with
``extra_sections``; each is a :class:`~risklab.report.sections.Section` (a key, a title, a
Markdown body and optional PNG figures) and lands at its key's place in :data:`SECTION_ORDER`
(``"attribution"``, ``"scenarios"``, ``"sensitivity"``), or before provenance when its key is
not listed. For example::

    from risklab.report import Figure, Section, build_report, markdown_table

    result = attribute(fitted)
    ax = result.plot_waterfall()
    section = Section(
        "attribution",
        "Why the claim understates prevalence",
        "Shapley attribution of log U ...\\n\\n" + markdown_table(result.table),
        figures=[Figure.from_matplotlib(ax.figure, name="attribution.png",
                                        alt="Waterfall of ...", caption="...")],
    )
    report = build_report(findings, fitted, extra_sections=[section])

:func:`risklab.outputs.write_assessment` takes the same ``extra_sections`` and writes every
figure as a PNG beside ``report.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.transforms import ScaledTranslation

from risklab.assess import Findings
from risklab.counterfactual import PosteriorState
from risklab.dims import CATEGORY
from risklab.models.base import RiskModel
from risklab.plotting.capacity import capacity_curves, plot_capacity_curves
from risklab.plotting.findings import plot_enforcement, plot_prevalence_vs_claimed
from risklab.plotting.report_figures import (
    plot_band_probabilities,
    plot_convergence,
    plot_prior_posterior,
)
from risklab.report.diagnostics import convergence_table, rank_variables
from risklab.report.headline import headline_section, table_section
from risklab.report.identification import (
    PARTLY_RATIO,
    PRIOR_DRAWS,
    PRIOR_DRIVEN_RATIO,
    findings_prior_posterior,
)
from risklab.report.provenance import provenance_section
from risklab.report.sections import Figure, Section, markdown_table, pct

__all__ = [
    "ALWAYS_FIGURES",
    "OPTIONAL_FIGURES",
    "SECTION_ORDER",
    "Report",
    "build_report",
]

#: Place of each known section key in a report.
SECTION_ORDER = (
    "headline",
    "categories",
    "bands",
    "prevalence",
    "capacity",
    "attribution",
    "enforcement",
    "scenarios",
    "identification",
    "diagnostics",
    "sensitivity",
    "provenance",
)

#: PNG files of every report.
ALWAYS_FIGURES = (
    "band_probabilities.png",
    "prevalence_vs_claimed.png",
    "capacity_detection.png",
    "prior_posterior.png",
    "convergence_rank.png",
)
#: PNG files of a report whose data support them (``enforcement.png``: trader data).
OPTIONAL_FIGURES = (
    "enforcement.png",
    # Figures of the analysis sections (risklab.report.analyses), when the caller adds them.
    "attribution.png",
    "scenario_undetected.png",
    "scenario_bands.png",
)


@dataclass
class Report:
    """A report: title, banner warnings and sections (see :data:`SECTION_ORDER`)."""

    title: str
    warnings: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        """Every figure, in the order shown."""
        return [f for s in self.sections for f in s.figures]

    def section(self, key: str) -> Section:
        """The section with ``key``."""
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections: {[s.key for s in self.sections]}")

    def add(self, section: Section) -> None:
        """Insert ``section`` at its key's place in :data:`SECTION_ORDER` (unknown keys go
        before provenance). Keys and figure names must be unique."""
        if any(s.key == section.key for s in self.sections):
            raise ValueError(f"the report already has a section {section.key!r}")
        names = {f.name for f in self.figures}
        clash = sorted(names & {f.name for f in section.figures})
        if clash:
            raise ValueError(f"section {section.key!r}: figure names already used: {clash}")
        rank = _rank(section.key)
        at = next(
            (i for i, s in enumerate(self.sections) if _rank(s.key) > rank), len(self.sections)
        )
        self.sections.insert(at, section)


def _rank(key: str) -> float:
    if key in SECTION_ORDER:
        return float(SECTION_ORDER.index(key))
    return SECTION_ORDER.index("provenance") - 0.5


def _bands_section(findings: Findings, fitted: RiskModel) -> Section:
    scale = fitted.submission.scale
    cuts = ", ".join(
        f"{_q(lab)} below {100 * t:g}%"
        for lab, t in zip(scale.labels, scale.thresholds, strict=False)
    )
    ax = plot_band_probabilities(findings.table, unconverged=not findings.converged)
    body = (
        f"The platform rates each category on its own scale ({cuts}, "
        f"{_q(scale.labels[-1])} from {100 * scale.thresholds[-1]:g}%). Each bar splits the "
        "posterior probability of the true prevalence across those bands; the black outline "
        "marks the band the platform claimed."
    )
    fig = Figure.from_matplotlib(
        ax.figure,
        name="band_probabilities.png",
        alt=(
            "Stacked horizontal bars, one per category, giving the posterior probability of each "
            "band of the platform's scale; the claimed band is outlined. "
            + "; ".join(
                f"{r.category}: claimed {r.claimed_band}, most likely {r.most_likely_band}, "
                f"P(higher band) {r.p_band_above_claimed:.2f}"
                for r in findings.table.itertuples(index=False)
            )
        ),
        caption="Posterior probability of each band of the platform's scale; claimed band "
        "outlined.",
    )
    return Section("bands", "Risk bands on the platform's own scale", body, [fig])


def _q(label: str) -> str:
    return f"‘{label}’"


def _legend_below(ax) -> None:
    """Move an Axes' legend under the plot, clear of the data (the x label stays above it)."""
    legend = ax.get_legend()
    if legend is None:
        return
    handles, labels = ax.get_legend_handles_labels()
    legend.remove()
    shift = ScaledTranslation(0, -34 / 72.0, ax.figure.dpi_scale_trans)
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=ax.transAxes + shift,
        ncols=2,
        fontsize=8,
        frameon=False,
    )


def _prevalence_section(findings: Findings, fitted: RiskModel) -> Section:
    ax = plot_prevalence_vs_claimed(findings, thresholds=tuple(fitted.submission.scale.thresholds))
    _legend_below(ax)
    body = (
        f"Posterior median and {findings.prob:.0%} interval of each category's prevalence "
        "(listings-weighted over the reporting period) against the prevalence the platform "
        "claimed; dashed lines are the cut points of its scale. A claim left of the interval "
        "understates the risk."
    )
    fig = Figure.from_matplotlib(
        ax.figure,
        name="prevalence_vs_claimed.png",
        alt="Forest plot of posterior prevalence per category with the claimed prevalence. "
        + "; ".join(
            f"{r.category}: {pct(r.prevalence_median)} ({pct(r.prevalence_low)}–"
            f"{pct(r.prevalence_high)}) against {pct(r.claimed_prevalence)} claimed"
            for r in findings.table.itertuples(index=False)
        ),
        caption="Posterior prevalence against the platform's claim.",
    )
    return Section("prevalence", "Prevalence against the claim", body, [fig])


def _capacity_section(findings: Findings, fitted: RiskModel) -> Section:
    state = PosteriorState.from_fitted(fitted)
    claimed = findings.table.set_index("category").loc[state.categories, "claimed_detection_rate"]
    curves = capacity_curves(state, prob=findings.prob, claimed_detection_rate=claimed.values)
    axes = plot_capacity_curves(curves, unconverged=not findings.converged)
    tail = (1.0 - findings.prob) / 2.0
    r90 = np.quantile(-np.log(0.1) / state.efficiency, [tail, 0.5, 1 - tail], axis=0)  # (3, K)
    rows = []
    for k, c in enumerate(state.categories):
        cc = curves.sel(category=c)
        claim = float(cc["claimed_detection_rate"])
        rows.append(
            {
                "category": c,
                "review hours per 1000 listings": f"{float(cc['actual_intensity']):.3g}",
                "proactive detection now": pct(float(cc["detection_at_actual_median"]), 2),
                "claimed": pct(claim, 2) if np.isfinite(claim) else "–",
                f"reach, 1 − hidden share ({findings.prob:.0%})": (
                    f"{pct(float(cc['reach_median']), 2)} ({pct(float(cc['reach_low']), 2)}–"
                    f"{pct(float(cc['reach_high']), 2)})"
                ),
                "hours for 90% of reach": f"{r90[1, k]:.3g} ({r90[0, k]:.3g}–{r90[2, k]:.3g})",
            }
        )
    frame = pd.DataFrame(rows)
    body = (
        "Proactive detection as a function of review intensity, from the fitted capacity curve "
        "d = A·(1 − exp(−θ·r)): the line is the posterior median, the band its "
        f"{findings.prob:.0%} interval, the orange line the platform's actual mean review "
        "intensity, the dashed line the reach — what unlimited review would find (1 − hidden "
        "share). Where the curve is flat at the actual intensity, more review buys little; where "
        "the reach is low, listings are hidden from review whatever the effort. The last column "
        "is the review intensity (hours per 1000 listings) at which detection reaches 90% of its "
        f"reach, with its {findings.prob:.0%} interval: review efficiency θ is per category.\n\n"
        + markdown_table(frame, numeric=list(frame.columns[1:]))
    )
    fig = Figure.from_matplotlib(
        axes[0].figure,
        name="capacity_detection.png",
        alt="Small multiples, one per category: proactive detection rate against review hours "
        "per 1000 listings with the actual intensity and the reach marked. "
        + "; ".join(
            f"{r['category']}: {r['proactive detection now']} now at "
            f"{r['review hours per 1000 listings']} hours per 1000 listings"
            for r in rows
        ),
        caption="Review capacity → proactive detection, with the actual review intensity "
        "(orange) and the reach (dashed).",
    )
    return Section("capacity", "Review capacity and detection", body, [fig])


def _prob_text(p: float) -> str:
    return "> 0.999" if p > 0.999 else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _enforcement_section(findings: Findings) -> Section | None:
    if "enforcement" not in findings.draws:
        return None
    r = findings.table.iloc[0]
    prob = findings.prob

    def iv(name: str, fmt) -> str:
        return f"{fmt(r[f'{name}_median'])} ({fmt(r[f'{name}_low'])}–{fmt(r[f'{name}_high'])})"

    frame = pd.DataFrame(
        [
            ("claimed enforcement", pct(r["claimed_enforcement"], 2)),
            (f"enforcement, median ({prob:.0%})", iv("enforcement", lambda x: pct(x, 2))),
            ("P(enforcement below claim)", _prob_text(float(r["p_enforcement_below_claim"]))),
            ("offending traders never detected", iv("undetected_traders", lambda x: f"{x:,.0f}")),
            (
                "illegal listings due to non-enforcement",
                iv("non_enforcement_share", lambda x: pct(x, 2)),
            ),
        ],
        columns=["quantity", "value"],
    )
    ax = plot_enforcement(findings)
    fig = Figure.from_matplotlib(
        ax.figure,
        name="enforcement.png",
        alt=f"Posterior density of the enforcement probability, median "
        f"{pct(r['enforcement_median'], 2)}, against the claimed "
        f"{pct(r['claimed_enforcement'], 2)}; inset: offending traders never detected.",
        caption="Repeat-offender policy: enforcement probability against the claim.",
    )
    body = (
        "From the trader table and the declared repeat-offender policy: the probability that a "
        "trader past the strike threshold is suspended, the offending traders no channel ever "
        "detected, and the share of illegal listings that enforcement as claimed would have "
        "removed.\n\n" + markdown_table(frame)
    )
    return Section("enforcement", "Repeat offenders and enforcement", body, [fig])


def _identification_section(
    findings: Findings, fitted: RiskModel, prior: xr.DataTree | xr.Dataset | None
) -> Section:
    pp = findings_prior_posterior(findings, fitted, prior=prior)
    prob = findings.prob
    frame = pd.DataFrame(
        {
            "category": pp["category"],
            "identified by": pp["identified_by"],
            f"prior ({prob:.0%})": [
                f"{pct(lo)}–{pct(hi)}"
                for lo, hi in zip(pp["prior_low"], pp["prior_high"], strict=True)
            ],
            f"posterior ({prob:.0%})": [
                f"{pct(lo)}–{pct(hi)}"
                for lo, hi in zip(pp["posterior_low"], pp["posterior_high"], strict=True)
            ],
            "width, posterior ÷ prior": pp["width_ratio"].map(lambda x: f"{x:.2f}"),
            "verdict": pp["verdict"],
        }
    )
    driven = pp.loc[pp["verdict"] == "prior-driven", "category"].tolist()
    summary = (
        f"In {len(driven)} of {len(pp)} categories the posterior interval is barely narrower "
        f"than the prior's ({', '.join(driven)}): there the data said little and the numbers "
        "are the priors'."
        if driven
        else "In every category the data narrowed the prior interval substantially."
    )
    body = (
        "Prevalence is identified only by evidence that sees illegal listings the platform did "
        "not detect: random audits, planted test listings and overlaps between detection "
        "channels (detections alone identify only prevalence × detection rate). The table "
        f"compares each category's {prob:.0%} prior interval of prevalence with its posterior "
        "interval (widths on the log scale): *prior-driven* when the posterior is at least "
        f"{PRIOR_DRIVEN_RATIO:.0%} as wide as the prior, *partly data-driven* from "
        f"{PARTLY_RATIO:.0%}, *data-driven* below.\n\n"
        + summary
        + "\n\n"
        + markdown_table(frame, numeric=["width, posterior ÷ prior"])
    )
    ax = plot_prior_posterior(pp, prob=prob, unconverged=not findings.converged)
    fig = Figure.from_matplotlib(
        ax.figure,
        name="prior_posterior.png",
        alt="Prior and posterior intervals of prevalence per category on a log scale. "
        + "; ".join(
            f"{r.category}: {r.verdict}, width ratio {r.width_ratio:.2f}"
            for r in pp.itertuples(index=False)
        ),
        caption="Prior (grey) against posterior (blue) interval of prevalence.",
    )
    return Section("identification", "What identified prevalence: prior vs. posterior", body, [fig])


def _fmt(x: float, digits: str) -> str:
    return "–" if not np.isfinite(x) else format(x, digits)


def diagnostics_section(findings: Findings, fitted: RiskModel) -> Section:
    conv = findings.convergence
    table = convergence_table(findings, fitted)
    frame = pd.DataFrame(
        {
            "variable": table["variable"],
            "max R-hat": table["max_rhat"].map(lambda x: _fmt(x, ".3f")),
            "min bulk ESS": table["min_ess_bulk"].map(lambda x: _fmt(x, ".0f")),
            "min tail ESS": table["min_ess_tail"].map(lambda x: _fmt(x, ".0f")),
            "meets the gate": table["passes"].map({True: "yes", False: "**no**", None: "–"}.get),
        }
    )
    if conv is not None:
        th = conv.thresholds
        gate = (
            f"The convergence gate requires R-hat ≤ {th.max_rhat}, bulk and tail ESS ≥ "
            f"{th.min_ess_bulk:.0f} and at most {th.max_divergences} divergent transitions, on "
            f"every posterior variable. Result: **{conv.summary()}**."
        )
        if conv.problems:
            gate += "\n\n" + "\n".join(f"- {p}" for p in conv.problems)
    else:
        gate = "The fit's convergence was not checked."
    ranks = rank_variables(findings, fitted)
    pc = plot_convergence(ranks, var_names=[str(v) for v in ranks.data_vars])
    mpl_fig = pc.viz["figure"].item()
    fig = Figure.from_matplotlib(
        mpl_fig,
        name="convergence_rank.png",
        alt="ArviZ rank plots of "
        + ", ".join(
            f"{v}[{', '.join(map(str, ranks[v][CATEGORY].values))}]"
            if CATEGORY in ranks[v].dims
            else str(v)
            for v in ranks.data_vars
        )
        + ": per chain, the ECDF of fractional ranks minus the uniform one, with the p-value of "
        "a uniformity test.",
        caption="Rank plots: chains that agree stay near zero; a p-value below 0.01 flags a "
        "chain that has not mixed.",
    )
    body = (
        gate + "\n\nWorst values over the variables behind the headline (category prevalence is "
        "the listings-weighted prevalence of the findings):\n\n"
        + markdown_table(frame, numeric=["max R-hat", "min bulk ESS", "min tail ESS"])
    )
    return Section("diagnostics", "Diagnostics", body, [fig])


def _prior_provenance(fitted: RiskModel, prior) -> dict:
    idata = fitted.require_fitted()
    if prior is not None:
        return {"report_prior_draws": "supplied by the caller"}
    if "prior" in idata.children:
        return {"report_prior_draws": "the results' prior group"}
    return {
        "report_prior_draws": {
            "draws": PRIOR_DRAWS,
            "random_seed": int(idata.attrs.get("random_seed", 0)),
            "stream": "prior_predictive",
        }
    }


def build_report(
    findings: Findings,
    fitted: RiskModel,
    *,
    extra_sections: Iterable[Section] = (),
    prior: xr.DataTree | xr.Dataset | None = None,
) -> Report:
    """Build the report of an assessment.

    Parameters
    ----------
    findings : Findings
        Output of :func:`risklab.assess`.
    fitted : RiskModel
        The fitted model behind the findings.
    extra_sections : iterable of Section
        Sections of other analyses (attribution, scenarios, prior sensitivity, ...), placed by
        key (see the module docstring).
    prior : DataTree or Dataset, optional
        Prior draws for the prior-vs-posterior comparison; default the results' ``prior`` group,
        else 500 draws seeded from the fit's seed.

    Returns
    -------
    Report
    """
    sub = fitted.submission
    report = Report(
        title=f"Risk assessment check — {sub.platform.name}",
        warnings=list(findings.warnings),
    )
    sections: list[Section | None] = [
        headline_section(findings),
        table_section(findings),
        _bands_section(findings, fitted),
        _prevalence_section(findings, fitted),
        _capacity_section(findings, fitted),
        _enforcement_section(findings),
        _identification_section(findings, fitted, prior),
        diagnostics_section(findings, fitted),
        provenance_section(fitted, extra=_prior_provenance(fitted, prior)),
    ]
    for section in [*sections, *extra_sections]:
        if section is not None:
            report.add(section)
    return report
