"""`tessera export-eva-clip`: mixing by weight, chosen captions, curation, and shards webdataset can read."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from pipelines.cli.main import main
from pipelines.export.eva_clip import MANIFEST, export_eva_clip, parse_weights
from pipelines.export.folder import read_index, train_data
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
    (export_id,) = read_index(out)
    assert sizes == {f"{export_id}-{i:05d}.tar": n for i, n in enumerate([16, 16, 16, 2])}
    assert f"--train-data '{out}/{export_id}-{{00000..00003}}.tar'" in capsys.readouterr().out
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
    # A rerun of the same export does nothing; other settings make another export beside it, under another id.
    argv = ["export-eva-clip", str(coyo), str(laion), "--out", str(out), "--weights", "laion=0.8,coyo=0.2"]
    mtime = (out / f"{export_id}-00000.tar").stat().st_mtime_ns
    assert main([*argv, "--captions", str(caps), "--samples-per-shard", "16"]) == 0
    assert (out / f"{export_id}-00000.tar").stat().st_mtime_ns == mtime and len(read_index(out)) == 1
    assert main(argv) == 0
    (other,) = set(read_index(out)) - {export_id}
    sizes = json.loads((out / "sizes.json").read_text())
    assert sizes[f"{other}-00000.tar"] == 50 and len(sizes) == 5 and "holds 1 more export" in capsys.readouterr().out
    assert train_data(out) == ("::".join(f"{out}/{i}-{{00000..{n:05d}}}.tar"
                                         for i, n in sorted([(export_id, 3), (other, 0)])), 100)


def test_export_curated_only_and_errors(tmp_path, capsys):
    laion, _ = _sources(tmp_path)
    cur = tmp_path / "cur" / "curated"
    cur.mkdir(parents=True)
    pq.write_table(pa.table({"key": ["l0001"]}), cur / "00000.parquet")  # one file per ingest shard
    pq.write_table(pa.table({"key": ["m0002"]}), cur / "00001.parquet")
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
    (manifest,) = read_index(out).values()
    assert manifest["dropped"] == {"caption_dropped": 1} and manifest["samples"] == 8


def test_named_export_resumes_and_is_replaced_when_its_inputs_change(tmp_path):
    laion, coyo = _sources(tmp_path)
    out = tmp_path / "eva"
    m = export_eva_clip([laion], out, samples_per_shard=20, log=lambda *_: None, name="web-v1")
    assert sorted(m["sizes"]) == ["web-v1-00000.tar", "web-v1-00001.tar", "web-v1-00002.tar"]
    # Killed after its first shard: the rerun keeps that shard and writes the rest.
    for i in (1, 2):
        (out / f"web-v1-0000{i}.tar").unlink()
    (out / "export_manifest.json").unlink()
    first = (out / "web-v1-00000.tar").stat().st_mtime_ns
    assert export_eva_clip([laion], out, samples_per_shard=20, log=lambda *_: None, name="web-v1") == m
    assert (out / "web-v1-00000.tar").stat().st_mtime_ns == first and (out / "web-v1-00002.tar").is_file()
    # The same name over other inputs: that export's tars are rewritten, not reused.
    m2 = export_eva_clip([coyo], out, samples_per_shard=20, log=lambda *_: None, name="web-v1")
    assert m2["fingerprint"] != m["fingerprint"] and m2["sizes"] == {"web-v1-00000.tar": 10}
    assert json.loads((out / "sizes.json").read_text()) == {"web-v1-00000.tar": 10}
    assert sorted(p.name for p in out.glob("*.tar")) == ["web-v1-00000.tar"]
    assert main(["export-eva-clip", str(laion), "--out", str(out), "--name", "a{b}"]) == 2


def test_export_files_are_world_readable(tmp_path):
    laion, _ = _sources(tmp_path)
    out = tmp_path / "eva"
    export_eva_clip([laion], out, samples_per_shard=20, log=lambda *_: None)
    files = [p for p in out.rglob("*") if p.is_file()]
    data = [p for p in files if p.suffix in (".tar", ".json")]  # written as 0600 temporaries, then renamed
    assert {p.name.split("-")[-1] for p in data} == {"00000.tar", "00000_stats.json", "00001.tar", "00001_stats.json",
                                                     "00002.tar", "00002_stats.json", "sizes.json",
                                                     "export_manifest.json"}
    assert [str(p) for p in files if p.stat().st_mode & 0o444 != 0o444] == []
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in data} == {p.name: "0o644" for p in data}


def test_folder_rebuilt_like_the_dagster_asset_keeps_no_stale_markers(tmp_path):
    laion, _ = _sources(tmp_path)
    out = tmp_path / "eva"
    old = export_eva_clip([laion], out, samples_per_shard=20, log=lambda *_: None)
    for stale in [out / "sizes.json", out / MANIFEST, *out.glob("*.tar")]:  # what `eva_clip_shards` removes
        stale.unlink()
    new = export_eva_clip([laion], out, samples_per_shard=25, log=lambda *_: None)
    assert new["id"] != old["id"] and list(read_index(out)) == [new["id"]]
    assert sorted(p.name for p in out.glob("*_stats.json")) == [f"{new['id']}-0000{i}_stats.json" for i in (0, 1)]
