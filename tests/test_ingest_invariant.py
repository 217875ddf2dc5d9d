"""Over a real download (HTTP on 127.0.0.1): every input row has exactly one outcome, captions survive byte for byte."""

from __future__ import annotations

import json
import tarfile

import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.stats.ingest_stats import ingest_stats, pair_accounting
from pipelines.core.shards import complete_shards


def _outcomes(out):
    rows = []
    for shard in complete_shards(out):
        rows += pq.read_table(shard.parquet).to_pylist()
    rejects = pq.read_table(next((out / S.REJECTS_DIR).glob("*.parquet"))).to_pylist()
    return rows, rejects


def test_every_input_row_has_exactly_one_outcome(demo_ingest):
    meta, out = demo_ingest
    inputs = pq.read_table(meta).to_pylist()
    rows, rejects = _outcomes(out)
    seen = [(r[S.INPUT_FILE], r[S.INPUT_ROW]) for r in rows + rejects]
    assert sorted(seen) == [(str(meta.resolve()), i) for i in range(len(inputs))]
    acc = pair_accounting(out)
    assert acc == {"expected": len(inputs), "accounted": len(inputs), "missing": 0, "duplicated": 0,
                   "duplicate_keys": 0}


def test_statuses_and_reasons_cover_every_failure_kind(demo_ingest):
    _, out = demo_ingest
    rows, rejects = _outcomes(out)
    statuses = {r[S.STATUS] for r in rows}
    assert statuses == {"success", "failed_to_download", "failed_to_resize"}
    errors = " ".join(r[S.ERROR_MESSAGE] or "" for r in rows)
    assert "404" in errors and "X-Robots-Tag" in errors  # missing files and opted-out hosts
    assert {r[S.REASON] for r in rejects} == {"missing_url", "invalid_url", "duplicate_url"}
    assert all(r[S.SHA256] for r in rows if r[S.STATUS] == "success")


def test_captions_survive_byte_for_byte(demo_ingest):
    meta, out = demo_ingest
    inputs = pq.read_table(meta).to_pylist()
    rows, rejects = _outcomes(out)
    for r in rows + rejects:
        assert r[S.CAPTION] == inputs[r[S.INPUT_ROW]]["TEXT"]
    by_key = {r[S.KEY]: r for r in rows if r[S.STATUS] == "success"}
    special = {"Café au lait ☕ — naïve façade, 東京タワー, emoji 🚀🌍✨", "  leading and trailing spaces  "}
    found = set()
    for shard in complete_shards(out):
        with tarfile.open(shard.tar) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".txt"):
                    text = tar.extractfile(member).read().decode("utf-8")
                    assert text == by_key[member.name[:-4]][S.CAPTION]
                    found |= {text} & special
                    if len(text) > 2000:
                        found.add("long")
    assert found == special | {"long"}


def test_sizes_json_and_stats_agree_with_the_tars(demo_ingest):
    _, out = demo_ingest
    sizes = json.loads((out / S.SIZES_FILE).read_text())
    for shard in complete_shards(out):
        with tarfile.open(shard.tar) as tar:
            images = [m for m in tar.getnames() if m.endswith(".jpg")]
        assert sizes[f"{shard.shard_id}.tar"] == len(images)
    stats = ingest_stats(out)
    assert stats["success"] == sum(sizes.values())
    assert stats["input_rows"] == stats["success"] + stats["failed"] + stats["rejected"]
