"""Shard statistics for an ingest folder, computed by the `sql/` queries over the sidecars and stats files."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.accounting import FIELDS, level_rows
from pipelines.core.sql import query_rows
from pipelines.stats.ingest_views import ingest_connection


def run_query(out: Path, name: str) -> list[dict]:
    """Run `sql/<name>.sql` over the ingest folder `out` and return its rows as dicts."""
    return query_rows(ingest_connection(out), name)


def _rows_level(con) -> dict:
    (row,) = level_rows(con, "pairs")
    return {f: row[f] for f in FIELDS}


def pair_accounting(out: Path) -> dict:
    """The pair accounting of `out` (sql/accounting.sql, level `rows`): expected, accounted, missing, duplicated,
    duplicate_keys."""
    return _rows_level(ingest_connection(out))


def ingest_stats(out: Path) -> dict:
    """All ingest statistics as one JSON-ready dict; headline counts sit at the top level."""
    con = ingest_connection(out)
    totals = query_rows(con, "stats_totals")[0]
    return {
        **totals,
        "folder": str(Path(out).resolve()),
        "accounting": _rows_level(con),
        "success_rate": query_rows(con, "check_success_rate")[0]["success_rate"],
        "outcomes": query_rows(con, "stats_outcomes"),
        "fail_reasons": query_rows(con, "stats_fail_reasons"),
        "errors": query_rows(con, "stats_errors"),
        "per_shard": query_rows(con, "stats_shards"),
        "bytes": query_rows(con, "stats_bytes")[0],
        "image_sizes": query_rows(con, "stats_image_sizes"),
        "caption_lengths": query_rows(con, "stats_caption_lengths")[0],
    }
