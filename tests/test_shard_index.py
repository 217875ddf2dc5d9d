"""The shard job's finished-unit index (`.finished-index.jsonl`) and the per-partition `sizes.json` merge.

Real ShardJob units on a tmp folder: the index must never change the answer the markers give, only its cost.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import tarfile
from pathlib import Path

from pipelines.core import schema as S
from pipelines.core.shard_index import INDEX_FILE, FinishedIndex
from pipelines.core.shard_io import write_json_atomic
from pipelines.core.shard_job import ShardJob
from pipelines.core.shards import ingest_job
from pipelines.ingest.sequence import rebuild_sizes, write_sizes


def _tar(path: Path, samples: int) -> None:
    with tarfile.open(path, "w") as tar:
        for i in range(samples):
            data = f"caption {i}".encode()
            info = tarfile.TarInfo(f"{i:09d}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def commit_unit(job: ShardJob, unit: str, samples: int = 2, rel: str | None = None) -> dict:
    """One real unit: a tar output verified by the writer, then its marker and index line."""
    rel = rel or f"{job.marker_dir or 'out'}/{unit}.tar"
    with job.unit(unit) as writer:
        assert writer is not None
        _tar(writer.path(rel), samples)
        return writer.commit({"successes": samples}, expect={rel: samples})


def _indexed(job: ShardJob) -> set[str]:
    return set(job.index.read()[0])


def test_index_agrees_with_markers_and_repairs_lost_lines(tmp_path):
    job = ShardJob(tmp_path, "parts")
    units = [f"{i:05d}" for i in range(6)]
    for unit in units:
        commit_unit(job, unit)
    assert _indexed(job) == set(units)
    assert job.finished() == job.finished(verify=True)
    assert list(job.finished()) == units

    # A crash between the marker and its index line: the last line half-written, and an index lost entirely.
    index = tmp_path / "parts" / INDEX_FILE
    data = index.read_bytes()
    index.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 20])
    assert units[-1] not in _indexed(job)
    assert list(job.finished()) == units
    assert units[-1] in _indexed(job)  # repaired by the reader
    commit_unit(job, "00006")  # an append after a cut line still parses
    assert "00006" in _indexed(job)
    index.unlink()
    assert list(job.finished()) == units + ["00006"]
    assert _indexed(job) == set(units) | {"00006"}


def test_changed_file_deleted_or_rewritten_marker(tmp_path):
    job = ShardJob(tmp_path, "parts")
    for i in range(4):
        commit_unit(job, f"{i:05d}")
    with open(tmp_path / "parts" / "00001.tar", "ab") as handle:
        handle.write(b"\0")  # the file no longer has the size its marker lists
    (tmp_path / "parts" / "00002_stats.json").unlink()
    marker = json.loads((tmp_path / "parts" / "00003_stats.json").read_text())
    write_json_atomic({**marker, "successes": 99}, tmp_path / "parts" / "00003_stats.json")  # index line now stale
    for verify in (False, True, False):
        found = job.finished(verify=verify)
        assert sorted(found) == ["00000", "00003"]
        assert found["00003"]["successes"] == 99
    assert job.pending(["00000", "00001", "00002", "00003"]) == ["00001", "00002"]


def _commit_many(root: str, units: list[str]) -> None:
    job = ShardJob(Path(root), "parts")
    for unit in units:
        commit_unit(job, unit, samples=1)


def test_two_processes_committing_leave_a_whole_index(tmp_path):
    units = [f"{i:05d}" for i in range(60)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_commit_many, args=(str(tmp_path), units[k::2])) for k in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    job = ShardJob(tmp_path, "parts")
    entries, lines = FinishedIndex(tmp_path / "parts").read()
    assert set(entries) == set(units) and lines == len(units)  # no line lost or torn by the concurrent appends
    assert list(job.finished()) == units
    assert job.finished() == job.finished(verify=True)


def test_sizes_merged_per_partition_equal_rebuild(tmp_path):
    job = ingest_job(tmp_path)
    (tmp_path / S.SHARDS_DIR).mkdir()
    for sid, samples in [(0, 3), (1, 1)]:
        commit_unit(job, f"{sid:05d}", samples, rel=f"{S.SHARDS_DIR}/{sid:05d}.tar")
    write_sizes(tmp_path, [0, 1])
    for sid, samples in [(2, 2), (3, 4)]:
        commit_unit(job, f"{sid:05d}", samples, rel=f"{S.SHARDS_DIR}/{sid:05d}.tar")
    merged = write_sizes(tmp_path, [2, 3])
    files = [tmp_path / S.SIZES_FILE, tmp_path / S.SHARDS_DIR / S.SIZES_FILE]
    merged_bytes = [p.read_bytes() for p in files]
    assert merged == {"00000.tar": 3, "00001.tar": 1, "00002.tar": 2, "00003.tar": 4}
    assert rebuild_sizes(tmp_path) == merged
    assert [p.read_bytes() for p in files] == merged_bytes
    # A merge of a partition whose shard lost its marker drops that entry, as a rebuild would.
    (tmp_path / S.SHARDS_DIR / "00003_stats.json").unlink()
    write_sizes(tmp_path, [2, 3])
    merged_bytes = [p.read_bytes() for p in files]
    rebuild_sizes(tmp_path)
    assert [p.read_bytes() for p in files] == merged_bytes
    assert "00003.tar" not in json.loads(merged_bytes[0])
