"""The metadata-side half of curation on PySpark (`tessera curate --engine spark`): the join of scores onto the
sidecars, then every leading filter stage that has a Spark form.

A filter stage with a Spark form carries it next to its Arrow one: `spark_marks(df)` gives its drop rules as Spark
columns, in the order `process` applies them, so the DuckDB and Spark paths give identical selections. This module
only asks each stage; the stages that need Python models (language id, pHash near-dup) then run locally on the
collected result. `SPARK_MASTER` names a cluster; the default is `local[*]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import pyarrow as pa

from pipelines.core import schema as S
from pipelines.core.spark_session import spark_session
from pipelines.core.stage import Stage
from pipelines.curate import columns as C


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
    n = next((i for i, s in enumerate(stages) if not isinstance(s, SparkFilter)), len(stages))
    return stages[:n], stages[n:]


def spark_select(sidecars: list[str], scores: list[str], stages: Sequence[Stage], spark=None) -> pa.Table:
    """The pool with the drop columns filled by `stages`, all run on Spark, as a pyarrow table sorted by key."""
    from pyspark.sql import functions as F

    for stage in stages:
        if not isinstance(stage, SparkFilter):
            raise ValueError(f"{type(stage).__name__} has no Spark form (no spark_marks method)")
    spark = spark or spark_session("tessera-curate")
    df = spark_pool(spark, sidecars, scores)
    for field in C.DROP_FIELDS:
        df = df.withColumn(field.name, F.lit(None).cast("double" if field.type == pa.float64() else "string"))
    for stage in stages:
        df = apply_marks(df, stage.name, stage.spark_marks(df))
    return df.orderBy(S.KEY).toArrow()
