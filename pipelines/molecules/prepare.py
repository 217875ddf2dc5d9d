"""The prepare pass of a molecule partition: read every record once, in input order, and decide what cannot be
featurized (unparsable, sanitization error, too many atoms, duplicate InChIKey) before any 3D work.

Dedup is deterministic: records are taken in input order, and keys kept by partitions prepared earlier in the same
folder count as seen (the first occurrence wins, as for video URLs). Each record is assigned its output shard: a
kept record by its rank among kept records, a dropped one to the shard of the last kept record before it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.partitions_store import ManifestStore, PartitionManifest, earlier_keys
from pipelines.core.shard_io import atomic_path
from pipelines.molecules import schema as M
from pipelines.molecules.parse import inspect
from pipelines.molecules.sources import read_records

SOURCE = "molecules"
BATCH = 4096
MOLECULE_ENDINGS = (".csv.gz", ".csv", ".gz", ".sdf")  # stripped from file names (then `.parquet`) for the name


class MoleculeManifest(PartitionManifest):
    """A molecule partition: its options (they shape the shards, so a rerun must repeat them) and reject counts."""

    smiles_column: str
    max_atoms: int
    seed: int
    embed_3d: bool
    prepare_rejected: dict[str, int]


MOLECULE_PARTITIONS = ManifestStore(M.PARTITIONS_DIR, MoleculeManifest)


def prepared_file(out: Path, name: str) -> Path:
    """`OUT/molecule_partitions/<name>.prepared.parquet`: every record of the partition with its decision."""
    return Path(out) / M.PARTITIONS_DIR / f"{name}.prepared.parquet"


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _inspect(args: tuple[str, str | None]):
    return inspect(*args)


def prepare_records(files: list[Path], out: Path, name: str, *, smiles_column: str, max_atoms: int,
                    per_shard: int, seed: int, embed_3d: bool, pool=None) -> MoleculeManifest:
    """Classify every record of `files` and write `<name>.prepared.parquet`; returns the manifest for the partition
    driver to save (the caller holds the folder lock: earlier partitions' keys and the shard ids are read here)."""
    seen = earlier_keys(MOLECULE_PARTITIONS, out, prepared_file, "inchikey", kept_only=True)
    counts, kept = Counter(), 0
    with atomic_path(prepared_file(out, name)) as tmp, pq.ParquetWriter(tmp, M.PREPARED_SCHEMA) as writer:
        for chunk in _chunks(read_records(files, smiles_column), BATCH):
            pairs = [(r.kind, r.record) for r in chunk]
            results = pool.map(_inspect, pairs, chunksize=64) if pool is not None else map(_inspect, pairs)
            batch = []
            for record, (ident, reason, detail) in zip(chunk, results):
                if ident is not None and ident.num_atoms > max_atoms:
                    reason, detail = M.TOO_MANY_ATOMS, f"{ident.num_atoms} heavy atoms > --max-atoms {max_atoms}"
                elif ident is not None and ident.inchikey in seen:
                    reason, detail = M.DUPLICATE_INCHIKEY, f"{ident.inchikey} kept at {seen[ident.inchikey]}"[:300]
                if reason is None:
                    seen[ident.inchikey] = f"{record.input_file}#{record.input_row}"
                    shard = kept // per_shard
                    kept += 1
                else:
                    counts[reason] += 1
                    shard = max(kept - 1, 0) // per_shard
                batch.append({**record.__dict__, "canonical_smiles": ident and ident.canonical_smiles,
                              "inchikey": ident and ident.inchikey, "num_atoms": ident and ident.num_atoms,
                              "reason": reason, "detail": detail, "shard": shard})
            writer.write_table(pa.Table.from_pylist(batch, M.PREPARED_SCHEMA))
    rejected = sum(counts.values())
    total = kept + rejected
    return MoleculeManifest(
        name=name, source=SOURCE, files=[str(Path(f).resolve()) for f in files], input_rows=total, accepted=kept,
        rejected=rejected, start_shard_id=MOLECULE_PARTITIONS.next_shard_id(out),
        n_shards=-(-kept // per_shard) if kept else int(total > 0),
        samples_per_shard=per_shard, smiles_column=smiles_column, max_atoms=max_atoms, seed=seed,
        embed_3d=embed_3d, prepare_rejected=dict(counts))
