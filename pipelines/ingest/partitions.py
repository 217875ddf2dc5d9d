"""The pair track's partitions: manifests in `OUT/partitions/<name>.json`, prepared rows in `OUT/prepared/`, and the
folder-wide samples-per-shard setting image shards share (pair and document partitions alike).

The protocol itself (names, locks, manifests, shard-id allocation) is `pipelines.core.partitions`.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.partitions_store import ManifestStore, PartitionManifest
from pipelines.core.shard_io import read_json, write_json_atomic

DATASET_FILE = "ingest.json"
PAIR_PARTITIONS = ManifestStore(S.PARTITIONS_DIR, PartitionManifest)


def prepared_file(out: Path, name: str) -> Path:
    """`OUT/prepared/<name>.parquet`: the partition's rows to download."""
    return Path(out) / S.PREPARED_DIR / f"{name}.parquet"


def dataset_samples_per_shard(out: Path, requested: int) -> int:
    """Samples per shard is fixed per ingest folder (it shapes the sample keys); record it on first use."""
    if requested < 1:
        raise TesseraUserError(f"samples per shard must be at least 1 (got {requested})")
    path = Path(out) / DATASET_FILE
    recorded = read_json(path)
    if recorded is None:
        write_json_atomic({"samples_per_shard": requested, "oom_shard_count": 5}, path)
        return requested
    if recorded["samples_per_shard"] != requested:
        raise TesseraUserError(
            f"{out} was created with --samples-per-shard {recorded['samples_per_shard']}; "
            f"use the same value (got {requested}) so sample keys stay unique"
        )
    return requested
