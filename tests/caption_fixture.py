"""Shared fixtures for the caption tests: a private model cache, tiny ingest folders, CapsFusion-style parquet."""

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
from PIL import Image

from conftest import add_tar_member, mark_finished


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """Point TESSERA_CACHE at a session folder, so `tiny` models are built once per test session."""
    old = os.environ.get("TESSERA_CACHE")
    os.environ["TESSERA_CACHE"] = str(tmp_path_factory.mktemp("tessera_cache"))
    yield Path(os.environ["TESSERA_CACHE"])
    if old is None:
        os.environ.pop("TESSERA_CACHE", None)
    else:
        os.environ["TESSERA_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_llm(tiny_cache) -> str:
    """Path of the tiny Llama fuser."""
    from models.tiny_text import tiny_llm_path

    return str(tiny_llm_path())


@pytest.fixture(scope="session")
def tiny_captioner(tiny_cache) -> str:
    """Path of the tiny ViT+GPT-2 captioner."""
    from models.tiny_text import tiny_captioner_path

    return str(tiny_captioner_path())


def jpeg(seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    """A small real JPEG."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def make_ingest(root: Path, shards: list[list[dict]]) -> Path:
    """img2dataset-style shards: NNNNN.tar (+.parquet sidecar, +_stats.json). Sample dict: key, caption, status,
    and optional `image` bytes (default: a real JPEG)."""
    shard_dir = root / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    for sid, samples in enumerate(shards):
        name = f"{sid:05d}"
        rows = []
        with tarfile.open(shard_dir / f"{name}.tar", "w") as tf:
            for i, s in enumerate(samples):
                status = s.get("status", "success")
                rows.append({"key": s["key"], "url": f"http://x/{s['key']}.jpg", "caption": s["caption"],
                             "status": status, "width": 40, "height": 30, "source": "laion"})
                if status == "success":
                    add_tar_member(tf, f"{s['key']}.jpg", s.get("image") or jpeg(sid * 100 + i))
                    add_tar_member(tf, f"{s['key']}.txt", s["caption"].encode())
        pq.write_table(pa.Table.from_pylist(rows), shard_dir / f"{name}.parquet")
        mark_finished(root, "shards", name, [f"shards/{name}.tar", f"shards/{name}.parquet"],
                      {"successes": sum(r["status"] == "success" for r in rows), "count": len(rows)})
    return root


def make_capsfusion(path: Path, n: int, offset: int = 0) -> Path:
    """A CapsFusion-120M-style parquet file: image_url, laion_2b (raw), laion_coco (synthetic), capsfusion."""
    raws = ["Buy cheap RED shoes online 2024", "london 1920 train station old photo", "  IMG_0042.JPG  ",
            "mountain lake landscape snow", "best price sneakers free shipping"]
    syns = ["a pair of red shoes", "an old picture of a train station", "a cat sitting on a table",
            "a lake with mountains", "a white sneaker on a table"]
    rows = [{"image_url": f"http://x/{offset + i}.jpg", "laion_2b": raws[i % 5], "laion_coco": syns[i % 5],
             "capsfusion": "ref"} for i in range(n)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path
