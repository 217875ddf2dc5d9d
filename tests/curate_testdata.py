"""Tiny ingest folders for the curation tests: real webdataset tars, img2dataset-style sidecars, stats markers."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from conftest import mark_finished
from PIL import Image


def jpeg(seed: int, size=(96, 72), quality: int = 90, pad: int = 0) -> bytes:
    """A smooth random JPEG (distinct pHash per seed); `pad` bytes of JPEG comment grow the file, not the pixels."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **({"comment": b"\0" * pad} if pad else {}))
    return buf.getvalue()


def sample_rows() -> list[dict]:
    """Rows covering every filter: duplicates, sizes, captions, languages, metadata scores, a corrupt image."""
    en = "a photo of a small red house near the lake"
    rows = []
    for i in range(16):
        rows.append({"caption": f"{en} number {i}", "seed": i, "w": 640, "h": 480})
    rows += [
        {"caption": en + " copy", "seed": 0, "w": 640, "h": 480},  # same image bytes as row 0: duplicate_image
        {"caption": en + " again", "seed": 1, "w": 640, "h": 480, "quality": 40},  # re-encoded: near duplicate
        {"caption": "tiny image of a house", "seed": 100, "w": 150, "h": 120},  # image_too_small
        {"caption": "a very wide panorama of hills", "seed": 101, "w": 1200, "h": 300},  # aspect_ratio_too_large
        {"caption": "two words", "seed": 102, "w": 640, "h": 480},  # caption_too_few_words
        {"caption": "ein kleines rotes Haus am See mit einem Garten", "seed": 103, "w": 640, "h": 480},  # language
        {"caption": "an unsafe picture of a thing", "seed": 104, "w": 640, "h": 480, "nsfw": 0.9},  # coyo nsfw
        {"caption": "a broken image file here", "seed": None, "w": 640, "h": 480},  # corrupt bytes
        {"caption": en + " number 3", "seed": 3, "w": 640, "h": 480, "url": "http://img.test/3.jpg"},  # dup url
        {"caption": "a small file of a green boat on the river", "seed": 105, "w": 640, "h": 480,
         "pad": 0},  # stored file < 5 KB: image_file_too_small (coyo)
        {"caption": "another unsafe picture of a cat", "seed": 106, "w": 640, "h": 480, "gantman": 0.8},  # gantman
    ]
    for i, row in enumerate(rows):
        row.setdefault("url", f"http://img.test/{i}.jpg")
        row.setdefault("nsfw", 0.1)
    return rows


def build_ingest(root: Path, rows: list[dict] | None = None, per_shard: int = 9, failed_per_shard: int = 1) -> Path:
    """Write INGEST_OUT with shards/NNNNN.{tar,parquet,_stats.json}, plus one unfinished shard to be ignored."""
    rows = sample_rows() if rows is None else rows
    shard_dir = Path(root) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    chunks = [rows[i:i + per_shard] for i in range(0, len(rows), per_shard)]
    for sid, chunk in enumerate(chunks + [chunks[0]]):
        name = f"{sid:05d}"
        records = []
        with wds.TarWriter(str(shard_dir / f"{name}.tar")) as tar:
            for j, row in enumerate(chunk):
                key = f"{name}{j:04d}"
                data = b"not a jpeg" if row["seed"] is None else jpeg(
                    row["seed"], size=row.get("size", (96, 72)), quality=row.get("quality", 90),
                    pad=row.get("pad", 6 * 1024))
                tar.write({"__key__": key, "jpg": data, "txt": row["caption"], "json": json.dumps({"key": key})})
                records.append(_sidecar_row(key, row, "success", hashlib.sha256(data).hexdigest()))
            for j in range(failed_per_shard):
                key = f"{name}{len(chunk) + j:04d}"
                records.append(_sidecar_row(key, {"caption": "lost", "url": f"http://img.test/x{key}", "w": None,
                                                  "h": None, "nsfw": None}, "failed_to_download", None))
        pq.write_table(pa.Table.from_pylist(records), shard_dir / f"{name}.parquet")
        if sid < len(chunks):  # the last shard is left unfinished: no stats file
            mark_finished(root, "shards", name, [f"shards/{name}.tar", f"shards/{name}.parquet"],
                          {"successes": len(chunk), "count": len(records), "failed_to_download": failed_per_shard,
                           "failed_to_resize": 0, "duration": 0.0})
    return Path(root)


def _sidecar_row(key: str, row: dict, status: str, sha: str | None) -> dict:
    ok = status == "success"
    return {
        "key": key, "url": row["url"], "caption": row["caption"], "status": status,
        "error_message": None if ok else "boom", "width": 256 if ok else None, "height": 192 if ok else None,
        "original_width": row["w"], "original_height": row["h"], "sha256": sha, "exif": None,
        "source": "coyo", "input_file": "meta.parquet", "input_row": int(key),
        "meta_original_width": row["w"], "meta_original_height": row["h"],
        "nsfw_score_opennsfw2": row["nsfw"], "nsfw_score_gantman": row.get("gantman", 0.1 if ok else None),
    }
