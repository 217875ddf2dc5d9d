"""Shared pieces of the crash, marker, concurrency and full-disk tests.

One metadata file of noisy JPEGs served over real HTTP, the `tessera` CLI in a subprocess (killable), one reference
ingest made once per test session, and snapshots of each stage's output so two runs can be compared value by value.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipelines.core import schema as S
from pipelines.core.shard_io import TMP_PREFIX
from pipelines.core.shards import complete_shards
from pipelines.ingest.image_downloader import STAGING_PREFIX
from pipelines.stats.ingest_stats import pair_accounting

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "tessera"  # the console script users run (exec'd: its pid is the run's)
TESSERA = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "pipelines.cli"]
N_IMAGES = 12
PARTITION = "crash"
# 12 images + one 404 = 13 rows for img2dataset -> shards of 3,3,3,3,1. One process handles at most 5 shards
# before img2dataset's pool respawns it (maxtasksperchild=5), which would cost a second interpreter start.
INGEST_OPTS = ["--samples-per-shard", "3", "--image-size", "64", "--processes", "1", "--threads", "4", "--quiet"]
SHARD_IDS = ["00000", "00001", "00002", "00003", "00004"]
SHARD_ROWS = {"00000": 3, "00001": 3, "00002": 3, "00003": 3, "00004": 1}
TINY_TOKENIZE = ["--vq-model", "tiny", "--target-area", "4096", "--min-area", "1024", "--max-area", "16384"]
TINY_CAPTION = ["--captioner", "tiny", "--llm", "tiny", "--caption-num-beams", "1", "--caption-max-new-tokens", "6",
                "--num-beams", "1", "--max-new-tokens", "6", "--quiet"]
TINY_CURATE = ["--preset", "coyo", "--clip-model", "tiny", "--batch-size", "4"]

_REFERENCE: dict[str, tuple[Path, Path]] = {}


def env() -> dict[str, str]:
    """The subprocesses' environment: downloads from 127.0.0.1 allowed, the session's model cache."""
    return dict(os.environ, TESSERA_ALLOW_PRIVATE_NETWORK="1", NO_ALBUMENTATIONS_UPDATE="1", PYTHONUNBUFFERED="1")


def noisy_jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG of random noise (does not compress, so shards have a predictable, non-trivial size)."""
    arr = np.random.default_rng(seed).integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_metadata(www: Path, base_url: str, folder: Path) -> Path:
    """`folder/crash.parquet` (LAION schema): 12 served images, one 404, one duplicate URL, one invalid URL."""
    img = www / "crash"
    img.mkdir(parents=True, exist_ok=True)
    urls = []
    for i in range(N_IMAGES):
        (img / f"n{i}.jpg").write_bytes(noisy_jpeg(i))
        urls.append(f"{base_url}/crash/n{i}.jpg")
    rows = [{"URL": u, "TEXT": f"noise picture number {i}"} for i, u in enumerate(urls)]
    rows.insert(5, {"URL": f"{base_url}/crash/missing.jpg", "TEXT": "not there"})
    rows.append({"URL": urls[2], "TEXT": "the same picture again"})
    rows.append({"URL": "not a url", "TEXT": "broken"})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PARTITION}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def ingest_args(meta: Path, out: Path, *extra: str) -> list[str]:
    """`tessera ingest` over the crash metadata with the tests' small settings."""
    return ["ingest", "--source", "laion", "--metadata", str(meta), "--out", str(out), *INGEST_OPTS, *extra]


def start(args: list[str]) -> subprocess.Popen:
    """Start `tessera ARGS` in its own process group (so a kill takes its workers too)."""
    return subprocess.Popen([*TESSERA, *args], cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `tessera ARGS` to the end."""
    return subprocess.run([*TESSERA, *args], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 180) -> None:
    """SIGKILL the process group of `proc` as soon as `ready()` holds; fail if `proc` ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (rc {proc.returncode}) before it could be killed:\n{out}\n{err}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("the run never reached the kill point")
        time.sleep(0.002)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        raise AssertionError("the run ended before it could be killed") from None
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def tmp_files(root: Path) -> list[Path]:
    """Leftover temporary files (`.tessera-tmp.*`) anywhere under `root`."""
    return sorted(root.rglob(f"{TMP_PREFIX}*"))


def staging_dirs(out: Path) -> list[Path]:
    """img2dataset staging folders under an ingest folder."""
    return sorted((out / S.SHARDS_DIR).glob(f"{STAGING_PREFIX}*"))


def markers(folder: Path) -> dict[str, int]:
    """`*_stats.json` files in `folder` -> mtime_ns."""
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*_stats.json") if p.name[0].isdigit()}


def sha(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def tar_members(tar: Path) -> dict[str, dict[str, str]]:
    """{key: {ext: sha256 of the member's bytes}} of a webdataset tar; fails on a key seen twice."""
    members: dict[str, dict[str, str]] = {}
    with tarfile.open(tar) as tf:
        for m in tf:
            if m.isfile():
                key, _, ext = Path(m.name).name.partition(".")
                assert ext not in members.get(key, {}), f"{tar}: member {m.name} twice"
                members.setdefault(key, {})[ext] = sha(tf.extractfile(m).read())
    return members


def ingest_snapshot(out: Path) -> dict:
    """Everything that must be equal between two ingest runs of the same input: per finished shard, its sidecar rows
    (by key) and its tar members' bytes (by key and extension); also checks the shard is internally complete."""
    shards = {}
    for shard in complete_shards(out):
        rows = pq.read_table(shard.parquet).to_pylist()
        keys = [r[S.KEY] for r in rows]
        assert len(keys) == len(set(keys)), f"shard {shard.shard_id}: duplicate keys {Counter(keys).most_common(2)}"
        members = tar_members(shard.tar)
        success = {r[S.KEY] for r in rows if r[S.STATUS] == S.STATUS_SUCCESS}
        assert set(members) == success, f"shard {shard.shard_id}: tar keys {sorted(members)} != successes"
        assert all(set(m) == {"jpg", "txt", "json"} for m in members.values()), shard.shard_id
        marker = json.loads(shard.stats.read_text())
        assert marker["successes"] == len(success) and marker["count"] == len(rows) == SHARD_ROWS[shard.shard_id]
        shards[shard.shard_id] = {"rows": {r[S.KEY]: r for r in rows}, "tar": members}
    return shards


def all_keys(out: Path) -> list[str]:
    """Every sidecar key of the finished shards, duplicates kept."""
    return [k for s in complete_shards(out) for k in pq.read_table(s.parquet, columns=[S.KEY])[S.KEY].to_pylist()]


def assert_ingest_equal(out: Path, reference: Path) -> None:
    """`out` holds exactly the reference's shards, rows, image hashes and tar bytes; every input row counted once."""
    snap, ref = ingest_snapshot(out), ingest_snapshot(reference)
    assert sorted(snap) == SHARD_IDS == sorted(ref)
    for sid in SHARD_IDS:
        assert snap[sid]["rows"].keys() == ref[sid]["rows"].keys(), sid
        for key, row in ref[sid]["rows"].items():
            got = snap[sid]["rows"][key]
            assert got[S.SHA256] == row[S.SHA256] and got[S.STATUS] == row[S.STATUS], (sid, key)
        assert snap[sid] == ref[sid], sid
    keys = all_keys(out)
    assert len(keys) == len(set(keys)) == N_IMAGES + 1
    assert_accounting(out)
    assert not tmp_files(out) and not staging_dirs(out)


def assert_accounting(out: Path) -> None:
    """Every input row has exactly one outcome (sidecar row or reject)."""
    acc = pair_accounting(out)
    assert acc["expected"] == N_IMAGES + 3 and acc["accounted"] == N_IMAGES + 3, acc
    assert (acc["missing"], acc["duplicated"], acc["duplicate_keys"]) == (0, 0, 0), acc


def reference_ingest(tmp_path_factory, www: Path, base_url: str) -> tuple[Path, Path]:
    """(metadata, ingest folder) of one uninterrupted `tessera ingest`, made once per test session."""
    if base_url not in _REFERENCE:
        root = tmp_path_factory.mktemp("reference_ingest")
        meta = make_metadata(www, base_url, root)
        out = root / "out"
        proc = run(ingest_args(meta, out))
        assert proc.returncode == 0, proc.stderr
        assert sorted(s.shard_id for s in complete_shards(out)) == SHARD_IDS and len(success_keys(out)) == N_IMAGES
        _REFERENCE[base_url] = (meta, out)
    return _REFERENCE[base_url]


def read_parts(folder: Path) -> dict[str, dict]:
    """Rows (by key) of every `NNNNN.parquet` in `folder`; fails on a key seen twice."""
    rows: dict[str, dict] = {}
    for path in sorted(folder.glob("[0-9]*.parquet")):
        for row in pq.read_table(path).to_pylist():
            assert row["key"] not in rows, f"{path}: key {row['key']} twice"
            rows[row["key"]] = row
    return rows


def success_keys(ingest_out: Path) -> set[str]:
    """Keys of the successfully downloaded samples of an ingest folder."""
    keys = set()
    for s in complete_shards(ingest_out):
        t = pq.read_table(s.parquet, columns=[S.KEY, S.STATUS]).to_pylist()
        keys |= {r[S.KEY] for r in t if r[S.STATUS] == S.STATUS_SUCCESS}
    return keys
