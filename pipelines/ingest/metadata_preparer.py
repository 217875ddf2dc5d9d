"""Reads a partition's metadata files with DuckDB, maps them onto the canonical schema and routes bad rows to rejects.

Writes `OUT/prepared/<partition>.parquet` (rows to download, with `input_file`/`input_row`), the rejects ledger
`OUT/rejects/<partition>.parquet`, the partition's URL-index entries (`pipelines.ingest.url_index`) and last the
partition manifest, which marks the step as done. URLs kept by earlier partitions are found by probing the index
(24 B per indexed URL of the buckets this partition's hashes fall in), outside the folder lock; `settle` re-checks
against the partitions saved meanwhile and allocates the shard ids under it (`pipelines.core.partitions`).
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from pipelines.core import schema as S
from pipelines.core.errors import TesseraEnvironmentError, TesseraUserError, describe_os_error
from pipelines.core.partitions import OutsideLock, reuse_or_prepare
from pipelines.core.partitions_store import PartitionManifest
from pipelines.core.shard_io import atomic_path, read_json
from pipelines.core.sql import connect, literal, path_list, sql_text
from pipelines.ingest.partitions import PAIR_PARTITIONS, dataset_samples_per_shard, prepared_file
from pipelines.ingest import url_index
from pipelines.ingest.sources import canonical_select, get_source, validate_files


def _copy_atomic(con, query: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")


class MetadataPreparer:
    """Canonicalises and classifies one partition's metadata; idempotent (a finished partition is reused)."""

    def __init__(self, out: Path, samples_per_shard: int) -> None:
        self.out = Path(out)
        self.samples_per_shard = samples_per_shard

    def prepare(self, source_name: str, files: list[Path], name: str, *, check_folder: bool = False
                ) -> PartitionManifest:
        """Prepare partition `name` from `files`, or return its manifest if it was prepared before; `check_folder`
        first checks (or records) the folder's samples per shard under the same folder lock."""
        files = [Path(f).resolve() for f in files]
        return reuse_or_prepare(PAIR_PARTITIONS, self.out, name, files=files, source=get_source(source_name).name,
                                before=self.check_folder if check_folder else None,
                                classify=self.step(source_name, files))

    def check_folder(self, out: Path) -> None:
        """Samples per shard is one per ingest folder: record it on first use, else it must match."""
        dataset_samples_per_shard(out, self.samples_per_shard)

    def step(self, source_name: str, files: list[Path]) -> OutsideLock:
        """The classify step for the partition driver: classify outside the folder lock, settle under it."""
        return OutsideLock(classify=lambda out, name, earlier: self.classify(source_name, files, name, earlier),
                           settle=lambda out, draft, added: self.settle(source_name, files, draft, added))

    def classify(self, source_name: str, files: list[Path], name: str, earlier: list[PartitionManifest]
                 ) -> PartitionManifest:
        """Canonicalise and classify `files` as partition `name` against the `earlier` partitions (the caller holds
        the partition lock); the draft manifest's shard ids are allocated by `settle`."""
        source = get_source(source_name)
        files = [Path(f).resolve() for f in files]
        columns = validate_files(files, source)
        try:
            return self._classify(source, files, columns, name, earlier)
        except duckdb.Error as err:
            cause = describe_os_error(err)
            if cause:
                raise TesseraEnvironmentError(f"{cause} (while preparing partition '{name}')") from None
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise TesseraUserError(f"cannot read the metadata of partition '{name}': {first[:240]}") from None

    def settle(self, source_name: str, files: list[Path], draft: PartitionManifest,
               added: list[PartitionManifest]) -> PartitionManifest:
        """Under the folder lock: if a partition saved while this one classified kept one of its URLs, classify
        again against every earlier partition (rare: only concurrent runs sharing URLs); then allocate shard ids."""
        if added and self._kept_by(draft.name, added):
            draft = self.classify(source_name, files, draft.name, PAIR_PARTITIONS.load(self.out))
        return draft.model_copy(update={"start_shard_id": PAIR_PARTITIONS.next_shard_id(self.out)})

    def _kept_by(self, name: str, added: list[PartitionManifest]) -> bool:
        """Whether a URL this partition kept is kept by one of `added` too (its own index, just written, probed)."""
        own = read_json(url_index.marker_file(self.out, name))["buckets"]
        if not own:
            return False
        con = connect()
        sources = [str(url_index.bucket_file(self.out, int(b), name)) for b in own]
        con.execute(f"CREATE TEMP TABLE own AS SELECT h_hi, h_lo "
                    f"FROM read_parquet({path_list(sources)}, hive_partitioning=false)")
        url_index.probe(con, self.out, added, prepared_file, "own", "hits")
        return con.execute("SELECT count(*) FROM hits").fetchone()[0] > 0

    def _classify(self, source, files: list[Path], columns: list[str], name: str,
                  earlier: list[PartitionManifest]) -> PartitionManifest:
        con = connect()
        order = ", ".join(f"({literal(f)}, {i})" for i, f in enumerate(files))
        con.execute(
            f"""CREATE VIEW metadata AS
            SELECT *, {url_index.HASH_COLUMNS} FROM (
                SELECT {canonical_select(source, columns)},
                       r.filename AS {S.INPUT_FILE}, r.file_row_number AS {S.INPUT_ROW}, o.file_ord
                FROM read_parquet({path_list(files)}, filename=true, file_row_number=true, union_by_name=true) r
                JOIN (VALUES {order}) o(fname, file_ord) ON r.filename = o.fname)"""
        )
        con.execute(f"CREATE TEMP TABLE probe AS SELECT DISTINCT h_hi, h_lo FROM metadata WHERE {S.URL} IS NOT NULL")
        url_index.probe(con, self.out, earlier, prepared_file, "probe", "earlier_urls")
        con.execute(sql_text("ingest_classify"))
        hidden = "file_ord, h_hi, h_lo"
        _copy_atomic(
            con,
            f"SELECT * EXCLUDE ({hidden}, {S.REASON}, {S.DUPLICATE_OF}) FROM classified WHERE {S.REASON} IS NULL "
            "ORDER BY file_ord, input_row",
            prepared_file(self.out, name),
        )
        ledger_cols = ", ".join(S.REJECT_COLUMNS)
        _copy_atomic(
            con,
            f"SELECT {ledger_cols}, * EXCLUDE ({ledger_cols}, {hidden}) FROM classified "
            f"WHERE {S.REASON} IS NOT NULL ORDER BY file_ord, input_row",
            self.out / S.REJECTS_DIR / f"{name}.parquet",
        )
        url_index.write_entries(
            con, self.out, name, f"SELECT h_hi, h_lo, (file_ord::UBIGINT << {url_index.REF_SHIFT}) | "
            f"{S.INPUT_ROW}::UBIGINT AS ref FROM classified WHERE {S.REASON} IS NULL")
        total, accepted = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {S.REASON} IS NULL) FROM classified"
        ).fetchone()
        return PartitionManifest(
            name=name, source=source.name, files=[str(f) for f in files], input_rows=total, accepted=accepted,
            rejected=total - accepted, start_shard_id=-1,
            n_shards=math.ceil(accepted / self.samples_per_shard), samples_per_shard=self.samples_per_shard,
        )


def prepare_summary(out: Path, manifest: PartitionManifest) -> str:
    """What `--prepare-only` prints: rows, accepted, rejected by reason, shards planned, and how to go on."""
    rejects = Path(out) / S.REJECTS_DIR / f"{manifest.name}.parquet"
    by_reason = connect().execute(
        f"SELECT {S.REASON}, count(*) FROM read_parquet({literal(rejects)}) GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall() if rejects.exists() else []
    reasons = ", ".join(f"{reason} {n}" for reason, n in by_reason) or "none"
    last = manifest.start_shard_id + manifest.n_shards - 1
    shards = (f"{manifest.n_shards} shards planned ({manifest.start_shard_id:05d}-{last:05d}, "
              f"{manifest.samples_per_shard} rows each)" if manifest.n_shards else "no shards planned")
    return (f"prepared partition '{manifest.name}' of {out}: {manifest.input_rows} rows -> {manifest.accepted} "
            f"accepted, {manifest.rejected} rejected ({reasons}); {shards}\n"
            "nothing downloaded: run the same command without --prepare-only to download these shards")
