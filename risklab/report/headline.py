"""The report's headline findings in plain language, and its per-category table.

Every number in the headline is read from :attr:`Findings.table <risklab.assess.Findings.table>`,
so the headline and the table cannot disagree. A category's claimed band is *contradicted* when
the posterior probability that the true prevalence lies in a higher band of the platform's own
scale is at least :data:`CONTRADICTION_PROB`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from risklab.assess import Findings
from risklab.report.sections import Section, markdown_table, pct

__all__ = [
    "CONTRADICTION_PROB",
    "category_table",
    "contradicted",
    "headline_lines",
    "headline_section",
    "table_section",
]

#: Posterior probability of a higher band from which a claimed band counts as contradicted.
CONTRADICTION_PROB = 0.95


def _quote(label: str) -> str:
    return f"‘{label}’"


def _count(n: int, total: int) -> str:
    return f"{n} of {total}" if n else f"none of the {total}"


def contradicted(table: pd.DataFrame, *, threshold: float = CONTRADICTION_PROB) -> pd.DataFrame:
    """Rows of ``table`` whose claimed band is contradicted (``P(band above claimed) ≥ threshold``).

    Sorted by how far the true prevalence exceeds the claim (largest first).
    """
    rows = table[table["p_band_above_claimed"] >= threshold]
    return rows.sort_values("underestimation_median", ascending=False)


def _band_sentence(table: pd.DataFrame, prob: float) -> str:
    n = len(table)
    rows = contradicted(table)
    if rows.empty:
        likely = table[table["p_band_above_claimed"] >= 0.5]
        text = (
            f"In none of the {n} categories is the platform's own risk rating contradicted "
            f"(no category has a higher band with probability ≥ {CONTRADICTION_PROB:.0%})."
        )
        if len(likely):
            text += (
                f" In {len(likely)} ({', '.join(likely['category'])}) a higher band than the "
                "claimed one is more likely than not."
            )
        return text
    claimed = rows["claimed_band"].unique()
    rating = (
        f"the platform's {_quote(claimed[0])} rating"
        if len(claimed) == 1
        else "the platform's own risk rating"
    )
    parts = []
    for row in rows.itertuples(index=False):
        rated = "" if len(claimed) == 1 else f"rated {_quote(row.claimed_band)}, "
        parts.append(
            f"{row.category} ({rated}most likely {_quote(row.most_likely_band)}; true prevalence "
            f"{pct(row.prevalence_median)}, {prob:.0%} interval {pct(row.prevalence_low)}–"
            f"{pct(row.prevalence_high)}, against {pct(row.claimed_prevalence)} claimed)"
        )
    return (
        f"In {len(rows)} of {n} categories {rating} is contradicted — the true prevalence lies "
        f"in a higher band of the platform's own scale with probability ≥ "
        f"{CONTRADICTION_PROB:.0%}: " + "; ".join(parts) + "."
    )


def headline_lines(findings: Findings) -> list[str]:
    """The headline findings, one plain-language sentence (or two) per item."""
    table = findings.table
    n = len(table)
    prob = findings.prob
    lines = [_band_sentence(table, prob)]
    understated = table[table["p_underestimated"] >= CONTRADICTION_PROB]
    lines.append(
        f"In {_count(len(understated), n)} categories the platform's claimed prevalence is "
        f"understated with probability ≥ {CONTRADICTION_PROB:.0%}"
        + (f" ({', '.join(understated['category'])})." if len(understated) else ".")
    )
    worst = table.sort_values("underestimation_median", ascending=False).iloc[0]
    lines.append(
        f"Largest understatement: {worst.category}, where the true prevalence is about "
        f"{worst.underestimation_median:.1f}× the claim ({prob:.0%} interval "
        f"{worst.underestimation_low:.1f}–{worst.underestimation_high:.1f}×)."
    )
    if "p_detection_below_claim" in table and table["claimed_detection_rate"].notna().any():
        below = table[table["p_detection_below_claim"] >= CONTRADICTION_PROB]
        with_claim = int(table["claimed_detection_rate"].notna().sum())
        if len(below):
            lines.append(
                f"In {len(below)} of the {with_claim} categories with a claimed proactive "
                f"detection rate, the rate is below the claim with probability ≥ "
                f"{CONTRADICTION_PROB:.0%}: "
                + "; ".join(
                    f"{r.category} ({pct(r.detection_rate_median, 2)} against "
                    f"{pct(r.claimed_detection_rate, 2)} claimed)"
                    for r in below.itertuples(index=False)
                )
                + "."
            )
    if "enforcement_median" in table and np.isfinite(table["enforcement_median"].iloc[0]):
        r = table.iloc[0]
        p_below = float(r["p_enforcement_below_claim"])
        p_text = "> 0.999" if p_below > 0.999 else f"= {p_below:.3f}"
        lines.append(
            f"Repeat offenders: the platform says it suspends {pct(r['claimed_enforcement'], 2)} "
            f"of traders past its strike threshold; the data put it at "
            f"{pct(r['enforcement_median'], 2)} ({prob:.0%} interval "
            f"{pct(r['enforcement_low'], 2)}–{pct(r['enforcement_high'], 2)}; P(below claim) "
            f"{p_text}). About {pct(r['non_enforcement_share_median'], 2)} of illegal listings "
            f"are due to the gap."
        )
    prior_driven = table.loc[table["identified_by"] == "prior", "category"].tolist()
    if prior_driven:
        lines.append(
            f"{len(prior_driven)} of {n} categories {'has' if len(prior_driven) == 1 else 'have'} "
            "no evidence that identifies prevalence "
            f"({', '.join(prior_driven)}); their numbers rest on the priors and on the other "
            "categories — read them as indications, not findings."
        )
    if not findings.converged:
        lines.insert(
            0,
            "**UNCONVERGED FIT: every number below is provisional and must not be presented as "
            "a finding.**",
        )
    return lines


def headline_section(findings: Findings) -> Section:
    """The "Headline findings" section."""
    body = "\n".join(f"- {line}" for line in headline_lines(findings))
    return Section("headline", "Headline findings", body)


def _interval(med: float, low: float, high: float, fmt) -> str:
    return f"{fmt(med)} ({fmt(low)}–{fmt(high)})"


def category_table(findings: Findings) -> pd.DataFrame:
    """The per-category table of the report, formatted as text."""
    t = findings.table
    prob = findings.prob

    def ratio(x: float) -> str:
        return f"{x:.2f}×"

    out = pd.DataFrame(
        {
            "category": t["category"],
            "claimed band": t["claimed_band"],
            "most likely band": t["most_likely_band"],
            "P(higher band)": t["p_band_above_claimed"].map(lambda x: f"{x:.2f}"),
            "claimed prevalence": t["claimed_prevalence"].map(pct),
            f"true prevalence, median ({prob:.0%} interval)": [
                _interval(m, lo, hi, pct)
                for m, lo, hi in zip(
                    t["prevalence_median"], t["prevalence_low"], t["prevalence_high"], strict=True
                )
            ],
            "true ÷ claimed": [
                _interval(m, lo, hi, ratio)
                for m, lo, hi in zip(
                    t["underestimation_median"],
                    t["underestimation_low"],
                    t["underestimation_high"],
                    strict=True,
                )
            ],
            "P(understated)": t["p_underestimated"].map(lambda x: f"{x:.2f}"),
            "identified by": t["identified_by"],
        }
    )
    if "detection_rate_median" in t:
        out["proactive detection (claimed)"] = [
            f"{pct(m, 2)} ({pct(c, 2)})" if np.isfinite(c) else pct(m, 2)
            for m, c in zip(t["detection_rate_median"], t["claimed_detection_rate"], strict=True)
        ]
    return out


def table_section(findings: Findings) -> Section:
    """The "Findings per category" section."""
    frame = category_table(findings)
    numeric = [
        c for c in frame.columns if c.startswith(("P(", "claimed prev", "true", "proactive"))
    ]
    body = (
        f"One row per category. Intervals are equal-tailed {findings.prob:.0%} posterior "
        "intervals; *P(higher band)* is the posterior probability that the true prevalence lies "
        "in a higher band of the platform's own scale than the one it claimed; *identified by* "
        "names the evidence that pins prevalence down (*prior*: none). The full table, with the "
        "probability of every band, is `findings.csv`.\n\n" + markdown_table(frame, numeric=numeric)
    )
    return Section("categories", "Findings per category", body)
