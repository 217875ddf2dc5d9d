"""`ImageTokenizer`: JPEG bytes -> Emu3 code grids, batched by token-grid size so one shape runs at a time."""

from __future__ import annotations

import io
from collections import defaultdict

import pyarrow as pa
from pydantic import Field

from models.emu3_preprocessing import MAX_AREA, MAX_ASPECT_RATIO, MIN_AREA, TARGET_AREA
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig

IMAGE = "image"  # encoded image bytes, as read from the tar
GRID_H = "h"
GRID_W = "w"
CODES = "codes"
TOKENIZER = "tokenizer"


class ImageTokenizerConfig(StageConfig):
    """Which VQ model, Emu3's preprocessing knobs, and how many images one forward pass takes."""

    vq_model: str = "tiny"
    target_area: int = Field(TARGET_AREA, ge=64)
    min_area: int = Field(MIN_AREA, ge=64)
    max_area: int = Field(MAX_AREA, ge=64)
    max_aspect_ratio: float = Field(MAX_ASPECT_RATIO, gt=1)
    max_batch: int = Field(16, ge=1)
    device: str | None = None
    dtype: str = "float32"
    dedupe_still: bool = True


class ImageTokenizer(Stage):
    """Adds `h`, `w`, `codes` (row-major int32), `tokenizer` and `drop_reason`; rows that fail keep null codes."""

    config_cls = ImageTokenizerConfig
    name = "image_tokenizer"

    def setup(self) -> None:
        from transformers.utils import logging as hf_logging

        from models.vision_tokenizer import Emu3VisionTokenizer, Preprocessing

        hf_logging.disable_progress_bar()
        c = self.config
        self.tokenizer = Emu3VisionTokenizer(c.vq_model, device=c.device, dtype=c.dtype, dedupe_still=c.dedupe_still)
        self.prep = Preprocessing(c.target_area, c.min_area, c.max_area, c.max_aspect_ratio, self.tokenizer.factor)

    def _pixels(self, data: bytes):
        from PIL import Image, UnidentifiedImageError

        from models.vision_tokenizer import REASON_DECODE, preprocess

        try:
            with Image.open(io.BytesIO(data)) as im:
                return preprocess(im, self.prep)
        except (UnidentifiedImageError, OSError, ValueError):
            return None, REASON_DECODE

    def process(self, batch: pa.Table) -> pa.Table:
        import torch

        n = batch.num_rows
        hs, ws, codes, reasons = [None] * n, [None] * n, [None] * n, [None] * n
        groups: dict[tuple[int, int], list[tuple[int, object]]] = defaultdict(list)
        for i, data in enumerate(batch.column(IMAGE).to_pylist()):
            pixels, reason = self._pixels(data) if data is not None else (None, "missing_image")
            if reason:
                reasons[i] = reason
            else:
                groups[tuple(pixels.shape[1:])].append((i, pixels))
        for members in groups.values():
            for start in range(0, len(members), self.config.max_batch):
                chunk = members[start : start + self.config.max_batch]
                grids = self.tokenizer.encode(torch.stack([p for _, p in chunk])).cpu()
                for (i, _), grid in zip(chunk, grids):
                    hs[i], ws[i] = int(grid.shape[0]), int(grid.shape[1])
                    codes[i] = grid.flatten().to(torch.int32).tolist()
        tok = self.tokenizer.tokenizer_id
        return (
            batch.append_column(GRID_H, pa.array(hs, pa.int32()))
            .append_column(GRID_W, pa.array(ws, pa.int32()))
            .append_column(CODES, pa.array(codes, pa.list_(pa.int32())))
            .append_column(TOKENIZER, pa.array([tok if c is not None else None for c in codes], pa.string()))
            .append_column(S.DROP_REASON, pa.array(reasons, pa.string()))
        )
