"""Finding the finished shards of an ingest folder (a shard counts once its `_stats.json` exists)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError


@dataclass(frozen=True)
class ShardPaths:
    """The files of one img2dataset shard."""

    shard_id: str
    tar: Path
    parquet: Path
    stats: Path


def complete_shards(ingest_out: Path) -> list[ShardPaths]:
    """Finished shards under `ingest_out/shards`, sorted by id; half-written shards are ignored."""
    shard_dir = Path(ingest_out) / S.SHARDS_DIR
    if not shard_dir.is_dir():
        raise TesseraUserError(f"{ingest_out} is not an ingest output folder (no {S.SHARDS_DIR}/ inside)")
    shards = []
    for stats in sorted(shard_dir.glob("*_stats.json")):
        sid = stats.name.split("_")[0]
        shards.append(ShardPaths(sid, shard_dir / f"{sid}.tar", shard_dir / f"{sid}.parquet", stats))
    return shards


def read_sidecar(shard: ShardPaths, columns: list[str] | None = None) -> pa.Table:
    """The per-row sidecar of one shard (one row per input row, with `status`)."""
    return pq.read_table(shard.parquet, columns=columns)
