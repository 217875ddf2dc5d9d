"""The Spark form of pHash near-dup: band buckets find every pair of distinct hashes within the distance bound,
connected components of those pairs group the rows whose decisions depend on each other, and each group runs the
local `NearDuplicateFilter.process` (greedy in key order). Decisions are the local ones key for key: the local
greedy only ever compares a row with rows of its own component, so running it per component changes nothing.

Rows with the same hash always share a component (one greedy pass keeps the first and marks the rest), so a pool
of many identical hashes never becomes a quadratic pair list; rows whose hash is unique and has no neighbour are
kept without any Python.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import schema as S
from pipelines.curate import columns as C
from pipelines.curate.stages.near_duplicate_filter import REASON, NearDuplicateFilter, _bands

DIST, OF = "_near_dup_distance", "_near_dup_of"


def near_duplicate_marks(df, stage: NearDuplicateFilter):
    """`df` with `stage`'s drops filled (value: the distance; duplicate_of: the closest earlier kept key)."""
    from pyspark.sql import functions as F

    from pipelines.curate.spark import SparkMark, apply_marks

    cfg = stage.config
    if cfg.hash_column not in df.columns:
        return df
    # Every later step reads the pool's kept rows: compute the chain up to here once.
    df = df.localCheckpoint()
    h = F.col(cfg.hash_column)
    rows = df.where(F.col(C.DROP_REASON).isNull() & h.isNotNull() & (h != "")).select(S.KEY, h.alias("h"))
    hashes = rows.groupBy("h").agg(F.count("*").alias("n"))
    labels = components(near_pairs(hashes, cfg.max_distance))
    groups = (hashes.join(labels, "h", "left").where(F.col("label").isNotNull() | (F.col("n") > 1))
              .select("h", F.coalesce("label", "h").alias("group")))
    marked = (rows.join(groups, "h").groupBy("group")
              .applyInArrow(_greedy(cfg.model_dump_json()), f"{S.KEY} string, {DIST} double, {OF} string"))
    df = df.join(marked, S.KEY, "left")
    mark = SparkMark(F.col(OF).isNotNull(), REASON, F.col(DIST), F.col(OF))
    return apply_marks(df, stage.name, [mark]).drop(DIST, OF)


def near_pairs(hashes, max_distance: int):
    """(u, v) with u < v for distinct hashes within `max_distance`, found through the local stage's bands."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("array<string>")
    def buckets(hs: pd.Series) -> pd.Series:
        return pd.Series([[f"{b}:{v}" for b, v in _bands(int(x, 16), max_distance + 1)] for x in hs])

    @pandas_udf("int")
    def distance(us: pd.Series, vs: pd.Series) -> pd.Series:
        return pd.Series([(int(u, 16) ^ int(v, 16)).bit_count() for u, v in zip(us, vs)], dtype="int32")

    banded = hashes.select("h", F.explode(buckets("h")).alias("bucket"))
    a, b = banded.alias("a"), banded.alias("b")
    pairs = (a.join(b, (F.col("a.bucket") == F.col("b.bucket")) & (F.col("a.h") < F.col("b.h")))
             .select(F.col("a.h").alias("u"), F.col("b.h").alias("v")).distinct())
    return pairs.where(distance("u", "v") <= max_distance)


def components(pairs):
    """(h, label) for every hash in `pairs`: label = the smallest hash of its connected component (min-label
    propagation with pointer jumping; each round only counts the labels that changed on the driver)."""
    from pyspark.sql import functions as F

    edges = pairs.union(pairs.select(F.col("v").alias("u"), F.col("u").alias("v"))).localCheckpoint()
    labels = (edges.groupBy(F.col("u").alias("h")).agg(F.min("v").alias("m"))
              .select("h", F.least("h", "m").alias("label")).localCheckpoint())
    while True:
        spread = (edges.join(labels.withColumnRenamed("h", "v"), "v").groupBy(F.col("u").alias("h"))
                  .agg(F.min("label").alias("m")))
        step = labels.join(spread, "h").select("h", F.least("label", "m").alias("label"))
        jump = (step.alias("x").join(step.alias("y"), F.col("x.label") == F.col("y.h"))
                .select(F.col("x.h").alias("h"), F.least("x.label", "y.label").alias("label"))).localCheckpoint()
        changed = jump.join(labels.withColumnRenamed("label", "old"), "h").where(F.col("label") != F.col("old"))
        labels, done = jump, changed.isEmpty()
        if done:
            return labels


def _greedy(config_json: str):
    """The per-group function: the local stage over the group's (key, hash) rows; its drops as (key, distance,
    duplicate_of)."""

    def run(table: pa.Table) -> pa.Table:
        stage = NearDuplicateFilter(NearDuplicateFilter.config_cls.model_validate_json(config_json))
        batch = pa.table({S.KEY: table[S.KEY].cast(pa.string()), stage.config.hash_column: table["h"]})
        out = stage(batch)
        dropped = out.filter(pc.is_valid(out[C.DROP_REASON]))
        return pa.table({S.KEY: dropped[S.KEY], DIST: dropped[C.DROP_VALUE].cast(pa.float64()),
                         OF: dropped[C.DUPLICATE_OF].cast(pa.string())})

    return run
