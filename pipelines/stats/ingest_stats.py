"""Shard statistics for an ingest folder, computed by the `sql/` queries over the sidecars and stats files."""

from __future__ import annotations

from pathlib import Path

from pipelines.stats.ingest_views import ingest_connection
from pipelines.core.sql import sql_text


def _rows(con, name: str) -> list[dict]:
    cur = con.execute(sql_text(name))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def run_query(out: Path, name: str) -> list[dict]:
    """Run `sql/<name>.sql` over the ingest folder `out` and return its rows as dicts."""
    return _rows(ingest_connection(out), name)


def ingest_stats(out: Path) -> dict:
    """All ingest statistics as one JSON-ready dict; headline counts sit at the top level."""
    con = ingest_connection(out)
    totals = _rows(con, "stats_totals")[0]
    return {
        **totals,
        "folder": str(Path(out).resolve()),
        "accounting": _rows(con, "check_accounting")[0],
        "success_rate": _rows(con, "check_success_rate")[0]["success_rate"],
        "outcomes": _rows(con, "stats_outcomes"),
        "fail_reasons": _rows(con, "stats_fail_reasons"),
        "errors": _rows(con, "stats_errors"),
        "per_shard": _rows(con, "stats_shards"),
        "bytes": _rows(con, "stats_bytes")[0],
        "image_sizes": _rows(con, "stats_image_sizes"),
        "caption_lengths": _rows(con, "stats_caption_lengths")[0],
    }
