"""The URL-hash index of an ingest folder: for every accepted URL, its 128-bit hash and where it was first seen.

`OUT/url_index/b=<h>/<partition>.parquet` holds (h_hi, h_lo, ref) sorted by hash for the rows of one partition
whose hash starts with the hex digit `h`: `h_hi`/`h_lo` are DuckDB's `md5_number_upper/lower(url)` (128 bits, so a
collision over 3e9 URLs has odds of ~1e-20, where 64 bits would give ~23%), and `ref = file_ord << 40 | input_row`
rebuilds `duplicate_of` (`input_file#input_row`) from the partition manifest's `files`: 24 B per URL.
`OUT/url_index/<partition>.json` is the partition's index marker (rows per bucket), written last after each bucket
file is verified; readers read only the buckets a marker lists, so files of a partition that crashed before its
marker (or before its manifest) are never seen. A folder prepared before the index existed gets each partition's
entries built from its prepared file on first need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraEnvironmentError
from pipelines.core.shard_io import atomic_path, read_json, write_json_atomic
from pipelines.core.sql import literal, path_list

INDEX_DIR = "url_index"
BUCKET_BITS = 4  # 16 buckets: a 1M-row partition writes 16 files of ~62k entries (1.5 MB each)
REF_SHIFT = 40  # input_row below 2^40, file_ord in the 24 bits above
HASH_COLUMNS = f"md5_number_upper({S.URL}) AS h_hi, md5_number_lower({S.URL}) AS h_lo"


def bucket_name(bucket: int) -> str:
    """`b=<hex digit(s)>`: the folder of one hash prefix."""
    return f"b={bucket:0{(BUCKET_BITS + 3) // 4}x}"


def bucket_file(out: Path, bucket: int, name: str) -> Path:
    """The index entries of partition `name` in `bucket`."""
    return Path(out) / INDEX_DIR / bucket_name(bucket) / f"{name}.parquet"


def marker_file(out: Path, name: str) -> Path:
    """The index marker of partition `name` (rows per bucket), written last."""
    return Path(out) / INDEX_DIR / f"{name}.json"


def write_entries(con, out: Path, name: str, entries: str) -> int:
    """Write the index of partition `name` from the query `entries` (h_hi, h_lo, ref): one verified file per
    bucket, then the marker; earlier files of `name` are removed first. Returns the rows written."""
    remove(out, name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE index_entries AS SELECT h_hi, h_lo, ref, "
                f"(h_hi >> {64 - BUCKET_BITS})::INTEGER AS bucket FROM ({entries})")
    counts = dict(con.execute("SELECT bucket, count(*) FROM index_entries GROUP BY bucket").fetchall())
    for bucket, n in sorted(counts.items()):
        target = bucket_file(out, bucket, name)
        with atomic_path(target) as tmp:
            con.execute(f"COPY (SELECT h_hi, h_lo, ref FROM index_entries WHERE bucket = {bucket} "
                        f"ORDER BY h_hi, h_lo) TO {literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
            if pq.read_metadata(tmp).num_rows != n:
                raise TesseraEnvironmentError(f"the URL index file {target} did not keep its {n} rows")
    write_json_atomic({"rows": sum(counts.values()), "buckets": {str(b): n for b, n in sorted(counts.items())}},
                      marker_file(out, name))
    return sum(counts.values())


def remove(out: Path, name: str) -> None:
    """Delete partition `name`'s marker first, then its bucket files (a crashed or earlier attempt's)."""
    marker_file(out, name).unlink(missing_ok=True)
    for path in (Path(out) / INDEX_DIR).glob(f"b=*/{name}.parquet"):
        path.unlink(missing_ok=True)


def ensure(con, out: Path, manifest, prepared: Path) -> dict:
    """Partition `manifest.name`'s marker; built from its prepared file when missing (a folder from before the
    index, or a crash between the index and the manifest's reuse)."""
    marker = read_json(marker_file(out, manifest.name))
    if marker is not None:
        return marker
    files = pa.table({"input_file": manifest.files, "file_ord": list(range(len(manifest.files)))})
    con.register("index_files", files)
    unknown = con.execute(
        f"SELECT count(*) FROM read_parquet({literal(prepared)}) p ANTI JOIN index_files f USING ({S.INPUT_FILE})"
    ).fetchone()[0]
    if unknown:
        raise TesseraEnvironmentError(f"{unknown} rows of {prepared} name an input file that partition "
                                      f"'{manifest.name}'s manifest does not list; the folder was changed by hand")
    write_entries(con, out, manifest.name,
                  f"SELECT {HASH_COLUMNS}, (f.file_ord::UBIGINT << {REF_SHIFT}) | p.{S.INPUT_ROW}::UBIGINT AS ref "
                  f"FROM read_parquet({literal(prepared)}) p JOIN index_files f USING ({S.INPUT_FILE})")
    con.unregister("index_files")
    return read_json(marker_file(out, manifest.name))


def probe(con, out: Path, manifests: Sequence, prepared, probe_table: str, hits_table: str) -> int:
    """Create `hits_table(h_hi, h_lo, ref)`: the entries of `manifests`' partitions whose hash is in `probe_table`
    (h_hi, h_lo), `ref` spelled `input_file#input_row`; reads only the buckets `probe_table` falls in. Returns the
    index rows read."""
    buckets = {b for (b,) in con.execute(
        f"SELECT DISTINCT (h_hi >> {64 - BUCKET_BITS})::INTEGER FROM {probe_table}").fetchall()}
    sources, part_of, owners, read = [], [], [], 0
    for ord_, manifest in enumerate(manifests):
        marker = ensure(con, out, manifest, prepared(out, manifest.name))
        for bucket, n in marker["buckets"].items():
            if int(bucket) in buckets:
                sources.append(str(bucket_file(out, int(bucket), manifest.name)))
                part_of.append(ord_)
                read += n
        owners += [(ord_, i, f) for i, f in enumerate(manifest.files)]
    if not sources:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {hits_table} AS SELECT NULL::UBIGINT h_hi, NULL::UBIGINT h_lo, "
                    "NULL::VARCHAR ref WHERE false")
        return 0
    con.register("index_sources", pa.table({"filename": sources, "part_ord": part_of}))
    con.register("index_owners", pa.table({"part_ord": [o[0] for o in owners], "file_ord": [o[1] for o in owners],
                                           "input_file": [o[2] for o in owners]}))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {hits_table} AS
        WITH hit AS (
            SELECT i.h_hi, i.h_lo, i.ref, i.filename
            FROM read_parquet({path_list(sources)}, filename=true, hive_partitioning=false) i
            SEMI JOIN {probe_table} p ON i.h_hi = p.h_hi AND i.h_lo = p.h_lo
        )
        SELECT h.h_hi, h.h_lo, o.input_file || '#' || (h.ref & {(1 << REF_SHIFT) - 1}::UBIGINT) AS ref
        FROM hit h JOIN index_sources s USING (filename)
        JOIN index_owners o ON o.part_ord = s.part_ord AND o.file_ord = (h.ref >> {REF_SHIFT})::BIGINT"""
    )
    con.unregister("index_sources")
    con.unregister("index_owners")
    return read
