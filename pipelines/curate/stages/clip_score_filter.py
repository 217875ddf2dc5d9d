"""ClipScoreFilter: LAION-style absolute threshold on the stored CLIP score."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core.stage import Stage, StageConfig

REASON_MISSING = "clip_score_missing"
REASON_LOW = "clip_score_below_threshold"


class ClipScoreFilterConfig(StageConfig):
    """Keep rows with `clip_score >= min_score` (compared in float64, as the Spark path does)."""

    min_score: float = Field(..., ge=-1.0, le=1.0)
    score_column: str = C.CLIP_SCORE


class ClipScoreFilter(Stage):
    """Marks `clip_score_missing` (no score: image did not decode) then `clip_score_below_threshold`."""

    config_cls: ClassVar[type[StageConfig]] = ClipScoreFilterConfig
    name: ClassVar[str] = "clip_score"

    def process(self, batch: pa.Table) -> pa.Table:
        scores = C.column_or_nulls(batch, self.config.score_column)
        out = C.mark_drops(batch, np.isnan(scores), self.name, REASON_MISSING)
        with np.errstate(invalid="ignore"):
            low = scores < self.config.min_score
        return C.mark_drops(out, low, self.name, REASON_LOW, scores)

    def spark_marks(self, df) -> list:
        """The same rules as Spark columns over a pool DataFrame."""
        from pyspark.sql import functions as F

        from pipelines.curate.spark import SparkMark, as_number

        score = as_number(df, self.config.score_column)
        return [SparkMark(score.isNull(), REASON_MISSING),
                SparkMark(score < F.lit(self.config.min_score), REASON_LOW, score)]
