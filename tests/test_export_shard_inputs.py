"""Caption, tokenize and export read each shard's own curated keys and caption parts only, and the per-shard export
plan writes the same tars as the pool-wide one did (recorded from it on the same inputs)."""

from __future__ import annotations

import hashlib
import json
import io
import random
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import mark_finished
from pipelines.caption.parts import image_shard_parts
from pipelines.core.errors import TesseraUserError
from pipelines.core.runner import RunnerConfig
from pipelines.export.eva_clip import export_eva_clip
from pipelines.export.plan import sample_mask
from pipelines.tokenize.image_tokenizer import ImageTokenizerConfig
from pipelines.tokenize.shards import tokenize_shards
from tokens_fixture import make_ingest, samples

# Recorded from the pool-wide plan (`load_curated_keys` + `load_final_captions` + `random.sample` over every key,
# commit 73f85e5) on `pool()`: tar sample counts, digest of names and texts, available, exported, dropped.
RECORDED = {
    "weighted": ([4, 4, 4, 3], "498ec0922d6cdac348c5fb6272f759254a8c05c484edd351123d6ddb65a610fe",
                 {"laion": 43, "coyo": 12}, {"coyo": 12, "laion": 3}),
    "all": ([4] * 11, "c1299e08d578236dca55a32ccb2f09918b47fe90deb70ac059ec17179c91c7fe",
            {"laion": 37, "coyo": 8}, {"laion": 36, "coyo": 8}),
    "weighted_one": ([4, 4, 4, 4, 3], "07228fc9194cae41b75cfa3ed968187c5c95d8841734c6327c8bc555b5eaa51c",
                     {"laion": 37, "coyo": 8}, {"laion": 11, "coyo": 8}),
}
RUNS = {"weighted": (2, {"laion": 0.25, "coyo": 0.75}), "all": (1, None), "weighted_one": (1, {"laion": 0.6, "coyo": 0.4})}


def _drop_image(root, shard: str, key: str) -> None:
    """Rewrite a finished shard without `key`'s image (its sidecar still says success): a missing_in_tar sample."""
    tar = root / "shards" / f"{shard}.tar"
    with tarfile.open(tar) as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf if m.isfile() and m.name != f"{key}.jpg"]
    with tarfile.open(tar, "w") as tf:
        for m, data in members:
            tf.addfile(m, io.BytesIO(data))
    (root / "shards" / f"{shard}_stats.json").unlink()
    mark_finished(root, "shards", shard, [f"shards/{shard}.tar", f"shards/{shard}.parquet"], {"successes": 0})


def pool(tmp_path):
    """Two ingest folders; the first has three shards of two sources, per-shard curated/ and caption parts, a loose
    caption file, a failed row, a caption-dropped row and a curated sample whose image is missing from its tar."""
    s0 = samples("a", 14) + samples("c", 3, "coyo")
    s0.append({"key": "afail", "caption": "x", "width": 48, "height": 32, "status": "failed_to_download"})
    s1 = samples("b", 16) + samples("d", 2, "coyo")
    s2 = samples("e", 12) + samples("f", 3, "coyo")
    first = make_ingest(tmp_path / "first", [s0, s1, s2])
    _drop_image(first, "00001", "b0003")
    second = make_ingest(tmp_path / "second", [samples("g", 6), samples("h", 4, "coyo")])
    cur = tmp_path / "curate" / "curated"
    cur.mkdir(parents=True)
    for sid, rows in enumerate((s0, s1, s2)):
        keep = [r["key"] for r in rows if r.get("status", "success") == "success" and not r["key"].endswith("5")]
        pq.write_table(pa.table({"key": keep}), cur / f"{sid:05d}.parquet")
    caps = tmp_path / "captions" / "captions"
    caps.mkdir(parents=True)
    parts = {"00000": (["a0001", "a0002", "c0001"], ["fused a1", None, "fused c1"], ["fused", "dropped", "fused"]),
             "00001": (["b0004", "d0000"], ["fused b4", "fused d0"], ["fused", "fused"]),
             "00002": (["e0007", "e0008"], [None, "fused e8"], ["dropped", "fused"])}
    for sid, (keys, finals, sources) in parts.items():
        pq.write_table(pa.table({"key": keys, "final_caption": finals, "caption_source": sources}),
                       caps / f"{sid}.parquet")
    # A file named after no shard applies to every shard, read in path order after captions/: it overrides b0004
    # and gives dropped e0007 a caption back.
    pq.write_table(pa.table({"key": ["b0004", "e0007", "zz"], "final_caption": ["loose b4", "loose e7", "none"]}),
                   tmp_path / "captions" / "loose.parquet")
    return first, second, tmp_path / "captions", tmp_path / "curate"


def tar_digest(out, srcs) -> tuple[list[int], str]:
    """Sample counts per tar, and one sha256 over every tar's member names and text members in order; each image
    must be the very bytes of its ingest sample (so the digest does not depend on the JPEG encoder)."""
    from pipelines.core.shard_reader import read_images

    images = [{k: v for tar in sorted((src / "shards").glob("*.tar")) for k, v in read_images(tar).items()}
              for src in srcs]
    digest, counts = hashlib.sha256(), []
    for tar in sorted(out.glob("*.tar")):
        with tarfile.open(tar) as tf:
            members = [(m.name, tf.extractfile(m).read()) for m in tf if m.isfile()]
        meta = {n[: -len(".json")]: json.loads(d) for n, d in members if n.endswith(".json")}
        for name, data in members:
            key, ext = name.split(".", 1)
            if ext == "jpg":
                assert data == images[meta[key]["src"]][meta[key]["ingest_key"]]
            else:
                digest.update(data)
            digest.update(name.encode() + b"\0")
        counts.append(len(members) // 3)
    return counts, digest.hexdigest()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_per_shard_plan_exports_the_tars_the_pool_wide_plan_wrote(tmp_path):
    first, second, caps, cur = pool(tmp_path)
    for label, (n_srcs, weights) in RUNS.items():
        srcs = [first, second][:n_srcs]
        out = tmp_path / f"eva_{label}"
        m = export_eva_clip(srcs, out, weights, caps, cur, samples_per_shard=4, seed=3, log=lambda *_: None)
        counts, digest, avail, exported = RECORDED[label]
        assert tar_digest(out, srcs) == (counts, digest), label
        assert (m["available"], m["exported"], m["dropped"]) == (avail, exported, {"caption_dropped": 1}), label


@pytest.mark.parametrize("n,k", [(0, 0), (5, 5), (6, 2), (30, 4), (40, 12), (85, 6), (86, 6), (500, 3), (500, 499),
                                 (3000, 40)])
def test_sample_mask_makes_the_draws_of_random_sample(n, k):
    ours, theirs = random.Random(n * 7 + k), random.Random(n * 7 + k)
    mask = sample_mask(ours, n, k)
    assert sorted(map(int, mask.nonzero()[0])) == sorted(theirs.sample(range(n), k))
    assert ours.getstate() == theirs.getstate()  # the next source's draws follow on unchanged


def _break_other_shards(first, caps, cur, keep: str) -> None:
    """Make every shard's own curated file and caption part except `keep`'s unreadable."""
    for f in [*(cur / "curated").glob("*.parquet"), *(caps / "captions").glob("*.parquet")]:
        if f.stem != keep:
            f.write_bytes(b"not parquet")


def test_a_shard_reads_only_its_own_curated_keys_and_caption_parts(tmp_path):
    first, _, caps, cur = pool(tmp_path)
    tok = ImageTokenizerConfig(vq_model="tiny", target_area=4096, min_area=1024, max_area=16384)
    run = RunnerConfig(engine="local", batch_size=64)
    whole = tokenize_shards(first, tmp_path / "tok_all", tok, run, caps, cur, log=lambda *_: None)
    assert whole["tokenized"] == 44  # 46 curated - a0002 (caption dropped) - b0003 (no image)
    expected = pq.read_table(tmp_path / "tok_all" / "emu3_tokens" / "00001.parquet")
    ref = export_eva_clip([first], tmp_path / "eva_all", None, caps, cur, samples_per_shard=50, log=lambda *_: None,
                          shard_ids={"00001"})
    _break_other_shards(first, caps, cur, keep="00001")
    m = tokenize_shards(first, tmp_path / "tok", tok, run, caps, cur, log=lambda *_: None, shard_ids={"00001"})
    assert m["shards"] == ["00001"]
    got = pq.read_table(tmp_path / "tok" / "emu3_tokens" / "00001.parquet")
    assert got.equals(expected)
    captions = dict(zip(got["key"].to_pylist(), got["caption"].to_pylist()))
    assert captions["b0004"] == "loose b4" and captions["d0000"] == "fused d0" and "b0005" not in captions
    alone = export_eva_clip([first], tmp_path / "eva", None, caps, cur, samples_per_shard=50, log=lambda *_: None,
                            shard_ids={"00001"})
    assert tar_digest(tmp_path / "eva", [first]) == tar_digest(tmp_path / "eva_all", [first])
    assert alone["fingerprint"] == ref["fingerprint"] and alone["samples"] == 15  # 18 - b0005, b0015 (not curated) - b0003 (no image)
    (part,) = image_shard_parts(first, cur, {"00001"})
    table, skipped = part.load()
    assert table.num_rows == 15 and skipped == {"not_curated": 2, "missing_in_tar": 1}
    (other,) = image_shard_parts(first, cur, {"00000"})
    with pytest.raises(TesseraUserError, match="curated/00000.parquet"):
        other.load()


def test_files_that_do_not_follow_the_shard_layout_are_refused_in_one_line(tmp_path):
    first, _, caps, cur = pool(tmp_path)
    pq.write_table(pa.table({"key": ["a0001", "b0001"]}), cur / "curated" / "00000.parquet")  # b0001: shard 00001
    with pytest.raises(TesseraUserError, match="lists key 'b0001', which shard 00000 does not hold"):
        export_eva_clip([first], tmp_path / "eva", None, caps, cur, log=lambda *_: None)
    pq.write_table(pa.table({"key": ["e0001"], "final_caption": ["x"]}), caps / "captions" / "00001.parquet")
    with pytest.raises(TesseraUserError, match="named after shard 00001 but gives key 'e0001'"):
        export_eva_clip([first], tmp_path / "eva", None, caps, None, log=lambda *_: None)
