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
        "stats": "pipelines.molecules.stats:molecule_stats",
        "has_data": "pipelines.molecules.stats:has_molecules",
    },
)
