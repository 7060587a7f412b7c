"""Render :class:`ReportContent` as Markdown or as one self-contained HTML file."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from risklab.report.content import ReportContent

__all__ = ["render_html", "render_markdown"]

_SUMMARY_COLUMNS = {
    "category": "category",
    "claimed_band": "claimed band",
    "most_likely_band": "most likely band",
    "p_band_above_claimed": "P(band above claim)",
    "claimed_prevalence": "claimed",
    "prevalence_median": "true (median)",
    "prevalence_low": "low",
    "prevalence_high": "high",
    "underestimation_median": "U (median)",
    "p_underestimated": "P(U > 1)",
    "identified_by": "identified by",
    "converged": "converged",
}


def _summary(table: pd.DataFrame) -> pd.DataFrame:
    out = table[list(_SUMMARY_COLUMNS)].rename(columns=_SUMMARY_COLUMNS).copy()
    for col in ("claimed", "true (median)", "low", "high"):
        out[col] = out[col].map(lambda x: f"{100 * x:.3f}%")
    for col in ("P(band above claim)", "P(U > 1)"):
        out[col] = out[col].map(lambda x: f"{x:.2f}")
    out["U (median)"] = out["U (median)"].map(lambda x: f"{x:.2f}")
    return out


def _md_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def render_markdown(content: ReportContent) -> str:
    """The report as Markdown (figures referenced as PNG files beside it)."""
    parts = [f"# {content.title}", ""]
    if content.warnings:
        parts += (
            ["## Warnings", ""]
            + [f"- **{w}**" if w.startswith("UNCONVERGED") else f"- {w}" for w in content.warnings]
            + [""]
        )
    parts += ["## Headline findings", ""] + [f"- {line}" for line in content.headline] + [""]
    parts += ["## Findings per category", "", _md_table(_summary(content.table)), ""]
    for caption, name in content.figures.items():
        parts += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    parts += ["## Diagnostics", "", content.convergence, ""]
    parts += ["## Priors", ""] + [f"- `{k}`: `{v}`" for k, v in content.priors.items()] + [""]
    parts += ["## Provenance", ""] + [f"- {k}: `{v}`" for k, v in content.provenance.items()]
    return "\n".join(parts) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f2f2f2}.warning{background:#fff3cd;border-left:4px solid #e0a800;padding:.5em 1em}
.unconverged{background:#f8d7da;border-left:4px solid #c82333;padding:.5em 1em;font-weight:bold}
img{max-width:100%}code{font-size:0.85em}
"""


def render_html(content: ReportContent, figure_dir: Path) -> str:
    """The report as one HTML file with figures embedded (no network needed to view it)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(content.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(content.title)}</h1>",
    ]
    for warning in content.warnings:
        cls = "unconverged" if warning.startswith("UNCONVERGED") else "warning"
        parts.append(f"<p class='{cls}'>{esc(warning)}</p>")
    parts.append("<h2>Headline findings</h2><ul>")
    parts += [f"<li>{esc(line)}</li>" for line in content.headline]
    parts.append("</ul><h2>Findings per category</h2>")
    parts.append(_html_table(_summary(content.table)))
    for caption, name in content.figures.items():
        data = base64.b64encode((figure_dir / name).read_bytes()).decode("ascii")
        parts.append(
            f"<figure><img alt='{esc(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    parts.append(f"<h2>Diagnostics</h2><p>{esc(content.convergence)}</p><h2>Priors</h2><ul>")
    parts += [
        f"<li><code>{esc(k)}</code>: <code>{esc(v)}</code></li>" for k, v in content.priors.items()
    ]
    parts.append("</ul><h2>Provenance</h2><ul>")
    parts += [f"<li>{esc(k)}: <code>{esc(v)}</code></li>" for k, v in content.provenance.items()]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
