"""The whole of `tessera curate --engine spark` selection on PySpark: the join of scores onto the sidecars, then every
stage of the chain in its Spark form, so nothing but counts reaches the driver (spark_write.py writes the outcome).

A stage carries its Spark form next to its Arrow one, in one of two shapes: `spark_marks(df)` gives its drop rules
as Spark columns, in the order `process` applies them (per-row rules, exact dedups, the top fraction); or
`spark_apply(df)` returns the DataFrame with its drops filled (language id as a pandas UDF over the same model,
pHash near-dup as band buckets). This module only asks each stage. `SPARK_MASTER` names a cluster; the default is
`local[*]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import pyarrow as pa

from pipelines.core import schema as S
from pipelines.core.spark_session import spark_session
from pipelines.core.stage import Stage
from pipelines.curate import columns as C
from pipelines.curate.stages.clip_score_filter import ClipScoreFilter
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter, spark_pool_threshold

__all__ = ["spark_session", "SparkMark", "SparkFilter", "SparkStage", "spark_selection", "spark_select"]


@dataclass(frozen=True)
class SparkMark:
    """One drop rule as Spark columns: rows where `condition` holds, and no earlier rule fired, get `reason`,
    `value` (a number, or null) and, when given, `duplicate_of`."""

    condition: object
    reason: str
    value: object = None
    duplicate_of: object = None


@runtime_checkable
class SparkFilter(Protocol):
    """A filter stage that can run on Spark: its rules as `SparkMark`s over the pool DataFrame."""

    name: str

    def spark_marks(self, df) -> list[SparkMark]:
        """The stage's drop rules over `df`, in the order its Arrow `process` applies them."""


@runtime_checkable
class SparkStage(Protocol):
    """A stage whose Spark form needs more than columns over the pool (a UDF column, a shuffle and a join back)."""

    name: str

    def spark_apply(self, df):
        """`df` with the stage's drops filled, decided exactly as its Arrow `process` decides them."""


def has_spark_form(stage: Stage) -> bool:
    """True when the stage can run on Spark (either shape)."""
    return isinstance(stage, (SparkFilter, SparkStage))


def as_number(df, name: str):
    """A column as double with NaN turned into null (the twin of `columns.column_or_nulls`); null when absent."""
    from pyspark.sql import functions as F

    if name not in df.columns:
        return F.lit(None).cast("double")
    col = F.col(name).cast("double")
    return F.when(F.isnan(col), None).otherwise(col)


def apply_marks(df, stage: str, marks: Sequence[SparkMark]):
    """Fill the drop columns mark by mark, where no earlier rule fired (the twin of `columns.mark_drops`)."""
    from pyspark.sql import functions as F

    for mark in marks:
        # Condition, value and duplicate_of are evaluated together, before this mark changes any drop column
        # (window columns such as a dedup rank depend on which rows are still kept).
        value = F.lit(None) if mark.value is None else mark.value
        dup = F.col(C.DUPLICATE_OF) if mark.duplicate_of is None else mark.duplicate_of
        df = df.withColumns({
            "_hit": F.col(C.DROP_REASON).isNull() & F.coalesce(mark.condition, F.lit(False)),
            "_value": value.cast("double"),
            "_dup": dup,
        })
        hit = F.col("_hit")
        df = df.withColumns({
            C.DROP_STAGE: F.when(hit, F.lit(stage)).otherwise(F.col(C.DROP_STAGE)),
            C.DROP_REASON: F.when(hit, F.lit(mark.reason)).otherwise(F.col(C.DROP_REASON)),
            C.DROP_VALUE: F.when(hit, F.col("_value")).otherwise(F.col(C.DROP_VALUE)),
            C.DUPLICATE_OF: F.when(hit, F.col("_dup")).otherwise(F.col(C.DUPLICATE_OF)),
        }).drop("_hit", "_value", "_dup")
    return df


def spark_pool(spark, sidecars: list[str], scores: list[str]):
    """Successful samples of the sidecars joined with their scores, as a Spark DataFrame (the Spark twin of
    curate_pool.sql)."""
    from pyspark.sql import functions as F

    meta = spark.read.option("mergeSchema", "true").parquet(*sidecars)
    meta = meta.withColumn(C.SHARD, F.regexp_extract(F.input_file_name(), r"([^/\\]+)\.parquet$", 1))
    sc = spark.read.parquet(*scores).select(S.KEY, C.CLIP_SCORE, C.MODEL, C.CLIP_ERROR, C.EMBEDDING_REF, C.PHASH,
                                            C.IMAGE_BYTES)
    return meta.where(F.col(S.STATUS) == S.STATUS_SUCCESS).join(sc, on=S.KEY, how="left")


def split_spark_stages(stages: Sequence[Stage]) -> tuple[list[Stage], list[Stage]]:
    """The leading stages that have a Spark form, and the rest (run locally, in order, after them)."""
    stages = list(stages)
    n = next((i for i, s in enumerate(stages) if not has_spark_form(s)), len(stages))
    return stages[:n], stages[n:]


def fix_spark_thresholds(pool, stages: Sequence[Stage]) -> tuple[list[Stage], float | None]:
    """Every top-fraction filter given its exact threshold over the whole pool's CLIP scores (as
    `selection.fix_pool_thresholds` does), and the CLIP score the chain asks for (as `selection.clip_threshold`)."""
    fixed, clip = [], None
    for stage in stages:
        if isinstance(stage, ClipTopFractionFilter) and stage.config.threshold is None:
            stage = ClipTopFractionFilter(stage.config, threshold=spark_pool_threshold(pool, C.CLIP_SCORE,
                                                                                       stage.config.fraction))
        if clip is None and isinstance(stage, ClipScoreFilter):
            clip = float(stage.config.min_score)
        if clip is None and isinstance(stage, ClipTopFractionFilter):
            clip = float(stage.config.threshold) if math.isfinite(stage.config.threshold) else math.nan
        fixed.append(stage)
    return fixed, (None if clip is None or math.isnan(clip) else clip)


def spark_selection(spark, sidecars: list[str], scores: list[str], stages: Sequence[Stage]):
    """The pool as a (lazy) Spark DataFrame with the drop columns filled by `stages`, and the chain's CLIP
    threshold; only the top fraction's count and k-th score reach the driver."""
    from pyspark.sql import functions as F

    for stage in stages:
        if not has_spark_form(stage):
            raise ValueError(f"{type(stage).__name__} has no Spark form (no spark_marks or spark_apply method)")
    df = spark_pool(spark, sidecars, scores)
    stages, clip = fix_spark_thresholds(df, stages)
    for field in C.DROP_FIELDS:
        df = df.withColumn(field.name, F.lit(None).cast("double" if field.type == pa.float64() else "string"))
    for stage in stages:
        df = stage.spark_apply(df) if isinstance(stage, SparkStage) else apply_marks(df, stage.name,
                                                                                     stage.spark_marks(df))
    return df, clip


def spark_select(sidecars: list[str], scores: list[str], stages: Sequence[Stage], spark=None) -> pa.Table:
    """The selected pool collected as a pyarrow table sorted by key: for tests and small pools only (a run writes
    from the executors instead, `spark_write.spark_run_selection`)."""
    df, _ = spark_selection(spark or spark_session("tessera-curate"), sidecars, scores, stages)
    return df.orderBy(S.KEY).toArrow()
