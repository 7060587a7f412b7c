"""The periodic monitoring report of binding commitments: HTML and Markdown from one source.

:func:`monitoring_report` turns a fitted :class:`~risklab.monitoring.MonitoringModel` and its
:func:`~risklab.monitoring.monitor` result into a :class:`~risklab.report.Report` with the
sections

headline (plain language: how many commitments are met, likely met, uncertain, not met) →
status table (one row per commitment) → one section per commitment (trend figure, two sentences,
per-category table) → [reported KPIs against the model] → [early warning on a new period] →
diagnostics (the assessment report's convergence section plus the commitments' parameters) →
provenance (with the commitments);

:func:`build_monitoring_report` renders it (self-contained HTML, Markdown twin) and returns the
figures by file name. A fit that failed the convergence gate gets a red ``UNCONVERGED`` banner, a
bold first headline line and "FAILED" in the diagnostics; a commitment identified by detections
only is called prior-driven wherever its numbers appear.
"""

from __future__ import annotations

import re

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from risklab.dims import PERIOD, SAMPLE_DIMS
from risklab.models.diagnostics import unconverged_warning
from risklab.monitoring.analysis import STATUS_CUTS
from risklab.monitoring.commitments import commitments_to_json
from risklab.monitoring.quantities import quantity
from risklab.report.content import Report
from risklab.report.provenance import provenance_section
from risklab.report.render import render_html, render_markdown
from risklab.report.sections import Figure, Section, markdown_table, pct

__all__ = [
    "KPI_FIGURE",
    "STATUS_FIGURE",
    "build_monitoring_report",
    "commitment_convergence",
    "monitoring_report",
    "prior_driven",
    "trend_figure_name",
]

#: File names of the report's fixed figures (trend figures: :func:`trend_figure_name`).
STATUS_FIGURE = "monitoring_status.png"
KPI_FIGURE = "monitoring_kpis.png"
_DETECTIONS_ONLY = "detections only"
_STATUS_NUMERIC = ("target", "value at target by", "without the commitment", "effect")
_STATUS_NUMERIC = (*_STATUS_NUMERIC, "P(improved)", "P(target met)")
_TARGET_LABELS = ("met", "likely met", "uncertain", "likely not met", "not met")
_NO_TARGET_LABELS = ("improved", "likely improved", "uncertain", "likely not improved")
_NO_TARGET_LABELS = (*_NO_TARGET_LABELS, "not improved")


def prior_driven(identified_by: str) -> bool:
    """Whether a commitment's change rests on detections only (and so on the priors)."""
    return str(identified_by).startswith(_DETECTIONS_ONLY)


def trend_figure_name(index: int, name: str) -> str:
    """File name of commitment ``index``'s (1-based) trend figure, e.g.
    ``monitoring_trend_01_link_controls.png``."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40].strip("_") or "commitment"
    return f"monitoring_trend_{index:02d}_{slug}.png"


# ------------------------------------------------------------------------------ formatting
def _value(x: float, unit: str) -> str:
    if not np.isfinite(x):
        return "–"
    return pct(x) if unit == "share" else f"{x:.3g}"


def _effect(x: float, unit: str) -> str:
    if not np.isfinite(x):
        return "–"
    sign = "+" if x > 0 else "-" if x < 0 else "±"
    if unit == "share":
        return sign + pct(abs(x)).removesuffix("%") + " pp"
    return sign + f"{abs(x):.3g}"


def _interval(row, key: str, unit: str, fmt=_value) -> str:
    med, low, high = (float(row[f"{key}_{s}"]) for s in ("median", "low", "high"))
    return f"{fmt(med, unit)} ({fmt(low, unit)} to {fmt(high, unit)})"


def _p(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.2f}"


def _link(x: float) -> str:
    return f"{x:+.2f}"


def _count(counts: dict[str, int], labels: tuple[str, ...]) -> str:
    parts = [f"{counts.get(label, 0)} {label}" for label in labels]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _cuts_text(word: str) -> str:
    lo2, lo1, hi1, hi2 = (f"{100 * c:g}%" for c in STATUS_CUTS)
    what = "P(target met)" if word == "met" else "P(improved)"
    return (
        f"*{word}* means {what} ≥ {hi2}, *likely {word}* ≥ {hi1}, *uncertain* between {lo1} "
        f"and {hi1}, *likely not {word}* between {lo2} and {lo1}, *not {word}* ≤ {lo2}"
    )


def _unconverged_text(fitted) -> str:
    return unconverged_warning(getattr(fitted, "convergence", None))


# ------------------------------------------------------------------------------ sections
def _headline(result, kpis, warning) -> Section:
    table = result.table
    lines = []
    if not result.converged:
        lines.append(
            "**UNCONVERGED FIT: every number below is provisional and must not be presented as "
            "a finding.**"
        )
    targeted = table[np.isfinite(table["target"].astype(float))]
    untargeted = table[~np.isfinite(table["target"].astype(float))]
    n = len(table)
    lines.append(
        f"{n} commitment{'s' if n != 1 else ''} monitored over "
        f"{result.draws[PERIOD].values[0]}..{result.draws[PERIOD].values[-1]}; every status is a "
        "posterior probability under the model, not a yes/no verdict."
    )
    if len(targeted):
        counts = targeted["status"].value_counts().to_dict()
        lines.append(
            f"Of the {len(targeted)} with a target: {_count(counts, _TARGET_LABELS)} ("
            + _cuts_text("met")
            + ", each at the period the target is due)."
        )
        short = targeted[targeted["status"].isin(["likely not met", "not met"])]
        if len(short):
            lines.append(
                "Likely missed: "
                + "; ".join(
                    f"{r.commitment} (P(target met) {_p(r.p_target_met)})"
                    for r in short.itertuples(index=False)
                )
                + "."
            )
    if len(untargeted):
        counts = untargeted["status"].value_counts().to_dict()
        lines.append(
            f"Of the {len(untargeted)} without a target, judged by whether the quantity moved "
            f"the right way against the counterfactual: {_count(counts, _NO_TARGET_LABELS)} ("
            + _cuts_text("improved")
            + ")."
        )
    driven = table.loc[table["identified_by"].map(prior_driven), "commitment"].tolist()
    if driven:
        lines.append(
            f"{len(driven)} of {n} ({', '.join(driven)}) rest on detections only: there the "
            "change is prior-driven — a change in prevalence cannot be told apart from a change "
            "in detection without random audits or planted listings before and after."
        )
    if kpis is not None and len(kpis):
        flatter = int(kpis["flatters"].astype(bool).sum())
        outside = int((kpis["verdict"] != "consistent").sum())
        lines.append(
            f"Reported KPIs: {outside} of {len(kpis)} lie outside what the model implies; "
            f"{flatter} of them flatter the platform."
        )
    if warning is not None:
        flags = warning.table["flag"].value_counts().to_dict()
        alarm = warning.table[warning.table["flag"].isin(["deterioration", "watch"])]
        text = (
            f"Early warning on {', '.join(warning.new_periods)}: "
            + ", ".join(f"{v} {k}" for k, v in flags.items())
            + "."
        )
        if len(alarm):
            text += " Flagged: " + ", ".join(
                f"{r.commitment} ({r.flag})" for r in alarm.itertuples(index=False)
            )
            text += "."
        lines.append(text)
    body = "\n".join(f"- {line}" for line in lines)
    return Section("headline", "Headline", body)


def _short_identified(text: str) -> str:
    return "detections only (prior-driven)" if prior_driven(text) else str(text)


def _status_table(result) -> pd.DataFrame:
    rows = []
    for _, r in result.table.iterrows():
        unit = quantity(r["quantity"]).unit
        rows.append(
            {
                "commitment": r["commitment"],
                "quantity": r["quantity"],
                "categories": r["categories"],
                "effective": r["effective"],
                "target": _value(float(r["target"]), unit),
                "target by": r["target_by"],
                "value at target by": _interval(r, "value", unit),
                "without the commitment": _interval(r, "counterfactual", unit),
                "effect": _interval(r, "effect", unit, _effect),
                "P(improved)": _p(float(r["p_improved"])),
                "P(target met)": _p(float(r["p_target_met"])),
                "status": f"**{r['status']}**",
                "identified by": _short_identified(r["identified_by"]),
            }
        )
    return pd.DataFrame(rows)


def _status_section(result) -> Section:
    from risklab.plotting.monitoring import plot_commitment_status

    frame = _status_table(result)
    prob = result.prob
    body = (
        f"One row per commitment, at the period its target is due (the last period without a "
        f"target). Values are the posterior median and equal-tailed {prob:.0%} interval of the "
        "quantity aggregated over the commitment's categories (listings-weighted); *without the "
        "commitment* removes its level and slope change and keeps the others; the effect is the "
        "difference (percentage points, *pp*, for shares). The full table is `monitoring.csv`.\n\n"
        + markdown_table(
            frame,
            numeric=[c for c in frame.columns if c in _STATUS_NUMERIC],
        )
    )
    ax = plot_commitment_status(result)
    alt = "Horizontal bars, one per commitment, of the posterior probability the target is met "
    alt += "(or that the quantity improved when no target was set): " + "; ".join(
        f"{r.commitment}: {r.status}" for r in result.table.itertuples(index=False)
    )
    fig = Figure.from_matplotlib(
        ax.figure,
        name=STATUS_FIGURE,
        alt=alt,
        caption="Status of each commitment: P(target met), or P(improved) without a target.",
    )
    return Section("status", "Status of the commitments", body, [fig])


def _category_table(result, name: str, unit: str) -> pd.DataFrame:
    part = result.by_category[result.by_category["commitment"] == name]
    rows = []
    for _, r in part.iterrows():
        rows.append(
            {
                "category": r["category"],
                "level change (link scale)": _interval(
                    r, "level_change", unit, lambda x, _u: _link(x)
                ),
                "slope change per year (link scale)": _interval(
                    r, "slope_change", unit, lambda x, _u: _link(x)
                ),
                "value at target by": _interval(r, "value", unit),
                "without the commitment": _interval(r, "counterfactual", unit),
                "effect": _interval(r, "effect", unit, _effect),
                "P(improved)": _p(float(r["p_improved"])),
            }
        )
    return pd.DataFrame(rows)


def _commitment_section(result, index: int) -> Section:
    from risklab.plotting.monitoring import plot_commitment_trend

    c = result.commitments[index - 1]
    r = result.table.loc[result.table["commitment"] == c.name].iloc[0]
    q = quantity(c.quantity)
    unit, prob = q.unit, result.prob
    where = "the whole platform" if not q.per_category else str(r["categories"])
    verb = "lower" if q.improves == "decrease" else "raise"
    intro = f"{c.description.strip()} " if c.description.strip() else ""
    first = (
        f"{intro}In force from {c.effective}, it should {verb} the {q.label} in {where}. At "
        f"{r['target_by']} the median is {_interval(r, 'value', unit)}, against "
        f"{_interval(r, 'counterfactual', unit)} without the commitment — an effect of "
        f"{_interval(r, 'effect', unit, _effect)} (medians, {prob:.0%} intervals in brackets)."
    )
    if np.isfinite(float(r["target"])):
        second = (
            f"The target of {_value(float(r['target']), unit)} by {r['target_by']} is "
            f"**{r['status']}**: P(target met) = {_p(float(r['p_target_met']))}, P(improved) = "
            f"{_p(float(r['p_improved']))}."
        )
    else:
        second = (
            f"No target was set; the probability that it moved the {q.name.replace('_', ' ')} "
            f"the right way is {_p(float(r['p_improved']))} (**{r['status']}**)."
        )
    if prior_driven(r["identified_by"]):
        evidence = (
            "**The change is prior-driven:** only detections inform it, and detections cannot "
            "tell a change in prevalence from a change in detection. Random audits or planted "
            f"listings before and after {c.effective} would identify it."
        )
    else:
        evidence = f"Identified by {r['identified_by']}."
    body = f"{first} {second}\n\n{evidence}"
    if q.per_category:
        frame = _category_table(result, c.name, unit)
        body += (
            "\n\nPer category (level and slope changes on the quantity's "
            f"{q.link} scale, slopes per year since {c.effective}):\n\n"
            + markdown_table(frame, numeric=list(frame.columns[1:]))
        )
    ax = plot_commitment_trend(result, c.name)
    target = (
        f"; target {_value(float(r['target']), unit)} by {r['target_by']}"
        if np.isfinite(float(r["target"]))
        else ""
    )
    fig = Figure.from_matplotlib(
        ax.figure,
        name=trend_figure_name(index, c.name),
        alt=(
            f"Line chart by period of the {q.label} over {where}, with its {prob:.0%} band, and "
            f"the dashed counterfactual without '{c.name}'; vertical lines at the effective dates "
            f"of the commitments on {q.name.replace('_', ' ')} ({c.name} from {c.effective}"
            f"{target}). At {r['target_by']}: {_value(float(r['value_median']), unit)} against "
            f"{_value(float(r['counterfactual_median']), unit)} without it."
        ),
        caption=f"{c.name}: {q.name.replace('_', ' ')} with (solid) and without (dashed) the "
        "commitment.",
    )
    return Section(f"commitment-{index}", f"Commitment {index}: {c.name}", body, [fig])


def _kpi_section(kpis: pd.DataFrame, prob: float) -> Section:
    from risklab.plotting.monitoring import plot_kpis

    frame = pd.DataFrame(
        {
            "KPI": kpis["kpi"],
            "category": [c if c else "platform" for c in kpis["category"]],
            "period": [p if p else "whole window" for p in kpis["period"]],
            "reported": kpis["reported"].map(pct),
            f"model-implied ({prob:.0%})": [
                f"{pct(m)} ({pct(lo)} to {pct(hi)})"
                for m, lo, hi in zip(
                    kpis["implied_median"], kpis["implied_low"], kpis["implied_high"], strict=True
                )
            ],
            "P(implied below reported)": kpis["p_implied_below_reported"].map(_p),
            "verdict": kpis["verdict"],
            "flatters the platform": kpis["flatters"].map(lambda f: "**yes**" if f else "no"),
        }
    )
    flatter = int(kpis["flatters"].astype(bool).sum())
    body = (
        "Each KPI the platform reported (kpis.csv) against the posterior of the same quantity "
        "under the model. A figure is *outside the model* when the model puts at least 95% "
        "posterior probability on one side of it; it *flatters the platform* when it is "
        f"outside on the side that looks better. {flatter} of {len(kpis)} reported figures "
        "flatter the platform.\n\n"
        + markdown_table(
            frame, numeric=["reported", f"model-implied ({prob:.0%})", "P(implied below reported)"]
        )
    )
    shown = kpis_for_figure(kpis)
    if len(shown) < len(kpis):
        body += (
            f"\n\nThe figure shows {len(shown)} of the {len(kpis)} rows: whole-window figures "
            "and the most recent months of each KPI; the table has them all."
        )
    ax = plot_kpis(shown)
    fig = Figure.from_matplotlib(
        ax.figure,
        name=KPI_FIGURE,
        alt="Reported KPI values (diamonds) against the model-implied intervals (lines): "
        + "; ".join(
            f"{r.kpi} {r.category or 'platform'} {r.period or 'whole window'}: reported "
            f"{pct(r.reported)}, implied {pct(r.implied_median)} ({r.verdict})"
            for r in shown.itertuples(index=False)
        ),
        caption="Reported KPIs against the model: red diamonds flatter the platform.",
    )
    return Section("kpis", "Reported KPIs against the model", body, [fig])


def _warning_section(warning, prob: float) -> Section:
    t = warning.table
    frame = pd.DataFrame(
        {
            "commitment": t["commitment"],
            "period": t["period"],
            "P(target met) before": t["p_met_before"].map(_p),
            "P(target met) after": [
                _p(p) if not np.isfinite(se) else f"{_p(p)} ± {se:.2f}"
                for p, se in zip(
                    t["p_met_after"],
                    t.get("p_met_after_se", pd.Series(np.nan, index=t.index)),
                    strict=True,
                )
            ],
            "P(improved) after": t["p_improved_after"].map(_p),
            "p-value if met": t["p_consistent_if_met"].map(_p),
            "flag": [
                f"**{f}**" if f in ("deterioration", "watch", "refit needed", "off track") else f
                for f in t["flag"]
            ],
        }
    )
    figures = warning.figures
    flagged = figures[figures["flagged"].astype(bool)] if len(figures) else figures
    ess = float(t["weights_ess"].iloc[0]) if len(t) else float("nan")
    body = (
        f"The figures of the new period(s) {', '.join(warning.new_periods)} weighed against each "
        "commitment being met, without refitting (importance reweighting of the fitted "
        f"posterior; effective sample size of the weights {ess:.0f}). *before*/*after*: "
        "P(target met) at the last new period projected from the fit alone and given the new "
        "figures (± its Monte Carlo standard error); *p-value if met*: how unusual the new "
        "figures are if the commitment is met (small: unusual).\n\n"
        + markdown_table(
            frame,
            numeric=[c for c in frame.columns if c.startswith(("P(", "p-value"))],
        )
        + "\n\n"
        + "\n".join(f"- {m}" for m in t["message"])
    )
    if len(flagged):
        ff = pd.DataFrame(
            {
                "commitment": flagged["commitment"],
                "source": flagged["source"],
                "category": flagged["category"].map(lambda c: c if c else "platform"),
                "period": flagged["period"],
                "channel": flagged["channel"].map(lambda c: c if c else "–"),
                "observed": flagged["observed"].map(lambda x: f"{x:,.0f}"),
                f"predicted if met ({prob:.0%})": [
                    f"{m:,.0f} ({lo:,.0f} to {hi:,.0f})"
                    for m, lo, hi in zip(
                        flagged["predicted_median"],
                        flagged["predicted_low"],
                        flagged["predicted_high"],
                        strict=True,
                    )
                ],
                "p-value": flagged["p_value"].map(lambda x: f"{x:.3f}"),
            }
        )
        body += (
            f"\n\n{len(flagged)} new figure(s) are flagged (two-sided predictive p-value under "
            "the draws where the commitment is met below the alert level):\n\n"
            + markdown_table(ff, numeric=["observed", f"predicted if met ({prob:.0%})", "p-value"])
        )
    else:
        body += "\n\nNo single new figure is flagged."
    return Section("early-warning", "Early warning: the new period", body)


def commitment_convergence(fitted, result) -> pd.DataFrame:
    """Worst R-hat and smallest ESS per commitment, over its pooled level and slope change and
    the aggregate quantity at the target period.

    Returns
    -------
    pandas.DataFrame
        Columns ``commitment``, ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``passes``
        (``None`` when the fit has no convergence report).
    """
    post = fitted.posterior
    names = [c.name for c in result.commitments]
    by = result.table.set_index("commitment")["target_by"]
    value = xr.concat(
        [result.draws["value"].sel(commitment=n, period=by[n]).drop_vars(PERIOD) for n in names],
        dim="commitment",
    )
    ds = xr.Dataset(
        {
            "level": post["commitment_level"].sel(commitment=names),
            "slope": post["commitment_slope"].sel(commitment=names),
            "value": value.assign_coords(commitment=names),
        }
    )
    dims = list(SAMPLE_DIMS)
    rhat = az.rhat(ds, sample_dims=dims).to_array().max("variable")
    bulk = az.ess(ds, sample_dims=dims, method="bulk").to_array().min("variable")
    tail = az.ess(ds, sample_dims=dims, method="tail").to_array().min("variable")
    th = fitted.convergence.thresholds if fitted.convergence is not None else None
    rows = []
    for n in names:
        r, b, t = (float(a.sel(commitment=n)) for a in (rhat, bulk, tail))
        passes = None
        if th is not None:
            passes = bool(r <= th.max_rhat and b >= th.min_ess_bulk and t >= th.min_ess_tail)
        rows.append(
            {"commitment": n, "max_rhat": r, "min_ess_bulk": b, "min_ess_tail": t, "passes": passes}
        )
    return pd.DataFrame(rows)


def _diagnostics(fitted, result, prob: float) -> Section:
    from risklab.assess import assess
    from risklab.report.content import diagnostics_section

    base = diagnostics_section(assess(fitted, prob=prob), fitted)
    table = commitment_convergence(fitted, result)

    def fmt(x: float, spec: str) -> str:
        return "–" if not np.isfinite(x) else format(x, spec)

    frame = pd.DataFrame(
        {
            "commitment": table["commitment"],
            "max R-hat": table["max_rhat"].map(lambda x: fmt(x, ".3f")),
            "min bulk ESS": table["min_ess_bulk"].map(lambda x: fmt(x, ".0f")),
            "min tail ESS": table["min_ess_tail"].map(lambda x: fmt(x, ".0f")),
            "meets the gate": table["passes"].map({True: "yes", False: "**no**", None: "–"}.get),
        }
    )
    lead = ""
    if not result.converged:
        lead = (
            "**The fit FAILED the convergence gate: the monitoring results are provisional and "
            "must not be presented as findings.**\n\n"
        )
    body = (
        lead
        + base.body
        + "\n\nThe commitments' own parameters (pooled level and slope change, and the "
        "aggregate quantity at the target period):\n\n"
        + markdown_table(frame, numeric=["max R-hat", "min bulk ESS", "min tail ESS"])
    )
    return Section(base.key, base.title, body, list(base.figures))


def _provenance(fitted, result, kpis, warning) -> Section:
    extra = {
        "commitments": commitments_to_json(result.commitments),
        "monitoring_interval_prob": result.prob,
    }
    if kpis is not None:
        extra["kpis_compared"] = len(kpis)
    if warning is not None:
        extra["early_warning_new_periods"] = list(warning.new_periods)
    section = provenance_section(fitted, extra=extra)
    listing = "\n".join(
        f"- {c.name}: {c.quantity} from {c.effective}"
        + (f" in {', '.join(c.categories)}" if c.categories else " (platform-wide)")
        + (
            f"; target {c.target.value:g}" + (f" by {c.target.by}" if c.target.by else "")
            if c.target is not None
            else "; no target"
        )
        for c in result.commitments
    )
    section.body = (
        "Commitments monitored (as resolved against the submission):\n\n"
        + listing
        + "\n\n"
        + section.body
    )
    return section


# ------------------------------------------------------------------------------ public API
def monitoring_report(
    fitted,
    result,
    *,
    kpis: pd.DataFrame | None = None,
    warning=None,
    prob: float | None = None,
) -> Report:
    """Build the monitoring report of a fitted monitoring model.

    Parameters
    ----------
    fitted : MonitoringModel
        The fitted (or loaded) model behind ``result``.
    result : MonitoringResult
        Output of :func:`risklab.monitoring.monitor` on ``fitted``.
    kpis : pandas.DataFrame, optional
        Output of :func:`risklab.monitoring.kpis.compare_kpis`: adds the KPI section.
    warning : EarlyWarning, optional
        Output of :func:`risklab.monitoring.early_warning.early_warning`: adds the early-warning
        section (any object with ``table``, ``figures`` and ``new_periods``).
    prob : float, optional
        Interval mass; must equal ``result.prob`` (the default).

    Returns
    -------
    risklab.report.Report
        Render with :func:`risklab.report.render_html` / :func:`~risklab.report.render_markdown`.

    Raises
    ------
    ValueError
        ``prob`` differs from the result's, or the result's commitments are not the model's.
    """
    if prob is not None and not np.isclose(float(prob), result.prob):
        raise ValueError(f"prob {prob} differs from the result's interval mass {result.prob}")
    names = [c.name for c in result.commitments]
    if names != [c.name for c in getattr(fitted, "commitments", [])]:
        raise ValueError("result does not belong to this fitted model (different commitments)")
    sub = fitted.submission
    warnings = [] if result.converged else [_unconverged_text(fitted)]
    for r in result.table.itertuples(index=False):
        if prior_driven(r.identified_by):
            warnings.append(
                f"Commitment {r.commitment!r}: only detections inform its change, so the change "
                "is prior-driven (a change in prevalence and in detection are not told apart)."
            )
    sections = [_headline(result, kpis, warning), _status_section(result)]
    sections += [_commitment_section(result, i) for i in range(1, len(names) + 1)]
    if kpis is not None and len(kpis):
        sections.append(_kpi_section(kpis, result.prob))
    if warning is not None:
        sections.append(_warning_section(warning, result.prob))
    sections.append(_diagnostics(fitted, result, result.prob))
    sections.append(_provenance(fitted, result, kpis, warning))
    report = Report(
        title=f"Monitoring of binding commitments — {sub.platform.name}", warnings=warnings
    )
    report.sections = sections
    seen: set[str] = set()
    for fig in report.figures:
        if fig.name in seen:  # pragma: no cover - names are built unique
            raise ValueError(f"figure name {fig.name!r} used twice")
        seen.add(fig.name)
    return report


def build_monitoring_report(
    fitted,
    result,
    *,
    kpis: pd.DataFrame | None = None,
    warning=None,
    prob: float | None = None,
) -> tuple[str, str, dict[str, Figure]]:
    """The monitoring report as self-contained HTML and Markdown, with its figures.

    Parameters are those of :func:`monitoring_report`.

    Returns
    -------
    (str, str, dict of str to Figure)
        The HTML document (figures embedded), its Markdown twin (figures referenced as PNG files
        beside it) and the figures by file name (:class:`risklab.report.Figure`: PNG bytes in
        ``.png``; write them next to the Markdown file).
    """
    report = monitoring_report(fitted, result, kpis=kpis, warning=warning, prob=prob)
    figures = {fig.name: fig for fig in report.figures}
    return render_html(report), render_markdown(report), figures


#: Most KPI rows drawn in the report's figure (the table lists every row).
MAX_KPI_FIGURE_ROWS = 24


def kpis_for_figure(kpis: pd.DataFrame, limit: int = MAX_KPI_FIGURE_ROWS) -> pd.DataFrame:
    """The KPI rows to draw: whole-window rows first, then each KPI's most recent months."""
    if len(kpis) <= limit:
        return kpis
    whole = kpis[kpis["period"] == ""]
    monthly = kpis[kpis["period"] != ""].sort_values("period", ascending=False, kind="stable")
    per_kpi = max(1, (limit - len(whole)) // max(1, monthly["kpi"].nunique()))
    recent = monthly.groupby("kpi", sort=False).head(per_kpi)
    return pd.concat([whole, recent]).head(limit).reset_index(drop=True)
