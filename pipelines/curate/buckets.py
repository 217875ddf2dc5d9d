"""The whole-pool dedups of a selection, bucket by bucket: every row of a group lands in one bucket, so the stage's
own `process` over a bucket marks exactly the rows it would mark over the whole pool.

- `DuplicateFilter` (URL, sha256, (pHash, caption), caption <= N times): the still-kept rows with no null in the
  group columns are shuffled by a hash of those columns into B buckets (a DuckDB partitioned write over the shards'
  states); the stage runs per bucket: same groups, same key order, same winners (smallest key) and ranks.
- `NearDuplicateFilter`: its greedy in key order compares a row only with kept rows that share a (band, band value)
  with it, and whether those are kept depends on their own such neighbours; so rows are grouped into the connected
  components of "shares a (band, value)", components are packed into B buckets, and the stage runs per bucket.
The losers (rows the stage marks) of every bucket are then partitioned by shard (a second DuckDB partitioned write)
so each shard joins back only its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.sql import literal, path_list
from pipelines.curate import columns as C
from pipelines.curate.stages.duplicate_filter import DuplicateFilter
from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter

BUCKET = "bucket"
LOSER_COLUMNS = [S.KEY, C.SHARD, C.DROP_STAGE, C.DROP_REASON, C.DROP_VALUE, C.DUPLICATE_OF]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_dir(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f, partitioning=None) for f in files], promote_options="default")


def bucketed_losers(con, stage, states: list[Path], columns: set[str], work: Path, n_buckets: int) -> Path | None:
    """Run the whole-pool `stage` bucket by bucket over the shard `states` (their union has `columns`); returns
    the folder of its losers by shard (`shard=<id>/*.parquet`), or None when it marks nothing."""
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(stage, DuplicateFilter):
        parts = _dedup_buckets(con, stage, states, columns, work / "candidates", n_buckets)
    elif isinstance(stage, NearDuplicateFilter):
        parts = _near_dup_buckets(con, stage, states, columns, work / "candidates", n_buckets)
    else:
        raise TypeError(f"{type(stage).__name__} is a whole-pool stage without a bucketed form")
    losers_dir = work / "losers"
    losers_dir.mkdir()
    found = 0
    for i, folder in enumerate(parts):
        table = _read_dir(folder)
        if table is None or table.num_rows == 0:
            continue
        marked = stage(table)
        losers = marked.filter(pc.is_valid(marked[C.DROP_REASON])).select(LOSER_COLUMNS)
        if losers.num_rows:
            pq.write_table(losers, losers_dir / f"{i:05d}.parquet")
            found += losers.num_rows
    if not found:
        return None
    by_shard = work / "by_shard"
    con.execute(f"COPY (SELECT * FROM read_parquet({literal(losers_dir / '*.parquet')})) TO {literal(by_shard)} "
                f"(FORMAT parquet, PARTITION_BY ({_ident(C.SHARD)}))")
    return by_shard


def shard_losers(by_shard: Path | None, shard_id: str) -> pa.Table | None:
    """The losers of one shard from `bucketed_losers`' folder (None when it has none)."""
    if by_shard is None:
        return None
    return _read_dir(by_shard / f"{C.SHARD}={shard_id}")


def _dedup_buckets(con, stage: DuplicateFilter, states, columns, folder: Path, n_buckets: int) -> list[Path]:
    cols = stage.config.columns
    if any(c not in columns for c in cols):
        return []  # as `process`: a group column the pool lacks makes the stage a no-op
    group = ", ".join(_ident(c) for c in cols)
    eligible = " AND ".join([f"{_ident(C.DROP_REASON)} IS NULL"] + [f"{_ident(c)} IS NOT NULL" for c in cols])
    con.execute(
        f"COPY (SELECT {_ident(S.KEY)}, {_ident(C.SHARD)}, {group}, hash({group}) % {n_buckets} AS {BUCKET} "
        f"FROM read_parquet({path_list(states)}, union_by_name = true) WHERE {eligible}) "
        f"TO {literal(folder)} (FORMAT parquet, PARTITION_BY ({BUCKET}))")
    return [folder / f"{BUCKET}={b}" for b in range(n_buckets)]


def _hash_ints(hashes: pa.Array) -> np.ndarray:
    """64-bit pHashes (hex strings) as uint64."""
    if len(hashes) and pc.all(pc.equal(pc.utf8_length(hashes), 16)).as_py():
        raw = np.frombuffer(pc.cast(hashes, pa.binary(16)).buffers()[1], dtype=np.uint8)[:16 * len(hashes)]
        digits = raw.reshape(-1, 16).astype(np.uint64)
        digits = np.where(digits >= ord("a"), digits - ord("a") + 10,
                          np.where(digits >= ord("A"), digits - ord("A") + 10, digits - ord("0")))
        return (digits << (np.uint64(4) * np.arange(15, -1, -1, dtype=np.uint64))).sum(axis=1, dtype=np.uint64)
    return np.array([int(h, 16) & 0xFFFFFFFFFFFFFFFF for h in hashes.to_pylist()], dtype=np.uint64)


def _near_dup_buckets(con, stage: NearDuplicateFilter, states, columns, folder: Path, n_buckets: int) -> list[Path]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    column = stage.config.hash_column
    if column not in columns:
        return []
    h = _ident(column)
    cand = con.sql(f"SELECT {_ident(S.KEY)}, {_ident(C.SHARD)}, {h} FROM read_parquet({path_list(states)}, "
                   f"union_by_name = true) WHERE {_ident(C.DROP_REASON)} IS NULL AND {h} IS NOT NULL AND {h} <> ''"
                   ).to_arrow_table()
    n = cand.num_rows
    if n == 0:
        return []
    values = _hash_ints(cand[column].combine_chunks())
    rows, cols = [], []
    edges = np.linspace(0, 64, stage.config.max_distance + 2).astype(int)  # the bands of near_duplicate_filter
    for lo, hi in zip(edges, edges[1:]):
        band_values = (values >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(band_values, kind="stable")
        same = band_values[order][1:] == band_values[order][:-1]
        rows.append(order[:-1][same])
        cols.append(order[1:][same])
    edges_a, edges_b = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(edges_a), dtype=np.int8), (edges_a, edges_b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    bucket = (component % n_buckets).astype(np.int64)
    folder.mkdir(parents=True)
    parts = []
    for b in np.unique(bucket):
        part = folder / f"{BUCKET}={b}"
        part.mkdir()
        pq.write_table(cand.filter(pa.array(bucket == b)), part / "part.parquet")
        parts.append(part)
    return parts
