"""The kept samples of an ingest folder (downloaded, and curated when a curation folder is given), one row each."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core.shard_reader import load_curated_keys
from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shards import complete_shards, read_sidecar

SHARD = "shard"
LABEL = "label"
MODALITY = "modality"
CLIENT = "client"


def kept_samples(ingest_out: Path, curated: Path | None = None,
                 extra_columns: tuple[str, ...] = ()) -> tuple[pa.Table, dict]:
    """(table of key, shard, caption, source and `extra_columns`, sorted by key; counts for the manifest).

    Kept = `status == success` in a finished shard's sidecar, and among the curated keys when `curated` is given.
    """
    shards = complete_shards(Path(ingest_out))
    if not shards:
        raise TesseraUserError(f"{ingest_out} has no finished shards (run `tessera ingest` first)")
    wanted = [S.KEY, S.STATUS, S.CAPTION, S.SOURCE, *[c for c in extra_columns if c not in (S.KEY, S.CAPTION)]]
    parts = []
    for shard in shards:
        names = set(pq.read_schema(shard.parquet).names)
        missing = [c for c in wanted if c not in names and c != S.SOURCE]
        if missing:
            raise TesseraUserError(f"{shard.parquet} has no column {missing[0]!r} "
                                   f"(columns: {', '.join(sorted(names))})")
        t = read_sidecar(shard, columns=[c for c in wanted if c in names])
        if S.SOURCE not in t.column_names:
            t = t.append_column(S.SOURCE, pa.nulls(t.num_rows, pa.string()))
        t = t.filter(pc.equal(t[S.STATUS], S.STATUS_SUCCESS)).drop_columns([S.STATUS])
        parts.append(t.append_column(SHARD, pa.array([shard.shard_id] * t.num_rows, pa.string())))
    table = pa.concat_tables(parts, promote_options="permissive")
    table = table.set_column(0, S.KEY, pc.cast(table[S.KEY], pa.string()))
    downloaded = table.num_rows
    if pc.count_distinct(table[S.KEY]).as_py() != downloaded:
        raise TesseraUserError(f"{ingest_out}: a sample key occurs in more than one shard; keys must be unique")
    counts = {"shards": len(shards), "downloaded": downloaded}
    keys = load_curated_keys(curated)
    if keys is not None:
        table = table.filter(pc.is_in(table[S.KEY], value_set=pa.array(sorted(keys), pa.string())))
        counts["curated_keys"] = len(keys)
        counts["curated_keys_not_downloaded"] = len(keys) - table.num_rows
        if table.num_rows == 0 and keys:
            raise TesseraUserError(f"--curated {curated} keeps no sample of {ingest_out} (another ingest folder's "
                                   "curation?)")
    counts["kept"] = table.num_rows
    return table.sort_by(S.KEY), counts
