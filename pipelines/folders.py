"""What an output folder holds, across every registered track: the tracks present, one accounting over all of
them, `tessera stats` and the end-of-ingest line. Sits above the tracks, beside the registry; core and stats stay
below and know no track.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pipelines.core import schema as S
from pipelines.core.accounting import accounting_holds, summary, track_accounting
from pipelines.core.errors import TesseraUserError
from pipelines.stats.ingest_stats import ingest_stats
from pipelines.stats.report import SHARD_TITLES, render, render_folder
from pipelines.tracks import track, tracks

HEADLINE = ("input_rows", "success", "failed", "rejected", "shards")


def present_tracks(out: Path) -> list:
    """The registered tracks that hold data in `out`, in registry order."""
    return [t for t in tracks() if t.has("has_data") and t.get("has_data")(out)]


def track_levels(name: str, out: Path) -> list[dict]:
    """The accounting level rows of the registered track `name` over `out` (its `outcome_views` role)."""
    return track_accounting(name, track(name).get("outcome_views"), out)


def folder_accounting(out: Path) -> list[dict]:
    """The accounting level rows of every track that holds data in `out`, in registry order."""
    return [row for t in present_tracks(out) if t.has("outcome_views") for row in track_levels(t.name, out)]


def folder_stats(out: Path) -> dict:
    """Stats of any Tessera output folder: the headline counts of its first track (registry order), the tracks it
    holds, the one accounting of all of them, then one section per track (each track's `stats` role)."""
    out = Path(out)
    if not out.is_dir():
        raise TesseraUserError(f"no such output folder: {out}")
    present = present_tracks(out)
    if not present:
        raise TesseraUserError(f"{out} holds no Tessera output (expected {S.SHARDS_DIR}/ from `tessera ingest`)")
    sections = {t.name: t.get("stats")(out) for t in present}
    levels = folder_accounting(out)
    first = sections[present[0].name]
    return {"folder": str(out.resolve()), "tracks": [t.name for t in present], **{k: first[k] for k in HEADLINE},
            "accounting": {"holds": accounting_holds(levels), "levels": levels}, **sections}


def render_folder_stats(stats: dict, console: Console | None = None) -> None:
    """Print `folder_stats` as tables, each track's section under its title with the table titles it declares."""
    present = [t for t in tracks() if t.name in set(stats["tracks"])]
    render_folder(stats, [(t.name, t.title, t.get("stats_titles") if t.has("stats_titles") else {})
                          for t in present], console)


def print_ingest_report(out: Path, manifest, brief: bool = False) -> None:
    """End-of-ingest summary: this partition's counts, then (unless brief) the folder's image-shard tables; the
    accounting covers every track in the folder (sql/accounting.sql)."""
    stats = ingest_stats(out)
    console = Console()
    if not brief:
        render(stats, console, titles=SHARD_TITLES)
    console.print(
        f"partition {manifest.name}: {manifest.input_rows:,} rows read, {manifest.rejected:,} rejected before "
        f"download, {manifest.accepted:,} sent to img2dataset in {manifest.n_shards} shard(s). Folder: "
        f"{stats['success']:,} images, {stats['failed']:,} failed, {stats['rejected']:,} rejected; "
        + summary(folder_accounting(out))
    )
