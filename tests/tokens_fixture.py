"""Tiny ingest folders (real webdataset tars + img2dataset-style parquet sidecars) for the token/export tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from conftest import add_tar_member, mark_finished


def _jpeg(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(3,), dtype=np.uint8)
    arr = np.broadcast_to(base, (height, width, 3)).copy()
    arr[: height // 2, : width // 2] = 255 - base
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_ingest(root: Path, shards: list[list[dict]]) -> Path:
    """Write `root/shards/NNNNN.{tar,parquet}` + `_stats.json` + `sizes.json`.

    Each sample dict: key, caption, width, height, source, status (default success); failed rows get no image.
    """
    shard_dir = root / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for sid, samples in enumerate(shards):
        name = f"{sid:05d}"
        rows = []
        with tarfile.open(shard_dir / f"{name}.tar", "w") as tf:
            for i, s in enumerate(samples):
                status = s.get("status", "success")
                rows.append({"key": s["key"], "url": f"http://x/{s['key']}.jpg", "caption": s["caption"],
                             "status": status, "error_message": None if status == "success" else "boom",
                             "width": s["width"], "height": s["height"], "source": s.get("source", "laion")})
                if status == "success":
                    add_tar_member(tf, f"{s['key']}.jpg", _jpeg(s["width"], s["height"], seed=sid * 1000 + i))
                    add_tar_member(tf, f"{s['key']}.txt", s["caption"].encode())
                    add_tar_member(tf, f"{s['key']}.json", json.dumps({"key": s["key"], "caption": s["caption"]}).encode())
        pq.write_table(pa.Table.from_pylist(rows), shard_dir / f"{name}.parquet")
        ok = sum(r["status"] == "success" for r in rows)
        mark_finished(root, "shards", name, [f"shards/{name}.tar", f"shards/{name}.parquet"],
                      {"successes": ok, "count": len(rows)})
        sizes[f"{name}.tar"] = ok
    (root / "sizes.json").write_text(json.dumps(sizes))
    return root


def samples(prefix: str, n: int, source: str = "laion", width: int = 48, height: int = 32) -> list[dict]:
    """`n` sample dicts with distinct keys."""
    return [{"key": f"{prefix}{i:04d}", "caption": f"a photo number {i} from {source}", "width": width,
             "height": height, "source": source} for i in range(n)]
