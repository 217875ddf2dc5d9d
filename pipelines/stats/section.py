"""What one stage shows a person: headline facts, tables and PNG figures, rendered as markdown (Dagster metadata).

The same `Section` feeds the Dagster asset pages and the `tessera report` HTML page, so both show the same numbers.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Table:
    """Rows of one table; `columns` maps row keys to the headers shown (default: the first row's keys)."""

    title: str
    rows: list[dict]
    columns: dict[str, str] | None = None

    def headers(self) -> dict[str, str]:
        """Row key -> header, in display order."""
        if self.columns:
            return dict(self.columns)
        return {k: k for k in (self.rows[0] if self.rows else {})}


@dataclass(frozen=True)
class Figure:
    """A PNG image with a title."""

    title: str
    png: bytes


@dataclass
class Section:
    """One stage folder's facts (name -> scalar), tables and figures, each under a stable metadata key."""

    stage: str
    title: str
    folder: Path
    facts: dict = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def fmt(value) -> str:
    """A cell as text: thousands separators for integers and large floats, 4 significant digits for small floats."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _md_cell(value) -> str:
    return fmt(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    """A GitHub-flavoured markdown table (Dagster renders it); an empty table shows one `(none)` row."""
    headers = table.headers() or {"": "(none)"}
    lines = ["| " + " | ".join(_md_cell(h) for h in headers.values()) + " |",
             "|" + "---|" * len(headers)]
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(row.get(k)) for k in headers) + " |")
    if not table.rows:
        lines.append("| (none) |" + " |" * (len(headers) - 1))
    return "\n".join(lines)


def data_uri(png: bytes) -> str:
    """`data:image/png;base64,...` for an <img> tag or a markdown image."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def md_image(figure: Figure) -> str:
    """A markdown image with the PNG inlined (Dagster's markdown sanitizer allows `data:` image sources)."""
    alt = figure.title.replace("[", "(").replace("]", ")")
    return f"![{alt}]({data_uri(figure.png)})"


def band_text(band) -> str:
    """`0.05-0.9` for a (low, high) keep-rate band."""
    return f"{fmt(float(band[0]))}-{fmt(float(band[1]))}" if band else ""
