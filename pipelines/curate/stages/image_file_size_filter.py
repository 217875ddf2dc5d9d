"""ImageFileSizeFilter: drops images whose stored file is smaller than a byte bound (COYO-700M: >= 5 KB).

The size is `image_bytes`, measured on the file in the shard tar while scoring. img2dataset re-encodes images, so
this is the size of the stored (resized, re-encoded) file, not of the file the source served; COYO measured the
latter, so a bound here is a close but not exact reproduction.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core.stage import Stage, StageConfig

REASON = "image_file_too_small"


class ImageFileSizeConfig(StageConfig):
    """The smallest stored file size kept, in bytes, and the column holding it."""

    min_bytes: int = Field(5 * 1024, ge=0)
    bytes_column: str = C.IMAGE_BYTES


class ImageFileSizeFilter(Stage):
    """Marks `image_file_too_small` (value: file size in bytes); an unknown size passes, as nothing can be judged."""

    config_cls: ClassVar[type[StageConfig]] = ImageFileSizeConfig
    name: ClassVar[str] = "image_file_size"

    def process(self, batch: pa.Table) -> pa.Table:
        size = C.column_or_nulls(batch, self.config.bytes_column)
        with np.errstate(invalid="ignore"):
            small = size < self.config.min_bytes
        return C.mark_drops(batch, small, self.name, REASON, size)

    def spark_marks(self, df) -> list:
        """The same rule as Spark columns over a pool DataFrame."""
        from pipelines.curate.spark import SparkMark, as_number

        size = as_number(df, self.config.bytes_column)
        return [SparkMark(size < self.config.min_bytes, REASON, size)]
