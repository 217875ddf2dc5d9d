"""Rows and clips per outcome and the video levels of the one accounting (sql/accounting.sql), by DuckDB over a video
ingest folder. `tessera stats OUT` shows these when OUT holds video partitions; the Dagster check runs the same SQL.
Only partitions whose clip shards all finished are counted (a partition still downloading is left out, and listed).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.accounting import UNIT, define_levels, flat, level_rows
from pipelines.core.sql import connect, parquet_view, query_rows
from pipelines.core.partitions_store import finished_partitions
from pipelines.video import schema as V
from pipelines.video.partitions import VIDEO_PARTITIONS, clips_job, video_file

# Titles of this track's `tessera stats` tables (its `stats_titles` role).
TITLES = {
    "video_outcomes": "Video rows and clips per outcome",
    "video_accounting": "Video accounting (every row and clip once)",
}

_EMPTY = {
    "rejects": "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR reason WHERE false",
    "row_sidecars": "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR status, "
                    "NULL::VARCHAR reason WHERE false",
    "clip_sidecars": "SELECT NULL::VARCHAR key, NULL::VARCHAR status, NULL::VARCHAR reason WHERE false",
}


def has_video(out: Path) -> bool:
    """True when `out` is an ingest folder with video partitions."""
    return any((Path(out) / V.VIDEO_DIR).glob("*.json"))


def _views(con, out: Path) -> str:
    """The video views of `out`'s finished partitions plus levels `rows` and `clips`; the unfinished partitions."""
    manifests = VIDEO_PARTITIONS.load(out)
    done, unfinished = finished_partitions(manifests, clips_job(out).finished())
    shards = [out / V.CLIPS_DIR / f"{s:05d}" for m in done for s in m.shard_ids]
    files = {
        "rejects": [video_file(out, m.name, "rejects") for m in done],
        "row_sidecars": [Path(f"{s}.rows.parquet") for s in shards],
        "clip_sidecars": [Path(f"{s}.parquet") for s in shards],
    }
    for view, paths in files.items():
        parquet_view(con, view, paths, _EMPTY[view])
    define_levels(con, {
        "rows": (sum(m.input_rows for m in done),
                 f"SELECT {UNIT} AS unit, NULL AS key FROM rejects UNION ALL SELECT {UNIT}, NULL FROM row_sidecars"),
        "clips": (sum(m.clips for m in done), "SELECT key AS unit, key FROM clip_sidecars"),
    })
    return unfinished


def video_outcome_views(con, out: Path) -> None:
    """Levels `rows` (every input row rejected or in one row sidecar) and `clips` (every clip of an accepted row in
    one clip sidecar, keys unique) over the partitions whose clip shards all finished."""
    _views(con, Path(out))


def video_stats(out: Path) -> dict:
    """Headline counts, outcome table, accounting and unfinished partitions of the video part of an ingest folder."""
    out = Path(out)
    con = connect()
    unfinished = _views(con, out)
    levels = level_rows(con, "video")
    outcomes = query_rows(con, "video_outcomes")
    rows = {o: sum(r["n"] for r in outcomes if r["what"] == "row" and r["outcome"] == o)
            for o in (V.SUCCESS, V.FAILED, "rejected")}
    return {
        "input_rows": flat(levels)["rows_expected"], "success": rows[V.SUCCESS], "failed": rows[V.FAILED],
        "rejected": rows["rejected"], "shards": len(list(clips_job(out).finished())),
        "video_outcomes": outcomes,
        "video_accounting": flat(levels),
        "video_partitions_unfinished": unfinished,
    }
