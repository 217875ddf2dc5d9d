"""Broken completion markers and crash leftovers: the unit counts as unfinished and a rerun redoes exactly it.

Four ways a marker can be wrong (empty, unreadable bytes, valid JSON that lies about a size, files truncated after
marking), on an ingest shard and on a token shard; plus a dead run's staging folder and temporary files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from crash_fixture import (
    SHARD_IDS, SHARD_ROWS, TINY_TOKENIZE, assert_ingest_equal, ingest_args, markers, read_parts, reference_ingest,
    run, staging_dirs, tmp_files,
)

from pipelines.cli.main import main
from pipelines.core import schema as S
from pipelines.core.shard_job import FILES_KEY, ShardJob
from pipelines.core.shards import complete_shards, ingest_job
from pipelines.tokenize.shards import DROPPED_DIR, MANIFEST, TOKENS_DIR, token_job

BROKEN = ["00000", "00001", "00002", "00003"]
INTACT = "00004"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, www, base_url):
    return reference_ingest(tmp_path_factory, www, base_url)


def break_markers(job: ShardJob, lie_about: str, truncate: str) -> None:
    """Unit 00000: empty marker; 00001: garbage bytes; 00002: valid JSON lying about the size of `lie_about`;
    00003: the file `truncate` cut short after the marker was written."""
    job.marker_path("00000").write_bytes(b"")
    job.marker_path("00001").write_bytes(b"\x00\x8f\xff{\"tessera_files\": \xc3(")
    marker = json.loads(job.marker_path("00002").read_text())
    rel = lie_about.format("00002")
    assert rel in marker[FILES_KEY]
    marker[FILES_KEY][rel] += 512
    job.marker_path("00002").write_text(json.dumps(marker))
    victim = job.root / truncate.format("00003")
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])


def file_times(root: Path, rels: list[str]) -> dict[str, int]:
    return {rel: (root / rel).stat().st_mtime_ns for rel in rels}


def test_broken_ingest_markers_and_leftovers(reference, tmp_path, capsys):
    meta, ref_out = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out, out)
    shard_dir = out / S.SHARDS_DIR
    job = ingest_job(out)
    break_markers(job, lie_about="shards/{}.tar", truncate="shards/{}.tar")
    # What a crashed run leaves: its img2dataset staging folder and half-promoted temporary files.
    dead = shard_dir / "_tmp_crash_deadbeef"
    dead.mkdir()
    (dead / "00002.tar").write_bytes(b"\0" * 1024)
    (dead / "00002_stats.json").write_text("{}")
    for name in (".tessera-tmp.00001.tar.k1x2", ".tessera-tmp.00003.parquet.zz9q", ".tessera-tmp.00000_stats.json.a"):
        (shard_dir / name).write_bytes(b"partial")
    intact = [f"shards/{INTACT}.tar", f"shards/{INTACT}.parquet", f"shards/{INTACT}_stats.json"]
    before = file_times(out, intact)

    # Readers see only the intact shard: no crash, no JSONDecodeError.
    assert [s.shard_id for s in complete_shards(out)] == [INTACT]
    assert all(job.read_marker(u) is None for u in BROKEN)
    assert main(["stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    acc = stats["pairs"]["accounting"]
    assert stats["shards"] == 1 and acc["missing"] == sum(SHARD_ROWS[u] for u in BROKEN) and acc["duplicated"] == 0
    assert not stats["accounting"]["holds"]

    proc = run(ingest_args(meta, out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert file_times(out, intact) == before  # the intact shard was not redone
    redone = {u: json.loads(job.marker_path(u).read_text()) for u in BROKEN}
    assert all(m["count"] == SHARD_ROWS[u] for u, m in redone.items())
    assert_ingest_equal(out, ref_out)  # includes: no staging folder, no temporary file left
    assert not dead.exists() and not staging_dirs(out) and not tmp_files(out)


def test_broken_token_markers_and_leftovers(reference, tmp_path, capsys):
    _, ingest = reference
    clean, out = tmp_path / "clean", tmp_path / "out"
    args = ["tokenize", str(ingest), *TINY_TOKENIZE]
    assert main([*args, "--out", str(clean)]) == 0
    shutil.copytree(clean, out)
    job = token_job(out)
    break_markers(job, lie_about=TOKENS_DIR + "/{}.parquet", truncate=DROPPED_DIR + "/{}.parquet")
    for name in (f"{TOKENS_DIR}/.tessera-tmp.00001.parquet.q1", f"{DROPPED_DIR}/.tessera-tmp.00003.parquet.q2",
                 f"{TOKENS_DIR}/.tessera-tmp.00002_stats.json.q3"):
        (out / name).write_bytes(b"partial")
    intact = [f"{TOKENS_DIR}/{INTACT}.parquet", f"{DROPPED_DIR}/{INTACT}.parquet", f"{TOKENS_DIR}/{INTACT}_stats.json"]
    before = file_times(out, intact)
    assert list(job.finished()) == [INTACT]
    assert all(job.read_marker(u) is None for u in BROKEN)
    capsys.readouterr()

    assert main([*args, "--out", str(out)]) == 0
    log = capsys.readouterr()
    assert "error" not in log.err
    assert sorted(line.split(":")[0] for line in log.out.splitlines() if line.startswith("shard ")) == \
        [f"shard {u}" for u in BROKEN]  # exactly the broken units were tokenized again
    assert file_times(out, intact) == before
    assert list(job.finished()) == SHARD_IDS
    for folder in (TOKENS_DIR, DROPPED_DIR):
        assert read_parts(out / folder) == read_parts(clean / folder)
    manifest, clean_manifest = (json.loads((p / MANIFEST).read_text()) for p in (out, clean))
    assert manifest == clean_manifest
    assert not tmp_files(out)
