"""Reading webdataset shard members by key and extension, and the samples of a finished image shard.

A member `KEY.EXT` belongs to sample KEY (keys carry no dots: webdataset splits member names at the first one);
EXT is lower-cased. Which shards are finished (marker written, verified) is the shard job's answer
(`pipelines.core.shard_job.ShardJob.finished`, `pipelines.core.shards.complete_shards`); this module only reads them.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shards import ShardPaths, read_sidecar

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CURATED_DIR = "curated"  # a curation output's kept keys: CURATE_OUT/curated/*.parquet


def member_key(name: str) -> tuple[str, str]:
    """(key, lower-cased extension) of a tar member name."""
    key, _, ext = Path(name).name.partition(".")
    return key, ext.lower()


def iter_members(tar: Path, exts: Iterable[str] | None = None,
                 keys: set[str] | None = None) -> Iterator[tuple[str, str, bytes]]:
    """(key, ext, bytes) of the file members of a tar in its order, only those extensions / keys when given."""
    exts = None if exts is None else set(exts)
    with tarfile.open(tar) as tf:
        for member in tf:
            if not member.isfile():
                continue
            key, ext = member_key(member.name)
            if (exts is None or ext in exts) and (keys is None or key in keys):
                yield key, ext, tf.extractfile(member).read()


def read_members(tar: Path, exts: Iterable[str] | None = None) -> dict[str, dict[str, bytes]]:
    """Members grouped by key: {key: {"jpg": bytes, "txt": bytes, "json": bytes}}."""
    samples: dict[str, dict[str, bytes]] = {}
    for key, ext, data in iter_members(tar, exts):
        samples.setdefault(key, {})[ext] = data
    return samples


def read_images(tar: Path) -> dict[str, bytes]:
    """Encoded image bytes per sample key (`KEY.jpg`, `.jpeg`, `.png`, `.webp` members)."""
    return {key: data for key, _, data in iter_members(tar, IMAGE_EXTS)}


class TarShard:
    """An open webdataset tar with its members indexed by key and extension, read one at a time on demand."""

    def __init__(self, path: Path) -> None:
        self.tar = tarfile.open(path)
        self.index: dict[str, dict[str, tarfile.TarInfo]] = {}
        for member in self.tar.getmembers():
            if member.isfile():
                key, ext = member_key(member.name)
                self.index.setdefault(key, {})[ext] = member

    def exts(self, key: str) -> set[str]:
        """The extensions stored for `key` (empty when the key is not in the tar)."""
        return set(self.index.get(key, ()))

    def read(self, key: str, ext: str) -> bytes | None:
        """The bytes of `KEY.EXT`, or None when the tar has no such member."""
        member = self.index.get(key, {}).get(ext)
        return None if member is None else self.tar.extractfile(member).read()

    def __enter__(self) -> "TarShard":
        return self

    def __exit__(self, *exc) -> None:
        self.tar.close()


def load_curated_keys(curate_out: Path | None) -> set[str] | None:
    """Every key kept by curation, or None (keep everything) when no curation folder is given. Pool-wide: the
    image phases (caption, tokenize, export) read one shard's keys with `shard_curated_keys` instead."""
    folder = curated_folder(curate_out)
    if folder is None:
        return None
    keys: set[str] = set()
    for f in sorted(folder.glob("*.parquet")):
        keys.update(str(k) for k in pq.read_table(f, columns=[S.KEY]).column(S.KEY).to_pylist())
    return keys


def curated_folder(curate_out: Path | None) -> Path | None:
    """`CURATE_OUT/curated/`, None when no curation folder is given; one line when it is not a curation output."""
    if curate_out is None:
        return None
    folder = Path(curate_out) / CURATED_DIR
    if not folder.is_dir():
        raise TesseraUserError(f"--curated {curate_out} has no {CURATED_DIR}/ folder (not a `tessera curate` output?)")
    return folder


def shard_curated_keys(curate_out: Path | None, shard_id: str) -> set[str] | None:
    """The keys curation kept in one ingest shard (`curated/<shard id>.parquet`; none when the shard has no file,
    as when it was ingested after the selection), or None (keep everything) when no curation folder is given."""
    folder = curated_folder(curate_out)
    if folder is None:
        return None
    path = folder / f"{shard_id}.parquet"
    if not path.is_file():
        loose = sorted(f for f in folder.glob("*.parquet") if not f.stem.isdigit())
        return LooseKeys(_keys_of(loose)) if loose else set()
    try:
        return {str(k) for k in pq.read_table(path, columns=[S.KEY]).column(S.KEY).to_pylist()}
    except (OSError, pa.ArrowInvalid, KeyError) as err:
        raise TesseraUserError(f"{path} is not a readable curated shard with a {S.KEY!r} column ({err})") from None


class LooseKeys(set):
    """Curated keys of a folder laid out by key rather than by shard (document curation writes one
    `curated/document_images.parquet`): read whole, and not refused for keys of other shards."""


def _keys_of(files: list[Path]) -> set[str]:
    keys: set[str] = set()
    for f in files:
        try:
            keys.update(str(k) for k in pq.read_table(f, columns=[S.KEY]).column(S.KEY).to_pylist())
        except (OSError, pa.ArrowInvalid, KeyError) as err:
            raise TesseraUserError(f"{f} is not a readable curated file with a {S.KEY!r} column ({err})") from None
    return keys


def shard_samples(shard: ShardPaths, captions: dict[str, str], curated: set[str] | None,
                  with_json: bool = False) -> tuple[pa.Table, dict[str, int]]:
    """Successful samples of one image shard (key, caption, raw_caption, image, width, height, source) and skip
    counts; `captions` replaces a key's raw caption, `curated` (when given) keeps only its keys. Both are the
    shard's own: a curated key that the shard does not hold is refused (curated/ is read one file per shard)."""
    side = read_sidecar(shard)
    names = set(side.column_names)
    rows = [r for r in side.to_pylist() if r.get(S.STATUS) == S.STATUS_SUCCESS]
    if curated and not isinstance(curated, LooseKeys):
        check_curated_keys(curated, {str(r[S.KEY]) for r in rows}, shard)
    members = read_members(shard.tar) if shard.tar.exists() else {}
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


def check_curated_keys(curated: set[str], shard_keys: set[str], shard: ShardPaths) -> None:
    """Refuse a shard's curated keys that it does not hold as downloaded samples (a curated/ of another layout)."""
    foreign = curated - shard_keys
    if foreign:
        raise TesseraUserError(
            f"{CURATED_DIR}/{shard.shard_id}.parquet lists key {min(foreign)!r}, which shard {shard.shard_id} does "
            f"not hold as a downloaded sample: {CURATED_DIR}/ is read one file per ingest shard, as `tessera curate` "
            "writes it")
