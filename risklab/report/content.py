"""What a report says, independent of its format."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from risklab.assess import Findings
from risklab.models.base import RiskModel

__all__ = ["ReportContent", "build_content"]


@dataclass
class ReportContent:
    """Format-independent content of an assessment report."""

    title: str
    headline: list[str]
    warnings: list[str]
    table: pd.DataFrame
    figures: dict[str, str] = field(default_factory=dict)  # caption -> PNG file name
    convergence: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    priors: dict[str, str] = field(default_factory=dict)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _headline(findings: Findings) -> list[str]:
    table = findings.table
    n = len(table)
    contradicted = table[table["p_band_above_claimed"] >= 0.95]
    understated = table[table["p_underestimated"] >= 0.95]
    lines = [
        f"In {len(understated)} of {n} categories the platform's claimed prevalence is "
        f"understated with posterior probability of at least 95%.",
    ]
    prior_driven = table.loc[table["identified_by"] == "prior", "category"].tolist()
    if prior_driven:
        lines.append(
            f"{len(prior_driven)} of {n} categories have no evidence that identifies prevalence "
            f"({', '.join(prior_driven)}); their numbers rest on the priors and on the other "
            "categories — read them as indications, not findings."
        )
    if len(contradicted):
        parts = [
            f"{row.category} (claimed '{row.claimed_band}', most likely '{row.most_likely_band}', "
            f"true prevalence {_pct(row.prevalence_median)} vs. claimed "
            f"{_pct(row.claimed_prevalence)})"
            for row in contradicted.itertuples()
        ]
        lines.append(
            f"In {len(contradicted)} of {n} categories the platform's own risk band is "
            "contradicted (true band higher with probability ≥ 95%): " + "; ".join(parts) + "."
        )
    worst = table.sort_values("underestimation_median", ascending=False).iloc[0]
    lines.append(
        f"Largest understatement: {worst.category}, true prevalence about "
        f"{worst.underestimation_median:.1f}× the claim ({findings.prob:.0%} interval "
        f"{worst.underestimation_low:.1f}–{worst.underestimation_high:.1f}×)."
    )
    return lines


def build_content(findings: Findings, fitted: RiskModel, figures: dict[str, str]) -> ReportContent:
    """Collect the report's content from findings and the fitted model."""
    attrs = fitted.require_fitted().attrs
    sub = fitted.submission
    provenance = {
        "platform": sub.platform.name,
        "reporting period": f"{sub.platform.period_start} to {sub.platform.period_end}",
        "input SHA-256": sub.input_sha256,
        "risklab version": str(attrs.get("risklab_version")),
        "model": f"{attrs.get('model_type')} v{attrs.get('model_version')}",
        "components": ", ".join(json.loads(attrs.get("components", "[]"))),
        "sampler": str(attrs.get("sampler")),
        "sampler config": str(attrs.get("sampler_config")),
        "random seed": str(attrs.get("random_seed")),
        "derived seeds": str(attrs.get("derived_seeds")),
        "package versions": str(attrs.get("package_versions")),
    }
    priors = {name: repr(prior) for name, prior in fitted.priors.items()}
    convergence = findings.convergence.summary() if findings.convergence else "not checked"
    return ReportContent(
        title=f"Risk assessment check — {sub.platform.name}",
        headline=_headline(findings),
        warnings=list(findings.warnings),
        table=findings.table,
        figures=figures,
        convergence=convergence,
        provenance=provenance,
        priors=priors,
    )
