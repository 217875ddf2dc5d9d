"""The pool-wide half of `tessera curate`: join scores onto metadata, run the preset's filters, write the outcome.

The selection runs shard by shard (shard_select.py): the exact top-fraction threshold from the scored shards'
histograms (threshold.py), dedups by hash buckets (buckets.py). `apply_stages` over one pool table stays as the
reference the sharded run is tested against, and the Spark engine's form. The outcome is written per ingest shard:
curated/NNNNN.parquet (kept rows) and dropped/NNNNN.parquet (the drop ledger).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.curate.stages.clip_score_filter import ClipScoreFilter
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter, pool_threshold
from pipelines.curate.scoring import SCORE_SCHEMA, SCORES_DIR, score_histograms, scoring_job
from pipelines.curate.shard_select import DROPPED_DIR, chain_threshold, ledger, select_shards, with_thresholds
from pipelines.curate.threshold import exact_threshold
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic, write_parquet_atomic
from pipelines.core.shard_reader import CURATED_DIR
from pipelines.core.shards import complete_shards
from pipelines.core.sql import sql_text
from pipelines.core.stage import Stage


SUMMARY_FILE = "curate_stats.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolInputs:
    """The scored finished shards (ids, sidecars, score files) the selection covers, and the finished shards left
    out because they are not scored yet."""

    shard_ids: list[str]
    sidecars: list[str]
    scores: list[str]
    unscored: list[str]


def pool_inputs(ingest_out: Path, out: Path) -> PoolInputs:
    """The pool: finished ingest shards whose scores are complete (score stats marker written). Unscored shards are
    left out, not an error: in the Dagster flow one partition's scores can finish while another's are pending."""
    scored, unscored = [], []
    done = scoring_job(out).finished()
    for shard in complete_shards(ingest_out):
        (scored if shard.shard_id in done else unscored).append(shard)
    if not scored:
        raise TesseraUserError(f"no scored shards in {Path(out) / SCORES_DIR} for {ingest_out}: score them first")
    return PoolInputs(shard_ids=[s.shard_id for s in scored], sidecars=[str(s.parquet) for s in scored],
                      scores=[str(Path(out) / SCORES_DIR / f"{s.shard_id}.parquet") for s in scored],
                      unscored=[s.shard_id for s in unscored])


def check_rule_columns(ingest_out: Path, rules) -> None:
    """Stop with one line when a `--max-meta/--min-meta` column is in neither the shard metadata nor the scores,
    or is not numeric there (checked before any scoring)."""
    shards = complete_shards(ingest_out)
    if not shards:
        return  # scoring reports the missing shards
    types = {f.name: {f.type} for f in SCORE_SCHEMA}
    for shard in shards:
        for field in pq.read_schema(shard.parquet):
            types.setdefault(field.name, set()).add(field.type)
    for rule in rules:
        option = f"--{rule.bound}-meta {rule.column}={rule.value:g}"
        if rule.column not in types:
            raise TesseraUserError(f"{option}: no column {rule.column!r} in the shard metadata or scores")
        bad = sorted(str(t) for t in types[rule.column] if not _numeric(t))
        if bad:
            raise TesseraUserError(f"{option}: column {rule.column!r} is {bad[0]}, not numeric")


def _numeric(dtype: pa.DataType) -> bool:
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
            or pa.types.is_null(dtype))


def load_pool(ingest_out: Path, out: Path, pool: PoolInputs | None = None) -> pa.Table:
    """Successful samples of the scored shards (`pool`, default: scored now) with their scores, via DuckDB
    (sql/curate_pool.sql)."""
    import duckdb

    pool = pool or pool_inputs(ingest_out, out)
    with duckdb.connect() as con:
        return con.sql(sql_text("curate_pool"), params={"sidecars": pool.sidecars, "scores": pool.scores}
                       ).to_arrow_table()


def fix_pool_thresholds(stages: list[Stage], scores) -> list[Stage]:
    """Give every top-fraction filter its threshold computed over the whole pool's scores."""
    fixed = []
    for stage in stages:
        if isinstance(stage, ClipTopFractionFilter) and stage.config.threshold is None:
            stage = ClipTopFractionFilter(stage.config, threshold=pool_threshold(scores, stage.config.fraction))
        fixed.append(stage)
    return fixed


def clip_threshold(stages: list[Stage], scores) -> float | None:
    """The CLIP score the chain's CLIP filter asks for (absolute, or the pool's top-fraction cut-off over `scores`);
    None when the chain has no CLIP filter or nothing was scored."""
    for stage in fix_pool_thresholds(stages, scores):
        if isinstance(stage, ClipScoreFilter):
            return float(stage.config.min_score)
        if isinstance(stage, ClipTopFractionFilter):
            return float(stage.config.threshold) if math.isfinite(stage.config.threshold) else None
    return None


def apply_stages(stages: list[Stage], pool: pa.Table) -> pa.Table:
    """Run the filter chain over the pool in one batch (dedup and top fraction see every row)."""
    table = C.with_drop_columns(pool)
    for stage in fix_pool_thresholds(stages, C.column_or_nulls(pool, C.CLIP_SCORE)):
        table = stage(table)
    return table


def select_pool(ingest_out: Path, out: Path, stages: list[Stage], engine: str = "local",
                pool: PoolInputs | None = None, spark=None) -> pa.Table:
    """The pool (default: scored now) with the drop columns filled by `stages`: DuckDB + pyarrow, or with
    `engine="spark"` the leading stages that have a Spark form on Spark (`spark`: a session) and the rest after."""
    pool = pool or pool_inputs(ingest_out, out)
    if engine != "spark":
        return apply_stages(stages, load_pool(ingest_out, out, pool))
    from pipelines.curate.spark import spark_select, split_spark_stages

    on_spark, local = split_spark_stages(stages)
    return apply_stages(local, spark_select(pool.sidecars, pool.scores, on_spark, spark))


def write_selection(out: Path, shard_ids: list[str], selected: pa.Table) -> dict:
    """Write curated/ and dropped/ per shard (stale shard files removed) and return the summary counts."""
    out = Path(out)
    kept = selected.filter(pc.is_null(selected[C.DROP_REASON]))
    kept = kept.drop_columns([f.name for f in C.DROP_FIELDS])
    drops = ledger(selected)
    remove_stale(out, shard_ids)
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


def remove_stale(out: Path, shard_ids: list[str]) -> None:
    """Remove curated/ and dropped/ files of shards the selection no longer covers."""
    keep = set(shard_ids)
    for name in (CURATED_DIR, DROPPED_DIR):
        for stale in (Path(out) / name).glob("*.parquet"):
            if stale.stem not in keep:
                stale.unlink()


def pool_thresholds(out: Path, pool: PoolInputs, stages: list[Stage]) -> list[Stage]:
    """The chain with each top-fraction filter's exact pool threshold, from the scored shards' histograms and
    one pass over the scores in the threshold's bin."""
    histograms: list[dict] = []

    def threshold_of(fraction: float) -> float:
        if not histograms:
            histograms.extend(score_histograms(out, pool.shard_ids))
        return exact_threshold(histograms, [Path(p) for p in pool.scores], fraction)

    return with_thresholds(stages, threshold_of)


def select_sharded(out: Path, pool: PoolInputs, stages: list[Stage]) -> tuple[dict, float | None]:
    """The selection shard by shard (decisions identical to `apply_stages` over the pool): writes curated/ and
    dropped/, returns the summary counts and the chain's CLIP threshold."""
    fixed = pool_thresholds(out, pool, stages)
    remove_stale(out, pool.shard_ids)
    return select_shards(out, pool.shard_ids, pool.sidecars, pool.scores, fixed), chain_threshold(fixed)


def run_selection(ingest_out: Path, out: Path, stages: list[Stage], engine: str = "local",
                  extra_summary: dict | None = None) -> dict:
    """Select over the scored pool shard by shard (or Spark for the metadata-only stages), write
    curated/ and dropped/, then the summary file last; finished shards not scored yet are left out and listed."""
    pool = pool_inputs(ingest_out, out)
    if pool.unscored:
        log.warning("selection leaves out %d finished shard(s) not scored yet: %s", len(pool.unscored),
                    ", ".join(pool.unscored))
    if engine == "spark":  # the whole chain on the cluster, files written from the executors (spark_write.py)
        from pipelines.curate.spark_write import spark_run_selection

        summary, threshold = spark_run_selection(out, pool, stages)
    else:
        summary, threshold = select_sharded(out, pool, stages)
    summary["shards"] = pool.shard_ids
    summary["unscored_shards"] = pool.unscored
    summary["clip_threshold"] = threshold
    summary.update(extra_summary or {})
    summary["selection_engine"] = "spark" if engine == "spark" else "duckdb"
    write_json_atomic(summary, Path(out) / SUMMARY_FILE)
    return summary
