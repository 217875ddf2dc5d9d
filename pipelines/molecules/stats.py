"""Records per outcome, atom counts, conformer methods and the accounting invariant, by DuckDB over a molecule
ingest folder (sql/molecules_*.sql). `tessera stats OUT` and the Dagster check use the same queries. Only partitions
whose shards all finished are counted; the others are listed."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.sql import connect, literal, parquet_view, query_rows
from pipelines.core.partitions_store import finished_partitions
from pipelines.molecules import schema as M
from pipelines.molecules.ingest import molecules_job
from pipelines.molecules.prepare import MOLECULE_PARTITIONS

_EMPTY = {
    "ledgers": "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR key, NULL::VARCHAR status, "
               "NULL::VARCHAR reason WHERE false",
    "shards": "SELECT NULL::VARCHAR input_file, NULL::BIGINT input_row, NULL::VARCHAR key, NULL::INTEGER num_atoms, "
              "NULL::VARCHAR conformer_method WHERE false",
}
_COLUMNS = {"ledgers": "input_file, input_row, key, status, reason",
            "shards": "input_file, input_row, key, num_atoms, conformer_method"}


def has_molecules(out: Path) -> bool:
    """True when `out` holds molecule partitions (`tessera mol ingest`)."""
    return any((Path(out) / M.PARTITIONS_DIR).glob("*.json"))


def molecule_stats(out: Path) -> dict:
    """Outcomes, atom facts and histogram, conformer methods, accounting and unfinished partitions."""
    out = Path(out)
    manifests = MOLECULE_PARTITIONS.load(out)
    done, unfinished = finished_partitions(manifests, molecules_job(out).finished())
    base = [out / M.MOLECULES_DIR / f"{s:05d}" for m in done for s in m.shard_ids]
    con = connect()
    rows = [f"({literal(m.name)}, {m.input_rows}, {m.accepted})" for m in done] or ["('', 0, 0)"]
    con.execute(f"CREATE VIEW manifests AS SELECT * FROM (VALUES {', '.join(rows)}) v(name, input_rows, accepted)")
    files = {"ledgers": [Path(f"{b}.ledger.parquet") for b in base], "shards": [Path(f"{b}.parquet") for b in base]}
    for view, paths in files.items():
        parquet_view(con, view, paths, _EMPTY[view], _COLUMNS[view])
    return {
        "molecule_outcomes": query_rows(con, "molecules_outcomes"),
        "molecule_atoms": query_rows(con, "molecules_atoms")[0],
        "molecule_atoms_histogram": query_rows(con, "molecules_atoms_histogram"),
        "molecule_conformers": query_rows(con, "molecules_conformers"),
        "molecule_accounting": query_rows(con, "molecules_accounting")[0],
        "molecule_partitions_unfinished": unfinished,
    }


def molecule_accounting_holds(acc: dict) -> bool:
    """Every record once, kept ledger rows and shard rows agree one to one, unique keys."""
    return (acc["records_expected"] == acc["records_accounted"] and not acc["records_duplicated"]
            and acc["kept"] == acc["shard_rows"] and not acc["kept_missing_from_shards"]
            and not acc["shard_rows_not_kept"] and not acc["duplicate_keys"])
