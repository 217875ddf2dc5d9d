"""Dagster: the video sensor finds WebVid/Panda-70M files, the partitioned assets ingest them, the pool assets
curate, tokenize and export the clips, and the accounting checks pass."""

from __future__ import annotations

import pyarrow.parquet as pq
from conftest import sensed_partitions
from dagster import instance_for_test, materialize

from assets.resources import TesseraResource
from assets.video_assets import ASSETS, CHECKS, video_files, video_files_sensor
from pipelines.demo.video_sample import build_video_sample


def test_video_sensor_assets_and_checks(tmp_path, www, base_url):
    incoming = tmp_path / "incoming"
    files = build_video_sample(tmp_path / "sample", www / "vdag", f"{base_url}/vdag")
    for source, path in files.items():
        (incoming / source).mkdir(parents=True)
        (incoming / source / path.name).write_bytes(path.read_bytes())
    tessera = TesseraResource(input_dir=str(incoming), out_dir=str(tmp_path / "tessera"), allow_private_network=True)
    resources = {"tessera": tessera}
    with instance_for_test() as instance:
        keys = sensed_partitions(video_files_sensor, video_files, instance, resources)
        assert keys == ["panda70m__panda70m_demo.csv", "webvid__webvid_demo.csv"]
        for key in keys:
            assert materialize(ASSETS[:2], instance=instance, resources=resources, partition_key=key).success
        config = {"ops": {"video_tokens": {"config": {"target_area": 4096, "min_area": 4096, "max_area": 16384,
                                                      "fps": 4.0, "max_frames": 8}},
                          "video_frame_documents": {"config": {"frames": 4}}}}
        run = materialize([*ASSETS[2:], *CHECKS], instance=instance, resources=resources, run_config=config,
                          selection=["video_stats", "curated_clips", "video_tokens", "video_frame_documents"])
        assert run.success
        checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
        assert checks == {"check_video_stats_accounting": True, "check_curated_clips_ledger": True}
        stats = run.asset_materializations_for_node("video_stats")[0].metadata
        assert stats["rows_expected"].value == 16 and stats["clips_accounted"].value == 15
        kept = run.asset_materializations_for_node("curated_clips")[0].metadata["kept"].value
        tokens = sorted((tmp_path / "tessera" / "video_tokens" / "video_tokens").glob("*.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in tokens) == kept > 0
