"""`tessera tokenize` end to end over tiny ingest shards: captions, curation, drops, resume, manifest, QA PNG."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.cli.main import main
from tokens_fixture import make_ingest, samples

SMALL = ["--target-area", "4096", "--min-area", "1024", "--max-area", "16384"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def ingest(tmp_path):
    s0 = samples("a", 5) + [{"key": "afail", "caption": "x", "width": 10, "height": 10, "status": "failed_to_download"}]
    s0.append({"key": "awide", "caption": "too wide", "width": 240, "height": 24})
    s1 = samples("b", 4, source="coyo", width=32, height=64)
    root = make_ingest(tmp_path / "ingest", [s0, s1])
    (root / "shards" / "00002.tar").write_bytes(b"")  # unfinished shard: no _stats.json, must be ignored
    caps = tmp_path / "captions" / "fused"
    caps.mkdir(parents=True)
    # Caption parts and curated files per ingest shard, as `tessera caption` and `tessera curate` write them.
    pq.write_table(pa.table({"key": ["a0001"], "final_caption": ["fused one"]}), caps / "00000.parquet")
    pq.write_table(pa.table({"key": ["b0002"], "final_caption": ["fused two"]}), caps / "00001.parquet")
    cur = tmp_path / "curate" / "curated"
    cur.mkdir(parents=True)
    pq.write_table(pa.table({"key": [f"a{i:04d}" for i in range(5)] + ["awide"]}), cur / "00000.parquet")
    pq.write_table(pa.table({"key": [f"b{i:04d}" for i in range(3)]}), cur / "00001.parquet")
    return root


def test_tokenize_cli_end_to_end_and_resume(ingest, tmp_path, capsys):
    out = tmp_path / "tok"
    args = ["tokenize", str(ingest), "--out", str(out), "--vq-model", "tiny", "--captions",
            str(tmp_path / "captions"), "--curated", str(tmp_path / "curate"), *SMALL]
    assert main(args) == 0
    t0 = pq.read_table(out / "emu3_tokens" / "00000.parquet")
    t1 = pq.read_table(out / "emu3_tokens" / "00001.parquet")
    assert t0["key"].to_pylist() == [f"a{i:04d}" for i in range(5)]
    assert t1["key"].to_pylist() == [f"b{i:04d}" for i in range(3)]  # b0003 not curated
    both = t0.to_pylist() + t1.to_pylist()
    caps = {r["key"]: r["caption"] for r in both}
    assert caps["a0001"] == "fused one" and caps["b0002"] == "fused two"
    assert caps["a0000"] == "a photo number 0 from laion"
    row = t0.to_pylist()[0]
    assert len(row["codes"]) == row["h"] * row["w"] and row["tokenizer"] == "emu3_vq:tiny"
    assert t1.to_pylist()[0]["h"] > t1.to_pylist()[0]["w"]  # portrait images give tall grids
    dropped = pq.read_table(out / "emu3_dropped" / "00000.parquet").to_pylist()
    assert dropped == [{"key": "awide", "drop_reason": "aspect_ratio_too_large"}]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenized"] == 8 and manifest["samples"] == 9 and manifest["skipped"]["not_curated"] == 1
    assert manifest["total_tokens"] == sum(r["h"] * r["w"] for r in t0.to_pylist() + t1.to_pylist())
    assert manifest["dropped"] == {"aspect_ratio_too_large": 1} and manifest["shards"] == ["00000", "00001"]

    # Resume: a finished shard is skipped; a shard whose stats file is gone is redone without duplicates.
    marker = out / "emu3_tokens" / "00000_stats.json"
    mtime = marker.stat().st_mtime_ns
    (out / "emu3_tokens" / "00001_stats.json").unlink()
    assert main(args) == 0
    assert marker.stat().st_mtime_ns == mtime
    assert pq.read_table(out / "emu3_tokens" / "00001.parquet").num_rows == 3
    assert json.loads((out / "manifest.json").read_text())["tokenized"] == 8

    png = tmp_path / "qa.png"
    assert main(["tokenize-qa", str(out), "--n", "3", "--png", str(png)]) == 0
    with Image.open(png) as im:
        assert im.width >= 2 * 8 * 8 and im.height >= 3 * 32  # original | reconstruction, 3 rows


def test_tokenize_user_errors(tmp_path, capsys):
    assert main(["tokenize", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["tokenize", str(tmp_path), "--out", str(tmp_path / "o"), "--vq-model", "no_such_model"]) == 2
    assert "--vq-model" in capsys.readouterr().err
