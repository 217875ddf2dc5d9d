"""The document track (MMC4, OBELICS): interleaved documents whose images go through the pair download path."""

from pipelines.core.track import Track

TRACK = Track(
    name="documents",
    title="Interleaved documents",
    sources={
        "mmc4": "MMC4 JSON lines (.jsonl, .jsonl.gz, .zip shards; docs/documents.md)",
        "obelics": "OBELICS parquet (texts, images, metadata; docs/documents.md)",
    },
    stages=("ingest", "curate", "tokenize", "doc-sequences"),
    refs={
        "stats_titles": "pipelines.documents.stats:TITLES",
        "dagster": "assets.document_assets:defs",
        "report": "pipelines.documents.report:REPORT_STAGES",
        "curate_cli": "pipelines.documents.cli:curate_cli",
        "ingest_options": "pipelines.ingest.download_options:add_download_options",
        "ingest_cli": "pipelines.documents.cli:ingest_cli",
        "presets": "pipelines.documents.presets:PRESETS",
        "stats": "pipelines.documents.stats:document_stats",
        "outcome_views": "pipelines.documents.stats:document_outcome_views",
        "has_data": "pipelines.documents.stats:has_documents",
    },
)
