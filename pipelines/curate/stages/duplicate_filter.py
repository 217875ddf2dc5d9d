"""DuplicateFilter: exact duplicates on one or more columns (URL, sha256, (pHash, caption), caption)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig


class DuplicateFilterConfig(StageConfig):
    """Rows still kept that share all `columns` form a group; the first `max_count` by key stay, the rest are
    marked with `reason` and `duplicate_of` = the group's first key. Rows with a null in `columns` never match."""

    columns: tuple[str, ...]
    reason: str
    max_count: int = Field(1, ge=1)


class DuplicateFilter(Stage):
    """Exact-match dedup over the batch given (pass the whole pool: duplicates cross shard boundaries)."""

    config_cls: ClassVar[type[StageConfig]] = DuplicateFilterConfig
    name: ClassVar[str] = "dedup"
    whole_pool: ClassVar[bool] = True

    def process(self, batch: pa.Table) -> pa.Table:
        cfg = self.config
        out = C.with_drop_columns(batch)
        missing = [c for c in cfg.columns if c not in batch.column_names]
        if missing or batch.num_rows == 0:
            return out
        kept = C.kept_mask(out)
        keys = batch[S.KEY].to_pylist()
        values = list(zip(*(batch[c].to_pylist() for c in cfg.columns)))
        candidates = [i for i in np.flatnonzero(kept) if all(v is not None for v in values[i])]
        candidates.sort(key=lambda i: keys[i])
        first: dict[tuple, str] = {}
        seen: dict[tuple, int] = {}
        dup = np.zeros(batch.num_rows, dtype=bool)
        rank = np.full(batch.num_rows, np.nan)
        dup_of = np.full(batch.num_rows, None, dtype=object)
        for i in candidates:
            group = values[i]
            seen[group] = seen.get(group, 0) + 1
            first.setdefault(group, keys[i])
            if seen[group] > cfg.max_count:
                dup[i], rank[i], dup_of[i] = True, seen[group], first[group]
        return C.mark_drops(out, dup, self.name, cfg.reason, rank, dup_of)

    def spark_marks(self, df) -> list:
        """The same rule as Spark window columns over the pool DataFrame (value: rank in the group)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from pipelines.curate.spark import SparkMark

        cfg = self.config
        if any(c not in df.columns for c in cfg.columns):
            return []
        eligible = F.col(C.DROP_REASON).isNull()
        for c in cfg.columns:
            eligible = eligible & F.col(c).isNotNull()
        # Rows that are not eligible go to their own partition (group key null + flag), so they never count.
        w = Window.partitionBy(F.when(eligible, F.lit(1)), *[F.col(c) for c in cfg.columns]).orderBy(S.KEY)
        rank = F.row_number().over(w)
        return [SparkMark(eligible & (rank > cfg.max_count), cfg.reason, rank, F.first(S.KEY).over(w))]
