"""Reading the downloaded samples of one ingest shard, with the final caption and curated selection applied.

Re-captioning output (`CAPTIONS_OUT`) is any tree of parquet files with `key` and `final_caption`; curation output
(`CURATE_OUT`) holds `curated/*.parquet`, one row per kept key. Both are optional.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.caption.hygiene import SOURCE_DROPPED
from pipelines.core.errors import TesseraUserError
from pipelines.core.shards import ShardPaths, read_sidecar

FINAL_CAPTION = "final_caption"
CAPTION_SOURCE = "caption_source"
CAPTION_DROPPED = "caption_dropped"  # skip / drop reason of a sample whose caption was dropped
CURATED_DIR = "curated"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def read_tar(tar: Path) -> dict[str, dict[str, bytes]]:
    """Members of a webdataset tar grouped by key: {key: {"jpg": bytes, "txt": bytes, "json": bytes}}."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(tar) as tf:
        for member in tf:
            if not member.isfile():
                continue
            key, _, ext = Path(member.name).name.partition(".")
            samples.setdefault(key, {})[ext.lower()] = tf.extractfile(member).read()
    return samples


def load_final_captions(captions_out: Path | None) -> tuple[dict[str, str], set[str]]:
    """(key -> final caption, keys whose caption was dropped) from re-captioning output.

    A row with `caption_source == "dropped"` (`caption --fallback drop`) marks its key as dropped unless another row
    gives that key a caption; other rows with an empty or null final caption are ignored (the raw caption is used).
    """
    if captions_out is None:
        return {}, set()
    if not Path(captions_out).is_dir():
        raise TesseraUserError(f"--captions {captions_out} is not a folder")
    files = sorted(Path(captions_out).rglob("*.parquet"))
    out: dict[str, str] = {}
    dropped: set[str] = set()
    for f in files:
        names = set(pq.read_schema(f).names)
        if {S.KEY, FINAL_CAPTION} - names:
            continue
        cols = [S.KEY, FINAL_CAPTION] + ([CAPTION_SOURCE] if CAPTION_SOURCE in names else [])
        t = pq.read_table(f, columns=cols)
        sources = t.column(CAPTION_SOURCE).to_pylist() if CAPTION_SOURCE in names else [None] * t.num_rows
        for k, c, src in zip(t.column(S.KEY).to_pylist(), t.column(FINAL_CAPTION).to_pylist(), sources):
            if c:
                out[str(k)] = c
            elif src == SOURCE_DROPPED:
                dropped.add(str(k))
    return out, dropped - out.keys()


def load_curated_keys(curate_out: Path | None) -> set[str] | None:
    """Keys kept by curation, or None (keep everything) when no curation folder is given."""
    if curate_out is None:
        return None
    folder = Path(curate_out) / CURATED_DIR
    if not folder.is_dir():
        raise TesseraUserError(f"--curated {curate_out} has no {CURATED_DIR}/ folder (not a `tessera curate` output?)")
    keys: set[str] = set()
    for f in sorted(folder.glob("*.parquet")):
        keys.update(str(k) for k in pq.read_table(f, columns=[S.KEY]).column(S.KEY).to_pylist())
    return keys


def shard_samples(shard: ShardPaths, captions: dict[str, str], curated: set[str] | None,
                  with_json: bool = False) -> tuple[pa.Table, dict[str, int]]:
    """Successful samples of one shard (key, caption, raw_caption, image, width, height, source) and skip counts."""
    side = read_sidecar(shard)
    names = set(side.column_names)
    rows = [r for r in side.to_pylist() if r.get(S.STATUS) == S.STATUS_SUCCESS]
    members = read_tar(shard.tar) if shard.tar.exists() else {}
    skipped = {"not_curated": 0, "missing_in_tar": 0}
    cols: dict[str, list] = {k: [] for k in ("key", "caption", "raw_caption", "image", "width", "height", "source")}
    if with_json:
        cols["json"] = []
    for r in rows:
        key = str(r[S.KEY])
        if curated is not None and key not in curated:
            skipped["not_curated"] += 1
            continue
        member = members.get(key, {})
        image = next((member[e] for e in IMAGE_EXTS if e in member), None)
        if image is None:
            skipped["missing_in_tar"] += 1
            continue
        raw = r.get(S.CAPTION) if S.CAPTION in names else None
        if raw is None and "txt" in member:
            raw = member["txt"].decode("utf-8", errors="replace")
        cols["key"].append(key)
        cols["raw_caption"].append(raw)
        cols["caption"].append(captions.get(key, raw))
        cols["image"].append(image)
        cols["width"].append(r.get(S.WIDTH))
        cols["height"].append(r.get(S.HEIGHT))
        cols["source"].append(r.get(S.SOURCE))
        if with_json:
            cols["json"].append(member.get("json") or json.dumps({"key": key}).encode())
    types = {"image": pa.binary(), "json": pa.binary(), "width": pa.int64(), "height": pa.int64()}
    table = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})
    return table, skipped
