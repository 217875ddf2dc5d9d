"""`Emu3TokenDataset`: a map-style torch Dataset over `emu3_tokens/*.parquet`, optionally packed to a context length."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from pipelines.tokenize.emu3_sequence import IGNORE, PAD, build_input_ids, concat_padded, pack, sample_length, token_files


class Emu3TokenDataset(Dataset):
    """Items are dicts of `input_ids` and `labels` (LongTensors).

    pack_to=None: one sample per item. pack_to=N: samples packed in file order into items of exactly N tokens,
    never splitting an image; samples longer than N are left out and counted in `too_long`.
    Caption dropout draws from a generator seeded by (seed, epoch, index), so an item is reproducible.
    """

    def __init__(self, token_dir: Path, tokenizer, *, pack_to: int | None = None, caption_dropout: float = 0.0,
                 visual_loss_only: bool = False, understanding: bool = False, seed: int = 0) -> None:
        files = token_files(token_dir)
        if not files:
            raise FileNotFoundError(f"no token shards under {token_dir}")
        table = pa.concat_tables([pq.read_table(f, columns=["caption", "h", "w", "codes"]) for f in files])
        self.captions = table["caption"].to_pylist()
        self.h = table["h"].to_numpy()
        self.w = table["w"].to_numpy()
        self.codes = table["codes"].to_pylist()
        self.tokenizer = tokenizer
        self.options = dict(caption_dropout=caption_dropout, visual_loss_only=visual_loss_only,
                            understanding=understanding)
        self.seed, self.epoch = seed, 0
        self.pack_to = pack_to
        self.too_long: list[int] = []
        self.bins = [[i] for i in range(len(self.codes))]
        if pack_to is not None:
            lengths = [self._length(i) for i in range(len(self.codes))]
            self.bins, self.too_long = pack(lengths, pack_to)

    def _caption_ids(self, i: int) -> list[int]:
        return list(self.tokenizer.encode(self.captions[i] or "", add_special_tokens=False))

    def _length(self, i: int) -> int:
        size = len(self.tokenizer.encode(f"{self.h[i]}*{self.w[i]}", add_special_tokens=False))
        understanding_eos = 1 if self.options["understanding"] else 0
        return sample_length(len(self._caption_ids(i)), int(self.h[i]), int(self.w[i]), size) + understanding_eos

    def set_epoch(self, epoch: int) -> None:
        """Change the caption-dropout draws for a new epoch."""
        self.epoch = epoch

    def sample(self, i: int) -> tuple[list[int], list[int]]:
        """Sample `i` (not packed) as (input_ids, labels)."""
        grid = np.asarray(self.codes[i], dtype=np.int64).reshape(int(self.h[i]), int(self.w[i]))
        rng = random.Random(hash((self.seed, self.epoch, i)))
        return build_input_ids(self._caption_ids(i), grid, self.tokenizer, rng=rng, **self.options)

    def __len__(self) -> int:
        return len(self.bins)

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        parts = [self.sample(i) for i in self.bins[idx]]
        real = sum(len(a) for a, _ in parts)
        ids, labels = concat_padded(parts, self.pack_to)
        mask = [1] * real + [0] * (len(ids) - real)
        return {"input_ids": torch.tensor(ids, dtype=torch.long), "labels": torch.tensor(labels, dtype=torch.long),
                "attention_mask": torch.tensor(mask, dtype=torch.long)}


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Right-pad a list of items to the longest one (PAD, labels -100, attention mask 0)."""
    n = max(len(x["input_ids"]) for x in items)
    ids = torch.full((len(items), n), PAD, dtype=torch.long)
    labels = torch.full((len(items), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for row, x in enumerate(items):
        k = len(x["input_ids"])
        ids[row, :k], labels[row, :k], mask[row, :k] = x["input_ids"], x["labels"], x["attention_mask"]
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
