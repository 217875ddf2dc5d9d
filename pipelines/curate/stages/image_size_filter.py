"""ImageSizeFilter: drops images whose short side is too small or whose aspect ratio is too large."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig

REASON_TOO_SMALL = "image_too_small"
REASON_ASPECT = "aspect_ratio_too_large"


class ImageSizeConfig(StageConfig):
    """Limits on the original image size (measured by img2dataset; the metadata size when that is missing)."""

    min_short_side: int | None = Field(None, ge=1)
    max_aspect_ratio: float | None = Field(None, ge=1.0)


def image_size(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Original width and height per row as floats, NaN where unknown."""
    w = C.column_or_nulls(table, S.ORIGINAL_WIDTH)
    h = C.column_or_nulls(table, S.ORIGINAL_HEIGHT)
    mw, mh = C.column_or_nulls(table, S.META_WIDTH), C.column_or_nulls(table, S.META_HEIGHT)
    return np.where(np.isnan(w), mw, w), np.where(np.isnan(h), mh, h)


class ImageSizeFilter(Stage):
    """Marks `image_too_small` (value: short side) then `aspect_ratio_too_large` (value: long/short); unknown
    sizes pass, since there is nothing to judge."""

    config_cls: ClassVar[type[StageConfig]] = ImageSizeConfig
    name: ClassVar[str] = "image_size"

    def process(self, batch: pa.Table) -> pa.Table:
        cfg = self.config
        w, h = image_size(batch)
        short, long = np.fmin(w, h), np.fmax(w, h)
        out = C.with_drop_columns(batch)
        if cfg.min_short_side is not None:
            out = C.mark_drops(out, short < cfg.min_short_side, self.name, REASON_TOO_SMALL, short)
        if cfg.max_aspect_ratio is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(short > 0, long / short, np.nan)  # a zero side has no ratio (as in Spark)
            out = C.mark_drops(out, ratio > cfg.max_aspect_ratio, self.name, REASON_ASPECT, ratio)
        return out

    def spark_marks(self, df) -> list:
        """The same rules as Spark columns over a pool DataFrame."""
        from pyspark.sql import functions as F

        from pipelines.curate.spark import SparkMark, as_number

        cfg = self.config
        w = F.coalesce(as_number(df, S.ORIGINAL_WIDTH), as_number(df, S.META_WIDTH))
        h = F.coalesce(as_number(df, S.ORIGINAL_HEIGHT), as_number(df, S.META_HEIGHT))
        short, long = F.least(w, h), F.greatest(w, h)
        marks = []
        if cfg.min_short_side is not None:
            marks.append(SparkMark(short < cfg.min_short_side, REASON_TOO_SMALL, short))
        if cfg.max_aspect_ratio is not None:
            ratio = F.when(short > 0, long / short)
            marks.append(SparkMark(ratio > cfg.max_aspect_ratio, REASON_ASPECT, ratio))
        return marks
