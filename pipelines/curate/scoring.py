"""Per-shard CLIP scoring for `tessera curate`: tar -> (image, caption) rows -> scores/NNNNN.parquet.

Each shard writes embeddings/NNNNN.npy (optional), then scores/NNNNN.parquet, then scores/NNNNN_stats.json last as
its completion marker; a rerun skips shards that have the marker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.curate.stages.clip_score_annotator import ClipScoreAnnotator, null_scores
from pipelines.core.errors import TesseraUserError
from pipelines.curate.stages.image_hash_annotator import ImageHashAnnotator
from pipelines.curate.threshold import HISTOGRAM, histogram, shard_scores
from pipelines.core.runner import StageRunner
from pipelines.core.shard_job import ShardJob, UnitWriter
from pipelines.core.shard_reader import read_images
from pipelines.core.shards import ShardPaths, complete_shards, read_sidecar

SCORES_DIR = "scores"
EMBEDDINGS_DIR = "embeddings"
SCORE_SCHEMA = pa.schema([(S.KEY, pa.string()), (C.CLIP_SCORE, pa.float32()), (C.MODEL, pa.string()),
                          (C.CLIP_ERROR, pa.string()), (C.EMBEDDING_REF, pa.string()), (C.PHASH, pa.string()),
                          (C.IMAGE_BYTES, pa.int64())])
SCORE_COLUMNS = tuple(SCORE_SCHEMA.names)


@dataclass(frozen=True)
class ScoringOptions:
    """What scores the shards and how the stages run."""

    clip_model: str = "tiny"
    engine: str = "local"  # "local" or "ray" (Spark is only for the metadata side)
    batch_size: int = 64
    num_actors: int = 1
    with_embeddings: bool = False
    precision: str = "fp32"


def shard_pairs(shard: ShardPaths) -> pa.Table:
    """The shard's successful rows as (key, caption, jpg, image_bytes); a success row missing from the tar gets
    empty bytes and a null size."""
    side = read_sidecar(shard, columns=[S.KEY, S.CAPTION, S.STATUS])
    side = side.filter(pc.equal(side[S.STATUS], S.STATUS_SUCCESS))
    images = read_images(shard.tar) if shard.tar.exists() else {}
    data = [images.get(k) for k in side[S.KEY].to_pylist()]
    jpg = pa.array([b or b"" for b in data], pa.binary())
    # The stored file as img2dataset wrote it (re-encoded), not the file the source served.
    size = pa.array([len(b) if b else None for b in data], pa.int64())
    return side.select([S.KEY, S.CAPTION]).append_column(C.JPG, jpg).append_column(C.IMAGE_BYTES, size)


def scoring_job(out: Path) -> ShardJob:
    """The shard job whose units are `scores/NNNNN.parquet` (+ `embeddings/NNNNN.npy`)."""
    return ShardJob(out, SCORES_DIR)


def scored_model(out: Path) -> str | None:
    """The CLIP model id that produced the scores already in `out`, if any."""
    for marker in scoring_job(out).finished().values():
        return marker[C.MODEL]
    return None


def score_histograms(out: Path, shard_ids: list[str]) -> list[dict]:
    """Each scored shard's score histogram from its marker; markers written before histograms existed get theirs
    computed from the shard's score file."""
    done = scoring_job(out).finished()
    return [done[sid].get(HISTOGRAM) or histogram(shard_scores(Path(out) / SCORES_DIR / f"{sid}.parquet"))
            for sid in shard_ids]


def score_shard(shard: ShardPaths, writer: UnitWriter, stages, runner: StageRunner, model_id: str,
                with_embeddings: bool) -> dict:
    """Score one shard and commit its files through `writer`; returns its stats (the completion marker)."""
    start = time.perf_counter()
    pairs = shard_pairs(shard)
    scored = runner.run(stages, pairs) if pairs.num_rows else _empty_scored()
    refs = pa.nulls(scored.num_rows, pa.string())
    if with_embeddings and scored.num_rows:
        emb_rel = f"{EMBEDDINGS_DIR}/{shard.shard_id}.npy"
        emb = np.asarray(scored[C.CLIP_EMBEDDING].combine_chunks().flatten().to_numpy(zero_copy_only=False))
        writer.npy(emb.reshape(scored.num_rows, -1).astype(np.float16), emb_rel)
        refs = pa.array([f"{emb_rel}#{i}" for i in range(scored.num_rows)], pa.string())
    scores = scored.select([S.KEY, C.CLIP_SCORE, C.MODEL, C.CLIP_ERROR, C.PHASH, C.IMAGE_BYTES])
    scores = scores.add_column(4, C.EMBEDDING_REF, refs).select(list(SCORE_COLUMNS))
    rel = f"{SCORES_DIR}/{shard.shard_id}.parquet"
    writer.parquet(scores, rel)
    seconds = time.perf_counter() - start
    stats = {
        "shard": shard.shard_id,
        "samples": scores.num_rows,
        "score_errors": null_scores(scores) if scores.num_rows else 0,
        C.MODEL: model_id,
        "seconds": round(seconds, 3),
        "images_per_second": round(scores.num_rows / seconds, 2) if seconds > 0 else None,
        # The pool's exact top-fraction threshold merges these instead of reading every score (threshold.py).
        HISTOGRAM: histogram(C.column_or_nulls(scores, C.CLIP_SCORE)),
    }
    return writer.commit(stats, expect={rel: pairs.num_rows})


def _empty_scored() -> pa.Table:
    return SCORE_SCHEMA.remove(SCORE_SCHEMA.get_field_index(C.EMBEDDING_REF)).empty_table()


def score_shards(ingest_out: Path, out: Path, opts: ScoringOptions,
                 on_shard: Callable[[dict], None] | None = None, shard_ids: set[str] | None = None) -> list[dict]:
    """Score finished ingest shards (all, or those in `shard_ids`) not yet scored in `out`; returns those done now."""
    from models.clip_registry import resolve

    shards = [s for s in complete_shards(ingest_out) if shard_ids is None or s.shard_id in shard_ids]
    if not shards:
        raise TesseraUserError(f"{ingest_out} has no finished shards (no shards/*_stats.json)")
    try:
        spec = resolve(opts.clip_model)
    except ValueError as err:
        raise TesseraUserError(f"--clip-model: {err}") from None
    existing = scored_model(out)
    if existing is not None and existing != spec.model_id:
        raise TesseraUserError(
            f"{out}/{SCORES_DIR} holds scores from CLIP model {existing!r}, not {spec.model_id!r}: "
            f"use another --out or --clip-model {existing}"
        )
    job = scoring_job(out)
    pending = set(job.pending(s.shard_id for s in shards))
    todo = [s for s in shards if s.shard_id in pending]
    if not todo:
        return []
    clip = ClipScoreAnnotator(model=opts.clip_model, precision=opts.precision, with_embeddings=opts.with_embeddings)
    stages = [clip, ImageHashAnnotator()]
    runner = StageRunner(engine=opts.engine, batch_size=opts.batch_size, num_actors=opts.num_actors)
    done = []
    for shard in todo:
        with job.unit(shard.shard_id) as writer:
            if writer is None:  # a concurrent run finished it meanwhile
                continue
            stats = score_shard(shard, writer, stages, runner, spec.model_id, opts.with_embeddings)
        done.append(stats)
        if on_shard:
            on_shard(stats)
    return done
