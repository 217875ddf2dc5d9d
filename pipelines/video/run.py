"""The video track's curation, composed once for `tessera curate --preset webvid|panda70m` and the Dagster asset:
measure every clip shard (resumable), then select over the pool."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipelines.video.curate import score_clips, select_clips
from pipelines.video.presets import VideoPreset

DEFAULT_CLIP_MODEL = "ViT-B-32:openai"


def curate_clips(ingest_out: Path, out: Path, preset: VideoPreset, clip_model: str = DEFAULT_CLIP_MODEL, *,
                 min_clip_score: float | None = None, batch_size: int = 64, precision: str = "fp32",
                 log: Callable[[str], None] = lambda line: None) -> tuple[dict, dict]:
    """Score the clip shards not scored yet, then decide every clip; returns (scored unit -> marker, summary)."""
    scored = score_clips(ingest_out, out, clip_model, batch_size=batch_size, precision=precision, log=log)
    return scored, select_clips(ingest_out, out, preset, min_clip_score)
