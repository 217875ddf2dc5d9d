"""Readable terminal tables for stats dicts (the `--json` form prints the same dict). Knows no track: a folder's
stats come in with the titles each track declares (`pipelines.folders` assembles them from the registry)."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from rich.console import Console
from rich.table import Table

from pipelines.core.accounting import summary

# Titles of the tables of the image-shard layout (pairs and document images share it).
SHARD_TITLES = {
    "outcomes": "Outcome of every input row",
    "fail_reasons": "Why downloads failed (fetch-layer reasons)",
    "errors": "Download error classes",
    "per_shard": "Shards",
    "image_sizes": "Original image size (successful downloads)",
    "caption_lengths": "Caption lengths",
    "bytes": "Bytes on disk",
    "accounting": "Accounting invariant",
}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    cols = list(rows[0]) if rows else ["(none)"]
    for col in cols:
        table.add_column(col, justify="right" if rows and isinstance(rows[0][col], (int, float)) else "left")
    for row in rows:
        table.add_row(*(_fmt(row[c]) for c in cols))
    return table


def _is_table(value) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value))


def _render_tables(stats: dict, titles: Mapping[str, str], console: Console, max_rows: int) -> None:
    for key, value in stats.items():
        title = titles.get(key, key.replace("_", " ").capitalize())
        if isinstance(value, dict):
            console.print(_table(title, [value]))
        elif isinstance(value, list) and _is_table(value):
            shown = value[:max_rows]
            more = f" (first {max_rows} of {len(value)})" if len(value) > max_rows else ""
            console.print(_table(title + more, shown))


def render(stats: dict, console: Console | None = None, max_rows: int = 30,
           titles: Mapping[str, str] = SHARD_TITLES) -> None:
    """Print a stats dict: scalars as a headline table, dicts and lists of dicts as their own tables."""
    console = console or Console()
    scalars = {k: v for k, v in stats.items() if not _is_table(v)}
    console.print(_table("Summary", [{"metric": k, "value": _fmt(v)} for k, v in scalars.items()]))
    _render_tables(stats, titles, console, max_rows)


def render_folder(stats: dict, sections: Sequence[tuple[str, str, Mapping[str, str]]],
                  console: Console | None = None, max_rows: int = 30) -> None:
    """Print a folder's stats: its headline, its accounting levels, then each `(key, title, titles)` section."""
    console = console or Console()
    names = {key for key, _, _ in sections}
    head = {k: (", ".join(v) if k == "tracks" else v) for k, v in stats.items() if k not in names and k != "accounting"}
    console.print(_table("Summary", [{"metric": k, "value": _fmt(v)} for k, v in head.items()]))
    levels = stats["accounting"]["levels"]
    console.print(_table(f"Accounting: {summary(levels)}", levels) if levels else "Accounting: no levels here")
    for key, title, titles in sections:
        console.rule(title)
        render(stats[key], console, max_rows, titles)


def print_json(stats: dict) -> None:
    """One JSON object on one line."""
    print(json.dumps(stats, default=str))
