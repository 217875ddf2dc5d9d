"""Document sequences: the Emu3 layout id by id against transformers' Emu3Processor + Emu3's own image-token mapping,
the Emu1/Emu2 placeholder layout, and `build_sequences` / `tessera doc-sequences` over hand-written curated tars."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Emu3ImageProcessor, Emu3Processor, PreTrainedTokenizerFast
from transformers.models.emu3.modeling_emu3 import Emu3ImageVocabularyMapping

from conftest import add_tar_member, mark_finished
from pipelines.cli.main import main
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_parquet_atomic
from pipelines.documents.layouts import document_ids, placeholder_ids
from pipelines.documents.sequences import build_sequences

CORPUS = ["The cat sat on the mat. It was happy.", "A dog ran in the park.\n\nThe end of the story.",
          "2*3 1*2 4*4 the cat and the dog", "It is the end. The cat ran."]
EMU3_SPECIALS = (["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(205)]
                 + ["<|image token|>", "<|image start|>", "<|image end|>"]
                 + [f"<|visual token {k:06d}|>" for k in range(32768)])


def _bpe(base_size: int, specials: list[str]) -> Tokenizer:
    """A byte-level BPE trained on CORPUS, its vocabulary padded with unused entries to `base_size` ids."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    vocab.update({f"<unused_{i}>": i for i in range(len(vocab), base_size)})
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    full = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    full.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    full.decoder = decoders.ByteLevel()
    return full


@pytest.fixture(scope="module")
def emu3_tok():
    """Emu3's id layout: 151643 text ids, then the special tokens in Emu3's order, then `<image>` (HF processor)."""
    bpe = _bpe(151643, [])
    bpe.add_special_tokens(EMU3_SPECIALS + ["<image>"])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|extra_203|>", eos_token="<|extra_204|>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "boi_token": "<|image start|>", "eoi_token": "<|image end|>",
                              "image_wrapper_token": "<|image token|>", "eof_token": "<|extra_201|>"})


def test_emu3_vocabulary_ids_land_where_reference_says(emu3_tok):
    ids = dict(zip(["pad", "im_start", "extra_0", "eol", "eof", "bos", "eos", "sot", "sov", "eov", "v0", "vmax"],
                   emu3_tok.convert_tokens_to_ids([
                       "<|endoftext|>", "<|im_start|>", "<|extra_0|>", "<|extra_200|>", "<|extra_201|>",
                       "<|extra_203|>", "<|extra_204|>", "<|image token|>", "<|image start|>", "<|image end|>",
                       "<|visual token 000000|>", "<|visual token 032767|>"])))
    assert ids == {"pad": 151643, "im_start": 151644, "extra_0": 151646, "eol": 151846, "eof": 151847,
                   "bos": 151849, "eos": 151850, "sot": 151851, "sov": 151852, "eov": 151853, "v0": 151854,
                   "vmax": 184621}


GRIDS = {"k1": np.array([[0, 1, 2], [5, 6, 7]]), "k2": np.array([[32767, 3]])}
DOC = [{"type": "text", "text": "The cat sat on the mat."}, {"type": "text", "text": "It was happy."},
       {"type": "image", "key": "k1", "url": "u1", "image": 0, "sim": 0.3},
       {"type": "text", "text": "A dog ran in the park."},
       {"type": "image", "key": "gone", "url": "u2", "image": 1, "sim": 0.3},
       {"type": "image", "key": "k2", "url": "u3", "image": 2, "sim": 0.3},
       {"type": "text", "text": "The end."}, {"type": "text", "text": ""}]


def _processor_reference(tok, text: str, grids: list[np.ndarray]) -> list[int]:
    """Emu3Processor's ids for `text` (with `<image>` placeholders), then the placeholders replaced by the visual
    tokens + EOL per row, the way `Emu3Model` fills them (`Emu3ImageVocabularyMapping.convert_img2bpe`)."""
    processor = Emu3Processor(image_processor=Emu3ImageProcessor(min_pixels=64, max_pixels=1 << 20, image_mean=0.5,
                                                                 image_std=0.5), tokenizer=tok)
    images = [Image.new("RGB", (g.shape[1] * 8, g.shape[0] * 8)) for g in grids]
    out = processor(images=images, text=[text + tok.eos_token])
    assert [tuple(s) for s in out["image_sizes"]] == [(g.shape[0] * 8, g.shape[1] * 8) for g in grids]
    ids = list(out["input_ids"][0])
    mapping = Emu3ImageVocabularyMapping(tok.get_vocab())
    fill = torch.cat([mapping.convert_img2bpe(torch.tensor(g)).flatten() for g in grids]).tolist()
    slots = [i for i, t in enumerate(ids) if t == mapping.image_token_id]
    assert len(slots) == len(fill)
    for i, t in zip(slots, fill):
        ids[i] = t
    return ids


@pytest.mark.parametrize("sep", [" ", "\n\n"])
def test_emu3_document_matches_emu3_processor_token_by_token(emu3_tok, sep):
    text = f"The cat sat on the mat.{sep}It was happy.<image>A dog ran in the park.<image>The end."
    expected = _processor_reference(emu3_tok, text, [GRIDS["k1"], GRIDS["k2"]])
    ids, labels, info = document_ids(DOC, GRIDS, emu3_tok, text_sep=sep)
    assert ids == expected and labels == expected
    assert ids[0] == 151849 and ids[-1] == 151850
    runs = [f"The cat sat on the mat.{sep}It was happy.", "A dog ran in the park.", "The end."]
    n_text = sum(len(emu3_tok.encode(r, add_special_tokens=False)) for r in runs)
    assert info == {"image_keys": ["k1", "k2"], "image_not_tokenized": 1, "n_text_tokens": n_text}
    # the merged run is encoded once: BPE merges across the separator, so per-item encoding would differ
    apart = emu3_tok.encode("The cat sat on the mat.", add_special_tokens=False) + emu3_tok.encode(
        sep, add_special_tokens=False) + emu3_tok.encode("It was happy.", add_special_tokens=False)
    if sep == " ":  # byte-level BPE keeps the space with the next word; "\n\n" stands alone either way
        assert ids[1:1 + len(apart)] != apart
    _, vis, _ = document_ids(DOC, GRIDS, emu3_tok, text_sep=sep, visual_loss_only=True)
    assert [t for t in vis if t != -100] == [t for t in ids if 151854 <= t < 184622]
    assert 184621 in vis and sum(t != -100 for t in vis) == 8


@pytest.fixture
def llama_like():
    """Emu1's LLaMA ids: 32000 text ids (<unk> 0, <s> 1, </s> 2), `[PAD]` added first at 32000."""
    bpe = _bpe(32000, ["<unk>", "<s>", "</s>"])
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])  # as LLaMA's
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tok.add_special_tokens({"pad_token": "[PAD]"})
    return tok


@pytest.mark.parametrize("n_query", [32, 64])
def test_placeholder_layout_like_emu_prompts(llama_like, n_query):
    ids, keys, info = placeholder_ids(DOC, llama_like, n_query=n_query, text_sep=" ")
    assert llama_like.convert_tokens_to_ids(["[PAD]", "[IMG]", "[/IMG]", "<image>"]) == [32000, 32001, 32002, 32003]
    block = "[IMG]" + "<image>" * n_query + "[/IMG]"
    # Emu's inference expands the placeholders in the prompt string and tokenizes it once, BOS first
    text = f"The cat sat on the mat. It was happy.{block}A dog ran in the park.{block}{block}The end."
    assert ids == llama_like.encode(text) + [2]
    assert ids[0] == 1 and ids.count(32003) == 3 * n_query and ids.count(32001) == ids.count(32002) == 3
    assert keys == ["k1", "gone", "k2"] and info["image_not_tokenized"] == 0
    n = len(llama_like)
    again, keys, info = placeholder_ids(DOC, llama_like, n_query=n_query, text_sep=" ", available={"k2"})
    assert len(llama_like) == n and keys == ["k2"] and info["image_not_tokenized"] == 2
    assert again.count(32003) == n_query


DOCS = {
    "00000": [("d1", "obelics", DOC), ("d2", "mmc4", [{"type": "text", "text": "lost"},
                                                      {"type": "image", "key": "gone", "image": 0}]),
              ("d3", "mmc4", [{"type": "image", "key": "big", "image": 0}, {"type": "text", "text": "Big."}]),
              ("d4", "obelics", [{"type": "text", "text": "no images here"}])],
    "00001": [("d5", "mmc4", [{"type": "text", "text": "the cat"}, {"type": "image", "key": "k2", "image": 0}])],
    "00002": [("d7", "mmc4", [{"type": "text", "text": "unfinished"}, {"type": "image", "key": "k2", "image": 0}])],
}


def _write_tar(cur, unit, docs, finished=True):
    path = cur / "documents" / f"{unit}.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for doc_id, source, items in docs:
            body = {"doc_id": doc_id, "source": source, "url": f"http://x/{doc_id}", "items": items}
            add_tar_member(tf, f"{doc_id}.json", json.dumps(body).encode())
            add_tar_member(tf, f"{doc_id}.0.jpg", b"not read")
        if unit == "00001":
            add_tar_member(tf, "d6.json", b"{broken")
    (cur / "documents" / f"{unit}_stats.json").unlink(missing_ok=True)  # a rewrite comes with a new marker
    if finished:  # through curation's shard job, as document curation marks its tars
        mark_finished(cur, "documents", unit, [f"documents/{unit}.tar"], {"documents": len(docs)})


@pytest.fixture
def inputs(tmp_path):
    """Finished curated tars (+ a malformed JSON, image members), an unfinished tar (no marker), one token shard."""
    for unit, docs in DOCS.items():
        _write_tar(tmp_path / "cur", unit, docs, finished=unit != "00002")
    grids = {**GRIDS, "big": np.zeros((10, 10), dtype=int)}
    rows = [{"key": k, "caption": "", "h": g.shape[0], "w": g.shape[1], "codes": g.reshape(-1).tolist(),
             "tokenizer": "t"} for k, g in grids.items()]
    write_parquet_atomic(pa.Table.from_pylist(rows), tmp_path / "tok" / "emu3_tokens" / "00000.parquet")
    return tmp_path / "cur", tmp_path / "tok", grids


def _outcomes(out):
    kept = pa.concat_tables(pq.read_table(p) for p in sorted((out / "sequences").glob("*.parquet")))
    dropped = pa.concat_tables(pq.read_table(p) for p in sorted((out / "sequences_dropped").glob("*.parquet")))
    return kept, dropped


def test_build_sequences_routes_every_document_once_and_resumes(inputs, tmp_path, capsys):
    from models.emu3_lm import load_tokenizer

    cur, tok_dir, grids = inputs
    out = tmp_path / "out"
    assert main(["doc-sequences", str(cur), "--tokens", str(tok_dir), "--out", str(out), "--max-length", "100"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("doc-sequences (emu3): 2/6 documents kept, 3 images")
    kept, dropped = _outcomes(out)
    assert sorted(kept["doc_id"].to_pylist() + dropped["doc_id"].to_pylist()) == ["d1", "d2", "d3", "d4", "d5", "d6"]
    reasons = {r["doc_id"]: (r["drop_reason"], r["value"]) for r in dropped.to_pylist()}
    assert reasons["d2"] == ("image_not_tokenized", 1) and reasons["d4"] == ("no_image", 0)
    assert reasons["d6"] == ("malformed_document", None)
    tok = load_tokenizer("tiny")
    assert reasons["d3"] == ("too_long", len(document_ids(DOCS["00000"][2][2], grids, tok, text_sep=" ")[0]))
    row = {r["doc_id"]: r for r in kept.to_pylist()}
    assert row["d1"]["input_ids"] == document_ids(DOC, grids, tok, text_sep="\n\n")[0]  # OBELICS separator
    assert row["d5"]["input_ids"] == document_ids(DOCS["00001"][0][2], grids, tok, text_sep=" ")[0]
    assert row["d1"]["image_keys"] == ["k1", "k2"] and row["d1"]["n_tokens"] == len(row["d1"]["input_ids"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["documents"] == 6 and manifest["kept"] == 2 and manifest["image_not_tokenized"] == 2
    assert manifest["dropped"] == {"image_not_tokenized": 1, "no_image": 1, "too_long": 1, "malformed_document": 1}
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    lines = []
    build_sequences(cur, tok_dir, out, max_length=100, log=lines.append)
    assert lines == [] and {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before
    with pytest.raises(TesseraUserError, match="other settings"):
        build_sequences(cur, tok_dir, out, max_length=101)
    _write_tar(cur, "00001", DOCS["00001"][:0])  # curation rewrote a shard: its sequences are redone
    build_sequences(cur, tok_dir, out, max_length=100, log=lines.append)
    kept, dropped = _outcomes(out)
    assert len(lines) == 1 and lines[0].startswith("documents 00001: 0/1 kept")
    assert sorted(kept["doc_id"].to_pylist() + dropped["doc_id"].to_pylist()) == ["d1", "d2", "d3", "d4", "d6"]
    for gone in (cur / "documents").glob("00001*"):  # a shard curation no longer has: its sequences go too
        gone.unlink()
    assert build_sequences(cur, tok_dir, out, max_length=100, log=lines.append)["documents"] == 4
    assert not list(out.rglob("00001*"))


def test_build_sequences_emu2_layout(inputs, tmp_path):
    cur, tok_dir, _ = inputs
    m = build_sequences(cur, None, tmp_path / "e2", layout="emu2", n_query=32, log=lambda _: None)
    kept, dropped = _outcomes(tmp_path / "e2")
    assert m["kept"] == 4 and dict(zip(dropped["doc_id"].to_pylist(), dropped["drop_reason"].to_pylist())) == {
        "d4": "no_image", "d6": "malformed_document"}
    d1 = {r["doc_id"]: r for r in kept.to_pylist()}["d1"]
    image = m["placeholder_ids"]["<image>"]
    assert d1["image_keys"] == ["k1", "gone", "k2"] and d1["input_ids"].count(image) == 3 * 32
    m = build_sequences(cur, tok_dir, tmp_path / "e2t", layout="emu2", n_query=32, log=lambda _: None)
    assert m["kept"] == 3 and m["dropped"]["image_not_tokenized"] == 1


def test_cli_user_errors_are_one_line(inputs, tmp_path, capsys):
    cur, tok_dir, _ = inputs
    (tmp_path / "empty").mkdir()
    cases = [([str(tmp_path / "missing"), "--tokens", str(tok_dir)], "is not a folder"),
             ([str(tmp_path / "empty"), "--tokens", str(tok_dir)], "holds no finished document shards"),
             ([str(cur), "--tokens", str(tmp_path / "empty")], "holds no token shards"),
             ([str(cur)], "--tokens is required")]
    for args, message in cases:
        assert main(["doc-sequences", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tessera: error:") and message in err
