"""ClipTopFractionFilter: DataComp-style "top N% of the pool by CLIP score", threshold over the whole pool."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.curate.stages.clip_score_filter import REASON_MISSING
from pipelines.core.stage import Stage, StageConfig

REASON_LOW = "clip_score_below_pool_fraction"


class ClipTopFractionConfig(StageConfig):
    """Keep the top `fraction` of scored rows; `threshold` is the pool's cut-off, computed with
    `pool_threshold` over every score of the pool (when None, the batch given is taken to be the whole pool)."""

    fraction: float = Field(..., gt=0.0, le=1.0)
    threshold: float | None = None
    score_column: str = C.CLIP_SCORE


def pool_threshold(scores, fraction: float) -> float:
    """The k-th largest score, k = ceil(fraction * n scored rows): keeping `>=` it keeps the top fraction."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.sort(s[~np.isnan(s)])[::-1]
    if s.size == 0:
        return math.inf
    return float(s[max(1, math.ceil(fraction * s.size)) - 1])


class ClipTopFractionFilter(Stage):
    """Marks `clip_score_missing`, then `clip_score_below_pool_fraction` for rows under the pool threshold."""

    config_cls: ClassVar[type[StageConfig]] = ClipTopFractionConfig
    name: ClassVar[str] = "clip_top_fraction"
    whole_pool: ClassVar[bool] = True

    def process(self, batch: pa.Table) -> pa.Table:
        scores = C.column_or_nulls(batch, self.config.score_column)
        threshold = self.config.threshold
        if threshold is None:
            threshold = pool_threshold(scores, self.config.fraction)
        out = C.mark_drops(batch, np.isnan(scores), self.name, REASON_MISSING)
        with np.errstate(invalid="ignore"):
            low = scores < threshold
        return C.mark_drops(out, low, self.name, REASON_LOW, scores)

    def spark_marks(self, df) -> list:
        """The same rules as Spark columns over the pool DataFrame (its threshold computed there when not set)."""
        from pyspark.sql import functions as F

        from pipelines.curate.spark import SparkMark, as_number

        threshold = self.config.threshold
        if threshold is None:
            threshold = spark_pool_threshold(df, self.config.score_column, self.config.fraction)
        score = as_number(df, self.config.score_column)
        return [SparkMark(score.isNull(), REASON_MISSING), SparkMark(score < F.lit(threshold), REASON_LOW, score)]


def spark_pool_threshold(df, column: str, fraction: float) -> float:
    """`pool_threshold` over a Spark DataFrame's scores."""
    from pyspark.sql import functions as F

    from pipelines.curate.spark import as_number

    scored = df.select(as_number(df, column).alias("s")).where(F.col("s").isNotNull())
    n = scored.count()
    if n == 0:
        return math.inf
    k = max(1, math.ceil(fraction * n))
    return scored.orderBy(F.col("s").desc()).limit(k).agg(F.min("s")).first()[0]
