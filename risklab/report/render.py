"""Render a :class:`~risklab.report.content.Report` as Markdown or as one self-contained HTML file.

The HTML file needs nothing else to be read: figures are embedded as base64 PNG ``data:`` URIs,
the style sheet is inline, and it references no external resource (no ``http(s)://`` anywhere;
the only links are ``#anchors`` of the table of contents). It prints cleanly (the table of
contents is hidden, figures and tables are not split across pages). Every figure has alt text;
every table has header cells. The Markdown twin references the figures as PNG files beside it.
"""

from __future__ import annotations

import base64
import html

from risklab.report.content import Report
from risklab.report.markdown import markdown_to_html

__all__ = ["render_html", "render_markdown"]

_UNCONVERGED = "UNCONVERGED"


def render_markdown(report: Report) -> str:
    """The report as Markdown; figures are referenced as the PNG files named in the report."""
    parts = [f"# {report.title}", ""]
    if report.warnings:
        parts += ["## Warnings", ""]
        parts += [f"- **{w}**" if w.startswith(_UNCONVERGED) else f"- {w}" for w in report.warnings]
        parts.append("")
    for section in report.sections:
        parts += [f"## {section.title}", ""]
        if section.body:
            parts += [section.body.rstrip(), ""]
        for fig in section.figures:
            alt = fig.alt.replace("[", "(").replace("]", ")").replace("\n", " ")
            parts += [f"![{alt}]({fig.name})", "", f"*{fig.caption}*", ""]
    return "\n".join(parts).rstrip() + "\n"


_CSS = """
:root{--ink:#1f2328;--muted:#57606a;--rule:#d0d7de;--head:#f3f5f7}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 line-height:1.5;max-width:1180px;margin:2em auto;padding:0 1.2em;color:var(--ink);font-size:15px}
h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.3em;margin-top:2em;
 border-bottom:1px solid var(--rule);padding-bottom:.2em}h3{font-size:1.05em}
.meta{color:var(--muted);margin-top:0}
nav.toc{background:var(--head);border:1px solid var(--rule);padding:.6em 1em;font-size:.9em}
nav.toc ol{margin:.2em 0;padding-left:1.4em;columns:2}
nav.toc a{color:#0550ae;text-decoration:none}
.table-wrap{overflow-x:auto;margin:.8em 0}
table{border-collapse:collapse;font-size:.84em}
td,th{border:1px solid var(--rule);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:var(--head)}tbody th{font-weight:600;background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.warning{background:#fff8e1;border-left:5px solid #d4a017;padding:.5em 1em;margin:.6em 0}
.unconverged{background:#fde7e9;border:2px solid #c82333;border-left-width:8px;padding:.7em 1em;
 margin:.8em 0;font-weight:600;color:#6e0e16}
figure{margin:1.2em 0;text-align:center}figure img{max-width:100%;height:auto;
 border:1px solid #eee}figcaption{color:var(--muted);font-size:.88em;margin-top:.3em}
pre{background:#f6f8fa;border:1px solid var(--rule);padding:.8em;overflow-x:auto;
 font-size:.78em;line-height:1.35;max-height:40em}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
@media print{body{max-width:none;margin:0;font-size:11pt}nav.toc{display:none}
 figure,table,pre,.unconverged{break-inside:avoid}h2{break-after:avoid}
 pre{max-height:none;white-space:pre-wrap}.table-wrap{overflow:visible}}
"""


def _figure_html(fig) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    esc = html.escape
    return (
        f"<figure id='fig-{esc(fig.name.removesuffix('.png'))}'>"
        f'<img alt="{esc(fig.alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(fig.caption)}</figcaption></figure>"
    )


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (see the module docstring)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        "<header>",
        f"<h1>{esc(report.title)}</h1>",
    ]
    for warning in report.warnings:
        if warning.startswith(_UNCONVERGED):
            parts.append(f"<div class='unconverged' role='alert'>{esc(warning)}</div>")
    others = [w for w in report.warnings if not w.startswith(_UNCONVERGED)]
    parts.append("</header><nav class='toc' aria-label='Contents'><strong>Contents</strong><ol>")
    if others:
        parts.append("<li><a href='#warnings'>Caveats</a></li>")
    parts += [f"<li><a href='#{esc(s.key)}'>{esc(s.title)}</a></li>" for s in report.sections]
    parts.append("</ol></nav><main>")
    if others:
        parts.append("<section id='warnings'><h2>Caveats</h2>")
        parts += [f"<div class='warning'>{esc(w)}</div>" for w in others]
        parts.append("</section>")
    for section in report.sections:
        parts.append(f"<section id='{esc(section.key)}'><h2>{esc(section.title)}</h2>")
        if section.body:
            parts.append(markdown_to_html(section.body))
        parts += [_figure_html(fig) for fig in section.figures]
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"
