"""Download and cut a prepared video partition into clip shards, one shard job unit per shard.

Every video is fetched once, whole, through the guarded fetch layer (`Fetcher`: SSRF guard, byte cap from
`--max-video-bytes`, whole-fetch deadline, robots.txt, X-Robots-Tag opt-out, per-host politeness); the fetch layer
does not look at Content-Type, so a web page is fetched like a video and then fails as `not_a_video`. Rows run in
a thread pool (PyAV releases the GIL while decoding and encoding); the shard's tar is written from the main thread.

Outcomes (see `pipelines.video.cut` for the rules): a row whose fetch failed is `failed` with the fetch layer's
reason (`http_error`, `blocked_private_address`, `image_too_large_bytes`, `deadline_exceeded`, ...) and its clips
fail as `video_not_downloaded`; a row whose bytes cannot be cut fails as `not_a_video`, `video_decode_error` or
`image_too_many_pixels` and its clips fail with that same reason; otherwise the row is `success` (even if none of
its clips is) and each clip has its own outcome. Every clip gets a key `{shard:05d}{row:04d}_{clip:03d}` and a
sidecar row; successful clips also get `<key>.mp4/.txt/.json` in the tar.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.core.errors import TesseraEnvironmentError, TesseraUserError, describe_os_error
from pipelines.core.locks import partition_lock
from pipelines.core.shard_io import naming
from pipelines.ingest.fetch import FetchConfig, Fetcher, reason_of
from pipelines.video import schema as V
from pipelines.video.cut import ClipOutcome, CutSettings, RowFailure, cut_clip, open_video
from pipelines.video.fetch_settings import video_fetch
from pipelines.video.partitions import VideoManifest, clips_job, video_file

CLIP_SCHEMA = pa.schema([
    ("key", pa.string()), ("input_file", pa.string()), ("input_row", pa.int64()), ("clip", pa.int32()),
    ("video_id", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("start", pa.float64()),
    ("end", pa.float64()), ("status", pa.string()), ("reason", pa.string()), ("error_message", pa.string()),
    ("duration", pa.float64()), ("width", pa.int32()), ("height", pa.int32()), ("fps", pa.float64()),
    ("frames", pa.int32()), ("bytes", pa.int64()),
])
ROW_SCHEMA = pa.schema([
    ("input_file", pa.string()), ("input_row", pa.int64()), ("video_id", pa.string()), ("url", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("error_message", pa.string()), ("clips", pa.int32()),
    ("clips_ok", pa.int32()), ("bytes_downloaded", pa.int64()),
])


class VideoDownloadConfig(BaseModel):
    """How clips are cut (rate, short side, length limits), how many rows run at once, and how videos are fetched."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fps: float = Field(8.0, gt=0, le=120)
    video_size: int = Field(256, ge=16, le=4096)  # short side of every clip, px (rounded down to even)
    min_clip_seconds: float = Field(0.5, ge=0)
    max_clip_seconds: float = Field(60.0, gt=0)
    threads: int = Field(4, ge=1, le=256)
    # max_image_bytes is the video byte cap here (--max-video-bytes); max_image_pixels caps the frame size.
    fetch: FetchConfig = Field(default_factory=video_fetch)

    @model_validator(mode="after")
    def _limits(self) -> "VideoDownloadConfig":
        if self.min_clip_seconds > self.max_clip_seconds:
            raise ValueError(f"min_clip_seconds {self.min_clip_seconds:g} is over max_clip_seconds "
                             f"{self.max_clip_seconds:g}")
        return self

    def settings(self) -> CutSettings:
        return CutSettings(self.fps, self.video_size, self.min_clip_seconds, self.max_clip_seconds,
                           self.fetch.max_image_pixels)


def clip_key(shard_id: int, row: int, clip: int) -> str:
    """The clip's sample key (no dots: webdataset splits member names at the first dot)."""
    return f"{shard_id:05d}{row:04d}_{clip:03d}"


def process_row(fetcher: Fetcher, row: dict, settings: CutSettings) -> tuple[dict, list[ClipOutcome], dict | None]:
    """Fetch one video and cut its clips: (row outcome, clip outcomes in order, probed video facts or None)."""
    _, body, error = fetcher.fetch((None, row["url"]))
    if error is not None:
        reason = reason_of(error) or error.split(":", 1)[0]
        fate = {"status": V.FAILED, "reason": reason, "error_message": error, "bytes_downloaded": None}
        return fate, _all_failed(row, V.VIDEO_NOT_DOWNLOADED, f"{V.VIDEO_NOT_DOWNLOADED}: {error}"), None
    data = body.getvalue()
    del body
    try:
        info = open_video(data, settings)
    except RowFailure as failure:
        fate = {"status": V.FAILED, "reason": failure.reason, "error_message": str(failure),
                "bytes_downloaded": len(data)}
        return fate, _all_failed(row, failure.reason, str(failure)), None
    clips = [cut_clip(data, info, c["start"], c["end"], settings) for c in row["clips"]]
    fate = {"status": V.SUCCESS, "reason": None, "error_message": None, "bytes_downloaded": len(data)}
    return fate, clips, {"duration": info.duration, "width": info.width, "height": info.height, "fps": info.fps}


def _all_failed(row: dict, reason: str, message: str) -> list[ClipOutcome]:
    return [ClipOutcome(V.FAILED, reason, message[:500], c["start"], c["end"]) for c in row["clips"]]


def _clip_json(key: str, row: dict, index: int, outcome: ClipOutcome, fps: float, source: str, video: dict) -> dict:
    """The clip's `.json`: where it came from, how it was cut, and every source column (`src_` on a name clash)."""
    clip = row["clips"][index]
    meta = {"key": key, "source": source, "video_id": row["video_id"], "url": row["url"],
            "input_file": row["input_file"], "input_row": row["input_row"], "clip": index,
            "caption": clip["caption"], "start": outcome.start, "end": outcome.end,
            "requested_start": clip["start"], "requested_end": clip["end"], "fps": fps, "width": outcome.width,
            "height": outcome.height, "frames": outcome.frames, "duration": outcome.frames / fps, "video": video,
            **outcome.notes}
    for extra in (row["extra"], clip["extra"]):
        for name, value in json.loads(extra or "{}").items():
            meta[f"src_{name}" if name in meta else name] = value
    return meta


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def _records(shard_id: int, i: int, row: dict, done: tuple, config: VideoDownloadConfig, source: str
             ) -> tuple[list[dict], dict, list[tuple[str, bytes]]]:
    """One processed row as its clip sidecar rows, its row sidecar row and its tar members."""
    fate, outcomes, video = done
    clips, members = [], []
    for c, outcome in enumerate(outcomes):
        key, caption, ok = clip_key(shard_id, i, c), row["clips"][c]["caption"], outcome.status == V.SUCCESS
        if ok:
            meta = _clip_json(key, row, c, outcome, config.fps, source, video)
            members += [(f"{key}.mp4", outcome.mp4), (f"{key}.txt", caption.encode()),
                        (f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())]
        clips.append({
            "key": key, "input_file": row["input_file"], "input_row": row["input_row"], "clip": c,
            "video_id": row["video_id"], "url": row["url"], "caption": caption, "start": outcome.start,
            "end": outcome.end, "status": outcome.status, "reason": outcome.reason,
            "error_message": outcome.error_message, "duration": outcome.frames / config.fps if ok else None,
            "width": outcome.width, "height": outcome.height, "fps": config.fps if ok else None,
            "frames": outcome.frames, "bytes": len(outcome.mp4) if ok else None})
    record = {"input_file": row["input_file"], "input_row": row["input_row"], "video_id": row["video_id"],
              "url": row["url"], **fate, "clips": len(outcomes),
              "clips_ok": sum(o.status == V.SUCCESS for o in outcomes)}
    return clips, record, members


def _write_shard(job, writer, manifest: VideoManifest, shard_id: int, rows: list[dict], pool: ThreadPoolExecutor,
                 fetcher: Fetcher, config: VideoDownloadConfig, bar) -> None:
    """Run every row of one shard, stream successful clips into the tar, then commit tar and sidecars."""
    name, began, settings = f"{shard_id:05d}", time.time(), config.settings()
    clips, records = [], {}
    tar_rel = f"{V.CLIPS_DIR}/{name}.tar"
    with naming(job.root / tar_rel), tarfile.open(writer.path(tar_rel), "w") as tar:
        futures = {pool.submit(process_row, fetcher, row, settings): i for i, row in enumerate(rows)}
        for future in as_completed(futures):
            i = futures[future]
            row_clips, records[i], members = _records(shard_id, i, rows[i], future.result(), config,
                                                      manifest.source)
            for member, data in members:  # a sample's members stay together, as webdataset needs
                _add(tar, member, data, began)
            clips += row_clips
            bar.update(len(row_clips))
    clips.sort(key=lambda c: c["key"])
    records = [records[i] for i in sorted(records)]
    successes = sum(c["status"] == V.SUCCESS for c in clips)
    writer.parquet(pa.Table.from_pylist(clips, CLIP_SCHEMA), f"{V.CLIPS_DIR}/{name}.parquet")
    writer.parquet(pa.Table.from_pylist(records, ROW_SCHEMA), f"{V.CLIPS_DIR}/{name}.rows.parquet")
    stats = {"partition": manifest.name, "source": manifest.source, "count": len(rows), "clips": len(clips),
             "successes": successes, "rows_ok": sum(r["status"] == V.SUCCESS for r in records),
             "row_reasons": dict(Counter(r["reason"] for r in records if r["reason"])),
             "clip_reasons": dict(Counter(c["reason"] for c in clips if c["reason"])),
             "fps": config.fps, "video_size": config.video_size, "seconds": round(time.time() - began, 3)}
    writer.commit(stats, expect={tar_rel: successes, f"{V.CLIPS_DIR}/{name}.parquet": len(clips),
                                 f"{V.CLIPS_DIR}/{name}.rows.parquet": len(rows)})


def _shard_rows(out: Path, prepared: pq.ParquetFile, manifest: VideoManifest, shard_id: int) -> list[dict]:
    group = shard_id - manifest.start_shard_id
    expected = min(manifest.samples_per_shard, manifest.accepted - group * manifest.samples_per_shard)
    rows = prepared.read_row_group(group).to_pylist() if group < prepared.num_row_groups else []
    if len(rows) != expected:
        raise TesseraUserError(f"{video_file(out, manifest.name, 'prepared')} does not match its manifest (shard "
                               f"{shard_id:05d}: {len(rows)} rows, {expected} expected); remove the partition's "
                               "files under video/ and clips/ and ingest it again")
    return rows


def download_video(out: Path, manifest: VideoManifest, config: VideoDownloadConfig | None = None, *,
                   wait: bool = False, progress: bool = True) -> list[int]:
    """Download and cut the partition's unfinished shards (finished ones are skipped); return the shard ids done."""
    from tqdm import tqdm

    out, config = Path(out), config or VideoDownloadConfig()
    job = clips_job(out)
    with partition_lock(out, manifest.name, wait=wait):
        todo = job.pending(f"{s:05d}" for s in manifest.shard_ids)
        if not todo:
            return []
        prepared = pq.ParquetFile(video_file(out, manifest.name, "prepared"))
        total = sum(pc.sum(pc.list_value_length(prepared.read_row_group(
            int(u) - manifest.start_shard_id, columns=["clips"])["clips"])).as_py() or 0 for u in todo)
        fetcher = Fetcher(config.fetch)
        pool = ThreadPoolExecutor(config.threads, thread_name_prefix="tessera-video")
        try:
            with tqdm(total=total, desc="video clips", unit="clip", file=sys.stderr, disable=not progress) as bar:
                for unit in todo:
                    shard_id = int(unit)
                    rows = _shard_rows(out, prepared, manifest, shard_id)
                    with job.unit(unit) as writer:
                        if writer is not None:
                            _write_shard(job, writer, manifest, shard_id, rows, pool, fetcher, config, bar)
        except OSError as err:
            cause = describe_os_error(err)
            if cause is None:
                raise
            raise TesseraEnvironmentError(
                f"{cause} (while writing clip shards of video partition '{manifest.name}'; finished shards stay "
                "finished); fix that and rerun the same command to resume") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [int(u) for u in todo]
