"""Dagster: the definitions load; the sensor adds partitions; materializing the assets produces the shards."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pyarrow.parquet as pq
from conftest import sensed_partitions, write_parquet
from dagster import Definitions, build_schedule_context, instance_for_test, materialize

from assets.definitions import defs
from assets.ingest_assets import ASSETS, CHECKS
from assets.pair_assets import metadata_files_sensor, nightly_refresh
from assets.partitions import metadata_files
from assets.resources import TesseraResource
from pipelines.core import schema as S
from pipelines.stats.png import is_png


def test_definitions_load():
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_metadata", "image_shards", "shard_stats"} <= keys
    assert defs.get_schedule_def("nightly_refresh").cron_schedule == "0 2 * * *"


def test_sensor_materialize_and_checks(tmp_path, make_images):
    incoming = tmp_path / "incoming"
    write_parquet(incoming / "coyo" / "part-0.parquet",
                  [{"url": u, "text": f"c{i}"} for i, u in enumerate(make_images(4, "dg"))] + [{"url": "", "text": "x"}])
    write_parquet(incoming / "top.parquet", [{"URL": "http://127.0.0.1:9/a.jpg", "TEXT": "laion"}])
    tessera = TesseraResource(input_dir=str(incoming), out_dir=str(tmp_path / "tessera"), processes=1, threads=4,
                              image_size=64, samples_per_shard=100, allow_private_network=True)
    with instance_for_test() as instance:
        _flow(instance, tessera, tmp_path)


def _flow(instance, tessera, tmp_path):
    keys = sensed_partitions(metadata_files_sensor, metadata_files, instance, {"tessera": tessera})
    assert keys == ["coyo__part-0.parquet", "top.parquet"]

    run = materialize(ASSETS[:2], instance=instance, resources={"tessera": tessera}, partition_key=keys[0])
    assert run.success
    shard = tmp_path / "tessera" / "ingest" / S.SHARDS_DIR / "00000.parquet"
    rows = pq.read_table(shard).to_pylist()
    assert len(rows) == 4 and {r[S.STATUS] for r in rows} == {"success"} and {r[S.SOURCE] for r in rows} == {"coyo"}

    ctx = build_schedule_context(instance=instance, resources={"tessera": tessera},
                                 scheduled_execution_time=datetime(2026, 11, 26, 2, tzinfo=timezone.utc))
    schedule_runs = list(nightly_refresh(ctx))
    assert [r.partition_key for r in schedule_runs] == ["top.parquet"]  # the one not materialized yet

    stats_run = materialize([ASSETS[2], *CHECKS], instance=instance, resources={"tessera": tessera},
                            selection=["shard_stats"])
    assert stats_run.success
    checks = {e.check_name: e.passed for e in stats_run.get_asset_check_evaluations()}
    # Only the coyo partition was ingested, so the accounting covers it alone, and holds.
    assert checks == {"check_shard_stats_accounting": True, "check_shard_stats_success_rate": True,
                      "check_shard_stats_guard_refusals": True}
    meta = stats_run.asset_materializations_for_node("shard_stats")[0].metadata
    assert meta["input_rows"].value == 5 and meta["success"].value == 4 and meta["rejected"].value == 1
    # Everything the docstring promises, readable on the asset page: tables and two plots.
    assert "| rejected | missing_url | 1 |" in meta["outcomes"].value.splitlines()
    assert meta["fail_reasons"].value.splitlines()[0] == "| status | reason | rows |"
    assert meta["error_classes"].value.splitlines()[0] == "| status | error class | rows |"
    assert "| 1: < 200 px | 4 | 48 | 48 | 1.33 |" in meta["image_sizes"].value.splitlines()
    assert meta["caption_lengths"].value.splitlines()[2].startswith("| 4 | 0 | 2 |")  # captions c0..c3
    for plot in ("outcome_waterfall", "image_size_scatter"):
        png = base64.b64decode(meta[plot].value.split("base64,", 1)[1].rstrip(")"))
        assert is_png(png) and len(png) < 100_000


def test_partition_keys_round_trip_to_files(tmp_path):
    from assets.partitions import PATTERNS, TOP_LEVEL
    from assets.source_files import discover_source_files, source_file

    for rel, source in (("coyo/part-0.parquet", "coyo"), ("a__b.parquet", "laion"), ("notasource__x.parquet", "laion")):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        key = "__".join(path.relative_to(tmp_path).parts)  # the keys users already have
        assert key in discover_source_files(tmp_path, PATTERNS, TOP_LEVEL)
        assert source_file(tmp_path, key, PATTERNS, "laion") == (source, path)
