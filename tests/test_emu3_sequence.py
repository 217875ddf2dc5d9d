"""Emu3 training sequences checked id by id, packing, and the Dataset over token shards."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from pipelines.tokenize.emu3_sequence import IGNORE, PAD, build_input_ids, pack
from pipelines.tokenize.emu3_token_dataset import Emu3TokenDataset, collate
from pipelines.core.shard_io import write_parquet_atomic


@pytest.fixture(scope="module")
def tok():
    vocab = {c: i for i, c in enumerate("0123456789*abcdefghijklmnopqrstuvwxyz ")}
    vocab["[UNK]"] = len(vocab)
    t = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]")


def test_text_to_image_layout_token_by_token(tok):
    codes = np.array([[0, 1, 2], [5, 6, 32767]])
    ids, labels = build_input_ids([7, 8], codes, tok)
    size = [2, 10, 3]  # "2", "*", "3" in the tiny word-level vocab
    expected = [151849, 7, 8, 151852, *size, 151851,
                151854, 151855, 151856, 151846,
                151859, 151860, 151854 + 32767, 151846,
                151847, 151853]
    assert ids == expected
    assert labels == expected
    _, vis = build_input_ids([7, 8], codes, tok, visual_loss_only=True)
    assert vis == [IGNORE] * 8 + [151854, 151855, 151856, IGNORE, 151859, 151860, 184621, IGNORE, IGNORE, IGNORE]


def test_understanding_layout_puts_caption_after_image(tok):
    codes = np.array([[3]])
    ids, labels = build_input_ids([7, 8], codes, tok, understanding=True)
    assert ids == [151849, 151852, 1, 10, 1, 151851, 151857, 151846, 151847, 151853, 7, 8, 151850]
    assert labels == [IGNORE] * 10 + [7, 8, 151850]


def test_caption_dropout_is_seeded_and_near_rate(tok):
    codes = np.zeros((1, 1), dtype=int)
    a = build_input_ids([7], codes, tok, caption_dropout=0.5, seed=3)
    assert a == build_input_ids([7], codes, tok, caption_dropout=0.5, seed=3)
    rng = random.Random(0)
    dropped = sum(build_input_ids([7], codes, tok, caption_dropout=0.05, rng=rng)[0][1] != 7 for _ in range(4000))
    assert 120 < dropped < 290  # ~5%
    assert build_input_ids([7], codes, tok, caption_dropout=1.0, seed=0)[0][:2] == [151849, 151852]


def test_bad_grid_is_rejected(tok):
    with pytest.raises(ValueError):
        build_input_ids([], np.array([1, 2, 3]), tok)
    with pytest.raises(ValueError):
        build_input_ids([], np.array([[32768]]), tok)


def test_pack_never_splits_and_keeps_order():
    bins, too_long = pack([4, 3, 5, 9, 2, 2], max_length=8)
    assert bins == [[0, 1], [2, 4], [5]] and too_long == [3]
    bins, _ = pack([3, 3, 3, 3], 6)
    assert bins == [[0, 1], [2, 3]]


def _write_tokens(folder, rows):
    write_parquet_atomic(pa.Table.from_pylist(rows), folder / "emu3_tokens" / "00000.parquet")


def test_dataset_items_and_packing(tok, tmp_path):
    rows = [{"key": str(i), "caption": "ab", "h": 2, "w": 2, "codes": [i, i, i, i], "tokenizer": "t"} for i in range(5)]
    _write_tokens(tmp_path, rows)
    ds = Emu3TokenDataset(tmp_path, tok)
    assert len(ds) == 5
    item = ds[1]
    assert item["input_ids"].tolist() == build_input_ids(tok.encode("ab"), np.ones((2, 2), int), tok)[0]
    one = len(item["input_ids"])  # 1 + 2 + 2 + 3 + 6 + 2 = 16
    assert one == 16
    packed = Emu3TokenDataset(tmp_path, tok, pack_to=40)
    assert len(packed) == 3 and packed.too_long == []
    p0 = packed[0]
    assert p0["input_ids"].shape[0] == 40 and p0["input_ids"][:one].tolist() == ds[0]["input_ids"].tolist()
    assert p0["input_ids"][32:].tolist() == [PAD] * 8 and p0["labels"][32:].tolist() == [IGNORE] * 8
    assert p0["attention_mask"].sum().item() == 32
    assert len(Emu3TokenDataset(tmp_path, tok, pack_to=10).too_long) == 5
    batch = collate([ds[0], packed[2]])
    assert batch["input_ids"].shape == (2, 40) and batch["attention_mask"][0].sum().item() == 16
