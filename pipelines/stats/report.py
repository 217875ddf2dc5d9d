"""Readable terminal tables for stats dicts (the `--json` form prints the same dict)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.stats.ingest_stats import ingest_stats

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


def render(stats: dict, console: Console | None = None, max_rows: int = 30) -> None:
    """Print a stats dict: scalars as a headline table, dicts and lists of dicts as their own tables."""
    console = console or Console()
    scalars = {k: v for k, v in stats.items() if not isinstance(v, (dict, list))}
    console.print(_table("Summary", [{"metric": k, "value": _fmt(v)} for k, v in scalars.items()]))
    for key, value in stats.items():
        title = _TITLES.get(key, key.replace("_", " ").capitalize())
        if isinstance(value, dict):
            console.print(_table(title, [value]))
        elif isinstance(value, list):
            shown = value[:max_rows]
            more = f" (first {max_rows} of {len(value)})" if len(value) > max_rows else ""
            console.print(_table(title + more, shown))


def folder_stats(out: Path) -> dict:
    """Stats for any Tessera output folder: ingest folders directly, later stages through their own module."""
    out = Path(out)
    if not out.is_dir():
        raise TesseraUserError(f"no such output folder: {out}")
    from pipelines.documents.stats import curate_document_stats, has_documents, ingest_document_stats

    from pipelines.molecules.stats import has_molecules, molecule_stats
    from pipelines.video.stats import has_video, video_stats

    if has_molecules(out):
        return molecule_stats(out)
    if (out / S.SHARDS_DIR).is_dir():
        stats = ingest_stats(out)
        stats = {**stats, **ingest_document_stats(out)} if has_documents(out) else stats
        return {**stats, **video_stats(out)} if has_video(out) else stats
    if has_video(out):
        return video_stats(out)
    if has_documents(out):
        return curate_document_stats(out)
    for marker, module in (("curated", "pipelines.curate.stats"),):
        if (out / marker).is_dir():
            return importlib.import_module(module).curate_stats(out)
    raise TesseraUserError(f"{out} holds no Tessera output (expected {S.SHARDS_DIR}/ from `tessera ingest`)")


def print_ingest_report(out: Path, manifest, brief: bool = False) -> None:
    """End-of-ingest summary: this partition's counts, then (unless brief) the folder's stats tables."""
    stats = ingest_stats(out)
    console = Console()
    if not brief:
        render(stats, console)
    acc = stats["accounting"]
    ok = acc["missing"] == 0 and acc["duplicated"] == 0
    console.print(
        f"partition {manifest.name}: {manifest.input_rows:,} rows read, {manifest.rejected:,} rejected before "
        f"download, {manifest.accepted:,} sent to img2dataset in {manifest.n_shards} shard(s). Folder: "
        f"{stats['success']:,} images, {stats['failed']:,} failed, {stats['rejected']:,} rejected; accounting "
        + ("holds." if ok else f"BROKEN ({acc['missing']} missing, {acc['duplicated']} duplicated).")
    )


def print_json(stats: dict) -> None:
    """One JSON object on one line."""
    print(json.dumps(stats, default=str))
