"""`tessera stats`: the stats of any output folder from the tracks it holds (registry roles `has_data`, `stats`,
`outcome_views`), as readable terminal tables (the `--json` form prints the same dict); the end-of-ingest summary."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.core import schema as S
from pipelines.core.accounting import accounting_holds, folder_accounting, summary
from pipelines.core.errors import TesseraUserError
from pipelines.stats.ingest_stats import ingest_stats
from pipelines.tracks import tracks

_TITLES = {
    "outcomes": "Outcome of every input row",
    "fail_reasons": "Why downloads failed (fetch-layer reasons)",
    "errors": "Download error classes",
    "per_shard": "Shards",
    "image_sizes": "Original image size (successful downloads)",
    "caption_lengths": "Caption lengths",
    "bytes": "Bytes on disk",
    "accounting": "Accounting invariant",
    "document_outcomes": "Documents and their images per outcome",
    "document_accounting": "Document accounting (every document and image occurrence once)",
    "video_outcomes": "Video rows and clips per outcome",
    "video_accounting": "Video accounting (every row and clip once)",
    "molecule_outcomes": "Molecule records per outcome",
    "molecule_atoms": "Heavy atoms per kept molecule",
    "molecule_atoms_histogram": "Kept molecules by heavy-atom count",
    "molecule_conformers": "Kept molecules by conformer method",
    "molecule_accounting": "Molecule accounting (every record once, kept = shard rows)",
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


def _render_tables(stats: dict, console: Console, max_rows: int) -> None:
    for key, value in stats.items():
        title = _TITLES.get(key, key.replace("_", " ").capitalize())
        if isinstance(value, dict):
            console.print(_table(title, [value]))
        elif isinstance(value, list) and _is_table(value):
            shown = value[:max_rows]
            more = f" (first {max_rows} of {len(value)})" if len(value) > max_rows else ""
            console.print(_table(title + more, shown))


def render(stats: dict, console: Console | None = None, max_rows: int = 30) -> None:
    """Print a stats dict: scalars as a headline table, dicts and lists of dicts as their own tables; a folder's
    stats (`folder_stats`) as its headline, its accounting levels, then each track's section the same way."""
    console = console or Console()
    if "tracks" not in stats:
        scalars = {k: v for k, v in stats.items() if not _is_table(v)}
        console.print(_table("Summary", [{"metric": k, "value": _fmt(v)} for k, v in scalars.items()]))
        _render_tables(stats, console, max_rows)
        return
    names = set(stats["tracks"])
    head = {k: (", ".join(v) if k == "tracks" else v) for k, v in stats.items() if k not in names and k != "accounting"}
    console.print(_table("Summary", [{"metric": k, "value": _fmt(v)} for k, v in head.items()]))
    levels = stats["accounting"]["levels"]
    console.print(_table(f"Accounting: {summary(levels)}", levels) if levels else "Accounting: no levels here")
    for track in (t for t in tracks() if t.name in names):
        console.rule(track.title)
        render(stats[track.name], console, max_rows)


HEADLINE = ("input_rows", "success", "failed", "rejected", "shards")


def folder_stats(out: Path) -> dict:
    """Stats of any Tessera output folder: the headline counts of its first track (registry order), the tracks it
    holds, the one accounting of all of them, then one section per track (each track's `stats` role)."""
    out = Path(out)
    if not out.is_dir():
        raise TesseraUserError(f"no such output folder: {out}")
    present = [t for t in tracks() if t.has("has_data") and t.get("has_data")(out)]
    if not present:
        raise TesseraUserError(f"{out} holds no Tessera output (expected {S.SHARDS_DIR}/ from `tessera ingest`)")
    sections = {t.name: t.get("stats")(out) for t in present}
    levels = folder_accounting(out)
    first = sections[present[0].name]
    return {"folder": str(out.resolve()), "tracks": [t.name for t in present], **{k: first[k] for k in HEADLINE},
            "accounting": {"holds": accounting_holds(levels), "levels": levels}, **sections}


def print_ingest_report(out: Path, manifest, brief: bool = False) -> None:
    """End-of-ingest summary: this partition's counts, then (unless brief) the folder's pair stats tables; the
    accounting covers every track in the folder (sql/accounting.sql)."""
    stats = ingest_stats(out)
    console = Console()
    if not brief:
        render(stats, console)
    console.print(
        f"partition {manifest.name}: {manifest.input_rows:,} rows read, {manifest.rejected:,} rejected before "
        f"download, {manifest.accepted:,} sent to img2dataset in {manifest.n_shards} shard(s). Folder: "
        f"{stats['success']:,} images, {stats['failed']:,} failed, {stats['rejected']:,} rejected; "
        + summary(folder_accounting(out))
    )


def print_json(stats: dict) -> None:
    """One JSON object on one line."""
    print(json.dumps(stats, default=str))
