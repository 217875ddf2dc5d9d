"""Hands-off orchestration with the real Dagster daemon: a dropped file flows through every pipeline asset, a
partition ingested while automation was off is caught up, and training runs are never started by automation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import dagster_instance, write_parquet
from dagster import AssetKey, DagsterInstance, materialize

from assets import molecule_assets, video_assets
from assets.definitions import defs
from assets.pair_assets import INGEST_ASSETS as INGEST_JOB_ASSETS, TRAINING_ASSETS
from assets.partitions import metadata_files
from assets.resources import TesseraResource

pytestmark = pytest.mark.slow
DEADLINE_S = 420
INSTANCE_YAML = "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 2\n"


def _keys(assets) -> list[AssetKey]:
    return [k for a in assets for k in a.keys]


def _done(instance: DagsterInstance, key: AssetKey, partitions: list[str] | None) -> bool:
    if partitions is not None:
        return set(partitions) <= instance.get_materialized_partitions(key)
    return instance.get_latest_materialization_event(key) is not None


def test_dropped_file_flows_through_every_asset_and_earlier_partitions_catch_up(tmp_path, make_images):
    home, incoming, out = tmp_path / "home", tmp_path / "incoming", tmp_path / "tessera"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = dict(os.environ, DAGSTER_HOME=str(home), TESSERA_INPUT_DIR=str(incoming), TESSERA_OUT_DIR=str(out),
               TESSERA_ALLOW_PRIVATE_NETWORK="1", TESSERA_SENSOR_INTERVAL_S="3", TESSERA_AUTOMATION_INTERVAL_S="3",
               NO_ALBUMENTATIONS_UPDATE="1", RAY_DISABLE_USAGE_STATS="1")
    resource = TesseraResource(input_dir=str(incoming), out_dir=str(out), processes=1, threads=4,
                               allow_private_network=True)

    # Partition "early" is ingested while no daemon runs (automation off): only ingest_job's assets exist.
    write_parquet(incoming / "early.parquet", [{"URL": u, "TEXT": f"a red car {i}"}
                                               for i, u in enumerate(make_images(4, "early", size=(320, 240)))])
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(metadata_files.name, ["early.parquet"])
        ran = materialize(INGEST_JOB_ASSETS, instance=instance, partition_key="early.parquet",
                          resources={"tessera": resource})
        assert ran.success

    log = open(tmp_path / "daemon.log", "wb")
    command = [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-m", "assets.definitions"]
    daemon = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        # A new file is dropped while the daemon runs: the sensor ingests it, automation does the rest. The same for
        # a file of MMC4 documents, through the document assets.
        write_parquet(incoming / "late.parquet", [{"URL": u, "TEXT": f"a blue boat {i}"}
                                                  for i, u in enumerate(make_images(4, "late", size=(320, 240)))])
        (incoming / "mmc4").mkdir()
        doc = {"url": "http://p/1", "text_list": ["A harbour at dawn.", "Boats in the bay."],
               "image_info": [{"raw_url": u, "matched_text_index": i}
                              for i, u in enumerate(make_images(2, "docd", size=(320, 240)))]}
        (incoming / "mmc4" / "docs.jsonl").write_text(json.dumps(doc) + "\n")
        by_def = {"metadata_files": ["early.parquet", "late.parquet"], "document_files": ["mmc4__docs.jsonl"]}
        graph = defs.resolve_asset_graph()
        # The video and molecule assets run the same conditions; their flows are covered by
        # tests/test_video_dagster.py and tests/test_molecules.py (Emu3 video tokens at the default 512^2 area would
        # take minutes on CPU here).
        video = set(_keys(video_assets.ASSETS)) | set(_keys(molecule_assets.ASSETS))
        wanted = {k: by_def[graph.get(k).partitions_def.name] if graph.get(k).is_partitioned else None
                  for k in graph.get_all_asset_keys() if k not in video and k not in _keys(TRAINING_ASSETS)}
        start, missing = time.monotonic(), list(wanted)
        with dagster_instance(home) as instance:
            while missing and time.monotonic() - start < DEADLINE_S:
                time.sleep(3)
                missing = [k for k, parts in wanted.items() if not _done(instance, k, parts)]
            assert not missing, (f"not materialized within {DEADLINE_S} s: {[k.to_user_string() for k in missing]}; "
                                 f"daemon log: {tmp_path / 'daemon.log'}")
            for key in _keys(TRAINING_ASSETS):
                assert instance.get_latest_materialization_event(key) is None, f"{key} was started by automation"
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
    sizes = json.loads((out / "eva_clip" / "sizes.json").read_text())
    assert sum(sizes.values()) > 0
    assert any((out / "tokens" / "emu3_tokens").glob("*.parquet"))
    ledger = pq.read_table(out / "docs_curate" / "doc_ledger.parquet").to_pylist()
    assert [(d["input_row"], d["outcome"] in ("kept", "dropped")) for d in ledger] == [(0, True)]
    shutil.rmtree(home, ignore_errors=True)
