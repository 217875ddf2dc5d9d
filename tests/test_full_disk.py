"""A disk that fills mid-run: `tessera ingest` and `tessera tokenize` stop with exit 2 and a short message naming the
cause, mark no incomplete shard finished, and once there is room the same command finishes the job exactly as an
uninterrupted run would. The small disk is a real tmpfs (needs root and `mount`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from crash_fixture import (
    SHARD_IDS, TINY_TOKENIZE, assert_ingest_equal, ingest_args, read_parts, reference_ingest, run, staging_dirs,
    success_keys, tar_members, tmp_files,
)

from pipelines.cli.main import main
from pipelines.core import schema as S
from pipelines.core.shards import ingest_job
from pipelines.ingest.image_downloader import expected_rows
from pipelines.ingest.partitions import PAIR_PARTITIONS
from pipelines.tokenize.shards import DROPPED_DIR, TOKENS_DIR, token_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory, www, base_url):
    return reference_ingest(tmp_path_factory, www, base_url)


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a folder on a fresh tmpfs of that size; `resize(size)` grows it; unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mounts = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        try:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                  capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip("cannot mount a tmpfs here: no `mount` command")
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in reversed(mounts):
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def pages(root: Path) -> int:
    """Bytes a tmpfs needs for the files under `root` (whole 4 KiB pages), logs left out."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in root.rglob("*") if p.is_file() and "logs" not in p.parts)


def resize(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def assert_short_enospc(proc: subprocess.CompletedProcess) -> None:
    """Exit 2 and a few lines without a traceback, the last one naming the full disk."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and 1 <= len(lines) <= 4, proc.stderr
    assert lines[-1].startswith("tessera: error: ") and "no space left on device" in lines[-1], proc.stderr


def finished_ingest_shards_are_complete(out: Path) -> list[str]:
    """Every marker on disk verifies, and its shard is whole: tar samples = sidecar successes = marker successes,
    sidecar rows = the shard's input rows. Returns the finished shard ids."""
    (manifest,) = PAIR_PARTITIONS.load(out)
    job = ingest_job(out)
    on_disk = sorted(p.name[:5] for p in (out / S.SHARDS_DIR).glob("*_stats.json"))
    assert sorted(job.finished()) == on_disk
    for sid in on_disk:
        marker = job.read_marker(sid)
        rows = pq.read_table(out / S.SHARDS_DIR / f"{sid}.parquet").to_pylist()
        success = {r[S.KEY] for r in rows if r[S.STATUS] == S.STATUS_SUCCESS}
        assert set(tar_members(out / S.SHARDS_DIR / f"{sid}.tar")) == success
        assert marker["successes"] == len(success) and len(rows) == marker["count"] == expected_rows(manifest, int(sid))
    return on_disk


def test_ingest_onto_a_full_disk_then_resume(reference, small_disk, tmp_path):
    meta, ref_out = reference
    need = pages(ref_out)
    # Half the finished folder: the disk fills while img2dataset writes (its tracebacks must stay in its log).
    disk = small_disk(f"{need // 2048}k")
    out = disk / "out"
    assert_short_enospc(run(ingest_args(meta, out)))
    assert len(finished_ingest_shards_are_complete(out)) < len(SHARD_IDS)
    assert not staging_dirs(out) and not tmp_files(out)  # the failed run removed its staging and temporaries

    # About the whole folder: img2dataset's staging fits, the markers of the last shards do not.
    resize(disk, f"{need // 1024}k")
    assert_short_enospc(run(ingest_args(meta, out)))
    finished = finished_ingest_shards_are_complete(out)
    assert 0 < len(finished) < len(SHARD_IDS), f"the disk did not fill mid-promotion: {finished} finished"
    assert not staging_dirs(out) and not tmp_files(out)

    resize(disk, "4m")
    proc = run(ingest_args(meta, out))
    assert proc.returncode == 0, proc.stderr
    assert_ingest_equal(out, ref_out)


def test_tokenize_onto_a_full_disk_then_resume(reference, small_disk, tmp_path):
    _, ingest = reference
    clean = tmp_path / "clean"
    assert main(["tokenize", str(ingest), "--out", str(clean), *TINY_TOKENIZE]) == 0
    disk = small_disk("48k")
    args = ["tokenize", str(ingest), "--out", str(disk / "tok"), *TINY_TOKENIZE]
    proc = run(args)
    assert_short_enospc(proc)

    out = disk / "tok"
    job = token_job(out)
    on_disk = sorted(p.name[:5] for p in (out / TOKENS_DIR).glob("*_stats.json"))
    assert sorted(job.finished()) == on_disk
    assert 0 < len(on_disk) < len(SHARD_IDS), f"the disk did not fill mid-run: {on_disk} finished"
    assert not tmp_files(out)
    for sid in on_disk:
        marker = job.read_marker(sid)
        tokens = pq.read_table(out / TOKENS_DIR / f"{sid}.parquet")
        dropped = pq.read_table(out / DROPPED_DIR / f"{sid}.parquet")
        assert tokens.num_rows == marker["tokenized"] and dropped.num_rows == sum(marker["dropped"].values())
        assert marker["samples"] == tokens.num_rows + dropped.num_rows

    resize(disk, "4m")
    proc = run(args)
    assert proc.returncode == 0, proc.stderr
    for folder in (TOKENS_DIR, DROPPED_DIR):
        assert read_parts(out / folder) == read_parts(clean / folder)
    assert sorted([*read_parts(out / TOKENS_DIR), *read_parts(out / DROPPED_DIR)]) == sorted(success_keys(ingest))
    manifest, clean_manifest = (json.loads((p / "manifest.json").read_text()) for p in (out, clean))
    assert manifest == clean_manifest
