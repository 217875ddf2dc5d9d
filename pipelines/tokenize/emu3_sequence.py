"""Emu3 training sequences from (caption ids, code grid), with the exact Emu3 special-token ids, and a Dataset.

Text-to-image: `BOS caption SOV "{h}*{w}" SOT (row EOL)*h EOF EOV`; understanding puts the caption (then EOS) after
EOV. Visual token for code c is `151854 + c` (`<|visual token {c:06d}|>`); vocabulary size 184622.
Text-to-video: `BOS caption SOV "{t}*{h}*{w}" SOT ((row EOL)*h EOF)*t EOV`, t latent frames (docs/video_tokens.md).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PAD = 151643  # <|endoftext|>
BOS = 151849  # <|extra_203|>
EOS = 151850  # <|extra_204|>
SOT = 151851  # <|image token|>
SOV = 151852  # <|image start|>
EOV = 151853  # <|image end|>
EOL = 151846  # <|extra_200|>
EOF = 151847  # <|extra_201|>
VISUAL_BASE = 151854  # <|visual token 000000|>
CODEBOOK_SIZE = 32768
VOCAB_SIZE = VISUAL_BASE + CODEBOOK_SIZE  # 184622
IGNORE = -100


def visual_ids(codes) -> list[int]:
    """The image body: each row's visual tokens followed by EOL."""
    grid = np.asarray(codes, dtype=np.int64)
    if grid.ndim != 2:
        raise ValueError(f"codes must be a 2-D (h, w) grid, got shape {grid.shape}")
    if grid.size and (grid.min() < 0 or grid.max() >= CODEBOOK_SIZE):
        raise ValueError(f"codes must lie in [0, {CODEBOOK_SIZE})")
    body = np.concatenate([grid + VISUAL_BASE, np.full((grid.shape[0], 1), EOL, dtype=np.int64)], axis=1)
    return body.reshape(-1).tolist()


def image_ids(codes, tokenizer) -> list[int]:
    """`SOV "{h}*{w}" SOT rows EOF EOV`; the `h*w` text goes through the text tokenizer."""
    h, w = np.asarray(codes).shape
    size_ids = list(tokenizer.encode(f"{h}*{w}", add_special_tokens=False))
    return [SOV, *size_ids, SOT, *visual_ids(codes), EOF, EOV]


def video_meta(codes) -> str:
    """The default video meta text `"{t}*{h}*{w}"` (latent grid), as BAAI's UniVLA writes Emu3 video tokens."""
    t, h, w = np.asarray(codes).shape
    return f"{t}*{h}*{w}"


def video_ids(codes, tokenizer, meta: str | None = None, *, row_eol: bool = True) -> list[int]:
    """`SOV meta SOT` then per latent frame its rows (each + EOL) and EOF, then `EOV`; codes are (t, h, w).

    meta: the text between SOV and SOT, `video_meta(codes)` by default. row_eol=False writes each frame's tokens
    without EOL (UniVLA's `format_video_prompt`); the default keeps EOL as Emu3's images and its paper do.
    """
    grid = np.asarray(codes, dtype=np.int64)
    if grid.ndim != 3:
        raise ValueError(f"codes must be a 3-D (t, h, w) grid, got shape {grid.shape}")
    meta_ids = list(tokenizer.encode(video_meta(grid) if meta is None else meta, add_special_tokens=False))
    body: list[int] = []
    for frame in grid:
        body += visual_ids(frame) if row_eol else visual_ids(frame.reshape(1, -1))[:-1]  # one row, no EOL
        body.append(EOF)
    return [SOV, *meta_ids, SOT, *body, EOV]


def build_video_input_ids(caption_ids: Sequence[int], codes, tokenizer, *, meta: str | None = None,
                          row_eol: bool = True, understanding: bool = False, caption_dropout: float = 0.0,
                          rng: random.Random | None = None, seed: int | None = None,
                          visual_loss_only: bool = False) -> tuple[list[int], list[int]]:
    """One Emu3 video sample as (input_ids, labels): `build_input_ids` with `video_ids` in place of the image."""
    visual = video_ids(codes, tokenizer, meta, row_eol=row_eol)
    return _assemble(caption_ids, visual, understanding, caption_dropout, rng, seed, visual_loss_only)


def build_input_ids(caption_ids: Sequence[int], codes, tokenizer, *, understanding: bool = False,
                    caption_dropout: float = 0.0, rng: random.Random | None = None, seed: int | None = None,
                    visual_loss_only: bool = False) -> tuple[list[int], list[int]]:
    """One Emu3 sample as (input_ids, labels); labels are aligned with input_ids (the model shifts them).

    caption_dropout: probability of an empty caption (0.05 in Emu3 SFT), drawn from `rng` or `Random(seed)`.
    visual_loss_only: labels keep only visual tokens (Emu3's `apply_loss_on_only_vision`), the rest is -100.
    understanding: `BOS image caption EOS` with loss on the caption and EOS only.
    """
    return _assemble(caption_ids, image_ids(codes, tokenizer), understanding, caption_dropout, rng, seed,
                     visual_loss_only)


def _assemble(caption_ids, image, understanding, caption_dropout, rng, seed, visual_loss_only):
    """Caption and a visual block (image or video) as (input_ids, labels); see `build_input_ids`."""
    if caption_dropout > 0:
        rng = rng or random.Random(seed)
        if rng.random() < caption_dropout:
            caption_ids = []
    caption_ids = [int(t) for t in caption_ids]
    if understanding:
        input_ids = [BOS, *image, *caption_ids, EOS]
        labels = [IGNORE] * (1 + len(image)) + caption_ids + [EOS]
        return input_ids, labels
    input_ids = [BOS, *caption_ids, *image]
    if visual_loss_only:
        labels = [t if VISUAL_BASE <= t < VOCAB_SIZE else IGNORE for t in input_ids]
    else:
        labels = list(input_ids)
    return input_ids, labels


def sample_length(n_caption: int, h: int, w: int, n_size_text: int) -> int:
    """Tokens of one text-to-image sample without building it."""
    return 1 + n_caption + 2 + n_size_text + h * (w + 1) + 2


def pack(lengths: Sequence[int], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Greedy, order-keeping packing of sample indices into bins of <= max_length; an image is never split.

    Returns (bins, too_long) where too_long lists samples longer than max_length (left out, not truncated).
    """
    bins: list[list[int]] = []
    too_long: list[int] = []
    current: list[int] = []
    used = 0
    for i, n in enumerate(lengths):
        if n > max_length:
            too_long.append(i)
            continue
        if used + n > max_length and current:
            bins.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    if current:
        bins.append(current)
    return bins, too_long


def concat_padded(samples: Iterable[tuple[list[int], list[int]]], max_length: int | None = None
                  ) -> tuple[list[int], list[int]]:
    """Concatenate samples into one sequence, padded with PAD (labels -100) up to max_length."""
    ids: list[int] = []
    labels: list[int] = []
    for a, b in samples:
        ids += a
        labels += b
    if max_length is not None:
        ids += [PAD] * (max_length - len(ids))
        labels += [IGNORE] * (max_length - len(labels))
    return ids, labels


def token_files(token_dir: Path) -> list[Path]:
    """The token shards of a `tessera tokenize` output (`OUT` or `OUT/emu3_tokens`)."""
    token_dir = Path(token_dir)
    if (token_dir / "emu3_tokens").is_dir():
        token_dir = token_dir / "emu3_tokens"
    return sorted(token_dir.glob("*.parquet"))
