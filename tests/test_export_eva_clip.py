"""`tessera export-eva-clip`: mixing by weight, chosen captions, curation, and shards webdataset can read."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from pipelines.cli.main import main
from pipelines.export.eva_clip import parse_weights
from tokens_fixture import make_ingest, samples


def _sources(tmp_path):
    laion = make_ingest(tmp_path / "laion", [samples("l", 30, "laion"), samples("m", 20, "laion")])
    coyo = make_ingest(tmp_path / "coyo", [samples("c", 10, "coyo")])
    return laion, coyo


def _read(out):
    ds = wds.WebDataset(sorted(str(p) for p in out.glob("*.tar")), shardshuffle=False).decode("pil")
    return [(s["__key__"], s["jpg"].size, s["txt"], s["json"]) for s in ds]


def test_export_mixes_by_weight_with_final_captions(tmp_path, capsys):
    laion, coyo = _sources(tmp_path)
    caps = tmp_path / "caps"
    caps.mkdir()
    pq.write_table(pa.table({"key": ["l0003", "c0001"], "final_caption": ["a fused caption", "another one"]}),
                   caps / "part.parquet")
    out = tmp_path / "eva"
    # --captions applies to the first SRC only (coyo here); keys get the SRC index as prefix.
    assert main(["export-eva-clip", str(coyo), str(laion), "--out", str(out), "--weights", "laion=0.8,coyo=0.2",
                 "--captions", str(caps), "--samples-per-shard", "16"]) == 0
    sizes = json.loads((out / "sizes.json").read_text())
    assert sizes == {"00000.tar": 16, "00001.tar": 16, "00002.tar": 16, "00003.tar": 2}
    rows = _read(out)
    assert len(rows) == 50 == len({k for k, *_ in rows})
    by_source = [j["source"] for *_, j in rows]
    assert by_source.count("laion") == 40 and by_source.count("coyo") == 10  # 10 coyo -> 40 laion
    assert 2 <= by_source[:16].count("coyo") <= 4  # every shard carries the mix
    txt = {k: t for k, _, t, _ in rows}
    assert txt["0_c0001"] == "another one" and txt["0_c0000"] == "a photo number 0 from coyo"
    if "1_l0003" in txt:
        assert txt["1_l0003"] == "a photo number 3 from laion"
    assert all(size == (48, 32) for _, size, *_ in rows)
    # A rerun of a finished export does nothing.
    mtime = (out / "00000.tar").stat().st_mtime_ns
    assert main(["export-eva-clip", str(coyo), str(laion), "--out", str(out), "--weights", "laion=0.8,coyo=0.2"]) == 0
    assert (out / "00000.tar").stat().st_mtime_ns == mtime


def test_export_curated_only_and_errors(tmp_path, capsys):
    laion, _ = _sources(tmp_path)
    cur = tmp_path / "cur" / "curated"
    cur.mkdir(parents=True)
    pq.write_table(pa.table({"key": ["l0001", "m0002"]}), cur / "00000.parquet")
    out = tmp_path / "eva"
    assert main(["export-eva-clip", str(laion), "--out", str(out), "--curated", str(tmp_path / "cur")]) == 0
    assert sorted(k for k, *_ in _read(out)) == ["l0001", "m0002"]
    assert main(["export-eva-clip", str(laion), "--out", str(tmp_path / "x"), "--weights", "laion=1,coyo=1"]) == 2
    assert "coyo" in capsys.readouterr().err
    assert parse_weights("a=3,b=1") == {"a": 0.75, "b": 0.25}


def test_export_two_folders_sharing_keys(tmp_path):
    first = make_ingest(tmp_path / "a", [samples("k", 5, "laion")])
    second = make_ingest(tmp_path / "b", [samples("k", 5, "coyo")])  # same keys k0000..k0004, other images
    caps = tmp_path / "caps"
    caps.mkdir()
    pq.write_table(pa.table({"key": ["k0001", "k0002"], "final_caption": ["fused one", None],
                             "caption_source": ["fused", "dropped"]}), caps / "part.parquet")
    cur = tmp_path / "cur" / "curated"
    cur.mkdir(parents=True)
    pq.write_table(pa.table({"key": ["k0000", "k0001", "k0002", "k0003"]}), cur / "00000.parquet")
    out = tmp_path / "eva"
    assert main(["export-eva-clip", str(first), str(second), "--out", str(out), "--captions", str(caps),
                 "--curated", str(tmp_path / "cur"), "--samples-per-shard", "4"]) == 0
    rows = _read(out)
    keys = sorted(k for k, *_ in rows)
    assert keys == ["0_k0000", "0_k0001", "0_k0003"] + [f"1_k{i:04d}" for i in range(5)]  # k0002 caption dropped
    txt = {k: t for k, _, t, _ in rows}
    meta = {k: j for k, *_, j in rows}
    assert txt["0_k0001"] == "fused one" and txt["1_k0001"] == "a photo number 1 from coyo"
    assert meta["1_k0001"]["source"] == "coyo" and meta["1_k0001"]["ingest_key"] == "k0001"
    assert meta["0_k0001"]["caption_source"] == "final_caption" and meta["1_k0001"]["caption_source"] == "raw"
    manifest = json.loads((out / "export_manifest.json").read_text())
    assert manifest["dropped"] == {"caption_dropped": 1} and manifest["samples"] == 8
