"""Dagster wiring for video-text clips (WebVid, Panda-70M), beside the image and document assets.

Files under `INPUT/webvid/` and `INPUT/panda70m/` (`*.csv`, `*.csv.gz`, `*.parquet`) become `video_files` partitions
(the sensor adds them and runs `video_ingest_job`): `raw_videos` reads and classifies the rows, `video_clips` fetches
each video once and cuts its clips into shards. Pool-wide assets follow through automation: `video_stats` (with
the blocking accounting check), `curated_clips`, `video_tokens` (Emu3 codes of the kept clips) and
`video_frame_documents` (Emu-style frames interleaved with captions). Folders: `video_ingest`, `video_curate`,
`video_tokens`, `video_frames` under the output root.
No `from __future__ import annotations`: Dagster resolves Config annotations.
"""

from typing import Optional

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
from models.emu3_preprocessing import MAX_AREA, MIN_AREA, TARGET_AREA
from assets.source_files import source_file, source_files_sensor
from pipelines.stats.section import Table, md_table
from pipelines.tracks import track

video_files = DynamicPartitionsDefinition(name="video_files")
INGEST, CURATE, TOKENS, FRAMES = "video_ingest", "video_curate", "video_tokens", "video_frames"
PATTERNS = {source: ("*.csv", "*.csv.gz", "*.parquet") for source in track("video").sources}


class CuratedClipsConfig(Config):
    """Preset (webvid or panda70m thresholds), CLIP model and an optional CLIP threshold."""

    preset: str = "webvid"
    clip_model: str = "tiny"
    min_clip_score: Optional[float] = None


class VideoTokensConfig(Config):
    """VQ model, sampling rate and Emu3's preprocessing for the clip frames."""

    vq_model: str = "tiny"
    fps: float = 8.0
    target_area: int = TARGET_AREA
    min_area: int = MIN_AREA
    max_area: int = MAX_AREA
    max_frames: Optional[int] = None


class VideoFramesConfig(Config):
    """Frames per clip (Emu1: 8) and how clips are grouped into documents."""

    frames: int = 8
    group: str = "clip"  # or "video": one document per source video, its clips' captions and frames in time order


@asset(partitions_def=video_files, group_name="video", kinds={"duckdb", "parquet"})
def raw_videos(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """One video metadata file classified: accepted rows with their clips, rejected rows with a reason."""
    from pipelines.video.ingest import prepare_video

    source, path = source_file(tessera.input_dir, context.partition_key, PATTERNS)
    m = prepare_video(source, [path], tessera.path(INGEST), partition=context.partition_key, wait=True)
    return MaterializeResult(metadata={"source": source, "input_rows": m.input_rows, "accepted": m.accepted,
                                       "rejected": m.rejected, "clips": m.clips,
                                       "shards": f"{m.start_shard_id:05d}+{m.n_shards}"})


@asset(partitions_def=video_files, deps=[raw_videos], group_name="video", kinds={"pyav", "webdataset"})
def video_clips(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """Each video fetched once through the guarded fetch layer, its clips cut, re-encoded and sharded."""
    from pipelines.video.download import VideoDownloadConfig, download_video
    from pipelines.video.fetch_settings import video_fetch
    from pipelines.video.ingest import summary_line, video_counts
    from pipelines.video.partitions import VIDEO_PARTITIONS

    out = tessera.path(INGEST)
    manifest = VIDEO_PARTITIONS.get(out, context.partition_key)
    config = VideoDownloadConfig(fetch=video_fetch(allow_private_network=tessera.allow_private_network))
    download_video(out, manifest, config, wait=True, progress=False)
    counts = video_counts(out, manifest)
    context.log.info(summary_line(manifest, counts))
    return MaterializeResult(metadata={"clips_ok": counts["clips"].get("success", 0),
                                       "clips": manifest.clips, "unfinished_shards": counts["unfinished_shards"]})


@asset(deps=[video_clips], group_name="video", kinds={"duckdb"})
def video_stats(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """Rows and clips per outcome over every finished video partition (sql/video_*.sql)."""
    from pipelines.video.stats import video_stats as compute

    stats = compute(tessera.path(INGEST))
    return MaterializeResult(metadata={
        **{k: int(v) for k, v in stats["video_accounting"].items()},
        "outcomes": MetadataValue.md(md_table(Table("outcomes", stats["video_outcomes"]))),
        "unfinished_partitions": stats["video_partitions_unfinished"],
    })


@asset(deps=[video_stats], pool="gpu", group_name="video")
def curated_clips(context: AssetExecutionContext, config: CuratedClipsConfig, tessera: TesseraResource):
    """Duration, resolution, scene cuts, motion and (optionally) CLIP score per clip; every clip in the ledger."""
    from pipelines.video.presets import get_video_preset
    from pipelines.video.run import curate_clips

    _, summary = curate_clips(tessera.path(INGEST), tessera.path(CURATE), get_video_preset(config.preset),
                              config.clip_model, min_clip_score=config.min_clip_score,
                              batch_size=tessera.batch_size, log=context.log.info)
    return MaterializeResult(metadata={
        "preset": summary["preset"], "clips": summary["clips"], "kept": summary["kept"],
        "dropped": summary["dropped"],
        "by_outcome": MetadataValue.md(md_table(Table("clips", summary["by_outcome"]))),
    })


@asset(deps=[curated_clips], pool="gpu", group_name="video")
def video_tokens(context: AssetExecutionContext, config: VideoTokensConfig, tessera: TesseraResource):
    """Emu3 video codes of the kept clips (4-frame groups), one token row per clip."""
    from pipelines.video.tokenize import VideoTokenizerConfig, tokenize_videos

    cfg = VideoTokenizerConfig(vq_model=config.vq_model, fps=config.fps, target_area=config.target_area,
                               min_area=config.min_area, max_area=config.max_area, max_frames=config.max_frames)
    m = tokenize_videos(tessera.path(INGEST), tessera.path(TOKENS), cfg, tessera.path(CURATE), log=context.log.info)
    return MaterializeResult(metadata={k: v for k, v in m.items() if isinstance(v, (int, float, str))})


@asset(deps=[curated_clips], group_name="video")
def video_frame_documents(context: AssetExecutionContext, config: VideoFramesConfig, tessera: TesseraResource):
    """The kept clips as Emu-style documents (caption, then evenly sampled frames) for `doc-sequences`."""
    from pipelines.core.shard_reader import load_curated_keys
    from pipelines.video.export import export_video_frames

    m = export_video_frames(tessera.path(INGEST), tessera.path(FRAMES), load_curated_keys(tessera.path(CURATE)),
                            frames=config.frames, group=config.group, log=context.log.info)
    return MaterializeResult(metadata={k: v for k, v in m.items() if isinstance(v, (int, float, str))})


@asset_check(asset=video_stats, blocking=True,
             description="Every input row is rejected or in one row sidecar; every clip in one clip sidecar.")
def check_video_stats_accounting(tessera: TesseraResource) -> AssetCheckResult:
    from pipelines.core.accounting import accounting_holds, flat
    from pipelines.folders import track_levels

    levels = track_levels("video", tessera.path(INGEST))
    return AssetCheckResult(passed=accounting_holds(levels), metadata=flat(levels))


@asset_check(asset=curated_clips, blocking=True,
             description="Every clip of the ingest folder is in the clip ledger exactly once.")
def check_curated_clips_ledger(tessera: TesseraResource) -> AssetCheckResult:
    from pipelines.core.sql import connect, literal
    from pipelines.video.stats import video_stats as compute

    acc = compute(tessera.path(INGEST))["video_accounting"]
    ledger = tessera.path(CURATE) / "clip_ledger.parquet"
    con = connect()
    rows, keys = con.execute(f"SELECT count(*), count(DISTINCT key) FROM read_parquet({literal(ledger)})").fetchone()
    ok = rows == keys == int(acc["clips_accounted"])
    return AssetCheckResult(passed=ok, metadata={"ledger_rows": int(rows), "distinct_keys": int(keys),
                                                 "clips": int(acc["clips_accounted"])})


video_ingest_job = define_asset_job(
    "video_ingest_job", selection=AssetSelection.assets(raw_videos, video_clips),
    description="Read one WebVid/Panda-70M file, fetch its videos and cut their clips.",
)


video_files_sensor = source_files_sensor(
    "video_files_sensor", video_files, video_ingest_job, PATTERNS,
    "Adds a `video_files` partition for each new file under INPUT/webvid and INPUT/panda70m and ingests it.",
)


INGEST_ASSETS = [raw_videos, video_clips]
ASSETS = [raw_videos, video_clips, video_stats, curated_clips, video_tokens, video_frame_documents]
CHECKS = [check_video_stats_accounting, check_curated_clips_ledger]

defs = Definitions(
    assets=[*INGEST_ASSETS, *automated([video_stats, curated_clips, video_tokens, video_frame_documents])],
    asset_checks=CHECKS, jobs=[video_ingest_job], sensors=[video_files_sensor],
)
