"""The pool-wide half of `tessera curate`: join scores onto metadata, run the preset's filters, write the outcome.

Filters need the whole pool (top fraction, dedup across shards), so they run over one table; the outcome is
written per ingest shard: curated/NNNNN.parquet (kept rows) and dropped/NNNNN.parquet (the drop ledger).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import curate_columns as C
from pipelines import schema as S
from pipelines.clip_top_fraction_filter import ClipTopFractionFilter, pool_threshold
from pipelines.curate_scoring import SCORES_DIR
from pipelines.errors import TesseraUserError
from pipelines.shard_io import write_json_atomic, write_parquet_atomic
from pipelines.shards import complete_shards
from pipelines.sql import sql_text
from pipelines.stage import Stage

CURATED_DIR = "curated"
DROPPED_DIR = "dropped"
SUMMARY_FILE = "curate_stats.json"


def pool_inputs(ingest_out: Path, out: Path) -> tuple[list[str], list[str], list[str]]:
    """Shard ids, sidecar paths and score paths of the pool; every finished shard must be scored first."""
    shards = complete_shards(ingest_out)
    scores = [Path(out) / SCORES_DIR / f"{s.shard_id}.parquet" for s in shards]
    missing = [str(p) for p in scores if not p.exists()]
    if missing:
        raise TesseraUserError(f"shards not scored yet (run the scoring step first): {', '.join(missing[:3])}")
    return [s.shard_id for s in shards], [str(s.parquet) for s in shards], [str(p) for p in scores]


def load_pool(ingest_out: Path, out: Path) -> pa.Table:
    """Successful samples with their scores, via DuckDB over the parquet files (sql/curate_pool.sql)."""
    import duckdb

    _, sidecars, scores = pool_inputs(ingest_out, out)
    with duckdb.connect() as con:
        return con.sql(sql_text("curate_pool"), params={"sidecars": sidecars, "scores": scores}).to_arrow_table()


def fix_pool_thresholds(stages: list[Stage], scores) -> list[Stage]:
    """Give every top-fraction filter its threshold computed over the whole pool's scores."""
    fixed = []
    for stage in stages:
        if isinstance(stage, ClipTopFractionFilter) and stage.config.threshold is None:
            stage = ClipTopFractionFilter(stage.config, threshold=pool_threshold(scores, stage.config.fraction))
        fixed.append(stage)
    return fixed


def apply_stages(stages: list[Stage], pool: pa.Table) -> pa.Table:
    """Run the filter chain over the pool in one batch (dedup and top fraction see every row)."""
    table = C.with_drop_columns(pool)
    for stage in fix_pool_thresholds(stages, C.column_or_nulls(pool, C.CLIP_SCORE)):
        table = stage(table)
    return table


def ledger(table: pa.Table) -> pa.Table:
    """Dropped rows as ledger rows: key, shard, stage, reason, value, duplicate_of."""
    dropped = table.filter(pc.is_valid(table[C.DROP_REASON]))
    return pa.table({
        S.KEY: dropped[S.KEY].cast(pa.string()),
        C.SHARD: dropped[C.SHARD].cast(pa.string()),
        S.STAGE: dropped[C.DROP_STAGE],
        S.REASON: dropped[C.DROP_REASON],
        S.VALUE: dropped[C.DROP_VALUE].cast(pa.float64()),
        C.DUPLICATE_OF: dropped[C.DUPLICATE_OF].cast(pa.string()),
    })


def write_selection(out: Path, shard_ids: list[str], selected: pa.Table) -> dict:
    """Write curated/ and dropped/ per shard (stale shard files removed) and return the summary counts."""
    out = Path(out)
    kept = selected.filter(pc.is_null(selected[C.DROP_REASON]))
    kept = kept.drop_columns([f.name for f in C.DROP_FIELDS])
    drops = ledger(selected)
    for name in (CURATED_DIR, DROPPED_DIR):
        for stale in (out / name).glob("*.parquet"):
            if stale.stem not in shard_ids:
                stale.unlink()
    kept_shard = kept[C.SHARD].to_numpy(zero_copy_only=False)
    drop_shard = drops[C.SHARD].to_numpy(zero_copy_only=False)
    for sid in shard_ids:
        write_parquet_atomic(kept.filter(pa.array(kept_shard == sid)), out / CURATED_DIR / f"{sid}.parquet")
        write_parquet_atomic(drops.filter(pa.array(drop_shard == sid)), out / DROPPED_DIR / f"{sid}.parquet")
    reasons, counts = np.unique(drops[S.REASON].to_numpy(zero_copy_only=False).astype(str), return_counts=True)
    total = selected.num_rows
    return {
        "samples": total,
        "kept": kept.num_rows,
        "dropped": drops.num_rows,
        "keep_rate": round(kept.num_rows / total, 6) if total else None,
        "dropped_by_reason": {str(r): int(c) for r, c in sorted(zip(reasons, counts), key=lambda x: -x[1])},
    }


def run_selection(ingest_out: Path, out: Path, stages: list[Stage], engine: str = "local",
                  extra_summary: dict | None = None) -> dict:
    """Select over the whole pool with DuckDB + pyarrow stages (or Spark for the metadata-only stages), write
    curated/ and dropped/, then the summary file last."""
    shard_ids, _, _ = pool_inputs(ingest_out, out)
    if engine == "spark":
        from pipelines.spark_curate import spark_select

        selected = spark_select(ingest_out, out, stages)
    else:
        selected = apply_stages(stages, load_pool(ingest_out, out))
    summary = write_selection(out, shard_ids, selected)
    summary.update(extra_summary or {})
    summary["selection_engine"] = "spark" if engine == "spark" else "duckdb"
    write_json_atomic(summary, Path(out) / SUMMARY_FILE)
    return summary
