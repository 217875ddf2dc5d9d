"""Dagster tier: `clip_scores` (one partition) and `curated_selection` materialize with their checks."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, materialize

from assets.curation_assets import ASSETS, CHECKS, metadata_files
from assets.resources import TesseraResource
from curate_testdata import build_ingest


@pytest.mark.slow
def test_assets_materialize_with_passing_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path / "cache"))
    build_ingest(tmp_path / "data" / "ingest")
    resource = TesseraResource(out_dir=str(tmp_path / "data"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(metadata_files.name, ["meta.parquet"])
    scores = materialize([ASSETS[0], CHECKS[0]], partition_key="meta.parquet", instance=instance,
                         resources={"tessera": resource})
    assert scores.success
    [check] = scores.get_asset_check_evaluations()
    assert check.passed
    run_config = {"ops": {"curated_selection": {"config": {"preset": "coyo", "keep_rate_band": [0.3, 0.9]}}}}
    selection = materialize([ASSETS[1], *CHECKS[1:]], instance=instance, resources={"tessera": resource},
                            run_config=run_config)
    assert selection.success
    checks = {c.check_name: c.passed for c in selection.get_asset_check_evaluations()}
    assert checks == {"check_curated_selection_invariant": True, "check_curated_selection_keep_rate": True}
    assert (tmp_path / "data" / "curate" / "curated" / "00000.parquet").is_file()
