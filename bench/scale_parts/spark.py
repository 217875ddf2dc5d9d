"""Spark selection on the standalone test cluster (tests/cluster_fixture.py: a master and a 1-core, 1 GiB worker on
127.0.0.1) over growing synthetic pools: is the driver's memory flat in the pool size?

Each size runs `run_selection(engine="spark")` in its own process (common.child): the Python driver's peak RSS is
that process's own, and the JVM driver's (py4j gateway, a child of it) is read from /proc before the session stops.
The chain has every kind of stage: decode, URL dedup, exact top 30%, caption length, English (py3langid UDF),
sha256 dedup, pHash near-dup (distance 4).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.scale_parts.common import REPO, child

ROWS_PER_SHARD = 10_000
WORDS = np.array("a photo of the small red house near lake with green trees under blue sky and old boat".split())


def _shard_tables(sid: int, n: int, rng) -> tuple[pa.Table, pa.Table]:
    keys = np.char.add(f"{sid:05d}", np.char.zfill(np.arange(n).astype(str), 4))
    url_ids = np.where(rng.random(n) < 0.01, rng.integers(0, 1000, n), sid * n + np.arange(n))
    words = WORDS[rng.integers(0, len(WORDS), (n, 6))]
    captions = [" ".join(w) + f" {i}" for i, w in enumerate(words)]
    sha = [f"{x:064x}" for x in np.where(rng.random(n) < 0.01, rng.integers(0, 1000, n),
                                         rng.integers(0, 2**62, n))]
    base = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    near = rng.random(n) < 0.02  # a few bits away from the previous row's hash
    flips = np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
    base[1:][near[1:]] = base[:-1][near[1:]] ^ flips[1:][near[1:]]
    meta = pa.table({"key": keys.tolist(), "url": [f"http://img.test/{u}.jpg" for u in url_ids], "caption": captions,
                     "status": ["success"] * n, "original_width": np.full(n, 640), "original_height": np.full(n, 480),
                     "sha256": sha})
    scores = pa.table({"key": keys.tolist(), "clip_score": np.round(rng.random(n), 3).astype(np.float32),
                       "model": ["bench"] * n, "clip_error": pa.nulls(n, pa.string()),
                       "embedding_ref": pa.nulls(n, pa.string()), "phash": [f"{h:016x}" for h in base],
                       "image_bytes": np.full(n, 10_000)})
    return meta, scores


def build_pool(root: str, rows: int) -> dict:
    """An ingest folder and a scored output folder of `rows` successful rows, shards of ROWS_PER_SHARD."""
    from pipelines.core.shard_job import ShardJob

    rng = np.random.default_rng(rows)
    ingest, out = Path(root) / "ingest", Path(root) / "out"
    for sid in range(rows // ROWS_PER_SHARD):
        meta, scores = _shard_tables(sid, ROWS_PER_SHARD, rng)
        for job, rel, table in ((ShardJob(ingest, "shards"), f"shards/{sid:05d}.parquet", meta),
                                (ShardJob(out, "scores"), f"scores/{sid:05d}.parquet", scores)):
            with job.unit(f"{sid:05d}") as writer:
                writer.parquet(table, rel)
                writer.commit({"samples": table.num_rows, "model": "bench"})
    return {"ingest": str(ingest), "out": str(out)}


def select_step(ingest: str, out: str) -> dict:
    """The measured step: the whole selection on Spark (files written by the executors), then the JVM driver's
    peak RSS."""
    from pipelines.core.spark_session import spark_session
    from pipelines.curate.selection import run_selection
    from pipelines.curate.stages.caption_language_filter import CaptionLanguageFilter
    from pipelines.curate.stages.caption_length_filter import CaptionLengthFilter
    from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter
    from pipelines.curate.stages.duplicate_filter import DuplicateFilter
    from pipelines.curate.stages.image_decode_filter import ImageDecodeFilter
    from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter

    stages = [ImageDecodeFilter(), DuplicateFilter(columns=("url",), reason="duplicate_url"),
              ClipTopFractionFilter(fraction=0.3), CaptionLengthFilter(min_words=3),
              CaptionLanguageFilter(languages=("en",)), DuplicateFilter(columns=("sha256",), reason="duplicate_image"),
              NearDuplicateFilter(max_distance=4)]
    spark = spark_session("tessera-curate")
    summary = run_selection(Path(ingest), Path(out), stages, engine="spark")
    jvm = spark.sparkContext._gateway.proc.pid
    hwm = next(int(line.split()[1]) for line in Path(f"/proc/{jvm}/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    spark.stop()
    return {"samples": summary["samples"], "kept": summary["kept"], "jvm_driver_peak_rss_mb": round(hwm / 1024, 1)}


def run(quick: bool, work: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from cluster_fixture import spark_cluster

    sizes = [50_000, 200_000] if quick else [int(x) for x in os.environ.get("SPARK_BENCH_ROWS",
                                                                          "1000000,2000000").split(",")]
    figures: dict = {"sizes": sizes, "cluster": "standalone (1 master, 1 worker: 1 core, 1 GiB)"}
    with spark_cluster() as cluster:
        os.environ["SPARK_MASTER"] = cluster.master
        try:
            for rows in sizes:
                paths = build_pool(str(work / str(rows)), rows)
                step = child("bench.scale_parts.spark:select_step", **paths)
                assert step["samples"] == rows
                figures[str(rows)] = step
                print(f"  {rows:>9,} rows: {step['wall_s']:7.1f} s, python driver {step['peak_rss_mb']:7.1f} MB, "
                      f"JVM driver {step['jvm_driver_peak_rss_mb']:7.1f} MB, kept {step['kept']:,}", flush=True)
        finally:
            os.environ.pop("SPARK_MASTER", None)
    small, large = figures[str(sizes[0])], figures[str(sizes[-1])]
    figures["python_driver_rss_ratio"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
    figures["jvm_driver_rss_ratio"] = round(large["jvm_driver_peak_rss_mb"] / small["jvm_driver_peak_rss_mb"], 3)
    figures["goal_flat_driver_rss"] = max(figures["python_driver_rss_ratio"], figures["jvm_driver_rss_ratio"]) <= 1.3
    print(f"  driver RSS ratio {sizes[-1]:,} / {sizes[0]:,} rows: python {figures['python_driver_rss_ratio']}, "
          f"JVM {figures['jvm_driver_rss_ratio']} (goal: flat, <= 1.3)")
    return figures
