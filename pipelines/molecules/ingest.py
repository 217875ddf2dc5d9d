"""`tessera mol ingest`: SMILES/SDF files -> MoleBLEND feature shards and a ledger of every record.

`ingest_molecules` prepares the partition once through the core partition driver (`pipelines.core.partitions`)
with the classify step of pipelines.molecules.prepare (parse, sanitize, dedup, size limit, shard assignment), then
featurizes each unfinished shard through the shard job: `OUT/molecules/NNNNN.parquet` (kept molecules),
`NNNNN.ledger.parquet` (every record of the shard, kept or dropped) and the marker last. A rerun skips verified
shards and writes nothing new. Layout: `pipelines.molecules.schema`.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from pipelines.core.errors import TesseraUserError
from pipelines.core.partitions import open_partition, reuse_or_prepare
from pipelines.core.partitions_store import Option, flag
from pipelines.core.shard_job import ShardJob
from pipelines.molecules import schema as M
from pipelines.molecules.molecule_featurizer import MoleculeFeaturizer, MoleculeFeaturizerConfig
from pipelines.molecules.prepare import (
    MOLECULE_ENDINGS, MOLECULE_PARTITIONS, SOURCE, MoleculeManifest, prepare_records, prepared_file,
)
from pipelines.molecules.sources import check_molecule_files

MAX_ATOMS_LIMIT = 4096  # node indices are stored as int16
CHUNK = 16  # records per task sent to a worker process

_STAGES: dict = {}


def _embedding(value) -> str:
    return "3D embedding" if value else "--no-3d"


def molecules_job(out: Path) -> ShardJob:
    """The shard job whose units are `OUT/molecules/NNNNN.{parquet,ledger.parquet}`."""
    return ShardJob(out, M.MOLECULES_DIR)


def _featurize(args: tuple[dict, pa.Table]) -> pa.Table:
    config, table = args
    key = tuple(sorted(config.items()))
    stage = _STAGES.get(key) or _STAGES.setdefault(key, MoleculeFeaturizer(config))
    return stage(table)


class _Workers:
    """A process pool started on first use (a rerun with nothing to do starts none); None for one worker."""

    def __init__(self, workers: int) -> None:
        self.workers, self._pool = workers, None

    def get(self):
        if self.workers > 1 and self._pool is None:
            # spawn, not fork: the Dagster step process that calls this may hold threads
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers)
        return self._pool


@contextmanager
def _workers(workers: int):
    holder = _Workers(workers)
    try:
        yield holder
    finally:
        if holder._pool is not None:
            holder._pool.terminate()
            holder._pool.join()


def featurize_shards(out: Path, manifest: MoleculeManifest, *, workers: _Workers | None = None,
                     progress: bool = True) -> int:
    """Featurize the partition's unfinished shards; returns how many were written now."""
    job = molecules_job(out)
    todo = job.pending([f"{s:05d}" for s in manifest.shard_ids])
    if not todo:
        return 0
    pool = workers.get() if workers is not None else None
    config = MoleculeFeaturizerConfig(seed=manifest.seed, embed_3d=manifest.embed_3d).model_dump()
    written = 0
    for unit in tqdm(todo, desc=f"molecule shards of {manifest.name}", disable=not progress):
        # `shard` only grows along the file, so row-group statistics skip all but this shard's few row groups
        rows = pq.read_table(prepared_file(out, manifest.name),
                             filters=[("shard", "=", int(unit) - manifest.start_shard_id)], schema=M.PREPARED_SCHEMA)
        tasks = [(config, rows.slice(i, CHUNK)) for i in range(0, rows.num_rows, CHUNK)]
        parts = pool.map(_featurize, tasks, chunksize=1) if pool is not None else map(_featurize, tasks)
        result = pa.concat_tables(parts) if tasks else MoleculeFeaturizer(config)(rows)
        kept = result.filter(pc.equal(result["status"], M.KEPT))
        reasons = Counter(r for r in result["reason"].to_pylist() if r)
        with job.unit(unit) as writer:
            if writer is None:
                continue
            shard_rel, ledger_rel = f"{M.MOLECULES_DIR}/{unit}.parquet", f"{M.MOLECULES_DIR}/{unit}.ledger.parquet"
            writer.parquet(kept.select(M.SHARD_SCHEMA.names).cast(M.SHARD_SCHEMA), shard_rel)
            writer.parquet(result.select(M.LEDGER_SCHEMA.names), ledger_rel)
            writer.commit({"partition": manifest.name, "records": result.num_rows, "kept": kept.num_rows,
                           "dropped": dict(reasons)},
                          expect={shard_rel: kept.num_rows, ledger_rel: rows.num_rows})
            written += 1
    return written


def molecule_counts(out: Path, manifest: MoleculeManifest) -> dict:
    """Records kept and dropped by reason over the partition's finished shards, and how many are unfinished."""
    finished = molecules_job(out).finished()
    done = [finished[f"{s:05d}"] for s in manifest.shard_ids if f"{s:05d}" in finished]
    dropped = Counter()
    for marker in done:
        dropped.update(marker["dropped"])
    return {"records": sum(m["records"] for m in done), "kept": sum(m["kept"] for m in done),
            "dropped": dict(dropped), "unfinished_shards": manifest.n_shards - len(done)}


def summary_line(manifest: MoleculeManifest, counts: dict) -> str:
    """One line a person can read: records, kept, dropped by reason, unfinished shards."""
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(counts["dropped"].items()))
    line = (f"molecule partition {manifest.name}: {manifest.input_rows} records, {counts['kept']} kept, "
            f"{sum(counts['dropped'].values())} dropped{f' ({dropped})' if dropped else ''} in "
            f"{manifest.n_shards} shard(s)")
    if counts["unfinished_shards"]:
        line += f"; {counts['unfinished_shards']} shards not finished"
    return line


def ingest_molecules(files: list[Path], out: Path, *, partition: str | None = None, smiles_column: str = "smiles",
                     max_atoms: int = 128, molecules_per_shard: int = 1000, seed: int = 0, embed_3d: bool = True,
                     workers: int = 1, wait: bool = False, progress: bool = True) -> tuple[MoleculeManifest, dict]:
    """Prepare (once) and featurize one partition; rerunning resumes and never duplicates. (manifest, counts)."""
    if not 1 <= max_atoms <= MAX_ATOMS_LIMIT:
        raise TesseraUserError(f"--max-atoms must be between 1 and {MAX_ATOMS_LIMIT} (got {max_atoms})")
    if molecules_per_shard < 1:
        raise TesseraUserError(f"--molecules-per-shard must be at least 1 (got {molecules_per_shard})")
    files = [Path(f) for f in files]
    check_molecule_files(files, smiles_column)
    options = [Option("smiles_column", smiles_column, flag("--smiles-column")),
               Option("max_atoms", max_atoms, flag("--max-atoms")),
               Option("samples_per_shard", molecules_per_shard, flag("--molecules-per-shard")),
               Option("seed", seed, flag("--seed")), Option("embed_3d", embed_3d, _embedding)]
    with _workers(workers) as procs, open_partition(out, files, partition=partition, endings=MOLECULE_ENDINGS,
                                                    wait=wait) as (out, name):
        manifest = reuse_or_prepare(
            MOLECULE_PARTITIONS, out, name, files=files, source=SOURCE, options=options,
            classify=lambda out, name: prepare_records(
                files, out, name, smiles_column=smiles_column, max_atoms=max_atoms, per_shard=molecules_per_shard,
                seed=seed, embed_3d=embed_3d, pool=procs.get()))
        featurize_shards(out, manifest, workers=procs, progress=progress)
    return manifest, molecule_counts(out, manifest)
