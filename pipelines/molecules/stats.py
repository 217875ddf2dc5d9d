"""Records per outcome, atom counts, conformer methods (sql/molecules_*.sql) and the molecule levels of the one
accounting (sql/accounting.sql), by DuckDB over a molecule ingest folder. `tessera stats OUT` and the Dagster check
use the same queries. Only partitions whose shards all finished are counted; the others are listed."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.accounting import UNIT, define_levels, flat, level_rows
from pipelines.core.sql import connect, parquet_view, query_rows
from pipelines.core.partitions_store import finished_partitions
from pipelines.molecules import schema as M
from pipelines.molecules.ingest import molecules_job
from pipelines.molecules.prepare import MOLECULE_PARTITIONS

# Titles of this track's `tessera stats` tables (its `stats_titles` role).
TITLES = {
    "molecule_outcomes": "Molecule records per outcome",
    "molecule_atoms": "Heavy atoms per kept molecule",
    "molecule_atoms_histogram": "Kept molecules by heavy-atom count",
    "molecule_conformers": "Kept molecules by conformer method",
    "molecule_accounting": "Molecule accounting (every record once, kept = shard rows)",
}

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


_KEPT = f"SELECT input_file, input_row, key FROM ledgers WHERE status = '{M.KEPT}'"
_FAILED = (M.EMBEDDING_FAILED, M.FEATURIZATION_ERROR)  # the record was fine, featurizing it failed


def _views(con, out: Path) -> str:
    """Ledger and shard views of the finished partitions plus levels `records` and `shard_rows`; the unfinished."""
    done, unfinished = finished_partitions(MOLECULE_PARTITIONS.load(out), molecules_job(out).finished())
    base = [out / M.MOLECULES_DIR / f"{s:05d}" for m in done for s in m.shard_ids]
    files = {"ledgers": [Path(f"{b}.ledger.parquet") for b in base], "shards": [Path(f"{b}.parquet") for b in base]}
    for view, paths in files.items():
        parquet_view(con, view, paths, _EMPTY[view], _COLUMNS[view])
    define_levels(con, {
        "records": (sum(m.input_rows for m in done),
                    f"SELECT {UNIT} AS unit, CASE WHEN status = '{M.KEPT}' THEN key END AS key FROM ledgers"),
        # kept ledger rows = shard rows: expected is their union, accounted the shard rows that are kept
        "shard_rows": (f"SELECT count(*) FROM ({_KEPT} UNION SELECT input_file, input_row, key FROM shards)",
                       f"SELECT {UNIT} AS unit, key FROM shards SEMI JOIN ({_KEPT}) k "
                       "USING (input_file, input_row, key)"),
    })
    return unfinished


def molecule_outcome_views(con, out: Path) -> None:
    """Levels `records` (every input record of a finished partition in one ledger row, kept keys unique) and
    `shard_rows` (kept ledger rows and shard rows one to one, shard keys unique)."""
    _views(con, Path(out))


def molecule_stats(out: Path) -> dict:
    """Headline counts, outcomes, atom facts and histogram, conformer methods, accounting and unfinished partitions."""
    out = Path(out)
    con = connect()
    unfinished = _views(con, out)
    levels = level_rows(con, "molecules")
    outcomes = query_rows(con, "molecules_outcomes")
    dropped = [r for r in outcomes if r["status"] == M.DROPPED]
    return {
        "input_rows": flat(levels)["records_expected"],
        "success": sum(r["n"] for r in outcomes if r["status"] == M.KEPT),
        "failed": sum(r["n"] for r in dropped if r["reason"] in _FAILED),
        "rejected": sum(r["n"] for r in dropped if r["reason"] not in _FAILED),
        "shards": len(list(molecules_job(out).finished())),
        "molecule_outcomes": outcomes,
        "molecule_atoms": query_rows(con, "molecules_atoms")[0],
        "molecule_atoms_histogram": query_rows(con, "molecules_atoms_histogram"),
        "molecule_conformers": query_rows(con, "molecules_conformers"),
        "molecule_accounting": flat(levels),
        "molecule_partitions_unfinished": unfinished,
    }
