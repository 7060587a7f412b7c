"""The Markdown subset that report sections are written in, rendered to HTML.

Supported, and nothing else: paragraphs (blocks separated by blank lines), ``-`` bullet lists
(continuation lines indented), pipe tables (a header row, a ``|---|`` rule, body rows; ``\\|``
for a literal bar), ``###``/``####`` sub-headings, fenced code blocks (three backticks), and inline
code, ``**bold**`` and ``*italics*``. Links and images are not part of the subset (a report needs
no network; figures travel beside the body, see :class:`~risklab.report.sections.Figure`), and all
text is HTML-escaped, so a section body cannot inject markup.
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_to_html"]

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\*\w])\*(?=\S)(.+?)(?<=\S)\*(?![\*\w])")
_HEADING = re.compile(r"^(#{3,6})\s+(.*)$")
_RULE_CELL = re.compile(r"^:?-{3,}:?$")


def _inline(text: str) -> str:
    parts = text.split("`")
    if len(parts) % 2 == 0:  # unbalanced backtick: treat the last one literally
        parts[-2] = parts[-2] + "`" + parts.pop()
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            escaped = html.escape(part, quote=False)
            escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
            escaped = _ITALIC.sub(r"<em>\1</em>", escaped)
            out.append(escaped)
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [c.strip().replace("\\|", "|") for c in cells]


def _is_table(lines: list[str]) -> bool:
    return (
        len(lines) >= 2
        and lines[0].lstrip().startswith("|")
        and all(_RULE_CELL.match(c) for c in _cells(lines[1]))
    )


def _table(lines: list[str]) -> str:
    header = _cells(lines[0])
    align = ["right" if c.endswith(":") and not c.startswith(":") else "" for c in _cells(lines[1])]
    head = "".join(f"<th scope='col'>{_inline(c)}</th>" for c in header)
    rows = []
    for line in lines[2:]:
        cells = _cells(line)
        tds = []
        for j, c in enumerate(cells):
            style = " class='num'" if j < len(align) and align[j] == "right" else ""
            tag = "th scope='row'" if j == 0 else "td"
            end = "th" if j == 0 else "td"
            tds.append(f"<{tag}{style}>{_inline(c)}</{end}>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return (
        "<div class='table-wrap'><table><thead><tr>"
        + head
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _bullets(lines: list[str]) -> str:
    items: list[str] = []
    for line in lines:
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif items:
            items[-1] += " " + line.strip()
        else:
            items.append(line.strip())
    return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>"


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """Split into (kind, lines) blocks: code, heading, table, list, paragraph."""
    blocks: list[tuple[str, list[str]]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    current: list[str] = []

    def flush() -> None:
        if current:
            if _is_table(current):
                blocks.append(("table", list(current)))
            elif current[0].startswith("- "):
                blocks.append(("list", list(current)))
            else:
                blocks.append(("paragraph", list(current)))
            current.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(("code", body))
        elif _HEADING.match(line):
            flush()
            blocks.append(("heading", [line]))
        elif not line.strip():
            flush()
        else:
            current.append(line)
        i += 1
    flush()
    return blocks


def markdown_to_html(text: str) -> str:
    """Render the supported Markdown subset (see the module docstring) as HTML.

    Parameters
    ----------
    text : str
        A section body.

    Returns
    -------
    str
        HTML fragment; every piece of text is escaped.
    """
    out = []
    for kind, lines in _blocks(text):
        if kind == "code":
            out.append("<pre><code>" + html.escape("\n".join(lines)) + "</code></pre>")
        elif kind == "heading":
            hashes, title = _HEADING.match(lines[0]).groups()
            out.append(f"<h{len(hashes)}>{_inline(title)}</h{len(hashes)}>")
        elif kind == "table":
            out.append(_table(lines))
        elif kind == "list":
            out.append(_bullets(lines))
        else:
            out.append("<p>" + _inline(" ".join(s.strip() for s in lines)) + "</p>")
    return "\n".join(out)
