"""Document ingest (MMC4 JSON lines, OBELICS parquet): every document and every image occurrence gets one outcome,
each distinct URL is downloaded once, documents link to sample keys, and a rerun changes nothing."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from conftest import FAST_DOWNLOAD, write_parquet

from pipelines.cli.main import main
from pipelines.core.shards import complete_shards
from pipelines.documents.ingest import DOCUMENT_PARTITIONS, doc_file, ingest_documents


def _mmc4(doc_url, sentences, images):
    return {"url": doc_url, "text_list": sentences,
            "image_info": [{"image_name": f"{i}.jpg", "raw_url": u, "matched_text_index": j, "matched_sim": 0.3,
                            "face_detections": None} for i, (u, j) in enumerate(images)],
            "similarity_matrix": [[0.2] * len(sentences) for _ in images], "could_have_url_duplicate": 0}


@pytest.fixture
def mmc4_file(tmp_path, make_images, base_url):
    ok = make_images(4, "doc", size=(200, 160))
    missing = f"{base_url}/img/missing.jpg"
    lines = [
        json.dumps(_mmc4("http://p/1", ["First sentence here.", "Second one.", "Third."], [(ok[0], 1), (ok[1], 2)])),
        "{not json",
        json.dumps({"url": "http://p/3", "text_list": ["  "], "image_info": [{"raw_url": ok[0]}]}),  # no text
        json.dumps(_mmc4("http://p/4", ["Only text."], [])),  # no image
        json.dumps(_mmc4("http://p/5", ["A.", "B."], [(ok[2], 7)])),  # position out of range
        json.dumps(_mmc4("http://p/6", ["All fail.", "Really."], [(missing, 0), ("ftp://x/y.jpg", 1)])),
        json.dumps(_mmc4("http://p/7", ["Shares an image.", "And loses one."], [(ok[0], 0), (missing, 1)])),
        json.dumps({"url": "http://p/8", "text_list": ["No positions.", "Assign me."],
                    "image_info": [{"raw_url": ok[3]}, {"image_name": "n.jpg"}]}),
    ]
    path = tmp_path / "docs_shard_0_v2.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, ok


def test_mmc4_every_document_and_image_has_one_outcome(tmp_path, mmc4_file):
    path, ok = mmc4_file
    out = tmp_path / "out"
    manifest, images, counts = ingest_documents("mmc4", [path], out, download=FAST_DOWNLOAD, samples_per_shard=50)
    docs = pq.read_table(doc_file(out, manifest.name, "doc_outcomes")).to_pylist()
    assert len(docs) == manifest.input_documents == 8
    by_row = {d["input_row"]: (d["outcome"], d["reason"]) for d in docs}
    assert by_row == {0: ("kept", None), 1: ("rejected", "invalid_json"), 2: ("rejected", "no_text"),
                      3: ("rejected", "no_image"), 4: ("rejected", "position_out_of_range"),
                      5: ("dropped", "no_image_downloaded"), 6: ("kept", None), 7: ("kept", None)}
    outcomes = pq.read_table(doc_file(out, manifest.name, "image_outcomes")).to_pylist()
    assert len(outcomes) == manifest.image_occurrences == 8
    assert counts["images"] == {"downloaded": 4, "failed": 2, "rejected": 2}
    reasons = sorted((o["outcome"], o["reason"]) for o in outcomes if o["outcome"] != "downloaded")
    assert reasons == [("failed", "http_error"), ("failed", "http_error"), ("rejected", "invalid_url"),
                       ("rejected", "missing_url")]
    # each distinct URL downloaded once: the shared image links to one key from both documents
    assert images.accepted == 4 and manifest.distinct_urls == 5
    shared = {o["key"] for o in outcomes if o["url"] == ok[0]}
    assert len(shared) == 1 and None not in shared
    sidecar_urls = [r["url"] for s in complete_shards(out) for r in pq.read_table(s.parquet).to_pylist()]
    assert sorted(sidecar_urls) == sorted(set(sidecar_urls))
    # placement: images sit before their matched sentence; unplaced ones at the end
    canon = {d["input_row"]: d for d in pq.read_table(doc_file(out, manifest.name)).to_pylist()}
    assert [(i["type"], i["placed"]) for i in canon[0]["items"]] == [
        ("text", True), ("image", True), ("text", True), ("image", True), ("text", True)]
    assert [(i["type"], i["placed"]) for i in canon[7]["items"]][-2:] == [("image", False), ("image", False)]
    assert json.loads(canon[0]["extra"])["could_have_url_duplicate"] == 0
    before = {p.name: p.read_bytes() for p in (out / "documents").iterdir()}
    again = ingest_documents("mmc4", [path], out, download=FAST_DOWNLOAD, samples_per_shard=50)
    assert again[2] == counts
    assert {p.name: p.read_bytes() for p in (out / "documents").iterdir()} == before


def test_obelics_rows_and_a_later_partition_reuses_downloaded_urls(tmp_path, make_images):
    urls = make_images(3, "ob", size=(180, 150))
    meta = json.dumps
    rows = [
        {"images": [urls[0], None, urls[1]], "texts": [None, "A paragraph about things.", None],
         "metadata": meta([{"src": urls[0], "alt_text": "alt zero"}, None, {"src": urls[1]}]),
         "general_metadata": meta({"url": "http://page/1", "warc_filename": "a.warc"})},
        {"images": [urls[2], None], "texts": [None], "metadata": None, "general_metadata": None},
        {"images": [urls[2], "x"], "texts": ["both", None], "metadata": None, "general_metadata": None},
        {"images": [None, None], "texts": ["t", "u"], "metadata": None, "general_metadata": None},
    ]
    path = write_parquet(tmp_path / "obelics.parquet", rows)
    out = tmp_path / "out"
    manifest, _, counts = ingest_documents("obelics", [path], out, download=FAST_DOWNLOAD, samples_per_shard=50)
    docs = pq.read_table(doc_file(out, manifest.name, "doc_outcomes")).to_pylist()
    assert [(d["outcome"], d["reason"]) for d in docs] == [
        ("kept", None), ("rejected", "malformed_document"), ("rejected", "malformed_document"),
        ("rejected", "no_image")]
    canon = pq.read_table(doc_file(out, manifest.name)).to_pylist()[0]
    assert canon["url"] == "http://page/1" and [i["type"] for i in canon["items"]] == ["image", "text", "image"]
    assert json.loads(canon["items"][0]["meta"])["alt_text"] == "alt zero"
    # a second partition with an already-downloaded URL links to the existing key instead of fetching again
    second = write_parquet(tmp_path / "obelics2.parquet", [rows[0]])
    m2, images2, counts2 = ingest_documents("obelics", [second], out, download=FAST_DOWNLOAD, samples_per_shard=50)
    assert images2.accepted == 0 and counts2["images"] == {"downloaded": 2}
    first = pq.read_table(doc_file(out, manifest.name, "image_outcomes"))["key"].to_pylist()
    assert pq.read_table(doc_file(out, m2.name, "image_outcomes"))["key"].to_pylist() == first
    assert {m.name for m in DOCUMENT_PARTITIONS.load(out)} == {manifest.name, m2.name}


def test_cli_ingest_mmc4_prints_document_outcomes_and_bad_files_are_one_line(tmp_path, mmc4_file, capsys):
    path, _ = mmc4_file
    out = tmp_path / "cli"
    code = main(["ingest", "--source", "mmc4", "--metadata", str(path), "--out", str(out), "--quiet",
                 "--allow-private-network", "--samples-per-shard", "50", "--processes", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "documents: 8 read -> dropped 1, kept 3, rejected 4" in printed
    assert "images in documents: 8 (5 distinct URLs) -> downloaded 4, failed 2, rejected 2" in printed
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert main(["ingest", "--source", "obelics", "--metadata", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a readable parquet file" in err[0]
