"""Video curation and the Emu-style frame export, over clip shards built by hand with generated clips."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli.main import main
from pipelines.core.shard_job import ShardJob
from pipelines.video import schema as V
from pipelines.video.export import emu1_frame_indices
from pipelines.video.motion import frame_differences, motion_score
from pipelines.video.scenes import content_scores, detect_cuts, hsv
from pipelines.video.synthetic import synthetic_frames, synthetic_mp4

FPS, SIZE = 10.0, (192, 144)
# key -> (kind, seconds, size, expected outcome reason); shard 00000 holds two clips of one video (row 0).
CLIPS = {
    "000000000_000": ("moving", 4.0, SIZE, None),
    "000000000_001": ("moving", 3.0, SIZE, None),
    "000000001_000": ("static", 4.0, SIZE, "low_motion"),
    "000000002_000": ("cut", 4.0, SIZE, "scene_cut"),
    "000000003_000": ("slideshow", 4.5, SIZE, "low_motion"),
    "000010000_000": ("moving", 0.6, SIZE, "duration"),
    "000010001_000": ("moving", 3.0, (96, 64), "resolution"),
    "000010002_000": (None, 0.0, SIZE, V.VIDEO_NOT_DOWNLOADED),  # failed at ingest: no member in the tar
    "000010003_000": ("broken", 2.0, SIZE, V.DECODE_ERROR),  # stored, but its bytes are not a video
}
SIDECAR = pa.schema([("key", pa.string()), ("input_file", pa.string()), ("input_row", pa.int64()),
                     ("clip", pa.int32()), ("video_id", pa.string()), ("url", pa.string()), ("caption", pa.string()),
                     ("start", pa.float64()), ("end", pa.float64()), ("status", pa.string()), ("reason", pa.string()),
                     ("error_message", pa.string()), ("duration", pa.float64()), ("width", pa.int32()),
                     ("height", pa.int32()), ("fps", pa.float32()), ("frames", pa.int32()), ("bytes", pa.int64())])


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build_ingest(root: Path) -> Path:
    """Two finished clip shards in the ingest layout (tar + per-clip and per-row sidecars, marker last)."""
    job = ShardJob(root, V.CLIPS_DIR)
    for unit in ("00000", "00001"):
        keys = sorted(k for k in CLIPS if k.startswith(unit))
        side, rows = [], {}
        with job.unit(unit) as writer:
            with tarfile.open(writer.path(f"{V.CLIPS_DIR}/{unit}.tar"), "w") as tar:
                for n, key in enumerate(keys):
                    kind, seconds, size, reason = CLIPS[key]
                    row, clip = int(key[5:9]), int(key[-3:])
                    start = 10.0 * clip
                    caption = f"a {kind} clip number {n}"
                    meta = {"key": key, "video_id": f"v{unit}{row}", "url": f"http://127.0.0.1/v{row}.mp4",
                            "caption": caption, "start": start, "end": start + seconds, "source": "webvid"}
                    ok = kind is not None
                    if ok:
                        mp4 = b"<html>not a video</html>" if kind == "broken" else synthetic_mp4(kind, seconds, FPS,
                                                                                                  size, seed=n)
                        _add(tar, f"{key}.mp4", mp4)
                        _add(tar, f"{key}.txt", f"txt: {caption}".encode())
                        _add(tar, f"{key}.json", json.dumps(meta).encode())
                    side.append({**{k: meta[k] for k in ("key", "video_id", "url", "caption", "start", "end")},
                                 "input_file": "webvid.csv", "input_row": row, "clip": clip,
                                 "status": V.SUCCESS if ok else V.FAILED, "reason": None if ok else reason,
                                 "error_message": None if ok else "HTTP 404",
                                 "duration": seconds if ok else None, "width": size[0] if ok else None,
                                 "height": size[1] if ok else None, "fps": FPS if ok else None})
                    rows.setdefault(row, {"input_file": "webvid.csv", "input_row": row, "status": side[-1]["status"]})
            writer.parquet(pa.Table.from_pylist(side, SIDECAR), f"{V.CLIPS_DIR}/{unit}.parquet")
            writer.parquet(pa.Table.from_pylist(list(rows.values())), f"{V.CLIPS_DIR}/{unit}.rows.parquet")
            writer.commit({"clips": len(side)})
    return root


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """The ingest folder and a `tessera curate --preset webvid` output over it (tiny CLIP)."""
    root = tmp_path_factory.mktemp("video")
    ingest = build_ingest(root / "ingest")
    assert main(["curate", str(ingest), "--preset", "webvid", "--out", str(root / "cur"), "--clip-model", "tiny"]) == 0
    return ingest, root / "cur"


def test_every_clip_has_its_outcome_and_reason(curated):
    ingest, cur = curated
    ledger = pq.read_table(cur / "clip_ledger.parquet").to_pylist()
    assert sorted(r["key"] for r in ledger) == sorted(CLIPS)  # every clip once
    by_key = {r["key"]: r for r in ledger}
    for key, (kind, _, _, reason) in CLIPS.items():
        row = by_key[key]
        assert row["reason"] == reason, (key, row)
        assert row["outcome"] == ("kept" if reason is None else "dropped")
        assert row["stage"] == (None if reason is None else "ingest" if kind is None else "curate")
    assert by_key["000000001_000"]["value"] < 0.004 < by_key["000000000_000"]["motion"]
    assert by_key["000000002_000"]["value"] == 1  # one cut
    assert by_key["000010000_000"]["value"] == pytest.approx(0.6, abs=0.1)
    assert by_key["000010001_000"]["value"] == 64
    assert by_key["000010002_000"]["detail"] == "HTTP 404"
    assert all(-1 <= r["clip_score"] <= 1 for r in ledger if r["duration"] is not None)
    kept = pq.read_table(cur / "curated" / "clips.parquet").column("key").to_pylist()
    assert sorted(kept) == sorted(k for k, v in CLIPS.items() if v[3] is None)
    summary = json.loads((cur / "summary.json").read_text())
    assert (summary["clips"], summary["kept"]) == (len(CLIPS), len(kept))


def test_cut_is_found_at_its_time(curated):
    _, cur = curated
    row = next(r for r in pq.read_table(cur / "clip_ledger.parquet").to_pylist() if r["key"] == "000000002_000")
    frames = synthetic_frames("cut", 4.0, FPS, SIZE)
    true_cut = (len(frames) // 2) / FPS  # synthetic.py: the second scene starts at frame n // 2
    assert len(row["cut_times"]) == 1 and abs(row["cut_times"][0] - true_cut) <= 0.5  # one frame at 2 fps


def test_rerun_writes_nothing(curated):
    ingest, cur = curated
    before = {p: p.stat().st_mtime_ns for p in cur.rglob("*") if p.is_file()}
    assert main(["curate", str(ingest), "--preset", "webvid", "--out", str(cur), "--clip-model", "tiny"]) == 0
    assert {p: p.stat().st_mtime_ns for p in cur.rglob("*") if p.is_file()} == before


def test_export_feeds_doc_sequences(curated, tmp_path):
    ingest, cur = curated
    out = tmp_path / "frames"
    assert main(["export-video-frames", str(ingest), "--out", str(out), "--curated", str(cur)]) == 0
    with tarfile.open(out / "documents" / "00000.tar") as tar:
        names = tar.getnames()
        docs = {Path(n).stem: json.loads(tar.extractfile(n).read()) for n in names if n.endswith(".json")}
    assert sorted(docs) == ["000000000_000", "000000000_001"]
    doc = docs["000000000_000"]
    assert [i["type"] for i in doc["items"]] == ["text"] + ["image"] * 8
    assert doc["items"][0]["text"].startswith("a moving clip")
    assert [i["key"] for i in doc["items"][1:]] == [f"000000000_000-f{i}" for i in range(8)]
    assert all(f"000000000_000.{i}.jpg" in names for i in range(8))
    times = [i["time"] for i in doc["items"][1:]]
    assert times == pytest.approx([i / FPS for i in emu1_frame_indices(40, 8)], abs=1e-3)
    outcomes = {r["key"]: r for f in sorted((out / "frame_export").glob("*.parquet"))
                for r in pq.read_table(f).to_pylist()}
    assert sorted(outcomes) == sorted(CLIPS)  # every clip has its export outcome
    assert outcomes["000000001_000"]["reason"] == "not_curated"
    assert outcomes["000010002_000"]["reason"] == "failed_at_ingest"
    assert outcomes["000010003_000"]["reason"] == "not_curated"  # dropped by curation already

    seq = tmp_path / "seq"
    assert main(["doc-sequences", str(out), "--layout", "emu2", "--n-query", "32", "--out", str(seq)]) == 0
    rows = [r for f in sorted((seq / "sequences").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted(r["doc_id"] for r in rows) == ["000000000_000", "000000000_001"]
    assert all(r["n_images"] == 8 for r in rows)
    manifest = json.loads((seq / "manifest.json").read_text())
    image = manifest["placeholder_ids"]["<image>"]
    assert all(r["input_ids"].count(image) == 8 * 32 for r in rows)


def test_export_by_video_interleaves_captions_in_time(curated, tmp_path):
    ingest, cur = curated
    out = tmp_path / "frames"
    argv = ["export-video-frames", str(ingest), "--out", str(out), "--curated", str(cur), "--group", "video",
            "--frames", "4", "--captions-from", "txt"]
    assert main(argv) == 0
    with tarfile.open(out / "documents" / "00000.tar") as tar:
        doc = json.loads(tar.extractfile("000000000.json").read())
    kinds = [i["type"] for i in doc["items"]]
    assert kinds == ["text"] + ["image"] * 4 + ["text"] + ["image"] * 4
    assert doc["items"][5]["text"].startswith("txt: a moving clip number 1")
    times = [i["time"] for i in doc["items"] if i["type"] == "image"]
    assert times == sorted(times) and times[4] >= 10.0  # the second clip starts 10 s into the video
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(argv) == 0  # a rerun resumes: nothing left to do, nothing written
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert main(argv[:-4] + ["--frames", "2"]) == 2  # other settings into the same OUT are refused


def test_hsv_is_opencv_exact():
    cv2 = pytest.importorskip("cv2")  # OpenCV comes with albumentations; Tessera's HSV must match it bit for bit
    gb = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), axis=-1).reshape(256, 256, 2)
    for red in range(0, 256, 32):  # every 8-bit colour, 32 red levels at a time
        rgb = np.concatenate([np.broadcast_to((np.arange(red, red + 32) % 256)[:, None, None, None],
                                              (32, 256, 256, 1)), np.broadcast_to(gb, (32, 256, 256, 2))], axis=-1)
        rgb = np.ascontiguousarray(rgb.reshape(32 * 256, 256, 3), dtype=np.uint8)
        assert np.array_equal(hsv(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)), red


def test_detector_suppresses_cuts_closer_than_min_scene_len():
    scores = [0, 30, 40, 0, 0, 50, 27, 26.9]
    assert detect_cuts(scores, 27, 1) == [2, 3, 6, 7]
    assert detect_cuts(scores, 27, 3) == [3, 6]
    frames = synthetic_frames("slideshow", 3.0, 2.0, (64, 48))
    cuts = detect_cuts(content_scores(frames), 27, 1)
    assert len(cuts) == 2 and motion_score(frame_differences(frames), cuts) == pytest.approx(0, abs=1e-6)
