"""Assessment reports: Markdown and self-contained HTML built from the same sections.

:func:`build_report` collects the sections of an assessment into a :class:`Report`;
:func:`render_markdown` and :func:`render_html` render it. Other analyses add their own
:class:`Section` (title, Markdown body, PNG :class:`Figure`) through ``extra_sections`` — see
:mod:`risklab.report.content` for the extension point.
"""

from risklab.report.content import SECTION_ORDER, Report, build_report
from risklab.report.headline import CONTRADICTION_PROB, headline_lines
from risklab.report.markdown import markdown_to_html
from risklab.report.monitoring import build_monitoring_report, monitoring_report
from risklab.report.render import render_html, render_markdown
from risklab.report.sections import Figure, Section, markdown_table, pct

__all__ = [
    "CONTRADICTION_PROB",
    "SECTION_ORDER",
    "Figure",
    "Report",
    "Section",
    "build_monitoring_report",
    "build_report",
    "headline_lines",
    "markdown_table",
    "markdown_to_html",
    "monitoring_report",
    "pct",
    "render_html",
    "render_markdown",
]
