"""The selection run shard by shard, with the same decisions as the filter chain over one pool table
(`selection.apply_stages`, kept as the reference).

The chain is cut at its whole-pool dedups into segments. Each shard's rows (sql/curate_pool.sql over its own sidecar
and score file, in key order) run the per-row stages of a segment (the top fraction is per-row too, once its exact
threshold is known: threshold.py), and are kept as a state file between segments; a dedup runs bucket by bucket over
the still-kept rows of every shard (buckets.py) and each shard joins back its own losers. The last segment writes the
shard's curated/ and dropped/ files. Memory is bounded by a shard, a bucket, and the counts of the summary.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.shard_io import write_parquet_atomic
from pipelines.core.shard_reader import CURATED_DIR
from pipelines.core.sql import sql_text
from pipelines.core.stage import Stage
from pipelines.curate import columns as C
from pipelines.curate.buckets import bucketed_losers, shard_losers
from pipelines.curate.stages.clip_score_filter import ClipScoreFilter
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter
from pipelines.curate.stages.duplicate_filter import DuplicateFilter
from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter

DROPPED_DIR = "dropped"
BUCKETS = 64
BUCKETED = (DuplicateFilter, NearDuplicateFilter)


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


def with_thresholds(stages: list[Stage], threshold_of: Callable[[float], float]) -> list[Stage]:
    """The chain with every top-fraction filter given its pool threshold (`threshold_of(fraction)`)."""
    return [ClipTopFractionFilter(s.config, threshold=threshold_of(s.config.fraction))
            if isinstance(s, ClipTopFractionFilter) and s.config.threshold is None else s for s in stages]


def chain_threshold(stages: list[Stage]) -> float | None:
    """The CLIP score the (thresholds fixed) chain's first CLIP filter asks for; None without one or when nothing
    was scored (the summary's `clip_threshold`)."""
    for stage in stages:
        if isinstance(stage, ClipScoreFilter):
            return float(stage.config.min_score)
        if isinstance(stage, ClipTopFractionFilter):
            return float(stage.config.threshold) if math.isfinite(stage.config.threshold) else None
    return None


def segments(stages: list[Stage]) -> list[tuple[Stage | None, list[Stage]]]:
    """The chain as (whole-pool stage or None for the first, the per-row stages after it)."""
    cut: list[tuple[Stage | None, list[Stage]]] = [(None, [])]
    for stage in stages:
        if isinstance(stage, BUCKETED):
            cut.append((stage, []))
        elif getattr(stage, "whole_pool", False) and not isinstance(stage, ClipTopFractionFilter):
            raise TypeError(f"{type(stage).__name__} is a whole-pool stage without a bucketed form")
        else:
            cut[-1][1].append(stage)
    return cut


class Tally:
    """The summary counts, added shard by shard."""

    def __init__(self) -> None:
        self.samples = self.kept = 0
        self.reasons: Counter[str] = Counter()

    def add(self, kept: int, drops: pa.Table) -> None:
        self.samples += kept + drops.num_rows
        self.kept += kept
        self.reasons.update(drops[S.REASON].to_pylist())

    def summary(self) -> dict:
        """The keys and order of today's summary (reasons by count, ties by name)."""
        dropped = self.samples - self.kept
        by_reason = sorted(sorted(self.reasons.items()), key=lambda x: -x[1])
        return {"samples": self.samples, "kept": self.kept, "dropped": dropped,
                "keep_rate": round(self.kept / self.samples, 6) if self.samples else None,
                "dropped_by_reason": {str(r): int(c) for r, c in by_reason}}


def write_shard(out: Path, shard_id: str, table: pa.Table, tally: Tally) -> None:
    """curated/<id>.parquet (kept rows, no drop columns) and dropped/<id>.parquet (the ledger) of one shard."""
    kept = table.filter(pc.is_null(table[C.DROP_REASON])).drop_columns([f.name for f in C.DROP_FIELDS])
    drops = ledger(table)
    write_parquet_atomic(kept, Path(out) / CURATED_DIR / f"{shard_id}.parquet")
    write_parquet_atomic(drops, Path(out) / DROPPED_DIR / f"{shard_id}.parquet")
    tally.add(kept.num_rows, drops)


def join_losers(table: pa.Table, losers: pa.Table | None) -> pa.Table:
    """Mark one shard's rows that a bucketed stage marked (its stage, reason, value and duplicate_of)."""
    if losers is None or losers.num_rows == 0:
        return table
    keys = table[S.KEY].cast(pa.string())
    where = pc.index_in(keys, value_set=losers[S.KEY].cast(pa.string()))
    hit = pc.is_valid(where).to_numpy(zero_copy_only=False)
    index = pc.fill_null(where, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    (stage,), (reason,) = pc.unique(losers[C.DROP_STAGE]).to_pylist(), pc.unique(losers[C.DROP_REASON]).to_pylist()
    values = C.column_or_nulls(losers, C.DROP_VALUE)[index]
    dup_of = np.array(losers[C.DUPLICATE_OF].to_pylist(), dtype=object)[index]
    return C.mark_drops(table, hit, stage, reason, values, dup_of)


def select_shards(out: Path, shard_ids: list[str], sidecars: list[str], scores: list[str], stages: list[Stage],
                  n_buckets: int = BUCKETS) -> dict:
    """Run the (thresholds fixed) chain shard by shard, write each shard's curated/ and dropped/ and return the
    summary counts. Scratch files live in a folder of this run under `out`, removed at the end."""
    import duckdb

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".selection-", dir=out))
    tally = Tally()
    cut = segments(stages)
    try:
        with duckdb.connect() as con:
            con.execute("SET preserve_insertion_order = false")
            states, columns = [], set()
            for sid, sidecar, score in zip(shard_ids, sidecars, scores):
                table = con.sql(sql_text("curate_pool"), params={"sidecars": [sidecar], "scores": [score]}
                                ).to_arrow_table()
                table = _run(cut[0][1], C.with_drop_columns(table))
                states.append(_keep(out, work, sid, table, tally, last=len(cut) == 1, columns=columns))
            for i, (pool_stage, rows) in enumerate(cut[1:], start=1):
                by_shard = bucketed_losers(con, pool_stage, states, columns, work / f"stage{i}", n_buckets)
                last = i == len(cut) - 1
                for sid, state in zip(shard_ids, states):
                    table = join_losers(pq.read_table(state), shard_losers(by_shard, sid))
                    _keep(out, work, sid, _run(rows, table), tally, last=last, columns=columns)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tally.summary()


def _run(stages: list[Stage], table: pa.Table) -> pa.Table:
    for stage in stages:
        table = stage(table)
    return table


def _keep(out: Path, work: Path, sid: str, table: pa.Table, tally: Tally, last: bool, columns: set[str]) -> Path:
    """The last segment writes the shard's outputs; an earlier one keeps its state for the next."""
    if last:
        write_shard(out, sid, table, tally)
        return work / "unused"
    columns.update(table.column_names)
    path = work / "state" / f"{sid}.parquet"
    path.parent.mkdir(exist_ok=True)
    pq.write_table(table, path)
    return path
