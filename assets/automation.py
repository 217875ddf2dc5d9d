"""Hands-off orchestration: the sensor that turns new metadata files into partitions, the automation that carries
them through every pipeline asset, and the nightly refresh schedule. All start RUNNING on a fresh `dagster dev`."""

import os
from pathlib import Path

from dagster import (
    AssetKey,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    schedule,
    sensor,
)

from assets.partitions import discover_files, metadata_files, partition_key
from assets.resources import TesseraResource

ingest_job = define_asset_job(
    "ingest_job", selection=["raw_metadata", "image_shards", "clip_scores"],
    description="Canonicalise one metadata file, download its images and score them with CLIP.",
)


# How often the sensors look (seconds); the tests shorten it.
SENSOR_INTERVAL_S = int(os.environ.get("TESSERA_SENSOR_INTERVAL_S", "60"))
AUTOMATION_INTERVAL_S = int(os.environ.get("TESSERA_AUTOMATION_INTERVAL_S", "30"))


def pipeline_condition() -> AutomationCondition:
    """When a pipeline asset (after ingest) runs: eagerly when its inputs change, and also when it is missing while
    its inputs are all there (so partitions ingested while automation was off are caught up), unless its last run
    failed; never while an upstream blocking check (the ERROR checks) is failing."""
    ac = AutomationCondition
    catch_up = (ac.missing() & ~ac.any_deps_missing() & ~ac.any_deps_in_progress() & ~ac.in_progress()
                & ~ac.execution_failed()).with_label("missing, inputs ready")
    return ((ac.eager() | catch_up) & ac.all_deps_blocking_checks_passed()).with_label("tessera pipeline")


def automation_sensor(target) -> AutomationConditionSensorDefinition:
    """Evaluates the pipeline assets' conditions; RUNNING by default, so nothing waits for a click."""
    return AutomationConditionSensorDefinition(
        "tessera_automation", target=target, default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=AUTOMATION_INTERVAL_S,
        description="Carries every ingested partition through curation, captions, tokens and export.",
    )


_IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                DagsterRunStatus.STARTED]


@sensor(job=ingest_job, minimum_interval_seconds=SENSOR_INTERVAL_S, default_status=DefaultSensorStatus.RUNNING)
def metadata_files_sensor(context: SensorEvaluationContext, tessera: TesseraResource) -> SensorResult:
    """Adds a `metadata_files` partition for each new parquet file in the input folder and ingests it."""
    known = set(context.instance.get_dynamic_partitions(metadata_files.name))
    input_dir = Path(tessera.input_dir)
    new = [k for k in (partition_key(input_dir, p) for p in discover_files(input_dir)) if k not in known]
    return SensorResult(
        run_requests=[RunRequest(partition_key=k, run_key=k) for k in new],
        dynamic_partitions_requests=[metadata_files.build_add_request(new)] if new else [],
    )


@schedule(
    cron_schedule="0 2 * * *", execution_timezone="UTC", job=ingest_job, name="nightly_refresh",
    default_status=DefaultScheduleStatus.RUNNING,
)
def nightly_refresh(context: ScheduleEvaluationContext, tessera: TesseraResource):
    """02:00 UTC: register new metadata files and ingest every partition whose shards are not materialized yet.

    Downstream pool-level assets (shard_stats, curation, captions, tokens) follow through their eager automation
    conditions; training-run assets have none, so the nightly refresh never launches training.
    """
    known = set(context.instance.get_dynamic_partitions(metadata_files.name))
    input_dir = Path(tessera.input_dir)
    new = [k for k in (partition_key(input_dir, p) for p in discover_files(input_dir)) if k not in known]
    if new:
        context.instance.add_dynamic_partitions(metadata_files.name, new)
    done = context.instance.get_materialized_partitions(AssetKey("image_shards"))
    active = context.instance.get_runs(filters=RunsFilter(job_name=ingest_job.name, statuses=_IN_PROGRESS))
    running = {run.tags.get("dagster/partition") for run in active}
    for key in context.instance.get_dynamic_partitions(metadata_files.name):
        # A partition still running is left alone: two img2dataset runs must never write the same shard.
        if key not in done and key not in running:
            yield RunRequest(partition_key=key, run_key=f"{key}@{context.scheduled_execution_time:%Y-%m-%d}")
