"""Dagster on a Ray cluster. The `tessera` resource's `engine` (TESSERA_ENGINE for `assets.definitions`) selects where
stages run: with `ray` and RAY_ADDRESS naming a cluster, `emu3_token_shards` runs its tokenizer on Ray Data actors of
that cluster and writes the same shards as with `local`."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from assets.partitions import metadata_files
from assets.token_assets import emu3_token_shards
from cluster_fixture import ray_cluster
from pipelines.core.partitions_store import PartitionManifest
from pipelines.ingest.partitions import PAIR_PARTITIONS
from tokens_fixture import make_ingest, samples

CONFIG = {"ops": {"emu3_token_shards": {"config": {"target_area": 4096, "min_area": 1024, "max_area": 16384}}}}


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    with ray_cluster() as c:
        yield c


def _tokens(tessera) -> list[dict]:
    make_ingest(tessera.path("ingest"), [samples("l", 4), samples("c", 3, "coyo", width=32, height=64)])
    PAIR_PARTITIONS.save(tessera.path("ingest"), PartitionManifest(
        name="m.parquet", source="laion", files=["m.parquet"], input_rows=0, accepted=0, rejected=0,
        start_shard_id=0, n_shards=2, samples_per_shard=4))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(metadata_files.name, ["m.parquet"])
    result = materialize([emu3_token_shards], partition_key="m.parquet", instance=instance,
                         resources={"tessera": tessera}, run_config=CONFIG)
    assert result.success
    return [r for p in sorted(Path(tessera.path("tokens", "emu3_tokens")).glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]


@pytest.mark.slow
@pytest.mark.cluster
def test_engine_ray_materializes_on_the_cluster(cluster, tmp_path, monkeypatch):
    import ray
    from ray._private import state

    from assets.resources import tessera_resource as _resource

    monkeypatch.setenv("TESSERA_OUT_DIR", str(tmp_path / "local"))
    local = _tokens(_resource())
    monkeypatch.setenv("TESSERA_OUT_DIR", str(tmp_path / "ray"))
    monkeypatch.setenv("TESSERA_ENGINE", "ray")
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    ray.shutdown()
    try:
        tessera = _resource()
        assert tessera.engine == "ray"
        remote = _tokens(tessera)
        # The step joined the cluster as a Ray job, and that job's actor pools did the tokenizing there.
        assert ray.get_runtime_context().gcs_address.rsplit(":", 1)[1] == str(cluster.port)
        job = ray.get_runtime_context().get_job_id()
        assert [a for a in state.actors().values() if a["JobID"] == job]
    finally:
        ray.shutdown()
    assert remote == local and len(local) == 7


def test_an_unknown_engine_is_refused(monkeypatch):
    from pydantic import ValidationError

    from assets.resources import tessera_resource as _resource

    monkeypatch.setenv("TESSERA_ENGINE", "dask")
    with pytest.raises(ValidationError, match="engine"):
        _resource()
