"""Building blocks of a report: :class:`Section` and :class:`Figure`, independent of format.

A section is a title, a Markdown body (the small subset :mod:`risklab.report.markdown` renders:
paragraphs, ``-`` bullet lists, pipe tables, ``###`` sub-headings, fenced code blocks, inline
code, bold and italics) and any number of figures held as PNG bytes. The same section renders to
Markdown (figures written as PNG files beside ``report.md``) and to self-contained HTML (figures
embedded as base64 ``data:`` URIs).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure as MplFigure

__all__ = ["PNG_SIGNATURE", "Figure", "Section", "markdown_table", "pct"]

#: First eight bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Figure:
    """One figure of a report.

    Attributes
    ----------
    name : str
        File name of the PNG written beside ``report.md`` (``[a-z0-9_]+.png``).
    alt : str
        Alternative text: what the figure shows, for readers who cannot see it.
    caption : str
        Caption printed under the figure.
    png : bytes
        The image.
    """

    name: str
    alt: str
    caption: str
    png: bytes = field(repr=False)

    def __post_init__(self) -> None:
        stem = self.name.removesuffix(".png")
        if (
            not self.name.endswith(".png")
            or not stem
            or not all(c.islower() or c.isdigit() or c in "_-" for c in stem)
        ):
            raise ValueError(
                f"figure name must look like 'name.png' (a-z, 0-9, _), got {self.name!r}"
            )
        if not self.alt.strip():
            raise ValueError(f"figure {self.name}: alt text must not be empty")
        if not self.png.startswith(PNG_SIGNATURE):
            raise ValueError(f"figure {self.name}: not PNG data")

    @classmethod
    def from_matplotlib(
        cls,
        figure: MplFigure,
        *,
        name: str,
        alt: str,
        caption: str,
        dpi: int = 110,
        close: bool = True,
    ) -> Figure:
        """Render a matplotlib figure to PNG (deterministic: no software or date metadata).

        Parameters
        ----------
        figure : matplotlib.figure.Figure
            The figure (``ax.figure`` for an Axes returned by a plotting function).
        name, alt, caption : str
            See the class attributes.
        dpi : int
            Resolution of the PNG.
        close : bool
            Close the figure afterwards (frees its memory in long runs).
        """
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        if close:
            plt.close(figure)
        return cls(name=name, alt=alt, caption=caption, png=buffer.getvalue())


@dataclass
class Section:
    """One section of a report.

    Attributes
    ----------
    key : str
        Stable identifier (``"headline"``, ``"diagnostics"``, ...); used as the HTML anchor.
    title : str
        Heading of the section.
    body : str
        Markdown body (see the module docstring for the supported subset).
    figures : list of Figure
        Figures shown after the body, in order.
    """

    key: str
    title: str
    body: str = ""
    figures: list[Figure] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.key or not all(c.islower() or c.isdigit() or c in "_-" for c in self.key):
            raise ValueError(
                f"section key must be lower-case letters, digits, _ or -: {self.key!r}"
            )
        if not self.title.strip():
            raise ValueError(f"section {self.key!r} needs a title")


def pct(x: float, digits: int = 3) -> str:
    """A share as a percentage to ``digits`` significant figures, never in exponent notation
    (``0.00523`` → ``0.523%``, ``1.0`` → ``100%``); NaN gives ``–``."""
    if x != x:  # NaN
        return "–"
    value = 100.0 * float(x)
    if value == 0:
        return "0%"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if float(text) != 0 and len(text.replace("-", "").replace(".", "").lstrip("0")) > digits:
        # rounding carried into a new digit (99.96 → 100.0): drop the extra decimal
        text = f"{value:.{max(0, decimals - 1)}f}"
    return text + "%"


def markdown_table(frame: pd.DataFrame, *, numeric: tuple[str, ...] | list[str] = ()) -> str:
    """A DataFrame as a Markdown pipe table (cells as given; ``|`` escaped, no index).

    Columns named in ``numeric`` are right-aligned (``---:``).
    """

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if c in numeric else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
