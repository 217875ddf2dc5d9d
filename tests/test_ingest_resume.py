"""Reruns and crashes: finished shards are skipped, unfinished ones redone, no row is ever written twice."""

from __future__ import annotations

import pyarrow.parquet as pq
from conftest import FAST_DOWNLOAD, write_parquet

from pipelines.core import schema as S
from pipelines.ingest.sequence import ingest
from pipelines.stats.ingest_stats import pair_accounting
from pipelines.core.shards import complete_shards


def _keys(out):
    keys = []
    for shard in complete_shards(out):
        keys += pq.read_table(shard.parquet, columns=[S.KEY])[S.KEY].to_pylist()
    return keys


def test_rerun_and_crash_resume_without_duplicates(tmp_path, make_images):
    urls = make_images(12, "resume")
    meta = write_parquet(tmp_path / "m.parquet", [{"URL": u, "TEXT": f"c{i}"} for i, u in enumerate(urls)])
    out = tmp_path / "out"
    ingest("laion", [meta], out, download=FAST_DOWNLOAD, samples_per_shard=5)
    shards = complete_shards(out)
    assert [s.shard_id for s in shards] == ["00000", "00001", "00002"]
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 12

    # A plain rerun touches nothing.
    mtimes = {p: p.stat().st_mtime_ns for s in shards for p in (s.tar, s.parquet, s.stats)}
    ingest("laion", [meta], out, download=FAST_DOWNLOAD, samples_per_shard=5)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    # A crash mid-shard: its stats marker is missing and its tar half written. The rerun redoes only that shard.
    crashed = shards[1]
    crashed.stats.unlink()
    crashed.tar.write_bytes(crashed.tar.read_bytes()[:700])
    ingest("laion", [meta], out, download=FAST_DOWNLOAD, samples_per_shard=5)
    assert shards[0].tar.stat().st_mtime_ns == mtimes[shards[0].tar]
    assert sorted(_keys(out)) == sorted(keys)
    acc = pair_accounting(out)
    assert acc["missing"] == 0 and acc["duplicated"] == 0 and acc["duplicate_keys"] == 0


def test_second_partition_gets_new_shards_and_unique_keys(tmp_path, make_images):
    out = tmp_path / "out"
    first = write_parquet(tmp_path / "a.parquet", [{"url": u, "text": "a"} for u in make_images(3, "pa")])
    shared = pq.read_table(first).to_pylist()[0]["url"]
    second = write_parquet(
        tmp_path / "b.parquet",
        [{"uid": "u1", "url": shared, "text": "again"}] + [{"uid": f"v{i}", "url": u, "text": "b"}
                                                            for i, u in enumerate(make_images(3, "pb"))],
    )
    ingest("coyo", [first], out, download=FAST_DOWNLOAD, samples_per_shard=10)
    ingest("datacomp", [second], out, download=FAST_DOWNLOAD, samples_per_shard=10)
    assert [s.shard_id for s in complete_shards(out)] == ["00000", "00001"]
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 6
    sidecar = pq.read_table(out / S.SHARDS_DIR / "00001.parquet").to_pylist()
    assert {r["uid"] for r in sidecar} == {"v0", "v1", "v2"} and {r[S.SOURCE] for r in sidecar} == {"datacomp"}
    (rej,) = pq.read_table(out / S.REJECTS_DIR / "b.parquet").to_pylist()
    assert rej[S.REASON] == "duplicate_url_earlier_partition"
