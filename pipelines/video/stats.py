"""Rows and clips per outcome and the accounting invariant, by DuckDB over a video ingest folder.

`tessera stats OUT` shows these when OUT holds video partitions; the Dagster check runs the same SQL. Only
partitions whose clip shards all finished are counted (a partition still downloading is left out, and listed).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.sql import connect, literal, parquet_view, query_rows
from pipelines.core.partitions_store import finished_partitions
from pipelines.video import schema as V
from pipelines.video.partitions import VIDEO_PARTITIONS, clips_job, video_file

_EMPTY = {
    "rejects": "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR reason WHERE false",
    "row_sidecars": "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR status, "
                    "NULL::VARCHAR reason WHERE false",
    "clip_sidecars": "SELECT NULL::VARCHAR key, NULL::VARCHAR status, NULL::VARCHAR reason WHERE false",
}


def has_video(out: Path) -> bool:
    """True when `out` is an ingest folder with video partitions."""
    return any((Path(out) / V.VIDEO_DIR).glob("*.json"))


def video_stats(out: Path) -> dict:
    """Outcome table, accounting and unfinished partitions of the video part of an ingest folder."""
    out = Path(out)
    manifests = VIDEO_PARTITIONS.load(out)
    done, unfinished = finished_partitions(manifests, clips_job(out).finished())
    shards = [out / V.CLIPS_DIR / f"{s:05d}" for m in done for s in m.shard_ids]
    con = connect()
    rows = [f"({literal(m.name)}, {m.input_rows}, {m.accepted}, {m.clips})" for m in done] or ["('', 0, 0, 0)"]
    con.execute(f"CREATE VIEW manifests AS SELECT * FROM (VALUES {', '.join(rows)}) v(name, input_rows, accepted, "
                "clips)")
    files = {
        "rejects": [video_file(out, m.name, "rejects") for m in done],
        "row_sidecars": [Path(f"{s}.rows.parquet") for s in shards],
        "clip_sidecars": [Path(f"{s}.parquet") for s in shards],
    }
    for view, paths in files.items():
        parquet_view(con, view, paths, _EMPTY[view])
    return {
        "video_outcomes": query_rows(con, "video_outcomes"),
        "video_accounting": query_rows(con, "video_accounting")[0],
        "video_partitions_unfinished": unfinished,
    }


def video_accounting_holds(acc: dict) -> bool:
    """Every row once, every clip once, unique keys."""
    return (acc["rows_expected"] == acc["rows_accounted"] and acc["clips_expected"] == acc["clips_accounted"]
            and not acc["rows_duplicated"] and not acc["duplicate_keys"])
