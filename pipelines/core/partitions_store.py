"""What a prepared partition records, where each track keeps those records, and what later partitions read back.

`SourceManifest` says what a partition read (name, source, files); `PartitionManifest` adds what it kept and
rejected and the range of shard ids it owns. Tracks subclass them for their own fields (`VideoManifest.clips`,
`MoleculeManifest`'s options, `DocumentManifest`'s document counts). A `ManifestStore` is one track's folder of
`<partition>.json` files plus its manifest class: load in shard order, get one, save, next free shard id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import read_json, write_json_atomic


class SourceManifest(BaseModel):
    """What one partition read: its name, its source and its input files (resolved paths)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    source: str
    files: list[str]


class PartitionManifest(SourceManifest):
    """What one partition read, what it kept and rejected, and the shard ids it owns."""

    input_rows: int
    accepted: int
    rejected: int
    start_shard_id: int
    n_shards: int
    samples_per_shard: int

    @property
    def shard_ids(self) -> range:
        return range(self.start_shard_id, self.start_shard_id + self.n_shards)


@dataclass(frozen=True)
class ManifestStore:
    """One track's manifests: `OUT/<folder>/<partition>.json`, read as `model`."""

    folder: str
    model: type[SourceManifest]

    def path(self, out: Path, name: str) -> Path:
        """Where the manifest of partition `name` lives."""
        return Path(out) / self.folder / f"{name}.json"

    def load(self, out: Path) -> list:
        """Every partition of `out` whose prepare step finished, in shard order (file name order among equals)."""
        folder = Path(out) / self.folder
        found = [read_json(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        return sorted((self.model(**m) for m in found if m), key=lambda m: getattr(m, "start_shard_id", 0))

    def get(self, out: Path, name: str):
        """The manifest of partition `name`, or None when it is not prepared."""
        found = read_json(self.path(out, name))
        return self.model(**found) if found else None

    def save(self, out: Path, manifest: SourceManifest) -> None:
        """Write the manifest atomically (last: it marks the prepare step done)."""
        write_json_atomic(manifest.model_dump(), self.path(out, manifest.name))

    def next_shard_id(self, out: Path) -> int:
        """The first shard id that no partition of this store owns yet."""
        return max((m.start_shard_id + m.n_shards for m in self.load(out)), default=0)


@dataclass(frozen=True)
class Option:
    """A prepare option that shapes a partition's outputs, so a rerun must repeat it: manifest field, value, and
    how the CLI spells it (`flag(value)`, e.g. `--max-atoms 128`)."""

    field: str
    value: object
    flag: Callable[[object], str]


def flag(name: str) -> Callable[[object], str]:
    """The spelling `--name value` of an option."""
    return lambda value: f"{name} {value}"


def check_same_inputs(manifest: SourceManifest, out: Path, files: Sequence[Path], source: str,
                      options: Iterable[Option] = ()) -> None:
    """A user error unless the prepared partition was read from the same files and source, with the same options."""
    if manifest.files != [str(Path(f).resolve()) for f in files] or manifest.source != source:
        raise TesseraUserError(f"partition '{manifest.name}' in {out} was ingested from other files "
                               f"({', '.join(manifest.files)}); use another --partition name or another --out")
    for option in options:
        recorded = getattr(manifest, option.field)
        if recorded != option.value:
            raise TesseraUserError(f"partition '{manifest.name}' in {out} was ingested with {option.flag(recorded)}; "
                                   f"rerun with the same options (got {option.flag(option.value)})")


def earlier_keys(store: ManifestStore, out: Path, prepared: Callable[[Path, str], Path], key: str, *,
                 kept_only: bool = False) -> dict[str, str]:
    """Key -> where it was first seen (`partition 'p' file#row`) over every prepared partition of `out`, in shard
    order; `kept_only` counts only rows whose `reason` is null (the earlier-partitions dedup hook)."""
    columns = [key, "input_file", "input_row"] + (["reason"] if kept_only else [])
    seen: dict[str, str] = {}
    for manifest in store.load(out):
        table = pq.read_table(prepared(out, manifest.name), columns=columns)
        reasons = table["reason"].to_pylist() if kept_only else [None] * table.num_rows
        for value, file, row, reason in zip(*(table[c].to_pylist() for c in columns[:3]), reasons):
            if reason is None:
                seen.setdefault(value, f"partition '{manifest.name}' {file}#{row}")
    return seen


def earlier_prepared_files(store: ManifestStore, out: Path, prepared: Callable[[Path, str], Path]) -> list[Path]:
    """The prepared files of every partition of `out`, in shard order (for dedup in SQL over earlier partitions)."""
    return [prepared(out, m.name) for m in store.load(out)]


def finished_partitions(manifests: list, finished_units) -> tuple[list, str]:
    """(manifests whose shards are all finished, names of the others joined by ', ') for stats over a folder."""
    finished = set(finished_units)
    done = [m for m in manifests if all(f"{s:05d}" in finished for s in m.shard_ids)]
    return done, ", ".join(m.name for m in manifests if m not in done)
