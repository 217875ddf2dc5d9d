"""`defs`: every Tessera asset, check, job, sensor and schedule, with resources from the environment.

`dagster dev -m assets.definitions` (or `make ui`) shows the asset graph. Settings come from environment variables
so the same assets run on a laptop and on a cluster: TESSERA_INPUT_DIR, TESSERA_OUT_DIR, TESSERA_ENGINE.
"""

import os

from dagster import AutomationCondition, Definitions

from assets import caption_assets, curation_assets, ingest_assets, token_assets
from assets.automation import ingest_job, metadata_files_sensor, nightly_refresh
from assets.resources import TesseraResource

AREAS = [ingest_assets, curation_assets, caption_assets, token_assets]


INGEST_JOB_ASSETS = {"raw_metadata", "image_shards", "clip_scores"}


def _refreshing(asset):
    """Assets after `ingest_job` (captions per partition, pool-level selection, tokens, export) refresh eagerly when
    their inputs change; the ingest job's own assets are run by the sensor and the nightly schedule."""
    keys = {k.to_user_string() for k in asset.keys}
    if keys & INGEST_JOB_ASSETS or any(asset.automation_conditions_by_key.values()):
        return asset
    return asset.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=AutomationCondition.eager()))


def _resource() -> TesseraResource:
    return TesseraResource(
        input_dir=os.environ.get("TESSERA_INPUT_DIR", "data/incoming"),
        out_dir=os.environ.get("TESSERA_OUT_DIR", "data/tessera"),
        engine=os.environ.get("TESSERA_ENGINE", "local"),
    )


defs = Definitions(
    assets=[_refreshing(a) for area in AREAS for a in area.ASSETS]
    # Training runs are launched by hand: no automation condition, in no job that a schedule or sensor targets.
    + [a for area in AREAS for a in getattr(area, "TRAINING_ASSETS", [])],
    asset_checks=[c for area in AREAS for c in area.CHECKS],
    jobs=[ingest_job],
    sensors=[metadata_files_sensor],
    schedules=[nightly_refresh],
    resources={"tessera": _resource()},
)
