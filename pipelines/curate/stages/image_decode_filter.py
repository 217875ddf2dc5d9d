"""ImageDecodeFilter: drops samples whose image bytes did not decode when they were scored (a "success" download
can still be a truncated or non-image file)."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.curate import columns as C
from pipelines.core.stage import Stage, StageConfig

REASON = "image_undecodable"


class ImageDecodeConfig(StageConfig):
    """Which column holds the scoring error (null when the image decoded)."""

    error_column: str = C.CLIP_ERROR


class ImageDecodeFilter(Stage):
    """Marks `image_undecodable` on rows with a scoring error."""

    config_cls: ClassVar[type[StageConfig]] = ImageDecodeConfig
    name: ClassVar[str] = "image_decode"

    def process(self, batch: pa.Table) -> pa.Table:
        if self.config.error_column not in batch.column_names:
            return C.with_drop_columns(batch)
        bad = pc.is_valid(batch[self.config.error_column]).to_numpy(zero_copy_only=False)
        return C.mark_drops(batch, bad, self.name, REASON)

    def spark_marks(self, df) -> list:
        """The same rule as Spark columns over a pool DataFrame."""
        from pyspark.sql import functions as F

        from pipelines.curate.spark import SparkMark

        if self.config.error_column not in df.columns:
            return []
        return [SparkMark(F.col(self.config.error_column).isNotNull(), REASON)]
