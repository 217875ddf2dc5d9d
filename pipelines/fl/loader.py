"""What a federated client reads: its own samples from the ingest shards, in its own modality only.

Image clients get (key, image bytes, None), text clients (key, None, caption), image-text clients and the public set
both. Only the shards the client's file names are opened, and text-only clients never open a tar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core.shard_reader import IMAGE_EXTS, read_members
from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shards import ShardPaths, complete_shards, read_sidecar
from pipelines.fl.partition import CLIENTS_DIR, MANIFEST_FILE, PUBLIC_FILE, PUBLIC_ID
from pipelines.fl.samples import MODALITY, SHARD


class ClientSample(NamedTuple):
    """One sample as a client sees it: what its modality excludes is None."""

    key: str
    image: bytes | None
    caption: str | None


def client_file(partition_out: Path, client_id: str) -> Path:
    """The parquet of `client_id` (`img_0`, `txt_3`, `mm_14` or `public`) under a `tessera fl-partition` folder."""
    partition_out = Path(partition_out)
    if not (partition_out / MANIFEST_FILE).is_file():
        raise TesseraUserError(f"{partition_out} is not a `tessera fl-partition` output (no {MANIFEST_FILE})")
    path = partition_out / (PUBLIC_FILE if client_id == PUBLIC_ID else f"{CLIENTS_DIR}/{client_id}.parquet")
    if not path.is_file():
        known = sorted(p.stem for p in (partition_out / CLIENTS_DIR).glob("*.parquet"))
        raise TesseraUserError(f"no client {client_id!r} in {partition_out} (clients: {', '.join(known)}, public)")
    return path


def client_samples(ingest_out: Path, partition_out: Path, client_id: str) -> Iterator[ClientSample]:
    """Yield the client's samples shard by shard, keys in order, restricted to the client's modality."""
    share = pq.read_table(client_file(partition_out, client_id), columns=[S.KEY, SHARD, MODALITY])
    if share.num_rows == 0:
        return
    modality = share[MODALITY][0].as_py()
    wants_image, wants_text = modality in ("image", "image_text"), modality in ("text", "image_text")
    shards = {s.shard_id: s for s in complete_shards(Path(ingest_out))}
    for shard_id in sorted(set(share[SHARD].to_pylist())):
        if shard_id not in shards:
            raise TesseraUserError(f"client {client_id} needs shard {shard_id}, which {ingest_out} does not have "
                                   "finished (a different ingest folder?)")
        keys = sorted(share.filter(pc.equal(share[SHARD], shard_id))[S.KEY].to_pylist())
        yield from _read_shard(shards[shard_id], keys, wants_image, wants_text)


def _read_shard(shard: ShardPaths, keys: list[str], wants_image: bool, wants_text: bool) -> Iterator[ClientSample]:
    captions: dict[str, str | None] = {}
    if wants_text:
        side = read_sidecar(shard, columns=[S.KEY, S.CAPTION])
        captions = dict(zip(map(str, side[S.KEY].to_pylist()), side[S.CAPTION].to_pylist()))
    images: dict[str, bytes] = {}
    if wants_image:
        wanted = set(keys)
        for key, members in read_members(shard.tar).items():
            if key in wanted:
                images[key] = next((members[e] for e in IMAGE_EXTS if e in members), None)
    for key in keys:
        if (wants_text and key not in captions) or (wants_image and images.get(key) is None):
            raise TesseraUserError(f"sample {key} is not in shard {shard.shard_id} of the ingest folder "
                                   "(the partition was built from another one?)")
        yield ClientSample(key, images.get(key) if wants_image else None, captions.get(key) if wants_text else None)
