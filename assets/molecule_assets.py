"""Dagster wiring for MoleBLEND molecules (SMILES tables and SDF files), beside the image, document and video assets.

Files under `INPUT/molecules/` (`*.csv`, `*.csv.gz`, `*.parquet`, `*.sdf`) become `molecule_files` partitions (the
sensor adds them and runs `molecule_ingest_job`): `molecule_shards` prepares, dedups and featurizes one file into
shards of the `molecule_ingest` folder under the output root. `molecule_stats` follows over every finished partition,
with the blocking accounting check. Partitions share one folder, so a molecule kept by an earlier partition is
dropped as `duplicate_inchikey` by a later one.
No `from __future__ import annotations`: Dagster resolves Config annotations.
"""

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetSelection,
    Config,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
)

from assets.automation import automated
from assets.resources import TesseraResource
from assets.source_files import source_file, source_files_sensor
from pipelines.stats.section import Table, md_table

molecule_files = DynamicPartitionsDefinition(name="molecule_files")
INGEST = "molecule_ingest"
PATTERNS = {"molecules": ("*.csv", "*.csv.gz", "*.parquet", "*.sdf")}


class MoleculeShardsConfig(Config):
    """The ingest options of `tessera mol ingest`; a partition keeps the values it was first prepared with."""

    smiles_column: str = "smiles"
    max_atoms: int = 128
    molecules_per_shard: int = 1000
    seed: int = 0
    embed_3d: bool = True


@asset(partitions_def=molecule_files, group_name="molecules", kinds={"rdkit", "parquet"})
def molecule_shards(context: AssetExecutionContext, config: MoleculeShardsConfig,
                    tessera: TesseraResource) -> MaterializeResult:
    """One molecule file sanitized, deduplicated by InChIKey, given 3D coordinates and featurized into shards."""
    from pipelines.molecules.ingest import ingest_molecules, summary_line

    _, path = source_file(tessera.input_dir, context.partition_key, PATTERNS)
    manifest, counts = ingest_molecules(
        [path], tessera.path(INGEST), partition=context.partition_key, smiles_column=config.smiles_column,
        max_atoms=config.max_atoms, molecules_per_shard=config.molecules_per_shard, seed=config.seed,
        embed_3d=config.embed_3d, workers=tessera.processes, wait=True, progress=False)
    context.log.info(summary_line(manifest, counts))
    return MaterializeResult(metadata={"records": manifest.input_rows, "kept": counts["kept"],
                                       "dropped": sum(counts["dropped"].values()),
                                       "shards": f"{manifest.start_shard_id:05d}+{manifest.n_shards}",
                                       "unfinished_shards": counts["unfinished_shards"]})


@asset(deps=[molecule_shards], group_name="molecules", kinds={"duckdb"})
def molecule_stats(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """Records per outcome, atom counts and conformer methods over every finished partition (sql/molecules_*.sql)."""
    from pipelines.molecules.stats import molecule_stats as compute

    stats = compute(tessera.path(INGEST))
    return MaterializeResult(metadata={
        **{k: int(v) for k, v in stats["molecule_accounting"].items()},
        "outcomes": MetadataValue.md(md_table(Table("outcomes", stats["molecule_outcomes"]))),
        "conformers": MetadataValue.md(md_table(Table("conformers", stats["molecule_conformers"]))),
        "mean_atoms": float(stats["molecule_atoms"]["mean_atoms"] or 0.0),
        "unfinished_partitions": stats["molecule_partitions_unfinished"],
    })


@asset_check(asset=molecule_stats, blocking=True,
             description="Every input record is in one ledger row; kept ledger rows and shard rows match; keys unique.")
def check_molecule_stats_accounting(tessera: TesseraResource) -> AssetCheckResult:
    from pipelines.core.accounting import accounting_holds, flat
    from pipelines.folders import track_levels

    levels = track_levels("molecules", tessera.path(INGEST))
    return AssetCheckResult(passed=accounting_holds(levels), metadata=flat(levels))


molecule_ingest_job = define_asset_job(
    "molecule_ingest_job", selection=AssetSelection.assets(molecule_shards),
    description="Sanitize, dedup, embed and featurize one molecule file (SMILES table or SDF).",
)


molecule_files_sensor = source_files_sensor(
    "molecule_files_sensor", molecule_files, molecule_ingest_job, PATTERNS,
    "Adds a `molecule_files` partition for each new file under INPUT/molecules and ingests it.",
)


INGEST_ASSETS = [molecule_shards]
ASSETS = [molecule_shards, molecule_stats]
CHECKS = [check_molecule_stats_accounting]

defs = Definitions(
    assets=[*INGEST_ASSETS, *automated([molecule_stats])], asset_checks=CHECKS, jobs=[molecule_ingest_job],
    sensors=[molecule_files_sensor],
)
