"""Emu3 video tokens for every finished clip shard: `OUT/video_tokens/NNNNN.parquet`, resumably, plus a manifest.

Per clip: frames decoded at `fps`, each preprocessed as Emu3 does images (one size per clip, from the first frame),
cut into groups of the tokenizer's temporal factor (4; the last group padded by repeating the last frame), each
group encoded as its own clip as Emu3's autoencode.py does, the groups of many clips batched per VQ forward pass.
Per shard: `video_tokens/NNNNN.parquet` (key, caption, t, h, w, codes, fps, frames, padded_frames, tokenizer),
`video_dropped/NNNNN.parquet` (key, drop_reason) and `video_tokens/NNNNN_stats.json` last, as the marker.
`OUT/video_manifest.json` sums the stats; `OUT/video_tokenizer_config.json` refuses a resume with other settings.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from models.emu3_preprocessing import MAX_AREA, MAX_ASPECT_RATIO, MIN_AREA, TARGET_AREA
from pipelines.core.shard_reader import iter_members, load_curated_keys
from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_job import ShardJob
from pipelines.core.stage import Stage, StageConfig
from pipelines.tokenize.image_tokenizer import CODES, GRID_H, GRID_W, TOKENIZER
from pipelines.video.schema import CLIPS_DIR, DECODE_ERROR, SUCCESS

VIDEO = "video"  # mp4 bytes, as read from the clip tar
GRID_T, FPS, FRAMES, PADDED_FRAMES = "t", "fps", "frames", "padded_frames"
TOO_FEW_FRAMES = "too_few_frames"
MISSING_IN_TAR = "missing_in_tar"
TOKENS_DIR, DROPPED_DIR = "video_tokens", "video_dropped"
MANIFEST, CONFIG_FILE = "video_manifest.json", "video_tokenizer_config.json"
MANIFEST_FIELDS = ("clips", "tokenized", "frames", "padded_frames", "latent_frames", "total_tokens")
CONFIG_FIELDS = ("vq_model", "fps", "target_area", "min_area", "max_area", "max_aspect_ratio", "max_frames", "dtype")
TOKEN_SCHEMA = pa.schema([("key", pa.string()), ("caption", pa.string()), (GRID_T, pa.int32()), (GRID_H, pa.int32()),
                          (GRID_W, pa.int32()), (CODES, pa.list_(pa.int32())), (FPS, pa.float64()),
                          (FRAMES, pa.int32()), (PADDED_FRAMES, pa.int32()), (TOKENIZER, pa.string())])


class VideoTokenizerConfig(StageConfig):
    """Which VQ model, the sampling rate, Emu3's preprocessing knobs, and 4-frame groups per forward pass."""

    vq_model: str = "tiny"
    fps: float = Field(8.0, gt=0)
    target_area: int = Field(TARGET_AREA, ge=64)
    min_area: int = Field(MIN_AREA, ge=64)
    max_area: int = Field(MAX_AREA, ge=64)
    max_aspect_ratio: float = Field(MAX_ASPECT_RATIO, gt=1)
    max_frames: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)  # 4-frame groups per VQ forward pass
    device: str | None = None
    dtype: str = "float32"


class VideoTokenizer(Stage):
    """Adds t, h, w, codes (flat t*h*w int32), fps, frames, padded_frames, tokenizer and drop_reason per clip."""

    config_cls = VideoTokenizerConfig
    name = "video_tokenizer"

    def setup(self) -> None:
        from transformers.utils import logging as hf_logging

        from models.vision_tokenizer import Emu3VisionTokenizer, Preprocessing

        hf_logging.disable_progress_bar()
        c = self.config
        self.tokenizer = Emu3VisionTokenizer(c.vq_model, device=c.device, dtype=c.dtype)
        self.prep = Preprocessing(c.target_area, c.min_area, c.max_area, c.max_aspect_ratio, self.tokenizer.factor)
        self.group = int(self.tokenizer.model.config.temporal_downsample_factor)

    def clip_pixels(self, data: bytes):
        """(frames (n, 3, H, W) padded to a multiple of the group size, real frames, drop reason or None)."""
        import torch
        from PIL import Image

        from models.vision_tokenizer import preprocess
        from pipelines.video.media import MediaError, decode_frames

        c = self.config
        end = c.max_frames / c.fps if c.max_frames else None
        try:
            frames, _ = decode_frames(data, fps=c.fps, end=end)
        except MediaError:
            return None, 0, DECODE_ERROR
        frames = frames[: c.max_frames]
        if not frames:
            return None, 0, TOO_FEW_FRAMES
        size = (frames[0].shape[1], frames[0].shape[0])
        pixels = []
        for rgb in frames:
            image = Image.fromarray(rgb)
            if image.size != size:  # a stream that changes size midway: keep the first frame's size
                image = image.resize(size, Image.Resampling.BICUBIC)
            x, reason = preprocess(image, self.prep)
            if reason:
                return None, len(frames), reason
            pixels.append(x)
        pixels += [pixels[-1]] * (-len(pixels) % self.group)
        return torch.stack(pixels), len(frames), None

    def process(self, batch: pa.Table) -> pa.Table:
        import torch

        n = batch.num_rows
        out = {k: [None] * n for k in (GRID_T, GRID_H, GRID_W, CODES, FPS, FRAMES, PADDED_FRAMES, TOKENIZER,
                                       S.DROP_REASON)}
        groups: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = defaultdict(list)
        for i, data in enumerate(batch.column(VIDEO).to_pylist()):
            pixels, frames, reason = self.clip_pixels(data) if data is not None else (None, 0, MISSING_IN_TAR)
            if reason:
                out[S.DROP_REASON][i] = reason
                continue
            out[FRAMES][i], out[PADDED_FRAMES][i] = frames, pixels.shape[0] - frames
            for g in pixels.split(self.group):
                groups[tuple(g.shape[2:])].append((i, g))
        grids: dict[int, list[torch.Tensor]] = defaultdict(list)
        for members in groups.values():  # clips keep their groups in order: members are appended in frame order
            for start in range(0, len(members), self.config.batch_size):
                chunk = members[start : start + self.config.batch_size]
                codes = self.tokenizer.encode_video(torch.stack([g for _, g in chunk])).cpu()
                for (i, _), code in zip(chunk, codes):
                    grids[i].append(code)
        for i, parts in grids.items():
            grid = torch.cat(parts)
            out[GRID_T][i], out[GRID_H][i], out[GRID_W][i] = grid.shape
            out[CODES][i] = grid.flatten().to(torch.int32).tolist()
            out[FPS][i], out[TOKENIZER][i] = self.config.fps, self.tokenizer.tokenizer_id
        types = {f.name: f.type for f in TOKEN_SCHEMA}
        for name, values in out.items():
            batch = batch.append_column(name, pa.array(values, types.get(name, pa.string())))
        return batch


def clip_job(ingest_out: Path) -> ShardJob:
    """The shard job whose units are a video ingest folder's `clips/NNNNN.{tar,parquet}`."""
    return ShardJob(ingest_out, CLIPS_DIR)


def token_job(out: Path) -> ShardJob:
    """The shard job whose units are `video_tokens/NNNNN.parquet` + `video_dropped/NNNNN.parquet`."""
    return ShardJob(out, TOKENS_DIR)


def tokenize_videos(src: Path, out: Path, cfg: VideoTokenizerConfig, curate_out: Path | None = None,
                    clips_per_call: int = 8, log=None) -> dict:
    """Tokenize every finished clip shard of `src` not yet done under `out`; returns the manifest."""
    from pipelines.tokenize.shards import check_config, check_vq_model, write_manifest

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    src, out = Path(src), Path(out)
    if not (src / CLIPS_DIR).is_dir():
        raise TesseraUserError(f"{src} is not a video ingest output folder (no {CLIPS_DIR}/ inside)")
    curated = load_curated_keys(curate_out)
    check_vq_model(cfg.vq_model)
    check_config(out, cfg, CONFIG_FIELDS, CONFIG_FILE, "video tokens")
    stage, job = VideoTokenizer(cfg), token_job(out)
    shards = list(clip_job(src).finished())
    for sid in job.pending(shards):
        with job.unit(sid) as writer:
            if writer is None:  # a concurrent run finished it meanwhile
                continue
            stats = _tokenize_shard(src / CLIPS_DIR, sid, stage, curated, clips_per_call, writer)
        log(f"shard {sid}: {stats['tokenized']}/{stats['clips']} clips, {stats['frames']} frames, "
            f"{stats['total_tokens']} tokens, {stats['clips_per_s']} clips/s, {stats['frames_per_s']} frames/s")
    return write_manifest(out, src, cfg, job, MANIFEST_FIELDS, MANIFEST)


def _tokenize_shard(clips_dir: Path, sid: str, stage: VideoTokenizer, curated: set[str] | None,
                    clips_per_call: int, writer) -> dict:
    """Tokenize one clip shard and commit its token and dropped files; returns its stats."""
    t0 = time.time()
    side = pq.read_table(clips_dir / f"{sid}.parquet", columns=[S.KEY, S.CAPTION, S.STATUS]).to_pylist()
    rows = [r for r in side if r[S.STATUS] == SUCCESS]
    wanted = [r for r in rows if curated is None or str(r[S.KEY]) in curated]
    captions = {str(r[S.KEY]): r[S.CAPTION] for r in wanted}
    results: dict[str, dict] = {}

    def run(chunk: list[tuple[str, bytes]]) -> None:
        table = stage(pa.table({"key": [k for k, _ in chunk], VIDEO: pa.array([v for _, v in chunk], pa.binary())}))
        results.update((r["key"], r) for r in table.drop_columns([VIDEO]).to_pylist())

    chunk: list[tuple[str, bytes]] = []
    for key, _, data in iter_members(clips_dir / f"{sid}.tar", ("mp4",), set(captions)):
        chunk.append((key, data))
        if len(chunk) == clips_per_call:
            run(chunk)
            chunk = []
    if chunk:
        run(chunk)
    kept, dropped = [], []
    for key, caption in captions.items():
        r = results.get(key, {"key": key, S.DROP_REASON: MISSING_IN_TAR})
        if r[S.DROP_REASON]:
            dropped.append({"key": key, S.DROP_REASON: r[S.DROP_REASON]})
        else:
            kept.append({**{f: r.get(f) for f in TOKEN_SCHEMA.names}, "caption": caption})
    tokens_rel, dropped_rel = f"{TOKENS_DIR}/{sid}.parquet", f"{DROPPED_DIR}/{sid}.parquet"
    writer.parquet(pa.Table.from_pylist(kept, TOKEN_SCHEMA), tokens_rel)
    writer.parquet(pa.Table.from_pylist(dropped, pa.schema([("key", pa.string()), (S.DROP_REASON, pa.string())])),
                   dropped_rel)
    seconds = time.time() - t0
    frames = sum(r[FRAMES] for r in kept)
    stats = {
        "shard": sid, "clips": len(captions), "tokenized": len(kept),
        "dropped": dict(Counter(r[S.DROP_REASON] for r in dropped)),
        "skipped": {"not_curated": len(rows) - len(wanted)}, "frames": frames,
        "padded_frames": sum(r[PADDED_FRAMES] for r in kept), "latent_frames": sum(r[GRID_T] for r in kept),
        "total_tokens": sum(r[GRID_T] * r[GRID_H] * r[GRID_W] for r in kept), "seconds": round(seconds, 3),
        "clips_per_s": round(len(captions) / max(seconds, 1e-9), 2),
        "frames_per_s": round(frames / max(seconds, 1e-9), 1),
    }
    return writer.commit(stats, expect={tokens_rel: len(kept), dropped_rel: len(dropped)})
