"""`tessera curate INGEST_OUT --preset webvid|panda70m --out OUT`: clip curation (docs/video_curation.md).

1. Scores (per clip shard, resumable through the shard job): each clip stored at ingest is decoded once at 2 fps
   with its short side brought into 64..256 px; from those frames come the duration and size (from the container),
   ContentDetector scores and luma differences between consecutive frames, and the CLIP cosine of 3 evenly spaced
   frames with the caption (`video_scores/NNNNN.parquet`, marker last). Thresholds are not applied here, so another
   preset reuses the scores.
2. Selection (whole pool): every clip of every finished clip shard gets one row in `clip_ledger.parquet` (kept or
   dropped, with stage, reason, value and the measured columns); clips that failed at ingest keep their ingest
   reason. Rules, first failing one recorded: duration, resolution, low_motion, scene_cut, low_clip_score.
3. `curated/clips.parquet` (key: the kept clips, for `--curated`) and `summary.json`, written last. A rerun over
   unchanged scores and settings writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic, write_parquet_atomic
from pipelines.core.shard_job import FILES_KEY, ShardJob
from pipelines.core.shard_reader import TarShard
from pipelines.video import schema as V
from pipelines.video.partitions import clips_job
from pipelines.video.media import MediaError, decode_frames, probe
from pipelines.video.motion import frame_differences, motion_score
from pipelines.video.presets import VideoPreset
from pipelines.video.scenes import content_scores, detect_cuts, min_scene_frames

SCORES_DIR, LEDGER, CURATED, SUMMARY = "video_scores", "clip_ledger.parquet", "curated/clips.parquet", "summary.json"
ANALYSIS_FPS, SHORT_SIDE, CLIP_FRAMES = 2.0, (64, 256), 3  # Emu3's filtering samples 2 fps at short edge 256
KEPT, DROPPED, INGEST, CURATE = "kept", "dropped", "ingest", "curate"
# Drop reasons (GROUP BY keys), in the order the rules run.
DURATION, RESOLUTION, LOW_MOTION, SCENE_CUT, LOW_CLIP_SCORE = (
    "duration", "resolution", "low_motion", "scene_cut", "low_clip_score")
MISSING_IN_TAR, NOT_SCORED = "missing_in_tar", "not_scored"

_FLOATS = pa.list_(pa.float32())
SCORE_SCHEMA = pa.schema([("key", pa.string()), ("duration", pa.float64()), ("width", pa.int32()),
                          ("height", pa.int32()), ("fps", pa.float32()), ("times", _FLOATS), ("content", _FLOATS),
                          ("diffs", _FLOATS), ("clip_score", pa.float32()), ("error", pa.string())])
LEDGER_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("video_id", pa.string()), ("input_file", pa.string()),
    ("input_row", pa.int64()), ("clip", pa.int32()), ("outcome", pa.string()), ("stage", pa.string()),
    ("reason", pa.string()), ("value", pa.float64()), ("detail", pa.string()), ("duration", pa.float64()),
    ("width", pa.int32()), ("height", pa.int32()), ("fps", pa.float32()), ("cuts", pa.int32()),
    ("cut_times", _FLOATS), ("content_max", pa.float32()), ("motion", pa.float32()), ("clip_score", pa.float32()),
])


# ---------------------------------------------------------------------------------------------- clip shards
def clip_shards(ingest_out: Path) -> dict[str, tuple[Path, Path]]:
    """unit id -> (tar, per-clip sidecar) of every finished clip shard of a video ingest folder."""
    folder = Path(ingest_out) / V.CLIPS_DIR
    units = clips_job(ingest_out).finished() if folder.is_dir() else {}
    if not units:
        raise TesseraUserError(f"{ingest_out} holds no finished clip shards ({V.CLIPS_DIR}/NNNNN.tar with markers; "
                               "run `tessera ingest --source webvid|panda70m` first)")
    return {u: (folder / f"{u}.tar", folder / f"{u}.parquet") for u in units}


# ------------------------------------------------------------------------------------------------ 1. scores
def analysis_size(width: int, height: int) -> tuple[int, int] | None:
    """(width, height) with the short side clamped into SHORT_SIDE, even sides; None keeps the clip's own size."""
    short = min(width, height)
    target = min(max(short, SHORT_SIDE[0]), SHORT_SIDE[1])
    if target == short or short <= 0:
        return None
    scale = target / short
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def measure_clip(data: bytes) -> tuple[dict, list[np.ndarray]]:
    """The measured columns of one clip and its frames for CLIP; MediaError when it does not decode."""
    info = probe(data)
    frames, times = decode_frames(data, fps=ANALYSIS_FPS, size=analysis_size(info.width, info.height))
    if not frames:
        raise MediaError("no frame decoded")
    picks = sorted({int(i) for i in np.linspace(0, len(frames) - 1, CLIP_FRAMES).round()})
    row = {"duration": info.duration or len(frames) / ANALYSIS_FPS, "width": info.width, "height": info.height,
           "fps": info.fps, "times": times, "content": content_scores(frames).tolist(),
           "diffs": frame_differences(frames).tolist()}
    return row, [frames[i] for i in picks]


def score_shard(tar_path: Path, sidecar: Path, scorer, batch_size: int) -> pa.Table:
    """One score row per clip stored at ingest (status success) of one clip shard."""
    import av
    import torch
    from PIL import Image

    clips = [r for r in pq.read_table(sidecar, columns=["key", "status", "caption"]).to_pylist()
             if r["status"] == V.SUCCESS]
    rows, buffer = [], []
    sums: dict[int, np.ndarray] = {}
    counts: Counter = Counter()

    def flush() -> None:
        emb = scorer.embed_images(torch.stack([t for _, t in buffer])).cpu().numpy()
        for (n, _), e in zip(buffer, emb):
            sums[n] = sums.get(n, 0) + e
            counts[n] += 1
        buffer.clear()

    with TarShard(tar_path) as tar:
        for n, clip in enumerate(clips):
            data = tar.read(clip["key"], "mp4")
            row = {"key": clip["key"], "error": MISSING_IN_TAR if data is None else None}
            if data is not None:
                try:
                    measured, frames = measure_clip(data)
                    row.update(measured)
                    buffer += [(n, scorer.preprocess(Image.fromarray(f))) for f in frames]
                except (MediaError, av.error.FFmpegError, ValueError) as err:  # a bad clip is an outcome
                    row["error"] = f"{V.DECODE_ERROR}: {err}"
            rows.append(row)
            if len(buffer) >= batch_size:
                flush()
    if buffer:
        flush()
    texts = [c["caption"] or "" for c in clips]
    for start in range(0, len(clips), batch_size):
        text = scorer.embed_texts(texts[start:start + batch_size]).cpu().numpy()
        for n, t in enumerate(text, start):
            if counts[n]:  # the mean of the frames' cosines: (sum of frame embeddings) . text / frames
                rows[n]["clip_score"] = float(np.clip(sums[n] @ t / counts[n], -1, 1))
    return pa.Table.from_pylist(rows, SCORE_SCHEMA)


def score_clips(ingest_out: Path, out: Path, clip_model: str, *, batch_size: int = 64, precision: str = "fp32",
                log=lambda s: None) -> dict[str, dict]:
    """Score every finished clip shard not scored yet under `out`; returns unit -> marker."""
    from models.clip_scorer import ClipScorer

    shards = clip_shards(ingest_out)
    job = ShardJob(out, SCORES_DIR)
    analysis = {"fps": ANALYSIS_FPS, "short_side": list(SHORT_SIDE), "clip_frames": CLIP_FRAMES}
    scorer = None
    for unit in job.pending(shards):
        with job.unit(unit) as writer:
            if writer is None:
                continue
            scorer = scorer or ClipScorer(clip_model, precision=precision)
            other = next((m for m in job.finished().values()
                          if (m.get("model"), m.get("analysis")) != (scorer.model_id, analysis)), None)
            if other is not None:
                raise TesseraUserError(f"{out} holds clip scores of {other.get('model')} (analysis "
                                       f"{other.get('analysis')}); use the same --clip-model or another --out")
            t0 = time.perf_counter()
            table = score_shard(*shards[unit], scorer, batch_size)
            rel = f"{SCORES_DIR}/{unit}.parquet"
            writer.parquet(table, rel)
            seconds = time.perf_counter() - t0
            errors = sum(e is not None for e in table.column("error").to_pylist())
            writer.commit({"unit": unit, "model": scorer.model_id, "analysis": analysis, "clips": table.num_rows,
                           "errors": errors, "seconds": round(seconds, 3),
                           "clips_per_second": round(table.num_rows / max(seconds, 1e-9), 2)},
                          expect={rel: table.num_rows})
            log(f"scored {table.num_rows} clips of shard {unit} in {seconds:.1f} s "
                f"({table.num_rows / max(seconds, 1e-9):.1f} clips/s, {errors} not decodable)")
    return job.finished()


# --------------------------------------------------------------------------------------------- 2. selection
def decide(clip: dict, score: dict | None, preset: VideoPreset, min_clip_score: float | None) -> dict:
    """The ledger row of one clip: its outcome, the first rule it fails (stage, reason, value), what was measured."""
    row = {k: clip.get(k) for k in ("key", "video_id", "input_file", "input_row", "clip")}
    if clip["status"] != V.SUCCESS:
        return {**row, "outcome": DROPPED, "stage": INGEST, "reason": clip.get("reason") or V.FAILED,
                "detail": clip.get("error_message")}
    if score is None or score["error"]:
        reason, _, detail = (score["error"] if score else NOT_SCORED).partition(": ")
        return {**row, "outcome": DROPPED, "stage": CURATE, "reason": reason, "detail": detail or None}
    cuts = detect_cuts(score["content"], preset.cut_threshold, min_scene_frames(ANALYSIS_FPS, preset.min_scene_len_s))
    motion = motion_score(score["diffs"], cuts)
    row.update({k: score[k] for k in ("duration", "width", "height", "fps", "clip_score")},
               cuts=len(cuts), cut_times=[score["times"][c] for c in cuts], motion=motion,
               content_max=max(score["content"], default=0.0))
    duration, short = score["duration"], min(score["width"], score["height"])
    rules = (
        (DURATION, duration, (preset.min_duration is not None and duration < preset.min_duration)
         or (preset.max_duration is not None and duration > preset.max_duration)),
        (RESOLUTION, short, preset.min_short_side is not None and short < preset.min_short_side),
        (LOW_MOTION, motion, preset.min_motion is not None and motion is not None and motion < preset.min_motion),
        (SCENE_CUT, len(cuts), preset.max_cuts is not None and len(cuts) > preset.max_cuts),
        (LOW_CLIP_SCORE, score["clip_score"], min_clip_score is not None and score["clip_score"] < min_clip_score),
    )
    failed = next(((reason, value) for reason, value, fails in rules if fails), None)
    if failed is None:
        return {**row, "outcome": KEPT}
    return {**row, "outcome": DROPPED, "stage": CURATE, "reason": failed[0], "value": failed[1]}


def _inputs_digest(shards: dict, scored: dict, ingest_out: Path, preset: VideoPreset, min_clip: float | None) -> str:
    """What the selection depends on: the settings and the files (with sizes) of every clip and score unit."""
    ingest = clips_job(ingest_out)
    files = {u: ingest.read_marker(u)[FILES_KEY] for u in shards}
    state = [asdict(preset), min_clip, files, {u: m[FILES_KEY] for u, m in scored.items()}]
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def select_clips(ingest_out: Path, out: Path, preset: VideoPreset, min_clip_score: float | None = None) -> dict:
    """Decide every clip of the ingest folder; write the ledger, the curated keys and the summary (last)."""
    out = Path(out)
    shards = clip_shards(ingest_out)
    scored = ShardJob(out, SCORES_DIR).finished()
    min_clip = preset.min_clip_score if min_clip_score is None else min_clip_score
    digest = _inputs_digest(shards, scored, Path(ingest_out), preset, min_clip)
    try:
        previous = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if isinstance(previous, dict) and previous.get("inputs") == digest and (out / LEDGER).exists() \
            and (out / CURATED).exists():
        return {**previous, "unchanged": True}
    rows, unscored = [], []
    for unit, (_, sidecar) in sorted(shards.items()):
        if unit not in scored:
            unscored.append(unit)  # finished at ingest after scoring started: the next run takes it
            continue
        scores = {s["key"]: s for s in pq.read_table(out / SCORES_DIR / f"{unit}.parquet").to_pylist()}
        for clip in pq.read_table(sidecar).to_pylist():
            rows.append({**decide(clip, scores.get(clip["key"]), preset, min_clip), "shard": unit})
    rows.sort(key=lambda r: r["key"])
    write_parquet_atomic(pa.Table.from_pylist(rows, LEDGER_SCHEMA), out / LEDGER)
    kept = [r["key"] for r in rows if r["outcome"] == KEPT]
    write_parquet_atomic(pa.table({"key": pa.array(kept, pa.string())}), out / CURATED)
    by = Counter((r["outcome"], r.get("stage"), r.get("reason")) for r in rows)
    models = sorted({m.get("model") for m in scored.values()})
    summary = {
        "preset": preset.name, "thresholds": {**asdict(preset), "min_clip_score": min_clip},
        "model": models[0] if models else None, "ingest_out": str(Path(ingest_out).resolve()),
        "clips": len(rows), "kept": len(kept), "dropped": len(rows) - len(kept),
        "by_outcome": [{"outcome": o, "stage": s, "reason": r, "n": n}
                       for (o, s, r), n in sorted(by.items(), key=lambda x: (x[0][0] != KEPT, -x[1]))],
        "rows_rejected_before_download": _rejected_rows(Path(ingest_out)),
        "unscored_shards": unscored, "inputs": digest,
    }
    write_json_atomic(summary, out / SUMMARY)
    return summary


def _rejected_rows(ingest_out: Path) -> int:
    """Input rows the ingest rejected before any download (they never became clips)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in (ingest_out / V.VIDEO_DIR).glob("*.rejects.parquet"))
