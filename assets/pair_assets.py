"""The pair track's Dagster `defs`: the ingest, curation, caption and token assets, the `metadata_files` sensor that
ingests each new metadata file (`ingest_job`), and the nightly refresh that retries partitions not ingested yet.
"""

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    Definitions,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from assets import caption_assets, curation_assets, ingest_assets, token_assets
from assets.automation import automated
from assets.curation_assets import clip_scores
from assets.ingest_assets import image_shards, raw_metadata
from assets.partitions import PATTERNS, TOP_LEVEL, metadata_files
from assets.source_files import source_files_sensor

# Run per partition by the file sensor and the nightly schedule (ingest_job), not by automation.
INGEST_ASSETS = [raw_metadata, image_shards, clip_scores]
AREAS = [ingest_assets, curation_assets, caption_assets, token_assets]
# Training runs are launched by hand: no automation condition, in no job that a schedule or sensor targets.
TRAINING_ASSETS = token_assets.TRAINING_ASSETS

ingest_job = define_asset_job(
    "ingest_job", selection=AssetSelection.assets(*INGEST_ASSETS),
    description="Canonicalise one metadata file, download its images and score them with CLIP.",
)

metadata_files_sensor = source_files_sensor(
    "metadata_files_sensor", metadata_files, ingest_job, PATTERNS,
    "Adds a `metadata_files` partition for each new parquet file in the input folder and ingests it.",
    top_level=TOP_LEVEL,
)

_IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                DagsterRunStatus.STARTED]


@schedule(
    cron_schedule="0 2 * * *", execution_timezone="UTC", job=ingest_job, name="nightly_refresh",
    default_status=DefaultScheduleStatus.RUNNING,
)
def nightly_refresh(context: ScheduleEvaluationContext):
    """02:00 UTC: ingest every known partition whose shards are not materialized yet (new files become partitions
    through `metadata_files_sensor`, not here).

    Downstream pool-level assets (shard_stats, curation, captions, tokens) follow through their eager automation
    conditions; training-run assets have none, so the nightly refresh never launches training.
    """
    done = context.instance.get_materialized_partitions(image_shards.key)
    active = context.instance.get_runs(filters=RunsFilter(job_name=ingest_job.name, statuses=_IN_PROGRESS))
    running = {run.tags.get("dagster/partition") for run in active}
    for key in context.instance.get_dynamic_partitions(metadata_files.name):
        # A partition still running is left alone: two img2dataset runs must never write the same shard.
        if key not in done and key not in running:
            yield RunRequest(partition_key=key, run_key=f"{key}@{context.scheduled_execution_time:%Y-%m-%d}")


defs = Definitions(
    assets=[*INGEST_ASSETS, *automated([a for area in AREAS for a in area.ASSETS
                                      if all(a is not b for b in INGEST_ASSETS)]),
            *TRAINING_ASSETS],
    asset_checks=[c for area in AREAS for c in area.CHECKS],
    jobs=[ingest_job], sensors=[metadata_files_sensor], schedules=[nightly_refresh],
)
