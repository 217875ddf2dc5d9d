"""The molecule track (MoleBLEND): SMILES/SDF records -> RDKit-checked, deduped 2D/3D feature shards."""

from pipelines.core.track import Track

TRACK = Track(
    name="molecules",
    title="Molecules",
    sources={
        "molecules": "SMILES tables (.csv, .csv.gz, .parquet) and SDF files (docs/moleblend.md)",
    },
    stages=("ingest",),
    refs={
        "stats_titles": "pipelines.molecules.stats:TITLES",
        "dagster": "assets.molecule_assets:defs",
        "ingest_options": "pipelines.molecules.cli:add_ingest_options",
        "ingest_cli": "pipelines.molecules.cli:ingest_cli",
        "commands": "pipelines.molecules.cli:register_commands",
        "stats": "pipelines.molecules.stats:molecule_stats",
        "outcome_views": "pipelines.molecules.stats:molecule_outcome_views",
        "has_data": "pipelines.molecules.stats:has_molecules",
    },
)
