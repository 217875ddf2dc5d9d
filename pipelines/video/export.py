"""`tessera export-video-frames INGEST_OUT --out OUT`: clips as Emu-style interleaved documents of frames and text.

Each clip (or, with `group="video"`, each source video: its clips in time order) becomes one document in the
document shard format of `pipelines.documents.schema`, so `tessera doc-sequences OUT --layout emu2` lays it out:
`<doc_id>.json` with items = the caption, then `frames` frames sampled as Emu1's `process_video` does (segment
centres, `Emu1/utils.py get_index`), each its own image `<doc_id>.<i>.jpg`. Grouped by video, every clip's caption
comes right before that clip's frames: Panda-70M's timestamped captions interleaved the way YT-Storyboard-1B puts
the subtitles said before a frame ahead of it. Image items carry `key` `<clipkey>-f<i>` and `time` (seconds in the
source video). One unit per clip shard (`documents/NNNNN.tar`, `frame_export/NNNNN.parquet` with every clip's
outcome, marker last); a rerun skips finished units, and other settings in the same OUT are refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic
from pipelines.core.shard_job import ShardJob
from pipelines.core.shard_reader import TarShard
from pipelines.documents import schema as D
from pipelines.video import schema as V
from pipelines.video.curate import MISSING_IN_TAR, clip_shards
from pipelines.video.media import MediaError, probe

OUTCOMES_DIR, MANIFEST = "frame_export", "export_manifest.json"
CAPTION_SOURCES, GROUPS = ("json", "txt"), ("clip", "video")
EXPORTED, SKIPPED = "exported", "skipped"
NOT_CURATED, FAILED_AT_INGEST = "not_curated", "failed_at_ingest"
OUTCOME_SCHEMA = pa.schema([("key", pa.string()), (D.DOC_ID, pa.string()), ("outcome", pa.string()),
                            ("reason", pa.string()), ("frames", pa.int32())])


def emu1_frame_indices(total: int, n: int) -> list[int]:
    """Emu1's `get_index(num_frames, num_segments)`: the centre frame of each of n equal segments."""
    seg = float(total - 1) / n
    return [int(seg / 2) + int(round(seg * i)) for i in range(n)]


def sample_frames(data: bytes, n: int) -> tuple[list[bytes], list[float]]:
    """JPEGs of the clip's n Emu1 frames and their times (seconds from the clip start), in one decoding pass.

    Frames are counted in presentation order as decord's `VideoReader[i]` (Emu1's reader) counts them."""
    import av
    from PIL import Image

    info = probe(data)
    total = info.frames or max(1, round(info.duration * info.fps))
    wanted = emu1_frame_indices(total, n)
    found: dict[int, tuple[bytes, float]] = {}
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted and i not in found:
                buf = io.BytesIO()
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(buf, format="JPEG", quality=95)
                t = float(frame.pts * stream.time_base) if frame.pts is not None else i / info.fps
                found[i] = (buf.getvalue(), t)
            if i >= wanted[-1]:
                break
    if len(found) < len(set(wanted)):  # fewer frames than the container said (a truncated file)
        raise MediaError(f"{len(found)} of {len(set(wanted))} sampled frames decoded")
    return [found[i][0] for i in wanted], [found[i][1] for i in wanted]


def _caption(tar: TarShard, key: str, source: str) -> tuple[str | None, dict]:
    raw = tar.read(key, "json")
    meta = json.loads(raw) if raw is not None else {}
    if source == "txt":
        text = tar.read(key, "txt")
        text = text.decode("utf-8") if text is not None else None
    else:
        text = meta.get("caption")
    return (text.strip() or None) if isinstance(text, str) else None, meta


def doc_id_of(key: str, group: str) -> str:
    """The document id of a clip: its key (or its video's key prefix), with no dots (a webdataset key ends there)."""
    return (key.rsplit("_", 1)[0] if group == "video" else key).replace(".", "-")


def _export_unit(tar_path: Path, sidecar: Path, curated: set[str] | None, settings: dict, writer, rel: str) -> dict:
    """Write one clip shard's documents, each as soon as it is complete (clips of one document are adjacent)."""
    import av

    clips = sorted(pq.read_table(sidecar).to_pylist(), key=lambda c: (doc_id_of(c["key"], settings["group"]),
                                                                       c.get("start") or 0.0, c["key"]))
    outcomes, documents, doc = [], 0, None
    with TarShard(tar_path) as tar, tarfile.open(writer.path(rel), "w") as out:
        for clip in clips:
            key, doc_id, members = clip["key"], doc_id_of(clip["key"], settings["group"]), tar.exts(clip["key"])
            reason = (FAILED_AT_INGEST if clip["status"] != V.SUCCESS
                      else NOT_CURATED if curated is not None and key not in curated
                      else MISSING_IN_TAR if "mp4" not in members else None)
            if reason is None:
                try:
                    jpgs, times = sample_frames(tar.read(key, "mp4"), settings["frames"])
                except (MediaError, av.error.FFmpegError, ValueError):  # a bad clip is an outcome, not a crash
                    reason = V.DECODE_ERROR
            if reason is not None:
                outcomes.append({"key": key, "outcome": SKIPPED, "reason": reason, "frames": 0})
                continue
            caption, meta = _caption(tar, key, settings["captions_from"])
            if doc is None or doc[D.DOC_ID] != doc_id:
                documents += _write_document(out, doc)
                doc = {D.DOC_ID: doc_id, "source": meta.get("source") or "video", "url": clip.get("url"),
                       D.ITEMS: [], "clips": [], "jpgs": []}
            doc["clips"].append(key)
            if caption:
                doc[D.ITEMS].append({"type": D.TEXT, "text": caption})
            start = clip.get("start") or 0.0
            for i, (jpg, t) in enumerate(zip(jpgs, times)):
                doc[D.ITEMS].append({"type": D.IMAGE, "key": f"{key}-f{i}", "url": None, "image": len(doc["jpgs"]),
                                     "sim": None, "time": round(start + t, 3)})
                doc["jpgs"].append(jpg)
            outcomes.append({"key": key, D.DOC_ID: doc_id, "outcome": EXPORTED, "frames": len(jpgs)})
        documents += _write_document(out, doc)
    writer.parquet(pa.Table.from_pylist(outcomes, OUTCOME_SCHEMA), f"{OUTCOMES_DIR}/{Path(rel).stem}.parquet")
    return {"documents": documents, "clips": len(outcomes),
            "exported": sum(o["outcome"] == EXPORTED for o in outcomes), "images": sum(o["frames"] for o in outcomes),
            "skipped": dict(Counter(o["reason"] for o in outcomes if o["outcome"] == SKIPPED))}


def _write_document(out: tarfile.TarFile, doc: dict | None) -> int:
    """Add a document's frames and JSON to the tar; returns how many documents were written (0 or 1)."""
    if doc is None:
        return 0
    for n, jpg in enumerate(doc.pop("jpgs")):
        _add(out, f"{doc[D.DOC_ID]}.{n}.jpg", jpg)
    _add(out, f"{doc[D.DOC_ID]}.json", json.dumps(doc, ensure_ascii=False).encode())
    return 1


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def export_video_frames(ingest_out: Path, out: Path, curated: set[str] | None = None, frames: int = 8,
                        captions_from: str = "json", group: str = "clip", log=lambda s: None) -> dict:
    """Write the document shards of every clip shard not exported yet; returns the manifest."""
    if frames < 1 or captions_from not in CAPTION_SOURCES or group not in GROUPS:
        raise TesseraUserError(f"--frames must be >= 1, --captions-from one of {', '.join(CAPTION_SOURCES)}, "
                               f"--group one of {', '.join(GROUPS)}")
    shards = clip_shards(ingest_out)
    digest = None if curated is None else hashlib.sha256("\n".join(sorted(curated)).encode()).hexdigest()
    settings = {"frames": frames, "captions_from": captions_from, "group": group, "curated": digest}
    job = ShardJob(Path(out), D.DOCS_DIR)
    for unit, marker in job.finished().items():
        if marker.get("settings") != settings:
            raise TesseraUserError(f"{out} holds frames exported with other settings ({marker.get('settings')}); "
                                   "use another --out or the same settings")
    for unit in job.pending(shards):
        with job.unit(unit) as writer:
            if writer is None:
                continue
            rel = f"{D.DOCS_DIR}/{unit}.tar"
            stats = _export_unit(*shards[unit], curated, settings, writer, rel)
            writer.commit({"unit": unit, "settings": settings, **stats},
                          expect={rel: stats["documents"], f"{OUTCOMES_DIR}/{unit}.parquet": stats["clips"]})
            log(f"exported shard {unit}: {stats['exported']}/{stats['clips']} clips as {stats['documents']} "
                f"documents, {stats['images']} frames; skipped {stats['skipped'] or 'none'}")
    return _write_manifest(Path(out), Path(ingest_out), settings, job.finished())


def _write_manifest(out: Path, ingest_out: Path, settings: dict, units: dict[str, dict]) -> dict:
    skipped = sum((Counter(m["skipped"]) for m in units.values()), Counter())
    manifest = {"ingest_out": str(ingest_out.resolve()), **settings, "units": sorted(units),
                **{k: sum(m[k] for m in units.values()) for k in ("clips", "exported", "documents", "images")},
                "skipped": dict(sorted(skipped.items()))}
    path = out / MANIFEST
    try:
        unchanged = json.loads(path.read_text(encoding="utf-8")) == manifest
    except (OSError, ValueError):
        unchanged = False
    if not unchanged:  # a rerun that did nothing leaves the folder as it was
        write_json_atomic(manifest, path)
    return manifest
