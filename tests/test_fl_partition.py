"""`tessera fl-partition` and the federated client loader: CreamFL's client mix over Tessera shards."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import mark_finished
from PIL import Image

from pipelines.cli.main import main
from pipelines.fl.loader import client_samples
from pipelines.fl.partition import FlPartitionConfig, partition, pool_sizes

TOPICS = [f"t{i}" for i in range(10)]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]


def fake_image(key: str) -> bytes:
    return b"\xff\xd8 fake jpeg of " + key.encode()


def build_ingest(root: Path, n: int = 1200, per_shard: int = 300) -> Path:
    """An ingest folder by hand: finished shards with a `topic` label column, failed rows, one unfinished shard."""
    shard_dir = root / "shards"
    shard_dir.mkdir(parents=True)
    for sid in range(n // per_shard + 1):
        name = f"{sid:05d}"
        rows = []
        with wds.TarWriter(str(shard_dir / f"{name}.tar")) as tar:
            for j in range(per_shard):
                i = sid * per_shard + j
                key = f"{name}{j:04d}"
                caption = f"a {COLORS[i % len(COLORS)]} object number {i}"
                ok = i % 10 != 9
                if ok:
                    tar.write({"__key__": key, "jpg": fake_image(key), "txt": caption})
                rows.append({"key": key, "status": "success" if ok else "failed_to_download", "caption": caption,
                             "source": "laion", "topic": TOPICS[(i * 7) % len(TOPICS)]})
        pq.write_table(pa.Table.from_pylist(rows), shard_dir / f"{name}.parquet")
        if sid < n // per_shard:  # the last shard stays unfinished and must be ignored
            mark_finished(root, "shards", name, [f"shards/{name}.tar", f"shards/{name}.parquet"],
                          {"successes": sum(r["status"] == "success" for r in rows), "count": len(rows)})
    return root


@pytest.fixture(scope="module")
def ingest(tmp_path_factory) -> Path:
    return build_ingest(tmp_path_factory.mktemp("fl_ingest"))


def kept_keys(ingest: Path) -> set[str]:
    keys = set()
    for f in sorted((ingest / "shards").glob("*.parquet"))[:-1]:
        t = pq.read_table(f).to_pylist()
        keys.update(r["key"] for r in t if r["status"] == "success")
    return keys


def cfg(**kw) -> FlPartitionConfig:
    base = dict(img_clients=4, txt_clients=4, mm_clients=3, public=200, alpha=0.1, shards_per_client=4,
                label_column="topic", min_partition_size=5, seed=0)
    return FlPartitionConfig(**{**base, **kw})


def file_keys(path: Path) -> list[str]:
    return pq.read_table(path, columns=["key"])["key"].to_pylist()


def test_partition_covers_every_kept_sample_once_and_public_first(ingest, tmp_path):
    m = partition(ingest, tmp_path / "p", cfg())
    out = tmp_path / "p"
    public = file_keys(out / "public.parquet")
    clients = {p.stem: file_keys(p) for p in (out / "clients").glob("*.parquet")}
    assert sorted(clients) == sorted([f"img_{i}" for i in range(4)] + [f"txt_{i}" for i in range(4)]
                                     + [f"mm_{i}" for i in range(3)])
    everything = public + [k for keys in clients.values() for k in keys]
    assert len(everything) == len(set(everything))  # disjoint
    assert set(everything) == kept_keys(ingest)  # covering, no failed or unfinished-shard rows
    assert len(public) == 200 and m["split"]["public"] == 200
    modalities = {cid: set(pq.read_table(out / "clients" / f"{cid}.parquet")["modality"].to_pylist())
                  for cid in clients}
    assert modalities["img_0"] == {"image"} and modalities["txt_3"] == {"text"} and modalities["mm_2"] == {"image_text"}
    assert [c["samples"] for c in m["clients"]] == [len(clients[c["id"]]) for c in m["clients"]]
    assert sum(m["split"]["pools"].values()) + 200 == len(kept_keys(ingest))


def test_public_size_is_capped_by_what_exists(ingest, tmp_path):
    m = partition(ingest, tmp_path / "p", cfg(public=50_000, public_max_fraction=0.25))
    assert m["split"]["public"] == int(len(kept_keys(ingest)) * 0.25) and m["split"]["public_requested"] == 50_000


def test_same_seed_same_bytes_other_seed_other_split(ingest, tmp_path):
    partition(ingest, tmp_path / "a", cfg())
    partition(ingest, tmp_path / "b", cfg())
    partition(ingest, tmp_path / "c", cfg(seed=1))
    a, b, c = ((tmp_path / x / "manifest.json").read_bytes() for x in "abc")
    assert a == b and a != c
    for name in ["public.parquet", "clients/img_0.parquet", "clients/mm_2.parquet"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert file_keys(tmp_path / "a" / "public.parquet") != file_keys(tmp_path / "c" / "public.parquet")


def test_small_alpha_skews_label_mix_more_than_large_alpha(ingest, tmp_path):
    skew = {}
    for alpha in (0.1, 1000.0):
        m = partition(ingest, tmp_path / str(alpha), cfg(alpha=alpha))
        dirichlet = [c for c in m["clients"] if c["modality"] in ("image", "text")]
        skew[alpha] = (np.mean([c["tv_to_pool"] for c in dirichlet]),
                       np.mean([c["top_label_share"] for c in dirichlet]))
    assert skew[0.1][0] > 0.4 and skew[1000.0][0] < 0.15
    assert skew[0.1][1] > 2 * skew[1000.0][1]


def test_image_text_clients_get_whole_label_sorted_shards(ingest, tmp_path):
    m = partition(ingest, tmp_path / "p", cfg())
    mm = [c for c in m["clients"] if c["modality"] == "image_text"]
    # 4 shards of one label-sorted pool each: a client sees few of the 10 topics, and sizes differ only by leftovers.
    assert all(c["distinct_labels"] <= 4 * 2 for c in mm)
    assert sum(c["samples"] for c in mm) == m["split"]["pools"]["image_text"]
    assert len({c["samples"] for c in mm[:-1]}) == 1 and mm[-1]["samples"] >= mm[0]["samples"]


def test_pool_split_by_clients_or_creamfl_sizes():
    assert pool_sizes(350, cfg(img_clients=10, txt_clients=10, mm_clients=15)) == {"img": 100, "txt": 100, "mm": 150}
    sizes = pool_sizes(315, cfg(pool_split="creamfl"))
    assert sizes == {"img": 50, "txt": 120, "mm": 145}
    assert pool_sizes(7, cfg(txt_clients=0))["txt"] == 0 and sum(pool_sizes(7, cfg()).values()) == 7


def test_loader_yields_exactly_the_clients_keys_in_its_modality(ingest, tmp_path):
    out = tmp_path / "p"
    partition(ingest, out, cfg())
    captions = {r["key"]: r["caption"] for f in (ingest / "shards").glob("*.parquet")
                for r in pq.read_table(f).to_pylist()}
    for cid, has_image, has_text in [("img_1", True, False), ("txt_2", False, True), ("mm_0", True, True),
                                     ("public", True, True)]:
        got = list(client_samples(ingest, out, cid))
        expected = file_keys(out / ("public.parquet" if cid == "public" else f"clients/{cid}.parquet"))
        assert sorted(s.key for s in got) == sorted(expected) and len(got) == len(expected)
        for s in got:
            assert (s.image == fake_image(s.key)) if has_image else s.image is None
            assert (s.caption == captions[s.key]) if has_text else s.caption is None


def test_text_client_reads_no_tar(ingest, tmp_path, monkeypatch):
    out = tmp_path / "p"
    partition(ingest, out, cfg())
    import pipelines.fl.loader as loader

    monkeypatch.setattr(loader, "read_members", lambda *_: pytest.fail("a text client opened a tar"))
    assert len(list(client_samples(ingest, out, "txt_0"))) > 0


def test_caption_word_labels_and_auto(ingest, tmp_path):
    m = partition(ingest, tmp_path / "p", cfg(label_column="auto", alpha=0.5, min_partition_size=1))
    # one source only ("laion"), so auto falls back to the caption's first non-stop word: the 8 colours.
    assert m["label"]["scheme"] == "caption_word" and 2 <= len(m["label"]["histogram"]) <= len(COLORS)


def test_cli_on_demo_ingest_writes_table_plot_and_real_images(demo_ingest, tmp_path, capsys):
    _, ingest_out = demo_ingest
    out = tmp_path / "fl"
    rc = main(["fl-partition", str(ingest_out), "--out", str(out), "--img-clients", "2", "--txt-clients", "2",
               "--mm-clients", "2", "--public", "10", "--shards-per-client", "2", "--min-partition-size", "1",
               "--alpha", "0.5"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "img_1" in captured.out and "mm_1" in captured.out and (out / "clients.png").stat().st_size > 1000
    m = json.loads((out / "manifest.json").read_text())
    assert m["split"]["public"] == 10 and len(m["clients"]) == 6
    sample = next(client_samples(ingest_out, out, "mm_0"))
    assert Image.open(io.BytesIO(sample.image)).size[0] > 0 and sample.caption is not None
    assert Counter(c["modality"] for c in m["clients"]) == {"image": 2, "text": 2, "image_text": 2}
    assert m["label"]["scheme"] == "caption_word"  # the demo has one source, and no embeddings without --curated


@pytest.mark.parametrize("extra, message", [
    (["--img-clients", "500"], "too few for 500 clients"),
    (["--mm-clients", "3", "--shards-per-client", "1000"], "--shards-per-client"),
    (["--label-column", "no_such_column"], "no column 'no_such_column'"),
    (["--label-column", "clip_cluster"], "needs --curated"),
    (["--alpha", "0"], "--alpha"),
    (["--img-clients", "0", "--txt-clients", "0", "--mm-clients", "0"], "no clients requested"),
])
def test_cli_errors_are_one_line(ingest, tmp_path, capsys, extra, message):
    rc = main(["fl-partition", str(ingest), "--out", str(tmp_path / "p"), "--public", "100", "--label-column", "topic",
               "--no-plot", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_error_for_missing_ingest_and_unknown_client(ingest, tmp_path, capsys):
    assert main(["fl-partition", str(tmp_path / "nope"), "--out", str(tmp_path / "p"), "--no-plot"]) == 2
    assert "not an ingest output folder" in capsys.readouterr().err
    partition(ingest, tmp_path / "p", cfg())
    with pytest.raises(Exception, match="no client 'img_9'"):
        list(client_samples(ingest, tmp_path / "p", "img_9"))


def test_curated_subset_and_clip_cluster_labels(ingest, tmp_path):
    """--curated keeps only curated keys; auto then clusters the stored CLIP embeddings (seeded k-means)."""
    keys = sorted(kept_keys(ingest))[::2]
    cur = tmp_path / "cur"
    (cur / "curated").mkdir(parents=True)
    (cur / "scores").mkdir()
    (cur / "embeddings").mkdir()
    pq.write_table(pa.table({"key": keys}), cur / "curated" / "00000.parquet")
    group = np.arange(len(keys)) % 3  # three well-separated directions
    rng = np.random.default_rng(0)
    emb = np.eye(8)[group] + 0.01 * rng.standard_normal((len(keys), 8))
    np.save(cur / "embeddings" / "00000.npy", emb.astype(np.float16))
    pq.write_table(pa.table({"key": keys, "embedding_ref": [f"embeddings/00000.npy#{i}" for i in range(len(keys))]}),
                   cur / "scores" / "00000.parquet")
    m = partition(ingest, tmp_path / "p", cfg(label_column="auto", num_labels=3, public=50), curated=cur)
    assert m["label"]["scheme"] == "clip_cluster" and m["inputs"]["kept"] == len(keys)
    out = tmp_path / "p"
    table = pa.concat_tables([pq.read_table(p) for p in [out / "public.parquet", *(out / "clients").glob("*.parquet")]])
    assert sorted(table["key"].to_pylist()) == keys
    label_of = dict(zip(table["key"].to_pylist(), table["label"].to_pylist()))
    clusters = {}
    for k, g in zip(keys, group):
        clusters.setdefault(g, set()).add(label_of[k])
    assert all(len(v) == 1 for v in clusters.values()) and len(set().union(*clusters.values())) == 3
