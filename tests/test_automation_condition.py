"""The pipeline's automation condition, evaluated against a real instance: a missing asset whose inputs exist is
caught up, and a failing ERROR (blocking) check upstream holds it back until the check passes again."""

from __future__ import annotations

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    evaluate_automation_conditions,
)

from assets.definitions import defs
from assets.partitions import metadata_files

CLIP_SCORES, SELECTION = AssetKey("clip_scores"), AssetKey("curated_selection")


def _check(passed: bool) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(asset_key=CLIP_SCORES, check_name="check_clip_scores_range", passed=passed,
                                severity=AssetCheckSeverity.ERROR)


def _requested(instance, cursor):
    result = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AssetSelection.assets(SELECTION),
                                            cursor=cursor)
    return result.total_requested, result.cursor


def test_missing_selection_is_caught_up_unless_a_blocking_check_fails():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(metadata_files.name, ["a.parquet"])
        for key in ("image_shards", "clip_scores"):
            instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition="a.parquet"))
        instance.report_runless_asset_event(_check(passed=False))
        requested, cursor = _requested(instance, None)
        assert requested == 0  # clip scores failed their ERROR check: the selection waits

        instance.report_runless_asset_event(_check(passed=True))
        requested, _ = _requested(instance, cursor)
        assert requested == 1  # the check passes again: the missing selection is caught up
