"""Assessment reports: Markdown and self-contained HTML built from the same content."""

from risklab.report.content import ReportContent, build_content
from risklab.report.render import render_html, render_markdown

__all__ = ["ReportContent", "build_content", "render_html", "render_markdown"]
