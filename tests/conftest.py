"""Shared fixtures: a real HTTP server on 127.0.0.1, tiny metadata files, and one ingested demo folder."""

from __future__ import annotations

import io
from contextlib import contextmanager
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TESSERA_CACHE", str(Path(__file__).resolve().parent.parent / ".cache" / "tessera"))

from pipelines.demo.sample import build_demo_sample  # noqa: E402
from pipelines.demo.http_server import serve_folder  # noqa: E402
from pipelines.ingest.fetch import FetchConfig  # noqa: E402
from pipelines.ingest.image_downloader import DownloadConfig  # noqa: E402
from pipelines.ingest.sequence import ingest  # noqa: E402

# The test server is on 127.0.0.1: private addresses allowed explicitly, and no per-host pacing for it.
LOCAL_FETCH = FetchConfig(allow_private_network=True, per_host_rate=1000.0, per_host_connections=16)
FAST_DOWNLOAD = DownloadConfig(processes=1, threads=8, image_size=64, fetch=LOCAL_FETCH)


def add_tar_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add `data` to an open tar as member `name` (for tests that build img2dataset-style shards by hand)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def mark_finished(root: Path, marker_dir: str, unit: str, rels: list[str], stats: dict) -> dict:
    """Mark files written by hand as one finished unit, through the shard job (verified, marker last)."""
    from pipelines.core.shard_job import ShardJob

    with ShardJob(root, marker_dir).unit(unit) as writer:
        for rel in rels:
            writer.adopt(Path(root) / rel, rel)
        return writer.commit(stats)


@pytest.fixture(autouse=True)
def _no_lingering_dagster_instance():
    """Dagster 1.13 keeps the defs-state storage of the last entered instance in a context variable; in one long
    pytest process a disposed instance's storage can linger there and break a later test's Definitions
    ("Attempted to resolve undefined DagsterInstance weakref"). Every test starts without one, as a fresh process
    (the CLI, the daemon, the webserver) does."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
    yield


@contextmanager
def dagster_instance(home: Path):
    """A DagsterInstance over the folder `home`, disposed at the end. Not used as `with instance:`: Dagster 1.13
    sets a context variable on enter, and `materialize(instance=...)` entering the same instance again leaves it
    pointing at the disposed instance for every later test ("undefined DagsterInstance weakref")."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()


def sensed_partitions(sensor, partitions, instance, resources: dict) -> list[str]:
    """Run a file sensor once and add the partitions it requests, as the daemon does; their keys, sorted."""
    from dagster import build_sensor_context

    result = sensor(build_sensor_context(instance=instance, resources=resources))
    keys = sorted(r.partition_key for r in result.run_requests)
    instance.add_dynamic_partitions(partitions.name, keys)
    return keys


def jpeg_bytes(w: int = 64, h: int = 48, color: str = "red") -> bytes:
    """A small real JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def www(tmp_path_factory) -> Path:
    """The folder the test HTTP server serves."""
    root = tmp_path_factory.mktemp("www")
    (root / "img").mkdir()
    return root


@pytest.fixture(scope="session")
def base_url(www) -> str:
    """Base URL of a real HTTP server on 127.0.0.1 serving `www`."""
    with serve_folder(www) as url:
        yield url


@pytest.fixture
def make_images(www, base_url):
    """Write `n` JPEGs under a unique prefix and return their URLs."""
    counter = {"n": 0}

    def make(n: int, prefix: str = "x", size=(64, 48)) -> list[str]:
        counter["n"] += 1
        urls = []
        for i in range(n):
            name = f"{prefix}_{counter['n']}_{i}.jpg"
            (www / "img" / name).write_bytes(jpeg_bytes(*size, color=("red", "green", "blue")[i % 3]))
            urls.append(f"{base_url}/img/{name}")
        return urls

    return make


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """Write rows to a parquet file (types inferred by pyarrow)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="session")
def demo_ingest(tmp_path_factory, www, base_url):
    """The demo sample (fewer generated images) ingested once: (metadata path, ingest folder)."""
    root = tmp_path_factory.mktemp("demo")
    sample_dir = www / "demo"
    meta = build_demo_sample(sample_dir, base_url + "/demo/www", n_generated=40)
    out = root / "out"
    ingest("laion", [meta], out, download=FAST_DOWNLOAD, samples_per_shard=40)
    return meta, out
