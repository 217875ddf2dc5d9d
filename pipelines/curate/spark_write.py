"""The outcome of a Spark selection, written from the executors: each shard's curated/NNNNN.parquet and
dropped/NNNNN.parquet, atomically, with the schemas the local path writes. Only counts by reason reach the driver.

Every shard gets one placeholder row (null key) carrying its sidecar and score paths, so a shard with no successful
row still gets its two (empty) files, and the shard's writer knows which files define its curated schema
(sql/curate_pool.sql over that shard alone, with no row read, as shard_select.py reads it).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import schema as S
from pipelines.core.shard_io import write_parquet_atomic
from pipelines.core.shard_reader import CURATED_DIR
from pipelines.core.sql import sql_text
from pipelines.curate import columns as C
from pipelines.curate.shard_select import DROPPED_DIR, Tally, ledger

SIDECAR, SCORE = "_sidecar", "_score"
KEPT = "_kept"  # the reason of the kept rows in the counts the writers return


def shard_schema(sidecar: str, score: str) -> pa.Schema:
    """The columns and types the local path gives this shard's pool rows (curate_pool.sql, no row read)."""
    import duckdb

    with duckdb.connect() as con:
        rel = con.sql(f"SELECT * FROM ({sql_text('curate_pool')}) LIMIT 0",
                      params={"sidecars": [sidecar], "scores": [score]})
        return rel.to_arrow_table().schema


def _as_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table`'s columns in `schema`'s order and types (Spark's Arrow types differ in width, not in values)."""
    # A column that is null-typed in the sidecar (all nulls) reads back from Spark as nulls of some other type.
    return pa.table([table[f.name].cast(f.type) if f.name in table.column_names and not pa.types.is_null(f.type)
                     else pa.nulls(table.num_rows, f.type) for f in schema], schema=schema)


def _shard_writer(out: str):
    """The per-shard function: write the shard's two files, return its counts as (reason, n)."""

    def write(table: pa.Table) -> pa.Table:
        place = table.filter(pc.is_null(table[S.KEY]))
        sid = place[C.SHARD][0].as_py()
        schema = shard_schema(place[SIDECAR][0].as_py(), place[SCORE][0].as_py())
        rows = table.filter(pc.is_valid(table[S.KEY])).sort_by(S.KEY)
        kept = rows.filter(pc.is_null(rows[C.DROP_REASON]))
        drops = ledger(rows)
        write_parquet_atomic(_as_schema(kept, schema), Path(out) / CURATED_DIR / f"{sid}.parquet")
        write_parquet_atomic(drops, Path(out) / DROPPED_DIR / f"{sid}.parquet")
        reasons = pc.value_counts(drops[S.REASON]).to_pylist() if drops.num_rows else []
        return pa.table({"reason": [KEPT] + [r["values"] for r in reasons],
                         "n": [kept.num_rows] + [r["counts"] for r in reasons]})

    return write


def write_from_executors(spark, selected, out: Path, shard_ids: list[str], sidecars: list[str],
                         scores: list[str]) -> dict:
    """Write every shard's files from the executors (one group per shard) and return the summary counts."""
    from pyspark.sql import functions as F

    places = spark.createDataFrame(list(zip(shard_ids, sidecars, scores)),
                                   f"{C.SHARD} string, {SIDECAR} string, {SCORE} string")
    rows = selected.withColumns({SIDECAR: F.lit(None).cast("string"), SCORE: F.lit(None).cast("string")})
    grouped = rows.unionByName(places, allowMissingColumns=True).groupBy(C.SHARD)
    counts = (grouped.applyInArrow(_shard_writer(str(out)), "reason string, n long")
              .groupBy("reason").agg(F.sum("n").alias("n")).collect())
    tally = Tally()
    for row in counts:
        if row["reason"] == KEPT:
            tally.samples += row["n"]
            tally.kept += row["n"]
        else:
            tally.samples += row["n"]
            tally.reasons[row["reason"]] += row["n"]
    return tally.summary()


def spark_run_selection(out: Path, pool, stages, spark=None) -> tuple[dict, float | None]:
    """The whole selection of `pool` (selection.PoolInputs) on Spark, curated/ and dropped/ written per shard
    from the executors; the summary counts and the chain's CLIP threshold."""
    from pipelines.core.spark_session import spark_session
    from pipelines.curate.selection import remove_stale
    from pipelines.curate.spark import spark_selection

    spark = spark or spark_session("tessera-curate")
    selected, threshold = spark_selection(spark, pool.sidecars, pool.scores, stages)
    Path(out).mkdir(parents=True, exist_ok=True)
    remove_stale(out, pool.shard_ids)
    return write_from_executors(spark, selected, Path(out), pool.shard_ids, pool.sidecars, pool.scores), threshold
