"""Where a video partition's files live and what its manifest records (layout: `pipelines.video.schema`); the
prepare step (`pipelines.video.ingest`) and the cut step (`pipelines.video.download`) both read these."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.partitions_store import ManifestStore, PartitionManifest
from pipelines.core.shard_job import ShardJob
from pipelines.video import schema as V

VIDEO_ENDINGS = (".csv.gz", ".csv", ".gz")  # stripped from file names (then `.parquet`) for the default name


class VideoManifest(PartitionManifest):
    """What one video partition read, accepted and rejected, its clips, and the clip shard ids it owns."""

    clips: int


VIDEO_PARTITIONS = ManifestStore(V.VIDEO_DIR, VideoManifest)


def video_file(out: Path, name: str, kind: str) -> Path:
    """`OUT/video/<name>.<kind>.parquet` (kind: rejects, prepared)."""
    return Path(out) / V.VIDEO_DIR / f"{name}.{kind}.parquet"


def prepared_file(out: Path, name: str) -> Path:
    """`OUT/video/<name>.prepared.parquet`: the partition's accepted rows, one row group per clip shard."""
    return video_file(out, name, "prepared")


def clips_job(out: Path) -> ShardJob:
    """The shard job whose units are `OUT/clips/NNNNN.{tar,parquet,rows.parquet}`."""
    return ShardJob(out, V.CLIPS_DIR)
