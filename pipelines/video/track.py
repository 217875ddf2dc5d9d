"""The video track (WebVid, Panda-70M): videos fetched once, cut into clips, curated, tokenized with Emu3."""

from pipelines.core.track import Track

TRACK = Track(
    name="video",
    title="Video-text clips",
    sources={
        "webvid": "WebVid CSV/parquet (videoid, name, duration, contentUrl; docs/video.md)",
        "panda70m": "Panda-70M CSV/parquet (videoID, url, timestamp, caption; docs/video.md)",
    },
    stages=("ingest", "curate", "tokenize-video", "export-video-frames"),
    refs={
        "stats_titles": "pipelines.video.stats:TITLES",
        "dagster": "assets.video_assets:defs",
        "report": "pipelines.video.report:REPORT_STAGES",
        "curate_cli": "pipelines.video.cli:curate_cli",
        "ingest_options": "pipelines.video.cli:add_ingest_options",
        "ingest_cli": "pipelines.video.cli:ingest_cli",
        "presets": "pipelines.video.presets:VIDEO_PRESETS",
        "stats": "pipelines.video.stats:video_stats",
        "outcome_views": "pipelines.video.stats:video_outcome_views",
        "has_data": "pipelines.video.stats:has_video",
    },
)
