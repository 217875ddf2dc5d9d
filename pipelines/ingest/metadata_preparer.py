"""Reads a partition's metadata files with DuckDB, maps them onto the canonical schema and routes bad rows to rejects.

Writes `OUT/prepared/<partition>.parquet` (rows to download, with `input_file`/`input_row`), the rejects ledger
`OUT/rejects/<partition>.parquet`, and last the partition manifest, which marks the step as done.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from pipelines.core import schema as S
from pipelines.core.errors import TesseraEnvironmentError, TesseraUserError, describe_os_error
from pipelines.core.partitions import reuse_or_prepare
from pipelines.core.partitions_store import PartitionManifest, earlier_prepared_files
from pipelines.core.shard_io import atomic_path
from pipelines.core.sql import connect, literal, path_list, sql_text
from pipelines.ingest.partitions import PAIR_PARTITIONS, dataset_samples_per_shard, prepared_file
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
                                classify=lambda out, name: self.classify(source_name, files, name))

    def check_folder(self, out: Path) -> None:
        """Samples per shard is one per ingest folder: record it on first use, else it must match."""
        dataset_samples_per_shard(out, self.samples_per_shard)

    def classify(self, source_name: str, files: list[Path], name: str) -> PartitionManifest:
        """Canonicalise and classify `files` as partition `name` (the caller holds the folder lock and saves)."""
        source = get_source(source_name)
        files = [Path(f).resolve() for f in files]
        columns = validate_files(files, source)
        try:
            return self._classify(source, files, columns, name)
        except duckdb.Error as err:
            cause = describe_os_error(err)
            if cause:
                raise TesseraEnvironmentError(f"{cause} (while preparing partition '{name}')") from None
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise TesseraUserError(f"cannot read the metadata of partition '{name}': {first[:240]}") from None

    def _classify(self, source, files: list[Path], columns: list[str], name: str) -> PartitionManifest:
        con = connect()
        order = ", ".join(f"({literal(f)}, {i})" for i, f in enumerate(files))
        con.execute(
            f"""CREATE VIEW metadata AS
            SELECT {canonical_select(source, columns)},
                   r.filename AS {S.INPUT_FILE}, r.file_row_number AS {S.INPUT_ROW}, o.file_ord
            FROM read_parquet({path_list(files)}, filename=true, file_row_number=true, union_by_name=true) r
            JOIN (VALUES {order}) o(fname, file_ord) ON r.filename = o.fname"""
        )
        earlier = earlier_prepared_files(PAIR_PARTITIONS, self.out, prepared_file)
        if earlier:
            con.execute(
                f"CREATE VIEW earlier_urls AS SELECT {S.URL}, {S.INPUT_FILE} || '#' || {S.INPUT_ROW} AS ref "
                f"FROM read_parquet({path_list(earlier)}, union_by_name=true)"
            )
        else:
            con.execute("CREATE VIEW earlier_urls AS SELECT NULL::VARCHAR AS url, NULL::VARCHAR AS ref WHERE false")
        con.execute(sql_text("ingest_classify"))
        _copy_atomic(
            con,
            f"SELECT * EXCLUDE (file_ord, {S.REASON}, {S.DUPLICATE_OF}) FROM classified WHERE {S.REASON} IS NULL "
            "ORDER BY file_ord, input_row",
            prepared_file(self.out, name),
        )
        ledger_cols = ", ".join(S.REJECT_COLUMNS)
        _copy_atomic(
            con,
            f"SELECT {ledger_cols}, * EXCLUDE ({ledger_cols}, file_ord) FROM classified "
            f"WHERE {S.REASON} IS NOT NULL ORDER BY file_ord, input_row",
            self.out / S.REJECTS_DIR / f"{name}.parquet",
        )
        total, accepted = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {S.REASON} IS NULL) FROM classified"
        ).fetchone()
        return PartitionManifest(
            name=name, source=source.name, files=[str(f) for f in files], input_rows=total, accepted=accepted,
            rejected=total - accepted, start_shard_id=PAIR_PARTITIONS.next_shard_id(self.out),
            n_shards=math.ceil(accepted / self.samples_per_shard), samples_per_shard=self.samples_per_shard,
        )
