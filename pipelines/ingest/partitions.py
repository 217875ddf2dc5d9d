"""Ingest partitions: each ingest run (a CLI call, or one Dagster partition) owns a fixed range of shard ids.

The range is allocated once, under a file lock, and recorded in `OUT/partitions/<name>.json`; a rerun reuses it, so a
crash or a retry resumes the same shards and sample keys stay unique across partitions for the life of the dataset.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.locks import exclusive, lock_path
from pipelines.core.shard_io import read_json, write_json_atomic

DATASET_FILE = "ingest.json"


class PartitionManifest(BaseModel):
    """What one partition read, what it kept and rejected, and the shard ids it owns."""

    model_config = ConfigDict(extra="ignore")
    name: str
    source: str
    files: list[str]
    input_rows: int
    accepted: int
    rejected: int
    start_shard_id: int
    n_shards: int
    samples_per_shard: int

    @property
    def shard_ids(self) -> range:
        return range(self.start_shard_id, self.start_shard_id + self.n_shards)


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_partition_name(name: str) -> str:
    """A partition name becomes file names: letters, digits and `._+-` only."""
    if not _SAFE.match(name):
        raise TesseraUserError(f"--partition {name!r}: use letters, digits, '.', '_', '+' and '-' only")
    return name


def partition_name(files: list[Path]) -> str:
    """A filesystem-safe partition name: the file's stem for one file, else the first stem plus a count."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", Path(f).name.removesuffix(".parquet")) for f in files]
    return stems[0] if len(stems) == 1 else f"{stems[0]}+{len(stems) - 1}"


@contextmanager
def locked(out: Path):
    """Hold the ingest folder's lock while partitions are allocated or folder-wide files are rewritten."""
    with exclusive(lock_path(out, "ingest-folder"), what=f"the ingest folder {out}", wait=True):
        yield


def manifest_path(out: Path, name: str) -> Path:
    return Path(out) / S.PARTITIONS_DIR / f"{name}.json"


def load_manifests(out: Path) -> list[PartitionManifest]:
    """All partitions of an ingest folder, in shard order."""
    folder = Path(out) / S.PARTITIONS_DIR
    manifests = [PartitionManifest(**read_json(p)) for p in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(manifests, key=lambda m: m.start_shard_id)


def next_shard_id(out: Path) -> int:
    """The first shard id that no partition owns yet."""
    return max((m.start_shard_id + m.n_shards for m in load_manifests(out)), default=0)


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


def save_manifest(out: Path, manifest: PartitionManifest) -> None:
    write_json_atomic(manifest.model_dump(), manifest_path(out, manifest.name))


def finished_partitions(manifests: list, finished_units) -> tuple[list, str]:
    """(manifests whose shards are all finished, names of the others joined by ', ') for stats over a folder."""
    finished = set(finished_units)
    done = [m for m in manifests if all(f"{s:05d}" in finished for s in m.shard_ids)]
    return done, ", ".join(m.name for m in manifests if m not in done)
