"""DuckDB views over an ingest folder's files (no copy): `samples`, `rejects`, `shard_stats`, `partitions`, `tars`,
and the pair track's outcome views for sql/accounting.sql (`expected`, `outcomes`: level `rows`).

Only finished shards (those with a `_stats.json`) are visible, so half-written shards never leak into stats or checks.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.core import schema as S
from pipelines.core.accounting import UNIT, define_levels
from pipelines.core.shards import complete_shards
from pipelines.core.sql import connect, path_list

_EMPTY_SAMPLES = (
    "SELECT NULL::VARCHAR AS key, NULL::VARCHAR AS url, NULL::VARCHAR AS caption, NULL::VARCHAR AS status, "
    "NULL::VARCHAR AS error_message, NULL::INTEGER AS width, NULL::INTEGER AS height, NULL::INTEGER AS original_width, "
    "NULL::INTEGER AS original_height, NULL::VARCHAR AS sha256, NULL::VARCHAR AS source, "
    "NULL::VARCHAR AS input_file, NULL::BIGINT AS input_row WHERE false"
)
_EMPTY_REJECTS = (
    "SELECT NULL::VARCHAR AS input_file, NULL::BIGINT AS input_row, NULL::VARCHAR AS url, NULL::VARCHAR AS caption, "
    "NULL::VARCHAR AS source, NULL::VARCHAR AS reason, NULL::VARCHAR AS duplicate_of WHERE false"
)
_EMPTY_STATS = (
    "SELECT NULL::VARCHAR AS shard, NULL::BIGINT AS count, NULL::BIGINT AS successes, "
    "NULL::BIGINT AS failed_to_download, NULL::BIGINT AS failed_to_resize, NULL::DOUBLE AS duration WHERE false"
)
_EMPTY_PARTITIONS = "SELECT NULL::VARCHAR AS name, NULL::BIGINT AS input_rows, NULL::BIGINT AS n_shards WHERE false"
_EMPTY_TARS = "SELECT NULL::VARCHAR AS shard, NULL::BIGINT AS size WHERE false"


def ingest_connection(out: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ingest views and the outcome views defined over `out`."""
    con = connect()
    pair_outcome_views(con, out)
    return con


def pair_outcome_views(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """The ingest views over `out` plus level `rows`: every input row of a partition manifest once, in a shard
    sidecar (keyed by its sample key) or in the rejects ledger."""
    _ingest_views(con, Path(out))
    outcomes = f"SELECT {UNIT} AS unit, key FROM samples UNION ALL SELECT {UNIT}, NULL FROM rejects"
    define_levels(con, {"rows": ("SELECT coalesce(sum(input_rows), 0) FROM partitions", outcomes)})


def _ingest_views(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    shards = complete_shards(out)
    rejects = sorted((out / S.REJECTS_DIR).glob("*.parquet"))
    partitions = sorted((out / S.PARTITIONS_DIR).glob("*.json"))
    views = {
        "samples": (
            f"SELECT * FROM read_parquet({path_list([s.parquet for s in shards])}, union_by_name=true)"
            if shards else _EMPTY_SAMPLES
        ),
        "rejects": (
            f"SELECT * FROM read_parquet({path_list(rejects)}, union_by_name=true)" if rejects else _EMPTY_REJECTS
        ),
        "shard_stats": (
            f"SELECT regexp_extract(filename, '(\\d+)_stats\\.json$', 1) AS shard, * EXCLUDE (filename) "
            f"FROM read_json({path_list([s.stats for s in shards])}, filename=true, union_by_name=true)"
            if shards else _EMPTY_STATS
        ),
        "partitions": (
            f"SELECT * FROM read_json({path_list(partitions)}, union_by_name=true)" if partitions else _EMPTY_PARTITIONS
        ),
        "tars": (
            f"SELECT regexp_extract(filename, '(\\d+)\\.tar$', 1) AS shard, size "
            f"FROM read_blob({path_list([s.tar for s in shards if s.tar.exists()])})"
            if any(s.tar.exists() for s in shards) else _EMPTY_TARS
        ),
    }
    for name, query in views.items():
        con.execute(f"CREATE VIEW {name} AS {query}")
