"""The metadata-side half of curation on PySpark (`tessera curate --engine spark`): the join of scores onto the
sidecars, URL and other exact dedup, and every preset filter that needs only metadata columns.

The rules mirror the pyarrow stages exactly (same first-reason order, values, representatives), so the DuckDB and
Spark paths give identical selections. Stages that need Python models (language id, pHash near-dup) then run
locally on the collected result. `SPARK_MASTER` names a cluster; the default is `local[*]`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pyarrow as pa

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.curate.presets import METADATA_STAGES
from pipelines.curate.selection import PoolInputs, apply_stages, pool_inputs
from pipelines.core.stage import Stage

JAVA_WHITESPACE = "[ \\t\\n\\x0B\\f\\r]+"  # same set as caption_length_filter.WHITESPACE


def spark_session():
    """A SparkSession on SPARK_MASTER (default local[*]), bound to 127.0.0.1 when local."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    master = os.environ.get("SPARK_MASTER", "local[*]")
    builder = SparkSession.builder.master(master)
    if master.startswith("local"):  # the default 200 shuffle partitions are pure overhead on one machine
        builder = builder.config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 2)))
    return (builder.appName("tessera-curate")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate())


def spark_pool(spark, ingest_out: Path, out: Path, pool: PoolInputs | None = None):
    """Successful samples of the scored shards joined with their scores, as a Spark DataFrame (the Spark twin of
    curate_pool.sql)."""
    from pyspark.sql import functions as F

    pool = pool or pool_inputs(ingest_out, out)
    meta = spark.read.option("mergeSchema", "true").parquet(*pool.sidecars)
    meta = meta.withColumn(C.SHARD, F.regexp_extract(F.input_file_name(), r"([^/\\]+)\.parquet$", 1))
    sc = spark.read.parquet(*pool.scores).select(S.KEY, C.CLIP_SCORE, C.MODEL, C.CLIP_ERROR, C.EMBEDDING_REF, C.PHASH,
                                         C.IMAGE_BYTES)
    return meta.where(F.col(S.STATUS) == S.STATUS_SUCCESS).join(sc, on=S.KEY, how="left")


def _num(df, name: str):
    """A column as double with NaN turned into null (pyarrow stages treat both as missing)."""
    from pyspark.sql import functions as F

    if name not in df.columns:
        return F.lit(None).cast("double")
    col = F.col(name).cast("double")
    return F.when(F.isnan(col), None).otherwise(col)


def _mark(df, cond, stage: str, reason: str, value=None, duplicate_of=None):
    """Fill the drop columns where `cond` holds and no earlier stage fired (the mark_drops twin)."""
    from pyspark.sql import functions as F

    df = df.withColumn("_hit", F.col(C.DROP_REASON).isNull() & F.coalesce(cond, F.lit(False)))
    hit = F.col("_hit")
    value = F.lit(None).cast("double") if value is None else value
    df = (df.withColumn(C.DROP_STAGE, F.when(hit, F.lit(stage)).otherwise(F.col(C.DROP_STAGE)))
          .withColumn(C.DROP_REASON, F.when(hit, F.lit(reason)).otherwise(F.col(C.DROP_REASON)))
          .withColumn(C.DROP_VALUE, F.when(hit, value.cast("double")).otherwise(F.col(C.DROP_VALUE))))
    if duplicate_of is not None:
        df = df.withColumn(C.DUPLICATE_OF, F.when(hit, duplicate_of).otherwise(F.col(C.DUPLICATE_OF)))
    return df.drop("_hit")


def _dedup(df, stage: Stage):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cfg = stage.config
    if any(c not in df.columns for c in cfg.columns):
        return df
    eligible = F.col(C.DROP_REASON).isNull()
    for c in cfg.columns:
        eligible = eligible & F.col(c).isNotNull()
    # Rows that are not eligible go to their own partition (group key null + flag), so they never count.
    w = Window.partitionBy(F.when(eligible, F.lit(1)), *[F.col(c) for c in cfg.columns]).orderBy(S.KEY)
    df = df.withColumn("_rank", F.row_number().over(w)).withColumn("_first", F.first(S.KEY).over(w))
    df = _mark(df, eligible & (F.col("_rank") > cfg.max_count), stage.name, cfg.reason,
               F.col("_rank"), F.col("_first"))
    return df.drop("_rank", "_first")


def _top_fraction_threshold(df, column: str, fraction: float) -> float:
    from pyspark.sql import functions as F

    scored = df.select(_num(df, column).alias("s")).where(F.col("s").isNotNull())
    n = scored.count()
    if n == 0:
        return math.inf
    k = max(1, math.ceil(fraction * n))
    return scored.orderBy(F.col("s").desc()).limit(k).agg(F.min("s")).first()[0]


def apply_spark_stage(df, stage: Stage):
    """One metadata-only stage as Spark column expressions."""
    from pyspark.sql import functions as F

    kind, cfg, name = type(stage).__name__, stage.config, stage.name
    if kind == "ImageDecodeFilter":
        if cfg.error_column in df.columns:
            df = _mark(df, F.col(cfg.error_column).isNotNull(), name, "image_undecodable")
    elif kind == "DuplicateFilter":
        df = _dedup(df, stage)
    elif kind == "ImageFileSizeFilter":
        size = _num(df, cfg.bytes_column)
        df = _mark(df, size < cfg.min_bytes, name, "image_file_too_small", size)
    elif kind == "ImageSizeFilter":
        w = F.coalesce(_num(df, S.ORIGINAL_WIDTH), _num(df, S.META_WIDTH))
        h = F.coalesce(_num(df, S.ORIGINAL_HEIGHT), _num(df, S.META_HEIGHT))
        short, long = F.least(w, h), F.greatest(w, h)
        if cfg.min_short_side is not None:
            df = _mark(df, short < cfg.min_short_side, name, "image_too_small", short)
        if cfg.max_aspect_ratio is not None:
            ratio = F.when(short > 0, long / short)
            df = _mark(df, ratio > cfg.max_aspect_ratio, name, "aspect_ratio_too_large", ratio)
    elif kind == "CaptionLengthFilter":
        text = F.coalesce(F.col(S.CAPTION), F.lit(""))
        words = F.size(F.filter(F.split(text, JAVA_WHITESPACE), lambda x: x != "")).cast("double")
        chars = F.length(text).cast("double")
        for bound, values, less, reason in ((cfg.min_words, words, True, "caption_too_few_words"),
                                            (cfg.max_words, words, False, "caption_too_many_words"),
                                            (cfg.min_chars, chars, True, "caption_too_short"),
                                            (cfg.max_chars, chars, False, "caption_too_long")):
            if bound is not None:
                df = _mark(df, values < bound if less else values > bound, name, reason, values)
    elif kind == "MetadataFilter":
        for rule in cfg.rules:
            v = _num(df, rule.column)
            df = _mark(df, v > rule.value if rule.bound == "max" else v < rule.value, name, rule.reason, v)
    elif kind in ("ClipScoreFilter", "ClipTopFractionFilter"):
        score = _num(df, cfg.score_column)
        if kind == "ClipScoreFilter":
            threshold, low = cfg.min_score, "clip_score_below_threshold"
        else:
            threshold = cfg.threshold
            if threshold is None:
                threshold = _top_fraction_threshold(df, cfg.score_column, cfg.fraction)
            low = "clip_score_below_pool_fraction"
        df = _mark(df, score.isNull(), name, "clip_score_missing")
        df = _mark(df, score < F.lit(threshold), name, low, score)
    else:
        raise ValueError(f"{kind} has no Spark implementation")
    return df


def spark_select(ingest_out: Path, out: Path, stages: list[Stage], spark=None,
                 pool: PoolInputs | None = None) -> pa.Table:
    """Run the leading metadata-only stages on Spark and the rest locally; the selected pool as a pyarrow table."""
    from pyspark.sql import functions as F

    spark = spark or spark_session()
    df = spark_pool(spark, ingest_out, out, pool)
    for field in C.DROP_FIELDS:
        df = df.withColumn(field.name, F.lit(None).cast("double" if field.type == pa.float64() else "string"))
    n_spark = next((i for i, s in enumerate(stages) if type(s).__name__ not in METADATA_STAGES), len(stages))
    for stage in stages[:n_spark]:
        df = apply_spark_stage(df, stage)
    table = df.orderBy(S.KEY).toArrow()
    return apply_stages(stages[n_spark:], table)
