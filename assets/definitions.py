"""`defs`: every Tessera asset, check, job, sensor and schedule, with resources from the environment.

`dagster dev -m assets.definitions` (or `make ui`) shows the asset graph. Settings come from environment variables
so the same assets run on a laptop and on a cluster: TESSERA_INPUT_DIR, TESSERA_OUT_DIR, TESSERA_ENGINE.
"""

import os

from dagster import AssetSelection, Definitions

from assets import (
    caption_assets, curation_assets, document_assets, ingest_assets, molecule_assets, token_assets, video_assets,
)
from assets.automation import automation_sensor, ingest_job, metadata_files_sensor, nightly_refresh, pipeline_condition
from assets.curation_assets import clip_scores
from assets.ingest_assets import image_shards, raw_metadata
from assets.resources import TesseraResource

AREAS = [ingest_assets, curation_assets, caption_assets, token_assets, document_assets, video_assets, molecule_assets]
# Run per partition by the file sensor and the nightly schedule (ingest_job), not by automation.
INGEST_JOB_ASSETS = [raw_metadata, image_shards, clip_scores]
# Run per document partition by the document file sensor (document_ingest_job).
DOCUMENT_INGEST_ASSETS = document_assets.INGEST_ASSETS
# Run per video partition by the video file sensor (video_ingest_job).
VIDEO_INGEST_ASSETS = video_assets.INGEST_ASSETS
# Run per molecule file by the molecule file sensor (molecule_ingest_job).
MOLECULE_INGEST_ASSETS = molecule_assets.INGEST_ASSETS
SENSOR_INGEST_ASSETS = INGEST_JOB_ASSETS + DOCUMENT_INGEST_ASSETS + VIDEO_INGEST_ASSETS + MOLECULE_INGEST_ASSETS


def _automated(asset):
    """Every asset after `ingest_job` (stats, selection, captions, tokens, export) gets the pipeline condition."""
    if any(asset is a for a in SENSOR_INGEST_ASSETS):
        return asset
    return asset.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=pipeline_condition()))


PIPELINE_ASSETS = [_automated(a) for area in AREAS for a in area.ASSETS]
# Training runs are launched by hand: no automation condition, in no job that a schedule or sensor targets.
TRAINING_ASSETS = [a for area in AREAS for a in getattr(area, "TRAINING_ASSETS", [])]


def _resource() -> TesseraResource:
    return TesseraResource(
        input_dir=os.environ.get("TESSERA_INPUT_DIR", "data/incoming"),
        out_dir=os.environ.get("TESSERA_OUT_DIR", "data/tessera"),
        engine=os.environ.get("TESSERA_ENGINE", "local"),
    )


defs = Definitions(
    assets=PIPELINE_ASSETS + TRAINING_ASSETS,
    asset_checks=[c for area in AREAS for c in area.CHECKS],
    jobs=[ingest_job, document_assets.document_ingest_job, video_assets.video_ingest_job,
          molecule_assets.molecule_ingest_job],
    sensors=[metadata_files_sensor, document_assets.document_files_sensor, video_assets.video_files_sensor,
             molecule_assets.molecule_files_sensor,
             automation_sensor(AssetSelection.assets(*PIPELINE_ASSETS)
                                - AssetSelection.assets(*SENSOR_INGEST_ASSETS))],
    schedules=[nightly_refresh],
    resources={"tessera": _resource()},
)
