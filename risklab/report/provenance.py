"""The report's provenance section: what produced the numbers, enough to reproduce them.

Read from the root attrs of the fitted results (written by
:func:`risklab.models.provenance.provenance_attrs`) and from the submission: input hash,
versions, seeds, sampler settings and the resolved priors (as JSON).
"""

from __future__ import annotations

import json

from risklab.models.base import RiskModel
from risklab.report.sections import Section

__all__ = ["provenance_record", "provenance_section"]


def _json(text, default):
    if text is None:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def provenance_record(fitted: RiskModel) -> dict:
    """Provenance of a fit as one JSON-safe dict."""
    attrs = fitted.require_fitted().attrs
    sub = fitted.submission
    return {
        "platform": sub.platform.name,
        "reporting_period": f"{sub.platform.period_start} to {sub.platform.period_end}",
        "input_sha256": sub.input_sha256,
        "risklab_version": str(attrs.get("risklab_version")),
        "model": f"{attrs.get('model_type')} v{attrs.get('model_version')}",
        "components": _json(attrs.get("components"), []),
        "sampler": str(attrs.get("sampler")),
        "sampler_config": _json(attrs.get("sampler_config"), {}),
        "random_seed": int(attrs.get("random_seed", 0)),
        "derived_seeds": _json(attrs.get("derived_seeds"), {}),
        "package_versions": _json(attrs.get("package_versions"), {}),
        "priors": _json(attrs.get("priors"), {}),
    }


def provenance_section(fitted: RiskModel, *, extra: dict | None = None) -> Section:
    """The "Provenance" section.

    Parameters
    ----------
    fitted : RiskModel
        The fitted model.
    extra : dict, optional
        Further JSON-safe entries (e.g. the seed of the report's prior draws).
    """
    record = provenance_record(fitted)
    if extra:
        record.update(extra)
    seeds = record["derived_seeds"]
    lines = [
        f"- platform: {record['platform']}, reporting period {record['reporting_period']}",
        f"- input SHA-256 (all submission and evidence files): `{record['input_sha256']}`",
        f"- risklab {record['risklab_version']}, model {record['model']}; components: "
        + ", ".join(record["components"]),
        f"- sampler: {record['sampler']}; random seed {record['random_seed']}"
        + (
            " (derived: " + ", ".join(f"{k} {v}" for k, v in seeds.items()) + ")"
            if isinstance(seeds, dict) and seeds
            else ""
        ),
    ]
    body = (
        "Every number in this report is reproducible from the input files (their hash below), "
        "the seed and the versions. The complete record, with the resolved priors:\n\n"
        + "\n".join(lines)
        + "\n\n```\n"
        + json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n```"
    )
    return Section("provenance", "Provenance", body)
