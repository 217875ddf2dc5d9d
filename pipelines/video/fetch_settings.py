"""How videos are fetched by default, in one place: the CLI's `--max-video-bytes`, the Dagster assets and
`VideoDownloadConfig` all read these (image fetch defaults are `pipelines.ingest.fetch.FetchConfig`'s own)."""

from __future__ import annotations

from pipelines.ingest.fetch.config import FetchConfig

MIB = 1024 * 1024
VIDEO_MAX_BYTES = 256 * MIB  # a video is fetched whole: the byte cap (--max-video-bytes)
VIDEO_FETCH_TIMEOUT = 60.0  # seconds for one whole video fetch


def video_fetch(**settings) -> FetchConfig:
    """The fetch settings for videos; `settings` set or override other FetchConfig fields."""
    return FetchConfig(**{"max_image_bytes": VIDEO_MAX_BYTES, "timeout": VIDEO_FETCH_TIMEOUT, **settings})
