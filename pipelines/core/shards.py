"""The finished shards of an ingest folder, as the shard job (`pipelines.core.shard_job`) verifies them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_job import ShardJob


@dataclass(frozen=True)
class ShardPaths:
    """The files of one img2dataset shard."""

    shard_id: str
    tar: Path
    parquet: Path
    stats: Path


def ingest_job(ingest_out: Path) -> ShardJob:
    """The shard job whose units are the ingest folder's `shards/NNNNN.{tar,parquet}`."""
    return ShardJob(ingest_out, S.SHARDS_DIR)


def complete_shards(ingest_out: Path) -> list[ShardPaths]:
    """Finished shards under `ingest_out/shards`, sorted by id; unfinished or unverifiable ones are ignored."""
    shard_dir = Path(ingest_out) / S.SHARDS_DIR
    if not shard_dir.is_dir():
        raise TesseraUserError(f"{ingest_out} is not an ingest output folder (no {S.SHARDS_DIR}/ inside)")
    job = ingest_job(ingest_out)
    return [ShardPaths(sid, shard_dir / f"{sid}.tar", shard_dir / f"{sid}.parquet", job.marker_path(sid))
            for sid in job.finished()]


def read_sidecar(shard: ShardPaths, columns: list[str] | None = None) -> pa.Table:
    """The per-row sidecar of one shard (one row per input row, with `status`)."""
    return pq.read_table(shard.parquet, columns=columns)
