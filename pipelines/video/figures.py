"""Video as a person reads it, for `tessera report`: rows and clips per outcome at ingest (facts, a table, two bar
charts), and the clip ledger of a curation folder per outcome and reason."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.shard_io import read_json
from pipelines.stats.outcome_plot import outcome_plot
from pipelines.stats.section import Figure, Section, Table
from pipelines.core.accounting import accounting_holds, track_accounting
from pipelines.video.stats import video_outcome_views, video_stats


def video_ingest_section(folder: Path) -> Section:
    """Accounting facts, the outcome table and the row/clip plots of a video ingest folder."""
    stats = video_stats(folder)
    levels = track_accounting("video", video_outcome_views, folder)
    facts = {"accounting": "holds" if accounting_holds(levels) else "BROKEN", **stats["video_accounting"],
             "partitions_unfinished": stats["video_partitions_unfinished"] or "none"}
    rows = stats["video_outcomes"]
    tables = {"video_outcomes": Table("Rows and clips per outcome", rows,
                                      {"what": "what", "outcome": "outcome", "reason": "reason", "n": "n"})}
    figures = {f"{what}_outcomes": Figure(f"{what.capitalize()}s per outcome", outcome_plot(rows, what))
               for what in ("row", "clip")}
    return Section("video_ingest", "Video ingest", Path(folder), facts, tables, figures)


def video_curate_section(folder: Path) -> Section:
    """Preset, counts and the clip ledger per outcome of a video curation folder."""
    summary = read_json(Path(folder) / "summary.json", default={}) or {}
    rows = [{"what": "clip", "outcome": r["outcome"], "reason": ": ".join(x for x in (r.get("stage"), r.get("reason"))
                                                                         if x), "n": r["n"]}
            for r in summary.get("by_outcome", [])]
    facts = {k: summary.get(k) for k in ("preset", "model", "clips", "kept", "dropped")}
    tables = {"clip_outcomes": Table("Clips per outcome (stage: reason)", rows,
                                     {"outcome": "outcome", "reason": "stage: reason", "n": "n"})}
    figures = {"clip_outcomes": Figure("Clips per outcome", outcome_plot(rows, "clip"))}
    return Section("video_curate", "Video curation", Path(folder), facts, tables, figures)
