"""Document curation: published image/text/document rules with reasons, MMC4 assignment of unplaced images, dedup,
document shards that verify, and accounting that adds up for every document and every image occurrence."""

from __future__ import annotations

import json
import tarfile

import pyarrow.parquet as pq
import pytest
from conftest import FAST_DOWNLOAD, jpeg_bytes

from pipelines.cli.main import main
from pipelines.documents.ingest import ingest_documents

SENTENCES = ["The harbour was busy that morning.", "Boats came in with the tide.", "Gulls circled the masts.",
             "A market opened on the quay.", "People bought fish and bread."]


def _image(www, base_url, name, size):
    (www / "img" / name).write_bytes(jpeg_bytes(*size, color="teal"))
    return f"{base_url}/img/{name}"


@pytest.fixture(scope="module")
def doc_ingest(tmp_path_factory, www, base_url):
    root = tmp_path_factory.mktemp("doccur")
    img = {name: _image(www, base_url, f"dc_{name}.jpg", size) for name, size in {
        "a": (200, 160), "b": (220, 180), "c": (160, 200), "d": (300, 200), "small": (100, 80),
        "wide": (450, 150), "logo": (200, 200), "e": (240, 180), "f": (180, 180)}.items()}

    def doc(url, sentences, images):
        return {"url": url, "text_list": sentences,
                "image_info": [{"raw_url": u, **({"matched_text_index": j} if j is not None else {})}
                               for u, j in images]}
    docs = [
        doc("http://p/keep", SENTENCES, [(img["a"], 0), (img["b"], 2)]),
        doc("http://p/rules", SENTENCES, [(img["small"], 0), (img["wide"], 1), (img["logo"], 2), (img["c"], 3),
                                          (img["c"], 4)]),
        doc("http://p/assign", SENTENCES[:3], [(img["d"], None), (img["e"], None)]),
        doc("http://p/keep", SENTENCES[:2], [(img["f"], 1)]),  # same page URL as the first: dropped as duplicate
        doc("http://p/onlybad", SENTENCES[:2], [(img["small"], 0)]),
        doc("http://p/missing", SENTENCES[:2], [(f"{base_url}/img/nope.jpg", 0)]),
    ]
    path = root / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n{broken\n")
    out = root / "ingest"
    ingest_documents("mmc4", [path], out, download=FAST_DOWNLOAD, samples_per_shard=50)
    return out, img


def _curate(ingest, out, preset, *extra):
    return main(["curate", str(ingest), "--preset", preset, "--out", str(out), "--clip-model", "tiny",
                 "--docs-per-shard", "2", *extra])


def test_mmc4_rules_reasons_assignment_and_accounting(doc_ingest, tmp_path, capsys):
    ingest, img = doc_ingest
    out = tmp_path / "cur"
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "-1") == 0
    printed = capsys.readouterr().out
    assert "7 documents -> kept 3 in 2 shards" in printed
    docs = {(r["input_row"]): r for r in pq.read_table(out / "doc_ledger.parquet").to_pylist()}
    assert len(docs) == 7
    assert {i: (d["outcome"], d["stage"], d["reason"]) for i, d in docs.items()} == {
        0: ("kept", None, None), 1: ("kept", None, None), 2: ("kept", None, None),
        3: ("dropped", "curate", "duplicate_document_url"), 4: ("dropped", "curate", "no_image_kept"),
        5: ("dropped", "ingest", "no_image_downloaded"), 6: ("rejected", "ingest", "invalid_json"),
    }
    images = pq.read_table(out / "image_ledger.parquet").to_pylist()
    assert len(images) == 2 + 5 + 2 + 1 + 1 + 1  # every image occurrence of every parsed document
    rules = {r["url"]: r["reason"] for r in images if r["doc_id"] == docs[1]["doc_id"]}
    assert rules[img["small"]] == "image_too_small" and rules[img["wide"]] == "image_aspect_ratio"
    assert rules[img["logo"]] == "image_url_pattern"
    dup = [r for r in images if r["url"] == img["c"]]
    assert [r["reason"] for r in dup] == [None, "duplicate_image_in_document"]
    assert next(r["value"] for r in images if r["url"] == img["wide"]) == 3.0
    assert docs[3]["duplicate_of"] == docs[0]["doc_id"]
    # document shards: json + images, keys of the kept images, unplaced images assigned to a sentence
    members = {}
    for shard in sorted((out / "documents").glob("*.tar")):
        with tarfile.open(shard) as tar:
            members.update({m.name: tar.extractfile(m).read() for m in tar})
    kept_docs = [json.loads(v) for k, v in members.items() if k.endswith(".json")]
    assigned = next(d for d in kept_docs if d["url"] == "http://p/assign")
    kinds = [it["type"] for it in assigned["items"]]
    assert kinds.count("image") == 2 and kinds.count("text") == 3 and kinds[-1] == "text"
    assert all(f"{assigned['doc_id']}.{it['image']}.jpg" in members for it in assigned["items"]
               if it["type"] == "image")
    kept_keys = set(pq.read_table(out / "curated" / "document_images.parquet")["key"].to_pylist())
    assert kept_keys == {r["key"] for r in images if r["outcome"] == "kept"}
    assert sum(1 for k in members if not k.endswith(".json")) == sum(r["outcome"] == "kept" for r in images)
    # a rerun writes nothing new
    stamp = {p.name: p.stat().st_mtime_ns for p in (out / "documents").glob("*.tar")}
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "-1") == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "documents").glob("*.tar")} == stamp


def test_relevance_threshold_and_core_limits(doc_ingest, tmp_path, capsys):
    ingest, _ = doc_ingest
    out = tmp_path / "strict"
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "0.999") == 0
    images = pq.read_table(out / "image_ledger.parquet").to_pylist()
    low = [r for r in images if r["reason"] == "low_clip_similarity"]
    assert low and all(r["value"] < 0.999 and r["value"] == pytest.approx(r["sim"], abs=1e-6) for r in low)
    assert not [r for r in images if r["outcome"] == "kept"]
    core = tmp_path / "core"
    assert _curate(ingest, core, "mmc4_core", "--min-clip-score", "-1") == 0
    reasons = {r["input_row"]: r["reason"] for r in pq.read_table(core / "doc_ledger.parquet").to_pylist()}
    assert reasons[2] == "too_few_sentences"  # 3 sentences < 4
    assert reasons[0] in ("low_assignment_similarity", None)


def test_tokenize_reads_the_curated_document_images(doc_ingest, tmp_path, capsys):
    ingest, _ = doc_ingest
    out = tmp_path / "cur"
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "-1") == 0
    keys = set(pq.read_table(out / "curated" / "document_images.parquet")["key"].to_pylist())
    tokens = tmp_path / "tok"
    assert main(["tokenize", str(ingest), "--curated", str(out), "--out", str(tokens), "--vq-model", "tiny",
                 "--target-area", "4096", "--min-area", "4096", "--max-area", "16384"]) == 0
    got = {k for f in (tokens / "emu3_tokens").glob("*.parquet") for k in pq.read_table(f)["key"].to_pylist()}
    assert got == keys


def test_document_preset_refuses_pair_only_flags(doc_ingest, tmp_path, capsys):
    ingest, _ = doc_ingest
    assert _curate(ingest, tmp_path / "x", "obelics", "--top-fraction", "0.5") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--top-fraction" in err[0]


def test_stats_report_documents_per_outcome_and_accounting(doc_ingest, tmp_path, capsys):
    ingest, _ = doc_ingest
    assert main(["stats", str(ingest), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    acc = stats["documents"]["document_accounting"]
    assert acc["documents_expected"] == acc["documents_accounted"] == 7 and acc["documents_duplicated"] == 0
    assert acc["images_expected"] == acc["images_accounted"] == 12
    by = {(r["what"], r["outcome"], r["reason"]): r["n"] for r in stats["documents"]["document_outcomes"]}
    assert by[("document", "rejected", "invalid_json")] == 1 and by[("document", "kept", "")] == 5
    out = tmp_path / "cur"
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "-1") == 0
    capsys.readouterr()
    assert main(["stats", str(out), "--json"]) == 0
    cur = json.loads(capsys.readouterr().out)["documents"]
    assert cur["kept"] == 3 and cur["document_accounting"]["curated_images_missing"] == 0
    assert cur["document_accounting"]["documents_accounted"] == 7
    assert main(["stats", str(out)]) == 0
    assert "Documents and their images per outcome" in capsys.readouterr().out


def test_presets_curate_their_own_source_and_others_are_skipped(doc_ingest, tmp_path, capsys):
    ingest, _ = doc_ingest
    out = tmp_path / "ob"
    assert _curate(ingest, out, "obelics") == 0  # the folder holds MMC4 documents only
    docs = pq.read_table(out / "doc_ledger.parquet").to_pylist()
    assert {(d["outcome"], d["reason"]) for d in docs if d["stage"] == "curate"} == {
        ("skipped", "source_not_in_preset")}
    assert not list((out / "doc_scores").glob("*.parquet"))  # nothing scored for a source no preset covers
    images = pq.read_table(out / "image_ledger.parquet").to_pylist()
    assert len(images) == 12 and {r["outcome"] for r in images if r["outcome"] != "dropped"} == {"skipped"}
    assert _curate(ingest, tmp_path / "two", "mmc4,mmc4_core") == 2
    assert "both curate mmc4" in capsys.readouterr().err
    assert _curate(ingest, tmp_path / "bad", "mmc4,laion_xyz") == 2


def test_a_changed_selection_replaces_the_document_shards(doc_ingest, tmp_path, capsys):
    ingest, _ = doc_ingest
    out = tmp_path / "cur"
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "-1") == 0
    assert len(list((out / "documents").glob("*.tar"))) == 2
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "0.999") == 0  # same scores, nothing kept now
    assert not list((out / "documents").glob("*.tar"))
    assert json.loads((out / "documents" / "sizes.json").read_text()) == {}
    assert _curate(ingest, out, "mmc4", "--min-clip-score", "-1") == 0
    sizes = json.loads((out / "documents" / "sizes.json").read_text())
    assert sizes == {"00000.tar": 2, "00001.tar": 1}
