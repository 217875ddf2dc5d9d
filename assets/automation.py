"""Hands-off orchestration shared by every track: the pipeline assets' automation condition and the one sensor that
evaluates it. Each track's file sensor turns new input files into partitions (`assets.source_files`); automation
carries them through every later asset. All start RUNNING on a fresh `dagster dev`."""

import os

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
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


def automated(assets: list[AssetsDefinition]) -> list[AssetsDefinition]:
    """`assets` with the pipeline condition: a track's assets after its ingest job (stats, curation, tokens, ...)."""
    return [a.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=pipeline_condition()))
            for a in assets]


def conditioned(assets) -> AssetSelection:
    """The assets that carry an automation condition (what `automation_sensor` evaluates)."""
    return AssetSelection.assets(*(a for a in assets if isinstance(a, AssetsDefinition)
                                   and any(c is not None for c in a.automation_conditions_by_key.values())))
