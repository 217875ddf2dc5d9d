"""Dagster wiring: token and EVA-CLIP shard assets, the grid check, and a training run through Dagster Pipes."""

from __future__ import annotations

import base64

import pytest
from dagster import AssetKey, materialize

from assets.resources import TesseraResource
from assets.token_assets import ASSETS, CHECKS, TRAINING_ASSETS, emu3_token_shards, emu3_training_run
from pipelines.stats.png import is_png
from tokens_fixture import make_ingest, samples


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_training_runs_are_not_in_the_scheduled_assets():
    keys = {k for a in ASSETS for k in a.keys}
    assert keys == {AssetKey("emu3_token_shards"), AssetKey("eva_clip_shards")}
    assert not keys & {k for a in TRAINING_ASSETS for k in a.keys}
    deps = {d for a in ASSETS for d in a.asset_deps[a.key]}
    assert {AssetKey("fused_captions"), AssetKey("curated_selection")} <= deps


def test_materialize_shards_and_emu3_training_run_via_pipes(tmp_path):
    tessera = TesseraResource(out_dir=str(tmp_path / "data"))
    make_ingest(tessera.path("ingest"), [samples("l", 4), samples("c", 2, "coyo")])
    run_config = {"ops": {
        "emu3_token_shards": {"config": {"target_area": 4096, "min_area": 1024, "max_area": 16384}},
        "eva_clip_shards": {"config": {"weights": "laion=0.5,coyo=0.5", "samples_per_shard": 3}},
        "emu3_training_run": {"config": {"steps": 3, "lr": 0.01}},
    }}
    result = materialize([*ASSETS, emu3_training_run, *CHECKS], resources={"tessera": tessera},
                         run_config=run_config)
    assert result.success
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["emu3_token_shards"]["tokenized"].value == 6
    tokens = meta["emu3_token_shards"]
    grids = tokens["grid_sizes"].value.splitlines()
    assert grids[0] == "| h | w | tokens | images |"
    assert sum(int(line.split("|")[4]) for line in grids[2:]) == 6  # every tokenized image has a grid
    assert tokens["mean_tokens_per_image"].value == pytest.approx(tokens["total_tokens"].value / 6, abs=0.05)
    png = base64.b64decode(tokens["tokens_per_image"].value.split("base64,", 1)[1].rstrip(")"))
    assert is_png(png)
    assert meta["eva_clip_shards"]["samples"].value == 4  # 2 coyo -> 2 laion at 50/50
    run = meta["emu3_training_run"]
    assert run["steps"].value == 3 and run["last_loss"].value < run["first_loss"].value
    assert run["tokens_per_s"].value > 0
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)


def test_token_shards_run_locally_under_the_spark_engine(tmp_path):
    tessera = TesseraResource(out_dir=str(tmp_path / "data"), engine="spark")  # TESSERA_ENGINE=spark
    make_ingest(tessera.path("ingest"), [samples("l", 2)])
    config = {"ops": {"emu3_token_shards": {"config": {"target_area": 4096, "min_area": 1024, "max_area": 16384}}}}
    result = materialize([emu3_token_shards], resources={"tessera": tessera}, run_config=config)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["tokenized"].value == 2
