"""MetadataFilter: bounds on score columns shipped with the source metadata (LAION punsafe/pwatermark, COYO
nsfw/watermark/aesthetic scores). A rule whose column is absent, or a null value, passes: nothing to judge."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from pipelines.curate import columns as C
from pipelines.core.stage import Stage, StageConfig


class MetadataRule(BaseModel):
    """`column` must be <= value (`max`) or >= value (`min`); the drop reason is `<column>_above_max` or
    `<column>_below_min`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    column: str
    bound: Literal["max", "min"]
    value: float

    @property
    def reason(self) -> str:
        """The stable drop reason of this rule."""
        return f"{self.column}_above_max" if self.bound == "max" else f"{self.column}_below_min"


class MetadataFilterConfig(StageConfig):
    """Rules applied in order; the first that fires names the reason."""

    rules: tuple[MetadataRule, ...] = ()


class MetadataFilter(Stage):
    """Applies each metadata rule in turn (value: the offending metadata value)."""

    config_cls: ClassVar[type[StageConfig]] = MetadataFilterConfig
    name: ClassVar[str] = "metadata"

    def process(self, batch: pa.Table) -> pa.Table:
        out = C.with_drop_columns(batch)
        for rule in self.config.rules:
            values = C.column_or_nulls(batch, rule.column)
            with np.errstate(invalid="ignore"):
                bad = values > rule.value if rule.bound == "max" else values < rule.value
            out = C.mark_drops(out, bad, self.name, rule.reason, values)
        return out

    def spark_marks(self, df) -> list:
        """The same rules as Spark columns over a pool DataFrame."""
        from pipelines.curate.spark import SparkMark, as_number

        marks = []
        for rule in self.config.rules:
            v = as_number(df, rule.column)
            marks.append(SparkMark(v > rule.value if rule.bound == "max" else v < rule.value, rule.reason, v))
        return marks
