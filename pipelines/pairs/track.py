"""The pair track: image-text metadata -> shards -> curated selection -> captions -> tokens -> exports."""

from pipelines.core.track import Track

TRACK = Track(
    name="pairs",
    title="Image-text pairs",
    sources={
        "laion": "LAION-400M/5B metadata parquet (URL, TEXT, WIDTH, HEIGHT, ...)",
        "coyo": "COYO-700M metadata parquet (url, text, width, height, ...)",
        "datacomp": "DataComp pool metadata parquet (uid, url, text, original_width, ...)",
        "capsfusion": "CapsFusion-120M parquet (image_url, laion_2b, laion_coco, capsfusion)",
    },
    stages=("ingest", "curate", "caption", "fuse", "tokenize", "export-eva-clip"),
    refs={
        "stats_titles": "pipelines.stats.report:SHARD_TITLES",
        "dagster": "assets.pair_assets:defs",
        "report": "pipelines.pairs.report:REPORT_STAGES",
        "curate_cli": "pipelines.pairs.cli:curate_cli",
        "ingest_options": "pipelines.ingest.download_options:add_download_options",
        "ingest_cli": "pipelines.pairs.cli:ingest_cli",
        "presets": "pipelines.curate.presets:PRESETS",
        "stats": "pipelines.pairs.stats:pair_stats",
        "has_data": "pipelines.pairs.stats:has_pairs",
        "outcome_views": "pipelines.pairs.stats:pair_outcome_views",
    },
)
