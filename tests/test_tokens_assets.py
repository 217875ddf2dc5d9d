"""Dagster wiring: token and EVA-CLIP shard assets, the grid check, and a training run through Dagster Pipes."""

from __future__ import annotations

import base64
import json
import re

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.partitions import metadata_files
from assets.resources import TesseraResource
from assets.token_assets import ASSETS, CHECKS, TRAINING_ASSETS, emu3_token_shards, emu3_training_run, export_name
from pipelines.core.partitions_store import PartitionManifest
from pipelines.ingest.partitions import PAIR_PARTITIONS
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


def _partitions(tessera: TesseraResource, instance: DagsterInstance, owners: dict[str, tuple[int, int]]) -> None:
    """Register each metadata partition (key -> (first shard, shard count)) with the ingest folder and Dagster."""
    for key, (start, n) in owners.items():
        PAIR_PARTITIONS.save(tessera.path("ingest"), PartitionManifest(
            name=key, source="laion", files=[key], input_rows=0, accepted=0, rejected=0, start_shard_id=start,
            n_shards=n, samples_per_shard=4))
    instance.add_dynamic_partitions(metadata_files.name, list(owners))


def _outputs(tessera: TesseraResource) -> dict[str, tuple[int, bytes]]:
    """Every token parquet and export tar by name: (mtime_ns, bytes)."""
    files = [*tessera.path("tokens", "emu3_tokens").glob("*.parquet"), *tessera.path("eva_clip").glob("*.tar")]
    return {f.name: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}


def test_partitions_materialize_their_own_shards_and_emu3_training_run_via_pipes(tmp_path):
    tessera = TesseraResource(out_dir=str(tmp_path / "data"))
    make_ingest(tessera.path("ingest"), [samples("l", 4), samples("c", 2, "coyo")])
    instance = DagsterInstance.ephemeral()
    _partitions(tessera, instance, {"a.parquet": (0, 1), "b.parquet": (1, 1)})
    run_config = {"ops": {
        "emu3_token_shards": {"config": {"target_area": 4096, "min_area": 1024, "max_area": 16384}},
        "eva_clip_shards": {"config": {"samples_per_shard": 3}},
    }}
    first = materialize([*ASSETS, *CHECKS], partition_key="a.parquet", instance=instance,
                        resources={"tessera": tessera}, run_config=run_config)
    assert first.success
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in first.get_asset_materialization_events()}
    assert meta["emu3_token_shards"]["tokenized"].value == 4  # shard 00000 only
    tokens = meta["emu3_token_shards"]
    grids = tokens["grid_sizes"].value.splitlines()
    assert grids[0] == "| h | w | tokens | images |"
    assert sum(int(line.split("|")[4]) for line in grids[2:]) == 4  # every tokenized image has a grid
    assert tokens["mean_tokens_per_image"].value == pytest.approx(tokens["total_tokens"].value / 4, abs=0.05)
    png = base64.b64decode(tokens["tokens_per_image"].value.split("base64,", 1)[1].rstrip(")"))
    assert is_png(png)
    assert (meta["eva_clip_shards"]["samples"].value, meta["eva_clip_shards"]["export"].value) == (4, "a.parquet")
    assert first.get_asset_check_evaluations() and all(c.passed for c in first.get_asset_check_evaluations())
    before = _outputs(tessera)
    assert sorted(before) == ["00000.parquet", "a.parquet-00000.tar", "a.parquet-00001.tar"]

    # The second partition adds its own files and leaves the first partition's untouched, byte for byte.
    second = materialize([*ASSETS, *CHECKS], partition_key="b.parquet", instance=instance,
                         resources={"tessera": tessera}, run_config=run_config)
    assert second.success
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in second.get_asset_materialization_events()}
    assert meta["eva_clip_shards"]["samples"].value == 2 and meta["emu3_token_shards"]["tokenized"].value == 6
    after = _outputs(tessera)
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == ["00001.parquet", "b.parquet-00000.tar"]
    sizes = json.loads((tessera.path("eva_clip") / "sizes.json").read_text())
    assert {k: sizes[k] for k in after if k.endswith(".tar")} == {
        "a.parquet-00000.tar": 3, "a.parquet-00001.tar": 1, "b.parquet-00000.tar": 2}

    run = materialize([emu3_training_run], instance=instance, resources={"tessera": tessera},
                      run_config={"ops": {"emu3_training_run": {"config": {"steps": 3, "lr": 0.01}}}})
    assert run.success
    run = run.get_asset_materialization_events()[0].materialization.metadata
    assert run["steps"].value == 3 and run["last_loss"].value < run["first_loss"].value
    assert run["tokens_per_s"].value > 0


def test_export_names_follow_partition_keys():
    assert export_name("laion__part-00.parquet") == "laion__part-00.parquet"
    odd = export_name("sub dir/part 1.parquet")
    assert re.fullmatch(r"sub_dir_part_1\.parquet-[0-9a-f]{12}", odd) and odd != export_name("sub dir/part 2.parquet")


def test_token_shards_run_locally_under_the_spark_engine(tmp_path):
    tessera = TesseraResource(out_dir=str(tmp_path / "data"), engine="spark")  # TESSERA_ENGINE=spark
    make_ingest(tessera.path("ingest"), [samples("l", 2)])
    instance = DagsterInstance.ephemeral()
    _partitions(tessera, instance, {"a.parquet": (0, 1)})
    config = {"ops": {"emu3_token_shards": {"config": {"target_area": 4096, "min_area": 1024, "max_area": 16384}}}}
    result = materialize([emu3_token_shards], partition_key="a.parquet", instance=instance,
                         resources={"tessera": tessera}, run_config=config)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["tokenized"].value == 2
