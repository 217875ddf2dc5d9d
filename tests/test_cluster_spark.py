"""Tessera on a real Spark standalone cluster (a master and a worker on 127.0.0.1, started with pyspark's own
spark-daemon.sh, joined through SPARK_MASTER): curation's metadata-side selection and img2dataset's Spark distributor
give the same outputs as the local paths, key for key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_fixture import rows, spark_cluster
from pipelines.cli.main import main
from pipelines.demo.sample import build_demo_sample

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

INGEST = ["--source", "laion", "--allow-private-network", "--per-host-rate", "1000", "--per-host-connections", "16",
          "--image-size", "64", "--processes", "1", "--threads", "8", "--samples-per-shard", "20", "--quiet"]
CURATE = ["--preset", "datacomp_basic", "--clip-model", "tiny", "--batch-size", "16"]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("pyspark")
    with spark_cluster() as c:
        mp = pytest.MonkeyPatch()
        mp.setenv("SPARK_MASTER", c.master)
        yield c
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()
        mp.undo()


@pytest.fixture(scope="module")
def local(www, base_url, tmp_path_factory) -> tuple[Path, Path]:
    """The sample and its local ingest and curation (multiprocessing downloads, DuckDB selection)."""
    sample = build_demo_sample(www / "spark_cluster", base_url + "/spark_cluster/www", n_generated=30)
    root = tmp_path_factory.mktemp("local")
    assert main([str(a) for a in ("ingest", "--metadata", sample, "--out", root / "ingest", *INGEST)]) == 0
    assert main([str(a) for a in ("curate", root / "ingest", "--out", root / "curate", *CURATE)]) == 0
    return sample, root


def test_ingest_with_the_spark_distributor_equals_local(cluster, local, tmp_path):
    sample, root = local
    out = tmp_path / "ingest"
    assert main([str(a) for a in ("ingest", "--metadata", sample, "--out", out, "--distributor", "pyspark",
                                  *INGEST)]) == 0
    # It ran as an application of the standalone master, and stopped the session it started.
    assert [(a["name"], a["state"]) for a in cluster.applications() if a["name"] == "tessera-ingest"] == \
        [("tessera-ingest", "FINISHED")]
    cols = ["key", "status", "sha256", "url", "caption", "width", "height"]
    ref = rows(root / "ingest" / "shards", cols)
    assert rows(out / "shards", cols) == ref
    assert {r["status"] for r in ref.values()} >= {"success", "failed_to_download"}


def test_curate_on_the_spark_cluster_equals_local(cluster, local, tmp_path):
    _, root = local
    out = tmp_path / "curate"
    assert main([str(a) for a in ("curate", root / "ingest", "--out", out, *CURATE, "--engine", "spark")]) == 0
    assert any(a["name"] == "tessera-curate" for a in cluster.applications())
    ledger = ["key", "stage", "reason", "value", "duplicate_of"]
    ref = rows(root / "curate" / "dropped", ledger)
    assert rows(out / "dropped", ledger) == ref and ref
    kept = rows(root / "curate" / "curated", ["key"])
    assert rows(out / "curated", ["key"]) == kept and kept
