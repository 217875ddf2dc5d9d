"""Tessera on a real multi-process Ray cluster (a head and a separate worker node on 127.0.0.1, joined through
RAY_ADDRESS): ingest with img2dataset's Ray distributor, CLIP scoring, captioning and tokenization give the same
outputs as the local engine, key for key; a worker node killed mid-run costs nothing once the command is rerun."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cluster_fixture import rows, ray_cluster
from pipelines.cli.main import main
from pipelines.demo.sample import build_demo_sample

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

INGEST = ["--source", "laion", "--allow-private-network", "--per-host-rate", "1000", "--per-host-connections", "16",
          "--image-size", "64", "--processes", "1", "--threads", "8", "--samples-per-shard", "40", "--quiet"]
CURATE = ["--preset", "datacomp_basic", "--clip-model", "tiny", "--batch-size", "8"]
CAPTION = ["--caption-num-beams", "1", "--caption-max-new-tokens", "5", "--num-beams", "1", "--max-new-tokens", "5",
           "--batch-size", "8", "--quiet"]
TOKENIZE = ["--vq-model", "tiny", "--target-area", "4096", "--min-area", "1024", "--max-area", "16384",
            "--batch-size", "8"]


def tessera(*args) -> int:
    """Run the CLI in this process, as a fresh Ray driver (RAY_ADDRESS decides which cluster it joins)."""
    import ray

    ray.shutdown()
    return main([str(a) for a in args])


def joined(cluster) -> bool:
    """True when this process's Ray driver is connected to `cluster` (not to a Ray of its own)."""
    import ray

    # Ray names a loopback address by the machine's own IP: compare the port.
    return ray.is_initialized() and ray.get_runtime_context().gcs_address.rsplit(":", 1)[1] == str(cluster.port)


def job_actor_nodes() -> set[str]:
    """Node ids of every actor (alive or finished) of this process's current Ray job."""
    import ray
    from ray._private import state

    job = ray.get_runtime_context().get_job_id()
    return {a["Address"]["NodeID"] for a in state.actors().values() if a["JobID"] == job}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray")
    mp = pytest.MonkeyPatch()
    # The nodes inherit this environment: the same tiny-model cache as the driver, no update checks.
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    with ray_cluster() as c:
        yield c
    import ray

    ray.shutdown()
    mp.undo()


@pytest.fixture(scope="module")
def sample(www, base_url) -> Path:
    return build_demo_sample(www / "ray_cluster", base_url + "/ray_cluster/www", n_generated=40)


@pytest.fixture(scope="module")
def local(cluster, sample, tmp_path_factory) -> Path:
    """The local engine's outputs: the reference every cluster run must equal."""
    root = tmp_path_factory.mktemp("local")
    assert tessera("ingest", "--metadata", sample, "--out", root / "ingest", *INGEST) == 0
    assert tessera("curate", root / "ingest", "--out", root / "curate", *CURATE) == 0
    assert tessera("caption", root / "ingest", "--out", root / "caption", *CAPTION) == 0
    assert tessera("tokenize", root / "ingest", "--out", root / "tokens", *TOKENIZE) == 0
    return root


@pytest.fixture
def on_cluster(cluster, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    yield cluster
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def ray_ingest(cluster, sample, local, tmp_path_factory) -> Path:
    """The same sample ingested with img2dataset's Ray distributor on the cluster."""
    out = tmp_path_factory.mktemp("ray") / "ingest"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ADDRESS", cluster.address)
        assert tessera("ingest", "--metadata", sample, "--out", out, "--distributor", "ray", *INGEST) == 0
        import ray

        assert joined(cluster)
        ray.shutdown()
    return out


def test_ingest_with_the_ray_distributor_equals_local(ray_ingest, local):
    cols = ["key", "status", "sha256", "url", "caption", "width", "height"]
    remote, ref = rows(ray_ingest / "shards", cols), rows(local / "ingest" / "shards", cols)
    assert remote == ref
    assert {r["status"] for r in ref.values()} >= {"success", "failed_to_download"}  # not vacuous
    assert sorted(p.name for p in (ray_ingest / "shards").glob("*_stats.json")) == \
        sorted(p.name for p in (local / "ingest" / "shards").glob("*_stats.json"))


def test_clip_scoring_on_the_cluster_equals_local_and_uses_the_worker_node(on_cluster, ray_ingest, local, tmp_path):
    out = tmp_path / "curate"
    assert tessera("curate", ray_ingest, "--out", out, *CURATE, "--engine", "ray") == 0
    # Two actor pools (CLIP score, image hash) of 1 CPU each on 1 + 1 CPUs: one of them ran on the worker node.
    assert on_cluster.worker_node_ids() <= job_actor_nodes()
    assert joined(on_cluster)
    scores, ref = rows(out / "scores"), rows(local / "curate" / "scores")
    assert scores.keys() == ref.keys() and len(ref) > 20
    keys = sorted(ref)
    np.testing.assert_allclose([scores[k]["clip_score"] or np.nan for k in keys],
                               [ref[k]["clip_score"] or np.nan for k in keys], atol=1e-5)
    assert [scores[k]["phash"] for k in keys] == [ref[k]["phash"] for k in keys]
    assert rows(out / "curated", ["key"]) == rows(local / "curate" / "curated", ["key"])
    ledger = ["key", "stage", "reason", "value"]
    assert rows(out / "dropped", ledger) == rows(local / "curate" / "dropped", ledger)


def test_captioning_on_the_cluster_equals_local(on_cluster, ray_ingest, local, tmp_path):
    out = tmp_path / "caption"
    assert tessera("caption", ray_ingest, "--out", out, *CAPTION, "--engine", "ray") == 0
    ref = rows(local / "caption" / "captions")
    assert rows(out / "captions") == ref and len(ref) > 20
    assert rows(out / "synthetic") == rows(local / "caption" / "synthetic")


def test_tokenize_on_the_cluster_equals_local(on_cluster, ray_ingest, local, tmp_path):
    out = tmp_path / "tokens"
    assert tessera("tokenize", ray_ingest, "--out", out, *TOKENIZE, "--engine", "ray") == 0
    ref = rows(local / "tokens" / "emu3_tokens")
    assert rows(out / "emu3_tokens") == ref and len(ref) > 20
    assert rows(out / "emu3_dropped") == rows(local / "tokens" / "emu3_dropped")


def _kill_worker_during(cluster, proc: subprocess.Popen, out: Path) -> str:
    """Kill the worker node once the run has an actor alive there (or, failing that, once a shard is finished)."""
    import ray
    from ray._private import state

    worker = cluster.workers[-1]
    (node,) = cluster.worker_node_ids()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        own = ray.get_runtime_context().get_job_id()
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if any(a["State"] == "ALIVE" and a["JobID"] != own and a["Address"]["NodeID"] == node
                   for a in state.actors().values()):
                cluster.kill_worker(worker)
                return "actor on the worker node"
            if any((out / "emu3_tokens").glob("*.parquet")):
                cluster.kill_worker(worker)
                return "after the first shard"
            time.sleep(0.1)
    finally:
        ray.shutdown()
    cluster.kill_worker(worker)
    return "after the run"


def test_a_worker_node_killed_mid_run_loses_nothing(cluster, ray_ingest, local, tmp_path, monkeypatch):
    out = tmp_path / "tokens"
    env = {**os.environ, "RAY_ADDRESS": cluster.address}
    cmd = [str(Path(sys.executable).parent / "tessera"), "tokenize", str(ray_ingest), "--out", str(out), *TOKENIZE,
           "--batch-size", "4", "--num-actors", "2", "--engine", "ray"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        when = _kill_worker_during(cluster, proc, out)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert when != "after the run", f"the run ended before the worker node could be killed:\n{stderr[-2000:]}"
    # Either Ray recovered on the head node (exit 0), or the run stopped with one line naming the cause (exit 2).
    assert proc.returncode in (0, 2), f"exit {proc.returncode} (killed {when}):\n{stderr[-3000:]}"
    assert "Traceback" not in stderr
    if proc.returncode == 2:
        assert stderr.strip().splitlines()[-1].startswith("tessera: error: the Ray cluster")
    else:  # Ray Data retried the lost actor's batches on the surviving one: the output is already complete
        assert rows(out / "emu3_tokens") == rows(local / "tokens" / "emu3_tokens")
    # A new worker node joins; the rerun finishes the rest with nothing lost or written twice.
    cluster.start_worker()
    cluster.wait_for_nodes(2)
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    try:
        assert tessera("tokenize", ray_ingest, "--out", out, *TOKENIZE, "--engine", "ray") == 0
    finally:
        import ray

        ray.shutdown()
    assert rows(out / "emu3_tokens") == rows(local / "tokens" / "emu3_tokens")
    assert rows(out / "emu3_dropped") == rows(local / "tokens" / "emu3_dropped")
